"""Weight penalties (docs/design.md): l2 = reg·ΣW², l1 = reg·Σ|W|,
elastic_net = reg·(l1_ratio·Σ|W| + (1 − l1_ratio)·ΣW²)."""
import numpy as np
from .._typing import FloatArray


def penalty(W: FloatArray, reg: float, kind: str = "l2", l1_ratio: float = 0.5) -> tuple[float, FloatArray]:
    """Return (value, gradient) of the penalty on W."""
    if kind == "l2":
        return float(reg * np.sum(W * W)), (2 * reg) * W
    if kind == "l1":
        return float(reg * np.sum(np.abs(W))), reg * np.sign(W)
    if kind == "elastic_net":
        value = reg * (l1_ratio * np.sum(np.abs(W)) + (1 - l1_ratio) * np.sum(W * W))
        grad = reg * (l1_ratio * np.sign(W) + (1 - l1_ratio) * 2 * W)
        return float(value), grad
    raise ValueError(f"penalty must be 'l2', 'l1' or 'elastic_net', got {kind!r}")
