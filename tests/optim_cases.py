"""The optimizer × option table the tests run over, and helpers to drive the
fast and reference functions with identical inputs."""
from dataclasses import dataclass, field

import numpy as np

import fastopt
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


def _rmsprop_cases():
    out = []
    for centered in (False, True):
        for momentum in (0.0, 0.9):
            for wd in (0.0, 0.01):
                keyword = (("momentum_buf",) if momentum else ()) + (("grad_avg",) if centered else ())
                out.append(Case(f"rmsprop-c{int(centered)}-m{int(momentum > 0)}-wd{int(wd > 0)}", "rmsprop",
                                ("square_avg",), keyword,
                                dict(lr=0.01, alpha=0.9, centered=centered, momentum=momentum, weight_decay=wd)))
    return out


def _adam_cases():
    out = []
    for name in ("adam", "adamw"):
        for amsgrad in (False, True):
            for wd in ((0.0, 0.05) if name == "adam" else (0.05,)):
                out.append(Case(f"{name}-ams{int(amsgrad)}-wd{int(wd > 0)}", name, ("m", "v"),
                                ("max_v",) if amsgrad else (),
                                dict(lr=0.01, amsgrad=amsgrad, weight_decay=wd), uses_step=True))
    return out


CASES = [
    Case("sgd", "sgd", kwargs=dict(lr=0.1)),
    Case("sgd-wd", "sgd", kwargs=dict(lr=0.1, weight_decay=0.01)),
    Case("momentum", "sgd_momentum", ("buf",), kwargs=dict(lr=0.1, momentum=0.9)),
    Case("momentum-wd", "sgd_momentum", ("buf",), kwargs=dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    Case("nesterov", "sgd_momentum", ("buf",), kwargs=dict(lr=0.1, momentum=0.9, nesterov=True)),
    Case("momentum-dampening", "sgd_momentum", ("buf",),
         kwargs=dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01), uses_step=True),
    Case("nesterov-wd", "sgd_momentum", ("buf",),
         kwargs=dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    Case("adagrad", "adagrad", ("sum_sq",), kwargs=dict(lr=0.1), uses_step=True),
    Case("adagrad-wd-decay", "adagrad", ("sum_sq",), kwargs=dict(lr=0.1, weight_decay=0.01, lr_decay=0.01),
         uses_step=True),
    *_rmsprop_cases(),
    *_adam_cases(),
    Case("lion", "lion", ("m",), kwargs=dict(lr=0.01)),
    # maximize: every rule steps on -g (torch's option)
    Case("sgd-max", "sgd", kwargs=dict(lr=0.1, weight_decay=0.01, maximize=True)),
    Case("nesterov-max", "sgd_momentum", ("buf",), kwargs=dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    Case("adagrad-max", "adagrad", ("sum_sq",), kwargs=dict(lr=0.1, weight_decay=0.01, maximize=True),
         uses_step=True),
    Case("rmsprop-c1-m1-max", "rmsprop", ("square_avg",), ("momentum_buf", "grad_avg"),
         dict(lr=0.01, alpha=0.9, centered=True, momentum=0.9, weight_decay=0.01, maximize=True)),
    Case("adam-ams1-max", "adam", ("m", "v"), ("max_v",), dict(lr=0.01, amsgrad=True, weight_decay=0.05,
                                                               maximize=True), uses_step=True),
    Case("adamw-max", "adamw", ("m", "v"), kwargs=dict(lr=0.01, weight_decay=0.05, maximize=True), uses_step=True),
    Case("lion-max", "lion", ("m",), kwargs=dict(lr=0.01, weight_decay=0.1, maximize=True)),
    Case("lion-wd", "lion", ("m",), kwargs=dict(lr=0.01, beta1=0.8, beta2=0.95, weight_decay=0.1)),
    Case("adamax", "adamax", ("m", "u"), kwargs=dict(lr=0.01), uses_step=True),
    Case("adamax-wd-max", "adamax", ("m", "u"), kwargs=dict(lr=0.01, beta1=0.8, weight_decay=0.05, maximize=True),
         uses_step=True),
    # RAdam: rho_t > 5 from step 6 with beta2 = 0.999 (the cases run steps 1-6 and later ones)
    Case("radam", "radam", ("m", "v"), kwargs=dict(lr=0.01), uses_step=True),
    Case("radam-wd", "radam", ("m", "v"), kwargs=dict(lr=0.01, weight_decay=0.05), uses_step=True),
    Case("radam-decoupled-max", "radam", ("m", "v"),
         kwargs=dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True), uses_step=True),
    Case("adadelta", "adadelta", ("square_avg", "acc_delta"), kwargs=dict(lr=0.5)),
    Case("adadelta-wd-max", "adadelta", ("square_avg", "acc_delta"),
         kwargs=dict(lr=0.5, rho=0.8, weight_decay=0.05, maximize=True)),
    Case("rprop", "rprop", ("prev", "step_size"), kwargs=dict()),
    Case("rprop-bounds-max", "rprop", ("prev", "step_size"),
         kwargs=dict(etaminus=0.3, etaplus=1.5, step_size_min=0.01, step_size_max=0.8, maximize=True)),
    # Per-tensor state (0-d arrays): NAdam's mu_product, ASGD's eta and mu.
    Case("nadam-wd", "nadam", ("m", "v", "mu_product"), kwargs=dict(lr=0.01, weight_decay=0.05), uses_step=True),
    Case("nadam-decoupled-max", "nadam", ("m", "v", "mu_product"),
         kwargs=dict(lr=0.01, weight_decay=0.05, momentum_decay=0.05, decoupled_weight_decay=True, maximize=True),
         uses_step=True),
    Case("asgd-averaging", "asgd", ("ax", "eta", "mu"), kwargs=dict(lr=0.05, lambd=0.01, t0=2, weight_decay=0.05),
         uses_step=True),
    Case("asgd-max", "asgd", ("ax", "eta", "mu1"), kwargs=dict(lr=0.05, maximize=True), uses_step=True),
]

# Buffers that must stay non-negative (squared averages) start positive.
_POSITIVE = {"sum_sq", "square_avg", "v", "max_v", "u", "acc_delta", "step_size"}


# Per-tensor states: one number (a 0-d array, float64 for float64 parameters,
# else float32) and where it starts. "mu1" is ASGD's mu before averaging starts.
_PER_TENSOR = {"mu_product": 0.6, "eta": 0.05, "mu": 0.25, "mu1": 1.0}


def make_problem(case, n, dtype, seed=0, shape=None):
    """Parameters, a few gradients to cycle through, and a non-trivial state."""
    rng = np.random.default_rng(seed)
    shape = (n,) if shape is None else shape
    p = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    state = {}
    for name in case.state_names():
        if name in _PER_TENSOR:
            state[name] = np.array(_PER_TENSOR[name], np.float64 if dtype == np.float64 else np.float32)
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
