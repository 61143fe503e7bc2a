"""8-bit optimizer state: fastopt.optim.AdamW with state_dtype="int8" against its float32-state
step, the roofline probe over the 8-bit step's bytes, and the CPU 8-bit AdamW of bitsandbytes
and torchao on the same parameters (optional peers: skipped with a note when absent);
interleaved in one process. Then the state's bytes per parameter and the peak RSS of a
GPT-2-small-sized optimizer (one subprocess per state dtype).

    python bench/int8_state.py              # numpy only; torch, bitsandbytes, torchao for the peers
"""
import subprocess
import sys

import numpy as np

import fastopt
import fastopt.optim as fo
from fastopt import _core
from fastopt.bench import PARAMETER_LISTS, measure

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    BF16 = None


def peers(shapes):
    """{label: step} of the 8-bit AdamW peers that are installed, on torch tensors of these shapes."""
    out, notes = {}, []
    try:
        import torch
    except ImportError:
        return out, ["torch not installed: no peers"]
    torch.set_num_threads(fastopt.get_num_threads())
    gen = torch.Generator().manual_seed(0)

    def tensors():
        ps = [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.1) for s in shapes]
        for p in ps:
            p.grad = torch.randn(p.shape, generator=gen) * 0.01
        return ps
    try:
        import bitsandbytes as bnb
        opt = bnb.optim.AdamW8bit(tensors(), lr=1e-3, weight_decay=1e-2)
        opt.step()
        out["bitsandbytes AdamW8bit"] = opt.step
    except Exception as e:  # absent, or no CPU backend
        notes.append(f"bitsandbytes: {type(e).__name__}: {e}"[:160])
    try:
        from torchao.optim import AdamW8bit
        opt = AdamW8bit(tensors(), lr=1e-3, weight_decay=1e-2)
        opt.step()
        out["torchao AdamW8bit"] = opt.step
    except Exception as e:
        notes.append(f"torchao: {type(e).__name__}: {e}"[:160])
    return out, notes


def workload(name, param_dtype, with_peers):
    shapes = PARAMETER_LISTS[name]()
    n = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(0)
    params = [(rng.standard_normal(s, np.float32) * 0.1).astype(param_dtype) for s in shapes]
    grads = [(rng.standard_normal(s, np.float32) * 0.01).astype(param_dtype) for s in shapes]
    f32 = fo.AdamW([p.copy() for p in params], lr=1e-3, weight_decay=1e-2)
    int8 = fo.AdamW([p.copy() for p in params], lr=1e-3, weight_decay=1e-2, state_dtype="int8")
    f32.step(grads)
    int8.step(grads)
    s = int8.state
    probe = _core.TensorGroup.probe(list(int8.params), [list(s["exp_avg"]), list(s["exp_avg_sq"])], grads, None,
                                    [list(s["exp_avg_absmax"]), list(s["exp_avg_sq_absmax"])])
    candidates = {"float32 state": lambda: f32.step(grads), "int8 state": lambda: int8.step(grads),
                  "probe": probe.stream_probe}
    notes = []
    if with_peers:
        found, notes = peers(shapes)
        candidates.update(found)
    t = measure(candidates, budget=8.0 if name != "gpt2-small" else 20.0, rounds=7)
    label = f"{name} ({len(shapes)} tensors, {n / 1e6:.1f}M) {np.dtype(param_dtype).name}"
    row = (f"| {label} | {t['float32 state'] * 1e3:.2f} ms | {t['int8 state'] * 1e3:.2f} ms | "
           f"{t['float32 state'] / t['int8 state']:.2f}× | {t['probe'] / t['int8 state']:.2f} |")
    for peer in ("bitsandbytes AdamW8bit", "torchao AdamW8bit"):
        row += (f" {t[peer] * 1e3:.0f} ms ({t[peer] / t['int8 state']:.1f}×) |" if peer in t else " – |")
    print(row, flush=True)
    for note in notes:
        print("   ", note, flush=True)


def footprint(state_dtype):
    """In a fresh process: an AdamW over GPT-2 small's shapes stepped once; its state bytes per
    parameter and the process's peak RSS."""
    code = f"""
import numpy as np, fastopt.optim as fo
from fastopt.bench import PARAMETER_LISTS
shapes = PARAMETER_LISTS["gpt2-small"]()
params = [np.zeros(s, np.float32) for s in shapes]
opt = fo.AdamW(params, state_dtype={state_dtype!r})
opt.step([np.full(s, 1e-3, np.float32) for s in shapes])
n = sum(p.size for p in params)
state = sum(a.nbytes for arrays in opt.state.values() for a in arrays if a is not None)
# VmHWM: this process's peak (ru_maxrss would count the parent's memory at the fork too)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(state / n, peak / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


if __name__ == "__main__":
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "unknown CPU")
    print(f"{cpu}, {fastopt.get_num_threads()} threads, ISA {fastopt.get_isa()}")
    print("| workload | float32 state | int8 state | speed-up | probe / int8 | bitsandbytes AdamW8bit | "
          "torchao AdamW8bit |")
    print("|---|---|---|---|---|---|---|")
    for name in ("16M", "resnet50", "gpt2-small"):
        workload(name, np.float32, with_peers=True)
    if BF16 is not None:
        for name in ("16M", "resnet50", "gpt2-small"):
            workload(name, BF16, with_peers=False)
    print()
    print("| GPT-2 small AdamW | state bytes / parameter | peak RSS |")
    print("|---|---|---|")
    for dtype in ("float32", "int8"):
        per, rss = footprint(dtype)
        print(f"| state_dtype={dtype!r} | {per:.3f} | {rss:.0f} MiB |")
