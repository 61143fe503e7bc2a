"""Linear classifiers trained with fastopt's fused losses and optimizers.

Two flavours:

* course-style :class:`LinearSVM` and :class:`Softmax` (``train`` / ``predict``,
  as in the CS231n assignment, W of shape D×C, bias by the bias trick in X);
* scikit-learn-style :class:`SoftmaxClassifier` and :class:`LinearSVMClassifier`
  (``fit`` / ``partial_fit`` / ``predict`` / ``decision_function`` / ``score`` /
  ``get_params`` / ``set_params``; :class:`SoftmaxClassifier` also
  ``predict_proba``): scikit-learn's objective (unpenalized intercept,
  ``reg="auto"`` = ``LogisticRegression(C=1)``), ``solver="auto"`` (full-batch
  L-BFGS for a smooth objective, else minibatch training with any
  :mod:`fastopt.optim` optimizer by name), sample and class weights, and
  scikit-learn's convergence controls.
"""
import html
import inspect
import sys
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional, TypeVar, Union

import numpy as np
import numpy.typing as npt

from . import _core, optim
from ._validation import (ConvergenceWarning, DataConversionWarning, NotFittedError, check_feature_names,
                          check_sample_weight, check_X,
                          check_y, convergence_warning, not_fitted)
from ._registry import parse_api
from .lbfgs import minimize
from .losses import softmax_loss, svm_loss
from ._typing import Array, FloatArray, IntArray
from .optim import LearningRate, Optimizer
from .training import Seed, SplitMix64, train_linear

_Estimator = TypeVar("_Estimator", bound="_LinearEstimator")

# By the name train_linear takes.
LOSSES: dict[str, Callable[..., tuple[float, FloatArray]]] = {"softmax": softmax_loss, "svm": svm_loss}

__all__ = ["LinearClassifier", "LinearSVM", "Softmax", "SoftmaxClassifier", "LinearSVMClassifier",
           "make_optimizer", "OPTIMIZERS", "NotFittedError", "DataConversionWarning", "ConvergenceWarning",
           "LBFGS_MAX_VALUES"]

def _at_defaults(cls: Any) -> Callable[[list[Array], LearningRate], Optimizer]:
    return lambda params, lr: cls(params, lr=lr)


# The estimators' and the command line's optimizers by name: SGD's three forms of the
# lecture, then every other rule of the registry at its defaults (the native training
# loop steps any rule).
OPTIMIZERS: dict[str, Callable[[list[Array], LearningRate], Optimizer]] = {
    "sgd": lambda params, lr: optim.SGD(params, lr=lr),
    "momentum": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9),
    "nesterov": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    **{name: _at_defaults(getattr(optim, parse_api(spec).class_name))
       for name, spec in optim.RULES.items() if name != "sgd"},
}


def make_optimizer(name: str, params: list[Array], lr: LearningRate) -> Optimizer:
    """A :mod:`fastopt.optim` optimizer by name: one of :data:`OPTIMIZERS`."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    return OPTIMIZERS[name](params, lr)


# ---------------------------------------------------------------- course style

class LinearClassifier:
    """Course-style linear classifier: ``W`` is D×C; put the bias in X (bias trick)."""

    def __init__(self) -> None:
        self.W: Optional[FloatArray] = None

    def train(self, X: npt.ArrayLike, y: npt.ArrayLike, learning_rate: LearningRate = 1e-3, reg: float = 1e-5,
              num_iters: int = 100, batch_size: int = 200, verbose: bool = False, seed: Optional[int] = None,
              optimizer: str = "sgd") -> list[float]:
        """Minibatch training, sampling with replacement as in the course.

        The loop runs in native code (:func:`fastopt.training.train_linear`).

        Parameters
        ----------
        X : numpy.ndarray, shape (N, D)
            Training data, bias trick included.
        y : array_like of int, shape (N,)
            Labels in [0, C); C is ``max(y) + 1``.
        learning_rate, reg : float
        num_iters : int
            Minibatch updates.
        batch_size : int
            Rows per minibatch, drawn with replacement.
        verbose : bool
            Print the loss every 100 iterations.
        seed : int, optional
            Fixes both the initial W (``0.001 * randn``, drawn only if W is None) and the minibatches.
        optimizer : str, default "sgd"
            Any name in :data:`OPTIMIZERS` (the course uses plain SGD).

        Returns
        -------
        list of float
            The loss at every iteration.
        """
        X = check_X(X)
        y = check_y(y, len(X), self)
        num_train, dim = X.shape
        num_classes = int(np.max(y)) + 1
        if self.W is None:
            rng = np.random.default_rng(seed)
            self.W = (0.001 * rng.standard_normal((dim, num_classes))).astype(X.dtype)
        opt = make_optimizer(optimizer, [self.W], learning_rate)
        batches = SplitMix64(seed)
        loss_history: list[float] = []
        chunk = 100 if verbose else max(num_iters, 1)   # print every 100 iterations, as the course does
        for start in range(0, num_iters, chunk):
            losses = train_linear(opt, X, y, loss=self._loss_name, reg=reg, batch_size=batch_size,
                                  num_iters=min(chunk, num_iters - start), rng=batches)
            if verbose:
                print(f"iteration {start} / {num_iters}: loss {losses[0]:f}")
            loss_history.extend(losses.tolist())
        return loss_history

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """The class with the highest score for every row of X."""
        if self.W is None:
            raise not_fitted(self)
        scores: FloatArray = np.asarray(X) @ self.W
        labels: npt.NDArray[np.intp] = np.argmax(scores, axis=1)
        return labels

    _loss_name = ""   # "softmax" or "svm" in the subclasses

    def loss(self, X_batch: FloatArray, y_batch: npt.ArrayLike, reg: float) -> tuple[float, FloatArray]:
        """Loss and gradient of the current W on a minibatch (the course's method)."""
        if not self._loss_name:
            raise NotImplementedError("use LinearSVM or Softmax")
        if self.W is None:
            raise not_fitted(self)
        return LOSSES[self._loss_name](self.W, X_batch, y_batch, reg)


class LinearSVM(LinearClassifier):
    """Multiclass SVM (Weston–Watkins hinge, delta = 1) with an L2 penalty."""

    _loss_name = "svm"


class Softmax(LinearClassifier):
    """Softmax (cross-entropy) classifier with an L2 penalty."""

    _loss_name = "softmax"


# ---------------------------------------------------------- scikit-learn style

# solver="auto" trains full-batch (L-BFGS) on at most this many values of X;
# beyond, one L-BFGS iteration (a pass over X, plus line-search passes) costs
# more than minibatch epochs need to get close.
LBFGS_MAX_VALUES = 2**27


def _is_default(value: Any, default: Any) -> bool:
    """Whether a constructor argument is its default (same type and equal; arrays and
    schedules never are)."""
    if value is default:
        return True
    if type(value) is not type(default) or not isinstance(value, (bool, int, float, str)):
        return False
    return bool(value == default)


@dataclass
class _PartialFit:
    """What partial_fit carries from one call to the next."""

    W: FloatArray
    optimizer: Optimizer
    rng: SplitMix64


class _LinearEstimator:
    """What SoftmaxClassifier and LinearSVMClassifier share: everything but the loss."""

    _loss_name = ""   # "softmax" or "svm" in the subclasses

    def __init__(self, *, solver: Literal["auto", "sgd", "lbfgs"] = "auto", optimizer: str = "adam",
                 learning_rate: LearningRate = 0.01, reg: Union[float, Literal["auto"]] = "auto",
                 C: Optional[float] = None, penalty: Literal["l2", "l1", "elastic_net"] = "l2", l1_ratio: float = 0.5,
                 fit_intercept: bool = True, batch_size: int = 200, max_iter: int = 100, tol: float = 1e-4,
                 n_iter_no_change: int = 5, early_stopping: bool = False, validation_fraction: float = 0.1,
                 class_weight: Union[None, Literal["balanced"], dict[Any, float]] = None, warm_start: bool = False,
                 random_state: Seed = None) -> None:
        self.solver = solver
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.reg = reg
        self.C = C
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(_LinearEstimator.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as a dict."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: _Estimator, **params: Any) -> _Estimator:
        """Set constructor arguments; returns self."""
        for name, value in params.items():
            if name not in self._param_names():
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """The constructor call with the arguments that differ from their defaults, as
        scikit-learn prints its estimators."""
        defaults = {p.name: p.default for p in inspect.signature(_LinearEstimator.__init__).parameters.values()}
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if not _is_default(v, defaults[k]))
        return f"{type(self).__name__}({args})"

    def _repr_html_(self) -> str:
        """A notebook's view: scikit-learn's estimator diagram when scikit-learn is loaded
        (fastopt never imports it), else the repr."""
        sklearn_utils = sys.modules.get("sklearn.utils")
        if sklearn_utils is not None and hasattr(sklearn_utils, "estimator_html_repr"):
            return str(sklearn_utils.estimator_html_repr(self))
        return f"<pre>{html.escape(repr(self))}</pre>"

    _estimator_type = "classifier"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (only scikit-learn calls this, so it may import it)."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), input_tags=InputTags())

    def _check_params(self) -> None:
        """TypeError / ValueError naming the first invalid constructor argument (checked in fit,
        as scikit-learn does), before anything is trained."""
        if self.solver not in ("auto", "sgd", "lbfgs"):
            raise ValueError(f"solver must be 'auto', 'sgd' or 'lbfgs', got {self.solver!r}")
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.penalty not in ("l2", "l1", "elastic_net"):
            raise ValueError(f"penalty must be 'l2', 'l1' or 'elastic_net', got {self.penalty!r}")
        for name, value in (("max_iter", self.max_iter), ("batch_size", self.batch_size),
                            ("n_iter_no_change", self.n_iter_no_change)):
            if _core.as_int(value, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("fit_intercept", "early_stopping", "warm_start"):
            _core.as_bool(getattr(self, name), name)
        checks: list[tuple[str, Any, Callable[[float], bool], str]] = [
            ("l1_ratio", self.l1_ratio, lambda x: 0 <= x <= 1, "in [0, 1]"),
            ("tol", self.tol, lambda x: 0 <= x < np.inf, "a finite number >= 0"),
            ("validation_fraction", self.validation_fraction, lambda x: 0 < x < 1, "in (0, 1)")]
        if not callable(self.learning_rate):
            checks.append(("learning_rate", self.learning_rate, lambda x: 0 <= x < np.inf, "a finite number >= 0"))
        if not (isinstance(self.reg, str) and self.reg == "auto"):
            checks.append(("reg", self.reg, lambda x: 0 <= x < np.inf, "'auto' or a finite number >= 0"))
            if self.C is not None:
                raise ValueError(f"give reg or C, not both (reg={self.reg!r}, C={self.C!r})")
        if self.C is not None:
            checks.append(("C", self.C, lambda x: 0 < x < np.inf, "None or a finite number > 0"))
        for name, value, valid, what in checks:
            if not valid(_core.as_real(value, name)):
                raise ValueError(f"{name} must be {what}, got {value!r}")
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{class label: weight}}, "
                             f"got {self.class_weight!r}")
        seed = self.random_state
        if not (seed is None or isinstance(seed, (SplitMix64, np.random.Generator, np.random.RandomState))
                or (isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)))):
            raise TypeError(f"random_state must be None, an int or a numpy random generator, "
                            f"got {type(seed).__name__}")

    # --- the problem: rows, weights, the bias row ----------------------------------------------
    def _resolved_solver(self, X: FloatArray) -> str:
        """The solver "auto" picks: L-BFGS for a smooth objective (the softmax loss with the
        l2 penalty) on at most LBFGS_MAX_VALUES values of X; minibatch training otherwise."""
        if self.solver != "auto":
            return self.solver
        smooth = self._loss_name == "softmax" and self.penalty == "l2"
        return "lbfgs" if smooth and X.size <= LBFGS_MAX_VALUES else "sgd"

    def _class_weights(self, classes: Array, y_index: IntArray) -> Optional[npt.NDArray[np.float64]]:
        """Per class: scikit-learn's "balanced" weights n / (C · count), a dict's weights (1 for
        classes it does not name), or None."""
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, str):
            counts = np.bincount(y_index, minlength=len(classes))
            return len(y_index) / (len(classes) * counts.astype(np.float64))
        weights = np.ones(len(classes))
        for label, weight in self.class_weight.items():
            found = np.flatnonzero(classes == label)
            if len(found) == 0:
                raise ValueError(f"class_weight names the class {label!r}, which is not in y")
            value = _core.as_real(weight, "class_weight")
            if not 0 <= value < np.inf:
                raise ValueError(f"class_weight[{label!r}] must be a finite number >= 0, got {weight!r}")
            weights[found[0]] = value
        return weights

    def _row_weights(self, classes: Array, y_index: IntArray,
                     sample_weight: Optional[npt.ArrayLike]) -> Optional[npt.NDArray[np.float64]]:
        """sample_weight × class weight of every row; None when both are absent."""
        weights = check_sample_weight(sample_weight, len(y_index))
        per_class = self._class_weights(classes, y_index)
        if per_class is not None:
            weights = per_class[y_index] if weights is None else weights * per_class[y_index]
            if not weights.sum() > 0:
                raise ValueError("the weights (sample_weight × class_weight) are all zero: at least one sample "
                                 "needs a positive weight")
        return weights

    def _intercept_args(self) -> dict[str, Any]:
        """The loss arguments of the intercept: W's last row, not penalized (no copy of X)."""
        bias = bool(self.fit_intercept)
        return dict(intercept=bias, unpenalized_rows=int(bias))

    def _linear_scores(self, W: FloatArray, X: FloatArray) -> FloatArray:
        # Native, on fastopt's threads: a BLAS matmul here would leave BLAS threads
        # spinning on the cores the next epoch's loss needs (2x slower fits).
        return _core.linear_scores(W, X, intercept=bool(self.fit_intercept))

    def _initial_W(self, X: FloatArray, classes: Array, keep: bool = False) -> FloatArray:
        """Zeros, or the previous fit's weights with warm_start or `keep` (same classes and features)."""
        D = X.shape[1] + bool(self.fit_intercept)
        W = np.zeros((D, len(classes)), X.dtype)
        if ((self.warm_start or keep) and hasattr(self, "coef_") and np.array_equal(getattr(self, "classes_", ()), classes)
                and self.coef_.shape == (len(classes), X.shape[1])):
            W[:X.shape[1]] = self.coef_.T
            if self.fit_intercept:
                W[-1] = self.intercept_
        return W

    def _penalty(self, n_samples: int, weights: Optional[FloatArray]) -> tuple[float, float]:
        """The penalty's strength and l1 share (:func:`fastopt.regularization.penalty`): reg and
        l1_ratio; for "auto", 1 / (2 · the total weight S of the samples), scikit-learn's
        objective with C = 1 and the l2 penalty. With C, scikit-learn's objective for each
        penalty (C · Σ loss + ½‖w‖², + ‖w‖₁, or + l1_ratio ‖w‖₁ + (1 − l1_ratio) / 2 ‖w‖²)
        divided by C · S: reg = 1 / (2 C S), 1 / (C S), and for the elastic net
        (1 + l1_ratio) / (2 C S) with the l1 share 2 l1_ratio / (1 + l1_ratio)."""
        if not isinstance(self.reg, str):
            return self.reg, self.l1_ratio
        total = n_samples if weights is None else float(np.sum(weights))
        C = 1.0 if self.C is None else float(self.C)
        if not 1.0 / (2.0 * C * total) < np.inf:
            raise ValueError(f"the sample weights sum to {total:g}, too small for reg='auto' (1 / (2 · their sum) "
                             "overflows): scale sample_weight up, or set reg")
        if self.C is None or self.penalty == "l2":
            return 1.0 / (2.0 * C * total), self.l1_ratio
        if self.penalty == "l1":
            return 1.0 / (C * total), self.l1_ratio
        l1 = float(self.l1_ratio)
        return (1.0 + l1) / (2.0 * C * total), 2.0 * l1 / (1.0 + l1)

    def _objective(self, W: FloatArray, X: FloatArray, y: IntArray,
                   weights: Optional[FloatArray]) -> tuple[float, FloatArray]:
        reg, l1_ratio = self._penalty(len(X), weights)
        return LOSSES[self._loss_name](W, X, y, reg, penalty=self.penalty,
                                       l1_ratio=l1_ratio, sample_weight=weights, **self._intercept_args())

    def _set_weights(self, W: FloatArray, n_features: int) -> None:
        self.coef_ = np.ascontiguousarray(W[:n_features].T)
        self.intercept_ = W[n_features].copy() if self.fit_intercept else np.zeros(W.shape[1], W.dtype)
        self.n_features_in_ = n_features

    # --- fit -------------------------------------------------------------------------------------
    def fit(self: _Estimator, X: npt.ArrayLike, y: npt.ArrayLike, sample_weight: Optional[npt.ArrayLike] = None,
            callback: Optional[Callable[[int, float], None]] = None) -> _Estimator:
        """Train on X (N×D) and labels y (any N values: the classes are ``np.unique(y)``).

        Parameters
        ----------
        X : array_like, shape (N, D)
            float32 input is trained in float32, anything else in float64.
        y : array_like, shape (N,)
        sample_weight : array_like, shape (N,), optional
            Weight of every sample (times ``class_weight``'s): the data loss is
            their weighted mean, so a weight of 2 counts a sample twice.
        callback : callable, optional
            ``callback(epoch, mean_loss)`` after every epoch of minibatch training
            (``fastopt train``'s progress bar uses it).

        Returns
        -------
        self
        """
        self._check_params()
        check_feature_names(self, X, reset=True)
        X = check_X(X)
        y = check_y(y, len(X), self)
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has 1 class ({classes[0]!r}); at least 2 classes are required")
        weights = self._row_weights(classes, y_index, sample_weight)
        solver = self._resolved_solver(X)
        W = self._initial_W(X, classes)
        if solver == "sgd":
            try:
                _core.train_updates("epochs", len(X), self.batch_size, self.max_iter, "max_iter")
            except ValueError:
                raise ValueError(f"max_iter = {self.max_iter} epochs of {len(X)} rows in batches of {self.batch_size} "
                                 f"make more than {_core.max_updates_per_call} updates; use fewer epochs or "
                                 "larger batches") from None
        self.classes_ = classes
        self._partial: Optional[_PartialFit] = None
        if solver == "lbfgs":
            self._fit_lbfgs(W, X, y_index, weights)
        else:
            self._fit_minibatch(W, X, y_index, weights, callback)
        self.solver_ = solver
        self._set_weights(W, X.shape[1])
        return self

    def _fit_lbfgs(self, W: FloatArray, X: FloatArray, y: IntArray, weights: Optional[FloatArray]) -> None:
        curve = []
        result = minimize(lambda w: self._objective(w, X, y, weights), W, max_iter=self.max_iter, tol=self.tol,
                          callback=lambda x, f: curve.append(float(f)))
        W[...] = result.x
        self.n_iter_ = result.nit
        self.loss_curve_ = curve or [float(result.fun)]
        if not result.success:
            convergence_warning(f"L-BFGS stopped after {result.nit} iterations ({result.message}) with the largest "
                                f"gradient entry {np.max(np.abs(result.jac)):.2e} > tol = {self.tol}; increase "
                                "max_iter or scale the data")

    def _epoch_loss(self, losses: FloatArray, n: int) -> float:
        """An epoch's mean loss: its minibatch losses weighted by batch size (the last may be smaller)."""
        sizes = np.full(-(-n // self.batch_size), self.batch_size, dtype=np.float64)
        sizes[-1] = n - self.batch_size * (len(sizes) - 1)
        return float(losses @ sizes) / n

    def _validation_split(self, y: IntArray, rng: SplitMix64) -> tuple[IntArray, IntArray]:
        """Rows kept for validation (early_stopping): validation_fraction of every class
        (at least one of a class with two or more rows), drawn with the fit's generator."""
        indices, rng.state = _core.minibatch_indices("epochs", len(y), len(y), 1, rng.state)
        held = []
        for c in range(int(y.max()) + 1):
            rows = indices[y[indices] == c]
            take = int(round(self.validation_fraction * len(rows)))
            held.append(rows[:max(take, 1 if len(rows) >= 2 else 0)])
        val = np.sort(np.concatenate(held))
        train = np.setdiff1d(np.arange(len(y)), val)
        if len(val) == 0 or len(train) == 0:
            raise ValueError(f"validation_fraction = {self.validation_fraction} leaves no rows to "
                             f"{'validate on' if len(val) == 0 else 'train on'} ({len(y)} samples)")
        return train, val

    def _fit_minibatch(self, W: FloatArray, X: FloatArray, y: IntArray, weights: Optional[FloatArray],
                       callback: Optional[Callable[[int, float], None]]) -> None:
        rng = SplitMix64(self.random_state)
        val = None
        if self.early_stopping:
            train, val = self._validation_split(y, rng)
            X_val, y_val = X[val], y[val]
            w_val = None if weights is None else weights[val]
            if w_val is not None and not w_val.sum() > 0:
                w_val = None  # a validation split of weight 0: its plain accuracy, as no weighting can be had
            X, y, weights = X[train], y[train], None if weights is None else weights[train]
        opt = make_optimizer(self.optimizer, [W], self.learning_rate)
        reg, l1_ratio = self._penalty(len(X), weights)
        curve, scores = [], []
        best, best_W, stalled, converged = np.inf, None, 0, False
        for _ in range(self.max_iter):
            losses = train_linear(opt, X, y, loss=self._loss_name, reg=reg, penalty=self.penalty,
                                  l1_ratio=l1_ratio, batch_size=self.batch_size, epochs=1, rng=rng,
                                  sample_weight=weights, **self._intercept_args())
            curve.append(self._epoch_loss(losses, len(X)))
            if callback is not None:
                callback(len(curve), curve[-1])
            # Stop after n_iter_no_change epochs that do not improve on the best by tol:
            # the validation accuracy with early_stopping, else the training loss.
            if val is not None:
                scores.append(float(np.average(np.argmax(self._linear_scores(W, X_val), axis=1) == y_val,
                                               weights=w_val)))
                value = -scores[-1]
            else:
                value = curve[-1]
            stalled = stalled + 1 if value > best - self.tol else 0
            if value < best:
                best = value
                if val is not None:
                    best_W = W.copy()
            if stalled >= self.n_iter_no_change:
                converged = True
                break
        if best_W is not None:
            W[...] = best_W  # the epoch with the best validation accuracy
        self.n_iter_ = len(curve)
        self.t_ = opt.step_count
        self.loss_curve_ = curve
        if val is not None:
            self.validation_scores_ = scores
            self.best_validation_score_ = -best
        if not converged:
            convergence_warning(f"minibatch training stopped at max_iter = {self.max_iter} epochs while the "
                                f"{'validation accuracy' if val is not None else 'training loss'} was still "
                                f"improving by more than tol = {self.tol}; increase max_iter")

    def partial_fit(self: _Estimator, X: npt.ArrayLike, y: npt.ArrayLike, classes: Optional[npt.ArrayLike] = None,
                    sample_weight: Optional[npt.ArrayLike] = None) -> _Estimator:
        """One epoch of minibatch training on (X, y), continuing the previous calls.

        For data that does not fit in memory: call it on chunks. The first call
        needs ``classes`` (every label that will ever appear); the optimizer's
        state carries over between calls. ``class_weight="balanced"`` needs all
        the data and is refused here (pass a dict).

        Returns
        -------
        self
        """
        self._check_params()
        check_feature_names(self, X, reset=not hasattr(self, "coef_"))
        X = check_X(X)
        y = check_y(y, len(X), self)
        partial = getattr(self, "_partial", None)
        if partial is None and classes is None and hasattr(self, "coef_"):
            classes = self.classes_  # after fit: continue from its weights, as scikit-learn does
        if partial is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            classes = np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise ValueError(f"classes has {len(classes)} label(s); at least 2 are required")
        else:
            if classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
                raise ValueError(f"classes={classes!r} is not the same as on the first call to partial_fit "
                                 f"({self.classes_!r})")
            classes = self.classes_
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input")
        y_index = np.searchsorted(classes, y)
        unknown = (y_index >= len(classes)) | (classes[np.minimum(y_index, len(classes) - 1)] != y)
        if unknown.any():
            raise ValueError(f"y contains labels not in classes: {np.unique(y[unknown])!r}")
        if isinstance(self.class_weight, str):
            raise ValueError("class_weight='balanced' is not supported by partial_fit (it needs every sample); "
                             "pass a dict of weights or use fit")
        weights = self._row_weights(classes, y_index, sample_weight)
        if partial is None:
            W = self._initial_W(X, classes, keep=hasattr(self, "coef_"))
            partial = self._partial = _PartialFit(W, make_optimizer(self.optimizer, [W], self.learning_rate),
                                                  SplitMix64(self.random_state))
            self.classes_ = classes
            self.loss_curve_ = []
            self.n_iter_ = 0
        W = partial.W
        Xb = X.astype(W.dtype, copy=False)
        # reg="auto" needs the total weight of all the data, which a stream does not know: 1e-4
        # (scikit-learn's SGDClassifier alpha); so does C.
        if self.C is not None:
            raise ValueError("partial_fit cannot use C: it needs the total weight of all the samples, which a "
                             "stream does not know; set reg instead")
        reg = 1e-4 if isinstance(self.reg, str) else self.reg
        losses = train_linear(partial.optimizer, Xb, y_index, loss=self._loss_name, reg=reg,
                              penalty=self.penalty, l1_ratio=self.l1_ratio, batch_size=self.batch_size, epochs=1,
                              rng=partial.rng, sample_weight=weights,
                              **self._intercept_args())
        self.loss_curve_.append(self._epoch_loss(losses, len(Xb)))
        self.n_iter_ += 1
        self.t_ = partial.optimizer.step_count
        self.solver_ = "sgd"
        self._set_weights(W, X.shape[1])
        return self

    @property
    def loss_history_(self) -> list[float]:
        """Alias of ``loss_curve_`` (its former name)."""
        return self.loss_curve_

    # --- prediction ------------------------------------------------------------------------------
    def _scores(self, X: npt.ArrayLike) -> FloatArray:
        """Scores of every class, N×C."""
        if not hasattr(self, "coef_"):
            raise not_fitted(self)
        check_feature_names(self, X, reset=False)
        X = check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        W = np.vstack([self.coef_.T, self.intercept_[None, :]]).astype(X.dtype, copy=False)
        return _core.linear_scores(W, X, intercept=True)

    def decision_function(self, X: npt.ArrayLike) -> FloatArray:
        """Scores ``X @ coef_.T + intercept_``: N×C, or for two classes (as in
        scikit-learn) the N margins ``score[:, 1] - score[:, 0]``, positive for ``classes_[1]``."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X: npt.ArrayLike) -> Array:
        """The class with the highest score for every row of X."""
        scores = self._scores(X)  # first: it raises NotFittedError before classes_ is read
        labels: Array = self.classes_[np.argmax(scores, axis=1)]
        return labels

    def score(self, X: npt.ArrayLike, y: npt.ArrayLike, sample_weight: Optional[npt.ArrayLike] = None) -> float:
        """Mean accuracy on (X, y), weighted by sample_weight if given."""
        predicted = self.predict(X)
        y = check_y(y, len(predicted), self)
        weights = check_sample_weight(sample_weight, len(y))
        return float(np.average(predicted == y, weights=weights))


class SoftmaxClassifier(_LinearEstimator):
    """Softmax regression (multinomial logistic regression) trained by fastopt.

    Minimizes ``weighted mean cross-entropy + reg · R(coef_)`` (the intercept is
    not penalized). With ``reg = 1 / (2 · C · n_samples)`` this is the objective
    of scikit-learn's ``LogisticRegression(C=C)``; the default ``reg="auto"`` is
    C = 1.

    Parameters
    ----------
    solver : {"auto", "lbfgs", "sgd"}, default "auto"
        "lbfgs": full-batch L-BFGS on the fused loss. "sgd": minibatch training
        with ``optimizer`` (multinomial, unlike scikit-learn's one-vs-rest
        SGDClassifier). "auto" picks "lbfgs" when the objective is smooth (the
        l2 penalty) and X has at most ``LBFGS_MAX_VALUES`` (2**27) values, else
        "sgd"; the choice is in ``solver_``.
    optimizer : str, default "adam"
        The minibatch optimizer: "sgd", "momentum", "nesterov", or any other rule of the
        registry at its defaults (:data:`OPTIMIZERS`).
    learning_rate : float or callable, default 0.01
        A number or a :mod:`fastopt.schedules` schedule (``t`` = updates so far).
    reg : float or "auto", default "auto"
        Penalty strength: the penalty is ``reg · R(coef_)``. "auto" is
        ``1 / (2 · sum of the sample weights)`` (1 / (2 · n_samples) without
        weights): the objective of scikit-learn's ``LogisticRegression()``
        (C = 1). ``partial_fit`` uses 1e-4 for "auto" (a stream's size is unknown).
    C : float or None, default None
        scikit-learn's inverse penalty strength, instead of ``reg``: the objective is
        scikit-learn's ``C · Σ loss + penalty`` divided by ``C · sum of the sample weights``
        for each penalty — ``reg = 1 / (2 C S)`` (l2), ``1 / (C S)`` (l1), and for the
        elastic net (``l1_ratio ‖w‖₁ + (1 − l1_ratio) / 2 ‖w‖²``) ``(1 + l1_ratio) / (2 C S)``
        with an l1 share of ``2 l1_ratio / (1 + l1_ratio)``. Not with ``partial_fit``.
    penalty : {"l2", "l1", "elastic_net"}, default "l2"
    l1_ratio : float, default 0.5
        The l1 share of the elastic-net penalty.
    fit_intercept : bool, default True
        Learn an (unpenalized) intercept per class.
    batch_size : int, default 200
    max_iter : int, default 100
        Epochs (minibatch) or iterations (L-BFGS).
    tol : float, default 1e-4
        L-BFGS stops when the largest gradient entry is <= tol; minibatch training
        stops when the training loss (or, with early_stopping, the validation
        accuracy) has not improved by tol for ``n_iter_no_change`` epochs.
    n_iter_no_change : int, default 5
    early_stopping : bool, default False
        Minibatch training only: hold out ``validation_fraction`` of every class,
        stop on its accuracy (weighted by ``sample_weight``; unweighted if the
        held-out rows all weigh 0), and keep the best epoch's weights.
    validation_fraction : float, default 0.1
    class_weight : None, "balanced" or dict, default None
        Weights of the classes, multiplying ``sample_weight``: "balanced" is
        ``n_samples / (n_classes · count(class))``, as in scikit-learn.
    warm_start : bool, default False
        Start ``fit`` from the previous fit's weights (same classes and features).
    random_state : int, numpy.random.Generator or RandomState, optional
        Seed of the minibatch order (and of the validation split): the fit is
        deterministic for a fixed seed. Training runs in native code
        (:func:`fastopt.training.train_linear`, shuffled epochs).

    """

    _loss_name = "softmax"

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        """Class probabilities (softmax of the scores), N×C."""
        scores = self._scores(X)
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        probabilities: FloatArray = e / e.sum(axis=1, keepdims=True)
        return probabilities

    def predict_log_proba(self, X: npt.ArrayLike) -> FloatArray:
        """Log class probabilities, N×C: ``s - max(s) - log(sum(exp(s - max(s))))`` of the
        scores ``s``, finite where :meth:`predict_proba` underflows to 0."""
        scores = self._scores(X)
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probabilities: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return log_probabilities


class LinearSVMClassifier(_LinearEstimator):
    """Multiclass linear SVM (Weston–Watkins hinge, delta = 1) trained by fastopt.

    The Weston–Watkins multiclass hinge is fastopt's own among scikit-learn-style
    estimators (liblinear's LinearSVC is one-vs-rest or Crammer–Singer). The
    hinge is not smooth, so ``solver="auto"`` trains with minibatches. Parameters
    are those of :class:`SoftmaxClassifier`.

    """

    _loss_name = "svm"


# What fit sets, documented once for both estimators.
_FITTED_ATTRIBUTES = """
    Attributes
    ----------
    classes_ : numpy.ndarray, shape (n_classes,)
        The class labels seen in ``fit`` (``np.unique(y)``) or given to the first
        ``partial_fit``; predictions are drawn from them.
    coef_ : numpy.ndarray, shape (n_classes, n_features)
        The weights, X's dtype (float32 input stays float32).
    intercept_ : numpy.ndarray, shape (n_classes,)
        The intercepts (not penalized; zeros with ``fit_intercept=False``).
    n_features_in_ : int
        Number of features seen in ``fit``; later calls must match it.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame ``X`` whose names are all strings (only
        then); later calls must pass the same columns in the same order, as in
        scikit-learn.
    solver_ : str
        The solver used ("lbfgs" or "sgd").
    n_iter_ : int
        Epochs run (minibatch) or L-BFGS iterations.
    t_ : int
        Minibatch updates made (minibatch training only).
    loss_curve_ : list of float
        The mean training loss (with the penalty) after every epoch, or the
        objective after every L-BFGS iteration. ``loss_history_`` is an alias.
    validation_scores_ : list of float
        With early_stopping: the validation accuracy after every epoch.
    best_validation_score_ : float
        With early_stopping: the best of them (its weights are kept).
"""
for _cls in (SoftmaxClassifier, LinearSVMClassifier):
    _cls.__doc__ = (_cls.__doc__ or "").rstrip() + "\n" + _FITTED_ATTRIBUTES
del _cls
