"""Seeded bad-input cases for fastopt's public functions: the generator and runner
of the fuzz test (tests/test_fuzz.py).

A case is a valid call of one public function with one argument replaced by a
bad or edge value. Every case is rebuilt from its seed alone, so a failure is
reproduced with ``python tests/fuzz_cases.py SEED SEED+1``.

The runner prints one JSON line before a case starts ({"start": seed}) and one
with its outcome, so the parent can attribute a crash or a hang to the case
that was running. Each outcome records:

* ``expect``: "error" when the value is invalid (the call must raise a
  TypeError or ValueError whose message names the argument), or "any" when it
  may be valid (the call may succeed; if it raises, the same rules hold);
* ``raised``, ``type``, ``message``, ``named``: what happened;
* ``unchanged``: every array argument is as it was (after any error), and
  arrays only read are as they were even after a success.
"""
import json
import math
import re
import sys
import traceback
from fractions import Fraction

import numpy as np

import fastopt
from fastopt import _core, linear, optim, schedules
from fastopt._registry import parse_api
from fastopt.linear import LinearSVMClassifier, SoftmaxClassifier
from fastopt.regularization import penalty
from fastopt.training import SplitMix64, minibatch_indices, train_linear

BASE_SEED = 8_000_000


# --------------------------------------------------------------- argument kinds

class Real:
    """A real-number argument; `valid(x)` says whether a real value is accepted
    (and None too when `optional`)."""

    def __init__(self, valid, names=None, optional=False):
        self.valid, self.names, self.optional = valid, names, optional


class Int:
    def __init__(self, valid, names=None):
        self.valid, self.names = valid, names


class Flag:
    def __init__(self, names=None):
        self.names = names


class Choice:
    def __init__(self, options, names=None):
        self.options, self.names = options, names


class Seed:
    def __init__(self, names=None):
        self.names = names


class Arr:
    """An array argument.

    role: "written" (updated in place: exact dtype, shape, C-contiguous, aligned,
    writeable, disjoint from the others), "grad" (the same, but only read), or
    "input" (only read; copied when not contiguous or aligned). `shrink(a)`
    returns a wrongly-shaped version whose error names this argument (None: no
    such mutation). `alias`: keys of written arrays it could be made to share.
    """

    def __init__(self, role, shrink=None, alias=(), partnered=True, any_ndim=False, names=None, optional=False):
        self.role, self.shrink, self.alias, self.partnered = role, shrink, alias, partnered
        self.any_ndim, self.names, self.optional = any_ndim, names, optional


class ScalarState:
    """A per-tensor state: one number in a writeable float32 or float64 ndarray (0-d as torch
    keeps it; any shape of size 1). `alias`: keys of written arrays it could be made to share."""

    def __init__(self, alias=(), names=None):
        self.alias, self.names = alias, names


class Codes:
    """The uint8 codes of an 8-bit state buffer (written; the parameter's shape). `alias`:
    keys of other code arrays it could be made to share."""

    def __init__(self, alias=(), names=None):
        self.alias, self.names = alias, names


class Absmax:
    """The float32 absmax of each block of 256 codes of an 8-bit state buffer (written).
    `alias`: keys of float32 arrays it could be made to share."""

    def __init__(self, alias=(), names=None):
        self.alias, self.names = alias, names


class Weights:
    """An estimator's sample_weight: scikit-learn's conventions (None, lists, integers and
    a scalar are accepted; bools, complex, strings, NaN, negatives, the wrong length are not)."""

    def __init__(self, names=("sample_weight",)):
        self.names = names


class Labels:
    def __init__(self, C, alias=None, names=None):
        self.C, self.alias, self.names = C, alias, names


class Container:
    """A list of arrays (params, grads) as a whole (a wrong length may be reported by either)."""

    def __init__(self, required=True, names=("params", "grads")):
        self.required, self.names = required, names


class RealTuple:
    """A tuple of reals (torch's betas, etas): `valid` says whether each member is accepted."""

    def __init__(self, names=("betas", "beta1", "beta2"), valid=None):
        self.names = names
        self.valid = valid or (lambda x: 0 <= x < 1, lambda x: 0 <= x < 1)


def nonneg(x):
    return math.isfinite(x) and x >= 0


def positive(x):
    return math.isfinite(x) and x > 0


def unit(x):          # [0, 1)
    return 0 <= x < 1


def closed_unit(x):   # [0, 1]
    return 0 <= x <= 1


def any_real(x):
    return True


INT64_MAX = 2**63 - 1


# ---------------------------------------------------------------- mutations

BAD_TYPES_NUMBER = [("None", None), ("str", "0.1"), ("bytes", b"1"), ("bool", True), ("np.bool_", np.bool_(False)),
                    ("complex", 1j), ("np.complex128", np.complex128(0.5)), ("list", [0.1]),
                    ("1-d array", np.array([0.1])), ("0-d array", np.array(0.1)), ("object", object())]
REALS = [float("nan"), float("inf"), -float("inf"), -1.0, -1e-300, 0.0, 0.5, 1.0, 1.5, 1e308, 2**70,
         np.float32(0.25), np.int64(3), Fraction(1, 3), np.float16(0.5), -np.float64(2.0)]
BAD_TYPES_INT = [("None", None), ("float", 1.5), ("whole float", 2.0), ("np.float64", np.float64(2)),
                 ("str", "3"), ("bool", True), ("np.bool_", np.bool_(True)), ("complex", 1j), ("list", [3])]
INTS = [-(2**70), -1, 0, 1, 2, 7, 2**31, 2**62, 2**63, 2**64, 2**100, np.int64(-5), np.int32(3), np.uint64(2**63 + 5)]
BAD_FLAGS = [("str False", "False"), ("str no", "no"), ("empty str", ""), ("int 0", 0), ("int 1", 1), ("float", 1.0),
             ("None", None), ("list", [True])]
BAD_CHOICES = [("upper", "L2"), ("empty", ""), ("None", None), ("int", 2), ("bytes", b"l2"), ("padded", " l2")]
BAD_SEEDS = [("str", "seed"), ("float", 1.5), ("list", [1]), ("object", object()), ("bool", True)]


def as_int64(x):
    return None if not (-(2**63) <= int(x) <= INT64_MAX) else int(x)


def mutations(spec, value, args, key):
    """(label, new value or callable(value) -> value, expect) for an argument of kind `spec`."""
    out = []
    if isinstance(spec, Real):
        out += [(label, v, "any" if v is None and spec.optional else "error") for label, v in BAD_TYPES_NUMBER]
        for v in REALS:
            try:
                f = float(v)
            except OverflowError:
                f = float("inf")
            out.append((f"{v!r}", v, "any" if spec.valid(f) else "error"))
        out.append(("10**400", 10**400, "error"))
    elif isinstance(spec, Int):
        out += [(label, v, "error") for label, v in BAD_TYPES_INT]
        for v in INTS:
            i = as_int64(v)
            out.append((f"{v!r}", v, "error" if i is None or not spec.valid(i, args) else "any"))
    elif isinstance(spec, Flag):
        out += [(label, v, "error") for label, v in BAD_FLAGS]
        out += [("True", True, "any"), ("False", False, "any"), ("np.True_", np.bool_(True), "any")]
    elif isinstance(spec, Choice):
        out += [(label, v, "error") for label, v in BAD_CHOICES if v not in spec.options]
        out += [(f"{o!r}", o, "any") for o in spec.options]
    elif isinstance(spec, Seed):
        out += [(label, v, "error") for label, v in BAD_SEEDS]
        out += [("None", None, "any"), ("2**70", 2**70, "any"), ("Generator", np.random.default_rng(1), "any"),
                ("SplitMix64", SplitMix64(3), "any")]
    elif isinstance(spec, RealTuple):
        v = tuple(value)
        out += [("None", None, "error"), ("scalar", v[0], "error"), ("one more", v + v[-1:], "error"),
                ("one less", v[:-1], "error"), ("str member", v[:-1] + (str(v[-1]),), "error"),
                ("nan", (float("nan"),) + v[1:], "error"), ("list", list(v), "any")]
        for x in (-1.0, 1.0, math.inf):
            out += [(f"member {i}={x}", v[:i] + (x,) + v[i + 1:], "any" if valid(x) else "error")
                    for i, valid in enumerate(spec.valid)]
    elif isinstance(spec, Container):
        out += [("None", None, "error" if spec.required else "any"), ("array", lambda v: v[0], "error"),
                ("str", "params", "error"), ("shorter", lambda v: v[:-1], "error"),
                ("dict", lambda v: {i: a for i, a in enumerate(v)}, "error"), ("tuple", lambda v: tuple(v), "any"),
                ("int", 3, "error")]
    elif isinstance(spec, Weights):
        out += [("None", None, "any"), ("list", lambda v: v.tolist(), "any"), ("int64", lambda v: v.astype(np.int64),
                                                                           "any"),
                ("scalar", 2.0, "any"), ("float32", lambda v: v.astype(np.float32), "any"),
                ("bool", lambda v: v > 1, "error"), ("True", True, "error"),
                ("complex", lambda v: v.astype(np.complex64), "error"), ("str", lambda v: v.astype(str), "error"),
                ("NaN", lambda v: np.where(np.arange(v.size) == 0, np.nan, v), "error"),
                ("inf", lambda v: np.where(np.arange(v.size) == 0, np.inf, v), "error"),
                ("negative", lambda v: np.where(np.arange(v.size) == 0, -1.0, v), "error"),
                ("all zero", lambda v: np.zeros_like(v), "error"), ("shorter", lambda v: v[:-1], "error"),
                ("2-d", lambda v: v[:, None], "error")]
    elif isinstance(spec, Labels):
        out += label_mutations(spec, value, args)
    elif isinstance(spec, Arr):
        out += array_mutations(spec, value, args, key)
    elif isinstance(spec, Codes):
        layout = "error" if value.size > 1 else "any"
        out += [("None", None, "error"), ("list", lambda v: v.tolist(), "error"), ("scalar", 1, "error"),
                ("float32", lambda v: v.astype(np.float32), "error"), ("int8", lambda v: v.astype(np.int8), "error"),
                ("uint16", lambda v: v.astype(np.uint16), "error"), ("bool", lambda v: v.astype(bool), "error"),
                ("wrong shape", drop_last, "error"), ("2-d", lambda v: v.reshape(1, -1), "error"),
                ("strided", strided, layout), ("read-only", read_only, "error"),
                ("masked", lambda v: np.ma.masked_array(v), "error"), ("all 255", lambda v: np.full_like(v, 255), "any")]
        out += [(f"shares memory with {k}", ("alias", k), "error") for k in spec.alias if value.size]
    elif isinstance(spec, Absmax):
        layout = "error" if value.size > 1 else "any"
        out += [("None", None, "error"), ("list", lambda v: v.tolist(), "error"),
                ("float64", lambda v: v.astype(np.float64), "error"), ("float16", lambda v: v.astype(np.float16), "error"),
                ("one more", lambda v: np.append(v, np.float32(1)), "error"), ("2-d", lambda v: v.reshape(1, -1), "error"),
                ("strided", strided, layout), ("read-only", read_only, "error"),
                ("misaligned", misaligned, "error" if value.size else "any"),
                ("big-endian", lambda v: v.astype(v.dtype.newbyteorder(">")), "error"),
                ("NaN", lambda v: np.full_like(v, np.nan), "any"), ("negative", lambda v: -v - 1, "any"),
                ("huge", lambda v: np.full_like(v, 3e38), "any")]
        out += [(f"shares memory with {k}", ("alias", k), "error") for k in spec.alias if value.size]
    elif isinstance(spec, ScalarState):
        out += [("None", None, "error"), ("float", 0.5, "error"), ("list", lambda v: [float(v)], "error"),
                ("1-element 1-d", lambda v: v.reshape(1), "any"), ("two elements", lambda v: np.resize(v, 2), "error"),
                ("empty", lambda v: v.reshape(1)[:0], "error"), ("float16", lambda v: v.astype(np.float16), "error"),
                ("other float", lambda v: v.astype(np.float64 if v.dtype == np.float32 else np.float32), "any"),
                ("int64", lambda v: v.astype(np.int64), "error"), ("bool", lambda v: v.astype(bool), "error"),
                ("big-endian", lambda v: v.astype(v.dtype.newbyteorder(">")), "error"),
                ("read-only", read_only, "error"), ("misaligned", misaligned, "error"),
                ("masked", lambda v: np.ma.masked_array(v), "error"), ("NaN", lambda v: np.full_like(v, np.nan), "any")]
        for other_key in spec.alias:
            if args[other_key].nbytes >= value.itemsize:
                out.append((f"shares memory with {other_key}", ("alias", other_key), "error"))
    return out


def misaligned(a):
    raw = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    return out


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def strided(a):
    wide = np.repeat(a, 2, axis=-1)
    return wide[..., ::2]


def array_mutations(spec, a, args, key):
    strict = spec.role in ("written", "grad")
    # Arrays of 0 or 1 elements are contiguous whatever their strides, and empty ones share no memory.
    layout = "error" if strict and a.size > 1 else "any"
    other = np.float64 if a.dtype == np.float32 else np.float32
    out = [("None", None, "any" if spec.optional else "error"), ("list", lambda v: v.tolist(), "error"),
           ("scalar", 1.0, "error"),
           ("0-d", lambda v: np.array(1.0, v.dtype), "any" if spec.any_ndim else "error"), # float16 is a storage type of optimizer buffers (valid in some combinations only)
           ("float16", lambda v: v.astype(np.float16), "any" if strict else "error"),
           ("int16", lambda v: v.astype(np.int16), "error"),
           ("bool", lambda v: v.astype(bool), "error"), ("complex64", lambda v: v.astype(np.complex64), "error"),
           ("object", lambda v: v.astype(object), "error"), ("int64", lambda v: v.astype(np.int64), "error"),
           ("uint8", lambda v: v.astype(np.uint8), "error"),
           ("big-endian", lambda v: v.astype(v.dtype.newbyteorder(">")), "error"),
           ("masked", lambda v: np.ma.masked_array(v), "error"),
           ("other float", lambda v: v.astype(other), "error" if spec.partnered else "any"),
           ("strided", strided, layout),
           ("reversed", lambda v: v[..., ::-1], layout if a.ndim and a.shape[-1] > 1 else "any"),
           ("read-only", read_only, "error" if spec.role == "written" else "any"),
           ("misaligned", misaligned, "error" if strict and a.size else "any"),
           ("with NaN", lambda v: np.where(np.arange(v.size).reshape(v.shape) == 0, np.nan, v).astype(v.dtype), "any")]
    if a.ndim == 2:
        out.append(("matrix", lambda v: np.matrix(v), "error"))
        out.append(("fortran", lambda v: np.asfortranarray(v), layout if min(a.shape) > 1 else "any"))
    if spec.shrink is not None:
        out.append(("wrong shape", spec.shrink, "error"))
    for other_key in spec.alias if a.size else ():
        out.append((f"shares memory with {other_key}", ("alias", other_key), "error"))
    return out


def label_mutations(spec, y, args):
    C = spec.C
    out = [("None", None, "error"), ("list", lambda v: v.tolist(), "any"), ("int32", lambda v: v.astype(np.int32), "any"),
           ("uint8", lambda v: v.astype(np.uint8), "any"), ("read-only", read_only, "any"),
           ("misaligned", misaligned, "any"), ("strided", strided, "any"),
           ("fractional", lambda v: v + 0.5, "error"), ("whole floats", lambda v: v.astype(float), "error"),
           ("== C", lambda v: np.where(np.arange(v.size) == v.size - 1, C, v), "error"),
           ("negative", lambda v: np.where(np.arange(v.size) == 0, -1, v), "error"),
           ("2**62", lambda v: np.where(np.arange(v.size) == 0, 2**62, v), "error"),
           ("uint64 > int64", lambda v: np.where(np.arange(v.size) == 0, np.uint64(2**63 + 1), v.astype(np.uint64)),
            "error"),
           ("bool", lambda v: v > 0, "error"), ("str", lambda v: v.astype(str), "error"),
           ("object", lambda v: v.astype(object), "error"), ("2-D", lambda v: v.reshape(1, -1), "error"),
           ("shorter", lambda v: v[:-1], "error"), ("masked", lambda v: np.ma.masked_array(v), "error"),
           ("0-d", lambda v: np.array(0), "error"), ("list with a float", lambda v: v.tolist()[:-1] + [1.5], "error")]
    if spec.alias is not None:
        out.append((f"shares memory with {spec.alias}", ("alias-labels", spec.alias), "error"))
    return out


# ------------------------------------------------------------------- targets
# Each target: rng -> (call(args), args, specs, written keys). `args` maps names
# (or "params[1]" for an item of a list) to valid values.

TARGETS = {}


def target(fn):
    TARGETS[fn.__name__.lstrip("_")] = fn
    return fn


def arrays_like(rng, n, dtype, keys):
    return {k: rng.uniform(0.5, 1.5, n).astype(dtype) for k in keys}


def size_and_dtype(rng):
    n = int(rng.choice([0, 1, 7, 33, 70_000], p=[0.05, 0.1, 0.4, 0.4, 0.05]))
    return n, (np.float32 if rng.random() < 0.5 else np.float64)


def drop_last(v):
    return v[..., :-1] if v.size else np.zeros(v.shape[:-1] + (3,), v.dtype)


def step_spec():
    return Int(lambda i, a: i >= 1)


@target
def _sgd(rng):
    n, dt = size_and_dtype(rng)
    a = arrays_like(rng, n, dt, ("p", "g"))
    args = dict(a, lr=0.1, weight_decay=0.0)
    specs = dict(p=Arr("written", drop_last), g=Arr("grad", drop_last, alias=("p",)), lr=Real(nonneg),
                 weight_decay=Real(nonneg))
    return (lambda x: fastopt.sgd(**x)), args, specs, ["p"]


@target
def _sgd_momentum(rng):
    n, dt = size_and_dtype(rng)
    a = arrays_like(rng, n, dt, ("p", "g", "buf"))
    args = dict(a, lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0)
    specs = dict(p=Arr("written", drop_last), g=Arr("grad", drop_last, alias=("p", "buf")),
                 buf=Arr("written", drop_last, alias=("p",)), lr=Real(nonneg), momentum=Real(nonneg),
                 nesterov=Flag(), weight_decay=Real(nonneg))
    return (lambda x: fastopt.sgd_momentum(**x)), args, specs, ["p", "buf"]


# The rules of the registry: a target per elementwise rule (SGD's two functions and
# Adafactor's factored state are the hand-written targets around these), its
# hyperparameters' validity from their ranges and what the rule refuses beyond them.
RULES = {r["name"]: r for r in _core.rules()}
RANGE_VALID = {"nonnegative": nonneg, "positive": positive, "[0, 1)": unit, "[0, 1]": closed_unit,
               "nonpositive": lambda x: x <= 0 and math.isfinite(x), "optional nonnegative": nonneg, "optional positive": positive}
RULE_VALID = {("rprop", "etaminus"): lambda x: 0 < x < 1, ("rprop", "etaplus"): lambda x: 1 < x < math.inf,
              ("adafactor", "d"): lambda x: x >= 1 and math.isfinite(x)}


def hyper_spec(rule, h):
    if h["range"] == "flag":
        return Flag()
    return Real(RULE_VALID.get((rule, h["name"]), RANGE_VALID[h["range"]]),
                optional=h["range"].startswith("optional"))


def all_options_on(rule):
    """The rule's hyperparameters with every option on that the registry accepts together
    (every optional state buffer in use; numbers that default to 0 at 0.1)."""
    hypers = {h["name"]: h["default"] for h in RULES[rule]["hypers"]}
    nonzero = {h["name"]: 0.1 for h in RULES[rule]["hypers"] if h["range"] != "flag" and h["default"] == 0.0}
    flags = {h["name"]: True for h in RULES[rule]["hypers"] if h["range"] == "flag" and h["name"] != "maximize"}
    for drop in [None, *nonzero]:
        candidate = {**hypers, **{k: v for k, v in nonzero.items() if k != drop}, **flags}
        try:
            _core.check_hyperparameters(rule, candidate)
            return candidate
        except ValueError:
            continue
    return hypers


def _rule_step(rng, name):
    rule = RULES[name]
    n, dt = size_and_dtype(rng)
    scalar = np.float64 if rng.random() < 0.5 else np.float32
    per_step = {h["name"] for h in rule["hypers"] if h["per_step"] or h["name"] == "lr"}
    hypers = {k: v for k, v in all_options_on(name).items() if k in per_step}
    needed = _core.needed_states(name, hypers)
    args = dict(arrays_like(rng, n, dt, ("p", "g")), **hypers)
    specs = {"p": Arr("written", drop_last), **{h["name"]: hyper_spec(name, h) for h in rule["hypers"]
                                                if h["name"] in hypers}}
    written = ["p"]
    for s in rule["states"]:
        if s["name"] not in needed:
            continue
        if s["shape"] == "tensor":  # one number: a mid value (NAdam's mu_product must stay below 1)
            args[s["arg"]] = np.array(0.5, scalar)
            specs[s["arg"]] = ScalarState(alias=(written[-1],))
        else:
            args[s["arg"]] = rng.uniform(0.5, 1.5, n).astype(dt)
            specs[s["arg"]] = Arr("written", drop_last, alias=(written[-1],))
        written.append(s["arg"])
    specs["g"] = Arr("grad", drop_last, alias=tuple(written[1:2]) or ("p",))
    if rule["uses_step"]:
        args["step"], specs["step"] = 3, step_spec()
    return (lambda x: getattr(fastopt, name)(**x)), args, specs, written


for _name, _rule in RULES.items():
    if _name != "sgd" and all(s["shape"] in ("elementwise", "tensor") for s in _rule["states"]):
        TARGETS[_name] = (lambda name: lambda rng: _rule_step(rng, name))(_name)


def _rule_step_8bit(rng, name):
    """A step of a rule with 8-bit state (uint8 codes and their absmax per state buffer), through
    the native step the classes use."""
    rule = RULES[name]
    n = int(rng.choice([0, 1, 7, 300, 70_000], p=[0.05, 0.1, 0.4, 0.4, 0.05]))
    per_step = {h["name"] for h in rule["hypers"] if h["per_step"] or h["name"] == "lr"}
    hypers = {k: v for k, v in all_options_on(name).items() if k in per_step}
    needed = _core.needed_states(name, hypers)
    args = dict(arrays_like(rng, n, np.float32, ("p", "g")), **hypers)
    specs = {"p": Arr("written", drop_last), **{h["name"]: hyper_spec(name, h) for h in rule["hypers"]
                                                if h["name"] in hypers}}
    written, codes = ["p"], []
    states = {}
    for s in rule["states"]:
        if s["name"] not in needed:
            continue
        arg = s["arg"]
        if s["shape"] == "tensor":
            args[arg], specs[arg] = np.array(0.5, np.float32), ScalarState(alias=("p",))
        else:
            args[arg], args[arg + "_absmax"] = _core.quantize_blockwise(rng.uniform(0.5, 1.5, n).astype(np.float32),
                                                                       s["map8"] == "signed")
            specs[arg] = Codes(alias=tuple(codes[-1:]))
            specs[arg + "_absmax"] = Absmax(alias=("p",))
            codes.append(arg)
            written.append(arg + "_absmax")
        states[arg] = s["shape"]
        written.append(arg)
    specs["g"] = Arr("grad", drop_last, alias=("p",))
    if rule["uses_step"]:
        args["step"], specs["step"] = 3, step_spec()

    def call(x):
        arrays = {k: x[k] for k in ("p", "g", *states, *(a + "_absmax" for a, shape in states.items()
                                                        if shape != "tensor"))}
        _core.step(name, arrays, {k: x[k] for k in hypers}, x.get("step"), None)
    return call, args, specs, written


for _name, _rule in RULES.items():
    if _rule["stores_8bit"]:
        TARGETS[_name + "_8bit"] = (lambda name: lambda rng: _rule_step_8bit(rng, name))(_name)


@target
def _quantize_blockwise(rng):
    n = int(rng.choice([0, 1, 300, 70_000]))
    args = {"x": rng.standard_normal(n).astype(np.float32), "signed": bool(rng.random() < 0.5)}
    specs = {"x": Arr("input", drop_last, partnered=False, any_ndim=True), "signed": Flag()}
    return (lambda x: _core.quantize_blockwise(x["x"], x["signed"])), args, specs, []


@target
def _adafactor(rng):
    dt = np.float32 if rng.random() < 0.5 else np.float64
    m, n = int(rng.choice([1, 3, 70])), int(rng.choice([1, 5, 33]))
    a = {k: rng.uniform(0.5, 1.5, (m, n)).astype(dt) for k in ("p", "g")}
    args = dict(a, row_var=np.zeros((m, 1), dt), col_var=np.zeros((1, n), dt), variance=None, step=2, lr=1e-2,
                beta2_decay=-0.8, eps1=None, eps2=1e-3, d=1.0, weight_decay=0.1)
    specs = dict(p=Arr("written", drop_last), g=Arr("grad", drop_last, alias=("row_var", "col_var")),
                 row_var=Arr("written", drop_last, alias=("p",)), col_var=Arr("written", drop_last, alias=("row_var",)),
                 step=step_spec(), lr=Real(nonneg), beta2_decay=Real(lambda x: x <= 0 and math.isfinite(x)),
                 eps2=Real(nonneg), d=Real(lambda x: x >= 1 and math.isfinite(x)), weight_decay=Real(nonneg))
    return (lambda x: fastopt.adafactor(**x)), args, specs, ["p", "row_var", "col_var"]


@target
def _lbfgs_direction(rng):
    n, dt = size_and_dtype(rng)
    m = int(rng.integers(1, 4))
    a = arrays_like(rng, n, dt, ("g", "d"))
    s_list = [rng.uniform(0.5, 1.5, n).astype(dt) for _ in range(m)]
    y_list = [rng.uniform(0.5, 1.5, n).astype(dt) for _ in range(m)]
    args = dict(a, s=s_list, y=y_list, rho=[0.5] * m, h=1.0)
    specs = dict(g=Arr("grad", drop_last, alias=("d",)), d=Arr("written", drop_last),
                 s=Container(names=("s", "y", "rho")), y=Container(names=("s", "y", "rho")),
                 rho=Container(names=("s", "y", "rho")),
                 **{"s[0]": Arr("grad", drop_last, alias=("d",), names=("s", "d")),
                    "y[0]": Arr("grad", drop_last, alias=("d",), names=("y", "d"))},
                 h=Real(math.isfinite))
    return (lambda x: _core.lbfgs_direction(**x)), args, specs, ["d"]


def drop_column(v):
    return v[:, :-1]


def drop_row(v):
    return v[:-1]


def _linear_loss(rng, fn, svm):
    N, D, C = int(rng.choice([1, 5, 300])), 4, 3
    dt = np.float32 if rng.random() < 0.5 else np.float64
    args = dict(W=rng.standard_normal((D, C)).astype(dt), X=rng.standard_normal((N, D)).astype(dt),
                y=rng.integers(0, C, N), reg=0.1, penalty="elastic_net", l1_ratio=0.5)
    specs = dict(W=Arr("input", drop_row), X=Arr("input", drop_column), y=Labels(C), reg=Real(nonneg),
                 penalty=Choice(("l2", "l1", "elastic_net")), l1_ratio=Real(closed_unit))
    if svm:
        args["delta"] = 1.0
        specs["delta"] = Real(nonneg)
    return (lambda x: fn(**x)), args, specs, []


@target
def _softmax_loss(rng):
    return _linear_loss(rng, fastopt.softmax_loss, False)


@target
def _svm_loss(rng):
    return _linear_loss(rng, fastopt.svm_loss, True)


def _scores_loss(rng, fn, hinge):
    N, C = int(rng.choice([1, 9, 2000])), 4
    dt = np.float32 if rng.random() < 0.5 else np.float64
    args = dict(scores=rng.standard_normal((N, C)).astype(dt), y=rng.integers(0, C, N))
    specs = dict(scores=Arr("input", None, partnered=False), y=Labels(C))
    if hinge:
        args["delta"] = 1.0
        specs["delta"] = Real(nonneg)
    return (lambda x: fn(**x)), args, specs, []


@target
def _softmax_cross_entropy(rng):
    return _scores_loss(rng, fastopt.softmax_cross_entropy, False)


@target
def _multiclass_hinge(rng):
    return _scores_loss(rng, fastopt.multiclass_hinge, True)


@target
def _penalty(rng):
    args = dict(W=rng.standard_normal((5, 3)), reg=0.1, kind="elastic_net", l1_ratio=0.3)
    specs = dict(W=Arr("input", None, partnered=False, any_ndim=True), reg=Real(nonneg),
                 kind=Choice(("l2", "l1", "elastic_net")),
                 l1_ratio=Real(closed_unit))
    return (lambda x: penalty(**x)), args, specs, []


@target
def _linear_scores(rng):  # the estimators' scores (predict, early stopping's validation)
    N, D, C = int(rng.choice([1, 5, 300])), 4, 3
    dt = np.float32 if rng.random() < 0.5 else np.float64
    args = dict(W=rng.standard_normal((D, C)).astype(dt), X=rng.standard_normal((N, D)).astype(dt))
    specs = dict(W=Arr("input", drop_row), X=Arr("input", drop_column))
    return (lambda x: _core.linear_scores(**x)), args, specs, []


def _class_options(rule):
    """The class's name, and the class, its arguments with every option on and their specs
    (torch's tuples, such as betas, as tuples)."""
    api = parse_api(RULES[rule])
    cls = getattr(optim, api.class_name)
    grouped = {h for members in api.tuples.values() for h in members}
    hypers = all_options_on(rule)
    hyper_specs = {h["name"]: hyper_spec(rule, h) for h in RULES[rule]["hypers"]}
    values = {k: v for k, v in hypers.items() if k not in grouped and k != "maximize"}
    specs = {k: hyper_specs[k] for k in values}
    for key, members in api.tuples.items():
        values[key] = tuple(hypers[h] for h in members)
        specs[key] = RealTuple((key, *members), tuple(hyper_specs[h].valid for h in members))
    return cls.__name__, (cls, values, specs)


OPTIMIZERS = dict(_class_options(rule) for rule in RULES
                  if all(s["shape"] in ("elementwise", "tensor") for s in RULES[rule]["states"]))


def _optimizer_step(rng, name):
    cls, hyper, hyper_specs = OPTIMIZERS[name]
    n, dt = size_and_dtype(rng)
    params = [rng.uniform(0.5, 1.5, n).astype(dt) for _ in range(2)]
    grads = [rng.uniform(-1, 1, n).astype(dt) for _ in range(2)]
    args = {"params": params, "grads": grads, **hyper, "skip_if_nonfinite": False}
    specs = {"params": Container(), "grads": Container(), "params[1]": Arr("written", drop_last, alias=("params[0]",)),
             "grads[1]": Arr("grad", drop_last, alias=("params[0]",)), "skip_if_nonfinite": Flag(), **hyper_specs}

    def call(x):
        opt = cls(x["params"], **{k: x[k] for k in hyper})
        opt.step(x["grads"], skip_if_nonfinite=x["skip_if_nonfinite"])
    return call, args, specs, ["params"]


for _name in OPTIMIZERS:
    TARGETS[f"optim.{_name}"] = (lambda name: lambda rng: _optimizer_step(rng, name))(_name)


@target
def _optim_param_groups(rng):
    """Two groups at construction and a third added with add_param_group, stepped together."""
    n, dt = size_and_dtype(rng)
    params = [rng.uniform(0.5, 1.5, n).astype(dt) for _ in range(2)]
    grads = [rng.uniform(-1, 1, n).astype(dt) for _ in range(3)]
    args = {"params": params, "grads": grads, "added": rng.uniform(0.5, 1.5, n).astype(dt), "lr": 0.05,
            "weight_decay": 0.01, "momentum": 0.5, "dampening": 0.0}
    specs = {"grads": Container(), "params[1]": Arr("written", drop_last, alias=("params[0]",),
                                                    names=("params[1]", "param_groups[1]['params'][0]")),
             "grads[2]": Arr("grad", drop_last, alias=("params[0]", "added")),
             "added": Arr("written", drop_last, alias=("params[1]",),
                          names=("params[2]", "param_groups[2]['params'][0]", "param_groups[1]['params'][0]")),
             "lr": Real(nonneg), "weight_decay": Real(nonneg), "momentum": Real(nonneg),
             "dampening": Real(closed_unit)}

    def call(x):
        opt = optim.SGD([{"params": x["params"][:1]}, {"params": x["params"][1:], "lr": 0.1, "nesterov": True}],
                        lr=0.01, momentum=0.9)
        opt.add_param_group({"params": [x["added"]], "lr": x["lr"], "weight_decay": x["weight_decay"],
                             "momentum": x["momentum"], "dampening": x["dampening"]})
        opt.step(x["grads"])
        opt.step(x["grads"])
    return call, args, specs, ["params", "added"]


@target
def _optim_offload_step(rng):
    """offload_step in master-weight mode: float32 parameters, float16 gradients and copies."""
    n = int(rng.choice([0, 1, 7, 33, 2000], p=[0.05, 0.1, 0.4, 0.4, 0.05]))
    params = [rng.uniform(0.5, 1.5, n).astype(np.float32) for _ in range(2)]
    args = {"params": params, "grads": [rng.uniform(-1, 1, n).astype(np.float16) for _ in range(2)],
            "param_copies": [p.astype(np.float16) for p in params], "grad_scale": 0.5, "max_norm": 1.0}
    specs = {"params": Container(), "grads": Container(), "param_copies": Container(False, names=("param_copies",)),
             "params[1]": Arr("written", drop_last, alias=("params[0]",)),
             "grads[1]": Arr("grad", drop_last, alias=("param_copies[0]",), partnered=False),
             # None: that parameter has no copy (valid)
             "param_copies[1]": Arr("written", drop_last, alias=("param_copies[0]",), names=("param_copies",),
                                    optional=True),
             "grad_scale": Real(positive), "max_norm": Real(positive, optional=True)}

    def call(x):
        opt = optim.Adam(x["params"], lr=1e-3, param_copies=x["param_copies"])
        opt.offload_step(x["grads"], grad_scale=x["grad_scale"], max_norm=x["max_norm"])
    return call, args, specs, ["params", "param_copies"]


@target
def _optim_low_precision(rng):
    """float16 parameters with float32 state, stochastic rounding with a seed above 2**63."""
    n = int(rng.choice([0, 1, 7, 33, 2000], p=[0.05, 0.1, 0.4, 0.4, 0.05]))
    params = [rng.uniform(0.5, 1.5, n).astype(np.float16) for _ in range(2)]
    args = {"params": params, "grads": [rng.uniform(-1, 1, n).astype(np.float32) for _ in range(2)], "lr": 0.01,
            "betas": (0.9, 0.99)}
    # params[1] of another float dtype is fine: each array has its own (float32 with float32 gradients)
    specs = {"params": Container(), "grads": Container(),
             "params[1]": Arr("written", drop_last, alias=("params[0]",), partnered=False),
             "grads[1]": Arr("grad", drop_last, partnered=False), "lr": Real(nonneg), "betas": RealTuple()}

    def call(x):
        opt = optim.Lion(x["params"], lr=x["lr"], betas=x["betas"], stochastic_rounding=True, seed=2**63 + 5)
        opt.step(x["grads"])
    return call, args, specs, ["params"]


@target
def _load_state_dict(rng):
    n, dt = size_and_dtype(rng)
    p = rng.uniform(0.5, 1.5, n).astype(dt)
    opt = optim.Adam([p], lr=0.01, amsgrad=True)
    opt.step([np.ones_like(p)])
    sd = opt.state_dict()
    group, entry = sd["param_groups"][0], sd["state"][0]
    args = {"lr": group["lr"], "betas": group["betas"], "eps": group["eps"], "weight_decay": group["weight_decay"],
            "amsgrad": group["amsgrad"], "step": entry["step"], "exp_avg": entry["exp_avg"]}
    specs = {"lr": Real(nonneg), "betas": RealTuple(), "eps": Real(positive), "weight_decay": Real(nonneg),
             "amsgrad": Flag(), "step": Int(lambda i, a: i >= 0),
             "exp_avg": Arr("input", drop_last, names=("exp_avg",))}
    # exp_avg of the saved state must be an ndarray of p's shape and dtype: a layout change is fine
    specs["exp_avg"].partnered = True
    before = opt.state_dict()

    def call(x):
        saved = opt.state_dict()
        saved["param_groups"][0].update({k: x[k] for k in ("lr", "betas", "eps", "weight_decay", "amsgrad")})
        saved["state"][0].update(step=x["step"], exp_avg=x["exp_avg"])
        try:
            opt.load_state_dict(saved)
        except Exception:
            now = opt.state_dict()   # nothing changed
            assert now["param_groups"] == before["param_groups"] and opt.step_count == 1
            for k in before["state"][0]:
                if k != "step":
                    assert np.array_equal(now["state"][0][k], before["state"][0][k], equal_nan=True)
            raise
    return call, args, specs, []


@target
def _train_linear(rng):
    N, D, C = int(rng.choice([5, 50, 400])), 4, 3
    dt = np.float32 if rng.random() < 0.5 else np.float64
    W = np.zeros((D, C), dt)
    opt = optim.SGD([W], lr=0.1, momentum=0.9)
    X = rng.standard_normal((N, D)).astype(dt)
    args = dict(optimizer=opt, X=X, y=rng.integers(0, C, N), loss="svm", reg=1e-3, penalty="l2", l1_ratio=0.5,
                delta=1.0, batch_size=16, epochs=2, rng=0)
    cap = _core.max_updates_per_call

    def epochs_ok(i, a):
        return i >= 1 and i * -(-N // max(1, a["batch_size"])) <= cap

    def batch_ok(i, a):
        return i >= 1 and a["epochs"] * -(-N // i) <= cap

    specs = dict(X=Arr("input", drop_column, alias=("W",)), y=Labels(C, alias="W"), loss=Choice(("softmax", "svm")),
                 reg=Real(nonneg), penalty=Choice(("l2", "l1", "elastic_net")), l1_ratio=Real(closed_unit),
                 delta=Real(nonneg), batch_size=Int(batch_ok), epochs=Int(epochs_ok), rng=Seed(names=("seed", "rng")),
                 optimizer=Choice((), names=("optimizer",)))
    args["W"] = W   # for aliasing only; not an argument of the call
    state = opt.state["momentum_buffer"][0]

    def call(x):
        kwargs = {k: v for k, v in x.items() if k not in ("optimizer", "X", "y", "W")}
        try:
            train_linear(x["optimizer"], x["X"], x["y"], **kwargs)
        except Exception:
            assert opt.step_count == 0 and not W.any() and not state.any()
            raise
    return call, args, specs, ["W"]


@target
def _minibatch_indices(rng):
    args = dict(n=50, batch_size=16, count=3, sampling="epochs", rng=1)
    cap = _core.max_indices_per_call

    def total_ok(a):
        per = a["n"] if a["sampling"] == "epochs" else a["batch_size"]
        return a["count"] * per <= cap

    specs = dict(n=Int(lambda i, a: i >= 1 and total_ok(dict(a, n=i))),
                 batch_size=Int(lambda i, a: i >= 1 and total_ok(dict(a, batch_size=i))),
                 count=Int(lambda i, a: i >= 1 and total_ok(dict(a, count=i))),
                 sampling=Choice(("epochs", "with_replacement")), rng=Seed(names=("seed", "rng")))
    return (lambda x: minibatch_indices(**x)), args, specs, []


@target
def _set_num_threads(rng):
    return ((lambda x: fastopt.set_num_threads(x["n"])), {"n": 2},
            {"n": Int(lambda i, a: 1 <= i <= _core.max_threads)}, [])


@target
def _set_isa(rng):
    return ((lambda x: fastopt.set_isa(x["name"])), {"name": "baseline"},
            {"name": Choice(tuple(fastopt.available_isas()), names=("name", "isa"))}, [])


def _estimator(rng, cls):
    X = rng.standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    params = dict(optimizer="adam", learning_rate=0.01, reg=1e-4, C=None, penalty="l2", l1_ratio=0.5, batch_size=16,
                  max_iter=2, solver="sgd", tol=1e-6, random_state=0, fit_intercept=True, n_iter_no_change=3,
                  early_stopping=False, validation_fraction=0.2, warm_start=False)
    specs = dict(optimizer=Choice(tuple(linear.OPTIMIZERS)), learning_rate=Real(nonneg), reg=Real(nonneg),
                 C=Real(positive, optional=True),
                 penalty=Choice(("l2", "l1", "elastic_net")), l1_ratio=Real(closed_unit),
                 batch_size=Int(lambda i, a: i >= 1 and a["max_iter"] * -(-60 // i) <= _core.max_updates_per_call),
                 max_iter=Int(lambda i, a: i >= 1 and i * -(-60 // a["batch_size"]) <= _core.max_updates_per_call),
                 solver=Choice(("auto", "sgd", "lbfgs")), tol=Real(nonneg), random_state=Seed(names=("random_state",)),
                 fit_intercept=Flag(), n_iter_no_change=Int(lambda i, a: i >= 1), early_stopping=Flag(),
                 validation_fraction=Real(lambda x: 0 < x < 1), warm_start=Flag(),
                 sample_weight=Weights())
    args = dict(params, X=X, y=y, sample_weight=rng.uniform(0.5, 2.0, 60))

    def call(x):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning after max_iter = 2
            model = cls(**{k: x[k] for k in params}).fit(x["X"], x["y"], sample_weight=x["sample_weight"])
            if hasattr(model, "predict_log_proba"):
                model.predict_log_proba(x["X"])
    return call, args, specs, []


@target
def _SoftmaxClassifier(rng):
    return _estimator(rng, SoftmaxClassifier)


@target
def _LinearSVMClassifier(rng):
    return _estimator(rng, LinearSVMClassifier)


@target
def _schedules(rng):
    args = dict(base_lr=0.1, total_steps=100, min_lr=0.0)
    specs = dict(base_lr=Real(nonneg), total_steps=Int(lambda i, a: i >= 1), min_lr=Real(nonneg))
    return (lambda x: schedules.cosine(**x)(5)), args, specs, []


# -------------------------------------------------------------------- a case

def make_case(seed):
    """(target name, argument, mutation label, expect, call, args, read-only array keys)."""
    rng = np.random.default_rng(BASE_SEED + seed)
    name = sorted(TARGETS)[seed % len(TARGETS)]
    call, args, specs, written = TARGETS[name](rng)
    key = sorted(specs)[int(rng.integers(len(specs)))]
    spec = specs[key]
    if isinstance(spec, Choice) and not spec.options and key == "optimizer":
        options = [("None", None, "error"), ("str", "adam", "error"), ("class", optim.Adam, "error")]
    else:
        options = mutations(spec, lookup(args, key), args, key)
    label, value, expect = options[int(rng.integers(len(options)))]
    args = dict(args)
    if isinstance(value, tuple) and value and value[0] in ("alias", "alias-labels"):
        source = lookup(args, value[1])
        current = lookup(args, key)
        if value[0] == "alias-labels":
            value = source.reshape(-1).view(np.uint8)[:current.size * 8].view(np.int64) \
                if source.nbytes >= current.size * 8 else source
        elif current.shape == source.shape and current.dtype == source.dtype:
            value = source
        elif "y" not in args and current.dtype == source.dtype and current.ndim > 0:
            # a state of its own shape over the first bytes of another array (Adafactor's row and column
            # vectors), or the whole of a smaller one
            fits = current.nbytes <= source.nbytes
            value = source.reshape(-1)[:current.size].reshape(current.shape) if fits else source
        elif current.ndim == 0:  # a per-tensor number over the first bytes of an array
            value = source.reshape(-1).view(np.uint8)[:current.itemsize].view(current.dtype).reshape(())
        else:   # X over W's memory: the rows of X that fit
            flat = source.reshape(-1).view(np.uint8)
            cols = current.shape[1]
            rows = max(1, flat.size // (cols * current.itemsize))
            value = flat[:rows * cols * current.itemsize].view(current.dtype).reshape(rows, cols)
            if rows != len(args.get("y", [])):
                args["y"] = np.zeros(rows, np.int64)
    elif callable(value) and not isinstance(value, (np.generic, type)):
        value = value(lookup(args, key))
    store(args, key, value)
    names = spec.names or (key,)
    return name, key, label, expect, call, args, written, names


def lookup(args, key):
    if "[" in key:
        base, index = key[:-1].split("[")
        return args[base][int(index)]
    return args[key]


def store(args, key, value):
    if "[" in key:
        base, index = key[:-1].split("[")
        items = list(args[base])
        items[int(index)] = value
        args[base] = items
    else:
        args[key] = value


def arrays_in(args):
    """(path, array) for every ndarray among the arguments, lists included."""
    out = []
    for k, v in args.items():
        if isinstance(v, np.ndarray):
            out.append((k, v))
        elif isinstance(v, (list, tuple)):
            out += [(f"{k}[{i}]", a) for i, a in enumerate(v) if isinstance(a, np.ndarray)]
    return out


def snapshot(a):
    try:
        return a.tobytes(), a.shape
    except Exception:
        return None


def run_case(seed):
    previous = (fastopt.get_num_threads(), fastopt.get_isa())
    name, key, label, expect, call, args, written, names = make_case(seed)
    arrays = arrays_in(args)
    before = {path: snapshot(a) for path, a in arrays}
    result = dict(seed=seed, target=name, arg=key, mutation=label, expect=expect, raised=False)
    try:
        call(args)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        result.update(raised=True, type=type(exc).__name__, message=message[:300],
                      named=any(re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", message) for n in names))
    except Exception as exc:   # anything else is a failure of the contract
        result.update(raised=True, type=type(exc).__name__, message=(str(exc) or traceback.format_exc())[-300:],
                      named=False)
    finally:
        fastopt.set_num_threads(previous[0])
        fastopt.set_isa(previous[1])
    changed = []
    for path, a in arrays:
        base = path.split("[")[0]
        if result["raised"] or base not in written:
            if snapshot(a) != before[path]:
                changed.append(path)
    result["changed"] = changed
    return result


def main(argv):
    start, stop = int(argv[1]), int(argv[2])
    for seed in range(start, stop):
        print(json.dumps({"start": seed}), flush=True)
        print(json.dumps(run_case(seed)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
