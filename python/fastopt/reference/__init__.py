"""Pure-NumPy reference implementations: the executable specification.

Same signatures and semantics as the fast functions at the top level of
:mod:`fastopt`; the tests check the two against each other.
"""
from .optim import adagrad, adam, adamw, rmsprop, sgd, sgd_momentum

__all__ = ["sgd", "sgd_momentum", "adagrad", "rmsprop", "adam", "adamw"]
