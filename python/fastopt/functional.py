"""Single-tensor optimizer steps backed by the C++ kernels.

Each function performs one fused pass over memory and updates its arrays in
place: float32 or float64 (or the low-precision layouts below), C-contiguous,
writeable, all of one shape, no two sharing memory. The gradient ``g`` is only read. Every argument is
checked before anything is written: a TypeError or ValueError naming the
argument leaves every array as it was. The GIL is released while the kernel runs.
Rules and defaults follow ``torch.optim`` (see docs/design.md). Each function
is one rule of the native registry (``fastopt._core.rules()``), which holds
the defaults, valid ranges, state buffers and texts; the functions below the
``generated`` marker are written from it by ``tools/generate_api.py`` (SGD's two
are written by hand). Every function takes ``maximize=False`` (as torch):
``True`` steps on ``-g``, to maximize the objective.

Low precision (docs/design.md, "Mixed precision"): ``p`` may also be float16 or
bfloat16 (``ml_dtypes.bfloat16``), with ``g`` in ``p``'s dtype or float32 and
the state buffers in float32 (recommended) or ``p``'s dtype; the arithmetic is
float32. Every function also takes, keyword-only:

- ``stochastic_rounding_seed`` (int, optional): round a float16/bfloat16 ``p``
  stochastically, with random bits hashed from (seed, ``step``, element
  index), instead of to nearest even. Bitwise reproducible for any thread count.
  The bits must change from one step to the next, or an update smaller than an
  ulp is rounded the same way every time (most elements never move): the
  functions with a ``step`` argument vary them through it; for those without
  one (``sgd``, ``rmsprop``, ``lion``, ``sgd_momentum`` without ``step``) pass
  a new seed every step, e.g. ``seed + t``.
- ``p_copy`` (float16/bfloat16 array, optional): master-weight mode. ``p`` is
  float32 and ``g`` may be float16/bfloat16; the updated ``p`` is also written,
  rounded to nearest, into ``p_copy`` in the same pass.
"""
from . import _core
from ._typing import Array
from typing import Optional

__all__ = ["sgd", "sgd_momentum"]


def sgd(p: Array, g: Array, *, lr: float, weight_decay: float = 0.0, maximize: bool = False,
        p_copy: Optional[Array] = None, stochastic_rounding_seed: Optional[int] = None) -> None:
    """Vanilla SGD step, in place.

    Update rule::

        g = g + weight_decay * p
        p -= lr * g

    Parameters
    ----------
    p : numpy.ndarray
        Parameters (float32, float64, float16 or bfloat16), updated in place.
    g : numpy.ndarray
        Gradient, same shape as ``p``, in ``p``'s dtype (or as the module docstring allows); not modified.
    lr : float
        Learning rate, >= 0.
    weight_decay : float, default 0
        Coupled L2 penalty coefficient, >= 0.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> p = np.ones(3, np.float32); g = np.full(3, 0.5, np.float32)
    >>> fastopt.sgd(p, g, lr=0.1); p
    array([0.95, 0.95, 0.95], dtype=float32)
    """
    _core.step("sgd", {"p": p, "g": g, "p_copy": p_copy},
               {"lr": lr, "weight_decay": weight_decay, "maximize": maximize},
               stochastic_rounding_seed=stochastic_rounding_seed)


def sgd_momentum(p: Array, g: Array, buf: Array, *, lr: float, momentum: float = 0.9, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, maximize: bool = False,
                 step: Optional[int] = None, p_copy: Optional[Array] = None,
                 stochastic_rounding_seed: Optional[int] = None) -> None:
    """SGD with (Nesterov) momentum, as ``torch.optim.SGD``, in place.

    Update rule (``buf`` starts at zero)::

        g = g + weight_decay * p
        buf = momentum * buf + (1 - dampening) * g     (no dampening at step 1, as torch)
        p -= lr * (g + momentum * buf)   if nesterov
        p -= lr * buf                    otherwise

    This equals the lecture's form ``v = rho * v - lr * dx; x += v`` with
    ``v = -lr * buf`` at constant lr, and, with ``nesterov=True``, the lecture's
    change of variables ``v_prev = v; v = rho * v - lr * dx;
    x += -rho * v_prev + (1 + rho) * v``.

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient; not modified.
    buf : numpy.ndarray
        Momentum buffer (velocity), updated in place; initialise with zeros.
    lr : float
        Learning rate, >= 0.
    momentum : float, default 0.9
        Momentum factor (``rho``), >= 0.
    dampening : float, default 0
        In [0, 1]. Needs ``step`` (torch does not dampen the first step); not with ``nesterov``.
    nesterov : bool, default False
        Use Nesterov momentum (requires ``momentum > 0`` and no dampening).
    weight_decay : float, default 0
        Coupled L2 penalty coefficient, >= 0.
    maximize : bool, default False
        Step on ``-g``.
    step : int, optional
        Number of this step (from 1); required with ``dampening``.
    """
    _core.step("sgd", {"p": p, "g": g, "p_copy": p_copy, "buf": buf},
               {"lr": lr, "momentum": momentum, "dampening": dampening, "nesterov": nesterov,
                "weight_decay": weight_decay, "maximize": maximize},
               step, stochastic_rounding_seed=stochastic_rounding_seed)



# ---- generated by tools/generate_api.py from the rule registry; do not edit by hand ----


def adagrad(p: Array, g: Array, sum_sq: Array, *, step: int, lr: float = 0.01, lr_decay: float = 0.0,
            weight_decay: float = 0.0, eps: float = 1e-10, maximize: bool = False, p_copy: Optional[Array] = None,
            stochastic_rounding_seed: Optional[int] = None) -> None:
    """AdaGrad (Duchi et al. 2011): one step in place, as ``torch.optim.Adagrad``.

    Update rule (``step`` counts from 1; ``sum_sq`` starts at ``initial_accumulator_value``)::

        g = g + weight_decay * p
        sum_sq += g * g
        p -= lr / (1 + (step - 1) * lr_decay) * g / (sqrt(sum_sq) + eps)

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    sum_sq : numpy.ndarray
        State ``sum``. The parameter's shape, updated in place; starts at ``initial_accumulator_value``.
    step : int
        Number of this step, >= 1.
    lr : float, default 0.01
        Learning rate, >= 0.
    lr_decay : float, default 0.0
        Decay of the learning rate with the step number, >= 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    eps : float, default 1e-10
        Added to the denominator, > 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("adagrad",
               {"p": p, "g": g, "p_copy": p_copy, "sum_sq": sum_sq},
               {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay, "eps": eps, "maximize": maximize},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


def rmsprop(p: Array, g: Array, square_avg: Array, *, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
            weight_decay: float = 0.0, momentum: float = 0.0, momentum_buf: Optional[Array] = None,
            centered: bool = False, grad_avg: Optional[Array] = None, maximize: bool = False,
            p_copy: Optional[Array] = None, stochastic_rounding_seed: Optional[int] = None) -> None:
    """RMSProp (Tieleman & Hinton 2012; eps outside the square root): one step in place, as ``torch.optim.RMSprop``.

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

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    square_avg : numpy.ndarray
        State ``square_avg``. The parameter's shape, updated in place; starts at 0.
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
    momentum_buf : numpy.ndarray, optional
        State ``momentum_buffer``. The parameter's shape, updated in place; starts at 0. Needed (else None) when
        ``momentum`` is nonzero.
    centered : bool, default False
        Normalise by an estimate of the gradient's variance.
    grad_avg : numpy.ndarray, optional
        State ``grad_avg``. The parameter's shape, updated in place; starts at 0. Needed (else None) when
        ``centered`` is True.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("rmsprop",
               {"p": p, "g": g, "p_copy": p_copy, "square_avg": square_avg, "momentum_buf": momentum_buf,
                "grad_avg": grad_avg},
               {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
                "centered": centered, "maximize": maximize},
               stochastic_rounding_seed=stochastic_rounding_seed)


def adam(p: Array, g: Array, m: Array, v: Array, *, step: int, lr: float = 0.001, beta1: float = 0.9,
         beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
         max_v: Optional[Array] = None, maximize: bool = False, decoupled_weight_decay: bool = False,
         p_copy: Optional[Array] = None, stochastic_rounding_seed: Optional[int] = None) -> None:
    """Adam (Kingma & Ba 2015): one step in place, as ``torch.optim.Adam``.

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

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    m : numpy.ndarray
        State ``exp_avg``. The parameter's shape, updated in place; starts at 0.
    v : numpy.ndarray
        State ``exp_avg_sq``. The parameter's shape, updated in place; starts at 0.
    step : int
        Number of this step, >= 1.
    lr : float, default 0.001
        Learning rate, >= 0.
    beta1 : float, default 0.9
        Decay rate of the first moment, in [0, 1).
    beta2 : float, default 0.999
        Decay rate of the second moment, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.0
        L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``, >= 0.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (kept in ``max_v``).
    max_v : numpy.ndarray, optional
        State ``max_exp_avg_sq``. The parameter's shape, updated in place; starts at 0. Needed (else None) when
        ``amsgrad`` is True.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    decoupled_weight_decay : bool, default False
        AdamW-style decay of the parameters instead of the coupled L2 term.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("adam",
               {"p": p, "g": g, "p_copy": p_copy, "m": m, "v": v, "max_v": max_v},
               {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                "maximize": maximize, "decoupled_weight_decay": decoupled_weight_decay},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


def adamw(p: Array, g: Array, m: Array, v: Array, *, step: int, lr: float = 0.001, beta1: float = 0.9,
          beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.01, amsgrad: bool = False,
          max_v: Optional[Array] = None, maximize: bool = False, p_copy: Optional[Array] = None,
          stochastic_rounding_seed: Optional[int] = None) -> None:
    """AdamW (Loshchilov & Hutter 2019, Adam with decoupled weight decay): one step in place, as ``torch.optim.AdamW``.

    Update rule (``step`` = t counts from 1)::

        p *= 1 - lr * weight_decay
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max_v = maximum(max_v, v)  if amsgrad,  else  v
        p -= lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    m : numpy.ndarray
        State ``exp_avg``. The parameter's shape, updated in place; starts at 0.
    v : numpy.ndarray
        State ``exp_avg_sq``. The parameter's shape, updated in place; starts at 0.
    step : int
        Number of this step, >= 1.
    lr : float, default 0.001
        Learning rate, >= 0.
    beta1 : float, default 0.9
        Decay rate of the first moment, in [0, 1).
    beta2 : float, default 0.999
        Decay rate of the second moment, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.01
        Decoupled weight decay, >= 0.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (kept in ``max_v``).
    max_v : numpy.ndarray, optional
        State ``max_exp_avg_sq``. The parameter's shape, updated in place; starts at 0. Needed (else None) when
        ``amsgrad`` is True.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("adamw",
               {"p": p, "g": g, "p_copy": p_copy, "m": m, "v": v, "max_v": max_v},
               {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                "maximize": maximize},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


def lion(p: Array, g: Array, m: Array, *, lr: float = 0.0001, beta1: float = 0.9, beta2: float = 0.99,
         weight_decay: float = 0.0, maximize: bool = False, p_copy: Optional[Array] = None,
         stochastic_rounding_seed: Optional[int] = None) -> None:
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): one step in place.

    Update rule (decoupled weight decay; ``sign(0) = 0``)::

        p *= 1 - lr * weight_decay
        p -= lr * sign(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g

    Defaults are those of DeepSpeed's CPU Lion and lion-pytorch. Every element
    moves by exactly ``lr`` (or 0), so Lion wants a learning rate 3-10x smaller
    than AdamW's and a weight decay 3-10x larger.

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    m : numpy.ndarray
        State ``exp_avg``. The parameter's shape, updated in place; starts at 0.
    lr : float, default 0.0001
        Learning rate, >= 0.
    beta1 : float, default 0.9
        Interpolation between momentum and gradient in the update's sign, in [0, 1).
    beta2 : float, default 0.99
        Decay rate of the momentum, in [0, 1).
    weight_decay : float, default 0.0
        Decoupled weight decay, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("lion",
               {"p": p, "g": g, "p_copy": p_copy, "m": m},
               {"lr": lr, "beta1": beta1, "beta2": beta2, "weight_decay": weight_decay, "maximize": maximize},
               stochastic_rounding_seed=stochastic_rounding_seed)


def adamax(p: Array, g: Array, m: Array, u: Array, *, step: int, lr: float = 0.002, beta1: float = 0.9,
           beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0, maximize: bool = False,
           p_copy: Optional[Array] = None, stochastic_rounding_seed: Optional[int] = None) -> None:
    """Adamax (Kingma & Ba 2015, Adam with the infinity norm): one step in place, as ``torch.optim.Adamax``.

    Update rule (``step`` = t counts from 1)::

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        u = maximum(beta2 * u, abs(g) + eps)
        p -= lr / (1 - beta1**t) * m / u

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    m : numpy.ndarray
        State ``exp_avg``. The parameter's shape, updated in place; starts at 0.
    u : numpy.ndarray
        State ``exp_inf``. The parameter's shape, updated in place; starts at 0.
    step : int
        Number of this step, >= 1.
    lr : float, default 0.002
        Learning rate, >= 0.
    beta1 : float, default 0.9
        Decay rate of the first moment, in [0, 1).
    beta2 : float, default 0.999
        Decay rate of the infinity norm, in [0, 1).
    eps : float, default 1e-8
        Added to ``abs(g)``, >= 0.
    weight_decay : float, default 0.0
        Coupled L2 penalty, added to the gradient, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("adamax",
               {"p": p, "g": g, "p_copy": p_copy, "m": m, "u": u},
               {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
                "maximize": maximize},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


def radam(p: Array, g: Array, m: Array, v: Array, *, step: int, lr: float = 0.001, beta1: float = 0.9,
          beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0, maximize: bool = False,
          decoupled_weight_decay: bool = False, p_copy: Optional[Array] = None,
          stochastic_rounding_seed: Optional[int] = None) -> None:
    """RAdam (Liu et al. 2020, rectified Adam): one step in place, as ``torch.optim.RAdam``.

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

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    m : numpy.ndarray
        State ``exp_avg``. The parameter's shape, updated in place; starts at 0.
    v : numpy.ndarray
        State ``exp_avg_sq``. The parameter's shape, updated in place; starts at 0.
    step : int
        Number of this step, >= 1.
    lr : float, default 0.001
        Learning rate, >= 0.
    beta1 : float, default 0.9
        Decay rate of the first moment, in [0, 1).
    beta2 : float, default 0.999
        Decay rate of the second moment, in [0, 1).
    eps : float, default 1e-8
        Added to ``sqrt(v)``, >= 0.
    weight_decay : float, default 0.0
        L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    decoupled_weight_decay : bool, default False
        AdamW-style decay of the parameters instead of the coupled L2 term.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("radam",
               {"p": p, "g": g, "p_copy": p_copy, "m": m, "v": v},
               {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
                "maximize": maximize, "decoupled_weight_decay": decoupled_weight_decay},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


def adadelta(p: Array, g: Array, square_avg: Array, acc_delta: Array, *, lr: float = 1.0, rho: float = 0.9,
             eps: float = 1e-6, weight_decay: float = 0.0, maximize: bool = False, p_copy: Optional[Array] = None,
             stochastic_rounding_seed: Optional[int] = None) -> None:
    """Adadelta (Zeiler 2012): one step in place, as ``torch.optim.Adadelta``.

    Update rule::

        g = g + weight_decay * p
        square_avg = rho * square_avg + (1 - rho) * g * g
        delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta * delta
        p -= lr * delta

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    square_avg : numpy.ndarray
        State ``square_avg``. The parameter's shape, updated in place; starts at 0.
    acc_delta : numpy.ndarray
        State ``acc_delta``. The parameter's shape, updated in place; starts at 0.
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
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("adadelta",
               {"p": p, "g": g, "p_copy": p_copy, "square_avg": square_avg, "acc_delta": acc_delta},
               {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize},
               stochastic_rounding_seed=stochastic_rounding_seed)


def rprop(p: Array, g: Array, prev: Array, step_size: Array, *, lr: float = 0.01, etaminus: float = 0.5,
          etaplus: float = 1.2, step_size_min: float = 1e-6, step_size_max: float = 50.0, maximize: bool = False,
          p_copy: Optional[Array] = None, stochastic_rounding_seed: Optional[int] = None) -> None:
    """Rprop (Riedmiller & Braun 1993): one step in place, as ``torch.optim.Rprop``.

    Update rule, per element (``step_size`` starts at ``lr``)::

        s = g * prev
        f = etaplus where s > 0, etaminus where s < 0, 1 where s == 0
        step_size = clip(step_size * f, step_size_min, step_size_max)
        g = 0 where f == etaminus
        p -= sign(g) * step_size
        prev = g

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    prev : numpy.ndarray
        State ``prev``. The parameter's shape, updated in place; starts at 0.
    step_size : numpy.ndarray
        State ``step_size``. The parameter's shape, updated in place; starts at ``lr``.
    lr : float, default 0.01
        The step size every element starts at (not read by a step), >= 0.
    etaminus : float, default 0.5
        Factor of the step size where the gradient's sign flips, below 1, > 0.
    etaplus : float, default 1.2
        Factor of the step size where it stays, above 1, > 0.
    step_size_min : float, default 1e-6
        Smallest step size, >= 0.
    step_size_max : float, default 50.0
        Largest step size, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("rprop",
               {"p": p, "g": g, "p_copy": p_copy, "prev": prev, "step_size": step_size},
               {"lr": lr, "etaminus": etaminus, "etaplus": etaplus, "step_size_min": step_size_min,
                "step_size_max": step_size_max, "maximize": maximize},
               stochastic_rounding_seed=stochastic_rounding_seed)


def nadam(p: Array, g: Array, m: Array, v: Array, mu_product: Array, *, step: int, lr: float = 0.002,
          beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
          momentum_decay: float = 0.004, maximize: bool = False, decoupled_weight_decay: bool = False,
          p_copy: Optional[Array] = None, stochastic_rounding_seed: Optional[int] = None) -> None:
    """NAdam (Dozat 2016, Adam with Nesterov momentum): one step in place, as ``torch.optim.NAdam``.

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

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    m : numpy.ndarray
        State ``exp_avg``. The parameter's shape, updated in place; starts at 0.
    v : numpy.ndarray
        State ``exp_avg_sq``. The parameter's shape, updated in place; starts at 0.
    mu_product : numpy.ndarray
        State ``mu_product``. One number (a 0-d float32 or float64 array, as torch keeps it), updated in place;
        starts at 1.
    step : int
        Number of this step, >= 1.
    lr : float, default 0.002
        Learning rate, >= 0.
    beta1 : float, default 0.9
        Decay rate of the first moment, in [0, 1).
    beta2 : float, default 0.999
        Decay rate of the second moment, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 0.0
        L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``, >= 0.
    momentum_decay : float, default 0.004
        How fast the momentum factor approaches beta1, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    decoupled_weight_decay : bool, default False
        AdamW-style decay of the parameters instead of the coupled L2 term.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("nadam",
               {"p": p, "g": g, "p_copy": p_copy, "m": m, "v": v, "mu_product": mu_product},
               {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
                "momentum_decay": momentum_decay, "maximize": maximize,
 "decoupled_weight_decay": decoupled_weight_decay},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


def asgd(p: Array, g: Array, ax: Array, eta: Array, mu: Array, *, step: int, lr: float = 0.01, lambd: float = 0.0001,
         alpha: float = 0.75, t0: float = 1000000.0, weight_decay: float = 0.0, maximize: bool = False,
         p_copy: Optional[Array] = None, stochastic_rounding_seed: Optional[int] = None) -> None:
    """Averaged SGD (Polyak & Juditsky 1992): one step in place, as ``torch.optim.ASGD``.

    Update rule (``step`` = t counts from 1; ``eta`` and ``mu`` as they are before the step)::

        g = g + weight_decay * p
        p = p * (1 - lambd * eta) - eta * g
        ax = p                                   if mu == 1
        ax += (p - ax) * mu                      otherwise
        eta = lr / (1 + lambd * lr * t) ** alpha    (for the next step)
        mu = 1 / max(1, t - t0)

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    ax : numpy.ndarray
        State ``ax``. The parameter's shape, updated in place; starts at 0.
    eta : numpy.ndarray
        State ``eta``. One number (a 0-d float32 or float64 array, as torch keeps it), updated in place; starts at
        ``lr``.
    mu : numpy.ndarray
        State ``mu``. One number (a 0-d float32 or float64 array, as torch keeps it), updated in place; starts at 1.
    step : int
        Number of this step, >= 1.
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
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("asgd",
               {"p": p, "g": g, "p_copy": p_copy, "ax": ax, "eta": eta, "mu": mu},
               {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay, "maximize": maximize},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


def adafactor(p: Array, g: Array, row_var: Optional[Array], col_var: Optional[Array], variance: Optional[Array], *,
              step: int, lr: float = 0.01, beta2_decay: float = -0.8, eps1: Optional[float] = None, eps2: float = 0.001,
              d: float = 1.0, weight_decay: float = 0.0, maximize: bool = False, p_copy: Optional[Array] = None,
              stochastic_rounding_seed: Optional[int] = None) -> None:
    """Adafactor (Shazeer & Stern 2018): one step in place, as ``torch.optim.Adafactor``.

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

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    row_var : numpy.ndarray or None
        State ``row_var``. For a parameter of shape (..., m, n): shape (..., m, 1); None for fewer than 2
        dimensions, updated in place; starts at 0.
    col_var : numpy.ndarray or None
        State ``col_var``. For a parameter of shape (..., m, n): shape (..., 1, n); None for fewer than 2
        dimensions, updated in place; starts at 0.
    variance : numpy.ndarray or None
        State ``variance``. For a parameter of fewer than 2 dimensions: its shape; None otherwise, updated in place;
        starts at 0.
    step : int
        Number of this step, >= 1.
    lr : float, default 0.01
        The largest relative step size, and the weight decay's factor, >= 0.
    beta2_decay : float, default -0.8
        The second moment's decay exponent, <= 0.
    eps1 : float or None, default None
        Floor of the second moment (squared) and of the row mean; None: the parameter dtype's machine epsilon, >= 0,
        or None.
    eps2 : float, default 0.001
        Floor of RMS(p) in the step size, >= 0.
    d : float, default 1.0
        Clipping threshold of RMS(U), > 0.
    weight_decay : float, default 0.0
        Decoupled weight decay, >= 0.
    maximize : bool, default False
        Step on ``-g``, to maximize the objective.
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("adafactor",
               {"p": p, "g": g, "p_copy": p_copy, "row_var": row_var, "col_var": col_var, "variance": variance},
               {"lr": lr, "beta2_decay": beta2_decay, "eps1": eps1, "eps2": eps2, "d": d, "weight_decay": weight_decay,
                "maximize": maximize},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


def ademamix(p: Array, g: Array, m: Array, m_slow: Array, v: Array, *, step: int, lr: float = 0.001, beta1: float = 0.9,
             beta2: float = 0.999, beta3: float = 0.9999, alpha: float = 5.0, t_alpha: Optional[float] = None,
             t_beta3: Optional[float] = None, eps: float = 1e-8, weight_decay: float = 0.01, maximize: bool = False,
             p_copy: Optional[Array] = None, stochastic_rounding_seed: Optional[int] = None) -> None:
    """AdEMAMix (Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older"): one step in
    place.

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

    Parameters
    ----------
    p : numpy.ndarray
        Parameters, updated in place.
    g : numpy.ndarray
        Gradient, the shape of ``p``; read only.
    m : numpy.ndarray
        State ``exp_avg``. The parameter's shape, updated in place; starts at 0.
    m_slow : numpy.ndarray
        State ``exp_avg_slow``. The parameter's shape, updated in place; starts at 0.
    v : numpy.ndarray
        State ``exp_avg_sq``. The parameter's shape, updated in place; starts at 0.
    step : int
        Number of this step, >= 1.
    lr : float, default 0.001
        Learning rate, >= 0.
    beta1 : float, default 0.9
        Decay rate of the fast first moment, in [0, 1).
    beta2 : float, default 0.999
        Decay rate of the second moment, in [0, 1).
    beta3 : float, default 0.9999
        Decay rate of the slow first moment (after its warm-up), in [0, 1).
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
    p_copy, stochastic_rounding_seed : optional
        Master-weight copy and stochastic rounding: see the module's description.
    """
    _core.step("ademamix",
               {"p": p, "g": g, "p_copy": p_copy, "m": m, "m_slow": m_slow, "v": v},
               {"lr": lr, "beta1": beta1, "beta2": beta2, "beta3": beta3, "alpha": alpha, "t_alpha": t_alpha,
                "t_beta3": t_beta3, "eps": eps, "weight_decay": weight_decay, "maximize": maximize},
               step, stochastic_rounding_seed=stochastic_rounding_seed)


__all__ += ['adagrad', 'rmsprop', 'adam', 'adamw', 'lion', 'adamax', 'radam', 'adadelta', 'rprop', 'nadam', 'asgd',
            'adafactor', 'ademamix']
# ---- end of generated code ----
