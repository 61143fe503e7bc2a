"""Linear classifiers trained with fastopt's fused losses and optimizers.

Two flavours:

* course-style :class:`LinearSVM` and :class:`Softmax` (``train`` / ``predict``,
  as in the CS231n assignment, W of shape D×C, bias by the bias trick in X);
* scikit-learn-style :class:`SoftmaxClassifier` and :class:`LinearSVMClassifier`
  (``fit`` / ``predict`` / ``decision_function`` / ``score`` / ``get_params`` /
  ``set_params``; :class:`SoftmaxClassifier` also ``predict_proba``), with any
  :mod:`fastopt.optim` optimizer by name, a learning rate or schedule, and
  ``solver="lbfgs"`` for full-batch training.
"""
import inspect

import numpy as np

from . import _core, optim
from ._validation import DataConversionWarning, NotFittedError, check_X, check_y, not_fitted
from .lbfgs import minimize
from .losses import softmax_loss, svm_loss
from .training import SplitMix64, train_linear

LOSSES = {"softmax": softmax_loss, "svm": svm_loss}   # by the name train_linear takes

__all__ = ["LinearClassifier", "LinearSVM", "Softmax", "SoftmaxClassifier", "LinearSVMClassifier",
           "make_optimizer", "OPTIMIZERS", "NotFittedError", "DataConversionWarning"]

OPTIMIZERS = {
    "sgd": lambda params, lr: optim.SGD(params, lr=lr),
    "momentum": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9),
    "nesterov": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "adagrad": lambda params, lr: optim.Adagrad(params, lr=lr),
    "rmsprop": lambda params, lr: optim.RMSprop(params, lr=lr),
    "adam": lambda params, lr: optim.Adam(params, lr=lr),
    "adamw": lambda params, lr: optim.AdamW(params, lr=lr),
    "lion": lambda params, lr: optim.Lion(params, lr=lr),
}


def make_optimizer(name, params, lr):
    """A :mod:`fastopt.optim` optimizer by name: one of :data:`OPTIMIZERS`."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    return OPTIMIZERS[name](params, lr)


# ---------------------------------------------------------------- course style

class LinearClassifier:
    """Course-style linear classifier: ``W`` is D×C; put the bias in X (bias trick)."""

    def __init__(self):
        self.W = None

    def train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200, verbose=False,
              seed=None, optimizer="sgd"):
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
        loss_history = []
        chunk = 100 if verbose else max(num_iters, 1)   # print every 100 iterations, as the course does
        for start in range(0, num_iters, chunk):
            losses = train_linear(opt, X, y, loss=self._loss_name, reg=reg, batch_size=batch_size,
                                  num_iters=min(chunk, num_iters - start), rng=batches)
            if verbose:
                print(f"iteration {start} / {num_iters}: loss {losses[0]:f}")
            loss_history.extend(losses.tolist())
        return loss_history

    def predict(self, X):
        """The class with the highest score for every row of X."""
        return np.argmax(np.asarray(X) @ self.W, axis=1)

    _loss_name = None   # "softmax" or "svm" in the subclasses

    def loss(self, X_batch, y_batch, reg):
        """Loss and gradient of the current W on a minibatch (the course's method)."""
        if self._loss_name is None:
            raise NotImplementedError("use LinearSVM or Softmax")
        return LOSSES[self._loss_name](self.W, X_batch, y_batch, reg)


class LinearSVM(LinearClassifier):
    """Multiclass SVM (Weston–Watkins hinge, delta = 1) with an L2 penalty."""

    _loss_name = "svm"


class Softmax(LinearClassifier):
    """Softmax (cross-entropy) classifier with an L2 penalty."""

    _loss_name = "softmax"


# ---------------------------------------------------------- scikit-learn style

class _LinearEstimator:
    _loss_name = None

    def __init__(self, *, optimizer="adam", learning_rate=0.01, reg=1e-4, penalty="l2", l1_ratio=0.5,
                 batch_size=200, max_iter=100, solver="sgd", tol=1e-6, random_state=None):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.reg = reg
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.solver = solver
        self.tol = tol
        self.random_state = random_state

    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(_LinearEstimator.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """The constructor arguments, as a dict."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor arguments; returns self."""
        for name, value in params.items():
            if name not in self._param_names():
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    _estimator_type = "classifier"

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags (only scikit-learn calls this, so it may import it)."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), input_tags=InputTags())

    def _check_params(self):
        """TypeError / ValueError naming the first invalid constructor argument (checked in fit,
        as scikit-learn does), before anything is trained."""
        if self.solver not in ("sgd", "lbfgs"):
            raise ValueError(f"solver must be 'sgd' or 'lbfgs', got {self.solver!r}")
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.penalty not in ("l2", "l1", "elastic_net"):
            raise ValueError(f"penalty must be 'l2', 'l1' or 'elastic_net', got {self.penalty!r}")
        for name, value in (("max_iter", self.max_iter), ("batch_size", self.batch_size)):
            if _core.as_int(value, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        checks = [("reg", self.reg, lambda x: 0 <= x < np.inf, "a finite number >= 0"),
                  ("l1_ratio", self.l1_ratio, lambda x: 0 <= x <= 1, "in [0, 1]"),
                  ("tol", self.tol, lambda x: 0 <= x < np.inf, "a finite number >= 0")]
        if not callable(self.learning_rate):
            checks.append(("learning_rate", self.learning_rate, lambda x: 0 <= x < np.inf, "a finite number >= 0"))
        for name, value, valid, what in checks:
            if not valid(_core.as_real(value, name)):
                raise ValueError(f"{name} must be {what}, got {value!r}")
        seed = self.random_state
        if not (seed is None or isinstance(seed, (SplitMix64, np.random.Generator, np.random.RandomState))
                or (isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)))):
            raise TypeError(f"random_state must be None, an int or a numpy random generator, "
                            f"got {type(seed).__name__}")

    def _objective(self, W, X, y):
        return LOSSES[self._loss_name](W, X, y, self.reg, penalty=self.penalty, l1_ratio=self.l1_ratio)

    def fit(self, X, y, callback=None):
        """Train on X (N×D) and labels y (any N values: the classes are ``np.unique(y)``).

        ``callback(epoch, mean_loss)``, if given, is called after every epoch
        (``solver="sgd"``); the ``fastopt train`` progress bar uses it.
        """
        self._check_params()
        X = check_X(X)
        y = check_y(y, len(X), self)
        if self.solver == "sgd":
            try:
                _core.train_updates("epochs", len(X), self.batch_size, self.max_iter, "max_iter")
            except ValueError:
                raise ValueError(f"max_iter = {self.max_iter} epochs of {len(X)} rows in batches of {self.batch_size} "
                                 f"make more than {_core.max_updates_per_call} updates; use fewer epochs or "
                                 "larger batches") from None
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has 1 class ({classes[0]!r}); at least 2 classes are required")
        self.classes_ = classes
        Xb = np.hstack([X, np.ones((len(X), 1), X.dtype)])      # the bias trick
        W = np.zeros((Xb.shape[1], len(self.classes_)), X.dtype)
        self.loss_history_ = []
        if self.solver == "lbfgs":
            result = minimize(lambda w: self._objective(w, Xb, y_index), W, max_iter=self.max_iter, tol=self.tol)
            W, self.n_iter_ = result.x, result.nit
            self.loss_history_.append(result.fun)
        else:
            opt = make_optimizer(self.optimizer, [W], self.learning_rate)
            batches = SplitMix64(self.random_state)
            n = len(Xb)
            # Per-epoch mean loss: minibatch losses weighted by batch size.
            sizes = np.full(-(-n // self.batch_size), self.batch_size, dtype=np.float64)
            sizes[-1] = n - self.batch_size * (len(sizes) - 1)
            epochs_per_call = 1 if callback is not None else self.max_iter
            for _ in range(0, self.max_iter, epochs_per_call):
                losses = train_linear(opt, Xb, y_index, loss=self._loss_name, reg=self.reg, penalty=self.penalty,
                                      l1_ratio=self.l1_ratio, batch_size=self.batch_size, epochs=epochs_per_call,
                                      rng=batches)
                for epoch_losses in losses.reshape(epochs_per_call, len(sizes)):
                    self.loss_history_.append(float(epoch_losses @ sizes) / n)
                if callback is not None:
                    callback(len(self.loss_history_), self.loss_history_[-1])
            self.n_iter_ = self.max_iter
        self.coef_ = np.ascontiguousarray(W[:-1].T)
        self.intercept_ = W[-1].copy()
        self.n_features_in_ = X.shape[1]
        return self

    def _scores(self, X):
        """Scores of every class, N×C."""
        if not hasattr(self, "coef_"):
            raise not_fitted(self)
        X = check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        return X @ self.coef_.T.astype(X.dtype, copy=False) + self.intercept_.astype(X.dtype, copy=False)

    def decision_function(self, X):
        """Scores ``X @ coef_.T + intercept_``: N×C, or for two classes (as in
        scikit-learn) the N margins ``score[:, 1] - score[:, 0]``, positive for ``classes_[1]``."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """The class with the highest score for every row of X."""
        scores = self._scores(X)  # first: it raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, X, y):
        """Mean accuracy on (X, y)."""
        predicted = self.predict(X)
        return float(np.mean(predicted == check_y(y, len(predicted), self)))


class SoftmaxClassifier(_LinearEstimator):
    """Softmax regression (multinomial logistic regression) trained by fastopt.

    Parameters
    ----------
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lion"}, default "adam"
    learning_rate : float or callable, default 0.01
        A number or a :mod:`fastopt.schedules` schedule (``t`` = updates so far).
    reg : float, default 1e-4
    penalty : {"l2", "l1", "elastic_net"}, default "l2"
    l1_ratio : float, default 0.5
    batch_size : int, default 200
    max_iter : int, default 100
        Epochs for ``solver="sgd"``; iterations for ``"lbfgs"``.
    solver : {"sgd", "lbfgs"}, default "sgd"
        Minibatch training with ``optimizer``, or full-batch L-BFGS.
    tol : float, default 1e-6
        Gradient tolerance of L-BFGS.
    random_state : int, numpy.random.Generator or RandomState, optional
        Seed of the minibatch order: the fit is deterministic for a fixed seed.
        Training runs in native code (:func:`fastopt.training.train_linear`,
        shuffled epochs).

    """

    _loss_name = "softmax"

    def predict_proba(self, X):
        """Class probabilities (softmax of the scores), N×C."""
        scores = self._scores(X)
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)


class LinearSVMClassifier(_LinearEstimator):
    """Multiclass linear SVM (Weston–Watkins hinge, delta = 1) trained by fastopt.

    Parameters are those of :class:`SoftmaxClassifier`.

    """

    _loss_name = "svm"


# What fit sets, documented once for both estimators.
_FITTED_ATTRIBUTES = """
    Attributes
    ----------
    classes_ : numpy.ndarray, shape (n_classes,)
        The class labels seen in ``fit`` (``np.unique(y)``); predictions are drawn from them.
    coef_ : numpy.ndarray, shape (n_classes, n_features)
        The weights, X's dtype (float32 input stays float32).
    intercept_ : numpy.ndarray, shape (n_classes,)
        The biases (trained with the bias trick, so the penalty covers them too).
    n_features_in_ : int
        Number of features seen in ``fit``; later calls must match it.
    n_iter_ : int
        Epochs run (``solver="sgd"``) or L-BFGS iterations (``"lbfgs"``).
    loss_history_ : list of float
        The mean training loss after every epoch (``"sgd"``), or the final
        objective (``"lbfgs"``).
"""
for _cls in (SoftmaxClassifier, LinearSVMClassifier):
    _cls.__doc__ = _cls.__doc__.rstrip() + "\n" + _FITTED_ATTRIBUTES
del _cls
