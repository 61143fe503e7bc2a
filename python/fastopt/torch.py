"""Drop-in ``torch.optim`` optimizers that run fastopt's kernels on CPU tensors.

``fastopt.torch.SGD / Adagrad / RMSprop / Adam / AdamW / Adamax / RAdam / NAdam / Adadelta / Rprop /
ASGD / Lion`` are subclasses
of ``torch.optim.Optimizer`` with torch's constructor arguments, defaults,
parameter groups and state layout (``opt.state[p]["exp_avg"]``, ``"step"`` as
a float32 tensor), so ``state_dict()`` is interchangeable with torch.optim's
both ways, ``torch.optim.lr_scheduler`` schedulers, ``clip_grad_norm_`` and
``torch.amp.GradScaler`` work as with torch's own optimizers. A step is one
native call over every parameter that has a gradient, running directly on the
tensors' storage (zero-copy, the GIL released): float32, float64, float16 and
bfloat16 (``pip install "fastopt[torch]"`` installs ml_dtypes, which bfloat16 needs).

Beyond torch: ``state_dtype="float32"`` (or ``torch.float32``) keeps float32 state for 16-bit
parameters (torch keeps it in the parameter's dtype, the default here too),
``stochastic_rounding=True`` (with ``seed``) rounds updated 16-bit
parameters stochastically (docs/design.md, "Mixed precision"),
``param_copies={p: p16}`` is master-weight mode (each step also writes the
updated float32 ``p`` into the float16/bfloat16 tensor ``p16``, in the same
pass), and :meth:`offload_step` is the fused phase of loss-scaled training:
unscale, skip on non-finite, clip by the global norm, step and copy in two
passes over the gradients.

Tensors may be contiguous or dense in another memory order (``channels_last``):
a parameter, its gradient and its state are then stepped over their memory,
which must hold them in one order (torch makes state and gradients so).
Refused with a clear error instead of silently copying: sparse gradients,
other non-contiguous tensors, non-CPU tensors, and ``foreach`` / ``fused`` /
``capturable`` / ``differentiable`` set to True (torch's own implementations
of those exist; this is a different one).

:class:`Muon` (torch.optim.Muon, with AdamW groups in the same optimizer)
and :class:`LBFGS` (torch.optim.LBFGS) follow torch's algorithms with their
own machinery (see their docstrings).

``import fastopt`` never imports torch; ``import fastopt.torch`` does.
"""
from __future__ import annotations

import math
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Optional, Union, overload

import numpy as np

try:
    import torch
except ModuleNotFoundError as e:  # say how to get it
    if e.name != "torch":
        raise
    raise ModuleNotFoundError("fastopt.torch needs PyTorch, which is not installed: pip install \"fastopt[torch]\" "
                              "(or install torch itself)", name="torch") from None

from . import _core
from ._typing import Array
from .optim import _precision_options, _tuple, _warn_if_nothing_to_round, state_shape

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT

#: A hyperparameter: a number, or (as torch allows) a one-element tensor.
Number = Union[float, torch.Tensor]
# State a refused or skipped step created: (state dict, key), key None for all of it.
_Created = list[tuple[dict[str, Any], Optional[str]]]

# (and a class per rule, generated below)
__all__ = ["AdamW", "Muon", "LBFGS"]

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
    return (torch._C.TensorBase, torch.strided, (torch.float32, torch.float64, torch.float16, torch.bfloat16),
            (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), _bfloat16()),
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


def _discard(created: _Created) -> None:
    """Remove the state a refused or skipped step created: (state, key) pairs, key None for all."""
    for state, key in created:
        if key is None:
            state.clear()
        else:
            state.pop(key, None)


class _Optimizer(torch.optim.Optimizer):
    """Shared machinery: state in torch's layout, one native step per call."""

    _rule = ""
    # torch's tuples of hyperparameters: {"betas": ("beta1", "beta2")}
    _tuples: dict[str, tuple[str, ...]] = {}
    # torch options accepted only at their default (these implementations are torch's own)
    _torch_only = {"foreach": (None, False), "fused": (None, False), "capturable": (False,),
                   "differentiable": (False,)}
    _uses_step_state = True  # keeps state["step"] as torch does

    def __init__(self, params: ParamsT, defaults: dict[str, Any], *, state_dtype: Union[str, torch.dtype] = "param",
                 stochastic_rounding: bool = False, seed: int = 0,
                 param_copies: Optional[dict[torch.Tensor, torch.Tensor]] = None) -> None:
        for key, allowed in self._torch_only.items():
            if key in defaults and defaults[key] not in allowed:
                raise ValueError(f"{key}={defaults[key]!r} is not supported by fastopt.{type(self).__name__} "
                                 f"(use torch.optim.{type(self).__name__} for it); leave it at its default")
        self._state_dtype, self.stochastic_rounding, self.seed = _precision_options(
            state_dtype, stochastic_rounding, seed)
        if param_copies is not None and not isinstance(param_copies, dict):
            raise TypeError("param_copies must be a dict {float32 parameter: float16/bfloat16 tensor}, got "
                            f"{type(param_copies).__name__}")
        self._copies = dict(param_copies or {})
        # (the state names each group needs, the native view)
        self._fastopt_view: Optional[tuple[list[tuple[str, ...]], _core.TorchView]] = None
        # Steps from several threads run one at a time: a step creates state in
        # Python and replaces the cached view around the native call.
        self._step_lock = threading.RLock()
        # Steps applied, counted natively: the step number stochastic rounding
        # hashes for parameters without state["step"] (SGD, Lion).
        self._rounding_counter = np.zeros((), np.int64)
        super().__init__(params, defaults)
        _LIVE.add(self)
        _warn_if_nothing_to_round(self.stochastic_rounding,
                                  [str(p.dtype).replace("torch.", "") for g in self.param_groups for p in g["params"]],
                                  type(self).__name__)

    # --- pickling (torch.optim.Optimizer pickles defaults, state and groups only) ---------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["fastopt_options"] = {"state_dtype": self._state_dtype, "stochastic_rounding": self.stochastic_rounding,
                                    "seed": self.seed, "param_copies": self._copies}
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
            values = _tuple(group[key], len(members), f"{key} ({', '.join(members)})")
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
        if self._state_dtype == "float32" and p.dtype in (torch.float16, torch.bfloat16):
            return torch.float32
        return p.dtype

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
        as a number (old checkpoints) becomes a tensor, as torch.optim.Adam makes it."""
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
                    if key in per_tensor:  # torch casts it to the parameter's dtype; it keeps its own
                        original = entry.get(key)
                        kept = original.dtype if isinstance(original, torch.Tensor) else None
                        wanted = kept if kept in (torch.float32, torch.float64) else _scalar_dtype()
                    if isinstance(value, torch.Tensor) and value.dtype != wanted:
                        original = entry.get(key)
                        source = original if isinstance(original, torch.Tensor) else value
                        state[key] = source.detach().to(dtype=wanted).contiguous().clone()

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
        if any(_is_dtensor(p) for group in self.param_groups for p in group["params"]):
            raise ValueError("offload_step takes the gradients' norm and skips on a non-finite one per process; with "
                             "DTensor (FSDP2) parameters each process holds a shard: use step() (with "
                             "clip_grad_norm_ and a GradScaler, which reduce across processes)")
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
        if self._fastopt_view is not None and self._fastopt_view[0] == needed_of:
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
            result = view.step(groups, self.state, hypers_of, seed, first_steps, **phase)
            if result is None:
                raise RuntimeError("fastopt.torch: a new view was stale at once (a parameter's gradient or state "
                                   "changed during the step?)")
            self._fastopt_view = (needed_of, view)
            if not result[0]:  # a non-finite gradient: the step changes nothing, state included
                _discard(created)
            return result
        except BaseException:
            # An exception after the native update (KeyboardInterrupt, say) must
            # not undo its state: the view says whether the tensors changed.
            if view is not None and view.stepped:
                self._fastopt_view = (needed_of, view)
            else:
                _discard(created)
            raise

    def _make_view(self, active: list[tuple[int, int, torch.Tensor]], needed_of: list[tuple[str, ...]],
                   created: _Created) -> tuple[_core.TorchView, list[int]]:
        """The native view over ``active`` [(group index, position, param)], creating missing
        state; and the step numbers its first step uses (None: the view's own)."""
        state_names = [s["name"] for s in _RULES[self._rule]["states"]]
        kinds = {s["name"]: s["shape"] for s in _RULES[self._rule]["states"]}
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


# --- what a rule's torch class adds to the generated one (the generator derives class X
# from _XBase when it is defined here): when torch creates state, and its checkpoints' keys.

class _SGDBase(_Optimizer):
    """Torch's state layout: ``state[p]["momentum_buffer"]`` when momentum is nonzero, created
    at the first step with momentum (whose update is undamped, as torch's); no ``"step"``."""

    _uses_step_state = False

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        pass  # the momentum buffer is created at the first step with momentum, as torch does

    def _prepare(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any], needed: set[str],
                 created: _Created) -> tuple[Optional[int], Optional[int]]:
        # The rule uses a step number only for dampening, whose first step is
        # undamped: as in torch, that is the step that creates the buffer.
        first = "momentum_buffer" in needed and "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = torch.zeros_like(p, dtype=self._state_dtype_for(p),
                                                        memory_format=torch.preserve_format)
            created.append((state, "momentum_buffer"))
        return (1 if first else 2), 2


class _AdamBase(_Optimizer):
    """``decoupled_weight_decay=True`` (per group, as in torch) is AdamW's decoupled weight decay."""

    _decoupled = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # checkpoints of torch before decoupled_weight_decay
            group.setdefault("decoupled_weight_decay", self._decoupled)


class _AdagradBase(_Optimizer):
    """State (``step``, ``sum``) is created at construction, as torch does. As in torch, every
    ``sum`` starts at the optimizer's ``initial_accumulator_value``: a param group's own value
    is kept in the group but not used (:class:`fastopt.optim.Adagrad` uses it)."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any], **options: Any) -> None:
        super().__init__(params, defaults, **options)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group, self.state[p])

    def _initial_value(self, group: dict[str, Any], name: str) -> Any:
        # torch.optim.Adagrad starts every sum at the optimizer's default, whatever the group says
        return _scalar(self.defaults[name], name)


class _LionBase(_Optimizer):
    """State: ``exp_avg`` (lion-pytorch's name), no ``"step"``. Defaults as DeepSpeed's CPU Lion."""

    _uses_step_state = False


# ---- generated by tools/generate_api.py from the rule registry; do not edit by hand ----


class SGD(_SGDBase):
    """``torch.optim.SGD`` on fastopt's kernels: Stochastic gradient descent with optional (Nesterov) momentum.

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

    Torch's state layout: ``state[p]["momentum_buffer"]`` when momentum is nonzero, created
    at the first step with momentum (whose update is undamped, as torch's); no ``"step"``.

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.001
        Learning rate, >= 0.
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
    foreach, differentiable, fused
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "sgd"

    def __init__(self, params: ParamsT, lr: Number = 0.001, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, differentiable: bool = False, fused: Optional[bool] = None,
                 **options: Any) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class Adagrad(_AdagradBase):
    """``torch.optim.Adagrad`` on fastopt's kernels: AdaGrad (Duchi et al. 2011).

    Update rule (``step`` counts from 1; ``sum_sq`` starts at ``initial_accumulator_value``)::

        g = g + weight_decay * p
        sum_sq += g * g
        p -= lr / (1 + (step - 1) * lr_decay) * g / (sqrt(sum_sq) + eps)

    State: ``step`` (a 0-d tensor, as torch keeps it), ``sum`` (``sum_sq`` above).

    State (``step``, ``sum``) is created at construction, as torch does. As in torch, every
    ``sum`` starts at the optimizer's ``initial_accumulator_value``: a param group's own value
    is kept in the group but not used (:class:`fastopt.optim.Adagrad` uses it).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.01
        Learning rate, >= 0.
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
    foreach, differentiable, fused
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "adagrad"

    def __init__(self, params: ParamsT, lr: Number = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, foreach: Optional[bool] = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: Optional[bool] = None,
                 **options: Any) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class RMSprop(_Optimizer):
    """``torch.optim.RMSprop`` on fastopt's kernels: RMSProp (Tieleman & Hinton 2012; eps outside the square root).

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

    State: ``step`` (a 0-d tensor, as torch keeps it), ``square_avg``, ``momentum_buffer`` (``momentum_buf`` above,
    with ``momentum``), ``grad_avg`` (with ``centered``).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.01
        Learning rate, >= 0.
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
    capturable, foreach, differentiable
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "rmsprop"

    def __init__(self, params: ParamsT, lr: Number = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, capturable: bool = False,
                 foreach: Optional[bool] = None, maximize: bool = False, differentiable: bool = False,
                 **options: Any) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
                        capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class Adam(_AdamBase):
    """``torch.optim.Adam`` on fastopt's kernels: Adam (Kingma & Ba 2015).

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

    State: ``step`` (a 0-d tensor, as torch keeps it), ``exp_avg`` (``m`` above), ``exp_avg_sq`` (``v`` above),
    ``max_exp_avg_sq`` (``max_v`` above, with ``amsgrad``).

    ``decoupled_weight_decay=True`` (per group, as in torch) is AdamW's decoupled weight decay.

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.001
        Learning rate, >= 0.
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
    foreach, capturable, differentiable, fused
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "adam"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: ParamsT, lr: Number = 0.001, betas: tuple[Number, Number] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *, foreach: Optional[bool] = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None, decoupled_weight_decay: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, foreach=foreach,
                        maximize=maximize, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class Lion(_LionBase):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms") on fastopt's kernels; torch.optim has
    none.

    Update rule (decoupled weight decay; ``sign(0) = 0``)::

        p *= 1 - lr * weight_decay
        p -= lr * sign(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g

    Defaults are those of DeepSpeed's CPU Lion and lion-pytorch. Every element
    moves by exactly ``lr`` (or 0), so Lion wants a learning rate 3-10x smaller
    than AdamW's and a weight decay 3-10x larger.

    State: ``exp_avg`` (``m`` above).

    State: ``exp_avg`` (lion-pytorch's name), no ``"step"``. Defaults as DeepSpeed's CPU Lion.

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.0001
        Learning rate, >= 0.
    betas : tuple of float, default (0.9, 0.99)
        (beta1, beta2). ``beta1``: interpolation between momentum and gradient in the update's sign, in [0, 1);
        ``beta2``: decay rate of the momentum, in [0, 1).
    weight_decay : float, default 0.0
        Decoupled weight decay, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "lion"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: ParamsT, lr: Number = 0.0001, betas: tuple[Number, Number] = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class Adamax(_Optimizer):
    """``torch.optim.Adamax`` on fastopt's kernels: Adamax (Kingma & Ba 2015, Adam with the infinity norm).

    Update rule (``step`` = t counts from 1)::

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        u = maximum(beta2 * u, abs(g) + eps)
        p -= lr / (1 - beta1**t) * m / u

    State: ``step`` (a 0-d tensor, as torch keeps it), ``exp_avg`` (``m`` above), ``exp_inf`` (``u`` above).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.002
        Learning rate, >= 0.
    betas : tuple of float, default (0.9, 0.999)
        (beta1, beta2). ``beta1``: decay rate of the first moment, in [0, 1); ``beta2``: decay rate of the infinity
        norm, in [0, 1).
    eps : float, default 1e-8
        Added to ``abs(g)``, >= 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    foreach, differentiable, capturable
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "adamax"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: ParamsT, lr: Number = 0.002, betas: tuple[Number, Number] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, foreach: Optional[bool] = None, *,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False,
                 **options: Any) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class RAdam(_Optimizer):
    """``torch.optim.RAdam`` on fastopt's kernels: RAdam (Liu et al. 2020, rectified Adam).

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

    State: ``step`` (a 0-d tensor, as torch keeps it), ``exp_avg`` (``m`` above), ``exp_avg_sq`` (``v`` above).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.001
        Learning rate, >= 0.
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
    foreach, capturable, differentiable
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "radam"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: ParamsT, lr: Number = 0.001, betas: tuple[Number, Number] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 foreach: Optional[bool] = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, foreach=foreach, maximize=maximize,
                        capturable=capturable, differentiable=differentiable)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class Adadelta(_Optimizer):
    """``torch.optim.Adadelta`` on fastopt's kernels: Adadelta (Zeiler 2012).

    Update rule::

        g = g + weight_decay * p
        square_avg = rho * square_avg + (1 - rho) * g * g
        delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta * delta
        p -= lr * delta

    State: ``step`` (a 0-d tensor, as torch keeps it), ``square_avg``, ``acc_delta``.

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 1.0
        Scale of the update, >= 0.
    rho : float, default 0.9
        Decay of the running averages, in [0, 1].
    eps : float, default 1e-6
        Added inside both square roots, >= 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    foreach, capturable, differentiable
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "adadelta"

    def __init__(self, params: ParamsT, lr: Number = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach: Optional[bool] = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach, capturable=capturable,
                        maximize=maximize, differentiable=differentiable)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class Rprop(_Optimizer):
    """``torch.optim.Rprop`` on fastopt's kernels: Rprop (Riedmiller & Braun 1993).

    Update rule, per element (``step_size`` starts at ``lr``)::

        s = g * prev
        f = etaplus where s > 0, etaminus where s < 0, 1 where s == 0
        step_size = clip(step_size * f, step_size_min, step_size_max)
        g = 0 where f == etaminus
        p -= sign(g) * step_size
        prev = g

    State: ``step`` (a 0-d tensor, as torch keeps it), ``prev``, ``step_size``.

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.01
        The step size every element starts at (not read by a step), >= 0.
    etas : tuple of float, default (0.5, 1.2)
        (etaminus, etaplus). ``etaminus``: factor of the step size where the gradient's sign flips, below 1, > 0;
        ``etaplus``: factor of the step size where it stays, above 1, > 0.
    step_sizes : tuple of float, default (1e-6, 50.0)
        (step_size_min, step_size_max). ``step_size_min``: smallest step size, >= 0; ``step_size_max``: largest step
        size, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    capturable, foreach, differentiable
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "rprop"
    _tuples = {"etas": ("etaminus", "etaplus"), "step_sizes": ("step_size_min", "step_size_max")}

    def __init__(self, params: ParamsT, lr: Number = 0.01, etas: tuple[Number, Number] = (0.5, 1.2),
                 step_sizes: tuple[Number, Number] = (1e-6, 50.0), *, capturable: bool = False,
                 foreach: Optional[bool] = None, maximize: bool = False, differentiable: bool = False,
                 **options: Any) -> None:
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class NAdam(_Optimizer):
    """``torch.optim.NAdam`` on fastopt's kernels: NAdam (Dozat 2016, Adam with Nesterov momentum).

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

    State: ``step`` (a 0-d tensor, as torch keeps it), ``exp_avg`` (``m`` above), ``exp_avg_sq`` (``v`` above),
    ``mu_product`` (one number per parameter).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.002
        Learning rate, >= 0.
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
    foreach, capturable, differentiable
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "nadam"
    _tuples = {"betas": ("beta1", "beta2")}

    def __init__(self, params: ParamsT, lr: Number = 0.002, betas: tuple[Number, Number] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 0.004,
                 decoupled_weight_decay: bool = False, *, foreach: Optional[bool] = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, foreach=foreach, maximize=maximize,
                        capturable=capturable, differentiable=differentiable)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class ASGD(_Optimizer):
    """``torch.optim.ASGD`` on fastopt's kernels: Averaged SGD (Polyak & Juditsky 1992).

    Update rule (``step`` = t counts from 1; ``eta`` and ``mu`` as they are before the step)::

        g = g + weight_decay * p
        p = p * (1 - lambd * eta) - eta * g
        ax = p                                   if mu == 1
        ax += (p - ax) * mu                      otherwise
        eta = lr / (1 + lambd * lr * t) ** alpha    (for the next step)
        mu = 1 / max(1, t - t0)

    State: ``step`` (a 0-d tensor, as torch keeps it), ``ax``, ``eta`` (one number per parameter), ``mu`` (one
    number per parameter).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.01
        Learning rate, >= 0.
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
    foreach, differentiable, capturable
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "asgd"

    def __init__(self, params: ParamsT, lr: Number = 0.01, lambd: float = 0.0001, alpha: float = 0.75,
                 t0: float = 1000000.0, weight_decay: float = 0.0, foreach: Optional[bool] = None,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False,
                 **options: Any) -> None:
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class Adafactor(_Optimizer):
    """``torch.optim.Adafactor`` on fastopt's kernels: Adafactor (Shazeer & Stern 2018).

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

    State: ``step`` (a 0-d tensor, as torch keeps it), ``row_var`` ((..., m, 1)), ``col_var`` ((..., 1, n)),
    ``variance`` (parameters of fewer than 2 dimensions).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.01
        The largest relative step size, and the weight decay's factor, >= 0.
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
    foreach
        torch's own implementations; accepted at their defaults only.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "adafactor"
    _tuples = {"eps": ("eps1", "eps2")}

    def __init__(self, params: ParamsT, lr: Number = 0.01, beta2_decay: float = -0.8,
                 eps: tuple[Optional[float], Number] = (None, 0.001), d: float = 1.0, weight_decay: float = 0.0, *,
                 foreach: Optional[bool] = None, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


class AdEMAMix(_Optimizer):
    """AdEMAMix (Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older") on fastopt's
    kernels; torch.optim has none.

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

    State: ``step`` (a 0-d tensor, as torch keeps it), ``exp_avg`` (``m`` above), ``exp_avg_slow`` (``m_slow``
    above), ``exp_avg_sq`` (``v`` above).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        Parameters or parameter groups, as torch.
    lr : float, default 0.001
        Learning rate, >= 0.
    betas : tuple of float, default (0.9, 0.999, 0.9999)
        (beta1, beta2, beta3). ``beta1``: decay rate of the fast first moment, in [0, 1); ``beta2``: decay rate of
        the second moment, in [0, 1); ``beta3``: decay rate of the slow first moment (after its warm-up), in [0, 1).
    alpha : float, default 5.0
        Weight of the slow first moment (after its warm-up), >= 0.
    t_alpha : float or None, default None
        Steps of alpha's linear warm-up; None: none, > 0, or None.
    t_beta3 : float or None, default None
        Steps of beta3's warm-up from beta1; None: none, > 0, or None.
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.01
        Decoupled weight decay, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    **options
        ``state_dtype``, ``stochastic_rounding``, ``seed``, ``param_copies``: see the module's description.
    """

    _rule = "ademamix"
    _tuples = {"betas": ("beta1", "beta2", "beta3")}

    def __init__(self, params: ParamsT, lr: Number = 0.001, betas: tuple[Number, Number, Number] = (0.9, 0.999, 0.9999),
                 alpha: float = 5.0, t_alpha: Optional[float] = None, t_beta3: Optional[float] = None,
                 eps: float = 1e-8, weight_decay: float = 0.01, *, maximize: bool = False, **options: Any) -> None:
        defaults = dict(lr=lr, betas=betas, alpha=alpha, t_alpha=t_alpha, t_beta3=t_beta3, eps=eps,
                        weight_decay=weight_decay, maximize=maximize)
        _core.check_hyperparameters(self._rule, self._rule_hypers(defaults))
        super().__init__(params, defaults, **options)


__all__ += ['SGD', 'Adagrad', 'RMSprop', 'Adam', 'Lion', 'Adamax', 'RAdam', 'Adadelta', 'Rprop', 'NAdam', 'ASGD',
            'Adafactor', 'AdEMAMix']
# ---- end of generated code ----


class AdamW(Adam):
    """``torch.optim.AdamW`` on fastopt's kernels: decoupled weight decay (default 1e-2).

    As torch's AdamW, this is :class:`Adam` with ``decoupled_weight_decay=True``.
    """

    _decoupled = True

    def __init__(self, params: ParamsT, lr: Number = 1e-3, betas: tuple[Number, Number] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, capturable: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None, **options: Any) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True, **options)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # as torch.optim.AdamW: loaded state stays decoupled
            group["decoupled_weight_decay"] = True


# ----------------------------------------------------------------------------------------- Muon

_NS_DTYPES = (torch.bfloat16, torch.float16, torch.float32, torch.float64)


def _zeropower(X: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float) -> torch.Tensor:
    """Newton–Schulz orthogonalization of one matrix X (1, A, B) with torch.optim.Muon's very
    operations (so the result is bitwise torch's), the products on torch's BLAS."""
    a, b, c = coefficients
    transposed = X.size(-2) > X.size(-1)   # iterate on the wide form: the Gram matrix is the small one
    Y = X[0].T if transposed else X[0]
    Y = Y / Y.norm().clamp(min=eps)
    for _ in range(steps):
        gram = Y @ Y.T
        gram_update = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        Y = torch.addmm(Y, gram_update, Y, beta=a)
    return (Y.T if transposed else Y).unsqueeze(0)


class _NewtonSchulzBatch:
    """The buffers of a batch of k same-shape matrices orthogonalized together, kept
    between steps: a fresh tensor of tens of megabytes costs its page faults at every
    use (the allocator returns such blocks to the system), which here cost as much as
    the products themselves."""

    def __init__(self, k: int, rows: int, cols: int, dtype: torch.dtype) -> None:
        self.transposed = rows > cols
        m, n = (cols, rows) if self.transposed else (rows, cols)   # the wide form: m <= n
        self.X = torch.empty(k, m, n, dtype=dtype)
        self.other = torch.empty(k, m, n, dtype=dtype)
        self.gram = torch.empty(k, m, m, dtype=dtype)
        self.gram_update = torch.empty(k, m, m, dtype=dtype)

    def matrix(self, j: int) -> torch.Tensor:
        """Where matrix j of the batch is written (rows × cols: a view of the buffer)."""
        return self.X[j].T if self.transposed else self.X[j]

    def load(self, j: int, matrix: torch.Tensor) -> None:
        """Matrix j of the batch (rows × cols, any dtype), converted into the buffer."""
        self.matrix(j).copy_(matrix)

    def orthogonalize(self, coefficients: tuple[float, float, float], steps: int, eps: float) -> torch.Tensor:
        """The batch's Newton–Schulz iteration (torch's, batched); (k, rows, cols), a view."""
        a, b, c = coefficients
        X, other = self.X, self.other
        X.div_(X.norm(dim=(-2, -1), keepdim=True).clamp_(min=eps))
        for _ in range(steps):
            torch.bmm(X, X.mT, out=self.gram)
            torch.baddbmm(self.gram, self.gram, self.gram, beta=b, alpha=c, out=self.gram_update)
            torch.baddbmm(X, self.gram_update, X, beta=a, out=other)
            X, other = other, X
        self.X, self.other = X, other
        return X.mT if self.transposed else X


def _check_dense(t: Any, name: str, written: bool) -> None:
    """A Muon step's tensor: a dense floating-point CPU tensor (written ones without the
    negation bit, and not inference tensors outside inference mode); else TypeError / ValueError."""
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


def _overlap(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two strided tensors' memory ranges intersect (a conservative test)."""
    if a.numel() == 0 or b.numel() == 0:
        return False

    def span(t: torch.Tensor) -> tuple[int, int]:
        lo = hi = t.data_ptr()
        for size, stride in zip(t.shape, t.stride()):
            (lo, hi) = (lo + (size - 1) * stride * t.element_size(), hi) if stride < 0 else \
                (lo, hi + (size - 1) * stride * t.element_size())
        return lo, hi + t.element_size()

    (a0, a1), (b0, b1) = span(a), span(b)
    return a0 < b1 and b0 < a1


def _muon_matrix(shape: Any) -> tuple[int, int]:
    """The matrix a weight is orthogonalized as: (shape[0], the product of the rest)."""
    return int(shape[0]), int(math.prod(shape[1:]))


def _check_muon_group(group: dict[str, Any]) -> None:
    """torch.optim.Muon's checks of a group's hyperparameters (and a few it leaves to the step)."""
    lr = _scalar(group["lr"], "lr")
    for key in ("lr", "momentum", "weight_decay", "eps"):
        value = lr if key == "lr" else group[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < math.inf:
            raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
    if not isinstance(group["nesterov"], bool):
        raise TypeError(f"nesterov must be a bool, got {type(group['nesterov']).__name__}")
    steps = group["ns_steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps < 100:
        raise ValueError(f"ns_steps must be an int in [0, 100), got {steps!r}")
    coefficients = group["ns_coefficients"]
    if (not isinstance(coefficients, (tuple, list)) or len(coefficients) != 3
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                       for x in coefficients)):
        raise ValueError(f"ns_coefficients must be three finite numbers (a, b, c), got {coefficients!r}")
    if group["adjust_lr_fn"] not in (None, "original", "match_rms_adamw"):
        raise ValueError(f"adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got {group['adjust_lr_fn']!r}")


class Muon(_Optimizer):
    """``torch.optim.Muon`` (Jordan et al. 2024) on CPU tensors, with AdamW for the other parameters.

    For each matrix with a gradient (``t`` counts steps)::

        buf = momentum * buf + (1 - momentum) * g              (torch's lerp)
        u = (1 - momentum) * g + momentum * buf  if nesterov, else buf
        O = NewtonSchulz(u)                                     (≈ U·Vᵀ of u's SVD U·S·Vᵀ)
        p *= 1 - lr * weight_decay
        p -= adjusted_lr * O,    adjusted_lr = lr·sqrt(max(1, A/B))         ("original", the default)
                                          or lr·0.2·sqrt(max(A, B))          ("match_rms_adamw")

    The Newton–Schulz iteration (``ns_steps`` quintic steps with
    ``ns_coefficients``, after dividing by the Frobenius norm clamped at
    ``eps``) is torch's, in ``ns_dtype`` (bfloat16 as torch; float32 or
    float64 for a more exact orthogonalization), its matrix products on
    torch's BLAS. Beyond torch.optim.Muon:

    - **Weights of any dimension >= 2**: a convolution kernel (out, in, kh, kw)
      is orthogonalized as the matrix (out, in·kh·kw), as in Keller Jordan's
      reference implementation; A×B above is that matrix's shape.
    - **Same-shape matrices are orthogonalized together**: the matrices of a
      parameter group with the same shape go through the iteration as one
      batch (batched matrix products instead of one small product each).
    - **One optimizer for the whole model**: a parameter group with
      ``use_muon=False`` is stepped with AdamW (torch's AdamW: ``lr``,
      ``betas``, ``eps``, ``weight_decay``; defaults ``betas=adamw_betas``,
      ``eps=adamw_eps``, as the Muon authors' ``MuonWithAuxAdam``) on
      fastopt's fused kernel — for embeddings, the output head, norms and
      biases. Its state is torch's AdamW state (``step``, ``exp_avg``,
      ``exp_avg_sq``); a Muon parameter's is ``momentum_buffer``.

    ``state_dtype``, ``stochastic_rounding``, ``seed`` and ``param_copies``
    apply to the AdamW groups (``state_dtype="float32"`` also keeps the
    momentum buffer of 16-bit Muon parameters in float32). Under
    ``torch.amp.GradScaler`` a step with an inf or NaN gradient is skipped and
    the gradients are unscaled as they are read. ZeroRedundancyOptimizer
    shards whole tensors, so each matrix is orthogonalized on one rank.

    Parameters
    ----------
    params : iterable of tensors or dicts
        Parameter groups; a group's ``use_muon`` (default True) chooses Muon or AdamW.
    lr : float, default 1e-3
    weight_decay : float, default 0.1
        Decoupled: ``p *= 1 - lr * weight_decay``.
    momentum : float, default 0.95
    nesterov : bool, default True
    ns_coefficients : tuple of 3 floats, default (3.4445, -4.7750, 2.0315)
    eps : float, default 1e-7
        Muon groups: the clamp of the norm the iteration starts by dividing by.
    ns_steps : int, default 5
    adjust_lr_fn : {None, "original", "match_rms_adamw"}, default None ("original")
    adamw_betas : tuple of 2 floats, default (0.9, 0.95)
        ``betas`` of a ``use_muon=False`` group that sets none.
    adamw_eps : float, default 1e-10
        ``eps`` of a ``use_muon=False`` group that sets none.
    ns_dtype : torch.dtype, default torch.bfloat16
        The dtype of the Newton–Schulz iteration.
    """

    _uses_step_state = True

    def __init__(self, params: ParamsT, lr: Number = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
                 eps: float = 1e-7, ns_steps: int = 5, adjust_lr_fn: Optional[str] = None, *,
                 adamw_betas: tuple[float, float] = (0.9, 0.95), adamw_eps: float = 1e-10,
                 ns_dtype: torch.dtype = torch.bfloat16, **options: Any) -> None:
        if ns_dtype not in _NS_DTYPES:
            raise TypeError(f"ns_dtype must be one of {', '.join(map(str, _NS_DTYPES))}, got {ns_dtype!r}")
        self._ns_dtype = ns_dtype
        self._ns_batches: dict[tuple[int, int, int, torch.dtype], _NewtonSchulzBatch] = {}
        self._adamw_defaults = {"betas": adamw_betas, "eps": adamw_eps}
        _core.check_hyperparameters(
            "adam", _Optimizer._rule_hypers(self, {"lr": lr, "betas": adamw_betas, "eps": adamw_eps}))
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn,
                        use_muon=True)
        _check_muon_group(defaults)
        super().__init__(params, defaults, **options)
        muon_params = {p for g in self.param_groups if g["use_muon"] for p in g["params"]}
        if any(p in muon_params for p in self._copies):
            raise ValueError("param_copies: a Muon parameter has a copy; copies are written for the AdamW "
                             "(use_muon=False) groups only")

    _rule = "adam"  # the AdamW groups' rule: AdamW is torch's Adam with decoupled_weight_decay=True
    _tuples = {"betas": ("beta1", "beta2")}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["fastopt_options"]["muon"] = {"ns_dtype": self._ns_dtype, "adamw": self._adamw_defaults}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        muon = state.get("fastopt_options", {}).pop("muon", None)
        super().__setstate__(state)
        if muon is not None:
            self._ns_dtype, self._adamw_defaults = muon["ns_dtype"], muon["adamw"]
        self._ns_batches = {}
        for group in self.param_groups:  # a torch.optim.Muon checkpoint: every group is Muon's
            group.setdefault("use_muon", True)

    def _native_group(self, group: dict[str, Any]) -> bool:
        return not group.get("use_muon", True)

    def _rule_hypers(self, group: dict[str, Any]) -> dict[str, Any]:
        hypers = super()._rule_hypers(group)
        hypers["decoupled_weight_decay"] = True
        return hypers

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if isinstance(param_group, dict) and param_group.get("use_muon", True) is False:
            param_group = {**self._adamw_defaults, **param_group}
        torch.optim.Optimizer.add_param_group(self, param_group)
        group = self.param_groups[-1]
        try:
            if not isinstance(group["use_muon"], bool):
                raise TypeError(f"use_muon must be a bool, got {type(group['use_muon']).__name__}")
            if group["use_muon"]:
                _check_muon_group(group)
                for i, p in enumerate(group["params"]):
                    if p.dim() < 2:
                        raise ValueError(
                            f"param_groups[{len(self.param_groups) - 1}]['params'][{i}] has {p.dim()} dimension(s): "
                            "Muon orthogonalizes matrices (and weights of more dimensions); put vectors and "
                            "scalars in a group with use_muon=False (AdamW)")
            else:
                _core.check_hyperparameters(self._rule, self._rule_hypers(group))
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise

    def offload_step(self, *, grad_scale: Number = 1.0, max_norm: Optional[Number] = None) -> tuple[bool, float]:
        raise NotImplementedError("fastopt.torch.Muon has no fused offload phase; unscale and clip the gradients "
                                  "(or use torch.amp.GradScaler) and call step()")

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:  # type: ignore[override]
        """One step: Muon for the ``use_muon`` groups, AdamW (fused, native) for the others.

        Every Muon group's hyperparameters, parameters and gradients are
        checked, then the native AdamW step runs (its own checks first), then
        the Muon updates: a TypeError or ValueError changes nothing.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        found_inf = getattr(self, "found_inf", None)
        if found_inf is not None and float(found_inf) != 0.0:
            return loss
        grad_scale = getattr(self, "grad_scale", None)
        unscale = 1.0
        if grad_scale is not None:
            scale = float(grad_scale)
            if not (math.isfinite(scale) and scale > 0.0):
                raise ValueError(f"grad_scale (GradScaler's loss scale) must be finite and > 0, got {scale}")
            unscale = 1.0 / scale
        with self._step_lock:
            work = self._muon_work()
            self._run_locked({"grad_scale": unscale})
            used: set[tuple[int, int, int, torch.dtype]] = set()
            for group, params in work:
                used |= self._muon_group_step(group, params, unscale)
            # Buffers of batches this step did not have (the parameters with gradients changed) go.
            for key in set(self._ns_batches) - used:
                del self._ns_batches[key]
        return loss

    def _muon_work(self) -> list[tuple[dict[str, Any], list[torch.Tensor]]]:
        """The Muon groups and their parameters with gradients, every one checked."""
        work = []
        for gi, group in enumerate(self.param_groups):
            if not group.get("use_muon", True):
                continue
            _check_muon_group(group)
            params = []
            for pi, p in enumerate(group["params"]):
                g = p.grad
                if g is None:
                    continue
                name = f"param_groups[{gi}]['params'][{pi}]"
                if p.dim() < 2:
                    raise ValueError(f"{name} has {p.dim()} dimension(s); Muon orthogonalizes matrices")
                _check_dense(p, name, written=True)
                _check_dense(g, f"the gradient of {name}", written=False)
                if g.shape != p.shape:
                    raise ValueError(f"the gradient of {name} has shape {tuple(g.shape)}; expected the "
                                     f"parameter's {tuple(p.shape)}")
                state = self.state[p]
                if not isinstance(state, dict):
                    raise TypeError(f"opt.state[{name}] must be a dict, got {type(state).__name__}")
                if "momentum_buffer" in state:
                    buf = state["momentum_buffer"]
                    what = f"state['momentum_buffer'] of {name}"
                    _check_dense(buf, what, written=True)
                    if buf.shape != p.shape:
                        raise ValueError(f"{what} has shape {tuple(buf.shape)}; expected the parameter's "
                                         f"{tuple(p.shape)}")
                    for other, other_name in ((p, name), (g, f"the gradient of {name}")):
                        if _overlap(buf, other):
                            raise ValueError(f"{what} and {other_name} share memory; the buffer is written")
                if _overlap(p, g):
                    raise ValueError(f"{name} and its gradient share memory; the parameter is written")
                params.append(p)
            if params:
                work.append((group, params))
        return work

    def _muon_group_step(self, group: dict[str, Any], params: list[torch.Tensor],
                         unscale: float) -> set[tuple[int, int, int, torch.dtype]]:
        """One Muon step of a group's parameters with gradients; returns the batch buffers it used."""
        used = set()
        lr, weight_decay, momentum = _scalar(group["lr"], "lr"), group["weight_decay"], group["momentum"]
        # torch.optim.Muon keeps a tensor lr a tensor: its products with lr run in lr's dtype.
        lr_tensor = group["lr"] if isinstance(group["lr"], torch.Tensor) else None

        def times_lr(factor: float) -> float:
            return float(lr_tensor * factor) if lr_tensor is not None else lr * factor
        new = {p: torch.zeros_like(p, dtype=self._state_dtype_for(p), memory_format=torch.preserve_format)
               for p in params if "momentum_buffer" not in self.state[p]}
        for p, buf in new.items():
            self.state[p]["momentum_buffer"] = buf
        bufs = [self.state[p]["momentum_buffer"] for p in params]
        grads = [p.grad.resolve_neg().to(b.dtype) for p, b in zip(params, bufs)]  # type: ignore[union-attr]
        if unscale != 1.0:
            grads = [g * unscale for g in grads]
        torch._foreach_lerp_(bufs, grads, 1 - momentum)
        nesterov = group["nesterov"]

        def update_into(i: int, out: torch.Tensor, shape: tuple[int, int]) -> None:
            # u = lerp(g, buf, momentum) with nesterov, else buf; written (converted) into out
            if nesterov:
                torch.lerp(grads[i].reshape(shape), bufs[i].reshape(shape), momentum, out=out)
            else:
                out.copy_(bufs[i].reshape(shape))

        # Same-shape matrices are orthogonalized as one batch.
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, p in enumerate(params):
            by_shape.setdefault(_muon_matrix(p.shape), []).append(i)
        decay = float(1 - lr_tensor * weight_decay) if lr_tensor is not None else 1 - lr * weight_decay
        torch._foreach_mul_(params, decay)
        coefficients = tuple(float(x) for x in group["ns_coefficients"])
        for (rows, cols), index in by_shape.items():
            if len(index) == 1:
                i = index[0]
                u = torch.lerp(grads[i], bufs[i], momentum) if nesterov else bufs[i]
                X = u.reshape(1, rows, cols).to(self._ns_dtype)
                O = _zeropower(X, coefficients, group["ns_steps"], group["eps"])  # type: ignore[arg-type]
            else:
                key = (len(index), rows, cols, self._ns_dtype)
                used.add(key)
                batch = self._ns_batches.get(key)
                if batch is None:
                    batch = self._ns_batches[key] = _NewtonSchulzBatch(len(index), rows, cols, self._ns_dtype)
                for j, i in enumerate(index):
                    update_into(i, batch.matrix(j), (rows, cols))
                O = batch.orthogonalize(coefficients, group["ns_steps"], group["eps"])  # type: ignore[arg-type]
            if group["adjust_lr_fn"] == "match_rms_adamw":
                adjusted = times_lr(0.2 * math.sqrt(max(rows, cols)))
            else:
                adjusted = times_lr(math.sqrt(max(1, rows / cols)))
            torch._foreach_add_([params[i] for i in index],
                                [O[j].reshape(params[i].shape) for j, i in enumerate(index)], alpha=-adjusted)
        return used


# ---------------------------------------------------------------------------------------- LBFGS

def _cubic_interpolate(x1: Any, f1: Any, g1: Any, x2: Any, f2: Any, g2: Any,
                       bounds: Optional[tuple[Any, Any]] = None) -> Any:
    """The minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), within bounds (torch's)."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square.sqrt() if isinstance(d2_square, torch.Tensor) else math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func: Callable[[list[torch.Tensor], float, torch.Tensor], tuple[float, torch.Tensor]],
                  x: list[torch.Tensor], t: Any, d: torch.Tensor, f: float, g: torch.Tensor, gtd: Any,
                  c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                  max_ls: int = 25) -> tuple[float, torch.Tensor, Any, int]:
    """torch.optim.LBFGS's strong-Wolfe line search (bracketing, then cubic zoom), step by step."""
    # The scalars stay what torch keeps them (0-d tensors of the parameters' dtype), so that a
    # float32 run takes the same branches as torch's.
    d_norm = d.abs().max()
    g = g.clone(memory_format=torch.contiguous_format)
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)
    t_prev: Any = 0
    f_prev, g_prev, gtd_prev = f, g, gtd
    done = False
    ls_iter = 0
    bracket: list[Any] = []
    bracket_f: list[float] = []
    bracket_g: list[torch.Tensor] = []
    bracket_gtd: list[Any] = []
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.clone(memory_format=torch.contiguous_format)], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.clone(memory_format=torch.contiguous_format)], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev = tmp, f_new
        g_prev = g_new.clone(memory_format=torch.contiguous_format)
        gtd_prev = gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[low_pos] = gtd_new
    t = bracket[low_pos]
    return bracket_f[low_pos], bracket_g[low_pos], t, ls_func_evals


def _loss_value(loss: Any) -> float:
    """The closure's loss as a number (a tensor that requires grad is read detached)."""
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


class LBFGS(torch.optim.Optimizer):
    """``torch.optim.LBFGS`` with the two-loop recursion in fastopt's native code.

    Full-batch L-BFGS (Nocedal & Wright, Alg. 7.4/7.5), torch's algorithm step
    for step: ``step(closure)`` runs up to ``max_iter`` iterations, each with
    direction ``d = -H·g`` from the last ``history_size`` correction pairs
    (s = x_new - x, y = g_new - g, kept when y·s > 1e-10) and initial scaling
    ``H_diag = y·s / y·y``, then a fixed step ``lr`` (the first iteration:
    ``min(1, 1/sum(abs(g)))·lr``) or torch's strong-Wolfe line search
    (``line_search_fn="strong_wolfe"``); it stops on ``tolerance_grad``
    (``max(abs(g))``), ``tolerance_change`` (step, loss change) or ``max_eval``.

    The recursion — 4·history passes over the flattened parameters in
    torch.optim.LBFGS, the cost of a step beside the closure on a large model —
    is one native call with one fused pass per pair and loop, threaded, its
    dot products in double with a fixed order (the same for any thread count
    and ISA). The state (``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``,
    ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``, ``n_iter``,
    ``func_evals``) is torch's, so checkpoints move both ways. float32 and
    float64 parameters, all of one dtype, on the CPU; one parameter group, as
    torch.

    Parameters
    ----------
    params : iterable of tensors
    lr : float, default 1
    max_iter : int, default 20
        Iterations per ``step``.
    max_eval : int, optional
        Closure evaluations per ``step`` (default ``max_iter * 5 // 4``).
    tolerance_grad : float, default 1e-7
    tolerance_change : float, default 1e-9
    history_size : int, default 100
    line_search_fn : {None, "strong_wolfe"}, default None
    """

    def __init__(self, params: ParamsT, lr: Number = 1, max_iter: int = 20, max_eval: Optional[int] = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: Optional[str] = None) -> None:
        lr_value = _scalar(lr, "lr")
        if isinstance(lr_value, bool) or not isinstance(lr_value, (int, float)) or not 0.0 <= lr_value < math.inf:
            raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        for key, count in (("max_iter", max_iter), ("max_eval", max_eval), ("history_size", history_size)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"{key} must be an int >= 1, got {count!r}")
        for key, tolerance in (("tolerance_grad", tolerance_grad), ("tolerance_change", tolerance_change)):
            if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
                raise ValueError(f"{key} must be a number >= 0, got {tolerance!r}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params: list[torch.Tensor] = self.param_groups[0]["params"]
        dtypes = {p.dtype for p in self._params}
        if len(dtypes) > 1 or not dtypes <= {torch.float32, torch.float64}:
            raise TypeError(f"fastopt.torch.LBFGS steps float32 or float64 parameters of one dtype, got "
                            f"{sorted(map(str, dtypes))}")
        for i, p in enumerate(self._params):
            _check_dense(p, f"param_groups[0]['params'][{i}]", written=True)
        self._numel_cache: Optional[int] = None

    def _numel(self) -> int:
        if self._numel_cache is None:
            self._numel_cache = sum(p.numel() for p in self._params)
        return self._numel_cache

    def _gather_flat_grad(self) -> torch.Tensor:
        views = []
        for i, p in enumerate(self._params):
            g = p.grad
            if g is None:
                views.append(p.new_zeros(p.numel()))
                continue
            name = f"the gradient of param_groups[0]['params'][{i}]"
            _check_dense(g, name, written=False)
            if g.shape != p.shape:
                raise ValueError(f"{name} has shape {tuple(g.shape)}; expected {tuple(p.shape)}")
            views.append(g.resolve_neg().reshape(-1).to(p.dtype))
        return torch.cat(views, 0) if views else torch.zeros(0)

    def _add_grad(self, step_size: Any, update: torch.Tensor) -> None:
        offset = 0
        for p in self._params:
            numel = p.numel()
            p.add_(update[offset:offset + numel].view_as(p), alpha=step_size)
            offset += numel

    def _clone_param(self) -> list[torch.Tensor]:
        return [p.clone(memory_format=torch.contiguous_format) for p in self._params]

    def _set_param(self, params_data: list[torch.Tensor]) -> None:
        for p, pdata in zip(self._params, params_data):
            p.copy_(pdata)

    def _directional_evaluate(self, closure: Callable[[], Any], x: list[torch.Tensor], t: Any,
                              d: torch.Tensor) -> tuple[float, torch.Tensor]:
        self._add_grad(t, d)
        loss = _loss_value(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def _direction(self, flat_grad: torch.Tensor, old_dirs: list[torch.Tensor], old_stps: list[torch.Tensor],
                   ro: list[Any], H_diag: Any, al: list[Any]) -> torch.Tensor:
        """d = -H·g by the two-loop recursion, natively; al[i] set as torch sets it."""
        d = torch.empty_like(flat_grad)
        name = "L-BFGS's history"
        values = _core.lbfgs_direction(_as_numpy(flat_grad, "the flattened gradient"),
                                       [_as_numpy(s, name) for s in old_stps], [_as_numpy(y, name) for y in old_dirs],
                                       [float(r) for r in ro], float(H_diag), _as_numpy(d, "the direction"))
        for i, a in enumerate(values):
            al[i] = torch.tensor(a, dtype=flat_grad.dtype)
        return d

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Up to ``max_iter`` L-BFGS iterations; ``closure()`` re-evaluates the model and
        returns the loss (required). Returns the loss of the first evaluation."""
        if closure is None or not callable(closure):
            raise TypeError("LBFGS.step needs a closure that re-evaluates the model and returns the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr = _scalar(group["lr"], "lr")
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss = closure()
        loss = _loss_value(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if flat_grad.abs().max() <= tolerance_grad:
            return orig_loss

        d = state.get("d")
        t = state.get("t")
        old_dirs = state.get("old_dirs")
        old_stps = state.get("old_stps")
        ro = state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad = state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = flat_grad.neg()
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad.sub(prev_flat_grad)
                s = d.mul(t)
                ys = y.dot(s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)
                if "al" not in state:
                    state["al"] = [None] * history_size
                d = self._direction(flat_grad, old_dirs, old_stps, ro, H_diag, state["al"])

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone(memory_format=torch.contiguous_format)
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss

            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr
            else:
                t = lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()

                def obj_func(x: list[torch.Tensor], t: Any, d: torch.Tensor) -> tuple[float, torch.Tensor]:
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd,
                                                                  max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = flat_grad.abs().max() <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    with torch.enable_grad():
                        loss = _loss_value(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = flat_grad.abs().max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if d.mul(t).abs().max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state["d"] = d
        state["t"] = t
        state["old_dirs"] = old_dirs
        state["old_stps"] = old_stps
        state["ro"] = ro
        state["H_diag"] = H_diag
        state["prev_flat_grad"] = prev_flat_grad
        state["prev_loss"] = prev_loss
        return orig_loss
