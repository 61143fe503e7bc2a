"""fastopt.optim: multi-tensor steps against the reference applied tensor by tensor."""
import numpy as np
import pytest

import registry_cases
from conftest import tolerances
from fastopt import optim, reference

SHAPES = [(0,), (1,), (7, 3), (1000,), (8192 * 2 + 5,), (33, 65)]


# (id, optimizer class, constructor kwargs, reference function, reference kwargs, state names
#  in the reference's order: (optim state name, reference argument, positional?))
def _registry_setups():
    """A setup per elementwise rule with every option on (tests/registry_cases.py; the
    functions' tests run every option set); SGD's are below."""
    out = []
    for name in registry_cases.RULES:
        if name == "sgd" or not registry_cases.elementwise(name):
            continue
        lr = registry_cases.RULES[name]["hypers"][0]["default"]  # given: the tests change it
        for hypers in registry_cases.option_sets(name)[-1:]:
            out.append((f"{name}-{registry_cases.set_id(hypers)}", getattr(optim, registry_cases.class_name(name)),
                        {"lr": lr, **registry_cases.as_class_options(name, hypers)}, getattr(reference, name),
                        {"lr": lr, **registry_cases.step_hypers(name, hypers)},
                        registry_cases.states(name, hypers)))
    return out


SETUPS = [
    *_registry_setups(),
    ("sgd", optim.SGD, dict(lr=0.1), reference.sgd, dict(lr=0.1), []),
    ("sgd-momentum-wd", optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01),
     reference.sgd_momentum, dict(lr=0.1, momentum=0.9, weight_decay=0.01),
     [("momentum_buffer", "buf", True)]),
    ("sgd-nesterov-maximize", optim.SGD, dict(lr=0.1, momentum=0.8, nesterov=True, maximize=True),
     reference.sgd_momentum, dict(lr=0.1, momentum=0.8, nesterov=True, maximize=True),
     [("momentum_buffer", "buf", True)]),
    ("sgd-dampening", optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.01),
     reference.sgd_momentum, dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.01),
     [("momentum_buffer", "buf", True)]),
    # pairs away from their defaults
    ("adam-betas", optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
     reference.adam, dict(lr=0.01, beta1=0.8, beta2=0.99, weight_decay=0.01), [("exp_avg", "m", True),
                                                                              ("exp_avg_sq", "v", True)]),
    ("rprop-etas-step_sizes", optim.Rprop, dict(lr=0.05, etas=(0.4, 1.3), step_sizes=(1e-3, 1.0)), reference.rprop,
     dict(lr=0.05, etaminus=0.4, etaplus=1.3, step_size_min=1e-3, step_size_max=1.0),
     [("prev", "prev", True), ("step_size", "step_size", True)]),
    ("asgd-averaging", optim.ASGD, dict(lr=0.05, lambd=0.01, t0=5, weight_decay=0.05), reference.asgd,
     dict(lr=0.05, lambd=0.01, t0=5, weight_decay=0.05),
     [("ax", "ax", True), ("eta", "eta", True), ("mu", "mu", True)]),
]
USES_STEP = {getattr(reference, name) for name, rule in registry_cases.RULES.items() if rule["uses_step"]}
USES_STEP.add(reference.sgd_momentum)


def tensors(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def gradients(dtype, step):
    rng = np.random.default_rng(1000 + step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def reference_steps(setup, params, steps, lr_at=None):
    _, cls, kwargs, ref_fn, ref_kwargs, state_spec = setup
    # each buffer starts where the registry says (Rprop's step_size at lr; most at 0), per-tensor
    # ones as 0-d arrays (float64 for float64 parameters, else float32)
    specs = {s["name"]: s for s in optim.RULES[cls._rule]["states"]}

    def start(name, p):
        spec = specs[name]
        defaults = {h["name"]: h["default"] for h in optim.RULES[cls._rule]["hypers"]}
        value = spec["start"] if spec["initial"] is None else kwargs.get(spec["initial"], defaults[spec["initial"]])
        if spec["shape"] == "tensor":
            return np.array(value, np.float64 if p.dtype == np.float64 else np.float32)
        return np.full_like(p, value)

    state = [{arg: start(name, p) for name, arg, _ in state_spec} for p in params]
    for t in range(1, steps + 1):
        kwargs = dict(ref_kwargs)
        if lr_at is not None:
            kwargs["lr"] = lr_at(t)
        if ref_fn in USES_STEP:
            kwargs["step"] = t
        for p, g, st in zip(params, gradients(params[0].dtype, t), state):
            positional = [st[arg] for _, arg, pos in state_spec if pos]
            keyword = {arg: st[arg] for _, arg, pos in state_spec if not pos}
            ref_fn(p, g, *positional, **keyword, **kwargs)
    return state


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: s[0])
def test_multi_tensor_matches_reference(setup, dtype, isa, threads):
    params = tensors(dtype)
    expected = [p.copy() for p in params]
    ref_state = reference_steps(setup, expected, steps=20)
    opt = setup[1](params, **setup[2])
    for t in range(1, 21):
        assert opt.step(gradients(dtype, t)) is True
    tol = tolerances(dtype, 100)
    for i, (p, e) in enumerate(zip(params, expected)):
        np.testing.assert_allclose(p, e, **tol, err_msg=f"params[{i}]")
        for name, arg, _ in setup[5]:
            np.testing.assert_allclose(opt.state[name][i], ref_state[i][arg], **tol, err_msg=name)
    assert opt.step_count == 20


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: s[0])
def test_dict_params_registered_grads_and_lr_changes(setup):
    dtype = np.float64
    params = tensors(dtype)
    expected = [p.copy() for p in params]
    lr0 = setup[2]["lr"]
    schedule = lambda t: lr0 / t  # noqa: E731
    reference_steps(setup, expected, steps=10, lr_at=schedule)
    keys = [f"layer{i}.w" for i in range(len(params))]
    grad_buffers = {k: np.zeros_like(p) for k, p in zip(keys, params)}
    opt = setup[1](dict(zip(keys, params)), grads=grad_buffers, **setup[2])
    for t in range(1, 11):
        opt.lr = schedule(t)
        for k, g in zip(keys, gradients(dtype, t)):
            grad_buffers[k][...] = g          # a backward pass writing into registered buffers
        assert opt.step()
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, **tolerances(dtype, 100))
    opt.zero_grad()
    assert all(not g.any() for g in grad_buffers.values())


def test_skip_if_nonfinite_changes_nothing():
    params = tensors(np.float32)
    opt = optim.Adam(params, lr=0.1)
    opt.step(gradients(np.float32, 1))
    before = [p.copy() for p in params], [m.copy() for m in opt.state["exp_avg"]]
    for bad in (np.nan, np.inf, -np.inf):
        grads = gradients(np.float32, 2)
        grads[4][123] = bad
        assert opt.step(grads, skip_if_nonfinite=True) is False
        assert opt.step_count == 1
        for p, b in zip(params, before[0]):
            assert np.array_equal(p, b)
        for m, b in zip(opt.state["exp_avg"], before[1]):
            assert np.array_equal(m, b)
    assert opt.step(gradients(np.float32, 2), skip_if_nonfinite=True) is True
    assert opt.step_count == 2


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: s[0])
def test_state_dict_round_trip_and_resume(setup, dtype):
    cls, kwargs = setup[1], setup[2]
    params = tensors(dtype)
    opt = cls(params, **kwargs)
    for t in range(1, 6):
        opt.step(gradients(dtype, t))
    saved_params = [p.copy() for p in params]
    sd = opt.state_dict()
    for t in range(6, 11):                      # the uninterrupted run
        opt.step(gradients(dtype, t))

    resumed_params = [p.copy() for p in saved_params]
    resumed = cls(resumed_params, **kwargs)
    resumed.load_state_dict(sd)
    again = resumed.state_dict()
    for i in sd["state"]:                       # bitwise round trip
        for name, value in sd["state"][i].items():
            assert np.array_equal(np.asarray(again["state"][i][name]), np.asarray(value))
    assert again["param_groups"] == sd["param_groups"]
    for t in range(6, 11):
        resumed.step(gradients(dtype, t))
    for p, q in zip(params, resumed_params):
        assert np.array_equal(p, q)
    for name in opt.state:
        for a, b in zip(opt.state[name], resumed.state[name]):
            assert np.array_equal(a, b)


def test_load_state_dict_rejects_mismatch_and_changes_nothing():
    params = tensors(np.float32)
    opt = optim.Adam(params)
    opt.step(gradients(np.float32, 1))
    sd = opt.state_dict()
    sd["state"][5]["exp_avg_sq"] = sd["state"][5]["exp_avg_sq"][:-1]
    before = [m.copy() for m in opt.state["exp_avg"]]
    other = optim.Adam([p.copy() for p in params])
    with pytest.raises(ValueError, match="exp_avg_sq"):
        other.load_state_dict(sd)
    with pytest.raises(ValueError, match="param"):
        optim.Adam(params[:2]).load_state_dict(opt.state_dict())
    for m, b in zip(opt.state["exp_avg"], before):
        assert np.array_equal(m, b)
    assert other.step_count == 0 and not any(m.any() for m in other.state["exp_avg"])


def test_adagrad_initial_accumulator_value():
    p = np.ones(5)
    opt = optim.Adagrad([p], lr=1.0, initial_accumulator_value=3.0)
    opt.step([np.ones(5)])
    np.testing.assert_allclose(p, 1 - 1 / (np.sqrt(4.0) + 1e-10))


def test_many_small_tensors_one_call():
    params = [np.full(1000, float(i), np.float32) for i in range(1000)]
    grads = [np.ones(1000, np.float32) for _ in range(1000)]
    opt = optim.SGD(params, lr=0.5, grads=grads)
    assert opt.step()
    for i, p in enumerate(params):
        assert np.all(p == np.float32(i) - 0.5)



@pytest.mark.parametrize("setup", [s for s in SETUPS if s[0] != "sgd"], ids=lambda s: s[0])
def test_matches_torch_optim(setup):
    torch = pytest.importorskip("torch")
    name, cls, kwargs = setup[0], setup[1], setup[2]
    torch_cls = getattr(torch.optim, cls.__name__, None)
    if torch_cls is None:
        pytest.skip(f"torch.optim has no {cls.__name__}")
    params = tensors(np.float64)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    previous = torch.get_default_dtype()
    # float64 parameters keep float64 per-tensor state in fastopt.optim, as torch does under this default
    torch.set_default_dtype(torch.float64)
    try:
        topt = torch_cls(tparams, **kwargs)
        opt = cls(params, **kwargs)
        for t in range(1, 11):
            grads = gradients(np.float64, t)
            for tp, g in zip(tparams, grads):
                tp.grad = torch.tensor(g)
            topt.step()
            opt.step(grads)
    finally:
        torch.set_default_dtype(previous)
    for p, tp in zip(params, tparams):
        # torch computes a few expressions in another order (lerp, addcdiv); same math.
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("layout", ["float32", "float64", "bfloat16-param", "float16-param-f32-state"])
def test_stream_probe_moves_a_steps_bytes(layout, isa, threads):
    """The benchmark's roofline probe (not an update rule): p += g and s += g for every
    state buffer given, in each storage layout, on one array and over a group."""
    from fastopt import _core
    BF16 = pytest.importorskip("ml_dtypes").bfloat16 if layout.startswith("bfloat16") else None
    param = {"float32": np.float32, "float64": np.float64, "bfloat16-param": BF16,
             "float16-param-f32-state": np.float16}[layout]
    state = np.float32 if layout == "float16-param-f32-state" else param
    rng = np.random.default_rng(0)
    n = 70_000
    p = rng.integers(-8, 8, n).astype(param)
    g = rng.integers(-8, 8, n).astype(param)
    states = [rng.integers(-8, 8, n).astype(state) for _ in range(2)]
    want_p = p.astype(np.float64) + g.astype(np.float64)
    want_s = [s.astype(np.float64) + g.astype(np.float64) for s in states]
    _core.stream_probe(p, g, states)
    np.testing.assert_array_equal(p.astype(np.float64), want_p)
    for s, w in zip(states, want_s):
        np.testing.assert_array_equal(s.astype(np.float64), w)
    group = _core.TensorGroup("adam", [p], {"exp_avg": [states[0]], "exp_avg_sq": [states[1]]}, None, None, None, None)
    group.stream_probe([g])
    np.testing.assert_array_equal(p.astype(np.float64), want_p + g.astype(np.float64))
