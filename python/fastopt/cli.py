"""The ``fastopt`` command: ``train``, ``demo``, ``bench``, ``info``."""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import _core, datasets, linear, schedules
from ._typing import FloatArray, IntArray


def _train_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train a linear classifier (default: the embedded 8×8 digits)",
                       description="Train a softmax or SVM linear classifier with fastopt's fused kernels.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="FILE.npz", help="an .npz file with arrays X (N×D) and y (N labels)")
    source.add_argument("--cifar10", metavar="DIR", help="a cifar-10-batches-py directory (validation = test batch)")
    p.add_argument("--loss", choices=["softmax", "svm"], default="softmax")
    p.add_argument("--optimizer", choices=sorted(linear.OPTIMIZERS), default="adam")
    p.add_argument("--solver", choices=["sgd", "lbfgs"], default="sgd",
                   help="minibatch training with --optimizer, or full-batch L-BFGS")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--schedule", choices=["constant", "cosine", "step"], default="constant",
                   help="learning-rate schedule over the whole run")
    p.add_argument("--reg", type=float, default=1e-4, help="regularization strength (default 1e-4)")
    p.add_argument("--penalty", choices=["l2", "l1", "elastic_net"], default="l2")
    p.add_argument("--l1-ratio", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--epochs", type=int, default=30, help="epochs (sgd) or iterations (lbfgs)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="held-out fraction (not with --cifar10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="OUT.png", help="save the loss curve (needs matplotlib: fastopt[plot])")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="the lecture's optimizer comparison as PNG figures (needs matplotlib)",
                       description="Trajectories of SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam on an "
                                   "ill-conditioned quadratic and on a saddle, and their loss curves on the "
                                   "embedded digits next to random search; saved as PNG.")
    p.add_argument("--out", metavar="DIR", default="fastopt-demo", help="output directory (default fastopt-demo)")
    p.add_argument("--steps", type=int, default=150, help="steps on the 2-D surfaces (default 150)")
    p.add_argument("--epochs", type=int, default=10, help="epochs on the digits (default 10)")
    p.add_argument("--seed", type=int, default=0)


def demo(args: argparse.Namespace) -> int:
    for name in ("steps", "epochs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("fastopt: demo needs matplotlib: pip install 'fastopt[plot]'", file=sys.stderr)
        return 2
    from . import demo as demo_module
    demo_module.run(args.out, steps=args.steps, epochs=args.epochs, seed=args.seed)
    return 0


def _load(args: argparse.Namespace) -> tuple[str, FloatArray, IntArray, FloatArray, IntArray]:
    if args.cifar10:
        X_train, y_train, X_val, y_val = datasets.load_cifar10(args.cifar10)
        name = f"CIFAR-10 ({args.cifar10})"
    else:
        if args.data:
            X, y = datasets.load_npz(args.data)
            name = args.data
        else:
            X, y = datasets.load_digits()
            name = "embedded 8×8 digits (UCI, 1797 images)"
        X_train, y_train, X_val, y_val = datasets.train_val_split(X, y, args.val_fraction, args.seed)
    X_train, X_val = datasets.standardize(X_train, X_val)
    return name, X_train, y_train, X_val, y_val


def _progress(total: int, quiet: bool) -> Callable[[int, float], None]:
    interactive = sys.stderr.isatty() and not quiet

    def report(epoch: int, loss: float) -> None:
        if not interactive:
            return
        width = 30
        done = int(width * epoch / total)
        sys.stderr.write(f"\r  epoch {epoch:>4}/{total} [{'#' * done}{'.' * (width - done)}] loss {loss:.4f}")
        if epoch == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return report


def _check_train_arguments(args: argparse.Namespace) -> None:
    """Every numeric option, checked before any data is loaded."""
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("lr", "reg"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"--{name} must be a finite number >= 0, got {value}")
    if not 0 <= args.l1_ratio <= 1:
        raise ValueError(f"--l1-ratio must be in [0, 1], got {args.l1_ratio}")
    if not 0 < args.val_fraction < 1:
        raise ValueError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")


def train(args: argparse.Namespace) -> int:
    _check_train_arguments(args)
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("fastopt: --plot needs matplotlib: pip install 'fastopt[plot]'", file=sys.stderr)
            return 2
    name, X_train, y_train, X_val, y_val = _load(args)
    steps = args.epochs * math.ceil(len(X_train) / args.batch_size)
    lr: Union[float, Callable[[int], float]] = float(args.lr)   # --schedule constant
    if args.schedule == "cosine":
        lr = schedules.cosine(args.lr, total_steps=steps)
    elif args.schedule == "step":
        lr = schedules.step_decay(args.lr, step_size=max(1, steps // 3), gamma=0.1)
    cls = linear.SoftmaxClassifier if args.loss == "softmax" else linear.LinearSVMClassifier
    model = cls(optimizer=args.optimizer, learning_rate=lr, reg=args.reg, penalty=args.penalty,
                l1_ratio=args.l1_ratio, batch_size=args.batch_size, max_iter=args.epochs, solver=args.solver,
                n_iter_no_change=args.epochs, random_state=args.seed)  # minibatch: exactly --epochs epochs
    print(f"data: {name}: {len(X_train)} train / {len(X_val)} validation, {X_train.shape[1]} features, "
          f"{len(np.unique(y_train))} classes")
    print(f"model: {args.loss} loss, {args.penalty} penalty (reg {args.reg:g}), "
          + (f"{args.optimizer}, lr {args.lr:g} ({args.schedule}), batch {args.batch_size}, {args.epochs} epochs"
             if args.solver == "sgd" else f"L-BFGS, at most {args.epochs} iterations"))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linear.ConvergenceWarning)  # the loss and accuracies are printed below
        model.fit(X_train, y_train, callback=_progress(args.epochs, args.quiet))
    elapsed = time.perf_counter() - start
    print(f"final training loss: {model.loss_history_[-1]:.4f}")
    print(f"train accuracy: {model.score(X_train, y_train):.4f}")
    print(f"validation accuracy: {model.score(X_val, y_val):.4f}")
    print(f"wall time: {elapsed:.2f} s")
    if args.plot:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(np.arange(1, len(model.loss_history_) + 1), model.loss_history_)
        ax.set_xlabel("epoch" if args.solver == "sgd" else "run")
        ax.set_ylabel(f"mean training loss ({args.loss})")
        ax.set_title(f"fastopt train: {args.optimizer}, lr {args.lr:g}")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"loss curve saved to {args.plot}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fastopt", description="Fused C++ optimizers and losses for NumPy.")
    parser.add_argument("--version", action="version", version=f"fastopt {_core.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _demo_parser(sub)
    sub.add_parser("bench", help="the benchmark table: fastopt bench [--quick] [--json FILE] ... (see fastopt bench -h)",
                   add_help=False)
    sub.add_parser("info", help="show the build and run-time configuration")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["bench"]:  # its options belong to fastopt.bench's own parser
            from . import bench as bench_module
            return bench_module.main(argv[1:])
        args = parser.parse_args(argv)
        if args.command == "info":
            from ._config import show_config
            show_config()
            return 0
        try:
            return train(args) if args.command == "train" else demo(args)
        except (ValueError, TypeError, OSError) as exc:   # bad options or files: one line, status 2
            parser.exit(2, f"fastopt {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        sys.stderr.write("\nfastopt: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
