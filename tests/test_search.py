"""fastopt.search.random_search, the lecture's baseline."""
import numpy as np
import pytest

import fastopt
from fastopt.search import random_search


def quadratic(W):
    return float(np.sum((W - 0.5) ** 2))


def test_keeps_the_best_trial():
    result = random_search(quadratic, (3, 2), num_trials=200, scale=1.0, seed=0)
    assert result.loss == result.losses.min() == result.best_losses[-1]
    assert result.losses[result.best_trial] == result.loss
    assert quadratic(result.W) == result.loss
    assert np.all(np.diff(result.best_losses) <= 0)
    np.testing.assert_array_equal(result.best_losses, np.minimum.accumulate(result.losses))


def test_same_draws_as_the_course_loop():
    rng = np.random.default_rng(7)
    expected = [quadratic(0.01 * rng.standard_normal((4, 3))) for _ in range(50)]
    result = random_search(quadratic, (4, 3), num_trials=50, scale=0.01, seed=7)
    np.testing.assert_array_equal(result.losses, expected)


def test_deterministic_and_accepts_loss_gradient_pairs():
    X, y = fastopt.datasets.load_digits()
    X = np.hstack([fastopt.datasets.standardize(X)[0], np.ones((len(X), 1))])
    a = random_search(lambda W: fastopt.softmax_loss(W, X, y), (65, 10), num_trials=30, scale=0.01, seed=1)
    b = random_search(lambda W: fastopt.softmax_loss(W, X, y)[0], (65, 10), num_trials=30, scale=0.01, seed=1)
    np.testing.assert_array_equal(a.W, b.W)
    assert a.W.dtype == np.float64 and a.loss < np.log(10) + 0.05


def test_more_trials_never_worse():
    few = random_search(quadratic, (2,), num_trials=10, scale=1.0, seed=3)
    many = random_search(quadratic, (2,), num_trials=1000, scale=1.0, seed=3)
    assert many.loss <= few.loss


def test_nan_losses_are_never_best():
    calls = iter(range(100))
    result = random_search(lambda W: np.nan if next(calls) % 2 == 0 else quadratic(W), (2,), num_trials=10,
                           scale=1.0, seed=0)
    assert result.best_trial % 2 == 1 and np.isfinite(result.loss)


@pytest.mark.parametrize("kwargs,match", [(dict(num_trials=0), "num_trials"), (dict(num_trials=2.5), "num_trials"),
                                          (dict(scale=0.0), "scale"), (dict(scale=np.inf), "scale")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_search(quadratic, (2,), **kwargs)


def test_no_finite_loss():
    with pytest.raises(ValueError, match="no finite loss"):
        random_search(lambda W: np.inf, (2,), num_trials=3)
