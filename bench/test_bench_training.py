"""pytest-benchmark suite for the native training loop vs the course's loop.

    pytest bench/test_bench_training.py --benchmark-only --benchmark-group-by=group

Each call runs ``bench.TRAINING_ITERS_PER_CALL`` minibatch iterations (softmax +
SGD, float32, batches of 200) of: ``native`` (fastopt.training.train_linear),
``python`` (a Python loop over fastopt's fused loss and step) and ``course`` (the
course's NumPy loop). ``python -m fastopt.bench --only train`` reports the
ratios and the fraction of the GEMM peak from one interleaved run.
"""
import pytest

from fastopt import bench

LABELS = ("native", "python", "course")
PARAMS = [(shape, label) for shape in bench.TRAINING_SHAPES for label in LABELS]
_cache = {}


@pytest.mark.parametrize("shape, label", PARAMS, ids=[f"{s[0].split()[0]}-{lab}" for s, lab in PARAMS])
def test_training_loop(benchmark, shape, label):
    if _cache.get("shape") != shape:
        _cache.clear()
        _cache["shape"] = shape
        _cache["workload"] = next(bench.training_workloads(shapes=[shape]))
    w = _cache["workload"]
    benchmark.group = w.name
    benchmark.extra_info["iterations_per_call"] = bench.TRAINING_ITERS_PER_CALL
    benchmark(w.candidates[label])
