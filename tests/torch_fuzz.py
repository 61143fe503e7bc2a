"""Fuzz of fastopt.torch: seeded random sequences of steps with the optimizer's
parameters, gradients, state and groups edited between them in ways a user can
(including wrong ones). Run by tests/test_torch_adapter.py in a subprocess, so a
crash or hang is caught: ``python tests/torch_fuzz.py SEED STEPS`` prints one
JSON line per problem and exits 0 when there is none.

Every step must either succeed or raise a TypeError or ValueError (torch's own
RuntimeError for edits torch itself refuses is not the step's) and, when it
raises, leave every parameter and state tensor as it was.
"""
import json
import random
import re
import sys

import torch

import fastopt.torch as ft
from fastopt import _core
from fastopt.optim import state_shape

SHAPES = [(6, 3), (5,), (40,), (2, 2)]
# every rule's class (named in its registry entry), and Muon
CLASSES = [re.match(r"(?:torch\.optim\.)?(\w+)\(", rule["api"]).group(1) for rule in _core.rules()] + ["Muon"]
# state kept as one number (a 0-d tensor), from the registry
PER_TENSOR = {st["name"] for rule in _core.rules() for st in rule["states"] if st["shape"] == "tensor"}
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def snapshot(opt, params):
    values = [p.detach().clone() for p in params]
    state = {id(p): {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v)
                     for k, v in dict(opt.state.get(p, {}) if isinstance(opt.state.get(p, {}), dict) else {}).items()}
             for p in params}
    return values, state


def same(a, b):
    """Bitwise equal (NaN equals NaN), or the same object."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype or a.layout != torch.strided or b.layout != torch.strided:
            return a.shape == b.shape and a.dtype == b.dtype and a.layout == b.layout
        return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))
    return a is b or a == b


def unchanged(before, after):
    (v0, s0), (v1, s1) = before, after
    if any(not same(a, b) for a, b in zip(v0, v1)):
        return False
    for key in s0:
        if s0[key].keys() != s1.get(key, {}).keys():
            return False
        if any(not same(s0[key][k], s1[key][k]) for k in s0[key]):
            return False
    return True


def random_tensor(rng, shape, dtype):
    return (torch.randn(shape, generator=rng) * 0.1).to(dtype)


def edits(r, rng, opt, params):
    """One random edit of what the next step sees."""
    p = r.choice(params)
    dtype = p.dtype
    shape = tuple(p.shape)
    n = p.numel()
    choices = [
        lambda: setattr(p, "grad", random_tensor(rng, shape, dtype)),
        lambda: setattr(p, "grad", None),
        lambda: setattr(p, "grad", torch.full(shape, r.choice([float("nan"), float("inf"), 1e30]), dtype=dtype)),
        lambda: (setattr(p, "grad_dtype", None), setattr(p, "grad", random_tensor(rng, shape, r.choice(DTYPES)))),
        lambda: setattr(p, "grad", random_tensor(rng, (2 * n,), dtype)[::2].view(shape)),
        lambda: setattr(p, "grad", torch.zeros(1, dtype=dtype).expand(n).view(shape) if len(shape) == 1 else None),
        lambda: setattr(p, "grad", random_tensor(rng, shape, dtype).to_sparse()),
        lambda: p.grad is not None and setattr(p.grad, "data", torch.zeros(3, dtype=dtype)),
        lambda: opt.state.__setitem__(p, {}),
        lambda: opt.state.pop(p, None),
        lambda: opt.state.__setitem__(p, 5),
        lambda: _edit_state(r, rng, opt, p),
        lambda: setattr(p, "data", random_tensor(rng, shape, dtype)),
        lambda: setattr(p, "data", random_tensor(rng, shape, r.choice(DTYPES))),
        lambda: setattr(p, "data", random_tensor(rng, (n + 1,), dtype)),
        lambda: _edit_group(r, opt),
        lambda: _move_memory(r, opt, p),
        lambda: _reshape(r, p),
        lambda: setattr(p, "grad", torch._neg_view(random_tensor(rng, shape, dtype))),
        lambda: setattr(p, "data", torch._neg_view(p.data)),
        lambda: _int_step(opt, p),
        lambda: r.choice(opt.param_groups).__setitem__("params", tuple(r.choice(opt.param_groups)["params"])),
        lambda: _add_group(r, rng, opt, dtype),
    ]
    r.choice(choices)()


def _move_memory(r, opt, p):
    """What moves a tensor's memory behind the same tensor object: share_memory_(),
    set_() to other storage, a storage that grows."""
    state = opt.state.get(p)
    tensors = [p.data] + ([v for v in state.values() if isinstance(v, torch.Tensor)] if isinstance(state, dict) else [])
    t = r.choice(tensors)
    if t.is_shared():  # torch itself crashes resizing a shared-memory storage
        return
    r.choice([
        lambda: t.share_memory_(),
        lambda: t.set_(t.clone()),
        lambda: t.resize_(t.numel() + 1000).resize_(t.shape) if t.dim() else t.share_memory_(),
        lambda: t.untyped_storage().resize_(t.untyped_storage().nbytes() + 4096),
    ])()


def _reshape(r, p):
    """`.data` over the same memory with other shapes or strides, smaller, or empty."""
    d = p.data
    p.data = r.choice([
        lambda: d.t() if d.dim() == 2 else d,
        lambda: d.view(-1),
        lambda: d.view(-1)[: max(0, d.numel() // 2)],
        lambda: d.view(-1)[:0],
        lambda: d.view(-1)[1:] if d.numel() > 1 else d,
    ])()


def _int_step(opt, p):
    state = opt.state.get(p)
    if isinstance(state, dict) and isinstance(state.get("step"), torch.Tensor):
        state["step"] = state["step"].to(torch.int64)


def _add_group(r, rng, opt, dtype):
    p = random_tensor(rng, r.choice([(3,), (0,), (2, 5)]), dtype).requires_grad_()
    p.grad = random_tensor(rng, p.shape, dtype)
    group = {"params": [p]}
    if r.random() < 0.5:
        group["lr"] = r.choice([1e-3, 0.0, -1.0, float("nan")])
    try:
        opt.add_param_group(group)
    except (TypeError, ValueError):
        pass
    ADDED.append(p)


ADDED = []  # parameters added with add_param_group in this trial: part of what a refused step must not change


def _edit_state(r, rng, opt, p):
    state = opt.state.get(p)
    if not isinstance(state, dict) or not state:
        return
    key = r.choice(sorted(state))
    value = state[key]
    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else ()
    dtype = value.dtype if isinstance(value, torch.Tensor) else torch.float32
    state[key] = r.choice([
        lambda: random_tensor(rng, shape, dtype).abs(),
        lambda: random_tensor(rng, shape, r.choice(DTYPES)).abs(),
        lambda: random_tensor(rng, (3,), dtype),
        lambda: torch.tensor(r.choice([float("nan"), -1.0, 1.5, 2.0**60, 3.0])),
        lambda: torch.tensor(4),
        lambda: r.choice([7, "x", None, [1.0]]),
        lambda: random_tensor(rng, (2 * max(1, value.numel() if isinstance(value, torch.Tensor) else 1),),
                              dtype)[::2].view(shape) if isinstance(value, torch.Tensor) and value.dim() else value,
    ])()


def _edit_group(r, opt):
    group = r.choice(opt.param_groups)
    key = r.choice(["lr", "weight_decay", "eps", "momentum", "betas", "alpha", "maximize"])
    if key not in group:
        return
    group[key] = r.choice([-1.0, 0.0, 1e-3, float("nan"), "x", None, torch.tensor(0.01), (0.9, 0.99), (2.0, 0.5),
                           True, 0.5])


KINDS = {rule["name"]: {st["name"]: st["shape"] for st in rule["states"]} for rule in _core.rules()}


def _state_shape(opt, key, p):
    """The shape torch keeps state `key` of `p` in (Adafactor's factored state: not p's)."""
    return state_shape(KINDS.get(getattr(opt, "_rule", ""), {}).get(key, "elementwise"), tuple(p.shape))


def repair(rng, opt, params, dtype, hypers):
    """Undo the edits: valid parameters, fresh gradients, the original hyperparameters,
    and a reset state wherever it was edited (so that later steps can succeed)."""
    for p, shape in zip(params, SHAPES):
        if p.dtype != dtype or tuple(p.shape) != shape or not p.is_contiguous() or p.is_neg():
            p.data = random_tensor(rng, shape, dtype)
        p.grad = None
        p.grad_dtype = dtype
        p.grad = random_tensor(rng, shape, dtype)
        state = opt.state.get(p)
        if state is not None and (not isinstance(state, dict) or any(
                not isinstance(v, torch.Tensor)
                or (k not in PER_TENSOR | {"step"} and (tuple(v.shape) != _state_shape(opt, k, p)
                                                        or not v.is_contiguous()))
                or (k in PER_TENSOR and (v.dtype not in (torch.float32, torch.float64) or v.numel() != 1))
                or (k == "step" and (v.dtype not in (torch.float32, torch.float64, torch.int64) or v.numel() != 1
                                     or not 0 <= float(v) < 2**50))
                for k, v in state.items())):
            opt.state[p] = {}
    for group, saved in zip(opt.param_groups, hypers):
        group.update(saved)


def main(seed, steps):
    r = random.Random(seed)
    rng = torch.Generator().manual_seed(seed)
    problems = 0
    outcomes = {"applied": 0, "skipped": 0, "refused": 0}
    for trial in range(steps // 20):
        name = r.choice(CLASSES)
        dtype = r.choice(DTYPES)
        params = [random_tensor(rng, s, dtype).requires_grad_() for s in SHAPES]
        options = {}
        if dtype in (torch.float16, torch.bfloat16) and r.random() < 0.5:
            options["state_dtype"] = "float32"
        if name in ("SGD", "RMSprop") and r.random() < 0.5:
            options["momentum"] = 0.9
        if dtype == torch.float32 and r.random() < 0.3:  # master-weight mode: 16-bit copies written by each step
            options["param_copies"] = {p: p.detach().to(r.choice([torch.float16, torch.bfloat16]))
                                       for p in params if name != "Muon" or p.dim() < 2}
        if name == "Muon":  # Muon for the matrices, AdamW for the vectors
            groups = [{"params": [p for p in params if p.dim() >= 2]},
                      {"params": [p for p in params if p.dim() < 2], "lr": 1e-3, "use_muon": False}]
        else:
            groups = [{"params": params[:2]}, {"params": params[2:], "lr": 1e-3}]
        opt = getattr(ft, name)(groups, lr=1e-2, **options)
        ADDED.clear()
        for p in params:
            p.grad = random_tensor(rng, p.shape, dtype)
        hypers = [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]
        for step in range(20):
            if r.random() < 0.3:
                repair(rng, opt, params, dtype, hypers)
            elif r.random() < 0.6:
                try:
                    edits(r, rng, opt, params)
                except RuntimeError:
                    pass  # torch refused the edit itself
            watched = params + ADDED + list(options.get("param_copies", {}).values())
            before = snapshot(opt, watched)
            try:
                if r.random() < 0.2 and name != "Muon":  # Muon has no offload phase
                    applied, _ = opt.offload_step(grad_scale=r.choice([1.0, 0.5, 1 / 1024]),
                                                  max_norm=r.choice([None, 1.0]))
                    outcomes["applied" if applied else "skipped"] += 1
                else:
                    opt.step()
                    outcomes["applied"] += 1
            except (TypeError, ValueError) as e:
                outcomes["refused"] += 1
                if not unchanged(before, snapshot(opt, watched)):
                    problems += 1
                    print(json.dumps({"seed": seed, "trial": trial, "step": step, "class": name,
                                      "problem": f"changed state after {type(e).__name__}: {e}"}))
            except Exception as e:  # noqa: BLE001 - any other exception type is a finding
                problems += 1
                print(json.dumps({"seed": seed, "trial": trial, "step": step, "class": name,
                                  "problem": f"raised {type(e).__name__}: {e}"}))
    print(json.dumps({"seed": seed, "outcomes": outcomes}), file=sys.stderr)
    return problems


if __name__ == "__main__":
    sys.exit(1 if main(int(sys.argv[1]), int(sys.argv[2])) else 0)
