"""Numerical gradient checking, as in the CS231n assignments (docs/design.md).

Centered differences: df/dx_i ≈ (f(x + h·e_i) − f(x − h·e_i)) / 2h. Use float64.
"""
from typing import Any, Callable, Union

import numpy as np
import numpy.typing as npt

from ._typing import FloatArray

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse", "rel_error"]


def rel_error(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """``max |a − b| / max(1e-8, |a| + |b|)``, elementwise, as the course defines it."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _evaluate_around(f: Callable[[FloatArray], Any], x: FloatArray, ix: tuple[int, ...],
                     h: float) -> tuple[Any, Any]:
    """f(x + h·e_ix) and f(x − h·e_ix), with x[ix] restored afterwards."""
    old = x[ix]
    try:
        x[ix] = old + h
        plus = f(x)
        x[ix] = old - h
        minus = f(x)
    finally:
        x[ix] = old
    return plus, minus


def eval_numerical_gradient(f: Callable[[FloatArray], float], x: FloatArray, h: float = 1e-5) -> FloatArray:
    """Numerical gradient of the scalar function ``f(x)`` at x (every element).

    ``x`` is perturbed in place and restored; the result has x's shape.
    """
    x = _check_array(x)
    grad = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        plus, minus = _evaluate_around(lambda v: float(f(v)), x, ix, h)
        grad[ix] = (plus - minus) / (2 * h)
    return grad


def eval_numerical_gradient_array(f: Callable[[FloatArray], FloatArray], x: FloatArray, df: FloatArray,
                                  h: float = 1e-5) -> FloatArray:
    """Numerical gradient of ``sum(f(x) * df)`` for an array-valued f (backprop check)."""
    x = _check_array(x)
    grad = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        pos, neg = _evaluate_around(lambda v: np.array(f(v), dtype=np.float64, copy=True), x, ix, h)
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def grad_check_sparse(f: Callable[[FloatArray], float], x: FloatArray, analytic_grad: FloatArray,
                      num_checks: int = 10, h: float = 1e-5, seed: Union[None, int, np.random.Generator] = None,
                      verbose: bool = False) -> npt.NDArray[np.float64]:
    """Compare ``analytic_grad`` with centered differences at ``num_checks`` random entries.

    Returns
    -------
    numpy.ndarray
        The relative errors ``|a − n| / (|a| + |n|)`` (0 where both are 0), one per check.
    """
    x = _check_array(x)
    analytic_grad = np.asarray(analytic_grad)
    if analytic_grad.shape != x.shape:
        raise ValueError(f"analytic_grad has shape {analytic_grad.shape} but x has shape {x.shape}")
    if num_checks < 1:
        raise ValueError(f"num_checks must be >= 1, got {num_checks}")
    rng = np.random.default_rng(seed)
    errors = np.empty(num_checks)
    for k in range(num_checks):
        ix = tuple(int(rng.integers(m)) for m in x.shape)
        plus, minus = _evaluate_around(lambda v: float(f(v)), x, ix, h)
        numerical = (plus - minus) / (2 * h)
        analytic = float(analytic_grad[ix])
        denom = abs(numerical) + abs(analytic)
        errors[k] = abs(numerical - analytic) / denom if denom > 0 else 0.0
        if verbose:
            print(f"numerical: {numerical:f} analytic: {analytic:f}, relative error: {errors[k]:e}")
    return errors


def _check_array(x: FloatArray) -> FloatArray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray (perturbed in place), got {type(x).__name__}")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: it is perturbed in place and restored")
    if x.size == 0:
        raise ValueError("x is empty")
    return x
