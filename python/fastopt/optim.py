"""Stateful multi-tensor optimizers with ``torch.optim``'s arguments and defaults.

``params`` is a list or dict of NumPy arrays, updated in place, or a list of
parameter groups as in torch: dicts ``{"params": [...], "lr": ..., ...}``
whose entries override the optimizer's defaults for their arrays (say, no
weight decay on biases). A step over all arrays of all groups is one native
call: the arrays are checked once at construction, and per step only the
gradients (unless registered with ``grads=``). Hyperparameters live in
``param_groups`` and may change between steps; ``opt.lr`` is a shortcut for
``param_groups[0]["lr"]``. A group's ``lr`` may also be a schedule from
:mod:`fastopt.schedules` (any callable ``t -> lr``): before each step the
optimizer sets that group's ``lr = schedule(t)``, ``t`` counting the group's
steps. Every optimizer takes torch's ``maximize=False`` (keyword-only):
``True`` steps on ``-g``.

Mixed precision (docs/design.md): parameters may be float32, float64, float16
or bfloat16 (``ml_dtypes.bfloat16``), each array its own dtype. For float16 /
bfloat16 parameters the state is float32 (``state_dtype="float32"``, the
default) or the parameter's dtype (``state_dtype="param"``), the gradients
are in the parameter's dtype or float32, and the arithmetic is float32; the
result is rounded to nearest even, or stochastically with
``stochastic_rounding=True`` (random bits hashed from ``seed``, the step and
the element, so results do not depend on the thread count). Master-weight
mode: float32 parameters, float16/bfloat16 gradients, and ``param_copies``
(float16/bfloat16 arrays, one per parameter) that receive the updated
parameters rounded to nearest, in the same pass.

Example
-------
>>> import numpy as np
>>> from fastopt.optim import Adam
>>> W = np.zeros((3073, 10), np.float32); dW = np.ones_like(W)
>>> opt = Adam([W], lr=1e-3)
>>> opt.step([dW])
True
"""
import contextlib
import numbers
import os
import re
import threading
import weakref
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

from . import _core
from ._options import (LOW_PRECISION_KINDS, MIN_8BIT_SIZE, int8_options, precision_options, tuple_of,
                       warn_if_nothing_to_round)
from ._typing import Array

#: ``params``: a list, tuple or dict of arrays, or a list of parameter groups
#: (dicts with a ``"params"`` entry of that kind).
Params = Union[Sequence[Array], dict[Any, Array], Sequence[dict[str, Any]]]
#: ``grads`` / ``param_copies``: arrays in the structure of the parameters (None for no copy).
Arrays = Union[Sequence[Optional[Array]], dict[Any, Optional[Array]]]
#: A learning rate, or a schedule ``t -> lr`` (:mod:`fastopt.schedules`).
LearningRate = Union[float, Callable[[int], float]]
# A checked group ready to install: (group dict, arrays, keys, schedule, copies).
_Pending = tuple[dict[str, Any], tuple[Array, ...], Optional[list[Any]], Optional[Callable[[int], float]],
                 tuple[Optional[Array], ...]]

# (and a class per rule, generated below)
__all__ = ["Optimizer", "NativeLoop", "state_shape"]

# The native registry of update rules: name -> {"hypers": [...], "states": [...], ...}.
RULES = {rule["name"]: rule for rule in _core.rules()}
# Each rule's state shapes: name -> "elementwise" (the parameter's shape) or "tensor" (one number).
_SHAPES = {rule: {s["name"]: s["shape"] for s in spec["states"]} for rule, spec in RULES.items()}

def state_shape(kind: str, shape: tuple[int, ...]) -> Optional[tuple[int, ...]]:
    """The shape of a state buffer of kind ``kind`` (the registry's ``shape``) of a parameter of
    shape ``shape``; None when such a parameter keeps no buffer of this kind."""
    if kind == "tensor":
        return ()
    if kind in ("row", "col"):
        if len(shape) < 2:
            return None
        return shape[:-1] + (1,) if kind == "row" else shape[:-2] + (1,) + shape[-1:]
    if kind == "unfactored" and len(shape) >= 2:
        return None
    return tuple(shape)


def quant_blocks(size: int) -> int:
    """The number of absmax scales of an 8-bit state buffer of ``size`` elements."""
    return -(-size // _core.quant_block_elements)


def _constant_8bit(value: float, shape: tuple[int, ...], signed: bool) -> tuple[Array, Array]:
    """8-bit state with every element ``value`` (codes, absmax), without the float buffer: one
    block's codes and absmax repeated (every block of a constant is quantized alike)."""
    size = int(np.prod(shape, dtype=np.int64))
    block = np.full(min(size, _core.quant_block_elements) or 1, value, np.float32)
    code, absmax = _core.quantize_blockwise(block, signed)
    return np.full(shape, code[0], np.uint8), np.full(quant_blocks(size), absmax[0], np.float32)


def _as_tuple(params: Any, name: str) -> tuple[tuple[Any, ...], Optional[list[Any]]]:
    """The arrays of a list, tuple or dict, as a tuple, and the dict's keys (or None)."""
    if isinstance(params, dict):
        return tuple(params.values()), list(params.keys())
    if isinstance(params, np.ndarray):
        raise TypeError(f"{name} must be a list or dict of arrays, not a single array; wrap it: [{name}]")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"{name} must be a list or dict of numpy arrays, got {type(params).__name__}")
    return tuple(params), None


def _step_count(value: Any, where: str) -> int:
    """A saved step count: an int >= 0 (Python or NumPy integer, or a 0-d integer array)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where} must be an int, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < 2**63 - 1:
        raise ValueError(f"{where} must be in [0, 2**63 - 1), got {value}")
    return int(value)


# Live optimizers, for the at-fork handler: a child forked while another thread
# was inside a step inherits the held lock and the native claim, which no
# thread of the child would ever release.
_LIVE: "weakref.WeakSet[Optimizer]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for opt in list(_LIVE):
        opt._lock = threading.RLock()
        if hasattr(opt, "_group"):
            opt._group.release_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_group_list(params: Any) -> bool:
    return isinstance(params, (list, tuple)) and len(params) > 0 and all(isinstance(g, dict) for g in params)


class Optimizer:
    """Base class: parameter groups, arrays, state, ``state_dict`` / ``load_state_dict``.

    A subclass names its rule of the native registry (``_rule``) and maps its
    torch-style hyperparameters to the rule's (``_rule_hypers``; the default
    passes them through, Adam's splits ``betas``). Which state buffers exist,
    their names, initial values, validation and the step itself all come from
    the registry.

    Other Parameters
    ----------------
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    grads : list or dict of numpy.ndarray, optional
        Gradient buffers (same structure as the parameters, flattened over the
        groups) read on every :meth:`step` call without arguments.
    state_dtype : {"float32", "param", "int8"} or numpy.float32, default "float32"
        State of float16/bfloat16 parameters: float32, or the parameter's dtype.
        float32 and float64 parameters keep state of their own dtype. "int8":
        8-bit moments for float32, float16 and bfloat16 parameters of at least
        ``min_8bit_size`` elements — uint8 codes of a dynamic quantization map
        and a float32 ``<name>_absmax`` per block of 256 elements
        (``docs/design.md``, "8-bit state"); other parameters keep float32
        (float64: float64) state.
    min_8bit_size : int, default 4096
        With ``state_dtype="int8"``: parameters with fewer elements keep float32 state.
    stochastic_rounding : bool, default False
        Round updated float16/bfloat16 parameters stochastically (unbiased)
        instead of to nearest even (a UserWarning when no parameter is 16-bit).
    seed : int, default 0
        Seed of the stochastic rounding's random bits, in [0, 2**64).
    param_copies : list or dict of numpy.ndarray, optional
        Master-weight mode: one float16/bfloat16 array (or None) per float32
        parameter, flattened over the groups; each step writes the updated
        parameter into it, rounded to nearest.
    """

    _rule: str = ""
    # torch's pairs of hyperparameters: {"betas": ("beta1", "beta2")}
    _tuples: dict[str, tuple[str, ...]] = {}

    def __init__(self, params: Params, defaults: dict[str, Any], *, grads: Optional[Arrays] = None,
                 state_dtype: Union[str, np.dtype[Any], type] = "float32", stochastic_rounding: bool = False,
                 seed: int = 0, param_copies: Optional[Arrays] = None,
                 min_8bit_size: int = MIN_8BIT_SIZE) -> None:
        # Serializes step / train_linear / state_dict / load_state_dict: an
        # optimizer used from two threads at once runs their calls one at a time
        # (re-entrant, so a signal handler inside a long run gets a clear
        # RuntimeError from the native side instead of a deadlock).
        self._lock = threading.RLock()
        self._state_dtype, self.stochastic_rounding, self.seed = precision_options(
            state_dtype, stochastic_rounding, seed)
        self.min_8bit_size = int8_options(RULES[self._rule], self._state_dtype, min_8bit_size, type(self).__name__)
        self.defaults = dict(defaults)
        self._check_hyperparameters(self._resolved(self.defaults))
        self.param_groups: list[dict[str, Any]] = []
        self._schedules: list[Optional[Callable[[int], float]]] = []  # per group: the lr schedule, or None
        # Per group: steps taken since the group was added. Counted by the native
        # step itself (an int64 array it increments before returning), so that an
        # interrupt cannot separate an update from its count.
        self._counts = np.zeros(0, np.int64)
        self._step = 0
        self.params: tuple[Array, ...] = ()
        self._keys: Optional[list[Any]] = None
        # Every state buffer by name, and with 8-bit state each one's absmax beside it ("exp_avg_absmax").
        self._state: dict[str, tuple[Optional[Array], ...]] = {}
        for s in RULES[self._rule]["states"]:
            self._state[s["name"]] = ()
            if self._state_dtype == "int8" and s["map8"] is not None:
                self._state[s["name"] + "_absmax"] = ()
        self._copies: tuple[Optional[Array], ...] = ()
        self._grads = grads
        groups = list(params) if _is_group_list(params) else [{"params": params}]
        copies = self._split_copies(param_copies, groups)
        pending = self._pending_groups(groups, copies)
        if grads is not None:
            _, grad_keys = _as_tuple(grads, "grads")
            if (grad_keys is None) != (self._keys_of(pending) is None):
                raise TypeError("grads must have the same structure (list or dict) as params")
        self._install(pending)
        _LIVE.add(self)
        warn_if_nothing_to_round(self.stochastic_rounding, self._dtype_names(), type(self).__name__)

    def _dtype_names(self) -> list[str]:
        return [str(a.dtype) for a in self.params]

    # --- groups ---------------------------------------------------------------------------------
    def _split_copies(self, param_copies: Optional[Arrays],
                      groups: Sequence[Any]) -> list[tuple[Optional[Array], ...]]:
        """``param_copies`` (flattened over the groups) cut into one tuple per group, or Nones."""
        sizes: list[int] = []
        keys: list[Any] = []
        for i, g in enumerate(groups):
            if not isinstance(g, dict) or "params" not in g:
                raise ValueError(f"param group {i} has no 'params'")
            arrays, names = _as_tuple(g["params"], f"param_groups[{i}]['params']")
            sizes.append(len(arrays))
            keys.extend(names or [])
        if param_copies is None:
            return [(None,) * n for n in sizes]
        copies, copy_keys = _as_tuple(param_copies, "param_copies")
        if copy_keys is not None:  # named parameters: the copies by the same names, in the parameters' order
            if set(copy_keys) != set(keys) or len(copy_keys) != len(keys):
                raise ValueError("param_copies must have the same keys as params")
            copies = tuple(param_copies[k] for k in keys)
        elif keys:
            raise TypeError("param_copies must be a dict with the same keys as params, not a list")
        if len(copies) != sum(sizes):
            raise ValueError(f"param_copies has {len(copies)} entries but params has {sum(sizes)} arrays")
        out: list[tuple[Optional[Array], ...]] = []
        start = 0
        for n in sizes:
            out.append(tuple(copies[start:start + n]))
            start += n
        return out

    def _resolved(self, group: dict[str, Any]) -> dict[str, Any]:
        """A group's hyperparameters with a schedule replaced by its first value."""
        lr = group.get("lr")
        return dict(group, lr=lr(0)) if callable(lr) else group

    def _pending_groups(self, groups: Sequence[Any], copies: list[tuple[Optional[Array], ...]]) -> list[_Pending]:
        """Checked groups ready to install: (group dict, arrays, keys, schedule, copies)."""
        pending: list[_Pending] = []
        known = set(self.defaults)
        seen = {id(p) for p in self.params}  # arrays of the groups before
        for i, (given, group_copies) in enumerate(zip(groups, copies), start=len(self.param_groups)):
            if not isinstance(given, dict):
                raise TypeError(f"param group {i} must be a dict, got {type(given).__name__}")
            if "params" not in given:
                raise ValueError(f"param group {i} has no 'params'")
            unknown = set(given) - known - {"params"}
            if unknown:
                raise ValueError(f"param group {i} has unknown keys {sorted(unknown)}; "
                                 f"{type(self).__name__} takes {sorted(known)}")
            arrays, keys = _as_tuple(given["params"], f"param_groups[{i}]['params']")
            if not arrays:
                raise ValueError("params is an empty list: nothing to optimize" if len(groups) == 1
                                 else f"param group {i} has no parameters")
            # The same array twice within a group is the native check's ("share memory").
            for j, p in enumerate(arrays):
                if id(p) in seen:
                    raise ValueError(f"param_groups[{i}]['params'][{j}] is also in another parameter group")
            seen.update(id(p) for p in arrays)
            group = dict(self.defaults)
            group.update({k: v for k, v in given.items() if k != "params"})
            schedule = group["lr"] if callable(group["lr"]) else None
            if schedule is not None:
                group["lr"] = schedule(0)
            self._check_hyperparameters(group)
            try:
                _core.TensorGroup.check_params(arrays, keys)
            except (TypeError, ValueError) as e:
                if keys is not None or (len(groups) == 1 and not self.param_groups):
                    raise
                # params[j] of the group: name it in torch's terms, with its group
                raise type(e)(re.sub(r"\bparams\[(\d+)\]", rf"param_groups[{i}]['params'][\1]", str(e))) from None
            group["params"] = arrays
            pending.append((group, arrays, keys, schedule, group_copies))
        return pending

    @staticmethod
    def _keys_of(pending: list[_Pending]) -> Optional[list[Any]]:
        keys = [k for (_, _, k, _, _) in pending]
        if all(k is None for k in keys):
            return None
        if any(k is None for k in keys):
            raise TypeError("params: either every group names its arrays (a dict) or none does")
        return [k for ks in keys if ks is not None for k in ks]  # uniqueness across all groups: _install

    def _new_state(self, group: dict[str, Any], arrays: tuple[Array, ...]) -> dict[str, tuple[Optional[Array], ...]]:
        """The state buffers a group's hyperparameters need, per name: one array per parameter
        (with 8-bit state, its codes under the name and their absmax under ``<name>_absmax``)."""
        hypers = self._rule_hypers(group)
        specs = {s["name"]: s for s in RULES[self._rule]["states"]}
        needed = _core.needed_states(self._rule, hypers)
        state: dict[str, tuple[Optional[Array], ...]] = {}
        for name in specs:
            eight_bit = name + "_absmax" in self._state
            if name not in needed:
                state[name] = (None,) * len(arrays)
                if eight_bit:
                    state[name + "_absmax"] = (None,) * len(arrays)
                continue
            spec = specs[name]
            start = spec["start"] if spec["initial"] is None else float(hypers[spec["initial"]])
            buffers: list[Optional[Array]] = []
            scales: list[Optional[Array]] = []
            for p in arrays:
                shape = self._state_shape(name, p)
                if shape is not None and eight_bit and self._stores_8bit(p):
                    codes, absmax = _constant_8bit(start, shape, spec["map8"] == "signed")
                    buffers.append(codes)
                    scales.append(absmax)
                else:
                    buffers.append(None if shape is None else
                                   np.full(shape, start, dtype=self._state_dtype_for(p, name)))
                    scales.append(None)
            state[name] = tuple(buffers)
            if eight_bit:
                state[name + "_absmax"] = tuple(scales)
        return state

    def _stores_8bit(self, p: Array) -> bool:
        """Whether ``p`` keeps 8-bit state: state_dtype="int8", a float32/float16/bfloat16 parameter
        of at least ``min_8bit_size`` elements."""
        return (self._state_dtype == "int8" and p.size >= self.min_8bit_size
                and p.dtype.name in ("float32", *LOW_PRECISION_KINDS))

    def _state_shape(self, name: str, p: Array) -> Optional[tuple[int, ...]]:
        """The shape of state buffer ``name`` of parameter ``p`` (None: ``p`` keeps no such buffer)."""
        return state_shape(_SHAPES[self._rule][name], p.shape)

    def _state_dtype_for(self, p: Array, name: str = "") -> npt.DTypeLike:
        if name and _SHAPES[self._rule][name] == "tensor":  # a per-tensor number: float64 only for float64 p
            return np.float64 if p.dtype == np.float64 else np.float32
        if p.dtype.name in LOW_PRECISION_KINDS and self._state_dtype in ("float32", "int8"):
            return np.float32  # int8: the state of a tensor that keeps float state (below min_8bit_size)
        return p.dtype

    def _install(self, pending: list[_Pending]) -> None:
        """Adds checked groups: allocates their state and rebuilds the native group over every array."""
        new_keys = self._keys_of(pending)
        if self.params and (self._keys is None) != (new_keys is None):
            raise TypeError("params: either every group names its arrays (a dict) or none does")
        all_keys = None if new_keys is None else list(self._keys or []) + new_keys
        if all_keys is not None and len(set(all_keys)) != len(all_keys):
            raise ValueError("params: a key names parameters in two groups")
        params = list(self.params)
        lists = {name: list(arrays) for name, arrays in self._state.items()}
        copies = list(self._copies)
        group_of = [i for i, g in enumerate(self.param_groups) for _ in g["params"]]
        for j, (group, arrays, _, _, group_copies) in enumerate(pending):
            new = self._new_state(group, arrays)
            for name in lists:
                lists[name].extend(new[name])
            params.extend(arrays)
            copies.extend(group_copies)
            group_of.extend([len(self.param_groups) + j] * len(arrays))
        # Tuples: the native group holds these very arrays, so entries cannot be replaced.
        state = {name: tuple(arrays) for name, arrays in lists.items()}
        native_states = {name: arrays for name, arrays in state.items() if any(a is not None for a in arrays)}
        has_copies = any(c is not None for c in copies)
        native = _core.TensorGroup(self._rule, tuple(params), native_states, self._grads, all_keys, group_of,
                                   tuple(copies) if has_copies else None)
        # Everything checked: commit.
        self._group = native
        self.params, self._keys, self._state, self._copies = tuple(params), all_keys, state, tuple(copies)
        counts = np.concatenate([self._counts, np.zeros(len(pending), np.int64)])
        for group, _, _, schedule, _ in pending:
            self.param_groups.append(group)
            self._schedules.append(schedule)
        self._counts = counts

    @property
    def state(self) -> dict[str, tuple[Optional[Array], ...]]:
        """The state buffers by torch's names: ``{name: (array or None per parameter)}``.

        Only buffers some group keeps are listed; None marks the parameters
        whose group does not keep that buffer (SGD without momentum, say).
        """
        return {name: arrays for name, arrays in self._state.items() if any(a is not None for a in arrays)}

    def add_param_group(self, param_group: dict[str, Any], *, param_copies: Optional[Arrays] = None) -> None:
        """Add a group of parameters, as ``torch.optim.Optimizer.add_param_group``.

        Parameters
        ----------
        param_group : dict
            ``{"params": [...], <hyperparameter>: value, ...}``; missing
            hyperparameters take the optimizer's defaults. Its step count starts
            at 0 (bias corrections restart for it, as in torch).
        param_copies : list of numpy.ndarray, optional
            Master-weight copies of the group's parameters (see the class).
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if self._grads is not None:
            raise ValueError("add_param_group is not available when gradient buffers were registered with "
                             "grads=; pass the gradients to step() instead")
        with self._lock:
            copies = self._split_copies(param_copies, [param_group])
            self._install(self._pending_groups([param_group], copies))

    # --- hyperparameters ------------------------------------------------------------------------
    def _rule_hypers(self, h: dict[str, Any]) -> dict[str, Any]:
        """The registry's hyperparameters from a param group ``h`` (torch's names; a tuple such as
        ``betas`` becomes its hyperparameters)."""
        hypers = {k: v for k, v in h.items() if k != "params" and k not in self._tuples}
        for key, names in self._tuples.items():
            hypers.update(zip(names, tuple_of(h[key], len(names), f"{key} ({', '.join(names)})")))
        return hypers

    def _check_hyperparameters(self, h: dict[str, Any]) -> None:
        """TypeError / ValueError naming the first invalid hyperparameter of group ``h``."""
        _core.check_hyperparameters(self._rule, self._rule_hypers(h))

    @contextlib.contextmanager
    def _scheduled_lrs(self) -> Iterator[None]:
        """Sets each scheduled group's lr for the coming step; puts the previous
        values back if the step raises before it is counted (a refused step, or
        a schedule's value the checks refuse, changes nothing)."""
        before = [(group, group["lr"]) for group, schedule in zip(self.param_groups, self._schedules)
                  if schedule is not None]
        counts = self._counts.copy()
        try:
            for group, schedule, t in zip(self.param_groups, self._schedules, self._counts.tolist()):
                if schedule is not None:
                    group["lr"] = schedule(t)
            yield
        except BaseException:
            if np.array_equal(counts, self._counts):  # not counted: not applied
                for group, lr in before:
                    group["lr"] = lr
            raise

    def _native_settings(self) -> dict[str, Any]:
        """The rule and its hyperparameters, for loops that step in native code (one group)."""
        if len(self.param_groups) != 1:
            raise ValueError("native training loops take an optimizer with one parameter group")
        return {"rule": self._rule, "hypers": self._rule_hypers(self.param_groups[0])}

    @contextlib.contextmanager
    def native_loop(self) -> Iterator["NativeLoop"]:
        """Hold the optimizer for a loop that steps it outside :meth:`step` (one parameter group).

        The protocol of :func:`fastopt.training.train_linear` (native), its Python restatement in
        :mod:`fastopt.reference.training` and custom loops: inside the ``with`` block no other call
        steps the optimizer; ``loop.group`` is the native group, ``loop.settings`` the rule and its
        hyperparameters, ``loop.planned_lrs(n)`` the learning rates of the next ``n`` steps as
        :meth:`step` would set them, and ``loop.record(n, lrs)`` accounts for ``n`` steps taken.
        """
        with self._lock:
            yield NativeLoop(self)

    @property
    def param_copies(self) -> tuple[Optional[Array], ...]:
        """The low-precision copy of each parameter (master-weight mode), or None, flattened over the groups."""
        return self._copies

    @property
    def schedule(self) -> Optional[Callable[[int], float]]:
        """The lr schedule of the first group, or None."""
        return self._schedules[0]

    @property
    def lr(self) -> float:
        """Learning rate of the next step (``param_groups[0]["lr"]``)."""
        return float(self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self._check_hyperparameters(dict(self.param_groups[0], lr=value))
        self.param_groups[0]["lr"] = value

    @property
    def step_count(self) -> int:
        """Number of steps taken so far (by the first parameter group)."""
        return self._group_steps[0]

    @property
    def _group_steps(self) -> list[int]:
        return [int(t) for t in self._counts]

    @_group_steps.setter
    def _group_steps(self, steps: Sequence[int]) -> None:
        self._counts = np.array(steps, dtype=np.int64).reshape(len(self.param_groups))

    @property
    def _step(self) -> int:
        return self._group_steps[0] if self._group_steps else 0

    @_step.setter
    def _step(self, value: int) -> None:
        if self._group_steps:
            delta = value - self._group_steps[0]
            self._group_steps = [s + delta for s in self._group_steps]

    def step(self, grads: Optional[Arrays] = None, *, skip_if_nonfinite: bool = False) -> bool:
        """Update every parameter of every group in place with one native call.

        Parameters
        ----------
        grads : list or dict of numpy.ndarray, optional
            Gradients, same structure, shapes and dtype as ``params``. Optional
            when gradient buffers were registered with ``grads=``.
        skip_if_nonfinite : bool, default False
            If any gradient holds NaN or Inf, change nothing and return False.

        Returns
        -------
        bool
            True if the step was applied.
        """
        with self._lock, self._scheduled_lrs():
            seeds = [self.seed] * len(self.param_groups) if self.stochastic_rounding else None
            applied: bool = self._group.step([self._rule_hypers(g) for g in self.param_groups], None, grads,
                                             skip_if_nonfinite, seeds, counts=self._counts)
            return applied

    def offload_step(self, grads: Optional[Arrays] = None, *, grad_scale: float = 1.0,
                     max_norm: Optional[float] = None) -> tuple[bool, float]:
        """The fused optimizer phase of mixed-precision training with a loss scale.

        One read pass over the gradients computes their global L2 norm (of
        ``g * grad_scale``); if it is Inf or NaN, nothing changes (the step a
        loss scaler skips). Otherwise the update pass multiplies every gradient
        by ``grad_scale`` and, with ``max_norm``, by ``min(1, max_norm / (norm +
        1e-6))`` — ``torch.nn.utils.clip_grad_norm_``'s coefficient — as it reads
        it, applies the rule, and writes the 16-bit parameter copies
        (``param_copies``): two passes over the gradients instead of the five of
        unscale, norm, clip, step and copy.

        Parameters
        ----------
        grads : list or dict of numpy.ndarray, optional
            As :meth:`step`.
        grad_scale : float, default 1
            Multiplier of the gradients (``1 / loss_scale``), finite and > 0.
        max_norm : float, optional
            Clip the gradients' global norm to this, as torch does.

        Returns
        -------
        (bool, float)
            Whether the step was applied, and the global norm of the unscaled,
            unclipped gradients.
        """
        with self._lock, self._scheduled_lrs():
            seeds = [self.seed] * len(self.param_groups) if self.stochastic_rounding else None
            applied, norm = self._group.offload_step([self._rule_hypers(g) for g in self.param_groups], None,
                                                     grads, seeds, grad_scale, max_norm, counts=self._counts)
            return applied, norm

    def _planned_lrs(self, updates: int) -> Union[float, list[float]]:
        """The lr of the next ``updates`` steps as :meth:`step` would set it: the
        group's lr (one value for all), or the schedule's values as a list."""
        if self.schedule is None:
            return float(self.param_groups[0]["lr"])
        return [self.schedule(t) for t in range(self._step, self._step + updates)]

    def _record_native_steps(self, updates: int, lrs: Union[float, Sequence[float]]) -> None:
        """Account for ``updates`` steps taken in native code with learning rates ``lrs``."""
        self._step += updates
        if self.schedule is not None and updates:
            assert not isinstance(lrs, (int, float))
            self.param_groups[0]["lr"] = lrs[updates - 1]

    def zero_grad(self) -> None:
        """Fill the registered gradient buffers with zeros."""
        if self._grads is None:
            return
        for g in (self._grads.values() if isinstance(self._grads, dict) else self._grads):
            if g is not None:
                g.fill(0)

    # --- state_dict -----------------------------------------------------------------------------
    def _group_ranges(self) -> list[range]:
        """The flat parameter indices of each group."""
        out: list[range] = []
        start = 0
        for g in self.param_groups:
            out.append(range(start, start + len(g["params"])))
            start += len(g["params"])
        return out

    def _map8(self, name: str) -> bool:
        """Whether state ``name`` is stored with the signed map (else the unsigned one) in 8 bits."""
        return bool(next(s["map8"] for s in RULES[self._rule]["states"] if s["name"] == name) == "signed")

    def state_dict(self, *, dequantized: bool = False) -> dict[str, Any]:
        """A copy of the optimizer's state, in ``torch.optim``'s layout.

        ``{"state": {i: {"step": int, <buffer name>: ndarray, ...}}, "param_groups": [{...,
        "params": [i, ...]}, ...]}``, parameters numbered across the groups in
        order. Arrays are copies; :meth:`load_state_dict` restores them bitwise.
        8-bit state is saved as its codes and ``<name>_absmax``; with
        ``dequantized=True`` as float32 arrays instead (the state of a float32
        optimizer, or of ``torch.optim``'s).
        """
        with self._lock:
            state: dict[int, dict[str, Any]] = {}
            groups = []
            for g, indices, t in zip(self.param_groups, self._group_ranges(), self._group_steps):
                for i in indices:
                    entry: dict[str, Any] = {"step": t}
                    for name, arrays in self._state.items():
                        array = arrays[i]
                        if array is None or (dequantized and name.endswith("_absmax")):
                            continue
                        if dequantized and array.dtype == np.uint8:
                            absmax = self._state[name + "_absmax"][i]
                            assert absmax is not None  # codes always have their absmax
                            entry[name] = _core.dequantize_blockwise(array, absmax, self._map8(name))
                        else:
                            entry[name] = array.copy()
                    state[i] = entry
                group = {k: v for k, v in g.items() if k != "params"}
                group["params"] = list(indices)
                groups.append(group)
            return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`.

        The groups must hold the same numbers of parameters. Everything is
        checked before anything changes, with the constructor's checks for the
        hyperparameters: a TypeError or ValueError naming the entry leaves the
        optimizer as it was. Float state loads into 8-bit state quantized, and
        8-bit state (codes with their ``<name>_absmax``) into float state
        dequantized.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise ValueError("state_dict must have a list of dicts in 'param_groups'")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(groups)} param_groups; this optimizer has "
                             f"{len(self.param_groups)}")
        state = state_dict.get("state")
        if not isinstance(state, dict):
            raise ValueError("state_dict has no 'state' dict")
        new_groups, new_steps, saved = [], [], {}
        for gi, (given, mine, indices) in enumerate(zip(groups, self.param_groups, self._group_ranges())):
            group = dict(given)
            if list(group.pop("params", [])) != list(indices):
                raise ValueError(f"state_dict param_groups[{gi}] is for different parameters "
                                 f"(this optimizer's are {list(indices)})")
            if set(group) != set(mine) - {"params"}:
                raise ValueError(f"state_dict param_groups[{gi}] keys {sorted(group)} do not match "
                                 f"{sorted(set(mine) - {'params'})}")
            self._check_hyperparameters(group)
            for name in _core.needed_states(self._rule, self._rule_hypers(group)):
                if any(self._state[name][i] is None and self._state_shape(name, self.params[i]) is not None
                       for i in indices):
                    raise ValueError(f"state_dict param_groups[{gi}] sets hyperparameters that need the {name!r} "
                                     f"state buffer, which this optimizer's group {gi} does not keep; create the "
                                     f"optimizer with them set to load this state_dict")
            steps = set()
            for i in indices:
                entry = state.get(i)
                if not isinstance(entry, dict):
                    raise ValueError(f"state_dict has no state for parameter {i}")
                if "step" not in entry:
                    raise ValueError(f"state_dict state[{i}] is missing 'step'")
                steps.add(_step_count(entry["step"], f"state_dict state[{i}]['step']"))
                for name, arrays in self._state.items():
                    buffer = arrays[i]
                    if buffer is None or name.endswith("_absmax"):
                        continue  # an absmax is loaded with its codes
                    for key, value in self._loaded_buffer(entry, i, name, buffer).items():
                        saved[i, key] = value
            if len(steps) > 1:
                raise ValueError(f"state_dict holds different step counts within param_groups[{gi}]")
            new_groups.append(group)
            new_steps.append(steps.pop() if steps else 0)
        with self._lock:
            for (i, name), value in saved.items():
                target = self._state[name][i]
                assert target is not None  # checked above
                np.copyto(target, value)
            self._group_steps = new_steps
            for mine, group in zip(self.param_groups, new_groups):
                mine.update(group)

    def _loaded_buffer(self, entry: dict[str, Any], i: int, name: str, buffer: Array) -> dict[str, Array]:
        """The checked arrays ``entry`` (state[i] of a state_dict) gives for buffer ``name``, by key:
        as saved, or converted between 8-bit and float state."""
        where = f"state_dict state[{i}]"

        def array(key: str) -> Array:
            if key not in entry:
                raise ValueError(f"{where} is missing {key!r}")
            value = entry[key]
            if type(value) is not np.ndarray:
                raise TypeError(f"{where}[{key!r}] must be a numpy.ndarray, got {type(value).__name__}")
            return value

        def absmax_of(codes: Array) -> Array:
            absmax = array(name + "_absmax")
            blocks = quant_blocks(codes.size)
            if absmax.shape != (blocks,) or absmax.dtype != np.float32:
                raise ValueError(f"{where}[{name + '_absmax'!r}] has shape {absmax.shape} and dtype "
                                 f"{absmax.dtype}; expected {(blocks,)} and float32 (one absmax per block of 256)")
            if not np.all(np.isfinite(absmax) & (absmax >= 0)):
                raise ValueError(f"{where}[{name + '_absmax'!r}] must hold finite numbers >= 0")
            return absmax

        value = array(name)
        if value.shape != buffer.shape:
            raise ValueError(f"{where}[{name!r}] has shape {value.shape}; expected {buffer.shape}")
        if buffer.dtype == np.uint8:  # 8-bit state: as saved, or a float state quantized
            if value.dtype == np.uint8:
                return {name: value, name + "_absmax": absmax_of(value)}
            if value.dtype.kind != "f" and value.dtype.name != "bfloat16":
                raise ValueError(f"{where}[{name!r}] has dtype {value.dtype}; expected uint8 codes or floats")
            codes, absmax = _core.quantize_blockwise(value.astype(np.float32), self._map8(name))
            return {name: codes, name + "_absmax": absmax}
        if value.dtype == np.uint8:  # 8-bit state saved, float state here: dequantized
            if not any(s["name"] == name and s["map8"] for s in RULES[self._rule]["states"]):
                raise ValueError(f"{where}[{name!r}] has dtype uint8; expected {buffer.dtype}")
            floats = _core.dequantize_blockwise(value, absmax_of(value), self._map8(name))
            return {name: floats.astype(buffer.dtype)}
        if value.dtype != buffer.dtype:
            raise ValueError(f"{where}[{name!r}] has shape {value.shape} and dtype {value.dtype}; "
                             f"expected {buffer.shape} and {buffer.dtype}")
        return {name: value}


class NativeLoop:
    """What a loop stepping an :class:`Optimizer` natively uses (:meth:`Optimizer.native_loop`)."""

    def __init__(self, optimizer: Optimizer) -> None:
        self._optimizer = optimizer
        self.settings: dict[str, Any] = optimizer._native_settings()
        self.group: _core.TensorGroup = optimizer._group

    @property
    def first_step(self) -> int:
        """The number of the next step."""
        return self._optimizer.step_count + 1

    def planned_lrs(self, updates: int) -> Union[float, list[float]]:
        """The lr of the next ``updates`` steps: the group's (one value for all) or its schedule's."""
        return self._optimizer._planned_lrs(updates)

    def record(self, updates: int, lrs: Union[float, Sequence[float]]) -> None:
        """Account for ``updates`` steps taken with learning rates ``lrs``."""
        self._optimizer._record_native_steps(updates, lrs)


# ---- generated by tools/generate_api.py from the rule registry; do not edit by hand ----


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Update rule (``buf`` starts at zero; the functions :func:`sgd` and
    :func:`sgd_momentum` are this rule without and with momentum)::

        g = g + weight_decay * p
        if momentum > 0:
            buf = momentum * buf + (1 - dampening) * g     (buf = g at the first step)
            g = g + momentum * buf   if nesterov,  else  buf
        p -= lr * g

    With momentum this is the lecture's ``v = rho * v - lr * dx; x += v`` with
    ``v = -lr * buf`` at constant lr; with ``nesterov=True``, the lecture's change
    of variables ``v_prev = v; v = rho * v - lr * dx; x += -rho * v_prev + (1 + rho) * v``.

    State: ``momentum_buffer`` (``buf`` above, with ``momentum``).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.001
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    momentum : float, default 0.0
        Momentum factor (the lecture's rho), >= 0.
    dampening : float, default 0.0
        Dampening of the momentum (none at the first step, as torch), in [0, 1].
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0 and no dampening).
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "sgd"

    def __init__(self, params: Params, lr: LearningRate = 0.001, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize)
        super().__init__(params, defaults, **options)


class Adagrad(Optimizer):
    """AdaGrad (Duchi et al. 2011), as ``torch.optim.Adagrad``.

    Update rule (``step`` counts from 1; ``sum_sq`` starts at ``initial_accumulator_value``)::

        g = g + weight_decay * p
        sum_sq += g * g
        p -= lr / (1 + (step - 1) * lr_decay) * g / (sqrt(sum_sq) + eps)

    State: ``sum`` (``sum_sq`` above).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.01
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    lr_decay : float, default 0.0
        Decay of the learning rate with the step number, >= 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    initial_accumulator_value : float, default 0.0
        The value ``sum_sq`` starts at, >= 0.
    eps : float, default 1e-10
        Added to the denominator, > 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "adagrad"

    def __init__(self, params: Params, lr: LearningRate = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False,
                 **options: Any) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults, **options)


class RMSprop(Optimizer):
    """RMSProp (Tieleman & Hinton 2012; eps outside the square root), as ``torch.optim.RMSprop``.

    Update rule::

        g = g + weight_decay * p
        square_avg = alpha * square_avg + (1 - alpha) * g * g
        if centered:
            grad_avg = alpha * grad_avg + (1 - alpha) * g
            avg = sqrt(square_avg - grad_avg ** 2) + eps
        else:
            avg = sqrt(square_avg) + eps
        if momentum > 0:
            momentum_buf = momentum * momentum_buf + g / avg
            p -= lr * momentum_buf
        else:
            p -= lr * g / avg

    State: ``square_avg``, ``momentum_buffer`` (``momentum_buf`` above, with ``momentum``), ``grad_avg`` (with
    ``centered``).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.01
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    alpha : float, default 0.99
        Smoothing constant of the averages, in [0, 1].
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    momentum : float, default 0.0
        Momentum factor, >= 0.
    centered : bool, default False
        Normalise by an estimate of the gradient's variance.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "rmsprop"

    def __init__(self, params: Params, lr: LearningRate = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *, maximize: bool = False,
                 **options: Any) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
                        maximize=maximize)
        super().__init__(params, defaults, **options)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), as ``torch.optim.Adam``.

    Update rule (``step`` = t counts from 1)::

        p *= 1 - lr * weight_decay               if decoupled_weight_decay (AdamW)
        g = g + weight_decay * p                 otherwise
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if amsgrad:
            max_v = maximum(max_v, v);  v_hat = max_v
        else:
            v_hat = v
        p -= lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    State: ``exp_avg`` (``m`` above), ``exp_avg_sq`` (``v`` above), ``max_exp_avg_sq`` (``max_v`` above, with
    ``amsgrad``).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.001
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    betas : tuple of float, default (0.9, 0.999)
        (beta1, beta2). ``beta1``: decay rate of the first moment, in [0, 1); ``beta2``: decay rate of the second
        moment, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.0
        L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``, >= 0.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (kept in ``max_v``).
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    decoupled_weight_decay : bool, default False
        AdamW-style decay of the parameters instead of the coupled L2 term.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "adam"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: Params, lr: LearningRate = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=tuple_of(betas, 2, 'betas'), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults, **options)


class AdamW(Optimizer):
    """AdamW (Loshchilov & Hutter 2019, Adam with decoupled weight decay), as ``torch.optim.AdamW``.

    Update rule (``step`` = t counts from 1)::

        p *= 1 - lr * weight_decay
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max_v = maximum(max_v, v)  if amsgrad,  else  v
        p -= lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    State: ``exp_avg`` (``m`` above), ``exp_avg_sq`` (``v`` above), ``max_exp_avg_sq`` (``max_v`` above, with
    ``amsgrad``).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.001
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    betas : tuple of float, default (0.9, 0.999)
        (beta1, beta2). ``beta1``: decay rate of the first moment, in [0, 1); ``beta2``: decay rate of the second
        moment, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.01
        Decoupled weight decay, >= 0.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (kept in ``max_v``).
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "adamw"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: Params, lr: LearningRate = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, amsgrad: bool = False, *, maximize: bool = False,
                 **options: Any) -> None:
        defaults = dict(lr=lr, betas=tuple_of(betas, 2, 'betas'), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults, **options)


class Lion(Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    Update rule (decoupled weight decay; ``sign(0) = 0``)::

        p *= 1 - lr * weight_decay
        p -= lr * sign(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g

    Defaults are those of DeepSpeed's CPU Lion and lion-pytorch. Every element
    moves by exactly ``lr`` (or 0), so Lion wants a learning rate 3-10x smaller
    than AdamW's and a weight decay 3-10x larger.

    State: ``exp_avg`` (``m`` above).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.0001
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    betas : tuple of float, default (0.9, 0.99)
        (beta1, beta2). ``beta1``: interpolation between momentum and gradient in the update's sign, in [0, 1);
        ``beta2``: decay rate of the momentum, in [0, 1).
    weight_decay : float, default 0.0
        Decoupled weight decay, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "lion"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: Params, lr: LearningRate = 0.0001, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=tuple_of(betas, 2, 'betas'), weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, **options)


class Adamax(Optimizer):
    """Adamax (Kingma & Ba 2015, Adam with the infinity norm), as ``torch.optim.Adamax``.

    Update rule (``step`` = t counts from 1)::

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        u = maximum(beta2 * u, abs(g) + eps)
        p -= lr / (1 - beta1**t) * m / u

    State: ``exp_avg`` (``m`` above), ``exp_inf`` (``u`` above).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.002
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    betas : tuple of float, default (0.9, 0.999)
        (beta1, beta2). ``beta1``: decay rate of the first moment, in [0, 1); ``beta2``: decay rate of the infinity
        norm, in [0, 1).
    eps : float, default 1e-8
        Added to ``abs(g)``, >= 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "adamax"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: Params, lr: LearningRate = 0.002, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=tuple_of(betas, 2, 'betas'), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, **options)


class RAdam(Optimizer):
    """RAdam (Liu et al. 2020, rectified Adam), as ``torch.optim.RAdam``.

    Update rule (``step`` = t counts from 1)::

        p *= 1 - lr * weight_decay               if decoupled_weight_decay
        g = g + weight_decay * p                 otherwise
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        m_hat = m / (1 - beta1**t)
        if rho_t > 5:
            r = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
            p -= m_hat * lr * (sqrt(1 - beta2**t) / (sqrt(v) + eps)) * r
        else:
            p -= m_hat * lr

    State: ``exp_avg`` (``m`` above), ``exp_avg_sq`` (``v`` above).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.001
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    betas : tuple of float, default (0.9, 0.999)
        (beta1, beta2). ``beta1``: decay rate of the first moment, in [0, 1); ``beta2``: decay rate of the second
        moment, in [0, 1).
    eps : float, default 1e-8
        Added to ``sqrt(v)``, >= 0.
    weight_decay : float, default 0.0
        L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``, >= 0.
    decoupled_weight_decay : bool, default False
        AdamW-style decay of the parameters instead of the coupled L2 term.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "radam"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: Params, lr: LearningRate = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=tuple_of(betas, 2, 'betas'), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, **options)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``.

    Update rule::

        g = g + weight_decay * p
        square_avg = rho * square_avg + (1 - rho) * g * g
        delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta * delta
        p -= lr * delta

    State: ``square_avg``, ``acc_delta``.

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 1.0
        Scale of the update, >= 0. A callable is a schedule: the lr of step t (from 0).
    rho : float, default 0.9
        Decay of the running averages, in [0, 1].
    eps : float, default 1e-6
        Added inside both square roots, >= 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "adadelta"

    def __init__(self, params: Params, lr: LearningRate = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, **options)


class Rprop(Optimizer):
    """Rprop (Riedmiller & Braun 1993), as ``torch.optim.Rprop``.

    Update rule, per element (``step_size`` starts at ``lr``)::

        s = g * prev
        f = etaplus where s > 0, etaminus where s < 0, 1 where s == 0
        step_size = clip(step_size * f, step_size_min, step_size_max)
        g = 0 where f == etaminus
        p -= sign(g) * step_size
        prev = g

    State: ``prev``, ``step_size``.

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.01
        The step size every element starts at (not read by a step), >= 0. A callable is a schedule: the lr of step t
        (from 0).
    etas : tuple of float, default (0.5, 1.2)
        (etaminus, etaplus). ``etaminus``: factor of the step size where the gradient's sign flips, below 1, > 0;
        ``etaplus``: factor of the step size where it stays, above 1, > 0.
    step_sizes : tuple of float, default (1e-6, 50.0)
        (step_size_min, step_size_max). ``step_size_min``: smallest step size, >= 0; ``step_size_max``: largest step
        size, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "rprop"
    _tuples = {"etas": ("etaminus", "etaplus"), "step_sizes": ("step_size_min", "step_size_max")}

    def __init__(self, params: Params, lr: LearningRate = 0.01, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50.0), *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, etas=tuple_of(etas, 2, 'etas'), step_sizes=tuple_of(step_sizes, 2, 'step_sizes'),
                        maximize=maximize)
        super().__init__(params, defaults, **options)


class NAdam(Optimizer):
    """NAdam (Dozat 2016, Adam with Nesterov momentum), as ``torch.optim.NAdam``.

    Update rule (``step`` = t counts from 1)::

        p *= 1 - lr * weight_decay               if decoupled_weight_decay
        g = g + weight_decay * p                 otherwise
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product *= mu_t                       (one number per tensor, in its dtype)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v / (1 - beta2**t)) + eps
        p += -lr * (1 - mu_t) / (1 - mu_product) * g / denom
        p += -lr * mu_next / (1 - mu_product * mu_next) * m / denom

    State: ``exp_avg`` (``m`` above), ``exp_avg_sq`` (``v`` above), ``mu_product`` (one number per parameter).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.002
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    betas : tuple of float, default (0.9, 0.999)
        (beta1, beta2). ``beta1``: decay rate of the first moment, in [0, 1); ``beta2``: decay rate of the second
        moment, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 0.0
        L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``, >= 0.
    momentum_decay : float, default 0.004
        How fast the momentum factor approaches beta1, >= 0.
    decoupled_weight_decay : bool, default False
        AdamW-style decay of the parameters instead of the coupled L2 term.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "nadam"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: Params, lr: LearningRate = 0.002, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 0.004,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=tuple_of(betas, 2, 'betas'), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, **options)


class ASGD(Optimizer):
    """Averaged SGD (Polyak & Juditsky 1992), as ``torch.optim.ASGD``.

    Update rule (``step`` = t counts from 1; ``eta`` and ``mu`` as they are before the step)::

        g = g + weight_decay * p
        p = p * (1 - lambd * eta) - eta * g
        ax = p                                   if mu == 1
        ax += (p - ax) * mu                      otherwise
        eta = lr / (1 + lambd * lr * t) ** alpha    (for the next step)
        mu = 1 / max(1, t - t0)

    State: ``ax``, ``eta`` (one number per parameter), ``mu`` (one number per parameter).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.01
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    lambd : float, default 0.0001
        Decay of the learning rate, >= 0.
    alpha : float, default 0.75
        Power of the learning rate's decay, >= 0.
    t0 : float, default 1000000.0
        The step at which averaging starts, >= 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "asgd"

    def __init__(self, params: Params, lr: LearningRate = 0.01, lambd: float = 0.0001, alpha: float = 0.75,
                 t0: float = 1000000.0, weight_decay: float = 0.0, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, **options)


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern 2018), as ``torch.optim.Adafactor``.

    Update rule (``step`` = t counts from 1; RMS(x) = ||x|| / sqrt(x.size))::

        w = t ** beta2_decay;  rho = min(lr, 1 / sqrt(t))
        alpha = max(eps2, RMS(p)) * rho
        p *= 1 - lr * weight_decay
        p of 2 or more dims (..., m, n), per matrix:
            row_var = lerp(row_var, mean(g * g, axis=-1), w)
            col_var = lerp(col_var, mean(g * g, axis=-2), w)
            V = row_var * col_var / max(mean(row_var, axis=-2), eps1)
        p of fewer dims:
            variance = lerp(variance, g * g, w);  V = variance
        U = g / sqrt(max(V, eps1**2))
        p -= alpha / max(1, RMS(U) / d) * U

    The second moment of a matrix is factored into a row and a column vector, so
    the state is sublinear in its size. The norms and means are whole-tensor sums
    in double, in a fixed order: the result is bitwise the same for any thread
    count and instruction set. ``eps1=None`` is each parameter's dtype's machine
    epsilon (torch.optim.Adafactor takes the first parameter's for its group).

    State: ``row_var`` ((..., m, 1)), ``col_var`` ((..., 1, n)), ``variance`` (parameters of fewer than 2
    dimensions).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.01
        The largest relative step size, and the weight decay's factor, >= 0. A callable is a schedule: the lr of
        step t (from 0).
    beta2_decay : float, default -0.8
        The second moment's decay exponent, <= 0.
    eps : tuple of (float or None, float), default (None, 0.001)
        (eps1, eps2). ``eps1``: floor of the second moment (squared) and of the row mean; None: the parameter
        dtype's machine epsilon, >= 0, or None; ``eps2``: floor of RMS(p) in the step size, >= 0.
    d : float, default 1.0
        Clipping threshold of RMS(U), > 0.
    weight_decay : float, default 0.0
        Decoupled weight decay, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "adafactor"
    _tuples = {"eps": ("eps1", "eps2")}

    def __init__(self, params: Params, lr: LearningRate = 0.01, beta2_decay: float = -0.8,
                 eps: tuple[Optional[float], float] = (None, 0.001), d: float = 1.0, weight_decay: float = 0.0, *,
                 maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=tuple_of(eps, 2, 'eps'), d=d, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults, **options)


class AdEMAMix(Optimizer):
    """AdEMAMix (Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older").

    Update rule (``step`` = t counts from 1; ``m_slow`` is the slow EMA)::

        alpha_t = min(t * alpha / t_alpha, alpha)          (alpha if t_alpha is None)
        s = t / t_beta3                                      (beta3_t = beta3 if t_beta3 is None)
        beta3_t = min(exp(log(beta1) * log(beta3) / ((1 - s) * log(beta3) + s * log(beta1))), beta3)
        p *= 1 - lr * weight_decay
        m = beta1 * m + (1 - beta1) * g
        m_slow = beta3_t * m_slow + (1 - beta3_t) * g
        v = beta2 * v + (1 - beta2) * g * g
        p -= (lr / (1 - beta1**t) * m + lr * alpha_t * m_slow) / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Adam's update with a second, slow EMA of the gradient (``beta3`` near 1) added
    to the numerator: it keeps using gradients thousands of steps old. The paper
    warms ``alpha`` and ``beta3`` up over ``t_alpha`` and ``t_beta3`` steps (both
    often the run's length); defaults and schedules are bitsandbytes' AdEMAMix, with
    the weight decay decoupled as AdamW's.

    State: ``exp_avg`` (``m`` above), ``exp_avg_slow`` (``m_slow`` above), ``exp_avg_sq`` (``v`` above).

    Parameters
    ----------
    params : list or dict of numpy.ndarray, or list of dict
        Arrays updated in place (float32, float64, float16 or bfloat16), or parameter groups ``{"params": [...],
        <hyperparameter>: value}``.
    lr : float or callable, default 0.001
        Learning rate, >= 0. A callable is a schedule: the lr of step t (from 0).
    betas : tuple of float, default (0.9, 0.999, 0.9999)
        (beta1, beta2, beta3). ``beta1``: decay rate of the fast first moment, in [0, 1); ``beta2``: decay rate of
        the second moment, in [0, 1); ``beta3``: decay rate of the slow first moment (after its warm-up), in [0, 1).
    alpha : float, default 5.0
        Weight of the slow first moment (after its warm-up), >= 0.
    t_alpha : float or None, default None
        Length of alpha's linear warm-up, in steps (None: no warm-up), > 0, or None.
    t_beta3 : float or None, default None
        Length of beta3's warm-up from beta1, in steps (None: no warm-up), > 0, or None.
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.01
        Decoupled weight decay, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``grads``, ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``, ``min_8bit_size``: see
        :class:`Optimizer`.
    """

    _rule = "ademamix"
    _tuples = {"betas": ("beta1", "beta2", "beta3")}

    def __init__(self, params: Params, lr: LearningRate = 0.001,
                 betas: tuple[float, float, float] = (0.9, 0.999, 0.9999), alpha: float = 5.0,
                 t_alpha: Optional[float] = None, t_beta3: Optional[float] = None, eps: float = 1e-8,
                 weight_decay: float = 0.01, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=tuple_of(betas, 3, 'betas'), alpha=alpha, t_alpha=t_alpha, t_beta3=t_beta3,
                        eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, **options)


__all__ += ['SGD', 'Adagrad', 'RMSprop', 'Adam', 'AdamW', 'Lion', 'Adamax', 'RAdam', 'Adadelta', 'Rprop', 'NAdam',
            'ASGD', 'Adafactor', 'AdEMAMix']
# ---- end of generated code ----
