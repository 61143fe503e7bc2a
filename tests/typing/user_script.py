"""A user's script over fastopt's public API: `mypy --strict` must accept it as
it is (tests/test_typing.py), and it runs (the same test executes it)."""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

import fastopt
from fastopt import gradcheck, lbfgs, schedules, training
from fastopt.linear import LinearSVMClassifier, Softmax, SoftmaxClassifier
from fastopt.optim import SGD, Adam, AdamW

rng = np.random.default_rng(0)

# Single-tensor steps.
p = rng.standard_normal(100).astype(np.float32)
g = rng.standard_normal(100).astype(np.float32)
m, v = np.zeros_like(p), np.zeros_like(p)
fastopt.adam(p, g, m, v, step=1, lr=1e-3)
fastopt.sgd(p, g, lr=0.1, weight_decay=1e-4)

# Losses.
X: npt.NDArray[np.float64] = rng.standard_normal((50, 8))
y = rng.integers(0, 3, 50)
W = 0.01 * rng.standard_normal((8, 3))
loss, dW = fastopt.softmax_loss(W, X, y, 1e-3)
hinge, _ = fastopt.svm_loss(W, X, y, reg=1e-3, delta=1.0)
total: float = loss + hinge
error = gradcheck.rel_error(dW, fastopt.reference.softmax_loss_vectorized(W, X, y, 1e-3)[1])

# Optimizers: a schedule as lr, parameter groups, state_dict.
opt = Adam([W], lr=schedules.cosine(1e-2, total_steps=10))
applied: bool = opt.step([dW])
groups = SGD([{"params": [p], "lr": 0.1}, {"params": [m], "weight_decay": 0.0}], momentum=0.9)
groups.step([g, g])
state = AdamW({"w": W}, lr=1e-3).state_dict()
count: int = opt.step_count
losses = training.train_linear(SGD([W], lr=0.05), X, y, epochs=2, batch_size=10, rng=0)
mean_loss: float = float(losses.mean())

# L-BFGS on the fused loss.
result = lbfgs.minimize(lambda w: fastopt.softmax_loss(w, X, y, 1e-3), np.zeros((8, 3)))
objective: float = result.fun

# Estimators.
model = SoftmaxClassifier(reg=1e-3, max_iter=50).fit(X, y)
probabilities = model.predict_proba(X)
accuracy: float = model.score(X, y)
svm = LinearSVMClassifier(solver="sgd", learning_rate=1e-3, max_iter=5, tol=0.0).partial_fit(X, y, classes=[0, 1, 2])
course = Softmax()
history: list[float] = course.train(X, y, learning_rate=1e-2, num_iters=20, batch_size=10, seed=0)

fastopt.set_num_threads(1)
isas: list[str] = fastopt.available_isas()
print(f"{total:.3f} {error:.1e} {applied} {count} {mean_loss:.3f} {objective:.3f} {accuracy:.2f} "
      f"{probabilities.shape} {len(history)} {len(state['state'])} {svm.n_iter_} {isas}")
