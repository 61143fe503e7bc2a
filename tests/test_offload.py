"""The fused offload phase (offload_step): unscale, skip on non-finite, clip by
the global norm, step and write the 16-bit copies, in two passes over the
gradients. Against the explicit sequence; bitwise invariant to threads and ISA."""
import numpy as np
import pytest

import fastopt
from conftest import ISAS
from fastopt import optim


def problem(seed=0, scale=1024.0, shapes=((300,), (70000,), (17, 5))):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [(scale * rng.standard_normal(s)).astype(np.float32) for s in shapes]
    return params, grads


@pytest.mark.parametrize("cls, kwargs", [(optim.Adam, dict(lr=1e-2)), (optim.SGD, dict(lr=0.1, momentum=0.9)),
                                         (optim.AdamW, dict(lr=1e-2, maximize=True)), (optim.Lion, dict(lr=1e-3))])
@pytest.mark.parametrize("max_norm", [None, 1.0, 1e9])
def test_offload_step_equals_the_explicit_sequence(cls, kwargs, max_norm):
    params, grads = problem()
    mine = [p.copy() for p in params]
    fused, plain = cls(mine, **kwargs), cls(params, **kwargs)
    for t in range(3):
        applied, norm = fused.offload_step(grads, grad_scale=1 / 1024, max_norm=max_norm)
        assert applied
        exact = np.sqrt(sum(float(np.sum((g.astype(np.float64) / 1024) ** 2)) for g in grads))
        assert norm == pytest.approx(exact, rel=1e-12)
        clip = 1.0 if max_norm is None else min(1.0, max_norm / (norm + 1e-6))
        plain.step([g * np.float32(clip / 1024) for g in grads])  # one multiplier, rounded once: as fused
    for a, b in zip(mine, params):
        assert np.array_equal(a, b)
    assert fused.step_count == 3


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_non_finite_gradient_skips_the_step(bad):
    params, grads = problem(1)
    opt = optim.Adam(params, lr=1e-2)
    opt.offload_step(grads, grad_scale=0.5)
    before = [p.copy() for p in params], {k: [a.copy() for a in v] for k, v in opt.state.items()}
    grads[1][12345] = bad
    applied, norm = opt.offload_step(grads, grad_scale=0.5, max_norm=1.0)
    assert not applied and not np.isfinite(norm)
    assert opt.step_count == 1
    for a, b in zip(params, before[0]):
        assert np.array_equal(a, b)
    for k, v in opt.state.items():
        for a, b in zip(v, before[1][k]):
            assert np.array_equal(a, b)


def test_offload_step_is_bitwise_invariant_to_threads_and_isa():
    previous = fastopt.get_isa(), fastopt.get_num_threads()
    results = []
    try:
        for isa in ISAS:
            fastopt.set_isa(isa)
            for threads in (1, 2, 3):
                fastopt.set_num_threads(threads)
                params, grads = problem(2, shapes=((300000,), (4097,)))
                opt = optim.Adam(params, lr=1e-2)
                norms = [opt.offload_step(grads, grad_scale=1 / 1024, max_norm=3.0)[1] for _ in range(2)]
                results.append((norms, params))
    finally:
        fastopt.set_isa(previous[0])
        fastopt.set_num_threads(previous[1])
    for norms, params in results[1:]:
        assert norms == results[0][0]
        for a, b in zip(params, results[0][1]):
            assert np.array_equal(a, b)


def test_master_weights_with_16bit_gradients_and_copies():
    rng = np.random.default_rng(3)
    master = [rng.standard_normal(s).astype(np.float32) for s in [(1000,), (64, 3)]]
    copies = [p.astype(np.float16) for p in master]
    opt = optim.AdamW(master, lr=1e-3, param_copies=copies)
    grads = [(512 * rng.standard_normal(p.shape)).astype(np.float16) for p in master]
    applied, norm = opt.offload_step(grads, grad_scale=1 / 512, max_norm=1.0)
    assert applied and norm > 1.0
    for p, c in zip(master, copies):
        assert np.array_equal(c, p.astype(np.float16))


@pytest.mark.parametrize("kwargs, exc, text", [(dict(grad_scale=0.0), ValueError, "grad_scale"),
                                               (dict(grad_scale=float("nan")), ValueError, "grad_scale"),
                                               (dict(grad_scale="1"), TypeError, "grad_scale"),
                                               (dict(max_norm=-1.0), ValueError, "max_norm"),
                                               (dict(max_norm=float("inf")), ValueError, "max_norm")])
def test_bad_offload_arguments_change_nothing(kwargs, exc, text):
    params, grads = problem(4)
    before = [p.copy() for p in params]
    opt = optim.Adam(params)
    with pytest.raises(exc, match=text):
        opt.offload_step(grads, **kwargs)
    assert opt.step_count == 0 and all(np.array_equal(a, b) for a, b in zip(params, before))


def test_torch_offload_step_matches_unscale_clip_step_copy():
    torch = pytest.importorskip("torch")
    ft = pytest.importorskip("fastopt.torch")
    g = torch.Generator().manual_seed(5)
    shapes = [(200,), (30, 7)]
    master = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
    ref = [p.detach().clone().requires_grad_() for p in master]
    copies = {p: p.detach().to(torch.float16) for p in master}
    ours = ft.AdamW(master, lr=1e-2, param_copies=copies)
    theirs = torch.optim.AdamW(ref, lr=1e-2)
    for t in range(5):
        for p, q in zip(master, ref):
            grad = 256 * torch.randn(p.shape, generator=g)
            p.grad, q.grad = grad.clone(), grad.clone()
        if t == 2:
            master[0].grad[3] = float("nan")
            q_skip = True
        else:
            q_skip = False
        applied, norm = ours.offload_step(grad_scale=1 / 256, max_norm=0.5)
        assert applied == (not q_skip)
        if not q_skip:
            for q in ref:
                q.grad.mul_(1 / 256)
            total = torch.nn.utils.clip_grad_norm_(ref, 0.5)
            assert norm == pytest.approx(float(total), rel=1e-5)
            theirs.step()
    for p, q in zip(master, ref):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        assert torch.equal(copies[p], p.detach().to(torch.float16))
    assert ours.state[master[0]]["step"].item() == 4
