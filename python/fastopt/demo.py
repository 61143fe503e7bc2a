"""The lecture's optimizer comparison, as pictures (``fastopt demo``).

Three figures:

* ``trajectories_quadratic.png``: SGD, SGD+momentum, Nesterov, AdaGrad, RMSProp
  and Adam on an ill-conditioned quadratic, ``f = (x² + 50 y²) / 2`` — plain SGD
  jitters along the steep direction and crawls along the shallow one;
* ``trajectories_saddle.png``: the same optimizers started next to the saddle
  point of ``f = x² + y⁴/4 − y²/2`` (minima at y = ±1) — plain SGD lingers at the
  saddle, where the gradient is nearly zero;
* ``loss_curves.png``: their training loss on the embedded digits (softmax,
  minibatches of 100), with random search (the lecture's "first very bad idea")
  as the baseline.

The numbers come from :func:`trajectories` and :func:`loss_curves`, which need
no matplotlib; only the ``plot_*`` functions import it.
"""
import os
from typing import Any, Callable, Optional, Union

import numpy as np

from . import datasets, optim
from .losses import softmax_loss
from .search import random_search
from ._typing import FloatArray
from .optim import Optimizer
from .search import SearchResult
from .training import train_linear

# An optimizer over a list of arrays, by name.
_Makers = dict[str, Callable[[list[FloatArray]], Optimizer]]

__all__ = ["SURFACES", "OPTIMIZERS_2D", "OPTIMIZERS_DATA", "trajectories", "loss_curves", "plot_trajectories",
           "plot_loss_curves", "run"]

# name -> (f(x, y), gradient (x, y) -> (dx, dy), start, plot box (x0, x1, y0, y1))
# Stationary points drawn on the plots: name -> [(label, (x, y)), ...]
LANDMARKS: dict[str, list[tuple[Optional[str], tuple[float, float]]]] = {
    "quadratic": [("minimum", (0.0, 0.0))],
    "saddle": [("saddle point", (0.0, 0.0)), ("minima", (0.0, 1.0)), (None, (0.0, -1.0))],
}
SURFACES: dict[str, tuple[Callable[[Any, Any], Any], Callable[[float, float], tuple[float, float]],
                          tuple[float, float], tuple[float, float, float, float]]] = {
    "quadratic": (lambda x, y: 0.5 * (x * x + 50 * y * y),
                  lambda x, y: (x, 50 * y),
                  (-9.0, 1.6), (-10, 2, -2.5, 2.5)),
    "saddle": (lambda x, y: x * x + 0.25 * y ** 4 - 0.5 * y * y,
               lambda x, y: (2 * x, y ** 3 - y),
               (-1.8, 1e-3), (-2, 2, -1.6, 1.6)),
}

# The same settings on both surfaces. SGD's lr is near the largest the steep
# direction of the quadratic allows (2/50); momentum's lr·1/(1 − 0.9) is twice it.
OPTIMIZERS_2D: _Makers = {
    "SGD": lambda p: optim.SGD(p, lr=0.038),
    "SGD+momentum": lambda p: optim.SGD(p, lr=0.008, momentum=0.9),
    "Nesterov": lambda p: optim.SGD(p, lr=0.008, momentum=0.9, nesterov=True),
    "AdaGrad": lambda p: optim.Adagrad(p, lr=1.0),
    "RMSProp": lambda p: optim.RMSprop(p, lr=0.1),
    "Adam": lambda p: optim.Adam(p, lr=0.3),
}

OPTIMIZERS_DATA: _Makers = {
    "SGD": lambda p: optim.SGD(p, lr=0.05),
    "SGD+momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
    "Nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "AdaGrad": lambda p: optim.Adagrad(p, lr=0.1),
    "RMSProp": lambda p: optim.RMSprop(p, lr=0.005),
    "Adam": lambda p: optim.Adam(p, lr=0.01),
}


def trajectories(surface: str, steps: int = 150, optimizers: Optional[_Makers] = None) -> dict[str, FloatArray]:
    """Positions of every optimizer on a 2-D surface: name -> array (steps + 1, 2)."""
    _, grad, start, _ = SURFACES[surface]
    paths: dict[str, FloatArray] = {}
    for name, make in (optimizers or OPTIMIZERS_2D).items():
        p = np.array(start, dtype=np.float64)
        g = np.zeros(2)
        opt = make([p])
        path = [p.copy()]
        for _ in range(steps):
            g[:] = grad(p[0], p[1])
            opt.step([g])
            path.append(p.copy())
        paths[name] = np.array(path)
    return paths


def loss_curves(epochs: int = 10, batch_size: int = 100, seed: int = 0, search_trials: Optional[int] = None,
                optimizers: Optional[_Makers] = None) -> tuple[dict[str, FloatArray], SearchResult, dict[str, float]]:
    """Training loss on the standardized digits (bias trick, softmax, reg 1e-4).

    Returns ``(curves, search, accuracy)``: ``curves[name]`` is the loss before
    every update (native loop, :func:`fastopt.training.train_linear`); ``search``
    is the :class:`fastopt.search.SearchResult` of as many random-search trials
    as there are updates (each trial evaluates the full training loss);
    ``accuracy[name]`` is the training accuracy of each final W, random search's
    included.
    """
    X, y = datasets.load_digits()
    X = np.hstack([datasets.standardize(X)[0], np.ones((len(X), 1))])
    C = int(y.max()) + 1
    curves: dict[str, FloatArray] = {}
    accuracy: dict[str, float] = {}
    for name, make in (optimizers or OPTIMIZERS_DATA).items():
        W = np.zeros((X.shape[1], C))
        curves[name] = train_linear(make([W]), X, y, reg=1e-4, epochs=epochs, batch_size=batch_size, rng=seed)
        accuracy[name] = float(np.mean(np.argmax(X @ W, axis=1) == y))
    trials = search_trials or len(next(iter(curves.values())))
    search = random_search(lambda W: softmax_loss(W, X, y, 1e-4)[0], (X.shape[1], C), num_trials=trials,
                           scale=0.01, seed=seed)
    accuracy["random search"] = float(np.mean(np.argmax(X @ search.W, axis=1) == y))
    return curves, search, accuracy


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_trajectories(surface: str, paths: dict[str, FloatArray], out: Union[str, os.PathLike[str]]) -> None:
    """Contour plot of ``surface`` with every path; saved to ``out``."""
    plt = _pyplot()
    f, _, start, (x0, x1, y0, y1) = SURFACES[surface]
    xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.contour(xs, ys, f(xs, ys), levels=30, cmap="Greys", linewidths=0.6)
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], ".-", lw=1.2, ms=3, label=name)
    ax.plot(*start, "k*", ms=12, label="start")
    for label, (px, py) in LANDMARKS[surface]:
        marker = "kX" if label == "saddle point" else "ko"
        ax.plot(px, py, marker, ms=8, mfc="none", label=label)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    n = len(next(iter(paths.values()))) - 1
    ax.set_title(f"{surface}: {n} steps of each optimizer (fastopt.optim)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_loss_curves(curves: dict[str, FloatArray], search: SearchResult, out: Union[str, os.PathLike[str]]) -> None:
    """Loss per update of every optimizer and random search's best-so-far; saved to ``out``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, losses in curves.items():
        ax.plot(np.arange(len(losses)), losses, lw=1, label=name)
    ax.plot(np.arange(len(search.best_losses)), search.best_losses, "k--", lw=1.5,
            label="random search (best so far; x = trials)")
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("minibatch training loss (softmax)")
    ax.set_title("digits, softmax regression: optimizers vs random search")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def run(out_dir: Union[str, os.PathLike[str]], steps: int = 150, epochs: int = 10, seed: int = 0,
        log: Callable[[str], None] = print) -> list["os.PathLike[str]"]:
    """Compute and save the three figures in ``out_dir``; returns their paths."""
    import pathlib
    out_path = pathlib.Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    written: list[os.PathLike[str]] = []
    for surface in SURFACES:
        paths = trajectories(surface, steps)
        f = SURFACES[surface][0]
        out = out_path / f"trajectories_{surface}.png"
        plot_trajectories(surface, paths, out)
        written.append(out)
        log(f"{surface}: f after {steps} steps: " +
            ", ".join(f"{name} {f(*path[-1]):.3g}" for name, path in paths.items()))
    curves, search, accuracy = loss_curves(epochs=epochs, seed=seed)
    out = out_path / "loss_curves.png"
    plot_loss_curves(curves, search, out)
    written.append(out)
    log(f"digits, {epochs} epochs: mean loss over the last epoch (training accuracy): " +
        ", ".join(f"{name} {np.mean(c[-len(c) // epochs:]):.3f} ({accuracy[name]:.1%})" for name, c in curves.items())
        + f"; random search, best of {len(search.losses)} trials: {search.loss:.3f} "
          f"({accuracy['random search']:.1%})")
    for path in written:
        log(f"saved {path}")
    return written
