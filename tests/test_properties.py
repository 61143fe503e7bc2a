"""Property-based agreement: random shapes, dtypes, hyperparameters and step numbers."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes

import fastopt
from conftest import tolerances
from fastopt import reference

shapes = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40)
dtypes = st.sampled_from([np.float32, np.float64])
lrs = st.floats(0.0, 1.0)
decays = st.one_of(st.just(0.0), st.floats(1e-6, 0.1))
betas = st.floats(0.0, 0.999)
epss = st.floats(1e-10, 1e-3)


def arrays(shape, dtype, seed, positive=False):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, shape) if positive else rng.standard_normal(shape)
    return np.array(a, dtype=dtype)  # keeps 0-d shapes (ascontiguousarray would not)


def check(fast_fn, ref_fn, shape, dtype, seed, steps, state_spec, **kwargs):
    """state_spec: list of (name, positional, positive)."""
    p = arrays(shape, dtype, seed)
    state = {name: arrays(shape, dtype, seed + 1 + i, pos) for i, (name, _, pos) in enumerate(state_spec)}
    fast = (p.copy(), {k: v.copy() for k, v in state.items()})
    ref = (p.copy(), {k: v.copy() for k, v in state.items()})
    for t in range(1, steps + 1):
        g = arrays(shape, dtype, seed + 100 + t)
        for fn, (pp, ss) in ((fast_fn, fast), (ref_fn, ref)):
            kw = dict(kwargs)
            if "step" in kw:
                kw["step"] = t
            fn(pp, g, *[ss[n] for n, positional, _ in state_spec if positional],
               **{n: ss[n] for n, positional, _ in state_spec if not positional}, **kw)
    tol = tolerances(dtype, steps)
    np.testing.assert_allclose(fast[0], ref[0], **tol)
    for name in state:
        np.testing.assert_allclose(fast[1][name], ref[1][name], **tol)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16), steps=st.integers(1, 3), lr=lrs,
       momentum=st.floats(0.01, 0.99), nesterov=st.booleans(), wd=decays)
def test_sgd_momentum(shape, dtype, seed, steps, lr, momentum, nesterov, wd):
    check(fastopt.sgd_momentum, reference.sgd_momentum, shape, dtype, seed, steps, [("buf", True, False)],
          lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16), steps=st.integers(1, 3), lr=lrs,
       eps=epss, wd=decays, lr_decay=decays)
def test_adagrad(shape, dtype, seed, steps, lr, eps, wd, lr_decay):
    check(fastopt.adagrad, reference.adagrad, shape, dtype, seed, steps, [("sum_sq", True, True)],
          lr=lr, eps=eps, weight_decay=wd, lr_decay=lr_decay, step=1)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16), steps=st.integers(1, 3), lr=lrs,
       alpha=st.floats(0.0, 0.999), eps=epss, wd=decays, momentum=st.sampled_from([0.0, 0.5, 0.9]),
       centered=st.booleans())
def test_rmsprop(shape, dtype, seed, steps, lr, alpha, eps, wd, momentum, centered):
    # grad_avg starts at zero so that square_avg - grad_avg**2 stays >= 0.
    spec = [("square_avg", True, True)]
    if momentum:
        spec.append(("momentum_buf", False, False))
    extra = {}
    if centered:
        extra = {"fast": np.zeros(shape, dtype), "ref": np.zeros(shape, dtype)}
    fast = (lambda *a, **k: fastopt.rmsprop(*a, grad_avg=extra["fast"], **k)) if centered else fastopt.rmsprop
    ref = (lambda *a, **k: reference.rmsprop(*a, grad_avg=extra["ref"], **k)) if centered else reference.rmsprop
    check(fast, ref, shape, dtype, seed, steps, spec, lr=lr, alpha=alpha, eps=eps, weight_decay=wd,
          momentum=momentum, centered=centered)
    if centered:
        np.testing.assert_allclose(extra["fast"], extra["ref"], **tolerances(dtype, steps))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16), steps=st.integers(1, 3), lr=lrs,
       beta1=betas, beta2=betas, eps=epss, wd=decays, amsgrad=st.booleans(), decoupled=st.booleans())
def test_adam_and_adamw(shape, dtype, seed, steps, lr, beta1, beta2, eps, wd, amsgrad, decoupled):
    spec = [("m", True, False), ("v", True, True)] + ([("max_v", False, True)] if amsgrad else [])
    fast, ref = (fastopt.adamw, reference.adamw) if decoupled else (fastopt.adam, reference.adam)
    check(fast, ref, shape, dtype, seed, steps, spec, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
          weight_decay=wd, amsgrad=amsgrad, step=1)
