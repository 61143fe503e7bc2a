"""One optimizer step of two fastopt installs, side by side: run it under each install's
Python in turn (the installs cannot share a process), then compare.

    python bench/compare_installs.py run  --label old --out old-1.json     # under the old install
    python bench/compare_installs.py run  --label new --out new-1.json     # under the new one
    ...                                                                     # alternate, 2+ rounds each
    python bench/compare_installs.py compare old-*.json new-*.json         # medians and ratios

Only ``fastopt.optim``'s classes are used, at their defaults, so any two versions that have
a class can be compared on it. Each workload: two warm-up steps, then steps until
``--budget`` seconds have passed (at least 5); its time is the median step.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np

import fastopt
from fastopt import bench, optim
from fastopt.reference.precision import bfloat16

# (label, class, keyword arguments): the rules whose classes predate the rule registry's generated API.
RULES = [("sgd", "SGD", {"lr": 0.01}), ("momentum", "SGD", {"lr": 0.01, "momentum": 0.9}),
         ("adagrad", "Adagrad", {}), ("rmsprop", "RMSprop", {}), ("adam", "Adam", {}),
         ("adamw", "AdamW", {}), ("lion", "Lion", {})]
# (label, parameter dtype, state dtype)
LAYOUTS = [("f32", "float32", "float32"), ("bf16+f32 state", "bfloat16", "float32"),
           ("bf16 all", "bfloat16", "param")]
LISTS = {"f32": ("16M", "resnet50", "gpt2-small"), "bf16+f32 state": ("16M", "resnet50"),
         "bf16 all": ("16M", "resnet50")}


def time_step(opt: Any, budget: float) -> float:
    opt.step()
    opt.step()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(label: str, out: str, budget: float) -> None:
    results: dict[str, float] = {}
    rng = np.random.default_rng(0)
    for layout, param_dtype, state_dtype in LAYOUTS:
        dtype = bfloat16() if param_dtype == "bfloat16" else np.dtype(param_dtype)
        for list_name in LISTS[layout]:
            shapes = bench.PARAMETER_LISTS[list_name]()
            params = [rng.standard_normal(s, dtype=np.float32).astype(dtype) * 0.1 for s in shapes]
            grads = [rng.standard_normal(s, dtype=np.float32).astype(dtype) * 0.01 for s in shapes]
            for rule, cls, kwargs in RULES:
                opt = getattr(optim, cls)(params, grads=grads, state_dtype=state_dtype, **kwargs)
                key = f"{rule} | {layout} | {list_name}"
                results[key] = time_step(opt, budget)
                print(f"{label} {key}: {results[key] * 1e3:.2f} ms", file=sys.stderr)
                del opt
            del params, grads
    with open(out, "w") as f:
        json.dump({"label": label, "version": fastopt.__file__, "results": results}, f)


def compare(files: list[str]) -> None:
    runs: dict[str, list[dict[str, float]]] = {}
    for name in files:
        with open(name) as f:
            data = json.load(f)
        runs.setdefault(data["label"], []).append(data["results"])
    labels = list(runs)
    if len(labels) != 2:
        raise SystemExit(f"need runs of two labels, got {labels}")
    first, second = labels
    print(f"| workload | {first} ms | {second} ms | {first} / {second} |")
    print("|---|---|---|---|")
    ratios = []
    for key in runs[first][0]:
        a = statistics.median(r[key] for r in runs[first]) * 1e3
        b = statistics.median(r[key] for r in runs[second]) * 1e3
        ratios.append(a / b)
        print(f"| {key} | {a:.2f} | {b:.2f} | {a / b:.3f} |")
    print(f"\nmedian ratio {statistics.median(ratios):.3f}, lowest {min(ratios):.3f}, highest {max(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--label", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--budget", type=float, default=1.0)
    c = sub.add_parser("compare")
    c.add_argument("files", nargs="+")
    args = parser.parse_args()
    if args.command == "run":
        run(args.label, args.out, args.budget)
    else:
        compare(args.files)


if __name__ == "__main__":
    main()
