"""fastopt.torch's optimizer base (``_Optimizer``): torch's state layout stepped by
fastopt's kernels, one native call per step through a view of every parameter,
state, step and copy tensor that is re-validated at every step; the per-group
hyperparameter snapshot, ``offload_step``, ``state_dict`` and fork safety. Each
rule's class (``_rules.py``) sets the rule and torch's arguments on it."""
from __future__ import annotations

import functools
import math
import os
import threading
import weakref
from itertools import chain
from typing import TYPE_CHECKING, Any, Callable, Optional, Union, overload

import numpy as np
import torch
import torch.optim.optimizer as _torch_optimizer  # (torch.optim deletes its submodules' names)

from .. import _core
from .._typing import Array
from .._options import MIN_8BIT_SIZE, int8_options, precision_options, tuple_of, warn_if_nothing_to_round
from ..optim import _constant_8bit, quant_blocks, state_shape

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT

#: A hyperparameter: a number, or (as torch allows) a one-element tensor.
Number = Union[float, torch.Tensor]
# State a refused or skipped step created: (state dict, key), key None for all of it.
_Created = list[tuple[dict[str, Any], Optional[str]]]

_RULES = {rule["name"]: rule for rule in _core.rules()}

# Live optimizers, for the at-fork handler: a child forked while another thread
# was inside a step inherits its held lock and claim, which no thread of the
# child will ever release.
_LIVE: "weakref.WeakSet[_Optimizer]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for opt in list(_LIVE):
        opt._step_lock = threading.RLock()
        if opt._fastopt_view is not None:
            opt._fastopt_view[1].after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _bfloat16() -> Optional[np.dtype[Any]]:
    """ml_dtypes' bfloat16, or None without ml_dtypes (bfloat16 tensors are then refused)."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    dtype: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
    return dtype


def _torch_types() -> tuple[Any, ...]:
    """What the native view compares tensors' attributes with (TorchTypes in torch_view.hpp)."""
    dtensor: Optional[type] = None
    try:
        from torch.distributed.tensor import DTensor
        dtensor = DTensor
    except ImportError:  # a torch built without torch.distributed
        pass
    return (torch._C.TensorBase, torch.strided,
            (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8),
            (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), _bfloat16(), np.dtype(np.uint8)),
            (torch.int32, torch.int64), torch._C._increment_version, torch.is_inference_mode_enabled, dtensor)


_TYPES = _torch_types()


def _is_dtensor(t: object) -> bool:
    """Whether ``t`` is a DTensor (FSDP2's parameters, gradients and state: each process holds a shard)."""
    return _TYPES[7] is not None and isinstance(t, _TYPES[7])


def _as_numpy(t: object, name: str) -> Array:
    """A NumPy array on ``t``'s memory (no copy: an update through it is the tensor's),
    or a TypeError / ValueError naming ``name``."""
    array: Array = _core.tensor_array(_TYPES, t, name)
    return array


def _scalar_dtype() -> torch.dtype:
    """torch's dtype of state["step"]: float64 under a float64 default dtype, else float32."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _scalar(value: Any, name: str) -> Any:
    """torch allows a 0-d tensor for lr and betas; the kernels take a number."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number or a one-element tensor")
        return value.item()
    return value


def _snapshot(v: Any) -> Any:
    """A hyperparameter's value to compare with a later one: a tensor by its dtype, shape and
    (one element) value; anything else with its type."""
    if isinstance(v, torch.Tensor):
        return (v.dtype, tuple(v.shape), v.item() if v.numel() == 1 else id(v))
    return (type(v), v)


def _refuse_offload_on_shards() -> None:
    raise ValueError("offload_step takes the gradients' norm and skips on a non-finite one per process; with "
                     "DTensor (FSDP2) parameters each process holds a shard: use step() (with "
                     "clip_grad_norm_ and a GradScaler, which reduce across processes)")


def _memory_order(t: torch.Tensor) -> list[int]:
    """The dimensions of a dense tensor from outermost to innermost in memory: ``t.permute(order)``
    is contiguous (the identity for a contiguous tensor, NHWC for channels_last)."""
    strides = t.stride()
    return sorted(range(t.dim()), key=lambda d: -strides[d])


def _discard(created: _Created) -> None:
    """Remove the state a refused or skipped step created: (state, key) pairs, key None for all."""
    for state, key in created:
        if key is None:
            state.clear()
        else:
            state.pop(key, None)


# torch.optim wraps every optimizer class's step (Optimizer.profile_hook_step): step hooks,
# and a profiler record_function that costs about 7 us per step even when no profiler runs —
# most of a one-tensor step. fastopt's classes run the same hooks in the same order and enter
# torch's wrapper, record_function included, only while a profiler is recording. Needs
# torch's hook registries; without them (another torch version) torch's wrapper is kept.
_GLOBAL_PRE_HOOKS = getattr(_torch_optimizer, "_global_optimizer_pre_hooks", None)
_GLOBAL_POST_HOOKS = getattr(_torch_optimizer, "_global_optimizer_post_hooks", None)
_PROFILER = torch.autograd.profiler
_OWN_STEP_WRAPPER = (isinstance(_GLOBAL_PRE_HOOKS, dict) and isinstance(_GLOBAL_POST_HOOKS, dict)
                     and isinstance(getattr(_PROFILER, "_is_profiler_enabled", None), bool))


def _hooked_step(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a class's step) with torch.optim's step hooks, as ``profile_hook_step`` runs them."""
    profiled = torch.optim.Optimizer.profile_hook_step(func)

    @functools.wraps(func)
    def step(*args: Any, **kwargs: Any) -> Any:
        if _PROFILER._is_profiler_enabled:
            return profiled(*args, **kwargs)
        self = args[0]
        assert _GLOBAL_PRE_HOOKS is not None and _GLOBAL_POST_HOOKS is not None
        for pre_hook in chain(_GLOBAL_PRE_HOOKS.values(), self._optimizer_step_pre_hooks.values()):
            result = pre_hook(self, args, kwargs)
            if result is not None:
                if isinstance(result, tuple) and len(result) == 2:
                    args, kwargs = result
                else:
                    raise RuntimeError(f"{func} must return None or a tuple of (new_args, new_kwargs), but got "
                                       f"{result}.")
        out = func(*args, **kwargs)
        self._optimizer_step_code()
        for post_hook in chain(self._optimizer_step_post_hooks.values(), _GLOBAL_POST_HOOKS.values()):
            post_hook(self, args, kwargs)
        return out

    setattr(step, "hooked", True)  # torch's Optimizer.__init__ then leaves it as it is
    return step


class _Optimizer(torch.optim.Optimizer):
    """Shared machinery: state in torch's layout, one native step per call."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if _OWN_STEP_WRAPPER and "step" in cls.__dict__:  # (Muon's own step)
            setattr(cls, "step", _hooked_step(cls.__dict__["step"]))

    _rule = ""
    # torch's tuples of hyperparameters: {"betas": ("beta1", "beta2")}
    _tuples: dict[str, tuple[str, ...]] = {}
    # torch options accepted only at their default (these implementations are torch's own)
    _torch_only = {"foreach": (None, False), "fused": (None, False), "capturable": (False,),
                   "differentiable": (False,)}
    _uses_step_state = True  # keeps state["step"] as torch does

    def __init__(self, params: ParamsT, defaults: dict[str, Any], *, state_dtype: Union[str, torch.dtype] = "param",
                 stochastic_rounding: bool = False, seed: int = 0,
                 param_copies: Optional[dict[torch.Tensor, torch.Tensor]] = None,
                 min_8bit_size: int = MIN_8BIT_SIZE) -> None:
        for key, allowed in self._torch_only.items():
            if key in defaults and defaults[key] not in allowed:
                raise ValueError(f"{key}={defaults[key]!r} is not supported by fastopt.{type(self).__name__} "
                                 f"(use torch.optim.{type(self).__name__} for it); leave it at its default")
        self._state_dtype, self.stochastic_rounding, self.seed = precision_options(
            state_dtype, stochastic_rounding, seed)
        self.min_8bit_size = int8_options(_RULES[self._rule], self._state_dtype, min_8bit_size, type(self).__name__)
        if param_copies is not None and not isinstance(param_copies, dict):
            raise TypeError("param_copies must be a dict {float32 parameter: float16/bfloat16 tensor}, got "
                            f"{type(param_copies).__name__}")
        self._copies = dict(param_copies or {})
        # (the state names each group needs, the native view)
        # The native view, the state names each group needed when it was made, and whether a
        # parameter it steps is a DTensor (FSDP2's shard, which offload_step refuses).
        self._fastopt_view: Optional[tuple[list[tuple[str, ...]], _core.TorchView, bool]] = None
        # Steps from several threads run one at a time: a step creates state in
        # Python and replaces the cached view around the native call.
        self._step_lock = threading.RLock()
        # Steps applied, counted natively: the step number stochastic rounding
        # hashes for parameters without state["step"] (SGD, Lion).
        self._rounding_counter = np.zeros((), np.int64)
        super().__init__(params, defaults)
        _LIVE.add(self)
        warn_if_nothing_to_round(self.stochastic_rounding,
                                  [str(p.dtype).replace("torch.", "") for g in self.param_groups for p in g["params"]],
                                  type(self).__name__)

    # --- pickling (torch.optim.Optimizer pickles defaults, state and groups only) ---------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["fastopt_options"] = {"state_dtype": self._state_dtype, "stochastic_rounding": self.stochastic_rounding,
                                    "seed": self.seed, "param_copies": self._copies,
                                    "min_8bit_size": self.min_8bit_size}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Also called by torch's load_state_dict with {"state", "param_groups"}: then
        # the options and the machinery of this optimizer stay.
        options = state.pop("fastopt_options", None)
        super().__setstate__(state)
        if options is not None:
            self._state_dtype = options["state_dtype"]
            self.stochastic_rounding = options["stochastic_rounding"]
            self.seed = options["seed"]
            self._copies = options["param_copies"]
            self.min_8bit_size = options.get("min_8bit_size", MIN_8BIT_SIZE)
        if not hasattr(self, "_step_lock"):  # unpickled or copied: new machinery
            self._step_lock = threading.RLock()
            self._rounding_counter = np.zeros((), np.int64)
            _LIVE.add(self)
        self._fastopt_view = None

    # --- the registry's view of a group ----------------------------------------------------------
    def _rule_hypers(self, group: dict[str, Any]) -> dict[str, Any]:
        """The registry's hyperparameters of a param group (torch's names; a tuple such as
        ``betas`` becomes its hyperparameters)."""
        names = {h["name"] for h in _RULES[self._rule]["hypers"]}
        hypers = {k: _scalar(v, k) for k, v in group.items() if k in names}
        for key, members in self._tuples.items():
            values = tuple_of(group[key], len(members), f"{key} ({', '.join(members)})")
            hypers.update((k, None if v is None else _scalar(v, k)) for k, v in zip(members, values))
        return hypers

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for key, allowed in self._torch_only.items():
            if key in group and group[key] not in allowed:
                self.param_groups.pop()
                raise ValueError(f"{key}={group[key]!r} is not supported by fastopt.{type(self).__name__}")
        try:
            _core.check_hyperparameters(self._rule, self._rule_hypers(group))
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise

    # --- state ---------------------------------------------------------------------------------
    def _state_dtype_for(self, p: torch.Tensor) -> torch.dtype:
        if self._state_dtype in ("float32", "int8") and p.dtype in (torch.float16, torch.bfloat16):
            return torch.float32  # int8: the state of a tensor below min_8bit_size
        return p.dtype

    def _stores_8bit(self, p: torch.Tensor) -> bool:
        """Whether ``p`` keeps 8-bit state: state_dtype="int8", a float32/float16/bfloat16 parameter
        of at least ``min_8bit_size`` elements."""
        return (self._state_dtype == "int8" and p.numel() >= self.min_8bit_size
                and p.dtype in (torch.float32, torch.float16, torch.bfloat16))

    @staticmethod
    def _quantized(values: torch.Tensor, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """8-bit codes (``values``' shape and memory order) and the float32 absmax of each block of 256
        elements of a float tensor, in its memory order."""
        memory = values.detach().to(torch.float32)
        flat = memory.permute(*_memory_order(memory)).contiguous().view(-1).numpy()
        codes, absmax = _core.quantize_blockwise(flat, signed)
        out = torch.empty_like(values, dtype=torch.uint8, memory_format=torch.preserve_format)
        out.permute(*_memory_order(out)).view(-1).copy_(torch.from_numpy(codes))
        return out, torch.from_numpy(absmax)

    @staticmethod
    def _dequantized(codes: torch.Tensor, absmax: torch.Tensor, signed: bool) -> torch.Tensor:
        """The float32 values of 8-bit codes (their shape and memory order)."""
        flat = codes.permute(*_memory_order(codes)).contiguous().view(-1).numpy()
        values = _core.dequantize_blockwise(flat, absmax.detach().to(torch.float32).contiguous().numpy(), signed)
        out = torch.empty_like(codes, dtype=torch.float32, memory_format=torch.preserve_format)
        out.permute(*_memory_order(out)).view(-1).copy_(torch.from_numpy(values))
        return out

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        """Create the state buffers the group's hyperparameters need, as torch names them."""
        hypers = self._rule_hypers(group)
        new: dict[str, torch.Tensor] = {}  # all allocated before any is set: a failure leaves no partial state
        if self._uses_step_state:  # a 0-d tensor, as torch keeps it
            new["step"] = torch.zeros((), dtype=_scalar_dtype())
        specs = {s["name"]: s for s in _RULES[self._rule]["states"]}
        for name in _core.needed_states(self._rule, hypers):
            initial = specs[name]["initial"]
            value = specs[name]["start"] if initial is None else float(self._initial_value(group, initial))
            shape = state_shape(specs[name]["shape"], tuple(p.shape))
            if shape is None:  # not kept for a parameter of this shape (Adafactor's factored state)
                continue
            if specs[name]["shape"] == "tensor":  # one number per parameter: a 0-d tensor, as torch keeps it
                new[name] = torch.tensor(value, dtype=_scalar_dtype())
            elif specs[name]["map8"] is not None and self._stores_8bit(p):  # codes and their absmax
                codes, absmax = _constant_8bit(value, (p.numel(),), specs[name]["map8"] == "signed")
                new[name] = torch.full_like(p, int(codes[0]), dtype=torch.uint8, memory_format=torch.preserve_format)
                new[name + "_absmax"] = torch.from_numpy(absmax)
            elif shape != tuple(p.shape):
                new[name] = torch.full(shape, value, dtype=self._state_dtype_for(p))
            else:
                new[name] = torch.full_like(p, value, dtype=self._state_dtype_for(p),
                                            memory_format=torch.preserve_format)
        state.update(new)

    def _initial_value(self, group: dict[str, Any], name: str) -> Any:
        """The hyperparameter a state buffer starts at (Adagrad: torch takes the optimizer's default)."""
        return _scalar(group[name], name)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict``. torch casts floating-point state to the
        parameter's dtype: with ``state_dtype="float32"`` the saved float32 values
        are put back, and a per-tensor number (NAdam's ``mu_product``, ASGD's
        ``eta`` and ``mu``) keeps its saved float32 or float64 dtype. A step saved
        as a number (old checkpoints) becomes a tensor, as torch.optim.Adam makes it.
        8-bit state (uint8 codes, which torch would cast too) is put back as saved; float
        state loads into 8-bit state quantized, and 8-bit state into float state dequantized."""
        self._check_8bit_entries(state_dict)
        super().load_state_dict(state_dict)
        saved = state_dict["state"]
        per_tensor = {st["name"] for st in _RULES[self._rule]["states"] if st["shape"] == "tensor"}
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                entry = saved.get(index, {})
                index += 1
                if p not in self.state:
                    continue
                state = self.state[p]
                for key, value in list(state.items()):
                    if key == "step":
                        if isinstance(value, (int, float)) and not isinstance(value, bool):
                            state[key] = torch.tensor(float(value), dtype=_scalar_dtype())
                        continue
                    wanted = self._state_dtype_for(p)
                    original = entry.get(key)
                    if isinstance(original, torch.Tensor) and original.dtype == torch.uint8:
                        # 8-bit codes, which torch cast to the parameter's dtype: put back (converted below)
                        state[key] = original.detach().clone(memory_format=torch.preserve_format)
                        continue
                    if key.endswith("_absmax"):  # torch casts it to the parameter's dtype; it is float32
                        wanted = torch.float32
                    if key in per_tensor:  # torch casts it to the parameter's dtype; it keeps its own
                        original = entry.get(key)
                        kept = original.dtype if isinstance(original, torch.Tensor) else None
                        wanted = kept if kept in (torch.float32, torch.float64) else _scalar_dtype()
                    if isinstance(value, torch.Tensor) and value.dtype != wanted:
                        original = entry.get(key)
                        source = original if isinstance(original, torch.Tensor) else value
                        state[key] = source.detach().to(dtype=wanted).contiguous().clone()
                self._convert_8bit(p, state, entry)

    def _check_8bit_entries(self, state_dict: dict[str, Any]) -> None:
        """ValueError naming the entry, before anything is loaded, for 8-bit codes without a valid
        absmax: a float32 tensor with one finite number >= 0 per block of 256 codes."""
        saved = state_dict.get("state") if isinstance(state_dict, dict) else None
        if not isinstance(saved, dict):
            return  # torch's own checks report it
        for index, entry in saved.items():
            if not isinstance(entry, dict):
                continue
            for key, codes in entry.items():
                if not (isinstance(codes, torch.Tensor) and codes.dtype == torch.uint8):
                    continue
                absmax = entry.get(key + "_absmax")
                blocks = quant_blocks(codes.numel())
                where = f"state_dict['state'][{index}][{key + '_absmax'!r}]"
                if not isinstance(absmax, torch.Tensor):
                    raise ValueError(f"{where} is missing: 8-bit (uint8) {key!r} needs the absmax of its blocks")
                if tuple(absmax.shape) != (blocks,) or absmax.dtype != torch.float32:
                    raise ValueError(f"{where} has shape {tuple(absmax.shape)} and dtype {absmax.dtype}; expected "
                                     f"({blocks},) and torch.float32 (one absmax per block of 256 codes)")
                if not bool(torch.all(torch.isfinite(absmax) & (absmax >= 0))):
                    raise ValueError(f"{where} must hold finite numbers >= 0")

    def _convert_8bit(self, p: torch.Tensor, state: dict[str, Any], entry: dict[str, Any]) -> None:
        """After a load: float state quantized where ``p`` keeps 8-bit state, 8-bit state
        dequantized where it does not (``entry``: the saved state, uncast)."""
        for spec in _RULES[self._rule]["states"]:
            name, signed = spec["name"], spec["map8"] == "signed"
            value = state.get(name)
            if spec["map8"] is None or not isinstance(value, torch.Tensor):
                continue
            original = entry.get(name, value)
            if self._stores_8bit(p) and value.dtype != torch.uint8:
                state[name], state[name + "_absmax"] = self._quantized(original, signed)
            elif not self._stores_8bit(p) and value.dtype == torch.uint8:
                absmax = entry[name + "_absmax"]
                state[name] = self._dequantized(value, absmax, signed).to(self._state_dtype_for(p))
                state.pop(name + "_absmax", None)

    def state_dict(self, *, dequantized: bool = False) -> dict[str, Any]:
        """torch's ``state_dict``. 8-bit state is saved as its uint8 codes with ``<name>_absmax``
        beside them; with ``dequantized=True`` as float32 tensors instead (the state
        torch.optim's classes load)."""
        out: dict[str, Any] = super().state_dict()
        if not dequantized:
            return out
        maps = {s["name"]: s["map8"] == "signed" for s in _RULES[self._rule]["states"] if s["map8"] is not None}
        state = {}
        for index, entry in out["state"].items():
            entry = dict(entry)
            for name, signed in maps.items():
                codes = entry.get(name)
                if isinstance(codes, torch.Tensor) and codes.dtype == torch.uint8:
                    entry[name] = self._dequantized(codes, entry.pop(name + "_absmax"), signed)
            state[index] = entry
        return dict(out, state=state)

    # --- the step ------------------------------------------------------------------------------
    def _prepare(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any], needed: set[str],
                 created: _Created) -> tuple[Optional[int], Optional[int]]:
        """Create missing state (recording it in ``created``) and return the step
        numbers of ``p``: (this step's, later steps'), each None for state["step"]
        + 1 (read and counted natively). Nothing is counted here."""
        if not state:
            self._init_state(p, group, state)
            created.append((state, None))
        return (None, None) if _RULES[self._rule]["uses_step"] else (0, 0)

    # GradScaler hands a step its scale and found_inf instead of unscaling the
    # gradients itself (torch.amp.GradScaler.step, as for torch's fused optimizers).
    _step_supports_amp_scaling = True

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    # No torch.no_grad() here: the step runs natively on the tensors' memory and records
    # nothing, and entering the mode costs a few microseconds of every step.
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """One step over every parameter with a gradient; returns ``closure()``'s loss if given.

        Every parameter, gradient and state tensor is checked before any is
        updated: a TypeError or ValueError changes nothing. The native view of
        the parameters and state (NumPy arrays on the tensors' memory) is kept
        between steps; a step reads the gradients and step counts natively and
        makes a new view only when the parameters with gradients, their state
        tensors or the tensors' memory changed.

        Under ``torch.amp.GradScaler`` (which sets ``grad_scale`` and
        ``found_inf`` on the optimizer for the step, as for torch's fused
        optimizers) the step is skipped when ``found_inf`` is nonzero, and
        otherwise every gradient is divided by ``grad_scale`` inside the update
        loop. Unlike torch's fused kernels, the unscaled gradients are not
        written back into ``.grad`` (that would be a write pass over them):
        ``.grad`` keeps the scaled values.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        found_inf = getattr(self, "found_inf", None)
        if found_inf is not None and float(found_inf) != 0.0:
            return loss  # GradScaler saw an inf or NaN: no step, as torch's fused optimizers
        grad_scale = getattr(self, "grad_scale", None)
        unscale = 1.0
        if grad_scale is not None:
            scale = float(grad_scale)
            if not (math.isfinite(scale) and scale > 0.0):
                raise ValueError(f"grad_scale (GradScaler's loss scale) must be finite and > 0, got {scale}")
            unscale = 1.0 / scale
        self._run(grad_scale=unscale)
        return loss

    @torch.no_grad()
    def offload_step(self, *, grad_scale: Number = 1.0, max_norm: Optional[Number] = None) -> tuple[bool, float]:
        """The fused optimizer phase of mixed-precision training (see
        :meth:`fastopt.optim.Optimizer.offload_step`): the global norm of the
        gradients times ``grad_scale`` in one read pass; if it is not finite,
        nothing changes (as ``GradScaler`` skips the step); else one update pass
        that unscales, clips to ``max_norm`` as ``clip_grad_norm_`` would, steps,
        and writes the 16-bit parameter copies.

        Returns
        -------
        (bool, float)
            Whether the step was applied, and the unscaled gradients' global norm.
        """
        return self._run(grad_scale=_scalar(grad_scale, "grad_scale"),
                         max_norm=None if max_norm is None else _scalar(max_norm, "max_norm"), skip_if_nonfinite=True)

    def _run(self, **phase: Any) -> tuple[bool, float]:
        """One native step; ``phase``: grad_scale, max_norm, skip_if_nonfinite. Returns (applied, norm)."""
        with self._step_lock:
            return self._run_locked(phase)

    @property
    def _settings_cache(self) -> list[tuple[Any, dict[str, Any], tuple[str, ...]]]:
        """Per group: (its values, the registry's hyperparameters, the state they need)."""
        cache: Optional[list[tuple[Any, dict[str, Any], tuple[str, ...]]]] = self.__dict__.get("_fastopt_settings")
        if cache is None:
            cache = self.__dict__["_fastopt_settings"] = []
        return cache

    def _group_values(self, group: dict[str, Any]) -> list[Any]:
        """A snapshot of the group's entries the rule reads, to compare between steps: numbers
        with their type, a tensor by its value, a tuple by its members (a list edited in place
        differs)."""
        out: list[Any] = []
        for k in self._group_keys():
            v: Any = group.get(k)
            kind = type(v)
            if kind is float or kind is bool or kind is int:
                out += (kind, v)
            elif kind is tuple or kind is list:
                out += (kind, len(v), *(_snapshot(x) for x in v))
            else:
                out += (kind, _snapshot(v))
        return out

    @classmethod
    def _group_keys(cls) -> tuple[str, ...]:
        keys = cls.__dict__.get("_fastopt_group_keys")
        if keys is None:
            grouped = {h for members in cls._tuples.values() for h in members}
            keys = (tuple(h["name"] for h in _RULES[cls._rule]["hypers"] if h["name"] not in grouped)
                    + tuple(cls._tuples))
            setattr(cls, "_fastopt_group_keys", keys)
        return keys

    def _native_group(self, group: dict[str, Any]) -> bool:
        """Whether the registry's rule steps this group (Muon's AdamW groups; every group elsewhere)."""
        return True

    def _run_locked(self, phase: dict[str, Any]) -> tuple[bool, float]:
        hypers_of: list[dict[str, Any]] = []
        needed_of: list[tuple[str, ...]] = []
        # The groups the native view walks: a group the rule does not step is seen as empty.
        native = [self._native_group(g) for g in self.param_groups]
        groups = [g if n else {"params": []} for g, n in zip(self.param_groups, native)]
        cache = self._settings_cache
        del cache[len(groups):]
        for i, (group, n) in enumerate(zip(groups, native)):
            # A group's hyperparameters are converted and checked again only when its values
            # changed since the last step (the native step checks the ranges every time).
            values = self._group_values(group) if n else None
            if i < len(cache) and cache[i][0] == values:
                hypers, needed = cache[i][1], cache[i][2]
            else:
                hypers = self._rule_hypers(group) if n else {}
                _core.check_hyperparameters(self._rule, hypers)
                needed = tuple(_core.needed_states(self._rule, hypers)) if n else ()
                del cache[i:]
                cache.append((values, hypers, needed))
            hypers_of.append(hypers)
            needed_of.append(needed)
        seed = self.seed if self.stochastic_rounding else None
        # offload_step's phase takes a global norm and skips per process: not over shards.
        offload = bool(phase.get("skip_if_nonfinite")) or phase.get("max_norm") is not None
        if self._fastopt_view is not None and self._fastopt_view[0] == needed_of:
            if offload and self._fastopt_view[2]:
                _refuse_offload_on_shards()
            result = self._fastopt_view[1].step(groups, self.state, hypers_of, seed, **phase)
            if result is not None:
                return result
        # The parameters with gradients, their state or their memory changed: a new view.
        self._fastopt_view = None
        active = [(gi, pi, p) for gi, group in enumerate(groups)
                  for pi, p in enumerate(group["params"]) if p.grad is not None]
        if not active:
            return True, 0.0
        created: _Created = []  # state this call created, removed again if the step is refused or skipped
        view: Optional[_core.TorchView] = None
        try:
            view, first_steps = self._make_view(active, needed_of, created)
            sharded = any(_is_dtensor(p) for _, _, p in active)
            if offload and sharded:
                _refuse_offload_on_shards()
            result = view.step(groups, self.state, hypers_of, seed, first_steps, **phase)
            if result is None:
                raise RuntimeError("fastopt.torch: a new view was stale at once (a parameter's gradient or state "
                                   "changed during the step?)")
            self._fastopt_view = (needed_of, view, sharded)
            if not result[0]:  # a non-finite gradient: the step changes nothing, state included
                _discard(created)
            return result
        except BaseException:
            # An exception after the native update (KeyboardInterrupt, say) must
            # not undo its state: the view says whether the tensors changed.
            if view is not None and view.stepped:
                self._fastopt_view = (needed_of, view, sharded)
            else:
                _discard(created)
            raise

    def _make_view(self, active: list[tuple[int, int, torch.Tensor]], needed_of: list[tuple[str, ...]],
                   created: _Created) -> tuple[_core.TorchView, list[int]]:
        """The native view over ``active`` [(group index, position, param)], creating missing
        state; and the step numbers its first step uses (None: the view's own)."""
        state_names = [s["name"] for s in _RULES[self._rule]["states"]]
        kinds = {s["name"]: s["shape"] for s in _RULES[self._rule]["states"]}
        eight_bit = [s["name"] for s in _RULES[self._rule]["states"] if s["map8"] is not None]
        if self._state_dtype == "int8":  # each 8-bit buffer's absmax, where the parameter keeps 8-bit state
            state_names += [name + "_absmax" for name in eight_bit]
            kinds.update({name + "_absmax": "block" for name in eight_bit})
        params: list[Array] = []
        groups: list[int] = []
        positions: list[int] = []
        state_tensors: list[dict[str, torch.Tensor]] = []
        steps: list[Optional[torch.Tensor]] = []
        fixed_steps: list[Optional[int]] = []
        first_steps: list[int] = []
        arrays: dict[str, list[Optional[Array]]] = {name: [] for name in state_names}
        factored = any(kind in ("row", "col") for kind in kinds.values())
        for gi, pi, p in active:
            name = f"param_groups[{gi}]['params'][{pi}]"
            if factored and _is_dtensor(p):
                raise ValueError(f"{name} is a DTensor (FSDP2's shard); {type(self).__name__}'s row and column "
                                 f"means and norms are over the whole tensor, which this process does not hold")
            if factored and not p.is_contiguous():
                raise ValueError(f"{name} is not contiguous: {type(self).__name__} factors a parameter's last two "
                                 f"dimensions and steps contiguous tensors only (not channels_last); use "
                                 f"model.to(memory_format=torch.contiguous_format)")
            params.append(_as_numpy(p, name))  # the parameter is checked before its state is made
            state = self.state[p]
            if not isinstance(state, dict):
                raise TypeError(f"opt.state[{name}] must be a dict, got {type(state).__name__}")
            first, later = self._prepare(p, self.param_groups[gi], state, set(needed_of[gi]), created)
            tensors: dict[str, Optional[torch.Tensor]] = {}
            for s in state_names:
                if kinds[s] == "block":  # the absmax of 8-bit codes; float state has none
                    codes = tensors.get(s[:-len("_absmax")])
                    kept = state.get(s) if codes is not None and codes.dtype == torch.uint8 else None
                    if codes is not None and codes.dtype == torch.uint8 and not isinstance(kept, torch.Tensor):
                        raise ValueError(f"state[{s!r}] of {name} is missing: 8-bit (uint8) state keeps its absmax")
                    tensors[s] = kept
                    arrays[s].append(None if kept is None else _as_numpy(kept, f"state[{s!r}] of {name}"))
                    continue
                if s in needed_of[gi] and state_shape(kinds[s], tuple(p.shape)) is None:
                    tensors[s] = None  # not kept for a parameter of this shape
                    arrays[s].append(None)
                    continue
                if s in needed_of[gi] and state.get(s) is None:
                    raise ValueError(f"{name} has no '{s}' state, which these hyperparameters need; it is "
                                     f"created at the parameter's first step with them set")
                tensors[s] = state[s] if s in needed_of[gi] else None
                kept = tensors[s]
                if kept is not None and kinds[s] == "elementwise" and isinstance(kept, torch.Tensor) \
                        and kept.shape != p.shape:
                    raise ValueError(f"state[{s!r}] of {name} has shape {tuple(kept.shape)} but the parameter has "
                                     f"shape {tuple(p.shape)}")
                arrays[s].append(None if tensors[s] is None else _as_numpy(tensors[s], f"state[{s!r}] of {name}"))
            groups.append(gi)
            positions.append(pi)
            state_tensors.append({s: t for s, t in tensors.items() if t is not None})
            step = state.get("step") if self._uses_step_state else None
            if self._uses_step_state and not isinstance(step, torch.Tensor):
                raise ValueError(f"state['step'] of {name} must be a tensor, as torch keeps it; got "
                                 f"{type(step).__name__}")
            steps.append(step)
            fixed_steps.append(later)
            first_steps.append(0 if first is None else first)
        native_states = {s: a for s, a in arrays.items() if any(x is not None for x in a)}
        copies = [self._copies.get(p) for _, _, p in active]
        copy_arrays = ([None if c is None else _as_numpy(c, f"the copy of param_groups[{gi}]['params'][{pi}]")
                        for c, (gi, pi, _) in zip(copies, active)] if any(c is not None for c in copies) else None)
        group = _core.TensorGroup(self._rule, params, native_states, None, None, groups, copy_arrays)
        view = _core.TorchView(_TYPES, group, [p for _, _, p in active], groups, positions, self.state,
                               state_tensors, steps, fixed_steps, copies, self._rounding_counter)
        return view, first_steps



if _OWN_STEP_WRAPPER:
    setattr(_Optimizer, "step", _hooked_step(_Optimizer.__dict__["step"]))

def _check_dense(t: Any, name: str, written: bool) -> None:
    """A tensor of a Muon or LBFGS step (which use torch operations, not a view): a dense
    floating-point CPU tensor (written ones without the negation bit, and not inference
    tensors outside inference mode); else TypeError / ValueError."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    if _is_dtensor(t):
        raise ValueError(f"{name} is a DTensor (FSDP2's shard of a matrix); Muon orthogonalizes whole matrices: "
                         "shard it by whole tensors (ZeroRedundancyOptimizer) instead")
    if t.layout != torch.strided:
        raise TypeError(f"{name} is sparse; Muon needs dense tensors")
    if not t.is_floating_point():
        raise TypeError(f"{name} has dtype {t.dtype}; Muon needs a floating-point tensor")
    if t.device.type != "cpu":
        raise ValueError(f"{name} is on {t.device}; fastopt.torch steps CPU tensors")
    if written and (t.is_neg() or t.is_conj()):
        raise ValueError(f"{name} is a negated or conjugated view; it is updated in place")
    if written and t.is_inference() and not torch.is_inference_mode_enabled():
        raise ValueError(f"{name} is an inference tensor; torch refuses to update it in place outside "
                         "inference mode")
