"""Stateful multi-tensor optimizers with ``torch.optim``'s arguments and defaults.

``params`` is a list or dict of NumPy arrays, updated in place. A step over all
of them is one native call: the arrays are checked once at construction, and
per step only the gradients (unless registered with ``grads=``). Hyperparameters
live in ``param_groups[0]`` (one group) and may change between steps; ``opt.lr``
is a shortcut for ``param_groups[0]["lr"]``. ``lr`` may also be a schedule from
:mod:`fastopt.schedules` (any callable ``t -> lr``): before each step the
optimizer sets ``lr = schedule(step_count)``. Every optimizer takes torch's
``maximize=False`` (keyword-only): ``True`` steps on ``-g``.

Example
-------
>>> import numpy as np
>>> from fastopt.optim import Adam
>>> W = np.zeros((3073, 10), np.float32); dW = np.ones_like(W)
>>> opt = Adam([W], lr=1e-3)
>>> opt.step([dW])
True
"""
import numbers
import threading

import numpy as np

from . import _core

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Lion"]

# The native registry of update rules: name -> {"hypers": [...], "states": [...], ...}.
RULES = {rule["name"]: rule for rule in _core.rules()}


def _split_lr(lr):
    """A schedule (callable) passed as lr: the first lr, and the schedule."""
    if callable(lr):
        return lr(0), lr
    return lr, None


def _as_tuple(params, name):
    """The arrays of a list, tuple or dict, as a tuple, and the dict's keys (or None)."""
    if isinstance(params, dict):
        return tuple(params.values()), list(params.keys())
    if isinstance(params, np.ndarray):
        raise TypeError(f"{name} must be a list or dict of arrays, not a single array; wrap it: [{name}]")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"{name} must be a list or dict of numpy arrays, got {type(params).__name__}")
    return tuple(params), None


def _step_count(value, where):
    """A saved step count: an int >= 0 (Python or NumPy integer, or a 0-d integer array)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where} must be an int, got {type(value).__name__}")
    if not 0 <= value < 2**63 - 1:
        raise ValueError(f"{where} must be in [0, 2**63 - 1), got {value}")
    return int(value)


class Optimizer:
    """Base class: arrays, state, ``state_dict`` / ``load_state_dict``.

    A subclass names its rule of the native registry (``_rule``) and maps its
    torch-style hyperparameters to the rule's (``_rule_hypers``; the default
    passes them through, Adam's splits ``betas``). Which state buffers exist,
    their names, initial values, validation and the step itself all come from
    the registry.
    """

    _rule = None

    def __init__(self, params, defaults, grads=None, schedule=None):
        # Serializes step / train_linear / state_dict / load_state_dict: an
        # optimizer used from two threads at once runs their calls one at a time
        # (re-entrant, so a signal handler inside a long run gets a clear
        # RuntimeError from the native side instead of a deadlock).
        self._lock = threading.RLock()
        self._check_hyperparameters(defaults)
        self.schedule = schedule
        self.params, self._keys = _as_tuple(params, "params")
        if not self.params:
            raise ValueError("params is an empty list: nothing to optimize")
        _core.TensorGroup.check_params(self.params, self._keys)
        if grads is not None:
            _, grad_keys = _as_tuple(grads, "grads")
            if (grad_keys is None) != (self._keys is None):
                raise TypeError("grads must have the same structure (list or dict) as params")
        self.defaults = dict(defaults)
        self.param_groups = [dict(defaults)]
        self._step = 0
        hypers = self._rule_hypers(self.defaults)
        initial = {s["name"]: s["initial"] for s in RULES[self._rule]["states"]}
        # Tuples: the native group holds these very arrays, so entries cannot be replaced.
        self.state = {}
        for name in _core.needed_states(self._rule, hypers):
            start = 0.0 if initial[name] is None else float(hypers[initial[name]])
            self.state[name] = tuple(np.full_like(p, start) for p in self.params)
        self._grads = grads
        self._group = _core.TensorGroup(self._rule, self.params, self.state, grads, self._keys)

    def _rule_hypers(self, h):
        """The registry's hyperparameters from a param group ``h`` (torch's names)."""
        return {k: v for k, v in h.items() if k != "params"}

    def _check_hyperparameters(self, h):
        """TypeError / ValueError naming the first invalid hyperparameter of group ``h``."""
        _core.check_hyperparameters(self._rule, self._rule_hypers(h))

    def _native_step(self, grads, h, step, skip):
        return self._group.step(self._rule_hypers(h), step, grads, skip)

    def _native_settings(self):
        """The rule and its hyperparameters, for loops that step in native code."""
        return {"rule": self._rule, "hypers": self._rule_hypers(self.param_groups[0])}

    @property
    def lr(self):
        """Learning rate of the next step (``param_groups[0]["lr"]``)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        self._check_hyperparameters(dict(self.param_groups[0], lr=value))
        self.param_groups[0]["lr"] = value

    @property
    def step_count(self):
        """Number of steps taken so far."""
        return self._step

    def step(self, grads=None, *, skip_if_nonfinite=False):
        """Update every parameter in place with one native call.

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
        with self._lock:
            if self.schedule is not None:
                self.param_groups[0]["lr"] = self.schedule(self._step)
            applied = self._native_step(grads, self.param_groups[0], self._step + 1, skip_if_nonfinite)
            if applied:
                self._step += 1
            return applied

    def _planned_lrs(self, updates):
        """The lr of the next ``updates`` steps as :meth:`step` would set it: the
        group's lr (one value for all), or the schedule's values as a list."""
        if self.schedule is None:
            return self.param_groups[0]["lr"]
        return [self.schedule(t) for t in range(self._step, self._step + updates)]

    def _record_native_steps(self, updates, lrs):
        """Account for ``updates`` steps taken in native code with learning rates ``lrs``."""
        self._step += updates
        if self.schedule is not None and updates:
            self.param_groups[0]["lr"] = lrs[updates - 1]

    def zero_grad(self):
        """Fill the registered gradient buffers with zeros."""
        if self._grads is None:
            return
        for g in (self._grads.values() if isinstance(self._grads, dict) else self._grads):
            g.fill(0)

    def state_dict(self):
        """A copy of the optimizer's state, in ``torch.optim``'s layout.

        ``{"state": {i: {"step": int, <buffer name>: ndarray, ...}}, "param_groups": [{...,
        "params": [0, 1, ...]}]}``. Arrays are copies; :meth:`load_state_dict`
        restores them bitwise.
        """
        with self._lock:
            state = {}
            for i in range(len(self.params)):
                entry = {"step": self._step}
                for name, arrays in self.state.items():
                    entry[name] = arrays[i].copy()
                state[i] = entry
            group = dict(self.param_groups[0])
            group["params"] = list(range(len(self.params)))
            return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict):
        """Restore a state saved by :meth:`state_dict`.

        Everything is checked before anything changes, with the constructor's
        checks for the hyperparameters: a TypeError or ValueError naming the
        entry leaves the optimizer as it was.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
            raise ValueError("state_dict must have exactly one dict in 'param_groups'")
        group = dict(groups[0])
        if list(group.pop("params", [])) != list(range(len(self.params))):
            raise ValueError(f"state_dict is for a different number of parameters "
                             f"(this optimizer has {len(self.params)})")
        if set(group) != set(self.param_groups[0]):
            raise ValueError(f"state_dict param_groups keys {sorted(group)} do not match "
                             f"{sorted(self.param_groups[0])}")
        self._check_hyperparameters(group)
        state = state_dict.get("state")
        if not isinstance(state, dict):
            raise ValueError("state_dict has no 'state' dict")
        steps = set()
        saved = {}
        for i, p in enumerate(self.params):
            entry = state.get(i)
            if not isinstance(entry, dict):
                raise ValueError(f"state_dict has no state for parameter {i}")
            if "step" not in entry:
                raise ValueError(f"state_dict state[{i}] is missing 'step'")
            steps.add(_step_count(entry["step"], f"state_dict state[{i}]['step']"))
            for name in self.state:
                if name not in entry:
                    raise ValueError(f"state_dict state[{i}] is missing {name!r}")
                value = entry[name]
                if type(value) is not np.ndarray:
                    raise TypeError(f"state_dict state[{i}][{name!r}] must be a numpy.ndarray, "
                                    f"got {type(value).__name__}")
                if value.shape != p.shape or value.dtype != p.dtype:
                    raise ValueError(f"state_dict state[{i}][{name!r}] has shape {value.shape} and "
                                     f"dtype {value.dtype}; expected {p.shape} and {p.dtype}")
                saved[i, name] = value
        if len(steps) != 1:
            raise ValueError("state_dict holds different step counts for different parameters")
        with self._lock:
            for i in range(len(self.params)):
                for name, arrays in self.state.items():
                    np.copyto(arrays[i], saved[i, name])
            self._step = steps.pop()
            self.param_groups[0].update(group)


def _betas(betas):
    """``betas`` as a tuple ``(beta1, beta2)``; TypeError unless it is a pair."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return tuple(betas)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Update rule, per parameter (``buf`` starts at zero)::

        g = g + weight_decay * p
        if momentum > 0:
            buf = momentum * buf + (1 - dampening) * g      (buf = g at the first step)
            g = g + momentum * buf if nesterov else buf
        p -= lr * g

    Parameters
    ----------
    params : list or dict of numpy.ndarray
        float32 or float64 arrays (one dtype), updated in place.
    lr : float, default 1e-3
    momentum : float, default 0
    dampening : float, default 0
        In [0, 1]; not with ``nesterov``.
    weight_decay : float, default 0
    nesterov : bool, default False
    grads : list or dict of numpy.ndarray, optional
        Gradient buffers to read on every :meth:`step` call without arguments.
    """

    _rule = "sgd"

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, grads=None):
        lr, schedule = _split_lr(lr)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize)
        super().__init__(params, defaults, grads, schedule)


class Adagrad(Optimizer):
    """AdaGrad, as ``torch.optim.Adagrad``.

    Update rule (``t`` = step number from 1)::

        g = g + weight_decay * p
        sum += g * g
        p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)

    Parameters
    ----------
    params : list or dict of numpy.ndarray
    lr : float, default 1e-2
    lr_decay : float, default 0
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
        The value ``sum`` starts at.
    eps : float, default 1e-10
    grads : list or dict of numpy.ndarray, optional
    """

    _rule = "adagrad"

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, *, maximize=False, grads=None):
        lr, schedule = _split_lr(lr)
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults, grads, schedule)


class RMSprop(Optimizer):
    """RMSProp, as ``torch.optim.RMSprop`` (eps outside the square root).

    Update rule::

        g = g + weight_decay * p
        square_avg = alpha * square_avg + (1 - alpha) * g * g
        avg = sqrt(square_avg - grad_avg**2) + eps    (centered; grad_avg = alpha * grad_avg + (1 - alpha) * g)
        avg = sqrt(square_avg) + eps                  (otherwise)
        buf = momentum * buf + g / avg; p -= lr * buf (momentum > 0)
        p -= lr * g / avg                             (otherwise)

    Parameters
    ----------
    params : list or dict of numpy.ndarray
    lr : float, default 1e-2
    alpha : float, default 0.99
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum : float, default 0
    centered : bool, default False
    grads : list or dict of numpy.ndarray, optional
    """

    _rule = "rmsprop"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False, grads=None):
        lr, schedule = _split_lr(lr)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults, grads, schedule)


class _BetasOptimizer(Optimizer):
    """Torch's ``betas=(beta1, beta2)`` in the param group, the registry's beta1 and beta2."""

    def _rule_hypers(self, h):
        hypers = {k: v for k, v in h.items() if k not in ("params", "betas")}
        hypers["beta1"], hypers["beta2"] = _betas(h["betas"])
        return hypers


class Adam(_BetasOptimizer):
    """Adam, as ``torch.optim.Adam`` (L2 weight decay added to the gradient).

    Update rule (``t`` = step number from 1)::

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max_v = maximum(max_v, v) if amsgrad else v
        p -= lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    params : list or dict of numpy.ndarray
    lr : float, default 1e-3
    betas : tuple of float, default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
    grads : list or dict of numpy.ndarray, optional
    """

    _rule = "adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, grads=None):
        lr, schedule = _split_lr(lr)
        defaults = dict(lr=lr, betas=_betas(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults, grads, schedule)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: decoupled weight decay.

    Update rule: ``p *= 1 - lr * weight_decay``, then the :class:`Adam` step
    without the L2 term. Parameters as :class:`Adam`, with ``weight_decay``
    defaulting to 1e-2.
    """

    _rule = "adamw"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, grads=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, grads=grads)


class Lion(_BetasOptimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    Update rule (decoupled weight decay; ``sign(0) = 0``)::

        p *= 1 - lr * weight_decay
        p -= lr * sign(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g

    One state buffer (``exp_avg``) instead of Adam's two. Defaults are those of
    DeepSpeed's CPU Lion and lion-pytorch.

    Parameters
    ----------
    params : list or dict of numpy.ndarray
    lr : float, default 1e-4
    betas : tuple of float, default (0.9, 0.99)
    weight_decay : float, default 0
    grads : list or dict of numpy.ndarray, optional
    """

    _rule = "lion"

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, maximize=False, grads=None):
        lr, schedule = _split_lr(lr)
        defaults = dict(lr=lr, betas=_betas(betas), weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, grads, schedule)
