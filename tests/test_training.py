"""The native training loop (fastopt.training) against the same loop in Python.

Native == a Python loop over fastopt's own kernels with the same rows (bitwise,
every optimizer, sampling, dtype, ISA and thread count); native ≈ the plain
NumPy reference loop (docs/design.md's tolerances); the generator against SplitMix64's
published outputs; bad input changes nothing.
"""
import numpy as np
import pytest

import fastopt
import registry_cases
from conftest import tolerances
from fastopt import optim, schedules
from fastopt.reference import training as ref_training
from fastopt.training import SplitMix64, minibatch_indices, train_linear

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.05),
    "sgd-weight-decay": lambda p: optim.SGD(p, lr=0.05, weight_decay=1e-3),
    "momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
    "nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.05, lr_decay=0.01),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01),
    "rmsprop-centered-momentum": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adam": lambda p: optim.Adam(p, lr=0.01),
    "adam-amsgrad-weight-decay": lambda p: optim.Adam(p, lr=0.01, amsgrad=True, weight_decay=1e-3),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
    "adam-cosine-schedule": lambda p: optim.Adam(p, lr=schedules.cosine(0.02, 40)),
    "lion-weight-decay": lambda p: optim.Lion(p, lr=1e-3, weight_decay=0.1),
    "sgd-momentum-maximize": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, maximize=True),
    "sgd-dampening": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.5),
}
# Every other rule of the registry, with every option on (tests/registry_cases.py).
OPTIMIZERS.update({
    f"{name}-all-options": (lambda cls, options: lambda p: cls(p, **options))(
        getattr(optim, registry_cases.class_name(name)),
        registry_cases.as_class_options(name, registry_cases.option_sets(name)[-1]))
    for name in registry_cases.RULES if name not in ("sgd", "adam", "rmsprop")})
SAMPLING = {"epochs": dict(epochs=2), "with_replacement": dict(num_iters=9)}

_data = {}


def problem(N, D, C, dtype, seed=0):
    key = (N, D, C, np.dtype(dtype).name, seed)
    if key not in _data:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, C, N)
        centers = rng.standard_normal((C, D))
        X = (centers[y] + rng.standard_normal((N, D))).astype(dtype)
        _data[key] = (X, y)
    return _data[key]


def python_loop(optimizer, X, y, *, loss, reg, penalty, batch_size, seed, epochs=None, num_iters=None):
    """The loop in Python over fastopt's kernels, with the reference generator's rows."""
    sampling, count = ("epochs", epochs) if epochs is not None else ("with_replacement", num_iters)
    W = optimizer.params[0]
    losses = []
    for rows in ref_training.minibatches(ref_training.SplitMix64(seed), len(X), batch_size, count, sampling):
        if loss == "softmax":
            value, dW = fastopt.softmax_loss(W, X[rows], y[rows], reg, penalty=penalty)
        else:
            value, dW = fastopt.svm_loss(W, X[rows], y[rows], reg, penalty=penalty)
        optimizer.step([dW])
        losses.append(value)
    return np.array(losses)


# ------------------------------------------------------------------ generator

def test_splitmix64_matches_published_outputs():
    # Outputs of the reference C implementation (Vigna, splitmix64.c) from state 0.
    rng = ref_training.SplitMix64(0)
    assert [rng.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


@pytest.mark.parametrize("sampling", ["epochs", "with_replacement"])
@pytest.mark.parametrize("n,batch_size", [(1, 1), (2, 3), (7, 3), (1000, 64), (3, 1000)])
@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1, 123456789])
def test_native_minibatches_equal_reference(sampling, n, batch_size, seed):
    fast, ref = SplitMix64(seed), ref_training.SplitMix64(seed)
    for _ in range(2):  # the state carries over between calls
        np.testing.assert_array_equal(fast.minibatch_indices(n, batch_size, 3, sampling),
                                      ref.minibatch_indices(n, batch_size, 3, sampling))
        assert fast.state == ref.state


def test_epochs_are_permutations_and_draws_are_uniform():
    idx = minibatch_indices(50, 7, 4, "epochs", rng=3).reshape(4, 50)
    for epoch in idx:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(50))
    assert not np.array_equal(idx[0], idx[1])
    draws = minibatch_indices(10, 1000, 100, "with_replacement", rng=5)
    counts = np.bincount(draws, minlength=10)
    chi2 = float(((counts - 10_000) ** 2 / 10_000).sum())
    assert chi2 < 30  # 9 degrees of freedom: p < 0.001 for a uniform generator


def test_seed_forms():
    assert SplitMix64(5).state == 5
    assert SplitMix64(-1).state == 2**64 - 1
    assert SplitMix64(SplitMix64(9)).state == 9
    assert SplitMix64(np.random.default_rng(0)).state == SplitMix64(np.random.default_rng(0)).state
    assert SplitMix64(np.random.RandomState(0)).state == SplitMix64(np.random.RandomState(0)).state
    assert SplitMix64(None).state != SplitMix64(None).state
    with pytest.raises(TypeError, match="seed"):
        SplitMix64("7")


# ----------------------------------------------------------- the training loop

@pytest.mark.parametrize("sampling", SAMPLING)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_native_loop_is_bitwise_the_python_loop(name, sampling, dtype, isa, threads):
    X, y = problem(301, 20, 5, dtype)
    W_native = np.zeros((20, 5), dtype)
    W_python = W_native.copy()
    opt_native, opt_python = OPTIMIZERS[name]([W_native]), OPTIMIZERS[name]([W_python])
    kw = dict(loss="softmax", reg=1e-3, penalty="l2", batch_size=64, **SAMPLING[sampling])
    native = train_linear(opt_native, X, y, rng=11, **kw)
    python = python_loop(opt_python, X, y, seed=11, **kw)
    np.testing.assert_array_equal(native, python)
    np.testing.assert_array_equal(W_native, W_python)
    assert opt_native.step_count == opt_python.step_count == len(native)
    assert opt_native.lr == opt_python.lr
    for key in opt_native.state:
        np.testing.assert_array_equal(opt_native.state[key][0], opt_python.state[key][0])


@pytest.mark.parametrize("loss", ["softmax", "svm"])
@pytest.mark.parametrize("penalty", ["l2", "l1", "elastic_net"])
def test_losses_and_penalties_cifar_shape_threaded(loss, penalty, isa, threads):
    # D = 3073 and batches of 200: the loss is split into chunks run on several threads.
    X, y = problem(450, 3073, 10, np.float32)
    W_native = np.zeros((3073, 10), np.float32)
    W_python = W_native.copy()
    kw = dict(loss=loss, reg=1e-3, penalty=penalty, batch_size=200, epochs=1)
    native = train_linear(optim.Adam([W_native], lr=1e-3), X, y, rng=4, **kw)
    python = python_loop(optim.Adam([W_python], lr=1e-3), X, y, seed=4, **kw)
    np.testing.assert_array_equal(native, python)
    np.testing.assert_array_equal(W_native, W_python)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("loss", ["softmax", "svm"])
def test_native_loop_agrees_with_numpy_reference_loop(name, loss, dtype, isa):
    X, y = problem(301, 20, 5, dtype)
    W_native = np.zeros((20, 5), dtype)
    W_ref = W_native.copy()
    opt_native, opt_ref = OPTIMIZERS[name]([W_native]), OPTIMIZERS[name]([W_ref])
    kw = dict(loss=loss, reg=1e-3, batch_size=32, epochs=10)   # 100 updates
    native = train_linear(opt_native, X, y, rng=2, **kw)
    ref = ref_training.train_linear(opt_ref, X, y, rng=2, **kw)
    assert len(native) == 100
    np.testing.assert_allclose(W_native, W_ref, **tolerances(dtype, 100))
    # the minibatch losses: docs/design.md's loss tolerance (the W they are computed from agree as above)
    np.testing.assert_allclose(native, ref, **(dict(rtol=1e-12, atol=1e-14) if dtype == np.float64
                                               else dict(rtol=1e-5, atol=1e-6)))


@pytest.mark.parametrize("loss", ["softmax", "svm"])
@pytest.mark.parametrize("sampling", SAMPLING)
def test_sample_weights_and_unpenalized_bias_against_the_reference_loop(loss, sampling, dtype, isa, threads):
    X, y = problem(301, 20, 5, dtype)
    weights = np.random.default_rng(3).uniform(0, 2, len(X))
    W_native = np.zeros((20, 5), dtype)
    W_ref = W_native.copy()
    W_native = np.zeros((21, 5), dtype)   # the last row: intercepts (intercept=True)
    W_ref = W_native.copy()
    kw = dict(loss=loss, reg=1e-2, batch_size=32, sample_weight=weights, unpenalized_rows=1, intercept=True,
              **SAMPLING[sampling])
    native = train_linear(optim.Adam([W_native], lr=0.01), X, y, rng=5, **kw)
    ref = ref_training.train_linear(optim.Adam([W_ref], lr=0.01), X, y, rng=5, **kw)
    np.testing.assert_allclose(W_native, W_ref, **tolerances(dtype, len(native)))
    np.testing.assert_allclose(native, ref, **(dict(rtol=1e-12, atol=1e-14) if dtype == np.float64
                                               else dict(rtol=1e-5, atol=1e-6)))


def test_consecutive_calls_continue_one_stream():
    X, y = problem(301, 20, 5, np.float64)
    W1, W2 = np.zeros((20, 5)), np.zeros((20, 5))
    opt1, opt2 = optim.Adam([W1], lr=0.01), optim.Adam([W2], lr=0.01)
    once = train_linear(opt1, X, y, epochs=4, batch_size=50, rng=8)
    rng = SplitMix64(8)
    twice = np.concatenate([train_linear(opt2, X, y, epochs=1, batch_size=50, rng=rng) for _ in range(4)])
    np.testing.assert_array_equal(once, twice)
    np.testing.assert_array_equal(W1, W2)


def test_training_lowers_the_loss_and_learns():
    X, y = problem(600, 20, 5, np.float64)
    W = np.zeros((20, 5))
    losses = train_linear(optim.SGD([W], lr=0.1, momentum=0.9), X, y, epochs=20, batch_size=50, rng=0)
    assert losses[-10:].mean() < 0.5 * losses[:3].mean()
    assert np.mean(np.argmax(X @ W, axis=1) == y) > 0.9


def test_last_batch_of_an_epoch_is_smaller():
    X, y = problem(301, 20, 5, np.float64)
    opt = optim.SGD([np.zeros((20, 5))], lr=0.1)
    assert len(train_linear(opt, X, y, epochs=3, batch_size=100, rng=0)) == 3 * 4
    assert len(train_linear(opt, X, y, epochs=1, batch_size=1000, rng=0)) == 1
    assert opt.step_count == 13


def test_course_style_train_uses_the_native_loop():
    X, y = problem(301, 20, 5, np.float64)
    clf = fastopt.linear.Softmax()
    history = clf.train(X, y, learning_rate=0.1, reg=1e-4, num_iters=30, batch_size=40, seed=3)
    W0 = (0.001 * np.random.default_rng(3).standard_normal((20, 5)))
    expected = train_linear(optim.SGD([W0], lr=0.1), X, y, reg=1e-4, num_iters=30, batch_size=40, rng=3)
    np.testing.assert_array_equal(history, expected)
    np.testing.assert_array_equal(clf.W, W0)


def test_estimator_fit_is_the_same_with_and_without_callback():
    X, y = problem(301, 20, 5, np.float64)
    kw = dict(solver="sgd", max_iter=5, random_state=0)
    a = fastopt.linear.SoftmaxClassifier(**kw).fit(X, y)
    seen = []
    b = fastopt.linear.SoftmaxClassifier(**kw).fit(X, y, callback=lambda e, l: seen.append(e))
    assert seen == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.loss_history_ == b.loss_history_


# ------------------------------------------------------------------ bad input

def _snapshot(opt):
    return (opt.params[0].copy(), {k: v[0].copy() for k, v in opt.state.items()}, opt.step_count, opt.lr)


def _assert_unchanged(opt, before):
    W, state, step, lr = before
    np.testing.assert_array_equal(opt.params[0], W)
    for k, v in state.items():
        np.testing.assert_array_equal(opt.state[k][0], v)
    assert opt.step_count == step and opt.lr == lr


X_GOOD, Y_GOOD = problem(50, 4, 3, np.float64, seed=1)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(X=X_GOOD.astype(np.float32)), TypeError, "X and W"),
    (dict(X=X_GOOD[:, :3]), ValueError, "X has 3 columns"),
    (dict(X=X_GOOD[:0]), ValueError, "no rows"),
    (dict(y=np.full(50, 3)), ValueError, r"y\[0\] = 3"),
    (dict(y=Y_GOOD[:10]), ValueError, "y has 10 labels"),
    (dict(y=Y_GOOD.astype(float)), ValueError, "integer"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(epochs=0), ValueError, "epochs must be an int >= 1"),
    (dict(epochs=None), ValueError, "exactly one of epochs"),
    (dict(num_iters=5), ValueError, "exactly one of epochs"),
    (dict(loss="hinge"), ValueError, "loss must be"),
    (dict(reg=-1.0), ValueError, "reg"),
    (dict(penalty="l3"), ValueError, "penalty"),
    (dict(l1_ratio=2.0), ValueError, "l1_ratio"),
    (dict(delta=-1.0), ValueError, "delta"),
    (dict(rng="seed"), TypeError, "seed"),
])
def test_bad_input_changes_nothing(kwargs, error, match):
    W = np.zeros((4, 3))
    opt = optim.Adam([W], lr=0.01)
    train_linear(opt, X_GOOD, Y_GOOD, epochs=1, batch_size=16, rng=0)   # some state to protect
    before = _snapshot(opt)
    args = dict(X=X_GOOD, y=Y_GOOD, epochs=1, batch_size=16, rng=SplitMix64(1))
    args.update(kwargs)
    state = args["rng"].state if isinstance(args["rng"], SplitMix64) else None
    with pytest.raises(error, match=match):
        train_linear(opt, args.pop("X"), args.pop("y"), **args)
    _assert_unchanged(opt, before)
    if state is not None:
        assert args["rng"].state == state


def test_schedule_with_a_bad_late_lr_changes_nothing():
    W = np.ones((4, 3))
    opt = optim.SGD([W], lr=lambda t: 0.1 if t < 5 else -0.1)   # the 6th update's lr is invalid
    before = _snapshot(opt)
    with pytest.raises(ValueError, match="lr"):
        train_linear(opt, X_GOOD, Y_GOOD, num_iters=10, batch_size=8, rng=0)
    _assert_unchanged(opt, before)


def test_wrong_optimizer_shapes():
    with pytest.raises(TypeError, match="optimizer"):
        train_linear(object(), X_GOOD, Y_GOOD, epochs=1)
    with pytest.raises(ValueError, match="exactly one parameter"):
        train_linear(optim.SGD([np.zeros((4, 3)), np.zeros(3)], lr=0.1), X_GOOD, Y_GOOD, epochs=1)
    with pytest.raises(ValueError, match="2-D"):
        train_linear(optim.SGD([np.zeros(12)], lr=0.1), X_GOOD, Y_GOOD, epochs=1)


def test_X_overlapping_W_is_refused():
    X = np.zeros((54, 3))
    W = X[:3]                        # W (3×3) is X's first rows: the loop would write its own data
    opt = optim.SGD([W], lr=0.1)
    with pytest.raises(ValueError, match="X"):
        train_linear(opt, X, np.zeros(54, np.int64), epochs=1)
    train_linear(opt, X.copy(), np.zeros(54, np.int64), epochs=1)   # a copy is fine


def test_course_style_verbose_prints_every_100_and_trains_the_same(capsys):
    X, y = problem(301, 20, 5, np.float64)
    quiet = fastopt.linear.LinearSVM()
    loud = fastopt.linear.LinearSVM()
    a = quiet.train(X, y, learning_rate=0.01, num_iters=250, batch_size=20, seed=1)
    b = loud.train(X, y, learning_rate=0.01, num_iters=250, batch_size=20, seed=1, verbose=True)
    assert a == b and len(a) == 250
    np.testing.assert_array_equal(quiet.W, loud.W)
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "iteration 0 / 250", "iteration 100 / 250", "iteration 200 / 250"]
    assert fastopt.linear.Softmax().train(X, y, num_iters=0) == []


def test_ctrl_c_stops_the_loop_and_leaves_a_consistent_state():
    import os
    import signal
    import threading

    X, y = problem(2000, 300, 10, np.float64)
    W = np.zeros((300, 10))
    opt = optim.Adam([W], lr=1e-3)
    rng = SplitMix64(3)
    # pytest run as a background job may have inherited SIGINT ignored (no KeyboardInterrupt at all)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            train_linear(opt, X, y, num_iters=10_000_000, batch_size=100, rng=rng)   # hours if not stopped
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    done = opt.step_count
    assert 0 < done < 10_000_000
    # W, the step count and the generator agree with an uninterrupted run of `done` updates
    W2 = np.zeros((300, 10))
    rng2 = SplitMix64(3)
    train_linear(optim.Adam([W2], lr=1e-3), X, y, num_iters=done, batch_size=100, rng=rng2)
    np.testing.assert_array_equal(W, W2)
    assert rng.state == rng2.state
