"""Data for the linear classifiers: the embedded 8×8 digits, .npz files and CIFAR-10.

The digits (1797 images, 10 classes) ship inside the package, so ``fastopt
train`` needs no download; see ``fastopt/data/README.md`` for source and license.
"""
import gzip
import os
import pickle
import zipfile
from importlib import resources
from typing import Optional, Union

import numpy as np

from ._typing import FloatArray, IntArray

__all__ = ["load_digits", "load_npz", "load_cifar10", "train_val_split", "standardize"]


def load_digits() -> tuple[FloatArray, IntArray]:
    """The embedded digits: ``X`` (1797, 64) float64 pixel counts 0..16, ``y`` (1797,) int64."""
    with resources.files("fastopt").joinpath("data/digits.csv.gz").open("rb") as raw, gzip.open(raw) as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)


def load_npz(path: Union[str, os.PathLike[str]]) -> tuple[FloatArray, IntArray]:
    """Arrays ``X`` (N×D, numeric) and ``y`` (N integer labels) from an .npz file.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is a directory, not an .npz archive (NumPy's zip of arrays,
        written by ``numpy.savez``), lacks ``X`` or ``y``, or holds arrays of the
        wrong shape or kind (labels must be integers, or floats with integer values).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not an .npz file")
    with open(path, "rb") as raw:
        magic = raw.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path} is not an .npz file (a zip archive of arrays written by numpy.savez"
                         f"(path, X=X, y=y)); it is {'empty' if not magic else 'something else'}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"X", "y"} - set(f.files)
            if missing:
                raise ValueError(f"{path} has no array named {', '.join(sorted(missing))} "
                                 f"(found: {', '.join(f.files) or 'none'})")
            X, y = np.asarray(f["X"]), np.asarray(f["y"])
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz file: {exc}") from None
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y) or len(X) == 0:
        raise ValueError(f"{path}: X must be N×D and y must hold N labels (N >= 1), got {X.shape} and {y.shape}")
    if X.dtype.kind not in "iuf":
        raise ValueError(f"{path}: X must be numeric, got dtype {X.dtype}")
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
            raise ValueError(f"{path}: y must hold integer class labels, got non-integer floats")
    elif y.dtype.kind not in "iu":
        raise ValueError(f"{path}: y must hold integer class labels, got dtype {y.dtype}")
    return X.astype(np.float64 if X.dtype != np.float32 else np.float32), y.astype(np.int64)


def load_cifar10(root: Union[str, os.PathLike[str]]) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    """CIFAR-10 in the course's ``cifar-10-batches-py`` layout: returns
    ``X_train`` (50000, 3072), ``y_train``, ``X_test`` (10000, 3072), ``y_test``, float32 0..255."""
    def batch(name: str) -> tuple[FloatArray, IntArray]:
        path = os.path.join(root, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: expected the cifar-10-batches-py layout")
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        return np.asarray(d["data"], dtype=np.float32).reshape(-1, 3072), np.asarray(d["labels"], dtype=np.int64)
    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    X_test, y_test = batch("test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), X_test, y_test


def train_val_split(X: FloatArray, y: IntArray, val_fraction: float = 0.2,
                    seed: Optional[int] = 0) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    """A seeded random split into (X_train, y_train, X_val, y_val)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(X))
    n_val = max(1, int(round(val_fraction * len(X))))
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


def standardize(X_train: FloatArray, *others: FloatArray) -> tuple[FloatArray, ...]:
    """Zero-mean, unit-variance features using the training set's statistics."""
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1
    return tuple((X - mean) / std for X in (X_train, *others))
