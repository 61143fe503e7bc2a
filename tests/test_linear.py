"""fastopt.linear and fastopt.datasets."""
import pickle

import numpy as np
import pytest

from fastopt import datasets, linear, schedules


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


@pytest.mark.parametrize("cls", [linear.SoftmaxClassifier, linear.LinearSVMClassifier])
def test_estimators_are_deterministic(cls, digits):
    X_train, y_train, X_val, _ = digits
    a = cls(random_state=3, max_iter=5).fit(X_train, y_train)
    b = cls(random_state=3, max_iter=5).fit(X_train, y_train)
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.predict(X_val), b.predict(X_val))
    c = cls(random_state=4, max_iter=5).fit(X_train, y_train)
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
    model = cls(max_iter=2, random_state=0).fit(X[:200], y[:200])
    fitted = {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
    assert documented == fitted
