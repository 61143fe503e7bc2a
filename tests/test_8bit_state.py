"""8-bit optimizer state (state_dtype="int8"): the quantizer against its NumPy
reference (fastopt.reference.quantization) bitwise on every ISA path and
thread count, its edge cases, every rule that stores 8 bits against the
reference's 8-bit step bitwise for every parameter layout, fastopt.optim's
state, checkpoints and refusals, and a convergence check."""
import copy
import math

import numpy as np
import pytest

import fastopt
import fastopt.optim as fo
import registry_cases
from fastopt import _core
from fastopt.reference import optim as ref_optim
from fastopt.reference import quantization as rq
from optim_cases import CASES, make_problem

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    BF16 = None

PARAM_DTYPES = [pytest.param(np.dtype(np.float32), id="f32"), pytest.param(np.dtype(np.float16), id="f16"),
                pytest.param(BF16, id="bf16", marks=pytest.mark.skipif(BF16 is None, reason="needs ml_dtypes"))]
RULES_8BIT = [name for name, r in registry_cases.RULES.items() if r["stores_8bit"]]


def rule_of(case):
    return "sgd" if case.name.startswith("sgd") else case.name


def map8(rule, arg):
    """The map ("signed"/"unsigned") of the state with functional argument ``arg``, or None."""
    return next(s["map8"] for s in registry_cases.RULES[rule]["states"] if s["arg"] == arg)


CASES_8BIT = [c for c in CASES if rule_of(c) in RULES_8BIT]


def spread(n, seed):
    """Values over many decades, signs mixed: every class of the maps is hit."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * np.exp(rng.uniform(-30, 0, n))).astype(np.float32)


# ---------------------------------------------------------------- the quantizer
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_maps_are_the_references_and_dettmers(signed):
    """The native map is the reference's; both are the dynamic map (bitsandbytes' create_dynamic_map)
    to within float32 rounding; sorted, with 0 and 1 in it."""
    native, ref = _core.quant_map(signed), rq.dynamic_map(signed).value
    assert np.array_equal(native.view(np.uint32), ref.view(np.uint32))
    assert np.all(np.diff(native.astype(np.float64)) > 0) and 0.0 in native and native[-1] == 1.0
    values = []  # bitsandbytes' construction, in double
    extra = 0 if signed else 1
    for d in range(7):
        n = 1 << (d + extra)
        values += [10.0 ** (d - 6) * (0.1 + 0.9 * (k + 0.5) / n) for k in range(n)]
    expected = sorted([0.0, 1.0] + values + ([-v for v in values] if signed else []))
    np.testing.assert_allclose(native, expected, rtol=1e-6, atol=1e-7)  # r * c1 + c0 rounds twice


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("n", [1, 15, 256, 257, 1000, 70001])
def test_quantizer_matches_reference_bitwise(signed, n, isa):
    x = spread(n, n)
    if not signed:
        x = np.abs(x)
    codes, absmax = _core.quantize_blockwise(x, signed)
    ref_codes, ref_absmax = rq.quantize_blockwise(x, signed)
    assert np.array_equal(codes, ref_codes) and np.array_equal(absmax.view(np.uint32), ref_absmax.view(np.uint32))
    back = _core.dequantize_blockwise(codes, absmax, signed)
    assert np.array_equal(back.view(np.uint32), rq.dequantize_blockwise(codes, absmax, signed).view(np.uint32))
    # Quantizing the dequantized values gives the same codes for blocks holding the code of 1 (their
    # absmax): the signed map has no -1, so a block whose largest magnitude was negative shrinks.
    again = _core.quantize_blockwise(back, signed)[0]
    keeps = np.repeat(np.array([(b == 255).any() or a == 0 for b, a in
                                zip(np.array_split(codes, range(256, n, 256)), absmax)]), 256)[:n]
    assert np.array_equal(again[keeps], codes[keeps])


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_codes_are_the_nearest_map_values(signed):
    """Each code's value is the map value nearest to x / absmax (up to float32 rounding at a midpoint)."""
    x = spread(20000, 7)
    if not signed:
        x = np.abs(x)
    codes, absmax = _core.quantize_blockwise(x, signed)
    table = _core.quant_map(signed).astype(np.float64)
    scaled = x.astype(np.float64) / np.repeat(absmax, 256)[:x.size]
    distance = np.abs(scaled[:, None] - table[None, :])
    best = distance.min(axis=1)
    got = distance[np.arange(x.size), codes]
    assert np.all(got <= best + 1e-6 * np.abs(scaled) + 1e-30)


def test_quantizer_threads_agree(threads):
    x = spread(300_001, 3)
    assert np.array_equal(_core.quantize_blockwise(x, True)[0], rq.quantize_blockwise(x, True)[0])


def test_quantizer_edge_cases(isa):
    """All-zero blocks, one huge outlier, Inf/NaN confined to their element, subnormal
    absmax, a block cut short."""
    x = np.zeros(256 * 6 + 10, np.float32)
    x[256:512] = np.linspace(-1e-3, 1e-3, 256, dtype=np.float32)
    x[300] = 3e38                                   # the outlier sets its block's absmax
    x[512:768] = np.float32(0.5)
    x[600], x[601], x[602] = np.inf, -np.inf, np.nan
    x[768:1024] = np.linspace(-1e-39, 2e-39, 256, dtype=np.float32)  # subnormal: absmax below 2**-126
    x[1024:1280] = 1e-45                             # the smallest subnormal
    x[1536:] = 2.5                                   # the last, short block
    for signed in (True, False):
        y = x if signed else np.abs(x)
        codes, absmax = _core.quantize_blockwise(y, signed)
        ref = rq.quantize_blockwise(y, signed)
        assert np.array_equal(codes, ref[0]) and np.array_equal(absmax, ref[1])
        back = _core.dequantize_blockwise(codes, absmax, signed)
        assert absmax[0] == 0 and np.all(back[:256] == 0)                    # zeros stay zeros
        assert absmax[1] == np.float32(3e38) and back[300] == np.float32(3e38)
        assert absmax[2] == np.float32(0.5)                                  # Inf, NaN not counted
        # +Inf: 1 · absmax; -Inf: the most negative value (the signed map has no -1); NaN: 0
        assert back[600] == 0.5 and back[602] == 0
        assert back[601] == (_core.quant_map(True)[0] * np.float32(0.5) if signed else 0.5)
        assert np.all(back[512:600] == 0.5)                                  # the rest of the block intact
        assert np.all(np.isfinite(back))
        np.testing.assert_allclose(back[768:1024], np.abs(y[768:1024]) if not signed else y[768:1024],
                                   rtol=0.02, atol=1e-41)                    # subnormals keep their scale
        assert np.all(back[1024:1280] == np.float32(1e-45))
        assert absmax.shape == (7,) and np.all(back[1536:] == y[1536:])


def test_quantizer_bad_input():
    with pytest.raises(TypeError, match="x must have dtype float32"):
        _core.quantize_blockwise(np.zeros(4), True)
    with pytest.raises(TypeError, match="codes must have dtype uint8"):
        _core.dequantize_blockwise(np.zeros(4, np.float32), np.zeros(1, np.float32), True)
    with pytest.raises(ValueError, match="absmax must be 1-d with one number per block of 256 codes"):
        _core.dequantize_blockwise(np.zeros(300, np.uint8), np.zeros(1, np.float32), True)


# ---------------------------------------------------------------- steps against the reference
def problem_8bit(case, n, param_dtype, seed):
    """A case's problem with its 8-bit-capable states quantized (identical for both sides)."""
    p, grads, state = make_problem(case, n, np.float32, seed=seed)
    rule = rule_of(case)
    out = {}
    for arg, value in state.items():
        kind = map8(rule, arg) if value.ndim else None
        out[arg] = value if kind is None else rq.QuantizedState(*rq.quantize_blockwise(value, kind == "signed"),
                                                                kind == "signed")
    return p.astype(param_dtype), [g.astype(param_dtype) for g in grads], out


def copy_8bit(state):
    return {k: (rq.QuantizedState(v.codes.copy(), v.absmax.copy(), v.signed) if isinstance(v, rq.QuantizedState)
                else v.copy()) for k, v in state.items()}


def native_arrays(p, g, state):
    arrays = {"p": p, "g": g}
    for arg, v in state.items():
        if isinstance(v, rq.QuantizedState):
            arrays[arg], arrays[arg + "_absmax"] = v.codes, v.absmax
        else:
            arrays[arg] = v
    return arrays


def step_both_8bit(case, fast, ref, t, seed=None):
    kw = {k: v for k, v in case.kwargs.items()}
    p, grads, s = fast
    _core.step(rule_of(case), native_arrays(p, grads[t % 3], s), kw, t if case.uses_step else None, seed)
    p, grads, s = ref
    step = t if case.uses_step else 0
    rq.step_8bit(getattr(ref_optim, case.name), p, grads[t % 3], *[s[k] for k in case.positional],
                 **{k: s[k] for k in case.keyword}, step=step, stochastic_rounding_seed=seed, **kw)


def assert_same(fast, ref, what):
    pf, _, sf = fast
    pr, _, sr = ref
    bits = np.uint16 if pf.itemsize == 2 else np.uint32
    assert np.array_equal(pf.view(bits), pr.view(bits)), f"p {what}"
    for k in sf:
        a, b = sf[k], sr[k]
        if isinstance(a, rq.QuantizedState):
            assert np.array_equal(a.codes, b.codes), f"{k} codes {what}"
            assert np.array_equal(a.absmax.view(np.uint32), b.absmax.view(np.uint32)), f"{k} absmax {what}"
        else:
            assert np.array_equal(a, b), f"{k} {what}"


@pytest.mark.parametrize("param_dtype", PARAM_DTYPES)
@pytest.mark.parametrize("case", CASES_8BIT, ids=lambda c: c.id)
def test_8bit_step_matches_reference_bitwise(case, param_dtype, isa):
    seeds = (None, 4242) if param_dtype.itemsize == 2 else (None,)
    for seed in seeds:
        for n in (7, 1000):
            fast = problem_8bit(case, n, param_dtype, seed=n)
            ref = problem_8bit(case, n, param_dtype, seed=n)
            for t in range(1, 4):
                step_both_8bit(case, fast, ref, t, seed)
            assert_same(fast, ref, f"{case.id} n={n} seed={seed}")


@pytest.mark.parametrize("rule", RULES_8BIT)
def test_threaded_8bit_step_matches_reference_bitwise(rule, threads):
    """70,001 elements: blocks over 1-3 threads, a short last quantization block."""
    case = next(c for c in CASES_8BIT if rule_of(c) == rule)
    fast = problem_8bit(case, 70001, np.dtype(np.float32), seed=1)
    ref = problem_8bit(case, 70001, np.dtype(np.float32), seed=1)
    for t in range(1, 3):
        step_both_8bit(case, fast, ref, t)
    assert_same(fast, ref, case.id)


def test_master_weights_and_16bit_gradients_with_8bit_state():
    """float32 parameters, bfloat16/float16 gradients and a 16-bit copy, 8-bit state."""
    case = next(c for c in CASES_8BIT if c.name == "adamw")
    for grad_dtype in [np.dtype(np.float16)] + ([BF16] if BF16 is not None else []):
        fast = problem_8bit(case, 3000, np.dtype(np.float32), seed=5)
        ref = problem_8bit(case, 3000, np.dtype(np.float32), seed=5)
        fast, ref = [(p, [g.astype(grad_dtype) for g in grads], s) for p, grads, s in (fast, ref)]
        copies = [np.zeros(3000, grad_dtype), np.zeros(3000, grad_dtype)]
        for t in (1, 2):
            p, grads, s = fast
            _core.step("adamw", dict(native_arrays(p, grads[t % 3], s), p_copy=copies[0]), case.kwargs, t, None)
            p, grads, s = ref
            rq.step_8bit(ref_optim.adamw, p, grads[t % 3], s["m"], s["v"], step=t, p_copy=copies[1], **case.kwargs)
        assert_same(fast, ref, str(grad_dtype))
        assert np.array_equal(copies[0].view(np.uint16), copies[1].view(np.uint16))


def test_nonfinite_gradient_stays_in_its_element():
    """A NaN or Inf gradient makes its own parameter NaN, as with float32 state; the other
    elements of its block update as without it, and the state stays finite."""
    rng = np.random.default_rng(0)
    p = rng.standard_normal(512).astype(np.float32)
    g = rng.standard_normal(512).astype(np.float32)
    runs = {}
    for bad in (None, np.nan, np.inf):
        opt = fo.AdamW([p.copy()], state_dtype="int8", min_8bit_size=0)
        gg = g.copy()
        if bad is not None:
            gg[10] = bad
        opt.step([gg])
        runs[bad] = opt
    for bad in (np.nan, np.inf):
        q = runs[bad].params[0]
        assert np.isnan(q[10])
        mask = np.arange(512) != 10
        np.testing.assert_allclose(q[mask], runs[None].params[0][mask], rtol=1e-6)
        state = runs[bad].state_dict(dequantized=True)["state"][0]
        assert np.isfinite(state["exp_avg"]).all() and np.isfinite(state["exp_avg_sq"]).all()


# ---------------------------------------------------------------- fastopt.optim
def test_optimizer_state_layout_and_min_8bit_size():
    p = [np.zeros(5000, np.float32), np.zeros(100, np.float32), np.zeros(5000, np.float64)]
    opt = fo.Adam(p, state_dtype="int8")
    s = opt.state
    assert s["exp_avg"][0].dtype == np.uint8 and s["exp_avg_absmax"][0].shape == (20,)
    assert s["exp_avg"][1].dtype == np.float32 and s["exp_avg_absmax"][1] is None   # below min_8bit_size
    assert s["exp_avg"][2].dtype == np.float64 and s["exp_avg_absmax"][2] is None   # float64 keeps float64
    assert np.all(s["exp_avg"][0] == 127) and np.all(s["exp_avg_sq"][0] == 0)       # the maps' zeros
    opt = fo.Adam(p, state_dtype="int8", min_8bit_size=0)
    assert opt.state["exp_avg"][1].dtype == np.uint8
    # Adagrad's initial accumulator is stored exactly (its block absmax, code of 1).
    opt = fo.Adagrad([np.zeros(5000, np.float32)], initial_accumulator_value=0.25, state_dtype="int8")
    assert np.all(opt.state_dict(dequantized=True)["state"][0]["sum"] == 0.25)


@pytest.mark.parametrize("rule", RULES_8BIT)
def test_resuming_from_a_saved_8bit_state_is_bitwise_equal_to_not_stopping(rule):
    cls = getattr(fo, registry_cases.class_name(rule))
    options = {"momentum": 0.9} if rule in ("sgd", "rmsprop") else {}
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(6000).astype(np.float32) for _ in range(6)]
    p0 = rng.standard_normal(6000).astype(np.float32)
    a = cls([p0.copy()], lr=1e-3, state_dtype="int8", **options)
    for g in grads:
        a.step([g])
    b = cls([p0.copy()], lr=1e-3, state_dtype="int8", **options)
    for g in grads[:3]:
        b.step([g])
    saved = b.state_dict()
    c = cls([b.params[0].copy()], lr=1e-3, state_dtype="int8", **options)
    c.load_state_dict(saved)
    for g in grads[3:]:
        c.step([g])
    assert np.array_equal(a.params[0], c.params[0])
    for name, arrays in a.state.items():
        assert np.array_equal(arrays[0], c.state[name][0]), name


def test_checkpoints_convert_between_float_and_8bit_state():
    rng = np.random.default_rng(2)
    p = rng.standard_normal(9000).astype(np.float32)
    f32 = fo.AdamW([p.copy()])
    for _ in range(3):
        f32.step([rng.standard_normal(9000).astype(np.float32)])
    eight = fo.AdamW([p.copy()], state_dtype="int8")
    eight.load_state_dict(f32.state_dict())           # float32 state quantized
    m = f32.state["exp_avg"][0]
    np.testing.assert_allclose(eight.state_dict(dequantized=True)["state"][0]["exp_avg"], m,
                               atol=0.02 * np.abs(m).max())
    back = fo.AdamW([p.copy()])
    back.load_state_dict(eight.state_dict())           # 8-bit state dequantized
    assert np.array_equal(back.state["exp_avg"][0], eight.state_dict(dequantized=True)["state"][0]["exp_avg"])


def test_bad_8bit_input_is_refused_by_name_before_anything_changes():
    p = np.ones(5000, np.float32)
    with pytest.raises(ValueError, match="state_dtype must be"):
        fo.Adam([p], state_dtype="int4")
    with pytest.raises(ValueError, match="Rprop keeps no moment state that 8 bits can hold"):
        fo.Rprop([p], state_dtype="int8")
    with pytest.raises(ValueError, match="min_8bit_size must be >= 0"):
        fo.Adam([p], state_dtype="int8", min_8bit_size=-1)
    opt = fo.Adam([p], state_dtype="int8")
    opt.step([np.ones(5000, np.float32)])
    good = opt.state_dict()
    before = {k: v[0].copy() for k, v in opt.state.items()}
    for key, value, message in [
            ("exp_avg_absmax", np.zeros(19, np.float32), "exp_avg_absmax.*expected \\(20,\\)"),
            ("exp_avg_absmax", np.full(20, -1, np.float32), "finite numbers >= 0"),
            ("exp_avg_absmax", np.zeros(20, np.float64), "expected \\(20,\\) and float32"),
            ("exp_avg", np.zeros(5000, np.int32), "expected uint8 codes or floats")]:
        bad = {"state": {0: dict(good["state"][0], **{key: value})}, "param_groups": good["param_groups"]}
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(bad)
    missing = {"state": {0: {k: v for k, v in good["state"][0].items() if k != "exp_avg_sq_absmax"}},
               "param_groups": good["param_groups"]}
    with pytest.raises(ValueError, match="missing 'exp_avg_sq_absmax'"):
        opt.load_state_dict(missing)
    assert all(np.array_equal(before[k], v[0]) for k, v in opt.state.items())
    # The native checks, for callers of the functions.
    codes, absmax = _core.quantize_blockwise(np.zeros(300, np.float32), True)
    v, v_absmax = _core.quantize_blockwise(np.zeros(300, np.float32), False)
    arrays = {"p": np.ones(300, np.float32), "g": np.ones(300, np.float32), "m": codes, "v": v, "v_absmax": v_absmax}
    with pytest.raises(ValueError, match="m_absmax is required with 8-bit m"):
        _core.step("adam", arrays, {}, 1, None)
    with pytest.raises(ValueError, match="m_absmax has shape \\(1,\\)"):
        _core.step("adam", dict(arrays, m_absmax=np.zeros(1, np.float32)), {}, 1, None)
    with pytest.raises(TypeError, match="m_absmax must have dtype float32"):
        _core.step("adam", dict(arrays, m_absmax=np.zeros(2)), {}, 1, None)
    with pytest.raises(TypeError, match="m has dtype uint8 but p has dtype float64"):
        _core.step("adam", dict(arrays, p=np.ones(300), g=np.ones(300), m_absmax=absmax), {}, 1, None)
    with pytest.raises(ValueError, match="m_absmax is given but m is not 8-bit"):
        _core.step("adam", {"p": np.ones(3, np.float32), "g": np.ones(3, np.float32), "m": np.zeros(3, np.float32),
                            "v": np.zeros(3, np.float32), "m_absmax": np.zeros(1, np.float32)}, {}, 1, None)
    with pytest.raises(TypeError, match="prev has dtype uint8 .* rprop keeps no state that 8 bits can hold"):
        _core.step("rprop", {"p": np.ones(3, np.float32), "g": np.ones(3, np.float32), "prev": np.zeros(3, np.uint8),
                             "step_size": np.zeros(3, np.uint8), "prev_absmax": np.zeros(1, np.float32),
                             "step_size_absmax": np.zeros(1, np.float32)}, {}, 1, None)
    shared = np.zeros(300, np.float32)
    with pytest.raises(ValueError, match="share memory"):
        _core.step("adam", dict(arrays, m_absmax=shared[:2], v_absmax=shared[:2]), {}, 1, None)


# ---------------------------------------------------------------- convergence
def mlp_after(state_dtype, cls, steps=400, batch=128, **options):
    """A 64-64-10 tanh MLP trained on 1,400 digits by minibatches; its loss and accuracy on the
    other 397."""
    X, y = fastopt.datasets.load_digits()
    X = ((X - X.mean(0)) / (X.std(0) + 1e-6)).astype(np.float32)
    train, test = np.arange(1400), np.arange(1400, len(y))
    rng = np.random.default_rng(0)
    W1 = (rng.standard_normal((64, 64)) / 8).astype(np.float32)
    W2 = (rng.standard_normal((64, 10)) / 8).astype(np.float32)
    opt = cls([W1, W2], state_dtype=state_dtype, min_8bit_size=0, **options)
    onehot = np.eye(10, dtype=np.float32)[y]

    def loss_and_grads(idx):
        h = np.tanh(X[idx] @ W1)
        z = h @ W2
        e = np.exp(z - z.max(1, keepdims=True))
        prob = e / e.sum(1, keepdims=True)
        dz = (prob - onehot[idx]) / len(idx)
        return (-np.log(prob[np.arange(len(idx)), y[idx]]).mean(),
                [X[idx].T @ ((dz @ W2.T) * (1 - h * h)), h.T @ dz], prob.argmax(1))

    for _ in range(steps):
        opt.step(loss_and_grads(rng.choice(train, batch))[1])
    loss, _, predicted = loss_and_grads(test)
    return loss, (predicted == y[test]).mean()


@pytest.mark.parametrize("cls, options", [(fo.AdamW, dict(lr=3e-3)), (fo.Lion, dict(lr=1e-3))],
                         ids=["adamw", "lion"])
def test_8bit_state_trains_as_float32_state(cls, options):
    loss32, acc32 = mlp_after("float32", cls, **options)
    loss8, acc8 = mlp_after("int8", cls, **options)
    assert loss8 <= loss32 * 1.05 + 0.01 and acc8 >= acc32 - 0.01, (loss32, loss8, acc32, acc8)


# ---------------------------------------------------------------- fastopt.torch
def torch_or_skip():
    return pytest.importorskip("torch")


def test_torch_8bit_state_matches_fastopt_optim_bitwise():
    """fastopt.torch and fastopt.optim step the same tensors alike: 8-bit state for the large
    parameters (a channels_last convolution kernel among them), float32 for the small one."""
    torch = torch_or_skip()
    import fastopt.torch as ft
    gen = torch.Generator().manual_seed(0)
    conv = torch.randn(32, 16, 3, 3, generator=gen).to(memory_format=torch.channels_last)
    shapes = [(64, 80), (100,)]
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes] + [torch.nn.Parameter(conv)]
    arrays = [p.detach().clone().permute(0, 2, 3, 1).contiguous().numpy() if p.dim() == 4 else
              p.detach().clone().numpy() for p in ps]   # the conv kernel in its memory order
    a = ft.AdamW(ps, lr=1e-2, weight_decay=0.1, state_dtype="int8")
    b = fo.AdamW(arrays, lr=1e-2, weight_decay=0.1, state_dtype="int8")
    for _ in range(3):
        grads = [torch.randn(p.shape, generator=gen).contiguous(memory_format=torch.channels_last) if p.dim() == 4
                 else torch.randn(p.shape, generator=gen) for p in ps]
        for p, g in zip(ps, grads):
            p.grad = g
        a.step()
        b.step([g.permute(0, 2, 3, 1).contiguous().numpy() if g.dim() == 4 else g.numpy() for g in grads])
    for p, q in zip(ps, b.params):
        mine = p.detach().permute(0, 2, 3, 1).contiguous() if p.dim() == 4 else p.detach()
        assert np.array_equal(mine.numpy(), q)
    state = a.state[ps[0]]
    assert state["exp_avg"].dtype == torch.uint8 and state["exp_avg_absmax"].shape == (20,)
    assert a.state[ps[1]]["exp_avg"].dtype == torch.float32 and "exp_avg_absmax" not in a.state[ps[1]]
    assert a.state[ps[2]]["exp_avg"].is_contiguous(memory_format=torch.channels_last)
    assert np.array_equal(state["exp_avg"].numpy(), b.state["exp_avg"][0])


def test_torch_8bit_checkpoints_move_both_ways():
    torch = torch_or_skip()
    import fastopt.torch as ft
    gen = torch.Generator().manual_seed(1)
    p0 = torch.randn(50, 100, generator=gen)
    grads = [torch.randn(50, 100, generator=gen) for _ in range(6)]

    def run(opt, p, gs):
        for g in gs:
            p.grad = g.clone()
            opt.step()
    # Resuming from a saved 8-bit state equals not stopping.
    pa = torch.nn.Parameter(p0.clone())
    a = ft.AdamW([pa], lr=1e-2, state_dtype="int8")
    run(a, pa, grads)
    pb = torch.nn.Parameter(p0.clone())
    b = ft.AdamW([pb], lr=1e-2, state_dtype="int8")
    run(b, pb, grads[:3])
    saved = copy.deepcopy(b.state_dict())  # as torch.save and torch.load would (state_dict shares the tensors)
    pc = torch.nn.Parameter(pb.detach().clone())
    c = ft.AdamW([pc], lr=1e-2, state_dtype="int8")
    c.load_state_dict(saved)
    run(c, pc, grads[3:])
    assert torch.equal(pa, pc)
    assert torch.equal(a.state[pa]["exp_avg_sq"], c.state[pc]["exp_avg_sq"])
    # torch.optim's float32 state loads quantized; the 8-bit state exports as float32 for torch.optim.
    pt = torch.nn.Parameter(p0.clone())
    t = torch.optim.AdamW([pt], lr=1e-2)
    run(t, pt, grads[:2])
    pd = torch.nn.Parameter(pt.detach().clone())
    d = ft.AdamW([pd], lr=1e-2, state_dtype="int8")
    d.load_state_dict(t.state_dict())
    assert d.state[pd]["exp_avg"].dtype == torch.uint8
    exported = d.state_dict(dequantized=True)
    m = t.state[pt]["exp_avg"]
    assert torch.allclose(exported["state"][0]["exp_avg"], m, atol=0.02 * float(m.abs().max()))
    assert "exp_avg_absmax" not in exported["state"][0] and d.state[pd]["exp_avg"].dtype == torch.uint8
    t2 = torch.optim.AdamW([torch.nn.Parameter(p0.clone())], lr=1e-2)
    t2.load_state_dict(exported)
    # and into a float32-state fastopt.torch optimizer, dequantized
    e = ft.AdamW([torch.nn.Parameter(p0.clone())], lr=1e-2)
    e.load_state_dict(d.state_dict())
    assert torch.equal(next(iter(e.state.values()))["exp_avg"], exported["state"][0]["exp_avg"])


def test_torch_8bit_bad_checkpoint_is_refused_before_anything_changes():
    torch = torch_or_skip()
    import fastopt.torch as ft
    p = torch.nn.Parameter(torch.ones(5000))
    opt = ft.Adam([p], state_dtype="int8")
    p.grad = torch.ones(5000)
    opt.step()
    good = opt.state_dict()
    before = {k: v.clone() for k, v in opt.state[p].items()}
    for value, message in [(torch.zeros(19), "expected \\(20,\\) and torch.float32"),
                           (torch.full((20,), float("nan")), "finite numbers >= 0"), (None, "is missing")]:
        entry = dict(good["state"][0])
        if value is None:
            del entry["exp_avg_absmax"]
        else:
            entry["exp_avg_absmax"] = value
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict({"state": {0: entry}, "param_groups": good["param_groups"]})
        assert all(torch.equal(before[k], v) for k, v in opt.state[p].items())
    with pytest.raises(ValueError, match="Rprop keeps no moment state that 8 bits can hold"):
        ft.Rprop([p], state_dtype="int8")
    with pytest.raises(ValueError, match="not available for Muon"):
        ft.Muon([torch.nn.Parameter(torch.ones(8, 8))], state_dtype="int8")


def test_torch_8bit_offload_step_and_grad_scaler():
    torch = torch_or_skip()
    import fastopt.torch as ft
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = ft.AdamW(model.parameters(), lr=1e-3, state_dtype="int8")
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    applied, norm = opt.offload_step(grad_scale=1 / 1024.0, max_norm=1.0)
    assert applied and math.isfinite(norm)


def test_native_training_loop_steps_8bit_state_as_python_would():
    """fastopt.training.train_linear (the native loop) with 8-bit state is the Python loop over
    fastopt's loss kernels and Optimizer.step, bitwise; and follows the NumPy reference loop."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from test_training import python_loop
    from fastopt.reference import training as ref_training
    from fastopt.training import train_linear
    X, y = fastopt.datasets.load_digits()
    X = X.astype(np.float32)
    runs = []
    for _ in range(3):
        W = np.zeros((64, 10), np.float32)
        runs.append((W, fo.AdamW([W], lr=1e-2, state_dtype="int8", min_8bit_size=0)))
    kw = dict(loss="softmax", reg=1e-3, penalty="l2", batch_size=200)
    native = train_linear(runs[0][1], X, y, rng=4, epochs=2, **kw)
    python = python_loop(runs[1][1], X, y, seed=4, epochs=2, **kw)
    reference = ref_training.train_linear(runs[2][1], X, y, rng=4, epochs=2, **kw)
    np.testing.assert_array_equal(native, python)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for key in runs[0][1].state:
        np.testing.assert_array_equal(runs[0][1].state[key][0], runs[1][1].state[key][0])
    assert runs[0][1].state["exp_avg"][0].dtype == np.uint8
    # The reference loop's loss kernel rounds differently; an 8-bit code may then differ by one.
    np.testing.assert_allclose(native, reference, rtol=1e-5)
    np.testing.assert_allclose(runs[0][0], runs[2][0], atol=1e-3)
