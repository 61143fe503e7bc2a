"""Benchmark workloads: fastopt vs the NumPy reference, torch.optim (when
installed) and the roofline probe, measured side by side in one process.

Run ``python -m fastopt.bench [--quick] [--json FILE]`` (or ``fastopt bench``).
Each workload times its candidates round-robin (A, B, C, A, B, C, ...) so that machine noise hits
all of them alike, and reports medians. The roofline probe
(``_core.stream_probe``) moves exactly the bytes of the step (an fp32 Adam step:
28 bytes per parameter) with one add per element and the same threading; the
"roofline" column is probe time / fastopt time.

The package's files: harness.py (workloads, interleaved timing, the machine's
peaks, model parameter lists), one file per family of workloads
(optimizers.py, precision.py, torch_steps.py, loss_and_training.py, linear.py:
the estimators against scikit-learn) and report.py (the tables).
"""
from .harness import PARAMETER_LISTS, Workload, gpt2_small_shapes, machine_peaks, measure, resnet50_shapes
from .loss_and_training import (LOSS_SHAPES, TRAINING_BATCH, TRAINING_ITERS_PER_CALL, TRAINING_SHAPES,
                                loss_workloads, training_workloads)
from .optimizers import OPTIMIZERS, optimizer_workloads
from .precision import PRECISION_CANDIDATES, offload_workloads, precision_workloads
from .report import main
from .torch_steps import adafactor_workloads, lbfgs_workloads, muon_workloads, torch_workloads

__all__ = ["Workload", "optimizer_workloads", "precision_workloads", "offload_workloads", "torch_workloads",
           "muon_workloads", "lbfgs_workloads", "adafactor_workloads", "loss_workloads", "training_workloads",
           "machine_peaks", "measure", "main", "OPTIMIZERS", "PARAMETER_LISTS", "PRECISION_CANDIDATES",
           "LOSS_SHAPES", "TRAINING_SHAPES", "TRAINING_BATCH", "TRAINING_ITERS_PER_CALL", "resnet50_shapes",
           "gpt2_small_shapes"]
