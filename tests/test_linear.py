"""fastopt.linear and fastopt.datasets."""
import pickle
import sys
import warnings

import numpy as np
import pytest

from fastopt import _core, datasets, linear, schedules


@pytest.fixture(scope="module")
def digits():
    """Standardized with the training set's statistics, as `fastopt train` does."""
    X, y = datasets.load_digits()
    X_train, y_train, X_val, y_val = datasets.train_val_split(X, y, 0.2, seed=0)
    X_train, X_val = datasets.standardize(X_train, X_val)
    return X_train, y_train, X_val, y_val


def test_load_digits():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16 and set(np.unique(y)) == set(range(10))


@pytest.mark.parametrize("cls", [linear.SoftmaxClassifier, linear.LinearSVMClassifier])
@pytest.mark.parametrize("kwargs", [dict(), dict(solver="lbfgs"), dict(optimizer="nesterov", learning_rate=0.01),
                                    dict(penalty="elastic_net", reg=1e-3)])
def test_estimators_reach_95_percent_on_digits(cls, kwargs, digits):
    X_train, y_train, X_val, y_val = digits
    model = cls(random_state=0, **kwargs).fit(X_train, y_train)
    assert model.score(X_val, y_val) >= 0.95
    assert model.coef_.shape == (10, 64) and model.intercept_.shape == (10,)


def test_every_rule_of_the_registry_trains_an_estimator(digits):
    # OPTIMIZERS is SGD's three forms and every other rule of the registry.
    assert set(linear.OPTIMIZERS) == {"momentum", "nesterov"} | {r["name"] for r in _core.rules()}
    X_train, y_train, X_val, y_val = digits
    for name in linear.OPTIMIZERS:
        model = linear.SoftmaxClassifier(optimizer=name, learning_rate=0.01, max_iter=5, early_stopping=False,
                                         random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linear.ConvergenceWarning)  # 5 epochs
            model.fit(X_train, y_train)
        assert model.score(X_val, y_val) > 0.8, name  # every rule learns the digits


@pytest.mark.parametrize("cls", [linear.SoftmaxClassifier, linear.LinearSVMClassifier])
def test_estimators_are_deterministic(cls, digits):
    X_train, y_train, X_val, _ = digits
    a = cls(solver="sgd", random_state=3, max_iter=5).fit(X_train, y_train)
    b = cls(solver="sgd", random_state=3, max_iter=5).fit(X_train, y_train)
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.predict(X_val), b.predict(X_val))
    c = cls(solver="sgd", random_state=4, max_iter=5).fit(X_train, y_train)
    assert not np.array_equal(a.coef_, c.coef_)


def test_estimator_api(digits):
    X_train, y_train, X_val, y_val = digits
    labels = np.array(list("abcdefghij"))[y_train]           # arbitrary class labels
    model = linear.SoftmaxClassifier(max_iter=10, learning_rate=schedules.cosine(0.05, 80), random_state=0)
    model.fit(X_train, labels)
    assert set(model.predict(X_val)) <= set("abcdefghij")
    proba = model.predict_proba(X_val)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(model.classes_[proba.argmax(1)], model.predict(X_val))
    log_proba = model.predict_log_proba(X_val)
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-12, atol=1e-300)
    far = model.predict_log_proba(X_val * 1e4)       # probabilities that underflow to 0: logs stay finite
    assert np.isfinite(far).all() and (model.predict_proba(X_val * 1e4) == 0).any()
    assert model.decision_function(X_val).shape == (len(X_val), 10)
    params = model.get_params()
    assert params["max_iter"] == 10 and "random_state" in params
    assert model.set_params(reg=0.5) is model and model.reg == 0.5
    with pytest.raises(ValueError, match="nope"):
        model.set_params(nope=1)
    with pytest.raises(ValueError, match="features"):
        model.predict(X_val[:, :5])
    with pytest.raises(linear.NotFittedError, match="not fitted"):
        linear.SoftmaxClassifier().predict(X_val)
    with pytest.raises(ValueError, match="optimizer"):
        linear.SoftmaxClassifier(optimizer="lamb").fit(X_train, y_train)
    with pytest.raises(ValueError, match="solver"):
        linear.SoftmaxClassifier(solver="newton").fit(X_train, y_train)
    with pytest.raises(ValueError, match="y"):
        linear.SoftmaxClassifier().fit(X_train, y_train[:-1])


@pytest.mark.parametrize("cls", [linear.LinearSVM, linear.Softmax])
def test_course_style_classes(cls, digits):
    X_train, y_train, X_val, y_val = digits
    X_train = np.hstack([X_train, np.ones((len(X_train), 1))])   # bias trick
    X_val = np.hstack([X_val, np.ones((len(X_val), 1))])
    model = cls()
    history = model.train(X_train, y_train, learning_rate=1e-2, reg=1e-5, num_iters=300, batch_size=200, seed=0)
    assert len(history) == 300
    assert np.mean(history[-20:]) < 0.5 * np.mean(history[:20])   # the loss goes down
    pred = model.predict(X_val)
    assert pred.shape == (len(X_val),) and np.mean(pred == y_val) > 0.9


def test_npz_and_cifar10_loaders(tmp_path):
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = np.arange(20) % 2
    np.savez(tmp_path / "d.npz", X=X, y=y)
    X2, y2 = datasets.load_npz(tmp_path / "d.npz")
    assert np.array_equal(X2, X) and np.array_equal(y2, y)
    np.savez(tmp_path / "bad.npz", features=X)
    with pytest.raises(ValueError, match="X"):
        datasets.load_npz(tmp_path / "bad.npz")
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({"data": np.full((4, 3072), 7, np.uint8), "labels": [0, 1, 2, 3]}, f)
    Xtr, ytr, Xte, yte = datasets.load_cifar10(str(root))
    assert Xtr.shape == (20, 3072) and Xte.shape == (4, 3072) and Xtr.dtype == np.float32
    assert list(ytr[:4]) == [0, 1, 2, 3]


# -------------------------------------------- input validation (scikit-learn's conventions)

def _blobs(n=60, d=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    return rng.standard_normal((n, d)) + 3 * y[:, None], y


@pytest.mark.parametrize("cls", [linear.SoftmaxClassifier, linear.LinearSVMClassifier])
def test_estimator_input_validation(cls):
    X, y = _blobs()
    with pytest.raises(ValueError, match="Complex data not supported"):
        cls().fit(X.astype(complex), y)
    for bad, word in ((np.nan, "NaN"), (np.inf, "infinity")):
        Xbad = X.copy()
        Xbad[3, 1] = bad
        with pytest.raises(ValueError, match=word):
            cls().fit(Xbad, y)
        with pytest.raises(ValueError, match=word):
            cls(max_iter=2).fit(X, y).predict(Xbad)
    with pytest.raises(ValueError, match="requires y to be passed"):
        cls().fit(X, None)
    with pytest.raises(ValueError, match="continuous"):
        cls().fit(X, y + 0.5)
    with pytest.raises(ValueError, match="1 class"):
        cls().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        cls().fit(X[:, :0], y)
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        cls().fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="Reshape your data"):
        cls(max_iter=2).fit(X, y).predict(X[0])
    with pytest.raises(TypeError, match="numeric"):
        cls().fit(X.astype(str), y)
    with pytest.raises(TypeError):
        cls().fit(np.array([[{"a": 1}, 2.0]] * 4, dtype=object), [0, 1, 0, 1])
    a = cls(max_iter=5, random_state=0).fit(X.astype(object), y)   # numbers in an object array are fine
    b = cls(max_iter=5, random_state=0).fit(X.tolist(), y.tolist())
    np.testing.assert_array_equal(a.coef_, b.coef_)
    with pytest.warns(linear.DataConversionWarning, match="column-vector y"):
        c = cls(max_iter=5, random_state=0).fit(X, y[:, None])
    np.testing.assert_array_equal(a.coef_, c.coef_)


def test_sparse_input_is_refused_clearly():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = _blobs()
    with pytest.raises(TypeError, match="sparse input is not supported"):
        linear.SoftmaxClassifier().fit(sparse.csr_matrix(X), y)


@pytest.mark.parametrize("cls", [linear.SoftmaxClassifier, linear.LinearSVMClassifier])
def test_binary_decision_function_is_one_margin(cls):
    X, y = _blobs(classes=2)
    labels = np.array(["no", "yes"])[y]
    model = cls(max_iter=200, random_state=0).fit(X, labels)
    margin = model.decision_function(X)
    assert margin.shape == (len(X),)
    np.testing.assert_array_equal(model.predict(X), np.where(margin > 0, "yes", "no"))
    assert model.score(X, labels) > 0.9


@pytest.mark.parametrize("cls", [linear.SoftmaxClassifier, linear.LinearSVMClassifier])
def test_docstring_attributes_are_the_fitted_attributes(cls):
    """The Attributes section lists exactly what fit sets (names ending in _)."""
    doc = cls.__doc__.split("Attributes\n    ----------\n")[1]
    documented = {line.split(" : ")[0].strip() for line in doc.splitlines() if " : " in line}
    X, y = datasets.load_digits()
    fitted = set()
    for kwargs in (dict(), dict(solver="sgd", early_stopping=True)):  # early_stopping sets the most
        model = cls(max_iter=2, random_state=0, **kwargs).fit(X[:200], y[:200])
        fitted |= {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
    # feature_names_in_: only for DataFrames with string column names (tests/test_reliability.py)
    assert documented - {"loss_history_", "feature_names_in_"} == fitted


# ------------------------------------------- solver choice, weights, convergence, partial_fit

def _problem(n=600, d=8, classes=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = rng.standard_normal((classes, d))
    X = (centers[y] + 1.5 * rng.standard_normal((n, d))).astype(dtype)
    return X, y


def test_auto_solver_rule(monkeypatch):
    X, y = _problem()
    assert linear.SoftmaxClassifier().fit(X, y).solver_ == "lbfgs"                   # smooth, small
    assert linear.SoftmaxClassifier(penalty="l1").fit(X, y).solver_ == "sgd"         # not smooth
    assert linear.LinearSVMClassifier().fit(X, y).solver_ == "sgd"                   # the hinge is not smooth
    monkeypatch.setattr(linear, "LBFGS_MAX_VALUES", X.size - 1)
    assert linear.SoftmaxClassifier().fit(X, y).solver_ == "sgd"                     # too much data


@pytest.mark.parametrize("C", [0.5, 1.0])
def test_unpenalized_intercept_reaches_sklearns_optimum(C):
    """C (reg = 1 / (2 C N)) is LogisticRegression(C)'s objective; reg="auto" (the default) is C = 1."""
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    X, y = _problem()
    theirs = sklearn_linear.LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    ours = linear.SoftmaxClassifier(solver="lbfgs", C=C if C != 1.0 else None, tol=1e-9, max_iter=1000).fit(X, y)

    def objective(model):
        W = np.vstack([model.coef_.T, model.intercept_])
        Xb = np.hstack([X, np.ones((len(X), 1))])
        return fastopt_loss(W, Xb, y, 1 / (2 * C * len(X)), unpenalized_rows=1)[0]
    from fastopt import softmax_loss as fastopt_loss
    assert abs(objective(ours) - objective(theirs)) <= 1e-6 * objective(theirs)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("penalty", ["l2", "l1", "elastic_net"])
def test_C_gives_sklearns_objective_for_each_penalty(penalty):
    # scikit-learn: C · Σ w_i loss_i + P(W), P = ½‖W‖², ‖W‖₁ or l1_ratio ‖W‖₁ + (1 − l1_ratio) / 2 ‖W‖²;
    # fastopt: Σ w_i loss_i / S + reg · R(W; l1 share). Equal after dividing scikit-learn's by C · S.
    from fastopt.regularization import penalty as fastopt_penalty
    rng = np.random.default_rng(0)
    W, weights, C, l1_ratio = rng.standard_normal((7, 3)), rng.uniform(0.5, 2.0, 40), 0.37, 0.3
    model = linear.SoftmaxClassifier(C=C, penalty=penalty, l1_ratio=l1_ratio)
    reg, share = model._penalty(40, weights)
    S = weights.sum()
    theirs = {"l2": 0.5 * np.sum(W * W), "l1": np.sum(np.abs(W)),
              "elastic_net": l1_ratio * np.sum(np.abs(W)) + (1 - l1_ratio) / 2 * np.sum(W * W)}[penalty]
    ours = fastopt_penalty(W, reg, penalty, share)[0]
    assert ours == pytest.approx(theirs / (C * S), rel=1e-12)


def test_C_is_refused_where_it_cannot_apply():
    X, y = _problem()
    with pytest.raises(ValueError, match="reg or C, not both"):
        linear.SoftmaxClassifier(reg=1e-3, C=2.0).fit(X, y)
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="^C must be None or a finite number > 0"):
            linear.SoftmaxClassifier(C=bad).fit(X, y)
    with pytest.raises(ValueError, match="partial_fit cannot use C"):
        linear.SoftmaxClassifier(C=2.0).partial_fit(X, y, classes=np.unique(y))
    assert linear.SoftmaxClassifier(C=2.0).get_params()["C"] == 2.0


def test_a_sample_weight_of_two_equals_duplicated_rows():
    X, y = _problem()
    weights = np.ones(len(X))
    weights[:100] = 2.0
    rows = np.r_[np.arange(len(X)), np.arange(100)]
    kw = dict(solver="lbfgs", tol=1e-10, max_iter=1000)
    weighted = linear.SoftmaxClassifier(**kw).fit(X, y, sample_weight=weights)
    repeated = linear.SoftmaxClassifier(**kw).fit(X[rows], y[rows])
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-6, atol=1e-8)


def test_balanced_class_weight_is_sklearns():
    class_weight = pytest.importorskip("sklearn.utils.class_weight")
    X, y = _problem()
    keep = (y != 2) | (np.arange(len(y)) % 4 == 0)              # class 2 rarer
    X, y = X[keep], y[keep] + 10                               # labels that are not 0..C-1
    expected = class_weight.compute_class_weight("balanced", classes=np.unique(y), y=y)
    model = linear.SoftmaxClassifier(class_weight="balanced")
    np.testing.assert_allclose(model._class_weights(np.unique(y), np.unique(y, return_inverse=True)[1]), expected)
    a = model.fit(X, y)
    b = linear.SoftmaxClassifier().fit(X, y, sample_weight=expected[np.searchsorted(np.unique(y), y)])
    np.testing.assert_array_equal(a.coef_, b.coef_)
    c = linear.SoftmaxClassifier(class_weight={12: 5.0}).fit(X, y)
    d = linear.SoftmaxClassifier().fit(X, y, sample_weight=np.where(y == 12, 5.0, 1.0))
    np.testing.assert_array_equal(c.coef_, d.coef_)
    with pytest.raises(ValueError, match="not in y"):
        linear.SoftmaxClassifier(class_weight={99: 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        linear.SoftmaxClassifier(class_weight="auto").fit(X, y)


def test_partial_fit_over_chunks_learns_like_fit(digits):
    X_train, y_train, X_val, y_val = digits
    model = linear.SoftmaxClassifier(random_state=0)
    for _ in range(20):
        for chunk in np.array_split(np.arange(len(X_train)), 5):
            model.partial_fit(X_train[chunk], y_train[chunk], classes=np.arange(10))
    full = linear.SoftmaxClassifier(solver="sgd", random_state=0, max_iter=20).fit(X_train, y_train)
    assert model.n_iter_ == 100 and model.solver_ == "sgd"
    assert model.score(X_val, y_val) >= full.score(X_val, y_val) - 0.02 and model.score(X_val, y_val) >= 0.94


def test_partial_fit_errors_and_continuation(digits):
    X_train, y_train, _, _ = digits
    with pytest.raises(ValueError, match="classes must be passed"):
        linear.SoftmaxClassifier().partial_fit(X_train, y_train)
    model = linear.SoftmaxClassifier().partial_fit(X_train[:50], y_train[:50], classes=np.arange(10))
    with pytest.raises(ValueError, match="not in classes"):
        model.partial_fit(X_train[:5], y_train[:5] + 20)
    with pytest.raises(ValueError, match="not the same"):
        model.partial_fit(X_train[:5], y_train[:5], classes=np.arange(11))
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X_train[:5, :3], y_train[:5])
    with pytest.raises(ValueError, match="balanced"):
        linear.SoftmaxClassifier(class_weight="balanced").partial_fit(X_train, y_train, classes=np.arange(10))
    fitted = linear.SoftmaxClassifier(max_iter=5).fit(X_train, y_train)
    before = fitted.coef_.copy()
    fitted.partial_fit(X_train, y_train)               # after fit: continues from its weights
    assert not np.array_equal(before, fitted.coef_) and np.abs(fitted.coef_ - before).max() < 0.1


def test_warm_start_continues_from_the_previous_fit():
    X, y = _problem()
    cold = linear.SoftmaxClassifier(solver="lbfgs", max_iter=5)
    with pytest.warns(linear.ConvergenceWarning):
        cold.fit(X, y)
    warm = linear.SoftmaxClassifier(solver="lbfgs", max_iter=5, warm_start=True)
    with pytest.warns(linear.ConvergenceWarning):
        warm.fit(X, y)
        first = warm.loss_curve_[-1]
        warm.fit(X, y)
    assert warm.loss_curve_[0] < first <= cold.loss_curve_[-1] + 1e-12


def test_convergence_controls():
    X, y = _problem()
    with pytest.warns(linear.ConvergenceWarning, match="max_iter"):
        linear.SoftmaxClassifier(solver="sgd", max_iter=2, random_state=0).fit(X, y)
    model = linear.SoftmaxClassifier(solver="sgd", max_iter=500, tol=1e-3, n_iter_no_change=3, random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", linear.ConvergenceWarning)
        model.fit(X, y)
    assert model.n_iter_ < 500 and len(model.loss_curve_) == model.n_iter_
    assert model.t_ == model.n_iter_ * -(-len(X) // 200)
    stopped = linear.SoftmaxClassifier(solver="sgd", early_stopping=True, validation_fraction=0.2,
                                       n_iter_no_change=3, max_iter=500, random_state=0).fit(X, y)
    assert len(stopped.validation_scores_) == stopped.n_iter_ < 500
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)
    lbfgs = linear.SoftmaxClassifier(tol=1e-3).fit(X, y)
    assert lbfgs.solver_ == "lbfgs" and len(lbfgs.loss_curve_) == lbfgs.n_iter_
    assert all(b <= a for a, b in zip(lbfgs.loss_curve_, lbfgs.loss_curve_[1:]))   # L-BFGS descends


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_float32_stays_float32_and_intercept_options(solver):
    X, y = _problem(dtype=np.float32)
    model = linear.SoftmaxClassifier(solver=solver, max_iter=20, random_state=0, tol=1e-3)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linear.ConvergenceWarning)
        model.fit(X, y)
        no_bias = linear.SoftmaxClassifier(solver=solver, max_iter=20, random_state=0, fit_intercept=False).fit(X, y)
    assert model.coef_.dtype == model.intercept_.dtype == np.float32
    assert np.any(model.intercept_ != 0) and np.all(no_bias.intercept_ == 0)
    assert model.score(X, y) > 0.7


@pytest.mark.parametrize("kwargs, match", [(dict(n_iter_no_change=0), "n_iter_no_change"),
                                           (dict(validation_fraction=1.0), "validation_fraction"),
                                           (dict(early_stopping="yes"), "early_stopping"),
                                           (dict(fit_intercept=1), "fit_intercept"),
                                           (dict(solver="newton"), "solver")])
def test_new_parameters_are_checked(kwargs, match):
    X, y = _problem()
    with pytest.raises((TypeError, ValueError), match=match):
        linear.SoftmaxClassifier(**kwargs).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        linear.SoftmaxClassifier().fit(X, y, sample_weight=np.ones(3))


def test_notebook_view_without_scikit_learn_is_the_repr(monkeypatch):
    monkeypatch.delitem(sys.modules, "sklearn.utils", raising=False)  # as if scikit-learn were not loaded
    est = linear.SoftmaxClassifier(optimizer="nadam", C=0.5)
    assert repr(est) == "SoftmaxClassifier(optimizer='nadam', C=0.5)"
    assert est._repr_html_() == "<pre>SoftmaxClassifier(optimizer=&#x27;nadam&#x27;, C=0.5)</pre>"
