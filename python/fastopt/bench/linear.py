"""Linear classifiers against scikit-learn: ``fastopt bench --only linear``.

Two tables, measured side by side in one process (candidates interleaved,
medians of repeated fits):

* defaults: ``SoftmaxClassifier()`` and ``LinearSVMClassifier()`` against
  ``LogisticRegression()``, ``SGDClassifier()`` and ``LinearSVC()``: fit time
  and validation accuracy, at 1 and 2 threads (scikit-learn's BLAS and OpenMP
  limited with threadpoolctl). The median of 7 (digits) or 5 fits; on the
  large sets SGDClassifier and LinearSVC, which take up to a minute, once;
* the same objective: fastopt's L-BFGS on the fused softmax loss (penalty
  ``1 / (2 C N) · ||coef||²``, intercept unpenalized) against
  ``LogisticRegression(C=1, tol=1e-8)``: the time scikit-learn takes to its
  optimum, and the time fastopt takes to an objective at least as low (medians of
  5 interleaved rounds on the digits, 3 on the larger sets).

Data: the digits (1797×64), and two ``make_classification`` sets with 10
classes (50,000×256 and 20,000×1,024 training rows plus 20% held out),
standardized with the training rows' statistics.
"""
import time
import warnings
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .. import _core, datasets, linear
from ..lbfgs import minimize
from .._typing import FloatArray
from ..losses import softmax_loss


def _sklearn() -> bool:
    try:
        import sklearn  # noqa: F401
        return True
    except ImportError:
        return False


def data_sets(quick: bool = False) -> Iterator[tuple[str, FloatArray, Any, FloatArray, Any]]:
    """(name, X_train, y_train, X_val, y_val), standardized."""
    X, y = datasets.load_digits()
    X_tr, y_tr, X_va, y_va = datasets.train_val_split(X, y, 0.2, seed=0)
    X_tr, X_va = datasets.standardize(X_tr, X_va)
    yield "digits 1437×64", X_tr, y_tr, X_va, y_va
    if quick:
        return
    from sklearn.datasets import make_classification
    for n, d in ((50_000, 256), (20_000, 1024)):
        X, y = make_classification(n_samples=n * 5 // 4, n_features=d, n_informative=d // 4, n_redundant=d // 8,
                                   n_classes=10, random_state=0)
        X_tr, y_tr, X_va, y_va = X[:n], y[:n], X[n:], y[n:]
        X_tr, X_va = datasets.standardize(X_tr, X_va)
        yield f"make_classification {n}×{d}", X_tr, y_tr, X_va, y_va


class _Threads:
    """fastopt's and scikit-learn's (BLAS, OpenMP) thread counts, restored on exit."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> "_Threads":
        self.previous = _core.get_num_threads()
        _core.set_num_threads(self.n)
        try:
            from threadpoolctl import threadpool_limits
            self.limits: Any = threadpool_limits(self.n)
        except ImportError:
            self.limits = None
        return self

    def __exit__(self, *exc: object) -> None:
        _core.set_num_threads(self.previous)
        if self.limits is not None:
            self.limits.restore_original_limits()


def _fit_times(makers: dict[str, Callable[[], Any]], X: FloatArray, y: Any, rounds: int,
               once: Sequence[str] = ()) -> tuple[dict[str, float], dict[str, Any]]:
    """Median fit time of each estimator (fits interleaved), and the last fitted models.
    Estimators in `once` (the ones that take a minute) are fitted in the first round only."""
    times: dict[str, list[float]] = {k: [] for k in makers}
    models: dict[str, Any] = {}
    for r in range(rounds):
        for label, make in makers.items():
            if r > 0 and label in once:
                continue
            model = make()
            time.sleep(0.2)  # the previous candidate's worker threads stop spinning
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning of either library: the defaults as they are
                t = time.perf_counter()
                model.fit(X, y)
                times[label].append(time.perf_counter() - t)
            models[label] = model
    return {k: float(np.median(v)) for k, v in times.items()}, models


def run_defaults(quick: bool = False, threads: Sequence[int] = (1, 2)) -> Iterator[dict[str, Any]]:
    """One row per (data set, thread count, estimator): fit time, validation accuracy."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.svm import LinearSVC
    makers: dict[str, Callable[[], Any]] = {"fastopt SoftmaxClassifier()": linear.SoftmaxClassifier,
              "fastopt LinearSVMClassifier()": linear.LinearSVMClassifier,
              "sklearn LogisticRegression()": LogisticRegression,
              "sklearn SGDClassifier()": SGDClassifier,
              "sklearn LinearSVC()": LinearSVC}
    for name, X_tr, y_tr, X_va, y_va in data_sets(quick):
        for n in threads:
            with _Threads(n):
                small = len(X_tr) < 5000
                times, models = _fit_times(makers, X_tr, y_tr, rounds=7 if small else 5,
                                           once=() if small else ("sklearn SGDClassifier()", "sklearn LinearSVC()"))
            base = times["sklearn LogisticRegression()"]
            base_acc = models["sklearn LogisticRegression()"].score(X_va, y_va)
            for label, t in times.items():
                acc = models[label].score(X_va, y_va)
                yield {"data": name, "threads": n, "estimator": label, "fit_s": t, "val_accuracy": acc,
                       "speedup_vs_logistic": base / t, "accuracy_vs_logistic": acc - base_acc}


def run_same_objective(quick: bool = False, threads: Sequence[int] = (1, 2),
                       C: float = 1.0) -> Iterator[dict[str, Any]]:
    """Time to scikit-learn's optimum of the L2-penalized multinomial objective."""
    from sklearn.linear_model import LogisticRegression
    for name, X_tr, y_tr, _, _ in data_sets(quick):
        N = len(X_tr)
        reg = 1.0 / (2.0 * C * N)
        classes, y_index = np.unique(y_tr, return_inverse=True)
        Xb = np.hstack([X_tr, np.ones((N, 1))])

        def objective(W: FloatArray) -> tuple[float, FloatArray]:
            return softmax_loss(W, Xb, y_index, reg, unpenalized_rows=1)

        def to_target(target: float) -> tuple[Optional[float], float]:
            """Seconds fastopt's L-BFGS takes to an objective <= target (None: never), and its last value."""
            reached: list[float] = []
            start = time.perf_counter()

            def stop_at_target(x: FloatArray, f: float) -> None:
                if f <= target and not reached:
                    reached.append(time.perf_counter() - start)
                    raise StopIteration

            try:
                result = minimize(objective, np.zeros((Xb.shape[1], len(classes))), max_iter=10_000, tol=0.0,
                                  ftol=0.0, callback=stop_at_target)
                final = float(result.fun)
            except StopIteration:
                final = target
            return (reached[0] if reached else None), final

        for n in threads:
            # Medians of interleaved rounds (one fit of 20 ms is at the mercy of the VM's noise);
            # the target is the first round's optimum (the fits are deterministic).
            sk_times: list[float] = []
            fo_times: list[Optional[float]] = []
            target, final = np.nan, np.nan
            with _Threads(n):
                for _ in range(5 if N < 5000 else 3):
                    time.sleep(0.2)
                    t = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        theirs = LogisticRegression(C=C, tol=1e-8, max_iter=10_000).fit(X_tr, y_tr)
                    sk_times.append(time.perf_counter() - t)
                    if not sk_times[1:]:
                        target = objective(np.vstack([theirs.coef_.T, theirs.intercept_]))[0]
                    time.sleep(0.2)
                    seconds, final = to_target(target)
                    fo_times.append(seconds)
            sk_time = float(np.median(sk_times))
            done = [t for t in fo_times if t is not None]
            fo_time = float(np.median(done)) if len(done) == len(fo_times) else None
            yield {"data": name, "threads": n, "sklearn_s": sk_time, "objective": target,
                   "fastopt_s": fo_time, "fastopt_final_gap": final - target,
                   "speedup": sk_time / fo_time if fo_time else None}


DEFAULTS_HEADER = ("| data | threads | estimator | fit (median) | validation accuracy | speed vs LogisticRegression() "
                   "| accuracy vs LogisticRegression() |\n|---|---|---|---|---|---|---|")


def format_defaults_row(row: dict[str, Any]) -> str:
    return (f"| {row['data']} | {row['threads']} | {row['estimator']} | {row['fit_s']:.3f} s | "
            f"{row['val_accuracy']:.4f} | {row['speedup_vs_logistic']:.2f}× | {row['accuracy_vs_logistic']:+.4f} |")


SAME_HEADER = ("| data | threads | LogisticRegression(tol=1e-8) | fastopt L-BFGS to the same objective | speed-up "
               "|\n|---|---|---|---|---|")


def format_same_row(row: dict[str, Any]) -> str:
    ours = f"{row['fastopt_s']:.3f} s" if row["fastopt_s"] is not None else \
        f"not reached (gap {row['fastopt_final_gap']:.1e})"
    speed = f"{row['speedup']:.2f}×" if row["speedup"] is not None else "–"
    return f"| {row['data']} | {row['threads']} | {row['sklearn_s']:.3f} s | {ours} | {speed} |"
