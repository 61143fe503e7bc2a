"""The options both optimizer families take — :mod:`fastopt.optim` over NumPy arrays and
:mod:`fastopt.torch` over tensors: the mixed-precision options, and torch's tuples of
hyperparameters (``betas=(beta1, beta2)``), checked the same way for both."""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Sequence

import numpy as np

from . import _core

# float16 and bfloat16: the parameter dtypes whose state is float32 by default.
LOW_PRECISION_KINDS = {"float16", "bfloat16"}


# Tensors with fewer elements keep float32 state under state_dtype="int8" (bitsandbytes' min_8bit_size).
MIN_8BIT_SIZE = 4096


def precision_options(state_dtype: Any, stochastic_rounding: bool, seed: int) -> tuple[str, bool, int]:
    """The checked mixed-precision options. ``state_dtype`` is "float32", "param" or "int8", or
    float32 as a dtype (``numpy.float32``, ``torch.float32``)."""
    if not isinstance(state_dtype, str) and str(state_dtype) in ("torch.float32", "float32",
                                                                 "<class 'numpy.float32'>"):
        state_dtype = "float32"
    if state_dtype not in ("float32", "param", "int8"):
        raise ValueError(f"state_dtype must be 'float32' (or float32 as a dtype), 'param' or 'int8', "
                         f"got {state_dtype!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return state_dtype, _core.as_bool(stochastic_rounding, "stochastic_rounding"), seed


def int8_options(rule: dict[str, Any], state_dtype: str, min_8bit_size: Any, name: str) -> int:
    """The checked ``min_8bit_size``; ValueError when ``state_dtype="int8"`` is asked of a rule
    that keeps no state 8 bits can hold."""
    if isinstance(min_8bit_size, (bool, np.bool_)) or not isinstance(min_8bit_size, numbers.Integral):
        raise TypeError(f"min_8bit_size must be an int, got {type(min_8bit_size).__name__}")
    if min_8bit_size < 0:
        raise ValueError(f"min_8bit_size must be >= 0, got {min_8bit_size}")
    if state_dtype == "int8" and not rule["stores_8bit"]:
        raise ValueError(f"state_dtype='int8': {name} keeps no moment state that 8 bits can hold "
                         f"(8-bit state is for the running averages of Adam-like rules); use 'float32'")
    return int(min_8bit_size)


def warn_if_nothing_to_round(stochastic_rounding: bool, dtypes: Sequence[str], name: str) -> None:
    """stochastic_rounding=True with no float16/bfloat16 parameter changes nothing: say so."""
    if stochastic_rounding and dtypes and not any(d in LOW_PRECISION_KINDS for d in dtypes):
        warnings.warn(f"{name}(stochastic_rounding=True) has no float16 or bfloat16 parameter: stochastic rounding "
                      f"applies to those only, and float32/float64 parameters are stepped as without it",
                      UserWarning, stacklevel=3)


def tuple_of(value: Any, size: int, name: str) -> tuple[Any, ...]:
    """``value`` as a tuple of ``size`` items (torch's betas, etas, step_sizes); TypeError unless it is one."""
    if not isinstance(value, (tuple, list)) or len(value) != size:
        raise TypeError(f"{name} must be a tuple of {size}, got {value!r}")
    return tuple(value)
