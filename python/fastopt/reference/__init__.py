"""Pure-NumPy reference implementations: the executable specification.

Same signatures and semantics as the fast functions at the top level of
:mod:`fastopt`; the tests check the two against each other.
"""
from .losses import (multiclass_hinge, softmax_cross_entropy, softmax_loss, softmax_loss_naive,
                     softmax_loss_vectorized, svm_loss, svm_loss_naive, svm_loss_vectorized)
from .optim import (adadelta, adafactor, adagrad, adam, adamax, ademamix, adamw, asgd, lion, nadam, radam, rmsprop,
                    rprop, sgd, sgd_momentum)
from .regularization import penalty
from .training import SplitMix64, train_linear

__all__ = [
    "sgd", "sgd_momentum", "adagrad", "rmsprop", "adam", "adamw", "lion", "adamax", "radam", "adadelta", "rprop",
    "nadam", "asgd", "adafactor", "ademamix",
    "softmax_loss_naive", "softmax_loss_vectorized", "svm_loss_naive", "svm_loss_vectorized",
    "softmax_loss", "svm_loss", "softmax_cross_entropy", "multiclass_hinge", "penalty",
    "SplitMix64", "train_linear",
]
