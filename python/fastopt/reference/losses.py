"""Linear-classifier losses in plain NumPy, written like the CS231n code.

X is N×D (one example per row; append a column of ones for the bias trick),
W is D×C, y holds integer labels in [0, C). The data loss is averaged over N;
the penalty is added as defined in :mod:`fastopt.reference.regularization`.
"""
import numpy as np

from .regularization import penalty
from .._typing import FloatArray, IntArray
from typing import Optional


def softmax_loss_naive(W: FloatArray, X: FloatArray, y: IntArray, reg: float) -> tuple[float, FloatArray]:
    """Softmax (cross-entropy) loss with explicit loops, L2 penalty reg·ΣW²."""
    dW = np.zeros_like(W)
    loss = 0.0
    num_train = X.shape[0]
    num_classes = W.shape[1]
    for i in range(num_train):
        scores = X[i].dot(W)
        scores = scores - np.max(scores)          # numerical stability
        exp_scores = np.exp(scores)
        probs = exp_scores / np.sum(exp_scores)
        loss += -np.log(probs[y[i]])
        for j in range(num_classes):
            dW[:, j] += (probs[j] - (j == y[i])) * X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    return loss, dW


def softmax_loss_vectorized(W: FloatArray, X: FloatArray, y: IntArray, reg: float) -> tuple[float, FloatArray]:
    """Softmax loss without loops, L2 penalty reg·ΣW²."""
    num_train = X.shape[0]
    scores = X.dot(W)
    scores = scores - np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(num_train), y])) / num_train
    dscores = probs
    dscores[np.arange(num_train), y] -= 1
    dW = X.T.dot(dscores) / num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    return loss, dW


def svm_loss_naive(W: FloatArray, X: FloatArray, y: IntArray, reg: float,
                   delta: float = 1.0) -> tuple[float, FloatArray]:
    """Multiclass SVM (Weston–Watkins hinge) loss with explicit loops, L2 penalty."""
    dW = np.zeros_like(W)
    num_classes = W.shape[1]
    num_train = X.shape[0]
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + delta
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    return loss, dW


def svm_loss_vectorized(W: FloatArray, X: FloatArray, y: IntArray, reg: float,
                        delta: float = 1.0) -> tuple[float, FloatArray]:
    """Multiclass SVM loss without loops, L2 penalty."""
    num_train = X.shape[0]
    scores = X.dot(W)
    correct_class_scores = scores[np.arange(num_train), y][:, None]
    margins = np.maximum(0, scores - correct_class_scores + delta)
    margins[np.arange(num_train), y] = 0
    loss = np.sum(margins) / num_train
    binary = (margins > 0).astype(W.dtype)
    binary[np.arange(num_train), y] = -np.sum(binary, axis=1)
    dW = X.T.dot(binary) / num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    return loss, dW


def softmax_cross_entropy(scores: FloatArray, y: IntArray,
                          sample_weight: Optional[FloatArray] = None) -> tuple[float, FloatArray]:
    """Mean softmax cross-entropy of N×C scores; returns (loss, dscores).
    With sample_weight w: the weighted mean sum(w * loss_i) / sum(w)."""
    num_train = scores.shape[0]
    w = np.ones(num_train) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(shifted)
    sum_exp = np.sum(exp_scores, axis=1, keepdims=True)
    log_probs = shifted - np.log(sum_exp)
    loss = -np.sum(w * log_probs[np.arange(num_train), y]) / np.sum(w)
    dscores = exp_scores / sum_exp
    dscores[np.arange(num_train), y] -= 1
    dscores *= (w / np.sum(w))[:, None].astype(scores.dtype)
    return float(loss), dscores


def multiclass_hinge(scores: FloatArray, y: IntArray, delta: float = 1.0,
                     sample_weight: Optional[FloatArray] = None) -> tuple[float, FloatArray]:
    """Mean Weston–Watkins hinge loss of N×C scores; returns (loss, dscores).
    With sample_weight w: the weighted mean sum(w * loss_i) / sum(w)."""
    num_train = scores.shape[0]
    w = np.ones(num_train) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    correct_class_scores = scores[np.arange(num_train), y][:, None]
    margins = np.maximum(0, scores - correct_class_scores + delta)
    margins[np.arange(num_train), y] = 0
    loss = np.sum(w * np.sum(margins, axis=1)) / np.sum(w)
    dscores = (margins > 0).astype(scores.dtype)
    dscores[np.arange(num_train), y] = -np.sum(dscores, axis=1)
    dscores *= (w / np.sum(w))[:, None].astype(scores.dtype)
    return float(loss), dscores


def softmax_loss(W: FloatArray, X: FloatArray, y: IntArray, reg: float = 0.0, *, penalty: str = "l2",
                 l1_ratio: float = 0.5, sample_weight: Optional[FloatArray] = None, unpenalized_rows: int = 0,
                 intercept: bool = False) -> tuple[float, FloatArray]:
    """Softmax loss of the linear classifier X·W plus a penalty; returns (loss, dW).
    The last unpenalized_rows rows of W (a bias row) are left out of the penalty.
    intercept=True: W's last row is the intercept (the bias trick: X gets a column of ones)."""
    if intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1), X.dtype)])
    data_loss, dscores = softmax_cross_entropy(X.dot(W), y, sample_weight)
    return _with_penalty(W, X, data_loss, dscores, reg, penalty, l1_ratio, unpenalized_rows)


def svm_loss(W: FloatArray, X: FloatArray, y: IntArray, reg: float = 0.0, *, delta: float = 1.0, penalty: str = "l2",
             l1_ratio: float = 0.5, sample_weight: Optional[FloatArray] = None, unpenalized_rows: int = 0,
             intercept: bool = False) -> tuple[float, FloatArray]:
    """Multiclass SVM loss of the linear classifier X·W plus a penalty; returns (loss, dW)."""
    if intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1), X.dtype)])
    data_loss, dscores = multiclass_hinge(X.dot(W), y, delta, sample_weight)
    return _with_penalty(W, X, data_loss, dscores, reg, penalty, l1_ratio, unpenalized_rows)


def _with_penalty(W: FloatArray, X: FloatArray, data_loss: float, dscores: FloatArray, reg: float, kind: str,
                  l1_ratio: float, unpenalized_rows: int = 0) -> tuple[float, FloatArray]:
    penalized = W.shape[0] - unpenalized_rows
    reg_loss, reg_grad = penalty(W[:penalized], reg, kind, l1_ratio)
    dW = X.T.dot(dscores)
    dW[:penalized] += reg_grad
    return data_loss + reg_loss, dW
