"""Learning-rate schedules: plain callables ``lr = schedule(t)``.

``t`` is the number of updates done so far (0 for the first step). Each
schedule equals the learning rate that the matching ``torch.optim.lr_scheduler``
gives after ``t`` calls of ``scheduler.step()``. Pass one as ``lr`` to any
:mod:`fastopt.optim` optimizer, which then sets ``lr = schedule(step_count)``
before every step.

>>> from fastopt import schedules
>>> s = schedules.linear_warmup(schedules.cosine(0.1, total_steps=1000), warmup_steps=100)
>>> [round(s(t), 4) for t in (0, 50, 100, 1000)]
[0.0, 0.0497, 0.0976, 0.0]
"""
import math
from typing import Callable

from . import _core

__all__ = ["constant", "step_decay", "cosine", "linear", "inverse_sqrt", "linear_warmup",
           "scale_lr_for_batch"]


def _nonnegative(name: str, x: float) -> float:
    value = _core.as_real(x, name)      # TypeError naming it unless a real number
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")
    return value


def _int(name: str, x: int, minimum: int, what: str = "") -> int:
    try:
        value = _core.as_int(x, name)
    except TypeError:
        raise TypeError(f"{name} must be an int{what}, got {type(x).__name__}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _positive_int(name: str, x: int) -> int:
    return _int(name, x, 1)


def _step(t: int) -> int:
    return _int("t", t, 0, " (updates done so far)")


class _Schedule:
    """A schedule: ``lr = schedule(t)``, with a repr that says which."""

    def __init__(self, fn: Callable[[int], float], text: str) -> None:
        self._fn, self._text = fn, text

    def __call__(self, t: int) -> float:
        return float(self._fn(_step(t)))

    def __repr__(self) -> str:
        return self._text


def constant(lr: float) -> Callable[[int], float]:
    """``lr`` at every step."""
    lr = _nonnegative("lr", lr)
    return _Schedule(lambda t: lr, f"constant({lr})")


def step_decay(base_lr: float, step_size: int, gamma: float = 0.1) -> Callable[[int], float]:
    """``base_lr · gamma ** (t // step_size)`` (``torch.optim.lr_scheduler.StepLR``)."""
    base_lr, gamma = _nonnegative("base_lr", base_lr), _nonnegative("gamma", gamma)
    step_size = _positive_int("step_size", step_size)
    return _Schedule(lambda t: base_lr * gamma ** (t // step_size), f"step_decay({base_lr}, {step_size}, {gamma})")


def cosine(base_lr: float, total_steps: int, min_lr: float = 0.0) -> Callable[[int], float]:
    """``min_lr + (base_lr − min_lr)·(1 + cos(π·t/total_steps))/2``
    (``CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)``, its closed form)."""
    base_lr, min_lr = _nonnegative("base_lr", base_lr), _nonnegative("min_lr", min_lr)
    total_steps = _positive_int("total_steps", total_steps)
    return _Schedule(lambda t: min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * t / total_steps)) / 2,
                     f"cosine({base_lr}, {total_steps}, {min_lr})")


def linear(base_lr: float, total_steps: int, start_factor: float = 1.0,
           end_factor: float = 0.0) -> Callable[[int], float]:
    """``base_lr`` times a factor going linearly from ``start_factor`` to ``end_factor``
    over ``total_steps``, then constant (``LinearLR``)."""
    base_lr = _nonnegative("base_lr", base_lr)
    start, end = _nonnegative("start_factor", start_factor), _nonnegative("end_factor", end_factor)
    total_steps = _positive_int("total_steps", total_steps)
    return _Schedule(lambda t: base_lr * (start + (end - start) * min(t, total_steps) / total_steps),
                     f"linear({base_lr}, {total_steps}, {start}, {end})")


def inverse_sqrt(base_lr: float, warmup_steps: int) -> Callable[[int], float]:
    """``base_lr`` for ``t < warmup_steps``, then ``base_lr·sqrt(warmup_steps / t)``
    (the Transformer decay; wrap in :func:`linear_warmup` for a ramp)."""
    base_lr = _nonnegative("base_lr", base_lr)
    warmup_steps = _positive_int("warmup_steps", warmup_steps)
    return _Schedule(lambda t: base_lr * math.sqrt(warmup_steps / max(t, warmup_steps)),
                     f"inverse_sqrt({base_lr}, {warmup_steps})")


def linear_warmup(schedule: Callable[[int], float], warmup_steps: int,
                  start_factor: float = 0.0) -> Callable[[int], float]:
    """``schedule(t)`` scaled by a factor rising linearly from ``start_factor`` to 1
    over ``warmup_steps`` (like chaining ``LinearLR(start_factor, 1, warmup_steps)``)."""
    if not callable(schedule):
        raise TypeError(f"schedule must be callable, got {type(schedule).__name__}")
    warmup_steps = _positive_int("warmup_steps", warmup_steps)
    start = _nonnegative("start_factor", start_factor)

    def fn(t: int) -> float:
        factor = start + (1 - start) * t / warmup_steps if t < warmup_steps else 1.0
        return schedule(t) * factor
    return _Schedule(fn, f"linear_warmup({schedule!r}, {warmup_steps}, {start})")


def scale_lr_for_batch(base_lr: float, base_batch_size: int, batch_size: int) -> float:
    """The linear scaling rule: ``base_lr · batch_size / base_batch_size``."""
    base_lr = _nonnegative("base_lr", base_lr)
    return base_lr * _positive_int("batch_size", batch_size) / _positive_int("base_batch_size", base_batch_size)
