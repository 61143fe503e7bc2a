"""fastopt.lbfgs against known optima and, when installed, SciPy's L-BFGS-B."""
import numpy as np
import pytest

import fastopt
from fastopt.lbfgs import minimize


def rosenbrock(x):
    f = np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return f, g


def test_rosenbrock():
    res = minimize(rosenbrock, np.full(6, -1.2), max_iter=500, tol=1e-8)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, 1.0, atol=1e-6)
    assert res.nit > 5 and res.nfev >= res.nit


def test_ill_conditioned_quadratic_and_shape():
    A = np.diag([1.0, 100.0, 1e4])
    b = np.array([1.0, -2.0, 3.0])
    res = minimize(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(3), tol=1e-10)
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-8)
    res2 = minimize(lambda W: (float(np.sum((W - 1) ** 2)), 2 * (W - 1)), np.zeros((3, 2), np.float32))
    assert res2.x.shape == (3, 2) and res2.x.dtype == np.float32 and np.allclose(res2.x, 1)


def softmax_problem():
    rng = np.random.default_rng(0)
    X = np.hstack([rng.standard_normal((300, 8)), np.ones((300, 1))])
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y


def test_softmax_regression_matches_scipy():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    X, y = softmax_problem()
    W0 = np.zeros((9, 3))
    fun = lambda w: fastopt.softmax_loss(w.reshape(9, 3), X, y, 1e-2)  # noqa: E731
    ours = minimize(fun, W0, tol=1e-9, max_iter=500)
    ref = scipy_optimize.minimize(lambda w: (fun(w)[0], fun(w)[1].ravel()), W0.ravel(), jac=True,
                                  method="L-BFGS-B", options=dict(gtol=1e-9, ftol=1e-15, maxiter=1000))
    assert ours.success
    assert ours.fun == pytest.approx(ref.fun, rel=1e-9)
    np.testing.assert_allclose(ours.x.ravel(), ref.x, atol=1e-4)


def test_softmax_regression_reaches_stationary_point():
    X, y = softmax_problem()
    res = minimize(lambda w: fastopt.softmax_loss(w, X, y, 1e-2), np.zeros((9, 3)), tol=1e-8, max_iter=500)
    assert res.success and np.max(np.abs(res.jac)) < 1e-6


def test_bad_input():
    f = lambda x: (float(x @ x), 2 * x)  # noqa: E731
    with pytest.raises(ValueError, match="x0"):
        minimize(f, np.zeros(0))
    with pytest.raises(ValueError, match="x0"):
        minimize(f, np.zeros(3, int))
    with pytest.raises(ValueError, match="history"):
        minimize(f, np.ones(3), history=0)
    with pytest.raises(ValueError, match="c1"):
        minimize(f, np.ones(3), c1=0.95)
    with pytest.raises(ValueError, match="gradient"):
        minimize(lambda x: (0.0, np.ones(2)), np.ones(3))


@pytest.mark.parametrize("n", [1, 7, 8192, 8193, 10_250])
def test_vector_products_on_both_sides_of_the_blas_cutoff(n):
    """L-BFGS's dot products: the BLAS dot up to _SERIAL_BLAS_DOT entries, NumPy's own
    loop beyond (BLAS would run them on threads that then spin on the loss's cores)."""
    from fastopt import lbfgs
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    got = lbfgs._dot(a, b)
    assert isinstance(got, float)
    assert got == pytest.approx(float(np.sum(a * b)), rel=1e-12, abs=1e-12 * n)
