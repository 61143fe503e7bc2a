"""The native training loop of a linear classifier.

:func:`train_linear` runs minibatch training in C++: per update it draws a
minibatch with a seeded :class:`SplitMix64` generator, gathers its rows, calls
the fused loss (:func:`fastopt.softmax_loss` / :func:`fastopt.svm_loss`) and the
fused step of a :mod:`fastopt.optim` optimizer, with no Python in between. Each
update makes exactly the calls a Python loop with the same rows would make, so
the result is bitwise that loop's; :mod:`fastopt.reference.training` is the same
loop in plain Python and NumPy.

Example
-------
>>> import numpy as np, fastopt
>>> from fastopt.training import train_linear
>>> X, y = fastopt.datasets.load_digits()
>>> X = np.hstack([fastopt.datasets.standardize(X)[0], np.ones((len(X), 1))])   # bias trick
>>> W = np.zeros((X.shape[1], 10))
>>> losses = train_linear(fastopt.optim.SGD([W], lr=0.1, momentum=0.9), X, y,
...                       loss="softmax", reg=1e-4, epochs=10, batch_size=100, rng=0)
"""
import secrets

from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import numpy.typing as npt

from . import _core
from ._typing import FloatArray, IntArray

if TYPE_CHECKING:
    from .optim import Optimizer

__all__ = ["SplitMix64", "train_linear", "minibatch_indices"]

_MASK64 = (1 << 64) - 1
SAMPLINGS = ("epochs", "with_replacement")


class SplitMix64:
    """The training loop's random generator: SplitMix64, whose state is one uint64.

    Parameters
    ----------
    seed : None, int, SplitMix64, numpy.random.Generator or numpy.random.RandomState
        ``None`` draws a seed from the OS; an int is the initial state (mod 2**64);
        a generator supplies one. Passing a :class:`SplitMix64` copies its state.

    Notes
    -----
    ``next()``: ``state += 0x9E3779B97F4A7C15``, then the SplitMix64 finalizer of
    the state. Integers in ``[0, n)`` use Lemire's multiply-and-reject method.
    An epoch is a Fisher–Yates shuffle of ``0..N-1`` started from the identity
    (``for i = N-1 .. 1: swap(rows[i], rows[below(i + 1)])``), cut into
    consecutive batches; with replacement, a batch is ``batch_size`` draws of
    ``below(N)``.
    """

    def __init__(self, seed: "Seed" = None) -> None:
        if seed is None:
            state = secrets.randbits(64)
        elif isinstance(seed, SplitMix64):
            state = seed.state
        elif isinstance(seed, np.random.Generator):
            state = int(seed.integers(0, 2**64, dtype=np.uint64))
        elif isinstance(seed, np.random.RandomState):
            state = int(seed.randint(0, 2**63, dtype=np.int64))
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
            state = int(seed) & _MASK64
        else:
            raise TypeError(f"seed must be None, an int, a SplitMix64 or a numpy random generator, "
                            f"got {type(seed).__name__}")
        self.state: int = state

    def __repr__(self) -> str:
        return f"SplitMix64(state={self.state})"

    def minibatch_indices(self, n: int, batch_size: int, count: int, sampling: str = "epochs") -> IntArray:
        """The rows ``count`` epochs (or iterations) visit, concatenated; advances the state.

        At most 2**28 indices per call (ValueError otherwise)."""
        idx, self.state = _core.minibatch_indices(sampling, n, batch_size, count, self.state)
        return idx


#: What ``rng`` / ``seed`` arguments accept.
Seed = Union[None, int, np.integer[Any], SplitMix64, np.random.Generator, np.random.RandomState]


def minibatch_indices(n: int, batch_size: int, count: int, sampling: str = "epochs", rng: "Seed" = None) -> IntArray:
    """Rows of ``count`` epochs (``count * n``) or iterations (``count * batch_size``).

    A convenience over :meth:`SplitMix64.minibatch_indices`.
    """
    return SplitMix64(rng).minibatch_indices(n, batch_size, count, sampling)


def _as_rng(rng: "Seed") -> SplitMix64:
    return rng if isinstance(rng, SplitMix64) else SplitMix64(rng)


def _schedule_arguments(epochs: Optional[int], num_iters: Optional[int]) -> tuple[str, int, str]:
    """(sampling, count, the count's argument name)."""
    if (epochs is None) == (num_iters is None):
        raise ValueError("give exactly one of epochs (shuffled passes over X) or num_iters "
                         "(minibatches drawn with replacement, as in the course)")
    if epochs is not None:
        return "epochs", epochs, "epochs"
    assert num_iters is not None
    return "with_replacement", num_iters, "num_iters"


def train_linear(optimizer: "Optimizer", X: FloatArray, y: npt.ArrayLike, *, loss: str = "softmax", reg: float = 0.0,
                 penalty: str = "l2", l1_ratio: float = 0.5, delta: float = 1.0, batch_size: int = 200,
                 epochs: Optional[int] = None, num_iters: Optional[int] = None, rng: "Seed" = None,
                 sample_weight: Optional[npt.ArrayLike] = None, unpenalized_rows: int = 0,
                 intercept: bool = False) -> npt.NDArray[np.float64]:
    """Train a linear classifier with minibatches, in native code.

    Per update ``u`` (``t`` = the optimizer's step count before it)::

        rows = next minibatch (see SplitMix64)
        loss[u], dW = softmax_loss(W, X[rows], y[rows], reg, penalty=..., l1_ratio=...,
                                   unpenalized_rows=...)        # or svm_loss
        # with sample_weight w, the data loss of the minibatch is
        # sum(w[rows] * loss_i) / (len(rows) * mean(w)): unbiased for the weighted mean
        optimizer.step([dW])              # lr = schedule(t) when the optimizer has a schedule

    Parameters
    ----------
    optimizer : fastopt.optim.Optimizer
        Holds ``W`` (D×C) as its only parameter; updated in place, its step
        count and state advance as if ``step`` had been called per update.
    X : numpy.ndarray, shape (N, D)
        Data, W's dtype. Use the bias trick for a bias.
    y : array_like of int, shape (N,)
        Labels in [0, C).
    loss : {"softmax", "svm"}, default "softmax"
    reg, penalty, l1_ratio, delta, unpenalized_rows, intercept
        As in :func:`fastopt.softmax_loss` / :func:`fastopt.svm_loss` (``delta``: svm only).
    sample_weight : array_like of float, shape (N,), optional
        Weight of every row of X (finite, >= 0, positive sum).
    batch_size : int, default 200
    epochs : int, optional
        Shuffled passes over X, ``ceil(N / batch_size)`` updates each (the last
        batch of an epoch may be smaller).
    num_iters : int, optional
        Updates on minibatches drawn with replacement (the course's loop). Give
        exactly one of ``epochs`` and ``num_iters``.
    rng : None, int, SplitMix64 or numpy random generator
        Seed of the minibatches. A :class:`SplitMix64` is advanced, so
        consecutive calls continue one stream.

    Returns
    -------
    numpy.ndarray of float64
        The minibatch loss before every update.

    Raises
    ------
    ValueError, TypeError
        Before anything is changed, for a bad argument (named in the message).
    KeyboardInterrupt
        On Ctrl-C, after the current epoch (or iteration): W, the optimizer's
        state and step count, and a :class:`SplitMix64` ``rng`` then hold the
        updates done so far, consistently.
    """
    from .optim import Optimizer

    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastopt.optim optimizer, got {type(optimizer).__name__}")
    sampling, count, count_name = _schedule_arguments(epochs, num_iters)
    generator = _as_rng(rng)
    if not isinstance(X, np.ndarray):
        raise TypeError(f"X must be a numpy.ndarray, got {type(X).__name__}")
    n_rows = X.shape[0] if X.ndim >= 1 else 0
    with optimizer.native_loop() as run:
        updates = _core.train_updates(sampling, n_rows, batch_size, count, count_name)
        lrs = run.planned_lrs(updates)
        losses, state, interrupt = _core.train_linear(
            run.group, run.settings, lrs, run.first_step, X, y, loss, delta,
            penalty, reg, l1_ratio, batch_size, sampling, count, count_name, generator.state, sample_weight,
            unpenalized_rows, intercept)
        generator.state = state
        run.record(len(losses), lrs)
    if interrupt is not None:       # Ctrl-C: W, the optimizer and rng stay consistent at an epoch boundary
        raise interrupt
    return losses

