"""Type aliases used in fastopt's annotations."""
from typing import Any

import numpy as np
import numpy.typing as npt

#: An array of any dtype: parameters may be float16 or bfloat16 (ml_dtypes), which
#: are not ``np.floating`` subtypes for a type checker.
Array = npt.NDArray[Any]
#: A float32 or float64 array.
FloatArray = npt.NDArray[np.floating[Any]]
#: An integer array (class labels, indices).
IntArray = npt.NDArray[np.integer[Any]]

__all__ = ["Array", "FloatArray", "IntArray"]
