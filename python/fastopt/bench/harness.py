"""The measuring harness: workloads, interleaved timing (medians), the machine's
roofline and GEMM peak, and the parameter lists of real models."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from .. import _core


@dataclass
class Workload:
    name: str                 # e.g. "adam f32 1M"
    bytes_moved: int          # per step: every buffer read, every buffer but g written
    candidates: dict[str, Callable[..., Any]] = field(default_factory=dict)  # label -> zero-argument callable doing one step
    flops: int = 0            # arithmetic of the step (losses: multiply-adds × 2)
    parameters: int = 0       # optimizer workloads: parameters updated per step


def _size_label(n: int) -> str:
    for unit, scale in (("M", 2**20), ("k", 1000)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def resnet50_shapes() -> list[tuple[int, ...]]:
    """The 161 parameter shapes of torchvision's ResNet-50 (25,557,032 parameters), in order."""
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    inplanes = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for b in range(blocks):
            shapes += [(width, inplanes, 1, 1), (width,), (width,), (width, width, 3, 3), (width,), (width,),
                       (width * 4, width, 1, 1), (width * 4,), (width * 4,)]
            if b == 0:  # the downsampling shortcut
                shapes += [(width * 4, inplanes, 1, 1), (width * 4,), (width * 4,)]
            inplanes = width * 4
    return shapes + [(1000, 2048), (1000,)]


def gpt2_small_shapes() -> list[tuple[int, ...]]:
    """The 148 parameter shapes of GPT-2 small (Hugging Face GPT2Model, 124,439,808 parameters)."""
    d, vocab, context = 768, 50257, 1024
    shapes: list[tuple[int, ...]] = [(vocab, d), (context, d)]
    for _ in range(12):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,),   # ln_1, attention
                   (d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]  # ln_2, MLP
    return shapes + [(d,), (d,)]


PARAMETER_LISTS: dict[str, Callable[[], list[tuple[int, ...]]]] = {
    "16M": lambda: [(16 * 2**20,)], "resnet50": resnet50_shapes, "gpt2-small": gpt2_small_shapes}


def machine_peaks(budget: float = 0.3) -> tuple[float, float]:
    """Memory bandwidth (bytes/s) from the roofline probe on 16M float32 elements
    (12 bytes each: read p and g, write p), and float32 GEMM peak (flop/s) from
    NumPy's matmul of 1024×1024 matrices, measured now, in this process."""
    n = 16 * 2**20
    p, g = np.zeros(n, np.float32), np.zeros(n, np.float32)
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    med = measure({"probe": lambda: _core.stream_probe(p, g, []), "gemm": lambda: a @ a}, budget=budget, settle=0.15)
    return 12 * n / med["probe"], 2 * 1024**3 / med["gemm"]


def measure(candidates: dict[str, Callable[[], Any]], budget: float = 0.5, rounds: int = 7,
            min_batch_seconds: float = 2e-3, settle: float = 0.0) -> dict[str, float]:
    """Median seconds per call of each candidate.

    Candidates are interleaved round by round, so slow drifts of a shared
    machine affect all alike; within a round each runs one untimed call and
    then a timed batch of consecutive calls, so a working set that fits in the
    cache is measured warm (as in a training loop that steps repeatedly).
    ``settle`` seconds of sleep before each batch let the previous candidate's
    worker threads stop spinning (OpenBLAS spins for ~0.1 s after a matmul and
    would otherwise steal the cores from the next candidate).
    """
    batch = {}
    for label, f in candidates.items():
        f()  # warm-up: page faults, thread pool start
        t = time.perf_counter()
        f()
        one = max(time.perf_counter() - t, 1e-7)
        per_round = budget / rounds / max(len(candidates), 1)
        batch[label] = int(max(1, min(max(per_round, min_batch_seconds) / one, 5000)))
    times: dict[str, list[float]] = {label: [] for label in candidates}
    for _ in range(rounds):
        for label, f in candidates.items():
            if settle:
                time.sleep(settle)
            f()
            t = time.perf_counter()
            for _ in range(batch[label]):
                f()
            times[label].append((time.perf_counter() - t) / batch[label])
    return {label: float(np.median(ts)) for label, ts in times.items()}


def _fmt_time(s: Optional[float]) -> str:
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1e3:.2f} ms"


def _ratio(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:.1f}×"


def _deepspeed_adam() -> Any:
    try:
        import contextlib
        import io
        import logging
        logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            from deepspeed.ops.adam import DeepSpeedCPUAdam
        return DeepSpeedCPUAdam
    except Exception:  # not installed, or its CPU Adam extension cannot be built here
        return None
