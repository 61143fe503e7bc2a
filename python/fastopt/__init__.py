"""fastopt: fused C++ optimizer steps and linear-classifier losses that match a NumPy reference.

The functions here are the fast path; :mod:`fastopt.reference` holds the same
functions in plain NumPy (the specification); :mod:`fastopt.optim` has the
stateful multi-tensor optimizers, :mod:`fastopt.regularization` the weight
penalties and :mod:`fastopt.gradcheck` numerical gradient checking.
"""
import os as _os


def _load_core() -> None:
    """Import the extension. Its OpenMP runtime reads its settings once, when it loads:
    unless the user chose a wait policy, its idle threads spin 10,000 times before they
    sleep, not libgomp's default 300,000. A step's threads then stay ready between
    back-to-back steps, and leave the cores to other processes soon after (with
    three busy processes on two cores, a 1M-element Adam step took 3.96 ms with the
    default and 1.42 ms so, as fast as one thread; 0.37 ms either way on idle cores).
    The variable is set only while the extension loads, so no library loaded later sees it.
    A runtime already started (torch's libgomp.so.1, shared by a source build imported after
    torch) keeps its own setting."""
    own = "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ
    if own:
        _os.environ["GOMP_SPINCOUNT"] = "10000"
    try:
        from . import _core  # noqa: F401
    finally:
        if own:
            del _os.environ["GOMP_SPINCOUNT"]


_load_core()
from . import _core  # noqa: E402
from ._config import (available_isas, compiled_isas, config, get_isa, get_num_threads, set_isa,
                      set_num_threads, show_config, _apply_environment)
from . import functional as _functional
from .functional import *  # noqa: F401,F403  (a function per update rule)
from .losses import multiclass_hinge, softmax_cross_entropy, softmax_loss, svm_loss
from . import datasets, gradcheck, lbfgs, linear, optim, reference, regularization, schedules, search, training

__version__ = _core.__version__

__all__ = [
    *_functional.__all__, "softmax_loss", "svm_loss", "softmax_cross_entropy", "multiclass_hinge",
    "optim", "reference", "regularization", "gradcheck", "schedules", "lbfgs", "linear", "datasets",
    "training", "search",
    "show_config", "config", "get_isa", "set_isa", "available_isas", "compiled_isas",
    "get_num_threads", "set_num_threads",
]

_apply_environment()
del _apply_environment
