"""L-BFGS with a strong-Wolfe line search, for full-batch training.

``minimize(fun_and_grad, x0)`` returns an object like SciPy's
``OptimizeResult`` (``.x``, ``.fun``, ``.jac``, ``.nit``, ``.nfev``,
``.success``, ``.message``). The objective is called with an array of x0's
shape and dtype (so a fastopt loss of a float32 W works as is); the iteration
itself runs in float64.

>>> import numpy as np

from ._typing import FloatArray
>>> from fastopt.lbfgs import minimize
>>> res = minimize(lambda x: (float(np.sum((x - 3) ** 2)), 2 * (x - 3)), np.zeros(4))
>>> res.success, np.allclose(res.x, 3)
(True, True)
"""
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import numpy.typing as npt

from ._typing import FloatArray

# The iterates and gradients are float64 vectors.
_Vector = npt.NDArray[np.float64]
_Pair = tuple[_Vector, _Vector, float]
_Found = Optional[tuple[float, float, _Vector]]

__all__ = ["minimize", "LBFGSResult"]


@dataclass
class LBFGSResult:
    x: FloatArray
    fun: float
    jac: FloatArray
    nit: int
    nfev: int
    success: bool
    message: str


def minimize(fun_and_grad: Callable[[FloatArray], tuple[float, FloatArray]], x0: FloatArray, history: int = 10,
             max_iter: int = 200, tol: float = 1e-6, ftol: float = 1e-12, c1: float = 1e-4, c2: float = 0.9,
             max_linesearch: int = 25,
             callback: Optional[Callable[[FloatArray, float], None]] = None) -> LBFGSResult:
    """Minimize ``f`` given ``fun_and_grad(x) -> (f, grad)`` by L-BFGS.

    Parameters
    ----------
    fun_and_grad : callable
        Returns the objective (a float) and its gradient (x's shape), e.g.
        ``lambda W: fastopt.softmax_loss(W, X, y, reg)``.
    x0 : numpy.ndarray
        Starting point (any shape; float32 or float64).
    history : int, default 10
        Number of (s, y) correction pairs kept.
    max_iter : int, default 200
    tol : float, default 1e-6
        Stop when the largest absolute gradient entry is <= tol.
    ftol : float, default 1e-12
        Stop when an iteration lowers f by at most ``ftol * max(|f|, |f_new|, 1)``.
    c1, c2 : float
        Sufficient-decrease and curvature constants of the strong Wolfe conditions, 0 < c1 < c2 < 1.
    max_linesearch : int, default 25
        Function evaluations allowed per line search.
    callback : callable, optional
        ``callback(x, f)`` after every iteration, with the new point (float64,
        x0's shape) and its objective.

    Returns
    -------
    LBFGSResult
    """
    x0 = np.asarray(x0)
    if x0.size == 0 or not np.issubdtype(x0.dtype, np.floating):
        raise ValueError("x0 must be a non-empty floating-point array")
    for name, value in (("history", history), ("max_iter", max_iter), ("max_linesearch", max_linesearch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not (tol >= 0 and ftol >= 0):
        raise ValueError("tol and ftol must be >= 0")
    if not 0 < c1 < c2 < 1:
        raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")

    shape, dtype = x0.shape, x0.dtype
    nfev = 0

    def evaluate(x: _Vector) -> tuple[float, _Vector]:
        nonlocal nfev
        nfev += 1
        f, g = fun_and_grad(x.reshape(shape).astype(dtype, copy=False))
        grad = np.asarray(g, dtype=np.float64)
        if grad.size != x.size:
            raise ValueError(f"fun_and_grad returned a gradient of shape {grad.shape}; expected {shape}")
        return float(f), grad.ravel()

    x = x0.astype(np.float64).ravel()
    f, g = evaluate(x)
    pairs: deque[_Pair] = deque(maxlen=history)
    message, success, it = "maximum number of iterations reached", False, 0
    for it in range(1, max_iter + 1):
        if np.max(np.abs(g)) <= tol:
            message, success, it = "gradient below tol", True, it - 1
            break
        d = -_two_loop(g, pairs)
        if _dot(g, d) >= 0:  # not a descent direction: forget the curvature pairs
            pairs.clear()
            d = -g
        first_step = min(1.0, 1.0 / np.sum(np.abs(g))) if not pairs else 1.0
        found = _strong_wolfe(evaluate, x, f, g, d, first_step, c1, c2, max_linesearch)
        if found is None:
            message = "line search failed to find a step satisfying the Wolfe conditions"
            break
        alpha, f_new, g_new = found
        s, y = alpha * d, g_new - g
        if _dot(s, y) > 1e-12 * _dot(y, y):
            pairs.append((s, y, 1.0 / _dot(s, y)))
        reduction = f - f_new
        x, f, g = x + s, f_new, g_new
        if callback is not None:
            callback(x.reshape(shape), f)
        if reduction <= ftol * max(abs(f), abs(f + reduction), 1.0):
            message, success = "relative reduction of f below ftol", True
            break
    return LBFGSResult(x=x.reshape(shape).astype(dtype, copy=False), fun=f, jac=g.reshape(shape), nit=it,
                       nfev=nfev, success=success, message=message)


# OpenBLAS (NumPy's wheels) runs a dot product of more than 10,000 entries on several
# threads, which then spin, waiting for more work, on the cores the next loss
# evaluation's threads need: a 20,000 × 1,024 fit (W: 10,250 entries) ran 2.7× slower
# with 2 BLAS threads than with 1. Longer products go through NumPy's own loop.
_SERIAL_BLAS_DOT = 8192


def _dot(a: _Vector, b: _Vector) -> float:
    """a·b of two float64 vectors, never on BLAS threads (einsum costs 2.5 µs where
    the BLAS dot costs 1.2, so short vectors keep the BLAS dot)."""
    if a.size <= _SERIAL_BLAS_DOT:
        return float(a @ b)
    return float(np.einsum("i,i->", a, b))


def _two_loop(g: _Vector, pairs: deque[_Pair]) -> _Vector:
    """H·g for the L-BFGS inverse-Hessian approximation (Nocedal & Wright, Alg. 7.4)."""
    q = g.copy()
    alphas: list[float] = []
    for s, y, rho in reversed(pairs):
        a = rho * _dot(s, q)
        q -= a * y
        alphas.append(a)
    if pairs:
        s, y, _ = pairs[-1]
        q *= _dot(s, y) / _dot(y, y)
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * _dot(y, q)
        q += (a - b) * s
    return q


def _strong_wolfe(evaluate: Callable[[_Vector], tuple[float, _Vector]], x: _Vector, f0: float, g0: _Vector,
                  d: _Vector, alpha: float, c1: float, c2: float, max_evals: int) -> _Found:
    """A step satisfying the strong Wolfe conditions (Nocedal & Wright, Alg. 3.5 / 3.6)."""
    dphi0 = _dot(g0, d)
    evals = 0

    def phi(a: float) -> tuple[float, _Vector, float]:
        f, g = evaluate(x + a * d)
        return f, g, _dot(g, d)

    def zoom(lo: float, hi: float, f_lo: float, f_hi: float, dphi_lo: float) -> _Found:
        nonlocal evals
        while evals < max_evals:
            # Minimiser of the quadratic through f_lo, dphi_lo and f_hi, kept inside the bracket.
            width = hi - lo
            denom = 2 * (f_hi - f_lo - dphi_lo * width)
            a = lo - dphi_lo * width * width / denom if denom > 0 else lo + width / 2
            low, high = sorted((lo + 0.1 * width, hi - 0.1 * width))
            a = min(max(a, low), high)
            f_a, g_a, dphi_a = phi(a)
            evals += 1
            if f_a > f0 + c1 * a * dphi0 or f_a >= f_lo:
                hi, f_hi = a, f_a
            else:
                if abs(dphi_a) <= -c2 * dphi0:
                    return a, f_a, g_a
                if dphi_a * (hi - lo) >= 0:
                    hi, f_hi = lo, f_lo
                lo, f_lo, dphi_lo = a, f_a, dphi_a
        return None

    a_prev, f_prev, dphi_prev = 0.0, f0, dphi0
    while evals < max_evals:
        f_a, g_a, dphi_a = phi(alpha)
        evals += 1
        if not np.isfinite(f_a) or f_a > f0 + c1 * alpha * dphi0 or (a_prev > 0 and f_a >= f_prev):
            if not np.isfinite(f_a):
                f_a = np.inf
            return zoom(a_prev, alpha, f_prev, f_a, dphi_prev)
        if abs(dphi_a) <= -c2 * dphi0:
            return alpha, f_a, g_a
        if dphi_a >= 0:
            return zoom(alpha, a_prev, f_a, f_prev, dphi_a)
        a_prev, f_prev, dphi_prev = alpha, f_a, dphi_a
        alpha *= 2
    return None
