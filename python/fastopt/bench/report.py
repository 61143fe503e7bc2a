"""``python -m fastopt.bench`` and ``fastopt bench``: run the workloads and print their tables
(and save them as JSON)."""
from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .. import config
from .harness import _torch
from .optimizers import HEADER, OPTIMIZERS, format_row, run
from .precision import (OFFLOAD_HEADER, PRECISION_HEADER, format_offload_row, format_precision_row, run_offload,
                        run_precision)
from .torch_steps import (ADAFACTOR_HEADER, LBFGS_HEADER, MUON_HEADER, TORCH_HEADER, format_adafactor_row,
                          format_lbfgs_row, format_muon_row, format_torch_row, run_adafactor, run_lbfgs, run_muon,
                          run_torch)
from .loss_and_training import (LOSS_HEADER, TRAINING_HEADER, format_loss_row, format_training_row, run_losses,
                                run_training)


DESCRIPTION = ("Benchmark workloads: fastopt vs the NumPy reference, torch.optim (when installed) and the "
               "roofline probe, measured side by side in one process.")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fastopt bench", description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true", help="a short run: sgd and adam, float32, 1k / 1M / 1000x1k")
    parser.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    parser.add_argument("--optimizer", action="append", choices=sorted(OPTIMIZERS),
                        help="only this optimizer (repeatable)")
    parser.add_argument("--budget", type=float, help="seconds of timing per workload")
    parser.add_argument("--only", choices=["optim", "precision", "torch", "offload", "loss", "train", "linear",
                                           "muon", "lbfgs", "adafactor"],
                        help="only these workloads: optimizers, mixed precision, fastopt.torch, the offload "
                             "phase, losses, the training loop, or (not part of a full run: each takes "
                             "minutes) the linear classifiers against scikit-learn, Muon against torch's; "
                             "or L-BFGS's two-loop recursion against torch's, or Adafactor against torch's")
    args = parser.parse_args(argv)
    if args.budget is not None and args.budget <= 0:
        parser.error("--budget must be > 0")
    cfg = config()
    print(f"fastopt {cfg['version']} | isa {cfg['isa']} | threads {cfg['num_threads']} | "
          f"{platform.processor() or platform.machine()} | numpy {np.__version__}"
          + (f" | torch {_torch().__version__}" if _torch() else " | torch not installed"))
    def table(header: str, rows: Iterator[dict[str, Any]],
              fmt: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
        print(header)
        out = []
        for row in rows:
            out.append(row)
            print(fmt(row), flush=True)
        return out

    results: dict[str, list[dict[str, Any]]] = {"optimizers": [], "precision": [], "torch": [], "offload": [], "losses": [], "training": [],
               "linear_defaults": [], "linear_same_objective": [], "muon": [],
               "lbfgs": [], "adafactor": []}
    if args.only in (None, "optim"):
        results["optimizers"] = table(HEADER, run(quick=args.quick, budget=args.budget, names=args.optimizer),
                                      format_row)
        print()
    if args.only in (None, "precision"):
        try:
            results["precision"] = table(PRECISION_HEADER, run_precision(quick=args.quick, budget=args.budget),
                                         format_precision_row)
        except ImportError as e:  # bfloat16 needs ml_dtypes
            print(f"mixed-precision workloads skipped: {e}")
        print()
    if args.only in (None, "torch", "offload"):
        if _torch() is None:
            print("fastopt.torch and offload-phase workloads skipped: torch is not installed\n")
        else:
            if args.only in (None, "torch"):
                results["torch"] = table(TORCH_HEADER, run_torch(quick=args.quick, budget=args.budget),
                                         format_torch_row)
                print()
            if args.only in (None, "offload"):
                results["offload"] = table(OFFLOAD_HEADER, run_offload(quick=args.quick, budget=args.budget),
                                           format_offload_row)
                print()
    if args.only in (None, "loss"):
        loss_rows = results["losses"] = table(LOSS_HEADER, run_losses(quick=args.quick, budget=args.budget),
                                              format_loss_row)
        if loss_rows:
            print(f"\nmemory bandwidth (probe) {loss_rows[0]['bandwidth_gb_s']:.1f} GB/s, "
                  f"float32 GEMM peak (numpy matmul) {loss_rows[0]['gemm_peak_gflop_s']:.0f} GFLOP/s")
        print()
    if args.only in (None, "train"):
        results["training"] = table(TRAINING_HEADER, run_training(quick=args.quick, budget=args.budget),
                                    format_training_row)
    if args.only == "linear":
        from . import linear as bench_linear
        if not bench_linear._sklearn():
            print("linear-classifier workloads skipped: scikit-learn is not installed")
        else:
            results["linear_defaults"] = table(bench_linear.DEFAULTS_HEADER,
                                               bench_linear.run_defaults(quick=args.quick),
                                               bench_linear.format_defaults_row)
            print()
            results["linear_same_objective"] = table(bench_linear.SAME_HEADER,
                                                     bench_linear.run_same_objective(quick=args.quick),
                                                     bench_linear.format_same_row)
    if args.only == "muon":
        if _torch() is None or not hasattr(_torch().optim, "Muon"):
            print("Muon workloads skipped: they need torch with torch.optim.Muon")
        else:
            results["muon"] = table(MUON_HEADER, run_muon(quick=args.quick, budget=args.budget), format_muon_row)
    if args.only == "lbfgs":
        if _torch() is None:
            print("L-BFGS workloads skipped: torch is not installed")
        else:
            results["lbfgs"] = table(LBFGS_HEADER, run_lbfgs(quick=args.quick, budget=args.budget), format_lbfgs_row)
    if args.only == "adafactor":
        if _torch() is None or not hasattr(_torch().optim, "Adafactor"):
            print("Adafactor workloads skipped: they need torch with torch.optim.Adafactor")
        else:
            results["adafactor"] = table(ADAFACTOR_HEADER, run_adafactor(quick=args.quick, budget=args.budget),
                                         format_adafactor_row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": cfg, "date": time.strftime("%Y-%m-%d"), **results}, f, indent=2)
    return 0

