"""fastopt.torch.AdEMAMix against bitsandbytes' AdEMAMix (32-bit and 8-bit state, its CPU kernels)
and the roofline probe over fastopt's bytes, interleaved in one process.

    python bench/ademamix_peers.py        # needs torch and bitsandbytes
"""
import torch, numpy as np
import bitsandbytes as bnb
import fastopt, fastopt.torch as ft
from fastopt import _core
from fastopt.bench import measure, PARAMETER_LISTS
from fastopt.torch._optimizer import _as_numpy
torch.set_num_threads(fastopt.get_num_threads())
gen = torch.Generator().manual_seed(0)
for name in ("16M", "gpt2-small"):
    shapes = PARAMETER_LISTS[name]()
    n = sum(int(np.prod(s)) for s in shapes)
    def make():
        ps = [torch.randn(s, generator=gen) * 0.1 for s in shapes]
        for p in ps:
            p.grad = torch.randn(p.shape, generator=gen) * 0.01
        return ps
    ours, theirs, theirs8 = make(), make(), make()
    a = ft.AdEMAMix(ours, lr=1e-3)
    b = bnb.optim.AdEMAMix(theirs, lr=1e-3)
    c = bnb.optim.AdEMAMix8bit(theirs8, lr=1e-3)
    a.step(); b.step(); c.step()
    probe = _core.TensorGroup.probe([_as_numpy(p, "p") for p in ours],
                                    [[_as_numpy(a.state[p][k], k) for p in ours] for k in ("exp_avg", "exp_avg_slow", "exp_avg_sq")],
                                    [_as_numpy(p.grad, "g") for p in ours], None)
    t = measure({"fastopt": a.step, "bnb 32-bit": b.step, "bnb 8-bit": c.step, "probe": probe.stream_probe},
                budget=6.0 if name == "16M" else 15.0, rounds=7)
    gbs = n * 36 / t["fastopt"] / 1e9
    print(f"| AdEMAMix float32 {name} ({len(shapes)} tensors, {n / 1e6:.1f}M) | {t['fastopt'] * 1e3:.2f} ms | "
          f"{t['probe'] / t['fastopt']:.2f} | {gbs:.1f} | {t['bnb 32-bit'] * 1e3:.1f} ms ({t['bnb 32-bit'] / t['fastopt']:.1f}×) | "
          f"{t['bnb 8-bit'] * 1e3:.1f} ms ({t['bnb 8-bit'] / t['fastopt']:.1f}×) |", flush=True)
