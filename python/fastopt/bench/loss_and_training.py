"""Loss-kernel and native-training-loop workloads against NumPy, torch and the GEMM peak."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import numpy as np

from .. import _core, optim, reference, training
from .. import losses
from .._typing import Array
from .harness import Workload, _fmt_time, _ratio, _torch, machine_peaks, measure


LOSS_SHAPES: list[tuple[int, int, int]] = [(256, 3073, 10), (10000, 3073, 10), (4096, 512, 1000)]  # CIFAR-10 minibatch, CIFAR-10, large C


def loss_workloads(shapes: Sequence[tuple[int, int, int]] = LOSS_SHAPES, include_reference: bool = True,
                   include_torch: bool = True, seed: int = 0) -> Iterator[Workload]:
    """Yield one :class:`Workload` per (loss, shape), float32: fastopt, the reference's
    vectorized version and torch with autograd (cross_entropy / multi_margin_loss)."""
    torch = _torch() if include_torch else None
    if torch is not None:
        torch.set_num_threads(_core.get_num_threads())
    rng = np.random.default_rng(seed)
    for N, D, C in shapes:
        X = rng.standard_normal((N, D)).astype(np.float32)
        W = (0.001 * rng.standard_normal((D, C))).astype(np.float32)
        y = rng.integers(0, C, N)
        for loss in ("softmax", "svm"):
            w = Workload(f"{loss} f32 N={N} D={D} C={C}", bytes_moved=X.nbytes)
            w.flops = 4 * N * D * C  # scores and gradient: two N·D·C multiply-adds
            if loss == "softmax":
                w.candidates["fastopt"] = lambda W=W, X=X, y=y: losses.softmax_loss(W, X, y, 1e-3)
                if include_reference:
                    w.candidates["numpy"] = lambda W=W, X=X, y=y: reference.softmax_loss_vectorized(W, X, y, 1e-3)
            else:
                w.candidates["fastopt"] = lambda W=W, X=X, y=y: losses.svm_loss(W, X, y, 1e-3)
                if include_reference:
                    w.candidates["numpy"] = lambda W=W, X=X, y=y: reference.svm_loss_vectorized(W, X, y, 1e-3)
            if torch is not None:
                tX, ty = torch.from_numpy(X), torch.from_numpy(y)
                tW = torch.from_numpy(W.copy()).requires_grad_()
                fn = torch.nn.functional.cross_entropy if loss == "softmax" else torch.nn.functional.multi_margin_loss

                def torch_step(tX: Any = tX, ty: Any = ty, tW: Any = tW, fn: Any = fn) -> None:
                    tW.grad = None
                    out = fn(tX @ tW, ty) + 1e-3 * (tW * tW).sum()
                    out.backward()
                w.candidates["torch"] = torch_step
            yield w
        del X, W, y


TRAINING_SHAPES: list[tuple[str, int, int, int]] = [("digits", 1797, 65, 10), ("CIFAR-10 shape", 10000, 3073, 10)]


TRAINING_BATCH = 200


TRAINING_ITERS_PER_CALL = 20


def training_workloads(shapes: Sequence[tuple[str, int, int, int]] = TRAINING_SHAPES,
                       batch_size: int = TRAINING_BATCH, iters: int = TRAINING_ITERS_PER_CALL,
                       seed: int = 0) -> Iterator[Workload]:
    """Yield one :class:`Workload` per data shape, float32, softmax + SGD: ``iters``
    minibatch iterations per call of

    * ``course``: the course's loop in NumPy (``rng.choice``, ``X[idx]``, the
      reference ``softmax_loss_vectorized``, ``W -= lr * dW``);
    * ``python``: the same loop in Python over fastopt's fused loss and step;
    * ``native``: :func:`fastopt.training.train_linear` (the loop in C++).
    """
    rng = np.random.default_rng(seed)
    lr, reg = 1e-3, 1e-4
    for name, N, D, C in shapes:
        if name == "digits":
            from ..datasets import load_digits, standardize
            X, y = load_digits()
            X = np.hstack([standardize(X)[0], np.ones((N, 1))]).astype(np.float32)
        else:
            X = rng.standard_normal((N, D)).astype(np.float32)
            y = rng.integers(0, C, N)
        w = Workload(f"softmax+sgd f32 {name} N={N} D={D} C={C} B={batch_size}",
                     bytes_moved=0, flops=4 * batch_size * D * C * iters)
        W_course, W_python, W_native = (np.zeros((D, C), np.float32) for _ in range(3))
        course_rng, python_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        python_opt, native_opt = optim.SGD([W_python], lr=lr), optim.SGD([W_native], lr=lr)
        native_rng = training.SplitMix64(seed)

        def course(X: Array = X, y: Array = y, W: Array = W_course, rng: Any = course_rng) -> None:
            for _ in range(iters):
                idx = rng.choice(len(X), batch_size, replace=True)
                _, dW = reference.softmax_loss_vectorized(W, X[idx], y[idx], reg)
                W -= lr * dW

        def python(X: Array = X, y: Array = y, opt: Any = python_opt, W: Array = W_python,
                   rng: Any = python_rng) -> None:
            for _ in range(iters):
                idx = rng.choice(len(X), batch_size, replace=True)
                _, dW = losses.softmax_loss(W, X[idx], y[idx], reg)
                opt.step([dW])

        w.candidates["native"] = lambda X=X, y=y, opt=native_opt, r=native_rng: training.train_linear(
            opt, X, y, reg=reg, batch_size=batch_size, num_iters=iters, rng=r)
        w.candidates["python"] = python
        w.candidates["course"] = course
        yield w
        del X, y


LOSS_HEADER = ("| workload | fastopt (median) | vs NumPy reference (vectorized) | vs torch autograd "
               "| fraction of memory roofline | fraction of GEMM peak |\n|---|---|---|---|---|---|")


def run_losses(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """Measure the loss workloads, yielding one result row per workload."""
    bandwidth, gemm_peak = machine_peaks()
    shapes = LOSS_SHAPES[:2] if quick else LOSS_SHAPES
    for w in loss_workloads(shapes=shapes):
        med = measure(w.candidates, budget=budget if budget is not None else (0.2 if quick else 1.0), settle=0.15)
        t = med["fastopt"]
        yield {"workload": w.name, "fastopt_s": t,
               "speedup_vs_numpy": med["numpy"] / t if "numpy" in med else None,
               "speedup_vs_torch": med["torch"] / t if "torch" in med else None,
               "memory_roofline_fraction": w.bytes_moved / bandwidth / t,
               "gemm_peak_fraction": w.flops / gemm_peak / t,
               "bandwidth_gb_s": bandwidth / 1e9, "gemm_peak_gflop_s": gemm_peak / 1e9,
               **{f"{k}_s": v for k, v in med.items() if k != "fastopt"}}


def format_loss_row(row: dict[str, Any]) -> str:
    ratio = _ratio
    return (f"| {row['workload']} | {_fmt_time(row['fastopt_s'])} | {ratio(row['speedup_vs_numpy'])} "
            f"| {ratio(row['speedup_vs_torch'])} | {row['memory_roofline_fraction']:.2g} "
            f"| {row['gemm_peak_fraction']:.2f} |")


def run_training(quick: bool = False, budget: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """Measure the training-loop workloads, yielding one result row per workload."""
    _, gemm_peak = machine_peaks()
    for w in training_workloads():
        med = measure(w.candidates, budget=budget if budget is not None else (0.3 if quick else 1.0), settle=0.15)
        t = med["native"] / TRAINING_ITERS_PER_CALL
        yield {"workload": w.name, "native_s_per_iter": t,
               "python_s_per_iter": med["python"] / TRAINING_ITERS_PER_CALL,
               "course_s_per_iter": med["course"] / TRAINING_ITERS_PER_CALL,
               "speedup_vs_course": med["course"] / med["native"],
               "speedup_vs_python": med["python"] / med["native"],
               "gemm_peak_fraction": w.flops / gemm_peak / med["native"], "gemm_peak_gflop_s": gemm_peak / 1e9}


TRAINING_HEADER = ("| training loop (per iteration, median) | native | Python loop over fastopt kernels "
                   "| course loop (NumPy) | native vs course | native vs Python loop | fraction of GEMM peak |"
                   "\n|---|---|---|---|---|---|---|")


def format_training_row(row: dict[str, Any]) -> str:
    return (f"| {row['workload']} | {_fmt_time(row['native_s_per_iter'])} | {_fmt_time(row['python_s_per_iter'])} "
            f"| {_fmt_time(row['course_s_per_iter'])} | {_ratio(row['speedup_vs_course'])} "
            f"| {_ratio(row['speedup_vs_python'])} | {row['gemm_peak_fraction']:.2f} |")
