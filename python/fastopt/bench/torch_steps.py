"""fastopt.torch workloads: per-step cost on model shapes and many small tensors, Muon,
L-BFGS and Adafactor against torch.optim."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .. import _core, optim
from .harness import (PARAMETER_LISTS, Workload, _deepspeed_adam, _fmt_time, _ratio, _size_label, _torch,
                      gpt2_small_shapes, measure)


def torch_workloads(lists: Sequence[str] = ("resnet50", "gpt2-small", "1000x1k", "1000x1", "1x1k"),
                    seed: int = 0) -> Iterator[Workload]:
    """One fp32 Adam step through :mod:`fastopt.torch` on torch tensors, against
    torch.optim's fused and foreach Adam and DeepSpeedCPUAdam (when installed).
    "1000x1" (one-element tensors) measures the per-tensor cost of a step, "1x1k"
    (one tensor of 1,000 elements) its fixed cost."""
    torch = _torch()
    if torch is None:
        return
    import fastopt.torch as ft
    torch.set_num_threads(_core.get_num_threads())
    ds_adam = _deepspeed_adam()
    gen = torch.Generator().manual_seed(seed)
    for name in lists:
        shapes = ([(1000,)] * 1000 if name == "1000x1k" else [(1,)] * 1000 if name == "1000x1"
                  else [(1000,)] if name == "1x1k" else PARAMETER_LISTS[name]())
        n = sum(int(np.prod(s)) for s in shapes)
        size = f"{n / 1e6:.1f}M" if n >= 100_000 else f"{n} elements"
        w = Workload(f"adam float32 {name} ({len(shapes)} tensors, {size}) via fastopt.torch",
                     bytes_moved=28 * n, parameters=n)
        grads = [torch.randn(s, generator=gen) for s in shapes]

        def tensors() -> list[Any]:
            out = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
            for t, g in zip(out, grads):
                t.grad = g.clone()
            return out
        makers: dict[str, Callable[[list[Any]], Any]] = {"fastopt": lambda t: ft.Adam(t, lr=1e-4),
                  "torch-fused": lambda t: torch.optim.Adam(t, lr=1e-4, fused=True),
                  "torch-foreach": lambda t: torch.optim.Adam(t, lr=1e-4, foreach=True)}
        if ds_adam is not None:
            makers["deepspeed"] = lambda t: ds_adam(t, lr=1e-4, adamw_mode=False)
        for label, make in makers.items():
            try:
                opt = make(tensors())
                opt.step()
            except Exception:
                continue
            w.candidates[label] = opt.step
        yield w


def run_torch(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """Measure the fastopt.torch workloads: one row each."""
    for w in torch_workloads(lists=("resnet50", "1000x1k", "1000x1", "1x1k") if quick
                             else ("resnet50", "gpt2-small", "1000x1k", "1000x1", "1x1k")):
        med = measure(w.candidates, budget=budget if budget is not None else (1.0 if quick else 4.0), rounds=7)
        t = med["fastopt"]
        yield {"workload": w.name, "fastopt_s": t, "gb_per_s": w.bytes_moved / t / 1e9,
               **{f"{k}_s": v for k, v in med.items() if k != "fastopt"},
               **{f"speedup_vs_{k}": v / t for k, v in med.items() if k != "fastopt"}}


def muon_workloads(seed: int = 0) -> Iterator[Workload]:
    """One Muon step on GPT-2 small's hidden matrices (the 48 attention and MLP
    weights, 85M parameters): :class:`fastopt.torch.Muon` (same-shape matrices
    batched; and one group per matrix, unbatched) against torch.optim.Muon, all
    with the Newton–Schulz iteration in bfloat16 on torch's BLAS; and the whole
    model with one fastopt.torch.Muon (AdamW for embeddings, norms and biases)
    against torch.optim.Muon plus torch's fused AdamW."""
    torch = _torch()
    if torch is None or not hasattr(torch.optim, "Muon"):
        return
    import fastopt.torch as ft
    torch.set_num_threads(_core.get_num_threads())
    gen = torch.Generator().manual_seed(seed)
    shapes = gpt2_small_shapes()
    hidden = [s for s in shapes[2:] if len(s) == 2]  # the embeddings are not hidden matrices
    grads = {s: torch.randn(s, generator=gen) for s in set(shapes)}

    def tensors(of: Sequence[tuple[int, ...]]) -> list[Any]:
        out = [torch.randn(s, generator=gen).requires_grad_() for s in of]
        for t in out:
            t.grad = grads[tuple(t.shape)].clone()
        return out

    n = sum(int(np.prod(s)) for s in hidden)
    w = Workload(f"muon gpt2-small hidden matrices ({len(hidden)} matrices, {n / 1e6:.1f}M)",
                 bytes_moved=0, parameters=n)
    ours = ft.Muon(tensors(hidden), lr=0.02)
    unbatched = ft.Muon([{"params": [t]} for t in tensors(hidden)], lr=0.02)
    theirs = torch.optim.Muon(tensors(hidden), lr=0.02)
    w.candidates = {"fastopt": ours.step, "fastopt-unbatched": unbatched.step, "torch": theirs.step}
    yield w

    n = sum(int(np.prod(s)) for s in shapes)
    w = Workload(f"muon + adamw gpt2-small whole model ({len(shapes)} tensors, {n / 1e6:.1f}M)",
                 bytes_moved=0, parameters=n)
    params = tensors(shapes)
    matrices = [p for i, p in enumerate(params) if i >= 2 and p.dim() == 2]
    rest = [p for i, p in enumerate(params) if i < 2 or p.dim() != 2]
    groups: list[dict[str, Any]] = [{"params": matrices}, {"params": rest, "use_muon": False, "lr": 3e-4}]
    combined = ft.Muon(groups, lr=0.02)
    params = tensors(shapes)
    matrices = [p for i, p in enumerate(params) if i >= 2 and p.dim() == 2]
    rest = [p for i, p in enumerate(params) if i < 2 or p.dim() != 2]
    t_muon = torch.optim.Muon(matrices, lr=0.02)
    t_adamw = torch.optim.AdamW(rest, lr=3e-4, betas=(0.9, 0.95), eps=1e-10, fused=True)

    def torch_pair() -> None:
        t_muon.step()
        t_adamw.step()
    w.candidates = {"fastopt": combined.step, "torch": torch_pair}
    yield w


def run_muon(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """Measure the Muon workloads: one row each."""
    for w in muon_workloads():
        med = measure(w.candidates, budget=budget if budget is not None else 1.0, rounds=3 if quick else 7)
        t = med["fastopt"]
        yield {"workload": w.name, "fastopt_s": t, **{f"{k}_s": v for k, v in med.items() if k != "fastopt"},
               **{f"speedup_vs_{k}": v / t for k, v in med.items() if k != "fastopt"}}


def lbfgs_workloads(sizes: Sequence[int] = (2**20, 16 * 2**20), history: int = 10,
                    seed: int = 0) -> Iterator[Workload]:
    """L-BFGS's two-loop recursion over ``history`` pairs of float32 vectors: fastopt's
    native fused passes against torch.optim.LBFGS's loop of torch operations."""
    torch = _torch()
    if torch is None:
        return
    torch.set_num_threads(_core.get_num_threads())
    gen = torch.Generator().manual_seed(seed)
    for n in sizes:
        g = torch.randn(n, generator=gen)
        s = [torch.randn(n, generator=gen) for _ in range(history)]
        y = [si + 0.1 * torch.randn(n, generator=gen) for si in s]
        ro = [1.0 / yi.dot(si) for si, yi in zip(s, y)]
        h = ro[-1] * 0 + 0.5
        d = torch.empty(n)
        arrays = (g.numpy(), [t.numpy() for t in s], [t.numpy() for t in y], [float(r) for r in ro], d.numpy())
        # every pass reads or writes n floats: 2 per pair and loop in fastopt, 4 in torch's
        w = Workload(f"lbfgs direction float32 {_size_label(n)}, history {history}",
                     bytes_moved=4 * n * (4 * history + 3), parameters=n)

        def fastopt_direction(a: Any = arrays) -> None:
            _core.lbfgs_direction(a[0], a[1], a[2], a[3], 0.5, a[4])

        def torch_direction(g: Any = g, s: Any = s, y: Any = y, ro: Any = ro, h: Any = h) -> None:
            al: list[Any] = [None] * len(s)
            q = g.neg()
            for i in range(len(s) - 1, -1, -1):
                al[i] = s[i].dot(q) * ro[i]
                q.add_(y[i], alpha=-al[i])
            r = torch.mul(q, h)
            for i in range(len(s)):
                be_i = y[i].dot(r) * ro[i]
                r.add_(s[i], alpha=al[i] - be_i)
        w.candidates = {"fastopt": fastopt_direction, "torch": torch_direction}
        yield w


def adafactor_workloads(lists: Sequence[str] = ("4000x4000", "gpt2-small"), seed: int = 0) -> Iterator[Workload]:
    """One Adafactor step, float32: :class:`fastopt.torch.Adafactor` against torch.optim.Adafactor
    (its default for-loop and foreach), and :class:`fastopt.optim.Adafactor` on NumPy arrays; the
    stream probe over the parameter and gradient (read both, write p: the least any step moves).
    fastopt's three passes over a matrix move 24 bytes per parameter (p and g, g, p and g and p)."""
    torch = _torch()
    if torch is None or not hasattr(torch.optim, "Adafactor"):
        return
    import fastopt.torch as ft
    torch.set_num_threads(_core.get_num_threads())
    gen = torch.Generator().manual_seed(seed)
    for name in lists:
        shapes = [(4000, 4000)] if name == "4000x4000" else gpt2_small_shapes()
        n = sum(int(np.prod(s)) for s in shapes)
        grads = [torch.randn(s, generator=gen) for s in shapes]

        def tensors() -> list[Any]:
            out = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
            for t, g in zip(out, grads):
                t.grad = g.clone()
            return out
        w = Workload(f"adafactor float32 {name} ({len(shapes)} tensors, {n / 1e6:.1f}M)", bytes_moved=24 * n,
                     parameters=n)
        ours = ft.Adafactor(tensors(), lr=1e-2)
        loop = torch.optim.Adafactor(tensors(), lr=1e-2)
        foreach = torch.optim.Adafactor(tensors(), lr=1e-2, foreach=True)
        arrays = [p.detach().numpy().copy() for p in tensors()]
        numpy_opt = optim.Adafactor(arrays, lr=1e-2, grads=[g.numpy() for g in grads])
        probe = _core.TensorGroup.probe(arrays, [], [g.numpy() for g in grads])
        w.candidates = {"fastopt": ours.step, "torch": loop.step, "torch-foreach": foreach.step,
                        "fastopt.optim": numpy_opt.step, "probe": probe.stream_probe}
        yield w


def run_adafactor(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    for w in adafactor_workloads(lists=("4000x4000",) if quick else ("4000x4000", "gpt2-small")):
        med = measure(w.candidates, budget=budget if budget is not None else 1.0)
        t = med["fastopt"]
        yield {"workload": w.name, "fastopt_s": t, "gb_per_s": w.bytes_moved / t / 1e9,
               "probe_fraction": med["probe"] / t,
               **{f"{k}_s": v for k, v in med.items() if k != "fastopt"},
               **{f"speedup_vs_{k}": v / t for k, v in med.items() if k not in ("fastopt", "probe")}}


ADAFACTOR_HEADER = ("| workload | fastopt.torch.Adafactor (median) | GB/s (24 B/param) | probe over p, g (12 B/param) "
                    "/ fastopt | vs torch | vs torch foreach | fastopt.optim |\n|---|---|---|---|---|---|---|")


def format_adafactor_row(row: dict[str, Any]) -> str:
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | {row['gb_per_s']:.1f} | "
            f"{row['probe_fraction']:.2f} | {_ratio(row.get('speedup_vs_torch'))} | "
            f"{_ratio(row.get('speedup_vs_torch-foreach'))} | {_fmt_time(row.get('fastopt.optim_s'))} |")


def run_lbfgs(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    for w in lbfgs_workloads(sizes=(2**20,) if quick else (2**20, 16 * 2**20)):
        med = measure(w.candidates, budget=budget if budget is not None else 1.0)
        yield {"workload": w.name, "fastopt_s": med["fastopt"], "torch_s": med["torch"],
               "speedup_vs_torch": med["torch"] / med["fastopt"]}


LBFGS_HEADER = "| workload | fastopt (median) | torch.optim.LBFGS's loop | speed-up |\n|---|---|---|---|"


def format_lbfgs_row(row: dict[str, Any]) -> str:
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | {_fmt_time(row['torch_s'])} | "
            f"{row['speedup_vs_torch']:.1f}× |")


MUON_HEADER = ("| workload | fastopt.torch.Muon (median) | vs fastopt unbatched | vs torch |\n|---|---|---|---|")


def format_muon_row(row: dict[str, Any]) -> str:
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | "
            f"{_ratio(row.get('speedup_vs_fastopt-unbatched'))} | {_ratio(row.get('speedup_vs_torch'))} |")


TORCH_HEADER = ("| workload | fastopt.torch (median) | GB/s | vs torch fused | vs torch foreach | vs DeepSpeedCPUAdam |"
                "\n|---|---|---|---|---|---|")


def format_torch_row(row: dict[str, Any]) -> str:
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | {row['gb_per_s']:.1f} | "
            f"{_ratio(row.get('speedup_vs_torch-fused'))} | {_ratio(row.get('speedup_vs_torch-foreach'))} | "
            f"{_ratio(row.get('speedup_vs_deepspeed'))} |")
