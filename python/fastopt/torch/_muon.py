"""``fastopt.torch.Muon``: torch.optim.Muon's rule, with AdamW groups in the same
optimizer (the registry's adam rule through ``_Optimizer``) and same-shape
matrices orthogonalized as one batch with torch's matmul."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch

from .. import _core
from ._optimizer import Number, _check_dense, _Optimizer, _scalar

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT

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
        if options.get("state_dtype") == "int8":
            raise ValueError("state_dtype='int8' is not available for Muon (its momentum is a torch tensor the "
                             "Newton-Schulz step reads); use 'float32' or 'param'")
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
