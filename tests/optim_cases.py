"""The optimizer × option table the tests run over, and helpers to drive the
fast and reference functions with identical inputs."""
from dataclasses import dataclass, field

import numpy as np

import fastopt
import registry_cases
from fastopt import reference


@dataclass(frozen=True)
class Case:
    id: str
    name: str                      # function name in fastopt and fastopt.reference
    positional: tuple = ()         # state buffers passed positionally after p, g
    keyword: tuple = ()            # state buffers passed by keyword
    kwargs: dict = field(default_factory=dict)
    uses_step: bool = False

    def fast(self):
        return getattr(fastopt, self.name)

    def ref(self):
        return getattr(reference, self.name)

    def state_names(self):
        return self.positional + self.keyword


def _registry_cases():
    """A case per option set of each elementwise rule (tests/registry_cases.py); SGD's
    functions (sgd, sgd_momentum) are the hand-written cases below."""
    out = []
    for name in registry_cases.RULES:
        if name == "sgd" or not registry_cases.elementwise(name):
            continue
        for hypers in registry_cases.option_sets(name):
            states = registry_cases.states(name, hypers)
            out.append(Case(f"{name}-{registry_cases.set_id(hypers)}", name,
                            tuple(arg for _, arg, positional in states if positional),
                            tuple(arg for _, arg, positional in states if not positional),
                            registry_cases.step_hypers(name, hypers),
                            uses_step=registry_cases.RULES[name]["uses_step"]))
    return out


CASES = [
    *_registry_cases(),
    # SGD's two functions
    Case("sgd", "sgd", kwargs=dict(lr=0.1)),
    Case("sgd-wd", "sgd", kwargs=dict(lr=0.1, weight_decay=0.01)),
    Case("sgd-max", "sgd", kwargs=dict(lr=0.1, weight_decay=0.01, maximize=True)),
    Case("momentum", "sgd_momentum", ("buf",), kwargs=dict(lr=0.1, momentum=0.9)),
    Case("momentum-wd", "sgd_momentum", ("buf",), kwargs=dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    Case("nesterov", "sgd_momentum", ("buf",), kwargs=dict(lr=0.1, momentum=0.9, nesterov=True)),
    Case("momentum-dampening", "sgd_momentum", ("buf",),
         kwargs=dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01), uses_step=True),
    Case("nesterov-wd-max", "sgd_momentum", ("buf",),
         kwargs=dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    # regimes the generic option sets do not reach
    Case("rmsprop-momentum-only", "rmsprop", ("square_avg",), ("momentum_buf",), dict(lr=0.01, momentum=0.9)),
    Case("lion-betas", "lion", ("m",), kwargs=dict(lr=0.01, beta1=0.8, beta2=0.95, weight_decay=0.1)),
    Case("rprop-bounds-max", "rprop", ("prev", "step_size"),
         kwargs=dict(etaminus=0.3, etaplus=1.5, step_size_min=0.01, step_size_max=0.8, maximize=True)),
    Case("asgd-averaging", "asgd", ("ax", "eta", "mu"), kwargs=dict(lr=0.05, lambd=0.01, t0=2, weight_decay=0.05),
         uses_step=True),
    Case("asgd-before-averaging", "asgd", ("ax", "eta", "mu1"), kwargs=dict(lr=0.05, maximize=True),
         uses_step=True),
]

# Buffers that must stay non-negative (squared averages) start positive.
_POSITIVE = {"sum_sq", "square_avg", "v", "max_v", "u", "acc_delta", "step_size"}


# Per-tensor states: one number (a 0-d array, float64 for float64 parameters,
# else float32) and where it starts. "mu1" is ASGD's mu before averaging starts.
_PER_TENSOR = {"mu_product": 0.6, "eta": 0.05, "mu": 0.25, "mu1": 1.0}
# Any other rule's per-tensor state starts where the registry says.
_ONE_NUMBER = {s["arg"]: s["start"] for r in registry_cases.RULES.values() for s in r["states"]
               if s["shape"] == "tensor" and s["initial"] is None}


def make_problem(case, n, dtype, seed=0, shape=None):
    """Parameters, a few gradients to cycle through, and a non-trivial state."""
    rng = np.random.default_rng(seed)
    shape = (n,) if shape is None else shape
    p = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    state = {}
    for name in case.state_names():
        if name in _PER_TENSOR or name in _ONE_NUMBER:
            value = _PER_TENSOR.get(name, _ONE_NUMBER.get(name))
            state[name] = np.array(value, np.float64 if dtype == np.float64 else np.float32)
        elif name in _POSITIVE:
            state[name] = rng.uniform(0.5, 1.5, shape).astype(dtype)
        elif name == "grad_avg":
            state[name] = (0.1 * rng.standard_normal(shape)).astype(dtype)
        else:
            state[name] = rng.standard_normal(shape).astype(dtype)
    return p, grads, state


def copy_problem(problem):
    p, grads, state = problem
    return p.copy(), grads, {k: v.copy() for k, v in state.items()}


def run(fn, case, p, grads, state, steps, first_step=1, **overrides):
    kwargs = dict(case.kwargs, **overrides)
    for i, t in enumerate(range(first_step, first_step + steps)):
        if case.uses_step:
            kwargs["step"] = t
        fn(p, grads[i % len(grads)], *[state[s] for s in case.positional],
           **{s: state[s] for s in case.keyword}, **kwargs)
