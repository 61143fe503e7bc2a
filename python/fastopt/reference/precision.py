"""Mixed precision in plain NumPy: the specification of fastopt's float16 /
bfloat16 paths (docs/design.md, "Mixed precision").

A step on low-precision arrays is the float32 step of :mod:`fastopt.reference.optim` on
float32 copies, rounded back: the parameter to nearest even (NumPy's and
ml_dtypes' ``astype``) or stochastically, the state to nearest even, and in
master-weight mode the updated float32 parameter into its low-precision copy.
Stochastic rounding adds random bits below the target's precision and
truncates; the bits of element ``i`` are ``hash32(uint32(i) ^ key)``, the key
hashed from (seed, step, tensor number, i // 2**32). The fast path computes
the same bits; the tests check the two bitwise.
"""
import inspect
from typing import Any, Callable, Optional

import numpy as np
import numpy.typing as npt

from .._typing import Array

_M64 = 2**64 - 1


def bfloat16() -> np.dtype[Any]:
    """``ml_dtypes.bfloat16`` (an optional dependency: ``pip install fastopt[bf16]``)."""
    try:
        import ml_dtypes
    except ImportError as e:  # pragma: no cover - exercised when ml_dtypes is absent
        raise ImportError("bfloat16 needs the ml_dtypes package: pip install fastopt[bf16]") from e
    dtype: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
    return dtype


def _mix64(x: int) -> int:
    """SplitMix64's finalizer on a Python int."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def stream_key(seed: int, step: int, tensor: int, index: int = 0) -> int:
    """The 32-bit key of the random bits of elements [index // 2**32 * 2**32, ...)."""
    k = _mix64(seed)
    k = _mix64(k ^ (step & _M64))
    k = _mix64(k ^ tensor)
    k = _mix64(k ^ (index >> 32))
    return k & 0xFFFFFFFF


def hash32(x: npt.NDArray[np.unsignedinteger[Any]]) -> npt.NDArray[np.unsignedinteger[Any]]:
    """C. Wellons' lowbias32 on a uint32 array."""
    x = np.asarray(x, np.uint32)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x21F0AAAD)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x735A2D97)
    x = x ^ (x >> np.uint32(15))
    return x


def random_bits(n: int, *, seed: int, step: int, tensor: int) -> npt.NDArray[np.uint32]:
    """The 32 random bits of elements 0 .. n-1 of a tensor at a step."""
    index = np.arange(n, dtype=np.uint64)
    bits = np.empty(n, np.uint32)
    for high in range(0, (n - 1 >> 32) + 1 if n else 0):
        part = slice(high << 32, min(n, (high + 1) << 32))
        key = np.uint32(stream_key(seed, step, tensor, high << 32))
        bits[part] = hash32(index[part].astype(np.uint32) ^ key)
    return bits


def round_to_bfloat16_stochastic(x: Array, bits: npt.NDArray[np.uint32]) -> Array:
    """float32 -> bfloat16, up with probability equal to the dropped fraction of an ulp."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = ((u + (bits & np.uint32(0xFFFF))) >> np.uint32(16)).astype(np.uint16)
    out = rounded.view(bfloat16())
    nan = np.isnan(x)
    out[nan] = x[nan].astype(bfloat16())
    return out


def round_to_float16_stochastic(x: Array, bits: npt.NDArray[np.uint32]) -> Array:
    """float32 -> float16 likewise: random bits below float16's grid at each value's
    magnitude (13 for normal values, up to 23 for subnormal ones), then truncation;
    below 2**-24 the result is 2**-24 with probability ``|x| / 2**-24``."""
    x = np.ascontiguousarray(x, np.float32)
    w = x.view(np.uint32)
    sign = w & np.uint32(0x80000000)
    a = w & np.uint32(0x7FFFFFFF)
    exponent = (a >> np.uint32(23)).astype(np.int32) - 127
    dropped = np.minimum(13 + np.maximum(0, -14 - exponent), 23).astype(np.uint32)
    mask = (np.uint32(1) << dropped) - np.uint32(1)
    truncated = (a + (bits & mask)) & ~mask
    with np.errstate(over="ignore"):
        on_grid = (sign | truncated).view(np.float32).astype(np.float16)
        up = (bits >> np.uint32(8)).astype(np.float32) < a.view(np.float32) * np.float32(2.0**48)
    tiny = ((sign >> np.uint32(16)) | up.astype(np.uint32)).astype(np.uint16).view(np.float16)
    out = np.where(exponent < -24, tiny, on_grid)
    nan = np.isnan(x)
    out[nan] = x[nan].astype(np.float16)
    return out


def round_stochastic(x: Array, dtype: npt.DTypeLike, bits: npt.NDArray[np.uint32]) -> Array:
    """float32 ``x`` rounded stochastically to float16 or bfloat16."""
    if np.dtype(dtype) == np.float16:
        return round_to_float16_stochastic(x, bits)
    return round_to_bfloat16_stochastic(x, bits)


def step_in_float32(update: Callable[..., None], p: Array, g: Array, *states: Optional[Array],
                    step: Optional[int] = None,
                    stochastic_rounding_seed: Optional[int] = None, tensor: int = 0, p_copy: Optional[Array] = None,
                    **hypers: Any) -> None:
    """One step of the reference rule ``update`` (from :mod:`fastopt.reference.optim`) on arrays of
    any supported dtypes, computed in float32 (float64 arrays stay float64).

    ``states`` are the positional state arrays; keyword arrays in ``hypers``
    (``max_v``, ``momentum_buf``, ``grad_avg``) are state too. Per-tensor
    states (0-d arrays) keep their dtype. ``step`` is passed
    to ``update`` when it takes one, and numbers the random bits of stochastic
    rounding (0 when not given).
    """
    opmath = np.float64 if p.dtype == np.float64 else np.float32

    def widened(a: Optional[Array]) -> Optional[Array]:
        # Per-tensor states (0-d arrays: NAdam's mu_product) keep their own dtype, as in the kernels;
        # None is a state the parameter does not keep (Adafactor's factored ones).
        return a if a is None or a.ndim == 0 else a.astype(opmath)

    p32 = p.astype(opmath)
    states32 = [widened(s) for s in states]
    kw32: dict[str, Any] = {k: (widened(v) if isinstance(v, np.ndarray) else v) for k, v in hypers.items()}
    if "step" in inspect.signature(update).parameters:
        kw32["step"] = step
    update(p32, g.astype(opmath), *states32, **kw32)
    for s, s32 in zip(states, states32):
        if s is not None and s32 is not None:
            s[...] = s32.astype(s.dtype)
    for k, v in hypers.items():
        if isinstance(v, np.ndarray):
            v[...] = kw32[k].astype(v.dtype)
    if stochastic_rounding_seed is not None and p.dtype != opmath:
        bits = random_bits(p.size, seed=stochastic_rounding_seed, step=step or 0, tensor=tensor)
        p[...] = round_stochastic(p32.ravel(), p.dtype, bits).reshape(p.shape)
    else:
        p[...] = p32.astype(p.dtype)
    if p_copy is not None:
        p_copy[...] = p32.astype(p_copy.dtype)
