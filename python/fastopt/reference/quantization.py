"""Blockwise 8-bit optimizer state in plain NumPy: the specification of
``state_dtype="int8"`` (docs/design.md, "8-bit state").

A state buffer is kept as uint8 codes and one float32 ``absmax`` per block of
256 elements; element ``i`` is ``map[code[i]] * absmax[i // 256]``. The maps
are the dynamic maps of Dettmers et al. (2022), as bitsandbytes builds them:
seven decades ``10**(d - 6)``, each with ``n_d`` evenly spaced values
``s_d * (0.1 + 0.9 * (k + 0.5) / n_d)``, plus 0 and 1. The signed map (first
moments) has ``n_d = 2**d`` values of each sign, the unsigned one (second
moments) ``2**(d + 1)``.

A step dequantizes the state, runs the rule's float32 step
(:func:`fastopt.reference.precision.step_in_float32`) and quantizes the new
state: each block's absmax is its largest finite ``|x|`` (for the signed map a
negative extreme counts divided by 0.99297, the map's most negative value, so
that both extremes are stored exactly), and each element's code is the map
value nearest to ``x / absmax``, found with the arithmetic below (the kernels
compute the same float32 operations: the tests check the codes bitwise). Inf
and NaN stay confined to their element: they do not count in the absmax,
``±inf`` is stored as the map's extreme times the absmax, NaN as 0.
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Optional

import numpy as np
import numpy.typing as npt

from .._typing import Array
from .precision import step_in_float32

BLOCK = 256
_SCALES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
_ZERO_CODE = 127  # the signed map's 0


class QuantMap(NamedTuple):
    """One map's values by code and the quantizer's constants (float32)."""
    value: npt.NDArray[np.float32]           # by code
    c1: npt.NDArray[np.float32]              # by class (0, decades 1..7, 1): value = rank * c1 + c0
    c0: npt.NDArray[np.float32]
    binade_class: npt.NDArray[np.int32]      # by binade b (a in [2**(b-31), 2**(b-30)))
    binade_boundary: npt.NDArray[np.float32]  # a >= it: the next class (NaN: none)
    invstep: npt.NDArray[np.float32]         # by class: rank = min(rint(a * invstep + offset), top_rank)
    offset: npt.NDArray[np.float32]
    top_rank: npt.NDArray[np.float32]
    signed: bool


@lru_cache(maxsize=2)
def dynamic_map(signed: bool) -> QuantMap:
    """The signed or unsigned dynamic map and its quantizer constants."""
    extra = 0 if signed else 1
    one_rank = 128 if signed else 255
    classes = 16  # 0, seven decades, 1 (repeated to 16 entries, as the kernels' vectors)
    c1 = np.zeros(classes, np.float32)
    c0 = np.ones(classes, np.float32)
    invstep = np.zeros(classes, np.float32)
    offset = np.full(classes, one_rank, np.float32)
    top_rank = np.full(classes, one_rank, np.float32)
    c0[0] = offset[0] = top_rank[0] = 0
    first = 1
    for d, s in enumerate(_SCALES):
        n, c = 1 << (d + extra), d + 1
        step = 0.9 * s / n
        c1[c] = step
        c0[c] = s * (0.1 + 0.45 / n) - first * step
        invstep[c] = n / (0.9 * s)
        offset[c] = first - (0.1 * n + 0.45) / 0.9
        top_rank[c] = first + n - 1
        first += n
    # Positive values by rank: r * c1 + c0 in float32, the class from log2(r) (signed) or log2(r + 1) - 1.
    ranks = np.arange(1, one_rank)
    cls = np.floor(np.log2(ranks if signed else ranks + 1)).astype(np.int64) + (1 if signed else 0)
    positive = np.zeros(one_rank + 1, np.float32)
    positive[1:one_rank] = ranks.astype(np.float32) * c1[cls] + c0[cls]
    positive[one_rank] = 1
    # Class boundaries: midpoints between 0 and the smallest value, between decades, and before 1.
    boundaries = [float(positive[1]) / 2]
    first = 1
    for d in range(7):
        first += 1 << (d + extra)
        boundaries.append((float(positive[first - 1]) + float(positive[first])) / 2)
    bounds32 = np.array(boundaries, np.float64).astype(np.float32)
    binade_class = np.zeros(32, np.int32)
    binade_boundary = np.full(32, np.nan, np.float32)
    for b in range(32):
        bottom, top = (0.0 if b == 0 else 2.0 ** (b - 31)), 2.0 ** (b - 30)
        binade_class[b] = int(np.sum(bounds32.astype(np.float64) <= bottom))
        inside = [f for f in bounds32 if bottom < f < top]
        assert len(inside) <= 1
        if inside:
            binade_boundary[b] = inside[0]
    if signed:
        value = np.zeros(256, np.float32)
        value[_ZERO_CODE + 1:] = positive[1:]
        value[:_ZERO_CODE] = -positive[1:one_rank][::-1]
    else:
        value = positive
    return QuantMap(value, c1, c0, binade_class, binade_boundary, invstep, offset, top_rank, signed)


def _blocks(x: Array) -> tuple[Array, int]:
    """x flattened and padded with zeros to whole blocks, as rows; and its size."""
    flat = np.ascontiguousarray(x, np.float32).ravel()
    n = flat.size
    padded = np.zeros(-(-n // BLOCK) * BLOCK, np.float32)
    padded[:n] = flat
    return padded.reshape(-1, BLOCK), n


def _ranks(a: Array, m: QuantMap) -> Array:
    """The rank of each a >= 0 (float32): its class from its binade, then the class's linear rule."""
    a = np.where(a > 0, a, np.float32(0))  # NaN: 0
    a = np.where(a < 1, a, np.float32(1))  # Inf: 1
    b = np.maximum((a.view(np.uint32) >> np.uint32(23)).astype(np.int32) - 96, 0)
    with np.errstate(invalid="ignore"):  # a >= NaN (no boundary in the binade) is False
        c = m.binade_class[b] + (a >= m.binade_boundary[b])
    r = np.rint(a * m.invstep[c] + m.offset[c])
    return np.where(r < m.top_rank[c], r, m.top_rank[c])


def quantize_blockwise(x: Array, signed: bool) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """The codes (x's shape, uint8) and per-block absmax (float32) of a float32 array."""
    m = dynamic_map(signed)
    blocks, n = _blocks(x)
    mag = np.abs(blocks)
    finite = np.where(np.isfinite(mag), mag, np.float32(0))
    if signed:  # a negative extreme is stored exactly: -0.99297 is the map's most negative value
        negative = np.signbit(blocks)
        largest = np.where(negative, np.float32(0), finite).max(axis=1)
        stretched = np.where(negative, finite, np.float32(0)).max(axis=1) / -m.value[0]
        absmax = np.minimum(np.maximum(largest, stretched), np.finfo(np.float32).max)
    else:
        absmax = finite.max(axis=1)
    # 1 / absmax stays finite for a subnormal absmax: scale up by 2**64 first (exact).
    pre = np.where(absmax < np.float32(2.0**-64), np.float32(2.0**64), np.float32(1))[:, None]
    with np.errstate(divide="ignore"):
        inv = np.where(absmax[:, None] > 0, np.float32(1) / (absmax[:, None] * pre), np.float32(0))
    with np.errstate(invalid="ignore", over="ignore"):
        r = _ranks((mag * pre) * inv, m)
    if signed:
        r = np.where(blocks < 0, _ZERO_CODE - np.minimum(r, np.float32(127)), _ZERO_CODE + r)
    codes = r.astype(np.uint8).ravel()[:n].reshape(np.shape(x))
    return codes, absmax.astype(np.float32)


def dequantize_blockwise(codes: Array, absmax: Array, signed: bool) -> npt.NDArray[np.float32]:
    """The float32 values of codes: ``map[code] * absmax`` of its block."""
    flat = np.asarray(codes, np.uint8).ravel()
    scale = np.repeat(np.asarray(absmax, np.float32), BLOCK)[:flat.size]
    out: npt.NDArray[np.float32] = (dynamic_map(signed).value[flat] * scale).reshape(np.shape(codes))
    return out


@dataclass
class QuantizedState:
    """One 8-bit state buffer: its codes, absmax and map, updated in place by :func:`step_8bit`."""
    codes: npt.NDArray[np.uint8]
    absmax: npt.NDArray[np.float32]
    signed: bool

    def dequantize(self) -> npt.NDArray[np.float32]:
        return dequantize_blockwise(self.codes, self.absmax, self.signed)

    def store(self, x: Array) -> None:
        self.codes[...], self.absmax[...] = quantize_blockwise(x, self.signed)


def step_8bit(update: Callable[..., None], p: Array, g: Array, *states: Optional[Any],
              step: Optional[int] = None, stochastic_rounding_seed: Optional[int] = None, tensor: int = 0,
              p_copy: Optional[Array] = None, **hypers: Any) -> None:
    """One step of the reference rule ``update`` with 8-bit state: each
    :class:`QuantizedState` among ``states`` and the keyword arguments is
    dequantized, the float32 step runs (:func:`~fastopt.reference.precision.step_in_float32`),
    and the new state is quantized."""
    def wide(s: Any) -> Any:
        return s.dequantize() if isinstance(s, QuantizedState) else s

    floats = [wide(s) for s in states]
    kw = {k: wide(v) for k, v in hypers.items()}
    step_in_float32(update, p, g, *floats, step=step, stochastic_rounding_seed=stochastic_rounding_seed,
                    tensor=tensor, p_copy=p_copy, **kw)
    for s, f in zip(states, floats):
        if isinstance(s, QuantizedState):
            s.store(f)
    for k, v in hypers.items():
        if isinstance(v, QuantizedState):
            v.store(kw[k])
