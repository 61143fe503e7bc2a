"""The training loop in plain Python and NumPy: the specification of
:mod:`fastopt.training`. Same generator, same minibatches, same updates.
"""
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from .._typing import FloatArray, IntArray

from .. import _core
from . import optim as ref_optim
from . import quantization
from .losses import _with_penalty, multiclass_hinge, softmax_cross_entropy

_MASK64 = (1 << 64) - 1


class SplitMix64:
    """SplitMix64 in plain Python; ``state`` is one uint64."""

    def __init__(self, seed: int = 0) -> None:
        self.state = int(seed) & _MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform in [0, n) by Lemire's multiply-and-reject method."""
        m = self.next() * n
        low = m & _MASK64
        if low < n:
            threshold = (-n) % n     # 2**64 mod n
            while low < threshold:
                m = self.next() * n
                low = m & _MASK64
        return m >> 64

    def minibatch_indices(self, n: int, batch_size: int, count: int, sampling: str = "epochs") -> IntArray:
        rows: list[int] = []
        for _ in range(count):
            if sampling == "epochs":
                epoch = list(range(n))
                for i in range(n - 1, 0, -1):      # Fisher–Yates
                    j = self.below(i + 1)
                    epoch[i], epoch[j] = epoch[j], epoch[i]
                rows.extend(epoch)
            else:
                rows.extend(self.below(n) for _ in range(batch_size))
        return np.array(rows, dtype=np.int64)


def minibatches(rng: SplitMix64, n: int, batch_size: int, count: int, sampling: str) -> Iterator[IntArray]:
    """The row indices of every update, in order."""
    per_draw = n if sampling == "epochs" else batch_size
    rows = rng.minibatch_indices(n, batch_size, count, sampling)
    for start in range(0, len(rows), per_draw):
        draw = rows[start:start + per_draw]
        for b in range(0, len(draw), batch_size):
            yield draw[b:b + batch_size]


# The registry of update rules: each rule's state buffers, as its reference function takes them.
_RULES = {rule["name"]: rule for rule in _core.rules()}


def optimizer_update(optimizer: Any, settings: dict[str, Any], dW: FloatArray, lr: float, step: int) -> None:
    """One step of a fastopt.optim optimizer's rule (``settings``: its rule and hyperparameters,
    from :meth:`fastopt.optim.Optimizer.native_loop`), by the rule's function in
    fastopt.reference.optim, its state buffers passed as the registry names them (SGD is
    ``sgd`` without momentum and ``sgd_momentum`` with it)."""
    rule = settings["rule"]
    spec = _RULES[rule]
    per_step = {h["name"] for h in spec["hypers"] if h["per_step"]}   # not those used when state is made
    hypers = {k: v for k, v in settings["hypers"].items() if k in per_step}
    hypers["lr"] = lr
    W = optimizer.params[0]
    buffers = {name: arrays[0] for name, arrays in optimizer.state.items()}
    state: dict[str, Any] = {}
    for s in spec["states"]:
        buffer = buffers.get(s["name"])
        if buffer is not None and buffer.dtype == np.uint8:  # 8-bit state: codes beside "<name>_absmax"
            buffer = quantization.QuantizedState(buffer, buffers[s["name"] + "_absmax"], s["map8"] == "signed")
        state[s["name"]] = buffer

    def update(rule_function: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """The rule's reference step; through the 8-bit reference when the state is 8-bit."""
        if any(isinstance(v, quantization.QuantizedState) for v in state.values()):
            quantization.step_8bit(rule_function, *args, **kwargs)
        else:
            rule_function(*args, **kwargs)

    if rule == "sgd" and hypers["momentum"] == 0:       # plain SGD: no buffer, so no dampening
        ref_optim.sgd(W, dW, lr=lr, weight_decay=hypers["weight_decay"], maximize=hypers["maximize"])
        return
    if rule == "sgd":
        update(ref_optim.sgd_momentum, W, dW, state["momentum_buffer"], **hypers, step=step)
        return
    positional = [state.get(s["name"]) for s in spec["states"] if s["needed_when"] is None]
    optional = {s["arg"]: state.get(s["name"]) for s in spec["states"] if s["needed_when"] is not None}
    if spec["uses_step"]:
        hypers["step"] = step
    update(getattr(ref_optim, rule), W, dW, *positional, **optional, **hypers)


def train_linear(optimizer: Any, X: FloatArray, y: IntArray, *, loss: str = "softmax", reg: float = 0.0,
                 penalty: str = "l2", l1_ratio: float = 0.5, delta: float = 1.0, batch_size: int = 200,
                 epochs: Optional[int] = None, num_iters: Optional[int] = None, rng: Union[SplitMix64, int] = 0,
                 sample_weight: Optional[FloatArray] = None, unpenalized_rows: int = 0,
                 intercept: bool = False) -> FloatArray:
    """Minibatch training of W = optimizer.params[0]; returns the loss before every update.

    With sample_weight w, a minibatch's data loss is sum(w[rows] * loss_i) / (len(rows) * mean(w)):
    an unbiased estimate of the weighted mean over all rows."""
    sampling, count = ("epochs", epochs) if epochs is not None else ("with_replacement", num_iters)
    assert count is not None, "give epochs or num_iters"
    if not isinstance(rng, SplitMix64):
        rng = SplitMix64(rng)
    W = optimizer.params[0]
    if intercept:  # the bias trick
        X = np.hstack([X, np.ones((X.shape[0], 1), X.dtype)])
    losses = []
    with optimizer.native_loop() as run:
        losses = _train(run, optimizer, W, X, y, rng, loss, reg, penalty, l1_ratio, delta, batch_size, count, sampling,
                        sample_weight, unpenalized_rows)
    return np.array(losses)


def _train(run: Any, optimizer: Any, W: FloatArray, X: FloatArray, y: IntArray, rng: SplitMix64, loss: str,
           reg: float, penalty: str, l1_ratio: float, delta: float, batch_size: int, count: int, sampling: str,
           sample_weight: Optional[FloatArray], unpenalized_rows: int) -> list[float]:
    losses = []
    for rows in minibatches(rng, len(X), batch_size, count, sampling):
        scores = X[rows].dot(W)
        weights = None if sample_weight is None else sample_weight[rows]
        if loss == "softmax":
            data_loss, dscores = softmax_cross_entropy(scores, y[rows], weights)
        else:
            data_loss, dscores = multiclass_hinge(scores, y[rows], delta, weights)
        if sample_weight is not None:   # from the minibatch's weighted mean to the estimate above
            assert weights is not None
            scale = np.sum(weights) / (len(rows) * np.mean(sample_weight))
            data_loss, dscores = float(data_loss * scale), dscores * scale.astype(dscores.dtype)
        value, dW = _with_penalty(W, X[rows], data_loss, dscores, reg, penalty, l1_ratio, unpenalized_rows)
        lr = run.planned_lrs(1)
        lr = lr[0] if isinstance(lr, list) else lr
        optimizer_update(optimizer, run.settings, dW, lr, run.first_step)
        run.record(1, [lr])
        losses.append(value)
    return losses
