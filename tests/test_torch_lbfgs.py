"""fastopt.torch.LBFGS against torch.optim.LBFGS (both line-search modes, torch's
configurations), checkpoints both ways; the native two-loop recursion against the
NumPy reference on every ISA and thread count, bitwise across them; bad input.
The torch tests skip when torch is absent."""
import importlib

import numpy as np
import pytest

import fastopt
from conftest import ISAS
from fastopt import _core
from fastopt.reference.lbfgs import lbfgs_direction as reference_direction


def pairs(n, m, dtype, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(n).astype(dtype)
    s = [rng.standard_normal(n).astype(dtype) for _ in range(m)]
    y = [(si + 0.1 * rng.standard_normal(n)).astype(dtype) for si in s]
    rho = [1.0 / max(float(yi.astype(np.float64) @ si.astype(np.float64)), 1.0) for si, yi in zip(s, y)]
    return g, s, y, rho


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 8192 * 9 + 5])
@pytest.mark.parametrize("m", [0, 1, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direction_matches_reference(n, m, dtype, isa, threads):
    g, s, y, rho = pairs(n, m, dtype)
    d = np.empty_like(g)
    al = _core.lbfgs_direction(g, s, y, rho, 0.7, d)
    expected, expected_al = reference_direction(g, s, y, rho, 0.7)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d, expected, **tol)
    np.testing.assert_allclose(al, expected_al, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direction_is_bitwise_the_same_for_every_isa_and_thread_count(dtype):
    g, s, y, rho = pairs(2**20 + 3, 4, dtype)
    previous = (fastopt.get_isa(), fastopt.get_num_threads())
    results = []
    try:
        for isa in ISAS:
            fastopt.set_isa(isa)
            for n_threads in (1, 2, 3):
                fastopt.set_num_threads(n_threads)
                d = np.empty_like(g)
                al = _core.lbfgs_direction(g, s, y, rho, 0.5, d)
                results.append((d, al))
    finally:
        fastopt.set_isa(previous[0])
        fastopt.set_num_threads(previous[1])
    for d, al in results[1:]:
        assert np.array_equal(d, results[0][0]) and al == results[0][1]


@pytest.mark.parametrize("call, error, text", [
    (lambda g, s, y, d: _core.lbfgs_direction(g, s, y, [1.0], 1.0, g), ValueError, "share memory"),
    (lambda g, s, y, d: _core.lbfgs_direction(g, s, y, [1.0], 1.0, s[0]), ValueError, "share memory"),
    (lambda g, s, y, d: _core.lbfgs_direction(g, s, y, [], 1.0, d), ValueError, "one entry per correction pair"),
    (lambda g, s, y, d: _core.lbfgs_direction(g, s, y, [float("nan")], 1.0, d), ValueError, "rho"),
    (lambda g, s, y, d: _core.lbfgs_direction(g, s, y, [1.0], float("inf"), d), ValueError, "h"),
    (lambda g, s, y, d: _core.lbfgs_direction(g, s, [y[0][:-1]], [1.0], 1.0, d), ValueError, "y"),
    (lambda g, s, y, d: _core.lbfgs_direction(g.astype(np.float32), s, y, [1.0], 1.0, d), TypeError, "g"),
    (lambda g, s, y, d: _core.lbfgs_direction(g, s[0], y, [1.0], 1.0, d), TypeError, "s must be a list"),
    (lambda g, s, y, d: _core.lbfgs_direction(g, s, y, [1.0], 1.0, d.astype(np.float16)), TypeError, "d"),
    (lambda g, s, y, d: _core.lbfgs_direction(g, s, y, [1.0], 1.0, d[::2]), ValueError, "d"),
])
def test_direction_refuses_bad_input_and_changes_nothing(call, error, text):
    g, s, y, _ = pairs(20, 1, np.float64)
    d = np.zeros(20)
    before = [a.copy() for a in (g, *s, *y, d)]
    with pytest.raises(error, match=text):
        call(g, s, y, d)
    for a, b in zip((g, *s, *y, d), before):
        assert np.array_equal(a, b)


# ------------------------------------------------------------------- fastopt.torch.LBFGS

def _torch():
    return pytest.importorskip("torch")


def problem(torch, dtype, seed=0):
    """A small linear model."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 10, generator=g, dtype=dtype)
    y = torch.randn(64, 3, generator=g, dtype=dtype)
    params = [torch.randn(10, 3, generator=g, dtype=dtype).mul_(0.1).requires_grad_(),
              torch.zeros(3, dtype=dtype, requires_grad=True)]
    return X, y, params


def closure_for(torch, opt, X, y, params):
    def closure():
        opt.zero_grad()
        pred = X @ params[0] + params[1]
        # log(2 cosh)-like: smooth, not quadratic, least at pred = y
        loss = (torch.nn.functional.softplus(pred - y) + torch.nn.functional.softplus(y - pred)).mean() \
            + 0.01 * params[0].square().sum()
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("options", [dict(), dict(lr=0.5), dict(line_search_fn="strong_wolfe"),
                                     dict(history_size=3, max_iter=7), dict(tolerance_grad=1e-5, lr=0.1),
                                     dict(line_search_fn="strong_wolfe", history_size=2, max_eval=15)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lbfgs_equals_torch(options, dtype):
    torch = _torch()
    ft = importlib.import_module("fastopt.torch")
    dtype = getattr(torch, dtype)
    X, y, ours_p = problem(torch, dtype)
    _, _, theirs_p = problem(torch, dtype)
    ours, theirs = ft.LBFGS(ours_p, **options), torch.optim.LBFGS(theirs_p, **options)
    losses = []
    for _ in range(4):
        a = ours.step(closure_for(torch, ours, X, y, ours_p))
        b = theirs.step(closure_for(torch, theirs, X, y, theirs_p))
        losses.append((float(a.detach()), float(b.detach())))
    if dtype == torch.float64:
        for a, b in losses:
            assert a == pytest.approx(b, rel=1e-9)
        for p, q in zip(ours_p, theirs_p):
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
        assert ours.state[ours_p[0]]["func_evals"] == theirs.state[theirs_p[0]]["func_evals"]
    else:
        # float32: the direction's products are double here and float32 in torch, so a line
        # search near the optimum may take another branch; both reach the same loss.
        assert losses[-1][0] == pytest.approx(losses[-1][1], rel=1e-4)


def test_lbfgs_state_dict_moves_both_ways():
    torch = _torch()
    ft = importlib.import_module("fastopt.torch")
    X, y, straight = problem(torch, torch.float64)
    opt = torch.optim.LBFGS(straight, history_size=5, line_search_fn="strong_wolfe")
    for _ in range(4):
        opt.step(closure_for(torch, opt, X, y, straight))
    for first, second in [(torch.optim.LBFGS, ft.LBFGS), (ft.LBFGS, torch.optim.LBFGS)]:
        _, _, params = problem(torch, torch.float64)
        a = first(params, history_size=5, line_search_fn="strong_wolfe")
        for _ in range(2):
            a.step(closure_for(torch, a, X, y, params))
        b = second(params, history_size=5, line_search_fn="strong_wolfe")
        b.load_state_dict(a.state_dict())
        for _ in range(2):
            b.step(closure_for(torch, b, X, y, params))
        for p, q in zip(params, straight):
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)


def test_lbfgs_refuses_bad_arguments():
    torch = _torch()
    ft = importlib.import_module("fastopt.torch")
    p = torch.zeros(3, requires_grad=True)
    for kwargs, error, text in [(dict(lr=-1.0), ValueError, "lr"), (dict(history_size=0), ValueError, "history_size"),
                                (dict(line_search_fn="armijo"), ValueError, "line_search_fn"),
                                (dict(max_iter=2.5), ValueError, "max_iter")]:
        with pytest.raises(error, match=text):
            ft.LBFGS([p], **kwargs)
    with pytest.raises(TypeError, match="float32 or float64"):
        ft.LBFGS([torch.zeros(3, dtype=torch.float16, requires_grad=True)])
    with pytest.raises(ValueError, match="parameter groups"):
        ft.LBFGS([{"params": [p]}, {"params": [torch.zeros(2, requires_grad=True)]}])
    with pytest.raises(TypeError, match="closure"):
        ft.LBFGS([p]).step(None)
