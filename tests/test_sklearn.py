"""scikit-learn compatibility of fastopt.linear's estimators (skipped without scikit-learn)."""
import inspect
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastopt import datasets  # noqa: E402
from fastopt.linear import LinearSVMClassifier, SoftmaxClassifier  # noqa: E402

ESTIMATORS = [SoftmaxClassifier(), LinearSVMClassifier(), SoftmaxClassifier(solver="lbfgs"),
              LinearSVMClassifier(optimizer="momentum", learning_rate=0.005, penalty="elastic_net"),
              SoftmaxClassifier(solver="sgd", early_stopping=True)]


def expected_failures(estimator):
    """Checks that cannot hold for a configuration, and why (scikit-learn >= 1.6 xfails them)."""
    if getattr(estimator, "early_stopping", False):
        return {"check_sample_weight_equivalence_on_dense_data":
                "the held-out validation rows differ between weighted and repeated samples",
                "check_class_weight_classifiers":
                "the weighted validation accuracy is ~1 from the first epoch (class 0 weighs 1000), "
                "so early stopping keeps the first epoch's weights"}
    return {}


if "expected_failed_checks" not in inspect.signature(parametrize_with_checks).parameters:
    ESTIMATORS = [e for e in ESTIMATORS if not expected_failures(e)]
    checks = parametrize_with_checks(ESTIMATORS)
else:
    checks = parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)


@checks
def test_check_estimator(estimator, check):
    with warnings.catch_warnings():
        # The estimators implement scikit-learn's API without inheriting from
        # BaseEstimator (scikit-learn is optional), which scikit-learn notes.
        warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base.BaseEstimator`")
        check(estimator)


def test_in_a_pipeline_with_cross_validation():
    X, y = datasets.load_digits()
    model = make_pipeline(StandardScaler(), SoftmaxClassifier(max_iter=30, random_state=0))
    scores = cross_val_score(model, X, y, cv=3)
    assert scores.mean() > 0.9


def test_not_fitted_error_is_sklearns():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        SoftmaxClassifier().predict(np.zeros((2, 3)))


def test_clone_keeps_parameters():
    est = LinearSVMClassifier(optimizer="rmsprop", reg=0.5, random_state=3)
    copy = sklearn.clone(est)
    assert copy is not est and copy.get_params() == est.get_params()


def test_repr_shows_the_changed_arguments_and_notebooks_get_sklearns_diagram():
    from sklearn.utils import estimator_html_repr
    assert repr(SoftmaxClassifier()) == "SoftmaxClassifier()"
    est = LinearSVMClassifier(optimizer="lion", learning_rate=0.01, C=2.0, class_weight="balanced")
    assert repr(est) == "LinearSVMClassifier(optimizer='lion', C=2.0, class_weight='balanced')"
    assert repr(SoftmaxClassifier(learning_rate=1)) == "SoftmaxClassifier(learning_rate=1)"  # an int is not 0.01
    html = est._repr_html_()  # scikit-learn is loaded here: its diagram (element ids differ per call)
    assert html.startswith(estimator_html_repr(est)[:200]) and "sk-estimator" in html
    assert "LinearSVMClassifier(optimizer=&#x27;lion&#x27;, C=2.0" in html
