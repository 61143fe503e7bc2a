"""Optimizer-step workloads: every rule of the registry against its NumPy reference,
torch.optim's fastest and the roofline probe."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .. import _core, optim, reference
from .. import functional as fast
from .._registry import parse_api
from .._typing import Array
from .harness import Workload, _fmt_time, _ratio, _size_label, _torch, measure


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


def format_row(row: dict[str, Any]) -> str:
    ratio = _ratio
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | {row['roofline_fraction']:.2f} "
            f"| {row['gb_per_s']:.1f} | {ratio(row['speedup_vs_numpy'])} | {ratio(row['speedup_vs_torch-foreach'])} "
            f"| {ratio(row['speedup_vs_torch-fused'])} |")


HEADER = ("| workload | fastopt (median) | fraction of roofline probe | GB/s | vs NumPy reference "
          "| vs torch foreach | vs torch fused |\n|---|---|---|---|---|---|---|")
