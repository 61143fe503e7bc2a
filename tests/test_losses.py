"""Loss kernels against the NumPy reference (docs/design.md 'Losses and regularization')."""
import numpy as np
import pytest

import fastopt
from fastopt import _core, gradcheck, reference

PENALTIES = ["l2", "l1", "elastic_net"]
# (N, D, C): every N in {1, 7, 256, 10000}, D in {1, 5, 3073}, C in {2, 3, 10, 17, 64, 100, 1000}.
SHAPES = [(1, 1, 2), (7, 5, 3), (7, 3073, 17), (256, 3073, 10), (256, 5, 64), (256, 1, 100),
          (7, 5, 1000), (10000, 5, 10), (10000, 3073, 10), (1, 3073, 1000)]
LOSSES = {
    "softmax": (fastopt.softmax_loss, reference.softmax_loss),
    "svm": (fastopt.svm_loss, reference.svm_loss),
}


def loss_tolerance(dtype):
    """docs/design.md: fp64 within rtol 1e-12, fp32 within rtol 1e-5 / atol 1e-6 (atol 1e-14
    for fp64, as for the optimizers, covers gradient entries that cancel to ~0)."""
    return dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)


_data = {}


def data(N, D, C, dtype, seed=0):
    key = (N, D, C, np.dtype(dtype).name, seed)
    if key not in _data:
        rng = np.random.default_rng(seed + N + D + C)
        X = rng.standard_normal((N, D)).astype(dtype)
        W = (rng.standard_normal((D, C)) / np.sqrt(D)).astype(dtype)
        y = rng.integers(0, C, N)
        _data[key] = (W, X, y)
    return _data[key]


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("loss", LOSSES)
def test_linear_loss_matches_reference(loss, penalty, dtype, isa, threads):
    fast, ref = LOSSES[loss]
    tol = loss_tolerance(dtype)
    for N, D, C in SHAPES:
        W, X, y = data(N, D, C, dtype)
        kwargs = dict(penalty=penalty, l1_ratio=0.3)
        value, dW = fast(W, X, y, 1e-2, **kwargs)
        ref_value, ref_dW = ref(W, X, y, 1e-2, **kwargs)
        assert dW.dtype == W.dtype and dW.shape == W.shape
        np.testing.assert_allclose(value, ref_value, **tol, err_msg=str((N, D, C)))
        np.testing.assert_allclose(dW, ref_dW, **tol, err_msg=str((N, D, C)))


@pytest.mark.parametrize("loss", LOSSES)
def test_sample_weights_and_unpenalized_rows_match_reference(loss, dtype, isa, threads):
    """Weighted mean data loss, a penalty leaving W's last rows out, and W's last
    row as intercepts (no column of ones in X), on every ISA and thread count."""
    fast, ref = LOSSES[loss]
    tol = loss_tolerance(dtype)
    for N, D, C in SHAPES[:8]:
        W, X, y = data(N, D, C, dtype)
        weights = np.random.default_rng(N + D).uniform(0, 3, N)
        weights[::3] = 0.0
        weights[-1] = 1.0  # a positive sum
        W_bias = np.vstack([W, np.linspace(-1, 1, C).astype(dtype)])  # with an intercepts' row
        for kwargs in (dict(sample_weight=weights), dict(unpenalized_rows=1),
                       dict(sample_weight=weights, unpenalized_rows=D, penalty="elastic_net", l1_ratio=0.3),
                       dict(intercept=True, unpenalized_rows=1), dict(intercept=True, sample_weight=weights),
                       dict(intercept=True, unpenalized_rows=D + 1, penalty="l1")):
            weights_of = W_bias if kwargs.get("intercept") else W
            value, dW = fast(weights_of, X, y, 1e-2, **kwargs)
            # The reference in float64 on the same inputs: in float32 its own error
            # can exceed the tolerance (the intercepts' gradient, a float32 GEMM
            # summing 10,000 rows, was 7e-5 off in relative terms with OpenBLAS on
            # a Xeon, while the kernel was within 3e-6).
            ref_value, ref_dW = ref(weights_of.astype(np.float64), X.astype(np.float64), y, 1e-2, **kwargs)
            assert dW.shape == weights_of.shape
            np.testing.assert_allclose(value, ref_value, **tol, err_msg=str((N, D, C, list(kwargs))))
            np.testing.assert_allclose(dW, ref_dW, **tol, err_msg=str((N, D, C, list(kwargs))))


@pytest.mark.parametrize("loss", LOSSES)
def test_the_intercept_row_is_the_bias_trick(loss):
    fast, _ = LOSSES[loss]
    W, X, y = data(256, 5, 10, np.float64)
    W_bias = np.vstack([W, np.arange(10.0) / 10])
    ones = np.hstack([X, np.ones((256, 1))])
    np.testing.assert_allclose(fast(W_bias, X, y, 1e-2, intercept=True, unpenalized_rows=1)[1],
                               fast(W_bias, ones, y, 1e-2, unpenalized_rows=1)[1], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("loss", LOSSES)
def test_a_weight_of_two_is_a_duplicated_row(loss):
    fast, _ = LOSSES[loss]
    W, X, y = data(256, 5, 10, np.float64)
    weights = np.ones(256)
    weights[:40] = 2.0
    rows = np.r_[np.arange(256), np.arange(40)]
    value, dW = fast(W, X, y, 1e-2, sample_weight=weights, unpenalized_rows=1)
    dup_value, dup_dW = fast(W, X[rows], y[rows], 1e-2, unpenalized_rows=1)
    np.testing.assert_allclose(value, dup_value, rtol=1e-13)
    np.testing.assert_allclose(dW, dup_dW, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kwargs, exc, text", [
    (dict(sample_weight=np.ones(6)), ValueError, "one weight per row"),
    (dict(sample_weight=np.ones((7, 1))), ValueError, "one weight per row"),
    (dict(sample_weight=-np.ones(7)), ValueError, "sample_weight"),
    (dict(sample_weight=np.zeros(7)), ValueError, "positive"),
    (dict(sample_weight=np.full(7, np.nan)), ValueError, "finite"),
    (dict(sample_weight=np.full(7, 1e308)), ValueError, "finite sum"),
    (dict(sample_weight=np.array(["a"] * 7)), TypeError, "real numbers"),
    (dict(sample_weight="x"), TypeError, "sample_weight"),
    (dict(sample_weight=np.ma.ones(7)), TypeError, "sample_weight"),
    (dict(unpenalized_rows=-1), ValueError, "unpenalized_rows"),
    (dict(unpenalized_rows=6), ValueError, "unpenalized_rows"),
    (dict(unpenalized_rows=1.0), TypeError, "unpenalized_rows"),
    (dict(intercept=True), ValueError, "intercepts' row"),
    (dict(intercept=1), TypeError, "intercept"),
])
def test_bad_weights(kwargs, exc, text):
    W, X, y = data(7, 5, 3, np.float64)
    with pytest.raises(exc, match=text):
        fastopt.softmax_loss(W, X, y, 0.1, **kwargs)


@pytest.mark.parametrize("C", [3, 10, 17, 40])
def test_softmax_of_extreme_scores_matches_reference(C, dtype, isa):
    """The vectorized exp over shifted scores: gaps from 0 to 1e4 (where e^x underflows),
    every position of a vector body and tail (rows × C not a multiple of the lanes)."""
    rng = np.random.default_rng(C)
    rows = []
    for gap in (0.0, 1e-3, 1.0, 20.0, 50.0, 88.0, 100.0, 700.0, 746.0, 1e4):
        row = rng.standard_normal(C)
        row[rng.integers(C)] += gap
        rows.append(row)
    scores = np.array(rows * 7, dtype=dtype)
    y = rng.integers(0, C, len(scores))
    value, dscores = fastopt.softmax_cross_entropy(scores, y)
    ref_value, ref_dscores = reference.softmax_cross_entropy(scores, y)
    tol = loss_tolerance(dtype)
    np.testing.assert_allclose(value, ref_value, **tol)
    np.testing.assert_allclose(dscores, ref_dscores, **tol)
    scores[3, 1] = np.nan  # NaN stays NaN
    value, dscores = fastopt.softmax_cross_entropy(scores, y)
    assert np.isnan(value) and np.isnan(dscores[3]).all() and np.isfinite(np.delete(dscores, 3, axis=0)).all()


# The class-lane, the class-pair and the per-class kernel.
@pytest.mark.parametrize("D, C", [(20, 10), (261, 10), (20, 100)])
@pytest.mark.parametrize("loss", LOSSES)
def test_non_finite_data_gives_the_reference_nan(loss, D, C, dtype, isa):
    """An infinite or NaN feature makes that row's scores non-finite: the loss is NaN,
    as in the reference (the hinge's max(0, NaN) is NaN), whichever kernel runs."""
    fast, ref = LOSSES[loss]
    W, X, y = data(37, D, C, dtype)
    for bad in (np.inf, -np.inf, np.nan):
        Xb = X.copy()
        Xb[5, D - 1] = bad  # in the class-pair kernel, the zero-padded last group
        value, dW = fast(W, Xb, y, 1e-3)
        with np.errstate(invalid="ignore", over="ignore"):  # the reference's NumPy warns
            ref_value, ref_dW = ref(W, Xb, y, 1e-3)
        assert np.isnan(ref_value) and np.isnan(value), (bad, value)
        assert np.array_equal(np.isnan(dW), np.isnan(ref_dW))


@pytest.mark.parametrize("C", [3, 10, 100])
def test_hinge_of_non_finite_scores_matches_reference(C, dtype, isa):
    scores = (3 * np.random.default_rng(C).standard_normal((9, C))).astype(dtype)
    labels = np.arange(9) % C
    for bad in (np.inf, np.nan):
        scores_bad = scores.copy()
        scores_bad[4, (labels[4] + 1) % C] = bad
        value, _ = fastopt.multiclass_hinge(scores_bad, labels)
        with np.errstate(invalid="ignore"):
            ref_value, _ = reference.multiclass_hinge(scores_bad, labels)
        assert np.isnan(value) == np.isnan(ref_value), (bad, value, ref_value)
        if not np.isnan(ref_value):
            assert value == pytest.approx(ref_value, rel=1e-6)


@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_scores_losses_match_reference(loss, dtype, isa, threads):
    tol = loss_tolerance(dtype)
    for N, C in [(1, 2), (7, 3), (256, 10), (3000, 17), (100, 1000)]:
        rng = np.random.default_rng(N * C)
        scores = (3 * rng.standard_normal((N, C))).astype(dtype)
        y = rng.integers(0, C, N)
        if loss == "softmax":
            got, ref = fastopt.softmax_cross_entropy(scores, y), reference.softmax_cross_entropy(scores, y)
        else:
            got, ref = fastopt.multiclass_hinge(scores, y, 0.5), reference.multiclass_hinge(scores, y, 0.5)
        np.testing.assert_allclose(got[0], ref[0], **tol)
        np.testing.assert_allclose(got[1], ref[1], **tol)


@pytest.mark.parametrize("kind", PENALTIES)
def test_penalty_matches_reference(kind, dtype, isa):
    rng = np.random.default_rng(3)
    W = rng.standard_normal((37, 11)).astype(dtype)
    W[0, :3] = 0  # sign(0) = 0
    value, grad = fastopt.regularization.penalty(W, 0.3, kind, 0.25)
    ref_value, ref_grad = reference.penalty(W, 0.3, kind, 0.25)
    np.testing.assert_allclose(value, ref_value, **loss_tolerance(dtype))
    np.testing.assert_allclose(grad, ref_grad, **loss_tolerance(dtype))
    assert grad.dtype == W.dtype
    if kind == "l1":
        assert np.all(grad[0, :3] == 0)


def test_naive_equals_vectorized():
    for N, D, C in [(1, 1, 2), (7, 5, 3), (50, 20, 10)]:
        W, X, y = data(N, D, C, np.float64)
        for naive, vectorized in ((reference.softmax_loss_naive, reference.softmax_loss_vectorized),
                                  (reference.svm_loss_naive, reference.svm_loss_vectorized)):
            a, b = naive(W, X, y, 0.1), vectorized(W, X, y, 0.1)
            np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
            np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(reference.softmax_loss(W, X, y, 0.1)[1],
                                   reference.softmax_loss_vectorized(W, X, y, 0.1)[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_check(loss, penalty):
    fast = LOSSES[loss][0]
    W, X, y = data(50, 20, 7, np.float64, seed=5)
    W = W.copy()
    value, dW = fast(W, X, y, 0.1, penalty=penalty)
    errors = gradcheck.grad_check_sparse(lambda w: fast(w, X, y, 0.1, penalty=penalty)[0], W, dW,
                                         num_checks=20, seed=0)
    assert errors.shape == (20,)
    assert np.max(errors) < 1e-7


@pytest.mark.parametrize("fn", [fastopt.softmax_cross_entropy, fastopt.multiclass_hinge])
def test_gradient_check_from_scores(fn):
    rng = np.random.default_rng(9)
    scores = rng.standard_normal((30, 6))
    y = rng.integers(0, 6, 30)
    _, dscores = fn(scores, y)
    numerical = gradcheck.eval_numerical_gradient(lambda s: fn(s, y)[0], scores)
    assert gradcheck.rel_error(numerical, dscores) < 1e-7


def test_lecture_svm_example():
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])  # cat, car, frog images
    y = np.array([0, 1, 2])
    per_example = [fastopt.multiclass_hinge(scores[i:i + 1], y[i:i + 1])[0] for i in range(3)]
    np.testing.assert_allclose(per_example, [2.9, 0.0, 12.9], atol=1e-12)
    assert fastopt.multiclass_hinge(scores, y)[0] == pytest.approx(5.27, abs=5e-3)
    # The same through the linear classifier: X = I gives scores = W.
    loss, _ = fastopt.svm_loss(scores.copy(), np.eye(3), y)
    assert loss == pytest.approx(np.mean([2.9, 0.0, 12.9]), abs=1e-12)


@pytest.mark.parametrize("C", [2, 10, 1000])
def test_softmax_of_zero_weights_is_log_c(C, dtype):
    X = np.random.default_rng(0).standard_normal((64, 30)).astype(dtype)
    y = np.arange(64) % C
    loss, _ = fastopt.softmax_loss(np.zeros((30, C), dtype), X, y)
    assert loss == pytest.approx(np.log(C), rel=1e-6)


@pytest.mark.parametrize("shape", [(10000, 3073, 10), (10000, 65, 10), (3000, 300, 100)],
                         ids=["cifar-class-vectors", "digits-class-vectors", "per-class"])
@pytest.mark.parametrize("loss", LOSSES)
def test_bitwise_identical_across_threads_and_runs(loss, shape, dtype):
    fast = LOSSES[loss][0]
    W, X, y = data(*shape, dtype)
    previous = fastopt.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 1):
            fastopt.set_num_threads(n)
            results.append(fast(W, X, y, 1e-3))
    finally:
        fastopt.set_num_threads(previous)
    for value, dW in results[1:]:
        assert value == results[0][0]
        assert np.array_equal(dW, results[0][1])


VECTOR_BYTES = {"baseline": 16, "avx2": 32, "avx512": 64}


def class_vector_shapes(isa, dtype):
    """(N, D, C) for the class-vectorized kernel (C up to 4 vectors of classes): every
    count of class vectors, full and with one class in the last vector, and C = 2, 5,
    12 (the gradient's class blocks, with 4, 2 or 1 vectors of D at once: one block up
    to 12 classes with AVX-512, 8 otherwise, then blocks of 8); the first C past it
    (the per-class kernel); N with whole row blocks (up to 16 rows) and tails of every
    block size below (31 = 16 + 8 + 4 + 2 + 1); D = 1, odd, and a row stride of 4 KiB
    (the gradient's partial sums then have a padded row stride)."""
    lanes = VECTOR_BYTES[isa] // np.dtype(dtype).itemsize
    classes = sorted({c for v in range(1, 5) for c in (v * lanes, (v - 1) * lanes + 1) if c >= 2}
                     | {2, 5, 12, 4 * lanes + 1})  # and gradient class blocks of 2, 5 and 12
    aliasing_D = 4096 // np.dtype(dtype).itemsize
    return [(N, D, C) for C in classes for N, D in ((31, 7), (1, 65), (45, 1), (21, aliasing_D))]


@pytest.mark.parametrize("loss", LOSSES)
def test_class_vectorized_kernel_matches_reference(loss, dtype, isa, threads):
    """Every vector body and tail of the class-vectorized kernel (and the switch to
    the per-class one), with weights and the intercept row, against the reference."""
    check_shapes_against_reference(loss, class_vector_shapes(isa, dtype), dtype)


def check_shapes_against_reference(loss, shapes, dtype, reference_dtype=None):
    """The fast loss against the reference (in reference_dtype, default X's) on each
    (N, D, C): plain, and with sample weights and an unpenalized intercepts' row."""
    fast, ref = LOSSES[loss]
    tol = loss_tolerance(dtype)
    for N, D, C in shapes:
        W, X, y = data(N, D, C, dtype)
        weights = np.random.default_rng(N + C).uniform(0.1, 2.0, N)
        Wb = np.vstack([W, np.linspace(-1, 1, C, dtype=dtype)])  # the last row: intercepts
        for (Wk, Xk), kwargs in (((W, X), {}),
                                 ((Wb, X), dict(sample_weight=weights, unpenalized_rows=1, intercept=True))):
            value, dW = fast(Wk, Xk, y, 1e-2, **kwargs)
            rdt = reference_dtype or dtype
            ref_value, ref_dW = ref(Wk.astype(rdt), Xk.astype(rdt), y, 1e-2, **kwargs)
            np.testing.assert_allclose(value, ref_value, **tol, err_msg=str((N, D, C, list(kwargs))))
            np.testing.assert_allclose(dW, ref_dW, **tol, err_msg=str((N, D, C, list(kwargs))))


def class_pair_shapes(isa, dtype):
    """(N, D, C) for the class-pair kernel (few classes, D >= 256, groups of G = lanes/2
    values of d): every count of class pairs, odd and even C (1 to 10); D = 256 (the
    switch), D with tails of 1, G/2 + 1 and G - 1 values after the last group, D = 1000; N with row
    blocks and the tails below them (31), several tiles of 64 rows with a tail (150),
    and one row."""
    G = VECTOR_BYTES[isa] // np.dtype(dtype).itemsize // 2
    Ds = sorted({256, 257, 256 + G // 2 + 1, 256 + G - 1, 1000})
    shapes = [(31, D, C) for C in range(1, 11) for D in Ds]
    return shapes + [(150, 263, 10), (150, 256, 3), (1, 300, 7)]


@pytest.mark.parametrize("loss", LOSSES)
def test_class_pair_kernel_matches_reference(loss, dtype, isa, threads):
    """The class-pair layout (a vector holds two classes × G values of d) against
    the reference in float64, with and without weights and intercepts; and the
    kernel's switch at D = 256 (D = 255 takes the class-lane kernel) gives the same
    loss up to rounding."""
    check_shapes_against_reference(loss, class_pair_shapes(isa, dtype), dtype, np.float64)
    fast = LOSSES[loss][0]
    tol = loss_tolerance(dtype)
    W, X, y = data(40, 256, 10, dtype)
    lanes_value, lanes_dW = fast(W[:255], np.ascontiguousarray(X[:, :255]), y, 1e-2)
    # One more feature, all zeros, with a zero weight row (no penalty either).
    padded = np.hstack([X[:, :255], np.zeros((40, 1), dtype)])
    pairs_value, pairs_dW = fast(np.vstack([W[:255], np.zeros((1, 10), dtype)]), padded, y, 1e-2)
    np.testing.assert_allclose(pairs_value, lanes_value, **tol)
    np.testing.assert_allclose(pairs_dW[:255], lanes_dW, **tol)


@pytest.mark.parametrize("intercept", [False, True])
def test_linear_scores_match_numpy(intercept, dtype, isa, threads):
    """The estimators' native scores (predict, early stopping's validation accuracy):
    rows in tiles of 4 and a tail, classes in dot blocks and a remainder, D with a
    vector tail, D = 0 and several row chunks; the same bits for any thread count."""
    tol = loss_tolerance(dtype)
    for N, D, C in [(1, 1, 1), (7, 5, 3), (31, 65, 10), (2050, 17, 13), (9, 1024, 100), (3, 0, 2)]:
        rng = np.random.default_rng(N + D + C)
        X = rng.standard_normal((N, D)).astype(dtype)
        W = rng.standard_normal((D + intercept, C)).astype(dtype)
        S = _core.linear_scores(W, X, intercept=intercept)
        expected = X @ W[:D] + (W[D] if intercept else 0)
        assert S.dtype == dtype and S.shape == (N, C)
        np.testing.assert_allclose(S, expected, rtol=tol["rtol"], atol=tol["atol"] * max(D, 1) * 10,
                                   err_msg=str((N, D, C)))
        previous = fastopt.get_num_threads()
        try:
            fastopt.set_num_threads(1)
            assert np.array_equal(_core.linear_scores(W, X, intercept=intercept), S)
        finally:
            fastopt.set_num_threads(previous)


@pytest.mark.parametrize("args, exc, text", [
    ((None, np.ones((2, 3))), TypeError, "W"),
    ((np.ones((3, 2)), None), TypeError, "X"),
    ((np.ones((3, 2), np.float32), np.ones((2, 3))), TypeError, "same dtype"),
    ((np.ones((4, 2)), np.ones((2, 3))), ValueError, "W has 4 rows"),
    ((np.ones((3, 0)), np.ones((2, 3))), ValueError, "C = 0"),
    ((np.ones(3), np.ones((2, 3))), ValueError, "W must be 2-D"),
    ((np.ones((3, 2)), np.ones((2, 3, 1))), ValueError, "X must be 2-D"),
    ((np.ones((3, 2), int), np.ones((2, 3))), TypeError, "W"),
])
def test_linear_scores_bad_input(args, exc, text):
    with pytest.raises(exc, match=text):
        _core.linear_scores(*args)
    with pytest.raises(TypeError, match="intercept"):
        _core.linear_scores(np.ones((4, 2)), np.ones((2, 3)), intercept=1)


def test_read_only_and_non_contiguous_inputs():
    W, X, y = data(256, 5, 10, np.float64)
    expected = fastopt.softmax_loss(W, X, y, 0.1)
    Xr, Wr = X.copy(), W.copy()
    Xr.flags.writeable = False
    Wr.flags.writeable = False
    got = fastopt.softmax_loss(Wr, Xr, y, 0.1)
    assert got[0] == expected[0] and np.array_equal(got[1], expected[1])
    Xf = np.asfortranarray(X)                 # non-contiguous rows: copied once
    got = fastopt.softmax_loss(W, Xf, y.astype(np.int32), 0.1)
    assert got[0] == expected[0] and np.array_equal(got[1], expected[1])
    got = fastopt.softmax_loss(W, X, list(y), 0.1)
    assert got[0] == expected[0]


def test_bias_trick():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 4))
    y = rng.integers(0, 3, 100)
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    X_aug, W_aug = np.hstack([X, np.ones((100, 1))]), np.vstack([W, b])
    loss, _ = fastopt.softmax_loss(W_aug, X_aug, y)
    assert loss == pytest.approx(reference.softmax_cross_entropy(X @ W + b, y)[0], rel=1e-12)


# -------------------------------------------------------------- gradcheck itself

def test_gradcheck_functions():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(gradcheck.eval_numerical_gradient(lambda v: np.sum(v ** 2), x), 2 * x, rtol=1e-8)
    df = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(gradcheck.eval_numerical_gradient_array(lambda v: 3 * v, x, df), 3 * df, rtol=1e-8)
    assert gradcheck.rel_error(np.array([1.0]), np.array([1.0])) == 0
    assert gradcheck.rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    wrong = gradcheck.grad_check_sparse(lambda v: np.sum(v ** 2), x, 3 * x, num_checks=5, seed=0)
    assert np.all(wrong > 0.1)                 # a wrong gradient is caught
    assert np.array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # x restored


def test_gradcheck_bad_input():
    with pytest.raises(TypeError, match="x"):
        gradcheck.eval_numerical_gradient(np.sum, [1.0, 2.0])
    with pytest.raises(ValueError, match="analytic_grad"):
        gradcheck.grad_check_sparse(np.sum, np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="num_checks"):
        gradcheck.grad_check_sparse(np.sum, np.ones(3), np.ones(3), num_checks=0)
