"""Drop-in ``torch.optim`` optimizers that run fastopt's kernels on CPU tensors.

A class per update rule of fastopt's registry (``SGD``, ``Adam``, ``AdamW``, ...,
``Adafactor``, ``Lion``, ``AdEMAMix``: the guide's table of rules) is a subclass
of ``torch.optim.Optimizer`` with torch's constructor arguments, defaults,
parameter groups and state layout (``opt.state[p]["exp_avg"]``, ``"step"`` as
a float32 tensor), so ``state_dict()`` is interchangeable with torch.optim's
both ways, ``torch.optim.lr_scheduler`` schedulers, ``clip_grad_norm_`` and
``torch.amp.GradScaler`` work as with torch's own optimizers. A step is one
native call over every parameter that has a gradient, running directly on the
tensors' storage (zero-copy, the GIL released): float32, float64, float16 and
bfloat16 (``pip install "fastopt[torch]"`` installs ml_dtypes, which bfloat16 needs).

Beyond torch: ``state_dtype="float32"`` (or ``torch.float32``) keeps float32 state for 16-bit
parameters (torch keeps it in the parameter's dtype, the default here too),
``state_dtype="int8"`` keeps the moments of the rules with running averages
in 8 bits (uint8 codes with a float32 ``<name>_absmax`` per block of 256
elements, for parameters of at least ``min_8bit_size`` = 4096 elements;
``state_dict(dequantized=True)`` exports float32 state; docs/design.md,
"8-bit state"),
``stochastic_rounding=True`` (with ``seed``) rounds updated 16-bit
parameters stochastically (docs/design.md, "Mixed precision"),
``param_copies={p: p16}`` is master-weight mode (each step also writes the
updated float32 ``p`` into the float16/bfloat16 tensor ``p16``, in the same
pass), and :meth:`offload_step` is the fused phase of loss-scaled training:
unscale, skip on non-finite, clip by the global norm, step and copy in two
passes over the gradients.

Tensors may be contiguous or dense in another memory order (``channels_last``):
a parameter, its gradient and its state are then stepped over their memory,
which must hold them in one order (torch makes state and gradients so).
Refused with a clear error instead of silently copying: sparse gradients,
other non-contiguous tensors, non-CPU tensors, and ``foreach`` / ``fused`` /
``capturable`` / ``differentiable`` set to True (torch's own implementations
of those exist; this is a different one).

:class:`Muon` (torch.optim.Muon, with AdamW groups in the same optimizer)
and :class:`LBFGS` (torch.optim.LBFGS) follow torch's algorithms with their
own machinery (see their docstrings).

``import fastopt`` never imports torch; ``import fastopt.torch`` does.
"""
from __future__ import annotations

try:
    import torch  # noqa: F401  (before the modules below, for the hint)
except ModuleNotFoundError as e:  # say how to get it
    if e.name != "torch":
        raise
    raise ModuleNotFoundError("fastopt.torch needs PyTorch, which is not installed: pip install \"fastopt[torch]\" "
                              "(or install torch itself)", name="torch") from None

# The package's files: _optimizer.py (the base: views, snapshots, checkpoints),
# _rules.py (a class per registry rule, generated), _muon.py, _lbfgs.py.
from . import _rules
from ._lbfgs import LBFGS
from ._muon import Muon
from ._optimizer import Number  # noqa: F401  (the annotations' type of hyperparameters)
from ._rules import *  # noqa: F401,F403  (a class per rule, and AdamW)

__all__ = ["Muon", "LBFGS"]
__all__ += _rules.__all__

# The public classes are fastopt.torch's wherever their code lives (their repr,
# pickles and the API reference name them so).
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
