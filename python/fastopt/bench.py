"""Benchmark workloads: fastopt vs the NumPy reference, torch.optim (when
installed) and the roofline probe, measured side by side in one process.

Run ``python -m fastopt.bench [--quick] [--json FILE]``. Each workload times
its candidates round-robin (A, B, C, A, B, C, ...) so that machine noise hits
all of them alike, and reports medians. The roofline probe
(``_core.stream_probe``) moves exactly the bytes of the step (an fp32 Adam step:
28 bytes per parameter) with one add per element and the same threading; the
"roofline" column is probe time / fastopt time.
"""
import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, cast

import numpy as np

from . import _core, config, optim, reference, training
from . import functional as fast
from ._registry import parse_api
from . import losses
from ._typing import Array

__all__ = ["Workload", "optimizer_workloads", "precision_workloads", "loss_workloads", "training_workloads",
           "machine_peaks", "measure", "main"]

# name -> (fast fn, reference fn, positional state, keyword state, kwargs, uses step,
#          fastopt.optim class + kwargs, torch.optim class name + kwargs)
_OptimizerCase = tuple[Callable[..., None], Callable[..., None], tuple[str, ...], tuple[str, ...], dict[str, float],
                       bool, tuple[Callable[..., optim.Optimizer], dict[str, float]], tuple[Optional[str], dict[str, float]]]
def _rule_case(rule: dict[str, Any]) -> _OptimizerCase:
    """A rule's benchmark case from the registry: its function, reference and classes at the
    default hyperparameters (the state buffers those use)."""
    name, lr = rule["name"], rule["hypers"][0]["default"]
    states = [s["arg"] for s in rule["states"] if s["name"] in _core.needed_states(name, {})]
    api = parse_api(rule)
    torch_name = api.class_name if api.in_torch else None
    return (getattr(fast, name), getattr(reference, name), tuple(states), (), dict(lr=lr), bool(rule["uses_step"]),
            (getattr(optim, api.class_name), dict(lr=lr)), (torch_name, dict(lr=lr) if torch_name else {}))


# Every elementwise rule of the registry (SGD as its two functions; torch has a fused kernel
# for SGD, Adam, AdamW and Adagrad only, so its fastest for the others is foreach).
# Adafactor's factored state has a benchmark of its own (adafactor_workloads).
OPTIMIZERS: dict[str, _OptimizerCase] = {
    "sgd": (fast.sgd, reference.sgd, (), (), dict(lr=0.01), False,
            (optim.SGD, dict(lr=0.01)), ("SGD", dict(lr=0.01))),
    "momentum": (fast.sgd_momentum, reference.sgd_momentum, ("buf",), (), dict(lr=0.01, momentum=0.9), False,
                 (optim.SGD, dict(lr=0.01, momentum=0.9)), ("SGD", dict(lr=0.01, momentum=0.9))),
    **{r["name"]: _rule_case(r) for r in _core.rules()
       if r["name"] != "sgd" and all(s["shape"] in ("elementwise", "tensor") for s in r["states"])},
}
# The registry's per-tensor states (one number per tensor, not a buffer), by functional
# argument: (the constant it starts at, the hyperparameter it starts at or None).
_PER_TENSOR = {st["arg"]: (st["start"], st["initial"]) for rule in _core.rules() for st in rule["states"]
               if st["shape"] == "tensor"}


def _new_state(p: Array, names: Sequence[str], hypers: dict[str, float]) -> list[Array]:
    """A step's state arrays for ``p``: zeros like it, a 0-d array for a per-tensor number."""
    scalar = np.float64 if p.dtype == np.float64 else np.float32

    def number(name: str) -> Array:
        start, initial = _PER_TENSOR[name]
        return np.array(start if initial is None else hypers[initial], scalar)
    return [number(n) if n in _PER_TENSOR else np.zeros_like(p) for n in names]


@dataclass
class Workload:
    name: str                 # e.g. "adam f32 1M"
    bytes_moved: int          # per step: every buffer read, every buffer but g written
    candidates: dict[str, Callable[..., Any]] = field(default_factory=dict)  # label -> zero-argument callable doing one step
    flops: int = 0            # arithmetic of the step (losses: multiply-adds × 2)
    parameters: int = 0       # optimizer workloads: parameters updated per step


def _size_label(n: int) -> str:
    for unit, scale in (("M", 2**20), ("k", 1000)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def optimizer_workloads(names: Optional[Sequence[str]] = None, dtypes: Sequence[str] = ("float32", "float64"),
                        sizes: Sequence[int] = (1000, 100_000, 2**20, 16 * 2**20),
                        multi: Optional[tuple[int, int]] = (1000, 1000), include_reference: bool = True,
                        include_torch: bool = True, seed: int = 0) -> Iterator[Workload]:
    """Yield :class:`Workload` objects (arrays are allocated lazily, one workload at a time)."""
    torch = _torch() if include_torch else None
    if torch is not None:
        torch.set_num_threads(_core.get_num_threads())
    rng = np.random.default_rng(seed)
    for name in names or OPTIMIZERS:
        fast_fn, ref_fn, positional, _, kwargs, uses_step, (opt_cls, opt_kwargs), (t_name, t_kwargs) = OPTIMIZERS[name]
        for dtype in dtypes:
            shapes = [[(n,)] for n in sizes]
            if multi:
                shapes.append([(multi[1],)] * multi[0])
            for tensor_shapes in shapes:
                params = [rng.standard_normal(s).astype(dtype) for s in tensor_shapes]
                grads = [rng.standard_normal(s).astype(dtype) for s in tensor_shapes]
                n_total = sum(p.size for p in params)
                itemsize = np.dtype(dtype).itemsize
                buffers = [n for n in positional if n not in _PER_TENSOR]
                n_buffers = 2 + len(buffers)
                label = (_size_label(tensor_shapes[0][0]) if len(params) == 1
                         else f"{len(params)}x{_size_label(tensor_shapes[0][0])}")
                w = Workload(f"{name} {np.dtype(dtype).name} {label}",
                             bytes_moved=n_total * itemsize * (2 * n_buffers - 1))
                step = {"t": 10}

                def kw() -> dict[str, Any]:
                    k = dict(kwargs)
                    if uses_step:
                        k["step"] = step["t"]
                    return k

                if len(params) == 1:
                    p, g = params[0], grads[0]
                    state = _new_state(p, positional, kwargs)
                    w.candidates["fastopt"] = lambda p=p, g=g, s=state: fast_fn(p, g, *s, **kw())
                    probe_state = [np.zeros_like(p) for _ in buffers]
                    w.candidates["probe"] = lambda p=p, g=g, s=probe_state: _core.stream_probe(p, g, s)
                    if include_reference:
                        ref_p, ref_s = p.copy(), _new_state(p, positional, kwargs)
                        w.candidates["numpy"] = lambda: ref_fn(ref_p, g, *ref_s, **kw())
                else:
                    opt = opt_cls(params, **opt_kwargs)
                    w.candidates["fastopt"] = lambda opt=opt, grads=grads: opt.step(grads)
                    group = _core.TensorGroup.probe(params, [[np.zeros_like(p) for p in params] for _ in buffers],
                                                    grads)
                    w.candidates["probe"] = group.stream_probe
                    if include_reference:
                        ref_ps = [p.copy() for p in params]
                        ref_ss = [_new_state(p, positional, kwargs) for p in params]

                        def ref_multi(ref_ps: list[Array] = ref_ps, ref_ss: list[list[Array]] = ref_ss,
                                      grads: list[Array] = grads) -> None:
                            k = kw()
                            for p, g, s in zip(ref_ps, grads, ref_ss):
                                ref_fn(p, g, *s, **k)
                        w.candidates["numpy"] = ref_multi
                if torch is not None and t_name is not None:
                    for impl in ("foreach", "fused"):
                        tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
                        for tp, g in zip(tparams, grads):
                            tp.grad = torch.from_numpy(g.copy())
                        try:
                            topt = getattr(torch.optim, t_name)(tparams, **t_kwargs, **{impl: True})
                            topt.step()
                        except (RuntimeError, TypeError, ValueError):
                            continue  # this torch build has no such implementation for this optimizer
                        w.candidates[f"torch-{impl}"] = topt.step
                yield w
                del params, grads, w


def resnet50_shapes() -> list[tuple[int, ...]]:
    """The 161 parameter shapes of torchvision's ResNet-50 (25,557,032 parameters), in order."""
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    inplanes = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for b in range(blocks):
            shapes += [(width, inplanes, 1, 1), (width,), (width,), (width, width, 3, 3), (width,), (width,),
                       (width * 4, width, 1, 1), (width * 4,), (width * 4,)]
            if b == 0:  # the downsampling shortcut
                shapes += [(width * 4, inplanes, 1, 1), (width * 4,), (width * 4,)]
            inplanes = width * 4
    return shapes + [(1000, 2048), (1000,)]


def gpt2_small_shapes() -> list[tuple[int, ...]]:
    """The 148 parameter shapes of GPT-2 small (Hugging Face GPT2Model, 124,439,808 parameters)."""
    d, vocab, context = 768, 50257, 1024
    shapes: list[tuple[int, ...]] = [(vocab, d), (context, d)]
    for _ in range(12):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,),   # ln_1, attention
                   (d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]  # ln_2, MLP
    return shapes + [(d,), (d,)]


PARAMETER_LISTS: dict[str, Callable[[], list[tuple[int, ...]]]] = {
    "16M": lambda: [(16 * 2**20,)], "resnet50": resnet50_shapes, "gpt2-small": gpt2_small_shapes}

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


def _deepspeed_adam() -> Any:
    try:
        import contextlib
        import io
        import logging
        logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            from deepspeed.ops.adam import DeepSpeedCPUAdam
        return DeepSpeedCPUAdam
    except Exception:  # not installed, or its CPU Adam extension cannot be built here
        return None


def precision_workloads(lists: Sequence[str] = ("16M", "resnet50", "gpt2-small"), dtype: str = "bfloat16",
                        include_peers: bool = True, seed: int = 0) -> Iterator[Workload]:
    """Adam on 16-bit parameters: yields a :class:`Workload` per parameter list.

    Candidates are the keys of ``PRECISION_CANDIDATES`` (DeepSpeed's and torch's
    when installed), plus for each fastopt layout a roofline probe
    (``probe:<layout>``) that streams the very same buffers with one add per
    element. ``bytes_moved`` is fastopt's (fp32 state).
    """
    from .reference.precision import bfloat16
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
        probe = _core.TensorGroup.probe([ft._as_numpy(p, "p") for p in ours],
                                        [[ft._as_numpy(opt.state[p][k], k) for p in ours]
                                         for k in ("exp_avg", "exp_avg_sq")],
                                        [ft._as_numpy(g, "g") for g in grads16],
                                        [ft._as_numpy(copies[p], "copy") for p in ours])
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


LOSS_SHAPES: list[tuple[int, int, int]] = [(256, 3073, 10), (10000, 3073, 10), (4096, 512, 1000)]  # CIFAR-10 minibatch, CIFAR-10, large C


def loss_workloads(shapes: Sequence[tuple[int, int, int]] = LOSS_SHAPES, include_reference: bool = True,
                   include_torch: bool = True, seed: int = 0) -> Iterator[Workload]:
    """Yield one :class:`Workload` per (loss, shape), float32: fastopt, the reference's
    vectorized version and torch with autograd (cross_entropy / multi_margin_loss)."""
    torch = _torch() if include_torch else None
    if torch is not None:
        torch.set_num_threads(_core.get_num_threads())
    rng = np.random.default_rng(seed)
    for N, D, C in shapes:
        X = rng.standard_normal((N, D)).astype(np.float32)
        W = (0.001 * rng.standard_normal((D, C))).astype(np.float32)
        y = rng.integers(0, C, N)
        for loss in ("softmax", "svm"):
            w = Workload(f"{loss} f32 N={N} D={D} C={C}", bytes_moved=X.nbytes)
            w.flops = 4 * N * D * C  # scores and gradient: two N·D·C multiply-adds
            if loss == "softmax":
                w.candidates["fastopt"] = lambda W=W, X=X, y=y: losses.softmax_loss(W, X, y, 1e-3)
                if include_reference:
                    w.candidates["numpy"] = lambda W=W, X=X, y=y: reference.softmax_loss_vectorized(W, X, y, 1e-3)
            else:
                w.candidates["fastopt"] = lambda W=W, X=X, y=y: losses.svm_loss(W, X, y, 1e-3)
                if include_reference:
                    w.candidates["numpy"] = lambda W=W, X=X, y=y: reference.svm_loss_vectorized(W, X, y, 1e-3)
            if torch is not None:
                tX, ty = torch.from_numpy(X), torch.from_numpy(y)
                tW = torch.from_numpy(W.copy()).requires_grad_()
                fn = torch.nn.functional.cross_entropy if loss == "softmax" else torch.nn.functional.multi_margin_loss

                def torch_step(tX: Any = tX, ty: Any = ty, tW: Any = tW, fn: Any = fn) -> None:
                    tW.grad = None
                    out = fn(tX @ tW, ty) + 1e-3 * (tW * tW).sum()
                    out.backward()
                w.candidates["torch"] = torch_step
            yield w
        del X, W, y


TRAINING_SHAPES: list[tuple[str, int, int, int]] = [("digits", 1797, 65, 10), ("CIFAR-10 shape", 10000, 3073, 10)]
TRAINING_BATCH = 200
TRAINING_ITERS_PER_CALL = 20


def training_workloads(shapes: Sequence[tuple[str, int, int, int]] = TRAINING_SHAPES,
                       batch_size: int = TRAINING_BATCH, iters: int = TRAINING_ITERS_PER_CALL,
                       seed: int = 0) -> Iterator[Workload]:
    """Yield one :class:`Workload` per data shape, float32, softmax + SGD: ``iters``
    minibatch iterations per call of

    * ``course``: the course's loop in NumPy (``rng.choice``, ``X[idx]``, the
      reference ``softmax_loss_vectorized``, ``W -= lr * dW``);
    * ``python``: the same loop in Python over fastopt's fused loss and step;
    * ``native``: :func:`fastopt.training.train_linear` (the loop in C++).
    """
    rng = np.random.default_rng(seed)
    lr, reg = 1e-3, 1e-4
    for name, N, D, C in shapes:
        if name == "digits":
            from .datasets import load_digits, standardize
            X, y = load_digits()
            X = np.hstack([standardize(X)[0], np.ones((N, 1))]).astype(np.float32)
        else:
            X = rng.standard_normal((N, D)).astype(np.float32)
            y = rng.integers(0, C, N)
        w = Workload(f"softmax+sgd f32 {name} N={N} D={D} C={C} B={batch_size}",
                     bytes_moved=0, flops=4 * batch_size * D * C * iters)
        W_course, W_python, W_native = (np.zeros((D, C), np.float32) for _ in range(3))
        course_rng, python_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        python_opt, native_opt = optim.SGD([W_python], lr=lr), optim.SGD([W_native], lr=lr)
        native_rng = training.SplitMix64(seed)

        def course(X: Array = X, y: Array = y, W: Array = W_course, rng: Any = course_rng) -> None:
            for _ in range(iters):
                idx = rng.choice(len(X), batch_size, replace=True)
                _, dW = reference.softmax_loss_vectorized(W, X[idx], y[idx], reg)
                W -= lr * dW

        def python(X: Array = X, y: Array = y, opt: Any = python_opt, W: Array = W_python,
                   rng: Any = python_rng) -> None:
            for _ in range(iters):
                idx = rng.choice(len(X), batch_size, replace=True)
                _, dW = losses.softmax_loss(W, X[idx], y[idx], reg)
                opt.step([dW])

        w.candidates["native"] = lambda X=X, y=y, opt=native_opt, r=native_rng: training.train_linear(
            opt, X, y, reg=reg, batch_size=batch_size, num_iters=iters, rng=r)
        w.candidates["python"] = python
        w.candidates["course"] = course
        yield w
        del X, y


def machine_peaks(budget: float = 0.3) -> tuple[float, float]:
    """Memory bandwidth (bytes/s) from the roofline probe on 16M float32 elements
    (12 bytes each: read p and g, write p), and float32 GEMM peak (flop/s) from
    NumPy's matmul of 1024×1024 matrices, measured now, in this process."""
    n = 16 * 2**20
    p, g = np.zeros(n, np.float32), np.zeros(n, np.float32)
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    med = measure({"probe": lambda: _core.stream_probe(p, g, []), "gemm": lambda: a @ a}, budget=budget, settle=0.15)
    return 12 * n / med["probe"], 2 * 1024**3 / med["gemm"]


def measure(candidates: dict[str, Callable[[], Any]], budget: float = 0.5, rounds: int = 7,
            min_batch_seconds: float = 2e-3, settle: float = 0.0) -> dict[str, float]:
    """Median seconds per call of each candidate.

    Candidates are interleaved round by round, so slow drifts of a shared
    machine affect all alike; within a round each runs one untimed call and
    then a timed batch of consecutive calls, so a working set that fits in the
    cache is measured warm (as in a training loop that steps repeatedly).
    ``settle`` seconds of sleep before each batch let the previous candidate's
    worker threads stop spinning (OpenBLAS spins for ~0.1 s after a matmul and
    would otherwise steal the cores from the next candidate).
    """
    batch = {}
    for label, f in candidates.items():
        f()  # warm-up: page faults, thread pool start
        t = time.perf_counter()
        f()
        one = max(time.perf_counter() - t, 1e-7)
        per_round = budget / rounds / max(len(candidates), 1)
        batch[label] = int(max(1, min(max(per_round, min_batch_seconds) / one, 5000)))
    times: dict[str, list[float]] = {label: [] for label in candidates}
    for _ in range(rounds):
        for label, f in candidates.items():
            if settle:
                time.sleep(settle)
            f()
            t = time.perf_counter()
            for _ in range(batch[label]):
                f()
            times[label].append((time.perf_counter() - t) / batch[label])
    return {label: float(np.median(ts)) for label, ts in times.items()}


def _fmt_time(s: Optional[float]) -> str:
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1e3:.2f} ms"


def run(quick: bool = False, budget: Optional[float] = None,
        names: Optional[Sequence[str]] = None) -> Iterator[dict[str, Any]]:
    """Measure every workload, yielding one result row (a dict) per workload."""
    if quick:
        workloads = optimizer_workloads(names=names or ["sgd", "adam"], dtypes=("float32",),
                                        sizes=(1000, 2**20), multi=(1000, 1000))
    else:
        workloads = optimizer_workloads(names=names)
    budget = budget if budget is not None else (0.1 if quick else 0.5)
    for w in workloads:
        med = measure(w.candidates, budget=budget)
        t = med["fastopt"]
        row = {"workload": w.name, "fastopt_s": t, "probe_s": med["probe"],
               "roofline_fraction": med["probe"] / t, "gb_per_s": w.bytes_moved / t / 1e9}
        for other in ("numpy", "torch-foreach", "torch-fused"):
            row[f"{other}_s"] = med.get(other)
            row[f"speedup_vs_{other}"] = med[other] / t if other in med else None
        yield row


def _ratio(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:.1f}×"


def format_row(row: dict[str, Any]) -> str:
    ratio = _ratio
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | {row['roofline_fraction']:.2f} "
            f"| {row['gb_per_s']:.1f} | {ratio(row['speedup_vs_numpy'])} | {ratio(row['speedup_vs_torch-foreach'])} "
            f"| {ratio(row['speedup_vs_torch-fused'])} |")


LOSS_HEADER = ("| workload | fastopt (median) | vs NumPy reference (vectorized) | vs torch autograd "
               "| fraction of memory roofline | fraction of GEMM peak |\n|---|---|---|---|---|---|")


def run_losses(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """Measure the loss workloads, yielding one result row per workload."""
    bandwidth, gemm_peak = machine_peaks()
    shapes = LOSS_SHAPES[:2] if quick else LOSS_SHAPES
    for w in loss_workloads(shapes=shapes):
        med = measure(w.candidates, budget=budget if budget is not None else (0.2 if quick else 1.0), settle=0.15)
        t = med["fastopt"]
        yield {"workload": w.name, "fastopt_s": t,
               "speedup_vs_numpy": med["numpy"] / t if "numpy" in med else None,
               "speedup_vs_torch": med["torch"] / t if "torch" in med else None,
               "memory_roofline_fraction": w.bytes_moved / bandwidth / t,
               "gemm_peak_fraction": w.flops / gemm_peak / t,
               "bandwidth_gb_s": bandwidth / 1e9, "gemm_peak_gflop_s": gemm_peak / 1e9,
               **{f"{k}_s": v for k, v in med.items() if k != "fastopt"}}


def format_loss_row(row: dict[str, Any]) -> str:
    ratio = _ratio
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | {ratio(row['speedup_vs_numpy'])} "
            f"| {ratio(row['speedup_vs_torch'])} | {row['memory_roofline_fraction']:.2g} "
            f"| {row['gemm_peak_fraction']:.2f} |")


def run_training(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """Measure the training-loop workloads, yielding one result row per workload."""
    _, gemm_peak = machine_peaks()
    for w in training_workloads():
        med = measure(w.candidates, budget=budget if budget is not None else (0.3 if quick else 1.0), settle=0.15)
        t = med["native"] / TRAINING_ITERS_PER_CALL
        yield {"workload": w.name, "native_s_per_iter": t,
               "python_s_per_iter": med["python"] / TRAINING_ITERS_PER_CALL,
               "course_s_per_iter": med["course"] / TRAINING_ITERS_PER_CALL,
               "speedup_vs_course": med["course"] / med["native"],
               "speedup_vs_python": med["python"] / med["native"],
               "gemm_peak_fraction": w.flops / gemm_peak / med["native"], "gemm_peak_gflop_s": gemm_peak / 1e9}


TRAINING_HEADER = ("| training loop (per iteration, median) | native | Python loop over fastopt kernels "
                   "| course loop (NumPy) | native vs course | native vs Python loop | fraction of GEMM peak |"
                   "\n|---|---|---|---|---|---|---|")


def format_training_row(row: dict[str, Any]) -> str:
    return (f"| {row['workload']} | {_fmt_time(row['native_s_per_iter'])} | {_fmt_time(row['python_s_per_iter'])} "
            f"| {_fmt_time(row['course_s_per_iter'])} | {_ratio(row['speedup_vs_course'])} "
            f"| {_ratio(row['speedup_vs_python'])} | {row['gemm_peak_fraction']:.2f} |")


HEADER = ("| workload | fastopt (median) | fraction of roofline probe | GB/s | vs NumPy reference "
          "| vs torch foreach | vs torch fused |\n|---|---|---|---|---|---|---|")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fastopt bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run: sgd and adam, float32, 1k / 1M / 1000x1k")
    parser.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    parser.add_argument("--optimizer", action="append", choices=sorted(OPTIMIZERS),
                        help="only this optimizer (repeatable)")
    parser.add_argument("--budget", type=float, help="seconds of timing per workload")
    parser.add_argument("--only", choices=["optim", "precision", "torch", "offload", "loss", "train", "linear",
                                           "muon", "lbfgs", "adafactor"],
                        help="only these workloads: optimizers, mixed precision, fastopt.torch, the offload "
                             "phase, losses, the training loop, or (not part of a full run: each takes "
                             "minutes) the linear classifiers against scikit-learn, Muon against torch's; "
                             "or L-BFGS's two-loop recursion against torch's, or Adafactor against torch's")
    args = parser.parse_args(argv)
    if args.budget is not None and args.budget <= 0:
        parser.error("--budget must be > 0")
    cfg = config()
    print(f"fastopt {cfg['version']} | isa {cfg['isa']} | threads {cfg['num_threads']} | "
          f"{platform.processor() or platform.machine()} | numpy {np.__version__}"
          + (f" | torch {_torch().__version__}" if _torch() else " | torch not installed"))
    def table(header: str, rows: Iterator[dict[str, Any]],
              fmt: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
        print(header)
        out = []
        for row in rows:
            out.append(row)
            print(fmt(row), flush=True)
        return out

    results: dict[str, list[dict[str, Any]]] = {"optimizers": [], "precision": [], "torch": [], "offload": [], "losses": [], "training": [],
               "linear_defaults": [], "linear_same_objective": [], "muon": [],
               "lbfgs": [], "adafactor": []}
    if args.only in (None, "optim"):
        results["optimizers"] = table(HEADER, run(quick=args.quick, budget=args.budget, names=args.optimizer),
                                      format_row)
        print()
    if args.only in (None, "precision"):
        try:
            results["precision"] = table(PRECISION_HEADER, run_precision(quick=args.quick, budget=args.budget),
                                         format_precision_row)
        except ImportError as e:  # bfloat16 needs ml_dtypes
            print(f"mixed-precision workloads skipped: {e}")
        print()
    if args.only in (None, "torch", "offload"):
        if _torch() is None:
            print("fastopt.torch and offload-phase workloads skipped: torch is not installed\n")
        else:
            if args.only in (None, "torch"):
                results["torch"] = table(TORCH_HEADER, run_torch(quick=args.quick, budget=args.budget),
                                         format_torch_row)
                print()
            if args.only in (None, "offload"):
                results["offload"] = table(OFFLOAD_HEADER, run_offload(quick=args.quick, budget=args.budget),
                                           format_offload_row)
                print()
    if args.only in (None, "loss"):
        loss_rows = results["losses"] = table(LOSS_HEADER, run_losses(quick=args.quick, budget=args.budget),
                                              format_loss_row)
        if loss_rows:
            print(f"\nmemory bandwidth (probe) {loss_rows[0]['bandwidth_gb_s']:.1f} GB/s, "
                  f"float32 GEMM peak (numpy matmul) {loss_rows[0]['gemm_peak_gflop_s']:.0f} GFLOP/s")
        print()
    if args.only in (None, "train"):
        results["training"] = table(TRAINING_HEADER, run_training(quick=args.quick, budget=args.budget),
                                    format_training_row)
    if args.only == "linear":
        from . import bench_linear
        if not bench_linear._sklearn():
            print("linear-classifier workloads skipped: scikit-learn is not installed")
        else:
            results["linear_defaults"] = table(bench_linear.DEFAULTS_HEADER,
                                               bench_linear.run_defaults(quick=args.quick),
                                               bench_linear.format_defaults_row)
            print()
            results["linear_same_objective"] = table(bench_linear.SAME_HEADER,
                                                     bench_linear.run_same_objective(quick=args.quick),
                                                     bench_linear.format_same_row)
    if args.only == "muon":
        if _torch() is None or not hasattr(_torch().optim, "Muon"):
            print("Muon workloads skipped: they need torch with torch.optim.Muon")
        else:
            results["muon"] = table(MUON_HEADER, run_muon(quick=args.quick, budget=args.budget), format_muon_row)
    if args.only == "lbfgs":
        if _torch() is None:
            print("L-BFGS workloads skipped: torch is not installed")
        else:
            results["lbfgs"] = table(LBFGS_HEADER, run_lbfgs(quick=args.quick, budget=args.budget), format_lbfgs_row)
    if args.only == "adafactor":
        if _torch() is None or not hasattr(_torch().optim, "Adafactor"):
            print("Adafactor workloads skipped: they need torch with torch.optim.Adafactor")
        else:
            results["adafactor"] = table(ADAFACTOR_HEADER, run_adafactor(quick=args.quick, budget=args.budget),
                                         format_adafactor_row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": cfg, "date": time.strftime("%Y-%m-%d"), **results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
