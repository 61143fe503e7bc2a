"""pytest-benchmark suite for the optimizer steps.

    pytest bench/ --benchmark-only --benchmark-group-by=group --benchmark-columns=median,iqr,ops

Each workload (optimizer × dtype × size, and 1000 tensors × 1k) is a group;
its members are fastopt, the NumPy reference, the roofline probe (same bytes
as the step) and torch.optim foreach / fused when torch is installed. Compare
medians within a group: they ran in the same process, one after another.
``python -m fastopt.bench`` gives the same comparison interleaved, as a table.
"""
import pytest

from fastopt import bench

DTYPES = ("float32", "float64")
SIZES = {"1k": 1000, "100k": 100_000, "1M": 2**20, "16M": 16 * 2**20}
LABELS = ("fastopt", "numpy", "probe", "torch-foreach", "torch-fused")
NAMES = [f"{opt} {dtype} {size}" for opt in bench.OPTIMIZERS for dtype in DTYPES
         for size in (*SIZES, "1000x1k")]
PARAMS = [(name, label) for name in NAMES for label in LABELS]


def _build(name):
    optimizer, dtype, size = name.split()
    sizes, multi = (), None
    if "x" in size:
        count, each = size.split("x")
        multi = (int(count), SIZES[each])
    else:
        sizes = (SIZES[size],)
    return next(bench.optimizer_workloads(names=[optimizer], dtypes=(dtype,), sizes=sizes, multi=multi))


_cache = {}


@pytest.mark.parametrize("name, label", PARAMS, ids=[f"{n}-{l}".replace(" ", "-") for n, l in PARAMS])
def test_optimizer_step(benchmark, name, label):
    if _cache.get("name") != name:
        _cache.clear()
        _cache["name"], _cache["workload"] = name, _build(name)
    w = _cache["workload"]
    if label not in w.candidates:
        pytest.skip(f"{label} is not available here (torch missing or no such implementation)")
    benchmark.group = name
    benchmark.extra_info["bytes_moved"] = w.bytes_moved
    benchmark(w.candidates[label])
