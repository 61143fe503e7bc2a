"""Random search: the lecture's "first very bad idea", kept as a baseline.

Strategy #1 of "Regularization and Optimization": draw random weights, keep the
best. It ignores the gradient, so it needs exponentially many trials in the
number of weights; the lecture reaches 15.5% on CIFAR-10 with it, against the
≈40% a linear classifier gets by following the gradient. ``fastopt demo``
plots it next to the optimizers.

Example
-------
>>> import numpy as np, fastopt
>>> from fastopt.search import random_search
>>> X, y = fastopt.datasets.load_digits()
>>> X = np.hstack([fastopt.datasets.standardize(X)[0], np.ones((len(X), 1))])
>>> result = random_search(lambda W: fastopt.softmax_loss(W, X, y)[0], (65, 10), num_trials=100, seed=0)
>>> result.loss <= result.losses[0]
True
"""
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np
import numpy.typing as npt

from ._typing import FloatArray

__all__ = ["random_search", "SearchResult"]


@dataclass
class SearchResult:
    """What :func:`random_search` found."""

    W: FloatArray              # the best weights
    loss: float                # their loss
    losses: FloatArray         # the loss of every trial, in order
    best_losses: FloatArray    # the best loss after each trial (running minimum)
    best_trial: int            # index of the trial that found W


def random_search(fun: Callable[[FloatArray], Any], shape: Union[int, tuple[int, ...]], num_trials: int = 1000,
                  scale: float = 1e-4, *, dtype: npt.DTypeLike = np.float64,
                  seed: Union[None, int, np.random.Generator] = None) -> SearchResult:
    """Random search over weights, as in the lecture.

    The loop::

        bestloss = float("inf")
        for num in range(num_trials):
            W = np.random.randn(*shape) * scale    # random parameters
            loss = fun(W)                          # the loss over the whole training set
            if loss < bestloss:                    # keep track of the best solution
                bestloss, bestW = loss, W

    Parameters
    ----------
    fun : callable
        ``fun(W) -> loss``; a ``(loss, gradient)`` pair, as :func:`fastopt.softmax_loss`
        returns, is accepted too (the gradient is ignored).
    shape : tuple of int
        Shape of W.
    num_trials : int, default 1000
    scale : float, default 1e-4
        Standard deviation of the random weights (the lecture's 0.0001).
    dtype : numpy dtype, default float64
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    SearchResult

    Raises
    ------
    ValueError
        For ``num_trials < 1``, a non-finite or non-positive ``scale``, or when
        no trial gave a finite loss.
    """
    if isinstance(num_trials, bool) or not isinstance(num_trials, (int, np.integer)) or num_trials < 1:
        raise ValueError(f"num_trials must be an int >= 1, got {num_trials!r}")
    if not (isinstance(scale, (int, float, np.floating)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    rng = np.random.default_rng(seed)
    losses = np.empty(num_trials)
    best_loss, best_W, best_trial = math.inf, None, -1
    for trial in range(num_trials):
        W = (scale * rng.standard_normal(shape)).astype(dtype)
        value = fun(W)
        loss = float(value[0] if isinstance(value, tuple) else value)
        losses[trial] = loss
        if loss < best_loss:
            best_loss, best_W, best_trial = loss, W, trial
    if best_W is None:
        raise ValueError(f"fun returned no finite loss in {num_trials} trials")
    return SearchResult(W=best_W, loss=best_loss, losses=losses,
                        best_losses=np.fmin.accumulate(np.where(np.isnan(losses), np.inf, losses)),
                        best_trial=best_trial)
