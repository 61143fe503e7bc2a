"""Optimizer updates in plain NumPy: the specification of fastopt's kernels.

Every function updates its arrays in place and returns None, like the fast
path. The rules are torch.optim's (see docs/design.md); written step by step, in the
style of the CS231n code, so they can be read against the lecture.
"""
import math

import numpy as np
from .._typing import FloatArray
from typing import Optional


def sgd(p: FloatArray, g: FloatArray, *, lr: float, weight_decay: float = 0.0, maximize: bool = False) -> None:
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    p -= lr * g


def sgd_momentum(p: FloatArray, g: FloatArray, buf: FloatArray, *, lr: float, momentum: float = 0.9,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0, maximize: bool = False,
                 step: Optional[int] = None) -> None:
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    buf *= momentum
    if dampening != 0 and step != 1:     # torch starts buf at g: no dampening at the first step
        buf += (1 - dampening) * g
    else:
        buf += g
    if nesterov:
        p -= lr * (g + momentum * buf)
    else:
        p -= lr * buf


def adagrad(p: FloatArray, g: FloatArray, sum_sq: FloatArray, *, lr: float = 1e-2, eps: float = 1e-10,
            weight_decay: float = 0.0, lr_decay: float = 0.0, step: int, maximize: bool = False) -> None:
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    sum_sq += g * g
    p -= clr * g / (np.sqrt(sum_sq) + eps)


def rmsprop(p: FloatArray, g: FloatArray, square_avg: FloatArray, *, lr: float = 1e-2, alpha: float = 0.99,
            eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
            momentum_buf: Optional[FloatArray] = None, centered: bool = False, grad_avg: Optional[FloatArray] = None,
            maximize: bool = False) -> None:
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    square_avg[...] = alpha * square_avg + (1 - alpha) * g * g
    if centered:
        assert grad_avg is not None, "centered=True needs grad_avg"
        grad_avg[...] = alpha * grad_avg + (1 - alpha) * g
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        assert momentum_buf is not None, "momentum > 0 needs momentum_buf"
        momentum_buf[...] = momentum * momentum_buf + g / avg
        p -= lr * momentum_buf
    else:
        p -= lr * g / avg


def adam(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, *, step: int, lr: float = 1e-3,
         beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
         amsgrad: bool = False, max_v: Optional[FloatArray] = None, maximize: bool = False,
         decoupled_weight_decay: bool = False) -> None:
    if maximize:
        g = -g
    if decoupled_weight_decay:          # AdamW
        p *= 1 - lr * weight_decay
    elif weight_decay != 0:
        g = g + weight_decay * p
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    if amsgrad:
        assert max_v is not None, "amsgrad=True needs max_v"
        np.maximum(max_v, v, out=max_v)
        v = max_v
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
    denom = np.sqrt(v) / bias_correction2_sqrt + eps
    p -= step_size * m / denom


def adamw(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, *, step: int, lr: float = 1e-3,
          beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-2,
          amsgrad: bool = False, max_v: Optional[FloatArray] = None, maximize: bool = False) -> None:
    adam(p, g, m, v, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
         amsgrad=amsgrad, max_v=max_v, maximize=maximize, decoupled_weight_decay=True)


def lion(p: FloatArray, g: FloatArray, m: FloatArray, *, lr: float = 1e-4, beta1: float = 0.9, beta2: float = 0.99,
         weight_decay: float = 0.0, maximize: bool = False) -> None:
    if maximize:
        g = -g
    p *= 1 - lr * weight_decay
    update = np.sign(beta1 * m + (1 - beta1) * g)
    p -= lr * update
    m[...] = beta2 * m + (1 - beta2) * g


def ademamix(p: FloatArray, g: FloatArray, m: FloatArray, m_slow: FloatArray, v: FloatArray, *, step: int,
             lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, beta3: float = 0.9999, alpha: float = 5.0,
             t_alpha: Optional[float] = None, t_beta3: Optional[float] = None, eps: float = 1e-8,
             weight_decay: float = 1e-2, maximize: bool = False) -> None:
    if maximize:
        g = -g
    if t_alpha is not None:             # alpha's warm-up
        alpha = min(step * alpha / t_alpha, alpha)
    if t_beta3 is not None:             # beta3's warm-up, from beta1
        ln_beta1, ln_beta3 = math.log(beta1), math.log(beta3)
        s = step / t_beta3
        beta3 = min(math.exp(ln_beta1 * ln_beta3 / ((1 - s) * ln_beta3 + s * ln_beta1)), beta3)
    p *= 1 - lr * weight_decay
    m[...] = beta1 * m + (1 - beta1) * g
    m_slow[...] = beta3 * m_slow + (1 - beta3) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
    denom = np.sqrt(v) / bias_correction2_sqrt + eps
    p -= (step_size * m + lr * alpha * m_slow) / denom


def adamax(p: FloatArray, g: FloatArray, m: FloatArray, u: FloatArray, *, step: int, lr: float = 2e-3,
           beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
           maximize: bool = False) -> None:
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    m[...] = beta1 * m + (1 - beta1) * g
    u[...] = np.maximum(beta2 * u, np.abs(g) + eps)
    step_size = lr / (1 - beta1 ** step)
    p -= step_size * m / u


def radam(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, *, step: int, lr: float = 1e-3,
          beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
          decoupled_weight_decay: bool = False, maximize: bool = False) -> None:
    if maximize:
        g = -g
    if decoupled_weight_decay:
        p *= 1 - lr * weight_decay
    elif weight_decay != 0:
        g = g + weight_decay * p
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
    m_hat = m / bias_correction1
    if rho_t > 5:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        p -= m_hat * lr * (math.sqrt(bias_correction2) / (np.sqrt(v) + eps)) * rect
    else:
        p -= m_hat * lr


def adadelta(p: FloatArray, g: FloatArray, square_avg: FloatArray, acc_delta: FloatArray, *, lr: float = 1.0,
             rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0, maximize: bool = False) -> None:
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    square_avg[...] = rho * square_avg + (1 - rho) * g * g
    delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
    acc_delta[...] = rho * acc_delta + (1 - rho) * delta * delta
    p -= lr * delta


def rprop(p: FloatArray, g: FloatArray, prev: FloatArray, step_size: FloatArray, *, lr: float = 1e-2,
          etaminus: float = 0.5, etaplus: float = 1.2, step_size_min: float = 1e-6, step_size_max: float = 50.0,
          maximize: bool = False) -> None:
    """``lr`` is only the value ``step_size`` starts at."""
    if maximize:
        g = -g
    t = p.dtype.type if p.dtype == np.float64 else np.float32   # the arithmetic's type
    s = g * prev
    factor = np.where(s > 0, t(etaplus), np.where(s < 0, t(etaminus), t(1)))
    factor = np.where(np.isnan(s), s, factor)                   # NaN stays NaN, as torch.sign
    step_size[...] = np.clip(step_size * factor, step_size_min, step_size_max)
    g = np.where(factor == t(etaminus), t(0), g)
    p -= np.sign(g) * step_size
    prev[...] = g


def nadam(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, mu_product: FloatArray, *, step: int,
          lr: float = 2e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
          momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, maximize: bool = False) -> None:
    """``mu_product`` is a 0-d array (float32 or float64) multiplied in its own dtype, as torch does."""
    if maximize:
        g = -g
    if decoupled_weight_decay:
        p *= 1 - lr * weight_decay
    elif weight_decay != 0:
        g = g + weight_decay * p
    mu = beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product *= mu
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    denom = np.sqrt(v / (1 - beta2 ** step)) + eps
    p += (-lr * (1 - mu) / (1 - float(mu_product))) * (g / denom)
    p += (-lr * mu_next / (1 - float(mu_product) * mu_next)) * (m / denom)


def asgd(p: FloatArray, g: FloatArray, ax: FloatArray, eta: FloatArray, mu: FloatArray, *, step: int,
         lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0.0,
         maximize: bool = False) -> None:
    """``eta`` and ``mu`` are 0-d arrays (float32 or float64): this step uses them, then they are
    set for the next one."""
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    eta_now, mu_now = float(eta), float(mu)
    p[...] = p * (1 - lambd * eta_now) + (-eta_now) * g
    if mu_now != 1:
        ax += (p - ax) * mu_now
    else:
        ax[...] = p
    eta[...] = lr / (1 + lambd * lr * step) ** alpha
    mu[...] = 1 / max(1, step - t0)


# Adafactor's sums run in double in the kernels' fixed order; these give that order.
_ROW_BLOCK = 64    # rows of a matrix per block of the column sums
_CHUNK = 8192      # a vector's elements per "row"


def _row_sums_of_squares(x: FloatArray) -> FloatArray:
    """Σ x² of each row of a 2-D array, in double: eight running sums (element j
    into sum j mod 8), combined as ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))."""
    rows, n = x.shape
    sq = np.zeros((rows, -(-n // 8) * 8))
    sq[:, :n] = x.astype(np.float64) ** 2
    s = np.cumsum(sq.reshape(rows, -1, 8), axis=1)[:, -1, :] if n else np.zeros((rows, 8))
    return ((s[:, 0] + s[:, 1]) + (s[:, 2] + s[:, 3])) + ((s[:, 4] + s[:, 5]) + (s[:, 6] + s[:, 7]))


def _in_order(x: FloatArray) -> float:
    """x[0] + x[1] + ... left to right."""
    return float(np.cumsum(x)[-1]) if x.size else 0.0


def _as_rows(x: FloatArray, matrix: bool) -> FloatArray:
    """A matrix stack as its rows; a vector as rows of _CHUNK elements (zero-padded)."""
    if matrix:
        return x.reshape(-1, x.shape[-1])
    flat = np.zeros(-(-x.size // _CHUNK) * _CHUNK, x.dtype)
    flat[:x.size] = x.reshape(-1)
    return flat.reshape(-1, _CHUNK)


def _lerp(a: FloatArray, b: FloatArray, w: np.floating) -> FloatArray:
    """torch's lerp."""
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (1 - w)


def adafactor(p: FloatArray, g: FloatArray, row_var: Optional[FloatArray], col_var: Optional[FloatArray],
              variance: Optional[FloatArray], *, step: int, lr: float = 1e-2, beta2_decay: float = -0.8,
              eps1: Optional[float] = None, eps2: float = 1e-3, d: float = 1.0, weight_decay: float = 0.0,
              maximize: bool = False) -> None:
    """A parameter of two or more dimensions (..., m, n) keeps ``row_var`` (..., m, 1) and
    ``col_var`` (..., 1, n); one of fewer keeps ``variance``. float32 or float64 arrays."""
    T = p.dtype.type
    if p.size == 0:
        return
    if eps1 is None:
        eps1 = float(np.finfo(p.dtype).eps)
    if maximize:
        g = -g
    w = T(step ** beta2_decay)
    rho = min(lr, 1 / step ** 0.5)
    matrix = p.ndim >= 2
    rms_p = math.sqrt(_in_order(_row_sums_of_squares(_as_rows(p, matrix)))) / p.size ** 0.5
    alpha = max(eps2, rms_p) * rho
    if matrix:
        assert row_var is not None and col_var is not None, "a matrix keeps row_var and col_var"
        m, n = p.shape[-2:]
        G = g.reshape(-1, m, n)
        R, C = row_var.reshape(-1, m), col_var.reshape(-1, n)
        R[...] = _lerp(R, (_row_sums_of_squares(G.reshape(-1, n)) / n).astype(T).reshape(R.shape), w)
        sq = np.zeros((G.shape[0], -(-m // _ROW_BLOCK) * _ROW_BLOCK, n))
        sq[:, :m] = G.astype(np.float64) ** 2
        blocks = np.cumsum(sq.reshape(G.shape[0], -1, _ROW_BLOCK, n), axis=2)[:, :, -1] if m else sq[:, :1]
        C[...] = _lerp(C, (np.cumsum(blocks, axis=1)[:, -1] / m).astype(T), w)
        mean = np.maximum((np.cumsum(R.astype(np.float64), axis=1)[:, -1] / m).astype(T), T(eps1))
        V = ((R[:, :, None] * C[:, None, :]) / mean[:, None, None]).reshape(p.shape)
    else:
        assert variance is not None, "a parameter of fewer than 2 dimensions keeps variance"
        variance[...] = _lerp(variance, g * g, w)
        V = variance
    U = (1 / np.sqrt(np.maximum(V, T(eps1 * eps1)))) * g
    denom = max(1.0, math.sqrt(_in_order(_row_sums_of_squares(_as_rows(U, matrix)))) / (p.size ** 0.5 * d))
    p[...] = p * T(1 - lr * weight_decay) + T(-alpha / denom) * U
