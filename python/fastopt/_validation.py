"""Input validation of fastopt's estimators, following scikit-learn's conventions
(error types and messages its ``check_estimator`` looks for) without importing it."""
import functools
import sys
import warnings

from typing import Any, Optional, TypeVar, cast

import numpy as np
import numpy.typing as npt

from ._typing import FloatArray

_T = TypeVar("_T")

__all__ = ["NotFittedError", "DataConversionWarning", "ConvergenceWarning", "check_X", "check_y",
           "check_sample_weight", "check_feature_names", "not_fitted", "convergence_warning"]


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``.

    When scikit-learn is loaded, the error raised is also an instance of
    ``sklearn.exceptions.NotFittedError``.
    """


class DataConversionWarning(UserWarning):
    """The input was converted (a column-vector y was flattened)."""


class ConvergenceWarning(UserWarning):
    """A fit stopped at ``max_iter`` before meeting its convergence criterion."""


def convergence_warning(message: str) -> None:
    """Warn with :class:`ConvergenceWarning` (also scikit-learn's when it is loaded)."""
    warnings.warn(message, _as_sklearn(ConvergenceWarning, "ConvergenceWarning"), stacklevel=3)


def _as_sklearn(cls: type[_T], name: str) -> type[_T]:
    """``cls``, made also a subclass of ``sklearn.exceptions.<name>`` when scikit-learn
    is loaded, so that scikit-learn's own ``except`` / warning filters see it."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return cls
    return cast("type[_T]", _subclass_of_both(cast(type, cls), getattr(sklearn_exceptions, name)))


@functools.lru_cache(maxsize=None)
def _subclass_of_both(ours: type, theirs: type) -> type:
    return type(ours.__name__, (ours, theirs), {"__module__": ours.__module__})


def not_fitted(estimator: object) -> NotFittedError:
    error = _as_sklearn(NotFittedError, "NotFittedError")
    return error(f"this {type(estimator).__name__} is not fitted yet; call fit first")


def _is_sparse(X: object) -> bool:
    return type(X).__module__.startswith("scipy.sparse")


def _feature_names(X: object) -> Optional[npt.NDArray[Any]]:
    """The column names of a DataFrame whose names are all strings (scikit-learn's rule), else None."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc"):
        return None
    names = np.asarray(columns, dtype=object)
    are_str = [isinstance(name, str) for name in names]
    if names.size and all(are_str):
        return names
    if any(are_str):
        raise TypeError("Feature names are only supported if all input features have string names, but your "
                        f"input has {sorted({type(n).__name__ for n in names})} as feature name / column name "
                        "types. Convert them all to strings, e.g. X.columns = X.columns.astype(str).")
    return None


def check_feature_names(estimator: Any, X: object, *, reset: bool) -> None:
    """scikit-learn's contract for DataFrame input: ``fit`` (``reset``) records
    ``feature_names_in_`` (or removes it for unnamed input); later calls must
    pass the same names in the same order (ValueError), and named and unnamed
    input mixed warn, as scikit-learn does."""
    names = _feature_names(X)
    if reset:
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None and names is None:
        return
    kind = type(estimator).__name__
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {kind} was fitted with feature names",
                      UserWarning, stacklevel=3)
    elif fitted is None:
        warnings.warn(f"X has feature names, but {kind} was fitted without feature names", UserWarning, stacklevel=3)
    elif len(names) != len(fitted) or not np.array_equal(names, fitted):
        unseen = [n for n in names if n not in set(fitted)]
        missing = [n for n in fitted if n not in set(names)]
        detail = "".join([f"\nFeature names unseen at fit time: {unseen}" if unseen else "",
                          f"\nFeature names seen at fit time, yet now missing: {missing}" if missing else "",
                          "\nFeature names must be in the same order as they were in fit." if not (unseen or missing)
                          else ""])
        raise ValueError("The feature names should match those that were passed during fit." + detail)


def check_X(X: npt.ArrayLike) -> FloatArray:
    """X as a C-contiguous float32 (if given so) or float64 N×D array of finite values."""
    if _is_sparse(X):
        raise TypeError(f"sparse input is not supported: X is a {type(X).__name__}; "
                        "convert it with X.toarray()")
    if hasattr(X, "iloc") and hasattr(X, "to_numpy"):
        # pandas, nullable dtypes included (Float64, Int64 with pd.NA): NA becomes NaN, refused below
        kinds = {np.dtype(d).kind if isinstance(d, np.dtype) else "x" for d in getattr(X, "dtypes", [])}
        if "x" in kinds:
            try:
                X = X.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as e:
                raise type(e)(f"X must be numeric: {e}") from e
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported: X has a complex dtype")
    if X.dtype.kind in "USV":
        raise TypeError(f"X must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples × n_features), got shape {X.shape}. Reshape your data "
                         "with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample.")
    for axis, what in ((0, "sample"), (1, "feature")):
        if X.shape[axis] < 1:
            raise ValueError(f"Found array with 0 {what}(s) (shape={X.shape}) while a minimum of 1 is required.")
    X = np.ascontiguousarray(X, dtype=np.float32 if X.dtype == np.float32 else np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"Input X contains {'NaN' if np.isnan(X).any() else 'infinity'}; "
                         "fastopt needs finite values")
    return X


def check_y(y: npt.ArrayLike, n_samples: int, estimator: object) -> npt.NDArray[Any]:
    """y as a 1-D array of class labels, one per row of X."""
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape "
                      "of y to (n_samples,), for example using ravel().",
                      _as_sklearn(DataConversionWarning, "DataConversionWarning"), stacklevel=3)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    if len(y) != n_samples:
        raise ValueError(f"y must hold one label per row of X ({n_samples}), got {len(y)}")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
        raise ValueError("Unknown label type: continuous. A classifier needs discrete class labels, "
                         "not a regression target with continuous values.")
    return y


def check_sample_weight(sample_weight: Optional[npt.ArrayLike], n_samples: int) -> Optional[npt.NDArray[np.float64]]:
    """sample_weight as a float64 array of n_samples finite weights >= 0 with a positive sum."""
    if sample_weight is None:
        return None
    if _is_sparse(sample_weight):
        raise TypeError("sample_weight must be a dense array")
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "iuf":
        raise TypeError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.ndim != 1 or len(w) != n_samples:
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n_samples},): one weight per sample")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight must be finite")
    if (w < 0).any():
        raise ValueError("Negative values in data passed to sample_weight")
    if not w.sum() > 0:
        raise ValueError("sample_weight: the sample weights are all zero; at least one sample needs a positive weight")
    return w
