"""Adafactor: the kernel against its NumPy reference (bitwise, every shape kind, layout, ISA
and thread count), bad input, fastopt.optim, and fastopt.torch against torch.optim.Adafactor."""
import numpy as np
import pytest

import fastopt
from fastopt import _core, optim, reference
from fastopt.reference import precision

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    BF16 = None

ISAS = fastopt.available_isas()
# vectors (one chunk, several), a 0-d parameter, matrices with row blocks and ragged tails, a stack
SHAPES = [(), (7,), (8192 * 2 + 3,), (1, 1), (130, 37), (5, 1), (1, 9), (3, 70, 9), (2, 2, 65, 3)]


def state_for(shape, dtype):
    if len(shape) >= 2:
        return (np.zeros(shape[:-1] + (1,), dtype), np.zeros(shape[:-2] + (1,) + shape[-1:], dtype), None)
    return None, None, np.zeros(shape, dtype)


def problem(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    return p, grads, state_for(shape, dtype)


def copies(state):
    return tuple(None if s is None else s.copy() for s in state)


def assert_same(a, b):
    assert (a is None) == (b is None)
    if a is not None:
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=True), np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))


OPTIONS = [dict(), dict(lr=0.05, weight_decay=0.1, d=1.5, eps1=1e-20), dict(maximize=True, beta2_decay=-0.5, eps2=0.0)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("options", range(len(OPTIONS)))
def test_kernel_equals_reference_bitwise(shape, dtype, isa, options):
    kw = OPTIONS[options]
    previous = fastopt.get_isa()
    p, grads, state = problem(shape, dtype)
    rp, rstate = p.copy(), copies(state)
    try:
        fastopt.set_isa(isa)
        for t in range(1, 5):
            fastopt.adafactor(p, grads[t % 3], *state, step=t, **kw)
            reference.adafactor(rp, grads[t % 3], *rstate, step=t, **kw)
    finally:
        fastopt.set_isa(previous)
    assert_same(p, rp)
    for a, b in zip(state, rstate):
        assert_same(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_the_same_for_every_isa_and_thread_count(dtype):
    results = []
    previous = (fastopt.get_isa(), fastopt.get_num_threads())
    try:
        for isa in ISAS:
            for threads in (1, 2, 3):
                fastopt.set_isa(isa)
                fastopt.set_num_threads(threads)
                out = []
                for shape in [(600, 700), (4, 90, 300), (300_001,)]:  # above the threading threshold
                    p, grads, state = problem(shape, dtype, seed=3)
                    for t in range(1, 3):
                        fastopt.adafactor(p, grads[t], *state, step=t, weight_decay=0.01)
                    out.append((p, state))
                results.append(out)
    finally:
        fastopt.set_isa(previous[0])
        fastopt.set_num_threads(previous[1])
    for out in results[1:]:
        for (p, state), (p0, state0) in zip(out, results[0]):
            assert_same(p, p0)
            for a, b in zip(state, state0):
                assert_same(a, b)


LOW = [pytest.param(np.dtype(np.float16), id="f16"),
       pytest.param(BF16, id="bf16", marks=pytest.mark.skipif(BF16 is None, reason="needs ml_dtypes"))]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("state_dtype", ["float32", "param"])
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("shape", [(7,), (130, 37), (3, 70, 9)], ids=str)
def test_low_precision_layouts_equal_reference_bitwise(shape, dtype, state_dtype, isa):
    """float16/bfloat16 parameters: the float32 rule, rounded at every store. eps1 is given:
    None would be the parameter dtype's epsilon, which the float32 reference cannot see."""
    sdt = np.float32 if state_dtype == "float32" else dtype
    p32, grads32, _ = problem(shape, np.float32)
    p, grads, state = p32.astype(dtype), [g.astype(dtype) for g in grads32], state_for(shape, sdt)
    rp, rstate = p.copy(), copies(state)
    previous = fastopt.get_isa()
    try:
        fastopt.set_isa(isa)
        for t in range(1, 4):
            fastopt.adafactor(p, grads[t % 3], *state, step=t, eps1=1e-3, weight_decay=0.1)
            precision.step_in_float32(reference.adafactor, rp, grads[t % 3], *rstate, step=t, eps1=1e-3,
                                      weight_decay=0.1)
    finally:
        fastopt.set_isa(previous)
    assert_same(p, rp)
    for a, b in zip(state, rstate):
        assert_same(a, b)


def test_eps1_none_is_the_parameter_dtypes_epsilon():
    for dtype in (np.float32, np.float64):
        a, grads, sa = problem((6, 5), dtype)
        b, sb = a.copy(), copies(sa)
        fastopt.adafactor(a, grads[0], *sa, step=1)
        fastopt.adafactor(b, grads[0], *sb, step=1, eps1=float(np.finfo(dtype).eps))
        assert_same(a, b)


def test_empty_parameters_change_nothing():
    p, g = np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)
    row, col, _ = state_for((0, 4), np.float32)
    col[...] = 1
    fastopt.adafactor(p, g, row, col, None, step=1)
    assert np.all(col == 1)


def _args(shape=(6, 5), dtype=np.float64):
    p, grads, state = problem(shape, dtype)
    return dict(p=p, g=grads[0], row_var=state[0], col_var=state[1], variance=state[2], step=1)


@pytest.mark.parametrize("change, error, text", [
    (dict(row_var=np.zeros((6, 5))), ValueError, r"row_var has shape \(6, 5\) but a row state of p"),
    (dict(col_var=np.zeros((5, 1))), ValueError, r"col_var has shape \(5, 1\) but a col state of p .* \(1, 5\)"),
    (dict(row_var=None), ValueError, "row_var is required"),
    (dict(variance=np.zeros((6, 5))), ValueError, "variance must be None"),
    (dict(row_var=np.zeros((6, 1), np.float32)), TypeError, "row_var"),
    (dict(col_var=np.zeros((1, 10))[:, ::2]), ValueError, "col_var must be C-contiguous"),
    (dict(d=0.5), ValueError, "d must be >= 1"),
    (dict(beta2_decay=0.1), ValueError, "beta2_decay must be a finite number <= 0"),
    (dict(eps1=-1.0), ValueError, "eps1 must be None or a finite number >= 0"),
    (dict(eps1=float("nan")), ValueError, "eps1"),
    (dict(eps2=float("inf")), ValueError, "eps2"),
    (dict(eps1="1e-3"), TypeError, "eps1"),
    (dict(step=0), ValueError, "step must be >= 1"),
])
def test_bad_input_is_refused_and_changes_nothing(change, error, text):
    args = _args()
    args.update(change)
    arrays = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    with pytest.raises(error, match=text):
        fastopt.adafactor(**args)
    for k, v in arrays.items():
        assert np.array_equal(args[k], v), k


def test_vector_refuses_factored_state():
    args = _args((5,))
    args["row_var"] = np.zeros((5, 1))
    with pytest.raises(ValueError, match="row_var must be None"):
        fastopt.adafactor(**args)
    args = _args((5,))
    args["variance"] = None
    with pytest.raises(ValueError, match="variance is required"):
        fastopt.adafactor(**args)


def test_row_var_sharing_memory_with_p_is_refused():
    args = _args((6, 1))
    args["row_var"] = args["p"]
    with pytest.raises(ValueError, match="share memory"):
        fastopt.adafactor(**args)


# --------------------------------------------------------------------------- fastopt.optim


def test_optimizer_equals_reference_and_resumes():
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((50, 30)).astype(np.float32), "b": rng.standard_normal(30).astype(np.float32),
              "k": rng.standard_normal((4, 3, 5, 5)).astype(np.float32)}
    ref = {k: v.copy() for k, v in params.items()}
    states = {k: state_for(v.shape, np.float32) for k, v in params.items()}
    opt = optim.Adafactor(params, lr=0.02, weight_decay=0.01, eps=(1e-30, 1e-3))
    assert opt.state["variance"][0] is None and opt.state["row_var"][0].shape == (50, 1)
    assert opt.state["col_var"][2].shape == (4, 3, 1, 5) and opt.state["row_var"][1] is None
    saved = None
    for t in range(1, 7):
        grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
        if t == 4:
            saved = (opt.state_dict(), {k: v.copy() for k, v in params.items()})
        if t >= 4:
            later = later if t > 4 else []
            later.append(grads)
        opt.step(grads)
        for k in params:
            reference.adafactor(ref[k], grads[k], *states[k], step=t, lr=0.02, weight_decay=0.01, eps1=1e-30)
    for k in params:
        assert_same(params[k], ref[k])
    sd, at4 = saved
    again = optim.Adafactor(at4, lr=0.02, weight_decay=0.01, eps=(1e-30, 1e-3))
    again.load_state_dict(sd)
    for grads in later:
        again.step(grads)
    for k in params:
        assert_same(at4[k], params[k])


@pytest.mark.parametrize("eps, error", [((1e-3,), TypeError), ((-1.0, 1e-3), ValueError), ((None, -1.0), ValueError)])
def test_optimizer_refuses_bad_eps(eps, error):
    with pytest.raises(error, match="eps"):
        optim.Adafactor([np.zeros((3, 2))], eps=eps)


def test_offload_step_unscales_and_clips_like_a_scaled_gradient():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 20)), None
    b = a.copy()
    g = rng.standard_normal((40, 20))
    oa, ob = optim.Adafactor([a]), optim.Adafactor([b])
    oa.offload_step([g * 8.0], grad_scale=1 / 8.0)
    ob.step([g])
    np.testing.assert_allclose(a, b, rtol=1e-12)


# --------------------------------------------------------------------------- fastopt.torch

def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype_name, tol", [("float64", 1e-9), ("float32", 2e-5)])
def test_torch_trajectory_equals_torch_optim(dtype_name, tol):
    torch = _torch()
    import fastopt.torch as ft
    dtype = getattr(torch, dtype_name)

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(144, 10)).to(dtype)
    for kw in [dict(), dict(lr=0.05, weight_decay=0.1, d=1.5, eps=(1e-30, 1e-3)), dict(maximize=True)]:
        a, b = model(), model()
        oa = torch.optim.Adafactor([{"params": list(a.parameters())[:2]},
                                    {"params": list(a.parameters())[2:], "lr": 0.003}], **kw)
        ob = ft.Adafactor([{"params": list(b.parameters())[:2]},
                           {"params": list(b.parameters())[2:], "lr": 0.003}], **kw)
        x, y = torch.randn(16, 3, 8, 8, dtype=dtype), torch.randint(0, 10, (16,))
        for _ in range(15):
            for m, o in ((a, oa), (b, ob)):
                o.zero_grad()
                torch.nn.functional.cross_entropy(m(x), y).backward()
                o.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pb, pa, rtol=tol, atol=tol)
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert set(ob.state[pb]) == set(oa.state[pa])
            for key in oa.state[pa]:
                assert ob.state[pb][key].shape == oa.state[pa][key].shape
        # checkpoints move both ways
        ob.load_state_dict(oa.state_dict())
        oa.load_state_dict(ob.state_dict())


def test_torch_resume_is_bitwise():
    torch = _torch()
    import copy
    import fastopt.torch as ft
    torch.manual_seed(0)
    w = torch.randn(30, 20, requires_grad=True)
    b = torch.randn(20, requires_grad=True)
    opt = ft.Adafactor([w, b], lr=0.05)
    grads = [(torch.randn(30, 20), torch.randn(20)) for _ in range(6)]
    for gw, gb in grads[:3]:
        w.grad, b.grad = gw, gb
        opt.step()
    saved = (copy.deepcopy(opt.state_dict()), w.detach().clone(), b.detach().clone())
    for gw, gb in grads[3:]:
        w.grad, b.grad = gw, gb
        opt.step()
    w2, b2 = saved[1].clone().requires_grad_(), saved[2].clone().requires_grad_()
    opt2 = ft.Adafactor([w2, b2], lr=0.05)
    opt2.load_state_dict(saved[0])
    for gw, gb in grads[3:]:
        w2.grad, b2.grad = gw, gb
        opt2.step()
    assert torch.equal(w2, w) and torch.equal(b2, b)
    assert opt2.state[w2]["row_var"].shape == (30, 1) and opt2.state[b2]["variance"].shape == (20,)
    assert int(opt2.state[w2]["step"]) == 6


def test_torch_bfloat16_parameters_step():
    torch = _torch()
    import fastopt.torch as ft
    if BF16 is None:
        pytest.skip("needs ml_dtypes")
    torch.manual_seed(0)
    w = torch.randn(64, 32, dtype=torch.bfloat16, requires_grad=True)
    opt = ft.Adafactor([w], state_dtype="float32", stochastic_rounding=True)
    before = w.detach().clone()
    w.grad = torch.randn(64, 32, dtype=torch.bfloat16)
    opt.step()
    assert opt.state[w]["row_var"].dtype == torch.float32 and opt.state[w]["row_var"].shape == (64, 1)
    assert not torch.equal(w, before)
