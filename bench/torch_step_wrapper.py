"""The fixed cost of a fastopt.torch step with fastopt's step wrapper against torch.optim's
(``Optimizer.profile_hook_step``, which enters a profiler record_function at every step),
beside torch's fused Adam and fastopt.optim, interleaved in one process.

    python bench/torch_step_wrapper.py
"""
import torch, fastopt, fastopt.torch as ft
from fastopt import optim
from fastopt.bench import measure
from fastopt.torch._optimizer import _Optimizer
torch.set_num_threads(fastopt.get_num_threads())
raw = _Optimizer.step.__wrapped__
class TorchWrapped(ft.Adam):
    pass
TorchWrapped.step = torch.optim.Optimizer.profile_hook_step(raw)
TorchWrapped.step.hooked = True
gen = torch.Generator().manual_seed(0)
for name, shapes in (("1x1k", [(1000,)]), ("1000x1k", [(1000,)] * 1000)):
    def make():
        ps = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
        for p in ps: p.grad = torch.randn(p.shape, generator=gen)
        return ps
    a, b, c = ft.Adam(make(), lr=1e-3), TorchWrapped(make(), lr=1e-3), torch.optim.Adam(make(), lr=1e-3, fused=True)
    arrays = [p.detach().numpy() for p in make()]
    d = optim.Adam(arrays, lr=1e-3, grads=[x.copy() for x in arrays])
    t = measure({"fastopt.torch": a.step, "with torch's wrapper": b.step, "torch fused": c.step, "fastopt.optim": d.step},
                budget=4.0, rounds=9)
    f = lambda s: f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"
    print(f"| {name} | {f(t['fastopt.torch'])} | {f(t['with torch' + chr(39) + 's wrapper'])} ({t['with torch' + chr(39) + 's wrapper'] / t['fastopt.torch']:.2f}×) | "
          f"{f(t['torch fused'])} ({t['torch fused'] / t['fastopt.torch']:.2f}×) | {f(t['fastopt.optim'])} ({t['fastopt.torch'] / t['fastopt.optim']:.2f}× its time) |")
