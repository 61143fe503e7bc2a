"""docs/design.md 'Bad input': each case raises the right exception, names the
argument, and leaves every array exactly as it was."""
import numpy as np
import pytest

import fastopt
from fastopt import optim

N = 64


def fresh(dtype=np.float32):
    rng = np.random.default_rng(0)
    arrays = {k: rng.uniform(0.5, 1.5, N).astype(dtype) for k in ("p", "g", "m", "v", "max_v", "buf", "ga")}
    arrays.update(mp=np.array(0.5, np.float32), eta=np.array(0.01, np.float32), mu=np.array(0.5, np.float64))
    return arrays


def misaligned(n):
    raw = np.zeros(n * 4 + 1, np.uint8)
    return np.frombuffer(raw.data, dtype=np.float32, count=n, offset=1)


def read_only(a):
    a.flags.writeable = False
    return a


# Each case: (id, function building the call from the arrays a, exception, text the message must contain)
ADAM = lambda a, **kw: fastopt.adam(a["p"], a["g"], a["m"], a["v"], **{"step": 1, **kw})  # noqa: E731
CASES = [
    ("p-not-array", lambda a: fastopt.adam(list(a["p"]), a["g"], a["m"], a["v"], step=1), TypeError, "p"),
    ("g-int", lambda a: fastopt.adam(a["p"], a["g"].astype(np.int64), a["m"], a["v"], step=1), TypeError, "g"),
    ("p-int16", lambda a: fastopt.sgd(a["p"].astype(np.int16), a["g"], lr=1), TypeError, "p"),
    ("g-float64-for-float16-p", lambda a: fastopt.sgd(a["p"].astype(np.float16), a["g"].astype(np.float64), lr=1),
     TypeError, "g has dtype float64 but p has dtype float16"),
    ("m-float16-for-float32-p", lambda a: fastopt.adam(a["p"], a["g"], a["m"].astype(np.float16), a["v"], step=1),
     TypeError, "m has dtype float16 but p has dtype float32: float32 parameters keep float32 or 8-bit \\(uint8 codes\\) state"),
    ("p-big-endian", lambda a: fastopt.sgd(a["p"].astype(">f4"), a["g"], lr=1), TypeError, "p"),
    ("m-mixed-dtype", lambda a: fastopt.adam(a["p"], a["g"], a["m"].astype(np.float64), a["v"], step=1),
     TypeError, "m"),
    ("v-shape", lambda a: fastopt.adam(a["p"], a["g"], a["m"], a["v"][:-1], step=1), ValueError, "v"),
    ("g-2d-shape", lambda a: fastopt.sgd(a["p"], a["g"].reshape(8, 8), lr=1), ValueError, "g"),
    ("g-non-contiguous", lambda a: fastopt.sgd(a["p"][:N // 2], a["g"][::2], lr=1), ValueError, "g"),
    ("m-read-only", lambda a: fastopt.adam(a["p"], a["g"], read_only(a["m"]), a["v"], step=1), ValueError, "m"),
    ("p-read-only", lambda a: fastopt.sgd(read_only(a["p"]), a["g"], lr=1), ValueError, "p"),
    ("p-misaligned", lambda a: fastopt.sgd(misaligned(N), a["g"], lr=1), ValueError, "aligned"),
    ("m-is-v", lambda a: fastopt.adam(a["p"], a["g"], a["m"], a["m"], step=1), ValueError, "share memory"),
    ("p-is-g", lambda a: fastopt.sgd(a["p"], a["p"], lr=1), ValueError, "share memory"),
    ("partial-overlap", lambda a: fastopt.sgd_momentum(a["p"][:32], a["g"][:32], a["p"][16:48], lr=1),
     ValueError, "share memory"),
    ("lr-negative", lambda a: ADAM(a, lr=-1e-3), ValueError, "lr"),
    ("lr-nan", lambda a: ADAM(a, lr=float("nan")), ValueError, "lr"),
    ("lr-string", lambda a: ADAM(a, lr="0.1"), TypeError, "lr"),
    ("beta1-one", lambda a: ADAM(a, beta1=1.0), ValueError, "beta1"),
    ("beta2-negative", lambda a: ADAM(a, beta2=-0.1), ValueError, "beta2"),
    ("eps-zero", lambda a: ADAM(a, eps=0.0), ValueError, "eps"),
    ("weight-decay-negative", lambda a: ADAM(a, weight_decay=-0.1), ValueError, "weight_decay"),
    ("step-zero", lambda a: ADAM(a, step=0), ValueError, "step"),
    ("step-float", lambda a: ADAM(a, step=1.5), TypeError, "step"),
    ("amsgrad-without-max_v", lambda a: ADAM(a, amsgrad=True), ValueError, "max_v"),
    ("adamw-lr-negative", lambda a: fastopt.adamw(a["p"], a["g"], a["m"], a["v"], step=1, lr=-1),
     ValueError, "lr"),
    ("momentum-negative", lambda a: fastopt.sgd_momentum(a["p"], a["g"], a["buf"], lr=1, momentum=-1),
     ValueError, "momentum"),
    ("nesterov-without-momentum",
     lambda a: fastopt.sgd_momentum(a["p"], a["g"], a["buf"], lr=1, momentum=0, nesterov=True),
     ValueError, "nesterov"),
    ("sgd-lr-negative", lambda a: fastopt.sgd(a["p"], a["g"], lr=-1), ValueError, "lr"),
    ("dampening-without-step",
     lambda a: fastopt.sgd_momentum(a["p"], a["g"], a["buf"], lr=1, dampening=0.5), ValueError, "step"),
    ("dampening-with-nesterov",
     lambda a: fastopt.sgd_momentum(a["p"], a["g"], a["buf"], lr=1, dampening=0.5, nesterov=True, step=1),
     ValueError, "dampening"),
    ("dampening-above-one",
     lambda a: fastopt.sgd_momentum(a["p"], a["g"], a["buf"], lr=1, dampening=1.5, step=1), ValueError, "dampening"),
    ("maximize-string", lambda a: fastopt.sgd(a["p"], a["g"], lr=1, maximize="yes"), TypeError, "maximize"),
    ("adagrad-lr-decay", lambda a: fastopt.adagrad(a["p"], a["g"], a["m"], lr_decay=-1, step=1),
     ValueError, "lr_decay"),
    ("adagrad-step", lambda a: fastopt.adagrad(a["p"], a["g"], a["m"], step=-3), ValueError, "step"),
    ("rmsprop-alpha", lambda a: fastopt.rmsprop(a["p"], a["g"], a["v"], alpha=1.5), ValueError, "alpha"),
    ("rmsprop-momentum-buf", lambda a: fastopt.rmsprop(a["p"], a["g"], a["v"], momentum=0.9),
     ValueError, "momentum_buf"),
    ("rmsprop-grad-avg", lambda a: fastopt.rmsprop(a["p"], a["g"], a["v"], centered=True),
     ValueError, "grad_avg"),
    # per-tensor state: one float32/float64 number, written, sharing memory with nothing
    ("nadam-mu_product-missing", lambda a: fastopt.nadam(a["p"], a["g"], a["m"], a["v"], None, step=1),
     TypeError, "mu_product"),
    ("nadam-mu_product-float16", lambda a: fastopt.nadam(a["p"], a["g"], a["m"], a["v"], a["mp"].astype(np.float16),
                                                         step=1), TypeError, "mu_product"),
    ("nadam-mu_product-two", lambda a: fastopt.nadam(a["p"], a["g"], a["m"], a["v"], a["m"][:2], step=1),
     ValueError, "mu_product must hold one number"),
    ("nadam-mu_product-read-only", lambda a: fastopt.nadam(a["p"], a["g"], a["m"], a["v"], read_only(a["mp"]),
                                                           step=1), ValueError, "mu_product"),
    ("nadam-mu_product-in-m", lambda a: fastopt.nadam(a["p"], a["g"], a["m"], a["v"], a["m"][:1], step=1),
     ValueError, "share memory"),
    ("nadam-mu_product-reaches-one", lambda a: fastopt.nadam(a["p"], a["g"], a["m"], a["v"], np.array(1.0, np.float32), beta1=1 - 1e-10,
                                                             momentum_decay=1e6, step=1), ValueError, "mu_product"),
    ("nadam-momentum-decay", lambda a: fastopt.nadam(a["p"], a["g"], a["m"], a["v"], a["mp"], momentum_decay=-1,
                                                     step=1), ValueError, "momentum_decay"),
    ("asgd-eta-is-mu", lambda a: fastopt.asgd(a["p"], a["g"], a["m"], a["eta"], a["eta"], step=1),
     ValueError, "share memory"),
    ("asgd-mu-int", lambda a: fastopt.asgd(a["p"], a["g"], a["m"], a["eta"], np.array(1), step=1), TypeError, "mu"),
    ("asgd-t0-negative", lambda a: fastopt.asgd(a["p"], a["g"], a["m"], a["eta"], a["mu"], t0=-1.0, step=1),
     ValueError, "t0"),
    ("rmsprop-grad-avg-shape",
     lambda a: fastopt.rmsprop(a["p"], a["g"], a["v"], centered=True, grad_avg=a["ga"][:3]),
     ValueError, "grad_avg"),
]


@pytest.mark.parametrize("build, exc, text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_functional_bad_input(build, exc, text):
    arrays = fresh()
    before = {k: v.copy() for k, v in arrays.items()}
    with pytest.raises(exc, match=text):
        build(arrays)
    for k, v in arrays.items():
        assert np.array_equal(v, before[k]), f"{k} changed"


def ten_tensors():
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(100 * (i + 1)).astype(np.float32) for i in range(10)]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    return params, grads


def snapshot(opt):
    return [p.copy() for p in opt.params], {k: [a.copy() for a in v] for k, v in opt.state.items()}


def assert_unchanged(opt, snap):
    for p, b in zip(opt.params, snap[0]):
        assert np.array_equal(p, b)
    for k, arrays in opt.state.items():
        for a, b in zip(arrays, snap[1][k]):
            assert np.array_equal(a, b)


def _bad_seventh(grads, kind, params):
    g = list(grads)
    if kind == "shape":
        g[6] = g[6][:-1].copy()
    elif kind == "dtype":
        g[6] = g[6].astype(np.float64)
    elif kind == "not-array":
        g[6] = g[6].tolist()
    elif kind == "non-contiguous":
        g[6] = np.repeat(g[6], 2)[::2]
    elif kind == "aliases-param":
        g[6] = params[6]
    return g


@pytest.mark.parametrize("kind, exc, text", [
    ("shape", ValueError, r"grads\[6\]"), ("dtype", TypeError, r"grads\[6\]"),
    ("not-array", TypeError, r"grads\[6\]"), ("non-contiguous", ValueError, r"grads\[6\]"),
    ("aliases-param", ValueError, "share memory")])
@pytest.mark.parametrize("cls", [optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW])
def test_multi_tensor_bad_seventh_gradient_changes_nothing(cls, kind, exc, text):
    params, grads = ten_tensors()
    kwargs = dict(momentum=0.9) if cls is optim.SGD else {}
    opt = cls(params, **kwargs)
    opt.step(grads)
    snap = snapshot(opt)
    with pytest.raises(exc, match=text):
        opt.step(_bad_seventh(grads, kind, params))
    assert_unchanged(opt, snap)
    assert opt.step_count == 1


def test_multi_tensor_bad_structure():
    params, grads = ten_tensors()
    opt = optim.Adam(params)
    snap = snapshot(opt)
    with pytest.raises(ValueError, match="grads has 9 entries"):
        opt.step(grads[:9])
    with pytest.raises(TypeError, match="grads"):
        opt.step(grads[0])
    with pytest.raises(ValueError, match="grads is required"):
        opt.step()
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0                       # refused when set
    assert opt.lr == 1e-3
    opt.param_groups[0]["lr"] = -1.0        # or, set behind its back, at the next step
    with pytest.raises(ValueError, match="lr"):
        opt.step(grads)
    assert_unchanged(opt, snap)

    named = optim.Adam({"w": params[0], "b": params[1]})
    with pytest.raises(ValueError, match="'b'"):
        named.step({"w": grads[0], "c": grads[1]})
    with pytest.raises(ValueError, match=r"grads\['b'\]"):
        named.step({"w": grads[0], "b": grads[2]})
    with pytest.raises(TypeError, match="dict"):
        named.step([grads[0], grads[1]])


def test_multi_tensor_construction_errors():
    params, grads = ten_tensors()
    with pytest.raises(TypeError, match=r"grads\[3\] has dtype float32 but params\[3\] has dtype float64"):
        optim.Adam(params[:3] + [params[3].astype(np.float64)]).step(grads[:4])
    with pytest.raises(ValueError, match="share memory"):
        optim.Adam([params[0], params[0]])
    with pytest.raises(ValueError, match="share memory"):
        optim.SGD([params[0]], grads=[params[0]])
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError, match="params"):
        optim.Adam(params[0])
    with pytest.raises(ValueError, match="read-only"):
        optim.Adam([read_only(np.zeros(3))])
    with pytest.raises(ValueError, match="lr"):
        optim.Adam(params, lr=-1)
    with pytest.raises(ValueError, match="beta1"):
        optim.Adam(params, betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="betas"):
        optim.Adam(params, betas=0.9)
    with pytest.raises(ValueError, match="eps"):
        optim.Adagrad(params, eps=0)
    with pytest.raises(ValueError, match="alpha"):
        optim.RMSprop(params, alpha=2)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(params, nesterov=True)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        optim.Adagrad(params, initial_accumulator_value=-1)


def test_parameter_made_read_only_after_construction():
    params, grads = ten_tensors()
    opt = optim.SGD(params, lr=0.1)
    params[9].flags.writeable = False
    snap = snapshot(opt)
    with pytest.raises(ValueError, match="read-only"):
        opt.step(grads)
    assert_unchanged(opt, snap)


def test_config_bad_input():
    with pytest.raises(ValueError, match=r"n must be in \[1, 1024\], got 0"):
        fastopt.set_num_threads(0)
    with pytest.raises(TypeError, match="n"):
        fastopt.set_num_threads(2.0)
    with pytest.raises(ValueError, match="bogus"):
        fastopt.set_isa("bogus")
    with pytest.raises(TypeError, match="name"):
        fastopt.set_isa(3)


def test_empty_arrays_are_no_ops():
    e = np.zeros(0, np.float32)
    fastopt.adam(e, e.copy(), e.copy(), e.copy(), step=1)
    opt = optim.Adam([np.zeros(0), np.ones(3)])
    assert opt.step([np.zeros(0), np.ones(3)])


def test_refused_per_tensor_state_changes_no_tensor():
    """The per-tensor numbers of every tensor are advanced only once all were accepted."""
    params, grads = ten_tensors()
    opt = optim.NAdam(params, betas=(1 - 1e-10, 0.999), momentum_decay=1e6)   # mu_t rounds to 1 in float32
    for mu_product in opt.state["mu_product"]:
        mu_product[...] = 0.5
    opt.state["mu_product"][7][...] = 1.0   # this tensor's product would reach 1
    before = snapshot(opt)
    with pytest.raises(ValueError, match="mu_product"):
        opt.step(grads)
    after = snapshot(opt)
    assert all(np.array_equal(a, b) for a, b in zip(before[0], after[0]))
    for name in before[1]:
        assert all(np.array_equal(a, b) for a, b in zip(before[1][name], after[1][name])), name
    assert opt.step_count == 0
