"""fastopt: fused C++ optimizer steps and linear-classifier losses that match a NumPy reference.

The functions here are the fast path; :mod:`fastopt.reference` holds the same
functions in plain NumPy (the specification); :mod:`fastopt.optim` has the
stateful multi-tensor optimizers, :mod:`fastopt.regularization` the weight
penalties and :mod:`fastopt.gradcheck` numerical gradient checking.
"""
from . import _core
from ._config import (available_isas, compiled_isas, config, get_isa, get_num_threads, set_isa,
                      set_num_threads, show_config, _apply_environment)
from .functional import (adadelta, adafactor, adagrad, adam, adamax, adamw, asgd, lion, nadam, radam, rmsprop, rprop,
                         sgd, sgd_momentum)
from .losses import multiclass_hinge, softmax_cross_entropy, softmax_loss, svm_loss
from . import datasets, gradcheck, lbfgs, linear, optim, reference, regularization, schedules, search, training

__version__ = _core.__version__

__all__ = [
    "sgd", "sgd_momentum", "adagrad", "rmsprop", "adam", "adamw", "lion", "adamax", "radam", "adadelta", "rprop",
    "nadam", "asgd", "adafactor", "softmax_loss", "svm_loss", "softmax_cross_entropy", "multiclass_hinge",
    "optim", "reference", "regularization", "gradcheck", "schedules", "lbfgs", "linear", "datasets",
    "training", "search",
    "show_config", "config", "get_isa", "set_isa", "available_isas", "compiled_isas",
    "get_num_threads", "set_num_threads",
]

_apply_environment()
del _apply_environment
