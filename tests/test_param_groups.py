"""Parameter groups (torch's layout) and low-precision storage in fastopt.optim:
several groups equal one optimizer per group, bitwise; add_param_group;
state_dict round trips; per-group schedules; bad groups change nothing."""
import numpy as np
import pytest

import registry_cases
from fastopt import optim, schedules
from fastopt.reference import optim as ref_optim
from fastopt.reference import precision

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    BF16 = None

# Per class: the defaults, and two groups overriding them differently: every rule of the
# registry (tests/registry_cases.py), and SGD's and Adam's hand-picked ones.
GROUPS = {getattr(optim, registry_cases.class_name(name)):
          (dict(), *(registry_cases.as_class_options(name, h) for h in registry_cases.option_sets(name)[-2:]))
          for name in registry_cases.RULES}
GROUPS.update({
    optim.SGD: (dict(lr=0.1), dict(momentum=0.9, weight_decay=0.01), dict(lr=0.05, nesterov=True, momentum=0.8)),
    optim.Adam: (dict(), dict(weight_decay=0.0, amsgrad=True), dict(lr=0.01, betas=(0.8, 0.99))),
})


def arrays(seed, shapes=((40, 3), (7,), (1000,), (5, 5))):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def snapshot(opt):
    return [p.copy() for p in opt.params], {k: [None if a is None else a.copy() for a in v]
                                            for k, v in opt.state.items()}


@pytest.mark.parametrize("cls", list(GROUPS), ids=lambda c: c.__name__)
def test_groups_equal_one_optimizer_per_group(cls):
    defaults, first, second = GROUPS[cls]
    params = arrays(0)
    grads = [arrays(10 + t) for t in range(5)]
    grouped = cls([dict(params=params[:2], **first), dict(params=params[2:], **second)], **defaults)
    alone = [p.copy() for p in params]
    one = cls(alone[:2], **{**defaults, **first})
    two = cls(alone[2:], **{**defaults, **second})
    for g in grads:
        assert grouped.step(g)
        one.step(g[:2])
        two.step(g[2:])
    for a, b in zip(params, alone):
        assert np.array_equal(a, b)
    assert [len(g["params"]) for g in grouped.param_groups] == [2, 2]
    assert grouped.param_groups[1]["lr"] == {**defaults, **second}.get("lr", grouped.defaults["lr"])


def test_group_state_follows_its_hyperparameters():
    params = arrays(1)
    opt = optim.SGD([dict(params=params[:2]), dict(params=params[2:], momentum=0.9)], lr=0.1)
    buf = opt.state["momentum_buffer"]
    assert buf[0] is None and buf[1] is None and buf[2].shape == params[2].shape
    opt.param_groups[0]["momentum"] = 0.5  # group 0 keeps no buffer
    with pytest.raises(ValueError, match="parameter group 0 has no 'momentum_buffer'"):
        opt.step(arrays(2))
    assert opt.step_count == 0


def test_add_param_group_starts_its_own_step_count():
    params = arrays(3)
    grads = [arrays(20 + t) for t in range(6)]
    opt = optim.Adam(params[:2], lr=0.01)
    for g in grads[:3]:
        opt.step(g[:2])
    opt.add_param_group({"params": params[2:], "lr": 0.02, "weight_decay": 0.1})
    late = [p.copy() for p in params[2:]]
    fresh = optim.Adam(late, lr=0.02, weight_decay=0.1)  # bias correction restarts, as in torch
    for g in grads[3:]:
        opt.step(g)
        fresh.step(g[2:])
    for a, b in zip(params[2:], late):
        assert np.array_equal(a, b)
    sd = opt.state_dict()
    assert [sd["state"][i]["step"] for i in range(4)] == [6, 6, 3, 3]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]


@pytest.mark.parametrize("cls", list(GROUPS), ids=lambda c: c.__name__)
def test_state_dict_round_trip_with_groups_resumes_bitwise(cls):
    defaults, first, second = GROUPS[cls]
    grads = [arrays(30 + t) for t in range(6)]

    def make(params):
        return cls([dict(params=params[:1], **first), dict(params=params[1:], **second)], **defaults)

    straight = arrays(4)
    opt = make(straight)
    for g in grads:
        opt.step(g)
    resumed_params = arrays(4)
    first_half = make(resumed_params)
    for g in grads[:3]:
        first_half.step(g)
    saved = first_half.state_dict()
    later = make([p.copy() for p in resumed_params])
    later.load_state_dict(saved)
    for g in grads[3:]:
        later.step(g)
    for a, b in zip(straight, later.params):
        assert np.array_equal(a, b)


def test_schedule_per_group():
    params = arrays(5)
    sched = schedules.step_decay(0.1, step_size=2, gamma=0.5)
    opt = optim.SGD([dict(params=params[:2], lr=sched), dict(params=params[2:], lr=0.01)])
    for t in range(5):
        opt.step(arrays(40 + t))
        assert opt.param_groups[0]["lr"] == sched(t) and opt.param_groups[1]["lr"] == 0.01


@pytest.mark.parametrize("build, exc, text", [
    (lambda p: optim.Adam([{"lr": 0.1}]), ValueError, "param group 0 has no 'params'"),
    (lambda p: optim.Adam([{"params": p[:2]}, {"params": p[1:]}]), ValueError, r"param_groups\[1\]\['params'\]\[0\]"),
    (lambda p: optim.Adam([{"params": p, "momentum": 0.9}]), ValueError, "unknown keys .'momentum'."),
    (lambda p: optim.Adam([{"params": p, "maximize": "yes"}]), TypeError, "maximize"),
    (lambda p: optim.SGD([{"params": p, "dampening": "0.1"}]), TypeError, "dampening"),
    (lambda p: optim.Adam([{"params": p, "lr": -1}]), ValueError, "lr"),
    (lambda p: optim.Adam([{"params": []}, {"params": p}]), ValueError, "param group 0 has no parameters"),
    (lambda p: optim.Adam([{"params": {"a": p[0]}}, {"params": p[1:]}]), TypeError, "either every group"),
    (lambda p: optim.Adam([{"params": {"a": p[0]}}, {"params": {"a": p[1]}}]), ValueError, "two groups"),
    (lambda p: optim.Adam(p, state_dtype="float16"), ValueError, "state_dtype"),
    (lambda p: optim.Adam(p, seed=-1), ValueError, "seed"),
    (lambda p: optim.Adam(p, seed=1.5), TypeError, "seed"),
    (lambda p: optim.Adam(p, stochastic_rounding=1), TypeError, "stochastic_rounding"),
    (lambda p: optim.Adam(p, param_copies=[None]), ValueError, "param_copies has 1 entries"),
    (lambda p: optim.Adam(p, param_copies=[np.zeros(p[0].shape)] + [None] * 3), TypeError,
     r"param_copies\[0\] has dtype float64"),
    (lambda p: optim.Adam([{"params": p[:1]}, {"params": [p[0][:5]]}]), ValueError, "share memory"),
    (lambda p: optim.Adam({"a": p[0]}, param_copies=[None]), TypeError, "param_copies must be a dict"),
    (lambda p: optim.Adam({"a": p[0]}, param_copies={"b": None}), ValueError, "same keys"),
])
def test_bad_groups_are_refused(build, exc, text):
    params = arrays(6)
    before = [p.copy() for p in params]
    with pytest.raises(exc, match=text):
        build(params)
    for a, b in zip(params, before):
        assert np.array_equal(a, b)


def test_bad_add_param_group_changes_nothing():
    params = arrays(7)
    opt = optim.Adam(params[:2])
    before = snapshot(opt), opt.state_dict()
    for group, exc, text in [({"params": params[:1]}, ValueError, "another parameter group"),
                             ({"params": params[2:], "amsgrad": 1}, TypeError, "amsgrad"),
                             ({"params": params[2:], "foo": 1}, ValueError, "unknown keys"),
                             ({"lr": 0.1}, ValueError, "no 'params'"),
                             ("params", TypeError, "param_group must be a dict")]:
        with pytest.raises(exc, match=text):
            opt.add_param_group(group)
    assert len(opt.param_groups) == 1 and len(opt.params) == 2
    assert opt.state_dict()["param_groups"] == before[1]["param_groups"]
    registered = optim.SGD(params[:1], grads=[np.zeros_like(params[0])])
    with pytest.raises(ValueError, match="registered"):
        registered.add_param_group({"params": params[1:2]})


def test_load_state_dict_needs_the_same_groups():
    params = arrays(8)
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:]}])
    opt.step(arrays(9))
    sd = opt.state_dict()
    other = optim.Adam([p.copy() for p in params])
    with pytest.raises(ValueError, match="2 param_groups; this optimizer has 1"):
        other.load_state_dict(sd)
    sd["state"][3]["step"] = 5
    with pytest.raises(ValueError, match=r"different step counts within param_groups\[1\]"):
        opt.load_state_dict(sd)


LOW = [np.dtype(np.float16)] + ([BF16] if BF16 is not None else [])


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: d.name)
@pytest.mark.parametrize("stochastic", [False, True])
@pytest.mark.parametrize("state_dtype", ["float32", "param"])
def test_optimizer_on_low_precision_params_matches_reference(dtype, stochastic, state_dtype):
    """Each tensor is hashed with its position across the groups (the reference's
    `tensor`) and its group's step number."""
    rng = np.random.default_rng(11)
    shapes = [(300,), (17, 3), (9000,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    mine = [p.copy() for p in params]
    opt = optim.AdamW([dict(params=mine[:2]), dict(params=mine[2:], lr=0.01, weight_decay=0.0)], lr=0.003,
                      stochastic_rounding=stochastic, seed=99, state_dtype=state_dtype)
    sdt = np.float32 if state_dtype == "float32" else dtype
    assert opt.state["exp_avg"][0].dtype == sdt
    states = [(np.zeros(s, sdt), np.zeros(s, sdt)) for s in shapes]
    hypers = [dict(lr=0.003, weight_decay=0.01), dict(lr=0.01, weight_decay=0.0)]
    for t in range(1, 5):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        opt.step(grads)
        for i, (p, g, (m, v)) in enumerate(zip(params, grads, states)):
            precision.step_in_float32(ref_optim.adamw, p, g, m, v, step=t, tensor=i,
                                      stochastic_rounding_seed=99 if stochastic else None, **hypers[i >= 2])
    for a, b in zip(mine, params):
        assert np.array_equal(a.view(np.uint16), b.view(np.uint16))
    # Resume from a state_dict: same bits as going on.
    saved = opt.state_dict()
    assert saved["state"][0]["exp_avg"].dtype == sdt
    again = optim.AdamW([dict(params=[p.copy() for p in mine[:2]]),
                         dict(params=[p.copy() for p in mine[2:]], lr=0.01, weight_decay=0.0)], lr=0.003,
                        stochastic_rounding=stochastic, seed=99, state_dtype=state_dtype)
    again.load_state_dict(saved)
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    opt.step(grads)
    again.step(grads)
    for a, b in zip(opt.params, again.params):
        assert np.array_equal(a.view(np.uint16), b.view(np.uint16))


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: d.name)
def test_master_weight_mode_in_an_optimizer(dtype):
    rng = np.random.default_rng(12)
    master = [rng.standard_normal(s).astype(np.float32) for s in [(100,), (3, 30)]]
    copies = [p.astype(dtype) for p in master]
    opt = optim.Adam(master, lr=0.01, param_copies=copies)
    for _ in range(3):
        opt.step([rng.standard_normal(p.shape).astype(dtype) for p in master])
        for p, c in zip(master, copies):
            assert np.array_equal(c.view(np.uint16), p.astype(dtype).view(np.uint16))
    assert all(s.dtype == np.float32 for s in opt.state["exp_avg"])


def test_groups_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    params = [rng.standard_normal(s) for s in [(30,), (4, 4), (50,)]]
    tparams = [torch.tensor(p, requires_grad=True) for p in params]
    ours = optim.AdamW([dict(params=params[:1], weight_decay=0.0), dict(params=params[1:], lr=0.01)], lr=0.002)
    theirs = torch.optim.AdamW([dict(params=tparams[:1], weight_decay=0.0), dict(params=tparams[1:], lr=0.01)],
                               lr=0.002)
    for _ in range(50):
        grads = [rng.standard_normal(p.shape) for p in params]
        ours.step(grads)
        for tp, g in zip(tparams, grads):
            tp.grad = torch.tensor(g)
        theirs.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-11, atol=1e-13)


def test_state_dtype_takes_float32_as_a_dtype_and_stochastic_rounding_warns_without_16_bit():
    p16 = np.zeros(4, np.float16)
    opt = optim.Adam([p16], state_dtype=np.float32)
    assert opt.state["exp_avg"][0].dtype == np.float32
    with pytest.raises(ValueError, match="state_dtype"):
        optim.Adam([p16], state_dtype=np.float16)
    with pytest.warns(UserWarning, match="no float16 or bfloat16 parameter"):
        optim.SGD([np.zeros(3)], stochastic_rounding=True)
