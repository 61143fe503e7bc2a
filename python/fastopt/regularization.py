"""Weight penalties (docs/design.md, "Losses and regularization")."""
from . import _core
from ._typing import FloatArray

__all__ = ["penalty"]


def penalty(W: FloatArray, reg: float, kind: str = "l2", l1_ratio: float = 0.5) -> tuple[float, FloatArray]:
    """Value and gradient of a weight penalty.

    =================  ========================================  ===========================================
    kind               value                                     gradient
    =================  ========================================  ===========================================
    ``"l2"``           reg·ΣW²                                   2·reg·W
    ``"l1"``           reg·Σ|W|                                  reg·sign(W) (0 at 0)
    ``"elastic_net"``  reg·(l1_ratio·Σ|W| + (1−l1_ratio)·ΣW²)    reg·(l1_ratio·sign(W) + (1−l1_ratio)·2W)
    =================  ========================================  ===========================================

    Parameters
    ----------
    W : numpy.ndarray
        float32 or float64, any shape.
    reg : float
        Strength, >= 0.
    kind : {"l2", "l1", "elastic_net"}, default "l2"
    l1_ratio : float, default 0.5
        In [0, 1]; used by ``"elastic_net"``.

    Returns
    -------
    value : float
        Accumulated in float64.
    grad : numpy.ndarray
        Same shape and dtype as W.
    """
    return _core.penalty(W, reg, kind, l1_ratio)
