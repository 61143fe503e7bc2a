"""Mixed precision: float16 / bfloat16 storage against the float32 reference
rounded with NumPy and ml_dtypes (fastopt.reference.precision), bitwise, for
every rule × option × storage × rounding × ISA path; master-weight mode;
stochastic rounding's invariance and unbiasedness; the bfloat16 stall."""
import numpy as np
import pytest

import fastopt
from conftest import ISAS
from fastopt.reference import precision
from optim_cases import CASES, make_problem

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # bfloat16 cases skip; float16 needs nothing beyond NumPy
    ml_dtypes = None
    BF16 = None

LOW = [pytest.param(np.dtype(np.float16), id="f16"),
       pytest.param(BF16, id="bf16", marks=pytest.mark.skipif(BF16 is None, reason="needs ml_dtypes"))]
# SIMD bodies and tails, one chunk (1024) and one block (8192) and past them.
SIZES = [1, 7, 33, 1000, 8195]


def low_problem(case, n, dtype, state_dtype, grad_dtype, seed=0):
    """A case's problem with its arrays stored as asked (values rounded from float32)."""
    p, grads, state = make_problem(case, n, np.float32, seed=seed)
    return (p.astype(dtype), [g.astype(grad_dtype) for g in grads],
            {k: v if v.ndim == 0 else v.astype(state_dtype) for k, v in state.items()})  # 0-d: per-tensor


def assert_bitwise(a, b, what):
    assert a.dtype == b.dtype, what
    same = (a.view(np.uint16 if a.itemsize == 2 else np.uint32) == b.view(np.uint16 if b.itemsize == 2 else np.uint32))
    both_nan = np.isnan(a.astype(np.float32)) & np.isnan(b.astype(np.float32))
    bad = ~(same | both_nan)
    assert not bad.any(), f"{what}: {bad.sum()} of {a.size} differ, first at {np.argmax(bad)}"


# Only rules whose functional form has no step get step=None from the fast path: the
# hash then uses step 0, and so must the reference.
def reference_step(case, t):
    return t if case.uses_step else 0


def step_both(case, fast, ref, t, copies=(None, None), **extra):
    """Step t of `case` on the fast problem and, with the reference, on `ref`."""
    kw = dict(case.kwargs, **extra)
    if case.uses_step:
        kw["step"] = t
    p, g, s = fast
    case.fast()(p, g[t % 3], *[s[k] for k in case.positional], **{k: s[k] for k in case.keyword},
                p_copy=copies[0], **kw)
    p, g, s = ref
    kw["step"] = reference_step(case, t)
    precision.step_in_float32(case.ref(), p, g[t % 3], *[s[k] for k in case.positional],
                              **{k: s[k] for k in case.keyword}, p_copy=copies[1], **kw)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_low_precision_step_matches_reference_bitwise(case, dtype, isa):
    for state_dtype in (np.dtype(np.float32), dtype):
        for grad_dtype in (dtype, np.dtype(np.float32)):
            for seed in (None, 12345):
                for n in SIZES:
                    fast = low_problem(case, n, dtype, state_dtype, grad_dtype, seed=n)
                    ref = low_problem(case, n, dtype, state_dtype, grad_dtype, seed=n)
                    for t in range(1, 4):
                        step_both(case, fast, ref, t, stochastic_rounding_seed=seed)
                    what = f"{case.id} n={n} state={state_dtype} grad={grad_dtype} seed={seed}"
                    assert_bitwise(fast[0], ref[0], "p " + what)
                    for k in fast[2]:
                        assert_bitwise(fast[2][k], ref[2][k], f"{k} " + what)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_threaded_low_precision_step_matches_reference_bitwise(case, dtype, threads):
    """70,001 elements: the threaded path (9 blocks over 1-3 threads), stochastic
    rounding, and a master-weight step, each bitwise equal to the reference."""
    n, seed = 70001, 99
    for layout in ("stochastic", "master"):
        param_dtype = dtype if layout == "stochastic" else np.float32
        fast = low_problem(case, n, param_dtype, np.float32, dtype, seed=1)
        ref = low_problem(case, n, param_dtype, np.float32, dtype, seed=1)
        copies = ([np.zeros(n, dtype), np.zeros(n, dtype)] if layout == "master" else [None, None])
        extra = {"stochastic_rounding_seed": seed} if layout == "stochastic" else {}
        for t in range(1, 3):
            step_both(case, fast, ref, t, copies, **extra)
        assert_bitwise(fast[0], ref[0], f"p {layout} {case.id}")
        if copies[0] is not None:
            assert_bitwise(copies[0], copies[1], f"copy {case.id}")


@pytest.mark.parametrize("copy_dtype", LOW)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_master_weight_mode_matches_reference(case, copy_dtype, isa):
    """float32 parameters and state, float16/bfloat16 gradients, and the updated
    parameters rounded into a low-precision copy in the same pass."""
    for grad_dtype in (copy_dtype, np.dtype(np.float32)):
        for n in SIZES:
            fast = low_problem(case, n, np.float32, np.float32, grad_dtype, seed=n)
            ref = low_problem(case, n, np.float32, np.float32, grad_dtype, seed=n)
            copies = [np.full(n, np.nan, copy_dtype), np.full(n, np.nan, copy_dtype)]
            for t in range(1, 4):
                step_both(case, fast, ref, t, copies)
            assert_bitwise(fast[0], ref[0], f"p {case.id} n={n}")
            assert_bitwise(copies[0], copies[1], f"p_copy {case.id} n={n}")
            assert_bitwise(copies[0], fast[0].astype(copy_dtype), "the copy is p rounded to nearest")


@pytest.mark.parametrize("dtype", LOW)
def test_conversions_of_special_values(dtype, isa):
    """Rounding to nearest of zeros, subnormals, the largest finite values and
    beyond, infinities and NaN equals NumPy's / ml_dtypes' astype."""
    info = np.finfo(dtype)
    with np.errstate(over="ignore"):
        values = np.array([0.0, -0.0, 1.0, -1.0, float(info.tiny), float(info.tiny) / 2, float(info.smallest_subnormal),
                           float(info.smallest_subnormal) / 2, float(info.smallest_subnormal) * 0.75,
                           float(info.max), float(info.max) * 1.001, -float(info.max) * 1.5, np.inf, -np.inf,
                           np.nan, 1e-30, 3e38, 65519.0, 65520.0, 1 + 2.0**-8, 1 + 3 * 2.0**-9, 1 + 2.0**-11,
                           1 + 3 * 2.0**-12], np.float32)
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 100000, dtype=np.uint64).astype(np.uint32)
    values = np.concatenate([values, bits.view(np.float32)])
    # Master-weight mode with lr = 0 writes round_to_nearest(p) into the copy.
    p = values.copy()
    copy = np.zeros(p.size, dtype)
    with np.errstate(all="ignore"):
        fastopt.sgd(p, np.zeros_like(p), lr=0.0, p_copy=copy)
        assert_bitwise(copy, values.astype(dtype), "round to nearest")


@pytest.mark.parametrize("dtype", LOW)
def test_stochastic_rounding_is_invariant_to_threads_and_isa(dtype):
    case = next(c for c in CASES if c.id == "adam-weight_decay")
    previous = (fastopt.get_isa(), fastopt.get_num_threads())
    results = []
    try:
        for isa in ISAS:
            fastopt.set_isa(isa)
            for threads in (1, 2, 3):
                fastopt.set_num_threads(threads)
                p, grads, state = low_problem(case, 2**18 + 5, dtype, np.float32, dtype, seed=1)
                for t in range(1, 4):
                    fastopt.adam(p, grads[t % 3], state["m"], state["v"], step=t, lr=1e-3, weight_decay=0.05,
                                 stochastic_rounding_seed=7)
                results.append(p)
    finally:
        fastopt.set_isa(previous[0])
        fastopt.set_num_threads(previous[1])
    for r in results[1:]:
        assert_bitwise(r, results[0], "threads/ISA")
    # A different seed gives different roundings somewhere.
    p, grads, state = low_problem(case, 2**18 + 5, dtype, np.float32, dtype, seed=1)
    for t in range(1, 4):
        fastopt.adam(p, grads[t % 3], state["m"], state["v"], step=t, lr=1e-3, weight_decay=0.05,
                     stochastic_rounding_seed=8)
    assert (p.view(np.uint16) != results[0].view(np.uint16)).sum() > 1000


@pytest.mark.parametrize("dtype", LOW)
def test_stochastic_rounding_is_unbiased(dtype):
    """p + delta for deltas far below an ulp, rounded with 4000 seeds: the mean is
    within 5 standard errors of the exact float32 value, where rounding to
    nearest is off by the whole delta."""
    rng = np.random.default_rng(3)
    n, draws = 512, 4000
    # Normal values of both signs, float16 subnormals and values below 2**-24.
    base = np.concatenate([rng.uniform(0.5, 2, n // 4), -rng.uniform(1, 100, n // 4),
                           rng.uniform(1e-7, 6e-5, n // 4), rng.uniform(1e-9, 5e-8, n // 4)]).astype(dtype)
    base_f = base.astype(np.float32)
    ulp = np.abs(np.spacing(base_f.astype(dtype))).astype(np.float32)
    if dtype == np.float16:
        ulp = np.maximum(ulp, np.float32(2.0**-24))
    frac = rng.uniform(0.05, 0.45, n).astype(np.float32)
    g = (-frac * ulp).astype(np.float32)  # p - lr * g = base + frac * ulp, exact in float32
    exact = base_f - g
    total = np.zeros(n, np.float64)
    for seed in range(draws):
        p = base.copy()
        fastopt.sgd(p, g, lr=1.0, stochastic_rounding_seed=seed)
        total += p.astype(np.float64)
    mean = total / draws
    stderr = ulp / 2 / np.sqrt(draws)
    assert np.all(np.abs(mean - exact) <= 5 * stderr + 1e-12), np.max(np.abs(mean - exact) / stderr)
    nearest = base.copy()
    fastopt.sgd(nearest, g, lr=1.0)
    assert np.array_equal(nearest, base)  # below half an ulp: rounding to nearest loses every update


def test_bfloat16_without_ml_dtypes_message():
    """The reference names the missing extra (the native side needs no import)."""
    if ml_dtypes is not None:
        assert precision.bfloat16() == BF16
    else:
        with pytest.raises(ImportError, match="ml_dtypes"):
            precision.bfloat16()


@pytest.mark.parametrize("dtype", LOW)
def test_unsupported_storage_is_refused_naming_the_array(dtype):
    p = np.zeros(5, dtype)
    before = p.copy()
    with pytest.raises(TypeError, match="g has dtype float64 but p has dtype"):
        fastopt.sgd(p, np.zeros(5), lr=1.0)
    with pytest.raises(TypeError, match="m has dtype float64"):
        fastopt.lion(p, np.zeros(5, dtype), np.zeros(5))
    with pytest.raises(TypeError, match=r"p_copy has dtype .*\(master-weight mode\)"):
        fastopt.sgd(p, np.zeros(5, dtype), lr=1.0, p_copy=np.zeros(5, dtype))
    with pytest.raises(TypeError, match="p_copy has dtype float64 but p has dtype float32"):
        fastopt.sgd(np.zeros(5, np.float32), np.zeros(5, np.float32), lr=1.0, p_copy=np.zeros(5))
    with pytest.raises(TypeError, match="stochastic_rounding_seed"):
        fastopt.sgd(p, np.zeros(5, dtype), lr=1.0, stochastic_rounding_seed=1.5)
    with pytest.raises(ValueError, match="stochastic_rounding_seed"):
        fastopt.sgd(p, np.zeros(5, dtype), lr=1.0, stochastic_rounding_seed=-1)
    with pytest.raises(TypeError, match="g has dtype float16 but p has dtype float64"):
        fastopt.sgd(np.zeros(5), np.zeros(5, np.float16), lr=1.0)
    assert np.array_equal(p, before)


@pytest.mark.skipif(BF16 is None, reason="needs ml_dtypes")
def test_pure_bfloat16_stalls_where_stochastic_rounding_and_master_weights_learn():
    """Softmax regression on the digits with SGD (lr 3e-3, weights ~ N(0, 1)): in
    pure bfloat16 most updates are below half an ulp and rounding to nearest
    drops them; stochastic rounding keeps them in expectation, and master
    weights keep them exactly (docs/guide.md, "Mixed precision")."""
    from fastopt import datasets, optim
    X, y = datasets.load_digits()
    X = ((X - X.mean(0)) / (X.std(0) + 1e-3)).astype(np.float32)
    X = np.hstack([X, np.ones((len(X), 1), np.float32)])
    W0 = np.random.default_rng(0).standard_normal((X.shape[1], 10)).astype(np.float32)

    def final_loss(mode, steps=300):
        if mode == "float32":
            W = W0.copy()
            opt = optim.SGD([W], lr=3e-3)
        elif mode == "master":
            W = W0.copy()
            opt = optim.SGD([W], lr=3e-3, param_copies=[W0.astype(BF16)])
        else:
            W = W0.astype(BF16)
            opt = optim.SGD([W], lr=3e-3, stochastic_rounding=mode == "stochastic", seed=1)
        for _ in range(steps):
            loss, dW = fastopt.softmax_loss(W.astype(np.float32), X, y)
            opt.step([dW if mode == "float32" else dW.astype(BF16)])
        return fastopt.softmax_loss(W.astype(np.float32), X, y)[0]

    start = fastopt.softmax_loss(W0, X, y)[0]
    drop = {mode: start - final_loss(mode) for mode in ("float32", "master", "nearest", "stochastic")}
    assert drop["float32"] > 2.0
    assert drop["master"] == pytest.approx(drop["float32"], rel=1e-3)
    assert drop["stochastic"] > 0.95 * drop["float32"]
    assert drop["nearest"] < 0.1 * drop["float32"]


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name, kwargs", [("Adam", dict(lr=1e-2, weight_decay=0.01)), ("AdamW", dict(lr=1e-2)),
                                          ("Adagrad", dict(lr=1e-2)), ("SGD", dict(lr=1e-2, momentum=0.9))])
def test_low_precision_matches_torch(name, kwargs, dtype):
    """torch keeps 16-bit parameters' state in their dtype: state_dtype="param".
    Adam, AdamW and Adagrad against torch's fused CPU kernels (float32 opmath, as
    ours); SGD against torch's for-loop implementation, because torch 2.13's fused
    16-bit SGD with momentum disagrees with torch's own for-loop SGD by ~0.1 at
    1,000 elements (it agrees at 8). Bound after 20 steps: 4 eps (|p| + 1)."""
    torch = pytest.importorskip("torch")
    from fastopt import optim
    tdtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype.name]

    def to_torch(a):
        return torch.from_numpy(a.view(np.int16).copy()).view(tdtype)

    rng = np.random.default_rng(0)
    p = rng.standard_normal(1000).astype(dtype)
    ours = getattr(optim, name)([p.copy()], state_dtype="param", **kwargs)
    tp = to_torch(p).requires_grad_()
    theirs = getattr(torch.optim, name)([tp], **kwargs, **({"foreach": False} if name == "SGD" else {"fused": True}))
    for _ in range(20):
        g = rng.standard_normal(1000).astype(dtype)
        ours.step([g])
        tp.grad = to_torch(g)
        theirs.step()
    a = ours.params[0].astype(np.float32)
    b = tp.detach().view(torch.int16).numpy().view(dtype).astype(np.float32)
    eps = float(np.finfo(dtype).eps)
    assert np.max(np.abs(a - b) / (np.abs(b) + 1)) <= 4 * eps
