"""Linear-classifier losses and their gradients, backed by the C++ kernels.

Convention (CS231n): ``X`` is N×D with one example per row, ``W`` is D×C, ``y``
holds N integer labels in [0, C). Scores are ``X @ W``; the data loss is the
mean over the N rows. **Bias trick**: append a column of ones to X
(``np.hstack([X, np.ones((N, 1))])``) and a row to W, and the last row of W is
the bias.

The fused functions make one pass over X: each tile of rows gets its scores,
softmax or hinge, and gradient contribution while it is in cache; no N×C array
is formed. Inputs are only read (X and W may be read-only); a non-contiguous X
or W is copied once. The loss is accumulated in float64 for either dtype; the
gradient has W's dtype. Results are bitwise identical for any thread count.
"""
from . import _core
from ._typing import FloatArray
from numpy.typing import ArrayLike
from typing import Optional

__all__ = ["softmax_loss", "svm_loss", "softmax_cross_entropy", "multiclass_hinge"]


def softmax_loss(W: FloatArray, X: FloatArray, y: ArrayLike, reg: float = 0.0, *, penalty: str = "l2",
                 l1_ratio: float = 0.5, sample_weight: Optional[ArrayLike] = None, unpenalized_rows: int = 0,
                 intercept: bool = False) -> tuple[float, FloatArray]:
    """Softmax (cross-entropy) loss of a linear classifier and its gradient.

    ::

        scores = X @ W
        p = exp(scores - max) / sum(exp(scores - max))       (row by row)
        loss = sum_i(w[i] * -log p[i, y[i]]) / sum(w) + R(W[:D-k])
        dW = X.T @ (w[:, None] * (p - onehot(y))) / sum(w) + dR/dW      (0 in the last k rows)

    with ``w = sample_weight`` (all ones by default: the plain mean over N) and
    ``k = unpenalized_rows``. With ``intercept=True`` W has D + 1 rows, the last
    the intercepts: ``scores = X @ W[:-1] + W[-1]`` (the bias trick without a
    column of ones in X, so X is not copied).

    Parameters
    ----------
    W : numpy.ndarray, shape (D, C), or (D + 1, C) with intercept=True
        Weights, float32 or float64.
    X : numpy.ndarray, shape (N, D)
        Data, same dtype as W; N >= 1. Use the bias trick for a bias.
    y : array_like of int, shape (N,)
        Labels in [0, C).
    reg : float, default 0
        Regularization strength, >= 0.
    penalty : {"l2", "l1", "elastic_net"}, default "l2"
        ``R(W)`` as in :func:`fastopt.regularization.penalty`: l2 = reg·ΣW²
        (gradient 2·reg·W), l1 = reg·Σ|W|, elastic_net mixes them by ``l1_ratio``.
    l1_ratio : float, default 0.5
        Weight of the l1 term for ``penalty="elastic_net"``, in [0, 1].
    sample_weight : array_like of float, shape (N,), optional
        Weight of every row: finite, >= 0, with a positive sum. The data loss is
        their weighted mean, so weights of 2 equal duplicated rows.
    unpenalized_rows : int, default 0
        The last ``unpenalized_rows`` rows of W are left out of the penalty: 1
        for a bias row (scikit-learn's convention of an unpenalized intercept).
    intercept : bool, default False
        W's last row is the intercept (W is (D + 1) × C).

    Returns
    -------
    loss : float
    dW : numpy.ndarray, shape (D, C), W's dtype

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> X = np.random.randn(5, 4).astype(np.float32); y = np.array([0, 1, 2, 0, 1])
    >>> loss, dW = fastopt.softmax_loss(np.zeros((4, 3), np.float32), X, y)
    >>> round(loss, 4) == round(float(np.log(3)), 4)
    True
    """
    return _core.softmax_loss(W, X, y, reg, penalty, l1_ratio, sample_weight, unpenalized_rows, intercept)


def svm_loss(W: FloatArray, X: FloatArray, y: ArrayLike, reg: float = 0.0, *, delta: float = 1.0, penalty: str = "l2",
             l1_ratio: float = 0.5, sample_weight: Optional[ArrayLike] = None, unpenalized_rows: int = 0,
             intercept: bool = False) -> tuple[float, FloatArray]:
    """Multiclass SVM (Weston–Watkins hinge) loss of a linear classifier and its gradient.

    ::

        scores = X @ W
        margins[i, j] = max(0, scores[i, j] - scores[i, y[i]] + delta)   (j != y[i])
        loss = sum_i(w[i] * sum_j margins[i, j]) / sum(w) + R(W[:D-k])
        dscores[i, j] = 1 if margin > 0 (strictly), dscores[i, y[i]] = -(count of such j)
        dW = X.T @ (w[:, None] * dscores) / sum(w) + dR/dW      (0 in the last k rows)

    Parameters
    ----------
    W, X, y, reg, penalty, l1_ratio, sample_weight, unpenalized_rows, intercept
        As in :func:`softmax_loss`.
    delta : float, default 1.0
        The margin, >= 0.

    Returns
    -------
    loss : float
    dW : numpy.ndarray, shape (D, C)
    """
    return _core.svm_loss(W, X, y, reg, delta, penalty, l1_ratio, sample_weight, unpenalized_rows, intercept)


def softmax_cross_entropy(scores: FloatArray, y: ArrayLike) -> tuple[float, FloatArray]:
    """Mean softmax cross-entropy of a batch of scores, for the top of any model.

    Parameters
    ----------
    scores : numpy.ndarray, shape (N, C)
        float32 or float64, N >= 1.
    y : array_like of int, shape (N,)
        Labels in [0, C).

    Returns
    -------
    loss : float
        ``mean_i(logsumexp(scores[i]) - scores[i, y[i]])``, computed stably.
    dscores : numpy.ndarray, shape (N, C)
        ``(softmax(scores) - onehot(y)) / N``.
    """
    return _core.softmax_cross_entropy(scores, y)


def multiclass_hinge(scores: FloatArray, y: ArrayLike, delta: float = 1.0) -> tuple[float, FloatArray]:
    """Mean multiclass hinge (Weston–Watkins) loss of a batch of scores.

    Parameters
    ----------
    scores : numpy.ndarray, shape (N, C)
    y : array_like of int, shape (N,)
    delta : float, default 1.0

    Returns
    -------
    loss : float
        ``mean_i sum_{j != y_i} max(0, s_ij - s_iy + delta)``.
    dscores : numpy.ndarray, shape (N, C)
        1/N where a margin is strictly positive, ``-count/N`` at the label.

    Examples
    --------
    The lecture's example (cat, car, frog):

    >>> import numpy as np, fastopt
    >>> s = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    >>> round(fastopt.multiclass_hinge(s, [0, 1, 2])[0], 2)
    5.27
    """
    return _core.multiclass_hinge(scores, y, delta)
