"""Mixed-precision workloads (16-bit parameters, Adam against torch, DeepSpeed and the
probe) and the fused offload phase."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence, cast

import numpy as np

from .. import _core, optim
from .._typing import Array
from .harness import PARAMETER_LISTS, Workload, _deepspeed_adam, _fmt_time, _torch, measure


# Bytes per parameter of an Adam step on 16-bit parameters (parameter read and
# written, gradient read, each moment read and written, the copy written), and
# the fastopt layout whose roofline probe moves the same bytes.
PRECISION_CANDIDATES = {
    # label: (bytes per parameter, probe, description)
    "fastopt": (2 + 2 + 2 + 16, "fastopt", "fastopt, fp32 state"),
    "deepspeed": (2 + 2 + 2 + 16, "fastopt", "DeepSpeedCPUAdam, fp32 state"),
    "fastopt-param-state": (2 + 2 + 2 + 8, "fastopt-param-state", "fastopt, state in the param dtype"),
    "torch-fused": (2 + 2 + 2 + 8, "fastopt-param-state", "torch.optim.Adam(fused=True), state in the param dtype"),
    "fastopt-master": (4 + 4 + 2 + 16 + 2, "fastopt-master",
                       "fastopt master weights: fp32 params and state, 16-bit grads, 16-bit copy in the same pass"),
    "deepspeed-master": (4 + 4 + 4 + 16 + 4 + 2, "fastopt-master",
                         "DeepSpeedCPUAdam on fp32 params and grads, then the 16-bit copy (a second pass)"),
}


def precision_workloads(lists: Sequence[str] = ("16M", "resnet50", "gpt2-small"), dtype: str = "bfloat16",
                        include_peers: bool = True, seed: int = 0) -> Iterator[Workload]:
    """Adam on 16-bit parameters: yields a :class:`Workload` per parameter list.

    Candidates are the keys of ``PRECISION_CANDIDATES`` (DeepSpeed's and torch's
    when installed), plus for each fastopt layout a roofline probe
    (``probe:<layout>``) that streams the very same buffers with one add per
    element. ``bytes_moved`` is fastopt's (fp32 state).
    """
    from ..reference.precision import bfloat16
    low = bfloat16() if dtype == "bfloat16" else np.dtype(dtype)
    torch = _torch() if include_peers else None
    if torch is not None:
        torch.set_num_threads(_core.get_num_threads())
    ds_adam = _deepspeed_adam() if torch is not None else None
    rng = np.random.default_rng(seed)
    for name in lists:
        shapes = PARAMETER_LISTS[name]()
        n = sum(int(np.prod(s)) for s in shapes)
        master = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        params = [p.astype(low) for p in master]
        grads = [(1e-2 * rng.standard_normal(s)).astype(low) for s in shapes]
        w = Workload(f"adam {np.dtype(low).name} {name} ({len(shapes)} tensors, {n / 1e6:.1f}M)",
                     bytes_moved=n * PRECISION_CANDIDATES["fastopt"][0], parameters=n)
        layouts = {"fastopt": optim.Adam([p.copy() for p in params], lr=1e-4),
                   "fastopt-param-state": optim.Adam([p.copy() for p in params], lr=1e-4, state_dtype="param"),
                   "fastopt-master": optim.Adam([p.copy() for p in master], lr=1e-4,
                                                param_copies=[p.copy() for p in params])}
        for label, opt in layouts.items():
            w.candidates[label] = lambda opt=opt: opt.step(grads)
            probe = _core.TensorGroup.probe(opt.params, cast(Any, list(opt.state.values())), grads,
                                            opt.param_copies if label == "fastopt-master" else None)
            w.candidates[f"probe:{label}"] = probe.stream_probe
        if torch is not None:
            tdtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[np.dtype(low).name]

            def tensors(arrays: list[Array], grad_arrays: list[Array], as_low: bool = True) -> list[Any]:
                out = []
                for p, g in zip(arrays, grad_arrays):
                    if as_low:
                        t = torch.from_numpy(p.view(np.int16).copy()).view(tdtype).requires_grad_()
                        t.grad = torch.from_numpy(g.view(np.int16).copy()).view(tdtype)
                    else:
                        t = torch.from_numpy(p.copy()).requires_grad_()
                        t.grad = torch.from_numpy(g.astype(np.float32))
                    out.append(t)
                return out
            try:
                topt = torch.optim.Adam(tensors(params, grads), lr=1e-4, fused=True)
                topt.step()
                w.candidates["torch-fused"] = topt.step
            except (RuntimeError, TypeError, ValueError):
                pass
            if ds_adam is not None:
                try:
                    dopt = ds_adam(tensors(params, grads), lr=1e-4, adamw_mode=False, fp32_optimizer_states=True)
                    dopt.step()
                    w.candidates["deepspeed"] = dopt.step
                    fp32 = tensors(master, grads, as_low=False)
                    copies = [torch.empty(t.shape, dtype=tdtype) for t in fp32]
                    mopt = ds_adam(fp32, lr=1e-4, adamw_mode=False)

                    def deepspeed_master(mopt: Any = mopt, fp32: list[Any] = fp32,
                                         copies: list[Any] = copies) -> None:
                        mopt.step()
                        with torch.no_grad():
                            torch._foreach_copy_(copies, fp32)
                    deepspeed_master()
                    w.candidates["deepspeed-master"] = deepspeed_master
                except Exception:
                    pass
        yield w
        del params, grads, master, w


def run_precision(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """Measure the mixed-precision workloads: one row per (workload, candidate)."""
    lists = ("16M", "resnet50") if quick else tuple(PARAMETER_LISTS)
    for w in precision_workloads(lists=lists):
        med = measure(w.candidates, budget=budget if budget is not None else (1.0 if quick else 4.0), rounds=7)
        for label, (bytes_per, probe, description) in PRECISION_CANDIDATES.items():
            if label not in med:
                continue
            t = med[label]
            yield {"workload": w.name, "candidate": label, "description": description, "seconds": t,
                   "bytes_per_parameter": bytes_per, "gb_per_s": w.parameters * bytes_per / t / 1e9,
                   "roofline_fraction": (w.parameters * bytes_per / t)
                   / (w.parameters * PRECISION_CANDIDATES[probe][0] / med[f"probe:{probe}"]),
                   "vs_fastopt": t / med[{"deepspeed": "fastopt", "torch-fused": "fastopt-param-state",
                                          "deepspeed-master": "fastopt-master"}.get(label, label)]}


def offload_workloads(lists: Sequence[str] = ("gpt2-small",), seed: int = 0) -> Iterator[Workload]:
    """The optimizer phase of loss-scaled bf16 training with fp32 master weights on
    the CPU (ZeRO-Offload's layout): bf16 gradients in, unscale by 1/1024, skip if
    not finite, clip to a global norm of 1, Adam, bf16 copies out.

    ``fastopt``: :meth:`fastopt.torch.AdamW.offload_step` (one read pass for the
    norm, one update pass writing the copies: 2 + 2 + 8 + 16 + 2 = 30 bytes per
    parameter). ``torch``: what a user runs today — copy the bf16 gradients into
    the fp32 ``.grad`` buffers, ``_foreach_mul_`` (unscale), ``clip_grad_norm_``
    (its norm pass and scaling pass), fused AdamW, ``_foreach_copy_`` into the
    bf16 copies (6 + 8 + 4 + 8 + 28 + 6 = 60 bytes per parameter).
    """
    torch = _torch()
    if torch is None:
        return
    import fastopt.torch as ft
    from fastopt.torch._optimizer import _as_numpy
    torch.set_num_threads(_core.get_num_threads())
    gen = torch.Generator().manual_seed(seed)
    for name in lists:
        shapes = PARAMETER_LISTS[name]()
        n = sum(int(np.prod(s)) for s in shapes)
        w = Workload(f"offload phase, bf16 grads, fp32 master + bf16 copy, {name} ({n / 1e6:.1f}M)",
                     bytes_moved=30 * n, parameters=n)
        grads16 = [(1024 * 1e-2 * torch.randn(s, generator=gen)).to(torch.bfloat16) for s in shapes]
        ours = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
        try:
            for p, g in zip(ours, grads16):
                p.grad_dtype = None  # a bf16 gradient on an fp32 (master) parameter: recent torch only
                p.grad = g
        except RuntimeError:
            return
        copies = {p: p.detach().to(torch.bfloat16) for p in ours}
        opt = ft.AdamW(ours, lr=1e-4, param_copies=copies)
        opt.offload_step(grad_scale=1 / 1024, max_norm=1.0)  # creates the state
        w.candidates["fastopt"] = lambda opt=opt: opt.offload_step(grad_scale=1 / 1024, max_norm=1.0)
        # The roofline probe streams the same buffers once (28 B/param: no norm pass).
        probe = _core.TensorGroup.probe([_as_numpy(p, "p") for p in ours],
                                        [[_as_numpy(opt.state[p][k], k) for p in ours]
                                         for k in ("exp_avg", "exp_avg_sq")],
                                        [_as_numpy(g, "g") for g in grads16],
                                        [_as_numpy(copies[p], "copy") for p in ours])
        w.candidates["probe"] = probe.stream_probe
        theirs = [p.detach().clone().requires_grad_() for p in ours]
        for p in theirs:
            p.grad = torch.zeros_like(p)
        their_copies = [p.detach().to(torch.bfloat16) for p in theirs]
        topt = torch.optim.AdamW(theirs, lr=1e-4, fused=True)
        their_grads = [p.grad for p in theirs]

        def torch_sequence(topt: Any = topt, theirs: list[Any] = theirs, their_grads: list[Any] = their_grads,
                           copies: list[Any] = their_copies) -> None:
            with torch.no_grad():
                torch._foreach_copy_(their_grads, grads16)
                torch._foreach_mul_(their_grads, 1 / 1024)
                norm = torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=True)
                if torch.isfinite(norm):
                    topt.step()
                    torch._foreach_copy_(copies, theirs)
        w.candidates["torch"] = torch_sequence
        yield w


def run_offload(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """Measure the offload-phase workloads: one row each."""
    for w in offload_workloads(lists=("resnet50",) if quick else ("resnet50", "gpt2-small")):
        med = measure(w.candidates, budget=budget if budget is not None else (1.0 if quick else 4.0), rounds=7)
        yield {"workload": w.name, "fastopt_s": med["fastopt"], "torch_s": med["torch"],
               "speedup": med["torch"] / med["fastopt"], "fastopt_gb_per_s": w.bytes_moved / med["fastopt"] / 1e9,
               # bytes per second over the probe's (28 B/param, same buffers)
               "roofline_fraction": (30 / med["fastopt"]) / (28 / med["probe"])}


OFFLOAD_HEADER = ("| workload | fastopt offload_step (30 B/param) | torch sequence (60 B/param) | speed-up "
                  "| fastopt GB/s | fraction of roofline (probe, same buffers) |\n|---|---|---|---|---|---|")


def format_offload_row(row: dict[str, Any]) -> str:
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | {_fmt_time(row['torch_s'])} | "
            f"{row['speedup']:.2f}× | {row['fastopt_gb_per_s']:.1f} | {row['roofline_fraction']:.2f} |")


PRECISION_HEADER = ("| Adam on 16-bit parameters | candidate | bytes / param | median step | GB/s "
                    "| fraction of roofline (probe, same buffers) | time vs fastopt's same layout |"
                    "\n|---|---|---|---|---|---|---|")


def format_precision_row(row: dict[str, Any]) -> str:
    return (f"| {row['workload']} | {row['description']} | {row['bytes_per_parameter']} | "
            f"{_fmt_time(row['seconds'])} | {row['gb_per_s']:.1f} | {row['roofline_fraction']:.2f} | "
            f"{row['vs_fastopt']:.2f}× |")
