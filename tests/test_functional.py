"""Fast single-tensor steps against the NumPy reference, for every optimizer ×
option × dtype × ISA path × thread count (docs/design.md tolerances)."""
import numpy as np
import pytest

import fastopt
from conftest import ISAS, tolerances
from optim_cases import CASES, copy_problem, make_problem, run

# SIMD bodies and tails, single blocks and many blocks (block = 8192 elements;
# the threaded path starts at 65536 elements in total).
SIZES = [0, 1, 7, 8, 9, 31, 1000, 100003, 2**20 + 3]
_problems = {}


def problem(case, n, dtype):
    key = (case.id, n, np.dtype(dtype).name)
    if key not in _problems:
        _problems[key] = make_problem(case, n, dtype, seed=n)
    return copy_problem(_problems[key])


def assert_same_state(fast, ref, tol):
    p_fast, _, s_fast = fast
    p_ref, _, s_ref = ref
    np.testing.assert_allclose(p_fast, p_ref, **tol)
    for name in s_ref:
        np.testing.assert_allclose(s_fast[name], s_ref[name], err_msg=name, **tol)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_one_step_matches_reference(case, dtype, isa, threads):
    for n in SIZES:
        fast, ref = problem(case, n, dtype), problem(case, n, dtype)
        run(case.fast(), case, *fast, steps=1, first_step=5)
        run(case.ref(), case, *ref, steps=1, first_step=5)
        assert_same_state(fast, ref, tolerances(dtype, 1))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hundred_steps_match_reference(case, dtype, isa, threads):
    fast, ref = problem(case, 100003, dtype), problem(case, 100003, dtype)
    run(case.fast(), case, *fast, steps=100)
    run(case.ref(), case, *ref, steps=100)
    assert_same_state(fast, ref, tolerances(dtype, 100))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bitwise_identical_across_threads_isas_and_runs(case, dtype):
    previous = (fastopt.get_isa(), fastopt.get_num_threads())
    results = []
    try:
        for isa in ISAS:
            fastopt.set_isa(isa)
            for n_threads in (1, 2, 3, 1):
                fastopt.set_num_threads(n_threads)
                p, grads, state = problem(case, 2**20 + 3, dtype)
                run(case.fast(), case, p, grads, state, steps=3)
                results.append((isa, n_threads, p, state))
    finally:
        fastopt.set_isa(previous[0])
        fastopt.set_num_threads(previous[1])
    isa0, t0, p0, s0 = results[0]
    for isa, n_threads, p, state in results[1:]:
        assert np.array_equal(p, p0, equal_nan=True), (isa, n_threads)
        for name in s0:
            assert np.array_equal(state[name], s0[name], equal_nan=True), (isa, n_threads, name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_multidimensional_arrays(case, dtype):
    fast = make_problem(case, 0, dtype, shape=(3, 5, 7))
    ref = copy_problem(fast)
    run(case.fast(), case, *fast, steps=2)
    run(case.ref(), case, *ref, steps=2)
    assert_same_state(fast, ref, tolerances(dtype, 100))


def test_gradient_is_not_modified():
    p, grads, state = make_problem(next(c for c in CASES if c.name == "adam"), 1000, np.float32)
    before = grads[0].copy()
    fastopt.adam(p, grads[0], state["m"], state["v"], step=1, weight_decay=0.1)
    assert np.array_equal(grads[0], before)


def test_read_only_gradient_is_accepted():
    p = np.ones(10)
    g = np.ones(10)
    g.flags.writeable = False
    fastopt.sgd(p, g, lr=0.5)
    assert np.all(p == 0.5)


def test_step_changes_parameters():
    """Guards against a test suite comparing two no-ops."""
    for case in CASES:
        p, grads, state = make_problem(case, 100, np.float64)
        before = p.copy()
        run(case.fast(), case, p, grads, state, steps=1)
        assert not np.array_equal(p, before), case.id


# The lecture's forms, at constant lr, equal the torch-style forms implemented.

def test_lecture_momentum_form():
    rng = np.random.default_rng(1)
    lr, rho = 0.05, 0.9
    x = rng.standard_normal(1000)
    x_lecture, v = x.copy(), np.zeros_like(x)
    buf = np.zeros_like(x)
    for _ in range(50):
        dx = np.cos(x) + 0.1 * x             # gradient at the current point
        fastopt.sgd_momentum(x, dx, buf, lr=lr, momentum=rho)
        dx_l = np.cos(x_lecture) + 0.1 * x_lecture
        v = rho * v - lr * dx_l               # v = ρv − lr·dx
        x_lecture += v                        # x += v
    np.testing.assert_allclose(x, x_lecture, rtol=1e-12, atol=1e-12)


def test_lecture_nesterov_change_of_variables():
    rng = np.random.default_rng(2)
    lr, rho = 0.05, 0.9
    x = rng.standard_normal(1000)
    x_lecture, v = x.copy(), np.zeros_like(x)
    buf = np.zeros_like(x)
    for _ in range(50):
        dx = np.sin(x) + 0.2 * x
        fastopt.sgd_momentum(x, dx, buf, lr=lr, momentum=rho, nesterov=True)
        dx_l = np.sin(x_lecture) + 0.2 * x_lecture
        v_prev = v
        v = rho * v - lr * dx_l
        x_lecture += -rho * v_prev + (1 + rho) * v
    np.testing.assert_allclose(x, x_lecture, rtol=1e-10, atol=1e-12)
