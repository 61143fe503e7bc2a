"""Calls mypy must reject: each line marked ``# error`` must be reported, and
no other (tests/test_typing.py). The annotations, not just their presence,
are what is tested."""
import numpy as np

import fastopt
from fastopt.linear import SoftmaxClassifier
from fastopt.optim import Adam

W = np.zeros((8, 3))
X = np.zeros((5, 8))
p = np.zeros(4, np.float32)

fastopt.adam(p, p, p, p, step="1")  # error
fastopt.sgd(p, p)  # error
loss: str = fastopt.softmax_loss(W, X, [0, 1, 2, 0, 1])[0]  # error
Adam([W], lr="fast")  # error
Adam([W], betas=0.9)  # error
SoftmaxClassifier(solver="newton")  # error
SoftmaxClassifier(penalty="l3")  # error
SoftmaxClassifier().fit(X, [0, 1, 0, 1, 0]).predict_prob(X)  # error
accuracy: str = SoftmaxClassifier().score(X, [0, 1, 0, 1, 0])  # error
fastopt.schedules.cosine(0.1)  # error
