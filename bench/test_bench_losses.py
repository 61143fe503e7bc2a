"""pytest-benchmark suite for the fused losses (float32, CIFAR-10 and large-C shapes).

    pytest bench/test_bench_losses.py --benchmark-only --benchmark-group-by=group

Groups hold fastopt, the reference's vectorized version and torch with autograd
(when installed). ``python -m fastopt.bench --only loss`` adds the fractions of
the memory roofline and of the GEMM peak, measured in the same run.
"""
import pytest

from fastopt import bench

LABELS = ("fastopt", "numpy", "torch")
PARAMS = [(shape, loss, label) for shape in bench.LOSS_SHAPES for loss in ("softmax", "svm") for label in LABELS]
_cache = {}


@pytest.mark.parametrize("shape, loss, label", PARAMS,
                         ids=[f"{l}-N{s[0]}-D{s[1]}-C{s[2]}-{lab}" for s, l, lab in PARAMS])
def test_loss(benchmark, shape, loss, label):
    if _cache.get("shape") != shape:
        _cache.clear()
        _cache["shape"] = shape
        _cache.update({w.name.split()[0]: w for w in bench.loss_workloads(shapes=[shape])})
    w = _cache[loss]
    if label not in w.candidates:
        pytest.skip(f"{label} is not installed")
    benchmark.group = w.name
    benchmark.extra_info["flops"] = w.flops
    benchmark(w.candidates[label])
