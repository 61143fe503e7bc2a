"""``fastopt.torch.LBFGS``: torch.optim.LBFGS's algorithm and state, with the
two-loop recursion as one native call."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch

from .. import _core
from ._optimizer import Number, _as_numpy, _check_dense, _scalar

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT


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
