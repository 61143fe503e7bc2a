"""fastopt.torch.Muon against torch.optim.Muon (its Newton–Schulz in bfloat16) and the
NumPy reference (fastopt.reference.muon, in float64); the AdamW groups against
torch.optim.AdamW; checkpoints both ways; GradScaler; bad input. Skipped when
torch is absent."""
import importlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ft = importlib.import_module("fastopt.torch")
_muon = importlib.import_module("fastopt.torch._muon")
from fastopt.reference import muon as reference  # noqa: E402


def run(opt, params, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()


def make(shapes, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]


@pytest.mark.parametrize("options", [dict(), dict(lr=0.02, weight_decay=0.01), dict(nesterov=False, momentum=0.9),
                                     dict(adjust_lr_fn="match_rms_adamw", ns_steps=3),
                                     dict(ns_coefficients=(2.0, -1.5, 0.5), eps=1e-3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=["f32", "bf16", "f64"])
def test_distinct_shapes_equal_torch_bitwise(options, dtype):
    """One matrix per shape: fastopt runs torch's very operations (bfloat16 Newton–Schulz)."""
    if dtype == torch.bfloat16 and options.get("nesterov") is False:
        pytest.skip("torch divides a bfloat16 momentum buffer in place by its norm (grad.bfloat16() is the buffer "
                    "itself without nesterov); fastopt leaves the buffer as the rule says")
    shapes = [(24, 40), (40, 24), (16, 16)]
    ours, theirs = make(shapes, dtype), make(shapes, dtype)
    run(ft.Muon(ours, **options), ours, 8)
    run(torch.optim.Muon(theirs, **options), theirs, 8)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


def test_batched_and_nd_weights_equal_the_reference_in_float64():
    """Same-shape matrices batched and a convolution kernel flattened, against the NumPy
    reference with the iteration in float64."""
    shapes = [(20, 30), (20, 30), (20, 30), (30, 20), (8, 3, 2, 2), (8, 3, 2, 2)]
    params = make(shapes, torch.float64)
    arrays = [p.detach().numpy().copy() for p in params]
    run(ft.Muon(params, lr=0.02, ns_dtype=torch.float64, adjust_lr_fn="match_rms_adamw"), params, 10)
    bufs = [np.zeros_like(a) for a in arrays]
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        for a, buf in zip(arrays, bufs):
            grad = torch.randn(a.shape, generator=g, dtype=torch.float64).numpy()
            reference.muon(a, grad, buf, lr=0.02, adjust_lr_fn="match_rms_adamw")
    for p, a in zip(params, arrays):
        np.testing.assert_allclose(p.detach().numpy(), a, rtol=1e-12, atol=1e-13)


def test_batched_bfloat16_is_within_bfloat16_error_of_torch():
    shapes = [(32, 48)] * 4
    ours, theirs = make(shapes), make(shapes)
    run(ft.Muon(ours, lr=0.02), ours, 5)
    run(torch.optim.Muon(theirs, lr=0.02), theirs, 5)
    for a, b, p0 in zip(ours, theirs, make(shapes)):
        step = (b - p0).abs().max()
        assert (a - b).abs().max() <= 0.02 * step  # bfloat16 has 8 bits of mantissa


def test_orthogonalizes():
    """The Newton–Schulz output's singular values are near 1 (the quintic's 0.5-1.5 band; all
    1 with a convergent polynomial and enough steps), one matrix and a batch alike."""
    G = torch.randn(3, 64, 96, dtype=torch.float64)
    single = _muon._zeropower(G[:1], (3.4445, -4.7750, 2.0315), 5, 1e-7)[0]
    s = torch.linalg.svdvals(single)
    assert s.min() > 0.5 and s.max() < 1.5
    for rows, cols, G in [(64, 96, G), (96, 64, G.mT)]:
        batch = _muon._NewtonSchulzBatch(3, rows, cols, torch.float64)
        for j in range(3):
            batch.load(j, G[j])
        O = batch.orthogonalize((2.0, -1.5, 0.5), 30, 1e-7)
        assert O.shape == (3, rows, cols)
        np.testing.assert_allclose(torch.linalg.svdvals(O).numpy(), 1.0, atol=1e-6)
        # the same directions: O = U·Vᵀ of G's SVD
        U, _, Vh = torch.linalg.svd(G, full_matrices=False)
        torch.testing.assert_close(O, U @ Vh, rtol=0, atol=1e-6)


def model_groups(params):
    matrices = [p for p in params if p.dim() >= 2]
    others = [p for p in params if p.dim() < 2]
    return matrices, others


def test_combined_groups_equal_torch_muon_plus_adamw():
    shapes = [(30, 20), (20,), (20, 10), (10,), (20, 10)]
    ours, theirs = make(shapes), make(shapes)
    m_ours, o_ours = model_groups(ours)
    opt = ft.Muon([{"params": m_ours}, {"params": o_ours, "use_muon": False, "lr": 3e-3, "weight_decay": 0.01}],
                  lr=0.02)
    m_theirs, o_theirs = model_groups(theirs)
    muon = torch.optim.Muon(m_theirs, lr=0.02)
    adamw = torch.optim.AdamW(o_theirs, lr=3e-3, betas=(0.9, 0.95), eps=1e-10, weight_decay=0.01)
    g = torch.Generator().manual_seed(3)
    for _ in range(10):
        for a, b in zip(ours, theirs):
            a.grad = torch.randn(a.shape, generator=g)
            b.grad = a.grad.clone()
        opt.step()
        muon.step()
        adamw.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert set(opt.state[m_ours[0]]) == {"momentum_buffer"}
    assert set(opt.state[o_ours[0]]) == {"step", "exp_avg", "exp_avg_sq"}


def test_state_dict_moves_both_ways_with_torch_muon():
    shapes = [(24, 16), (16, 8)]
    straight = make(shapes, torch.float64)
    opt = torch.optim.Muon(straight, lr=0.02)
    run(opt, straight, 6, seed=2)
    run(opt, straight, 6, seed=3)
    for first, second in [(torch.optim.Muon, ft.Muon), (ft.Muon, torch.optim.Muon)]:
        params = make(shapes, torch.float64)
        a = first(params, lr=0.02)
        run(a, params, 6, seed=2)
        b = second(params, lr=0.02)
        b.load_state_dict(a.state_dict())
        run(b, params, 6, seed=3)
        for x, y in zip(params, straight):
            assert torch.equal(x, y)


def test_grad_scaler_skips_and_unscales():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 3))
    ref = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 3))
    ref.load_state_dict(model.state_dict())

    def groups(m):
        return [{"params": [m[0].weight, m[1].weight]},
                {"params": [m[0].bias, m[1].bias], "use_muon": False}]

    ours = ft.Muon(groups(model), lr=0.02, ns_dtype=torch.float32)
    theirs = ft.Muon(groups(ref), lr=0.02, ns_dtype=torch.float32)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(5))
    for t in range(5):
        ours.zero_grad()
        theirs.zero_grad()
        loss = model(x).square().mean()
        scaler.scale(loss).backward()
        if t == 2:
            model[0].weight.grad[0, 0] = float("inf")
        scaler.step(ours)
        scaler.update()
        ref(x).square().mean().backward()
        if t != 2:
            theirs.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build, error, text", [
    (lambda p: ft.Muon([torch.zeros(3, requires_grad=True)]), ValueError, "use_muon=False"),
    (lambda p: ft.Muon(p, lr=-1.0), ValueError, "lr"),
    (lambda p: ft.Muon(p, ns_steps=100), ValueError, "ns_steps"),
    (lambda p: ft.Muon(p, ns_steps=2.0), ValueError, "ns_steps"),
    (lambda p: ft.Muon(p, ns_coefficients=(1.0, 2.0)), ValueError, "ns_coefficients"),
    (lambda p: ft.Muon(p, adjust_lr_fn="sqrt"), ValueError, "adjust_lr_fn"),
    (lambda p: ft.Muon(p, nesterov=1), TypeError, "nesterov"),
    (lambda p: ft.Muon(p, ns_dtype=torch.int8), TypeError, "ns_dtype"),
    (lambda p: ft.Muon([{"params": p, "use_muon": False, "betas": (1.0, 0.9)}]), ValueError, "beta1"),
    (lambda p: ft.Muon([{"params": p, "use_muon": "no"}]), TypeError, "use_muon"),
    (lambda p: ft.Muon(p).offload_step(), NotImplementedError, "offload"),
])
def test_bad_arguments_are_refused(build, error, text):
    with pytest.raises(error, match=text):
        build(make([(4, 3)]))


def test_bad_gradient_changes_nothing():
    params = make([(6, 4), (6, 4), (5,)])
    opt = ft.Muon([{"params": params[:2]}, {"params": params[2:], "use_muon": False}], lr=0.02)
    run(opt, params, 2)
    before = [p.detach().clone() for p in params], {k: {n: v.clone() for n, v in s.items()} for k, s in opt.state.items()}
    params[1].grad = torch.randn(6, 4).to_sparse()
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[1\]"):
        opt.step()
    params[1].grad = torch.randn(6, 4)
    params[2].grad_dtype = None
    params[2].grad = torch.randn(5, dtype=torch.float64)  # AdamW group: refused natively
    with pytest.raises(TypeError):
        opt.step()
    for p, b in zip(params, before[0]):
        assert torch.equal(p, b)
    for k, s in opt.state.items():
        for n, v in s.items():
            assert torch.equal(v, before[1][k][n])


def test_batch_buffers_follow_the_parameters_with_gradients():
    """The buffers kept between steps are those of the batches the last step had."""
    params = make([(12, 8)] * 4 + [(8, 12)] * 2)
    opt = ft.Muon(params, lr=0.02)
    run(opt, params, 1)
    assert sorted(k[:3] for k in opt._ns_batches) == [(2, 8, 12), (4, 12, 8)]
    for p in params[2:4]:
        p.grad = None
    opt.step()
    assert sorted(k[:3] for k in opt._ns_batches) == [(2, 8, 12), (2, 12, 8)]
