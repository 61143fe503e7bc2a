"""Muon (Jordan et al. 2024, as torch.optim.Muon) in plain NumPy: the specification
of :class:`fastopt.torch.Muon`.

Momentum, then the update orthogonalized by a Newton–Schulz iteration (about
U·Vᵀ of its SVD U·S·Vᵀ), then a step scaled to the matrix's shape. A weight
of more than two dimensions (a convolution kernel) is the matrix of its first
dimension by all the others, as in Keller Jordan's reference implementation.
"""
import math
from typing import Optional

import numpy as np

from .._typing import FloatArray

# Keller Jordan's quintic coefficients and torch.optim.Muon's defaults.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """The matrix a weight is orthogonalized as: (shape[0], the product of the rest)."""
    return shape[0], math.prod(shape[1:])


def zeropower_via_newtonschulz(G: FloatArray, coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                               steps: int = 5, eps: float = 1e-7) -> FloatArray:
    a, b, c = coefficients
    X = G.reshape(matrix_shape(G.shape))
    transposed = X.shape[0] > X.shape[1]   # iterate on the wide form: the Gram matrix is the small one
    if transposed:
        X = X.T
    X = X / max(float(np.linalg.norm(X)), eps)    # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    if transposed:
        X = X.T
    out: FloatArray = X.reshape(G.shape)
    return out


def adjusted_lr(lr: float, shape: tuple[int, ...], adjust_lr_fn: Optional[str] = None) -> float:
    """``"original"`` (Keller Jordan's): lr·sqrt(max(1, A/B)); ``"match_rms_adamw"`` (Moonshot's):
    lr·0.2·sqrt(max(A, B)), for the A×B matrix of the weight."""
    A, B = matrix_shape(shape)
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, A / B))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(A, B))
    raise ValueError(f"adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got {adjust_lr_fn!r}")


def muon(p: FloatArray, g: FloatArray, buf: FloatArray, *, lr: float = 1e-3, weight_decay: float = 0.1,
         momentum: float = 0.95, nesterov: bool = True,
         ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS, eps: float = 1e-7, ns_steps: int = 5,
         adjust_lr_fn: Optional[str] = None) -> None:
    buf[...] = momentum * buf + (1 - momentum) * g
    update = (1 - momentum) * g + momentum * buf if nesterov else buf
    O = zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps)
    p *= 1 - lr * weight_decay
    p -= adjusted_lr(lr, p.shape, adjust_lr_fn) * O
