"""L-BFGS's search direction in plain NumPy: the specification of
``fastopt._core.lbfgs_direction`` (the two-loop recursion of
:class:`fastopt.torch.LBFGS`, as torch.optim.LBFGS computes it)."""
from collections.abc import Sequence

import numpy as np

from .._typing import FloatArray


def lbfgs_direction(g: FloatArray, s: Sequence[FloatArray], y: Sequence[FloatArray], rho: Sequence[float],
                    h: float) -> tuple[FloatArray, list[float]]:
    """d = -H·g for the pairs (s_i, y_i), oldest first, rho_i = 1 / (y_i·s_i), initial scaling h
    (Nocedal & Wright, Alg. 7.4). Returns d and the first loop's al."""
    q = -g
    al = [0.0] * len(s)
    for i in reversed(range(len(s))):
        al[i] = float(s[i] @ q) * rho[i]
        q = q - al[i] * y[i]
    r = q * h
    for i in range(len(s)):
        be = float(y[i] @ r) * rho[i]
        r = r + (al[i] - be) * s[i]
    return r, al
