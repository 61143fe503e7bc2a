"""pytest-benchmark suite for Adam on 16-bit parameters.

    pytest bench/test_bench_precision.py --benchmark-only --benchmark-group-by=group

Each parameter list (16M, ResNet-50, GPT-2 small) is a group; its members are
fastopt's layouts (fp32 state, state in the param dtype, master weights with
the 16-bit copy), their roofline probes, and DeepSpeedCPUAdam and torch's
fused Adam when installed. ``fastopt bench --only precision`` gives the same
comparison interleaved, as a table with bytes per parameter and roofline
fractions.
"""
import pytest

from fastopt import bench

pytest.importorskip("ml_dtypes")

LISTS = tuple(bench.PARAMETER_LISTS)
LABELS = (*bench.PRECISION_CANDIDATES, *(f"probe:{k}" for k in ("fastopt", "fastopt-param-state", "fastopt-master")))
PARAMS = [(name, label) for name in LISTS for label in LABELS]
_cache = {}


@pytest.mark.parametrize("name, label", PARAMS, ids=[f"{n}-{l}" for n, l in PARAMS])
def test_adam_16bit(benchmark, name, label):
    if _cache.get("name") != name:
        _cache.clear()
        _cache["name"], _cache["workload"] = name, next(bench.precision_workloads(lists=(name,)))
    w = _cache["workload"]
    if label not in w.candidates:
        pytest.skip(f"{label} is not available here (DeepSpeed or torch missing)")
    benchmark.group = w.name
    bytes_per = bench.PRECISION_CANDIDATES.get(label.removeprefix("probe:"), (0,))[0]
    benchmark.extra_info["bytes_per_parameter"] = bytes_per
    benchmark(w.candidates[label])
