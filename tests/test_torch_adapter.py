"""fastopt.torch against torch.optim: trajectories over many steps with param
groups, frozen parameters and gradients missing on some steps; schedulers,
clip_grad_norm_, GradScaler; state_dict both ways mid-training; 16-bit
parameters; zero-copy; bad input. Skipped when torch is absent."""
import importlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

import registry_cases

torch = pytest.importorskip("torch")
ft = importlib.import_module("fastopt.torch")
_Optimizer = importlib.import_module("fastopt.torch._optimizer")._Optimizer

# Per optimizer: option sets (torch's names), each run over groups with different hyperparameters:
# those of the registry (tests/registry_cases.py) for every rule torch.optim has, and more.
OPTIONS = {registry_cases.class_name(name): [registry_cases.as_class_options(name, h)
                                            for h in registry_cases.option_sets(name)]
           for name in registry_cases.RULES if registry_cases.in_torch(name) and registry_cases.elementwise(name)}
EXTRA = {
    "SGD": [dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, dampening=0.3)],
    "Adam": [dict(lr=1e-2, weight_decay=0.1, betas=(0.8, 0.99))],
    "RMSprop": [dict(momentum=0.9)],
    "Adadelta": [dict(lr=0.5, rho=0.8, weight_decay=0.1, eps=1e-4)],
    "Rprop": [dict(lr=0.05, etas=(0.4, 1.3), step_sizes=(1e-3, 1.0))],
    "NAdam": [dict(lr=1e-2, weight_decay=0.1, momentum_decay=0.01, betas=(0.8, 0.99))],
    "ASGD": [dict(lr=0.05, lambd=0.01, alpha=0.5, t0=10, weight_decay=0.05), dict(maximize=True, t0=0)],
}
for _name, _sets in EXTRA.items():
    OPTIONS[_name] += _sets
CASES = [(name, opts) for name, sets in OPTIONS.items() for opts in sets]
IDS = [f"{name}-{i}" for name, sets in OPTIONS.items() for i in range(len(sets))]


def make_params(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(20, 3), (7,), (1000,), (4, 4), (5,)]
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]


def groups(params, name):
    """Three groups overriding different hyperparameters; the last parameter is frozen."""
    params[-1].requires_grad_(False)
    extra = {"lr": 0.03} if name != "Adagrad" else {"lr": 0.05, "eps": 1e-8}
    return [{"params": params[:2]}, {"params": params[2:4], **extra}, {"params": params[4:]}]


def run(opt, params, steps, seed, drop=True):
    g = torch.Generator().manual_seed(seed)
    for t in range(steps):
        for i, p in enumerate(params):
            grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if not p.requires_grad or (drop and i == 1 and t % 5 == 2):
                p.grad = None                      # frozen, or no gradient this step
            else:
                p.grad = grad
        opt.step()


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_trajectory_equals_torch(name, options, dtype):
    ours_p, theirs_p = make_params(dtype), make_params(dtype)
    ours = getattr(ft, name)(groups(ours_p, name), **options)
    theirs = getattr(torch.optim, name)(groups(theirs_p, name), **options, foreach=False)
    run(ours, ours_p, 40, seed=1)
    run(theirs, theirs_p, 40, seed=1)
    tol = dict(rtol=1e-11, atol=1e-13) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, **tol)
    # The frozen parameter has state exactly when torch gives it some (Adagrad's, at construction).
    assert set(ours.state[ours_p[-1]]) == set(theirs.state[theirs_p[-1]])


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_state_dict_is_interchangeable_both_ways(name, options):
    """A checkpoint of torch.optim mid-training continues in fastopt.torch on the same
    trajectory, and back."""
    dtype = torch.float64
    straight_p = make_params(dtype)
    straight = getattr(torch.optim, name)(groups(straight_p, name), **options)
    run(straight, straight_p, 20, seed=2, drop=False)
    run(straight, straight_p, 20, seed=3, drop=False)
    for first, second in [(torch.optim, ft), (ft, torch.optim)]:
        params = make_params(dtype)
        a = getattr(first, name)(groups(params, name), **options)
        run(a, params, 20, seed=2, drop=False)
        b = getattr(second, name)(groups(params, name), **options)
        b.load_state_dict(a.state_dict())
        run(b, params, 20, seed=3, drop=False)
        for x, y in zip(params, straight_p):
            torch.testing.assert_close(x, y, rtol=1e-11, atol=1e-13)


def test_scheduler_and_clipping_work():
    ours_p, theirs_p = make_params(torch.float64), make_params(torch.float64)
    ours, theirs = ft.AdamW(ours_p, lr=0.01), torch.optim.AdamW(theirs_p, lr=0.01)
    s1 = torch.optim.lr_scheduler.OneCycleLR(ours, max_lr=0.05, total_steps=30)
    s2 = torch.optim.lr_scheduler.OneCycleLR(theirs, max_lr=0.05, total_steps=30)
    g = torch.Generator().manual_seed(4)
    for _ in range(30):
        for p, q in zip(ours_p, theirs_p):
            grad = 10 * torch.randn(p.shape, generator=g, dtype=p.dtype)
            p.grad, q.grad = grad.clone(), grad.clone()
        torch.nn.utils.clip_grad_norm_(ours_p, 1.0)
        torch.nn.utils.clip_grad_norm_(theirs_p, 1.0)
        ours.step(), theirs.step()
        s1.step(), s2.step()
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)


def test_grad_scaler_skips_a_step_with_an_injected_inf():
    model = torch.nn.Linear(8, 3)
    ref = torch.nn.Linear(8, 3)
    ref.load_state_dict(model.state_dict())
    ours, theirs = ft.Adam(model.parameters(), lr=0.01), torch.optim.Adam(ref.parameters(), lr=0.01)
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**10), torch.amp.GradScaler("cpu", init_scale=2.0**10)]
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(5))
    for t in range(6):
        for m, opt, scaler in [(model, ours, scalers[0]), (ref, theirs, scalers[1])]:
            opt.zero_grad()
            scaler.scale(m(x).pow(2).mean()).backward()
            if t == 3:
                m.weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            scaler.update()
    assert scalers[0].get_scale() == scalers[1].get_scale() < 2.0**10
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert ours.state[model.weight]["step"].item() == 5  # the inf step was skipped


@pytest.mark.parametrize("unscale_first", [False, True], ids=["fused-protocol", "unscale_-then-step"])
def test_grad_scaler_with_clipping_against_torch_fused(unscale_first):
    """GradScaler hands fastopt.torch its scale (grad_scale / found_inf), as it does
    torch's fused Adam; after scaler.unscale_ (to clip) it hands only found_inf."""
    models = [torch.nn.Linear(8, 3), torch.nn.Linear(8, 3)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [ft.Adam(models[0].parameters(), lr=0.01), torch.optim.Adam(models[1].parameters(), lr=0.01, fused=True)]
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**12) for _ in range(2)]
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(6))
    for t in range(8):
        for m, opt, scaler in zip(models, opts, scalers):
            opt.zero_grad()
            scaler.scale(m(x).pow(2).mean()).backward()
            if t == 4:
                m.bias.grad[1] = float("nan")
            if unscale_first:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
            scaler.step(opt)
            scaler.update()
    assert scalers[0].get_scale() == scalers[1].get_scale()
    for a, b in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert opts[0].state[models[0].weight]["step"].item() == 7


def test_grad_scale_and_found_inf_attributes():
    """The protocol itself: gradients divided by grad_scale in the step (and not
    written back), nothing changed when found_inf is nonzero."""
    scaled, plain = make_params(torch.float32), make_params(torch.float32)
    opts = [ft.AdamW(scaled, lr=0.1), ft.AdamW(plain, lr=0.1)]
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        for p, q in zip(scaled, plain):
            q.grad = torch.randn(q.shape, generator=g)
            p.grad = q.grad * 8
        opts[0].grad_scale, opts[0].found_inf = torch.tensor(8.0), torch.tensor(0.0)
        opts[0].step(), opts[1].step()
    for p, q in zip(scaled, plain):
        assert torch.equal(p, q)                   # 8 is a power of two: exact
        assert torch.equal(p.grad, q.grad * 8)     # the scaled gradients stay in .grad
    before = [p.detach().clone() for p in scaled], opts[0].state_dict()
    opts[0].found_inf = torch.tensor(1.0)
    opts[0].step()
    assert all(torch.equal(p, q) for p, q in zip(scaled, before[0]))
    after = opts[0].state_dict()["state"]
    for i, entry in before[1]["state"].items():
        assert all(torch.equal(v, after[i][k]) for k, v in entry.items())


def test_state_reset_replacement_and_step_edits_between_steps_are_followed():
    """The native view is reused between steps only while the state is the
    optimizer's: resetting, deleting or replacing a parameter's state, editing its
    step count are all seen, as by torch."""
    ours_p, theirs_p = make_params(torch.float64), make_params(torch.float64)
    ours, theirs = ft.Adam(ours_p, lr=0.05), torch.optim.Adam(theirs_p, lr=0.05, foreach=False)
    edits = [lambda o, p: o.state.__setitem__(p[0], {}),
             lambda o, p: o.state.__delitem__(p[1]),
             lambda o, p: o.state[p[2]].__setitem__("exp_avg", torch.full_like(p[2], 0.5)),
             lambda o, p: o.state[p[3]]["step"].fill_(1.0),
             lambda o, p: o.state[p[2]].__setitem__("step", torch.tensor(2.0))]
    for k, edit in enumerate(edits):
        run(ours, ours_p, 2, seed=20 + k, drop=False)
        run(theirs, theirs_p, 2, seed=20 + k, drop=False)
        edit(ours, ours_p), edit(theirs, theirs_p)
    run(ours, ours_p, 2, seed=40, drop=False)
    run(theirs, theirs_p, 2, seed=40, drop=False)
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)
        assert ours.state[a]["step"].item() == theirs.state[b]["step"].item()


def test_the_view_is_reused_while_nothing_changes(monkeypatch):
    """Fresh gradient tensors every step (zero_grad's default) do not rebuild the
    native view; a parameter that gains a gradient does."""
    params = make_params(torch.float32)
    opt = ft.Adam(params[:4], lr=0.1)
    made = []
    original = _Optimizer._make_view
    monkeypatch.setattr(_Optimizer, "_make_view", lambda self, *a: made.append(1) or original(self, *a))
    for t in range(5):
        opt.zero_grad()
        for p in params[:3]:
            p.grad = torch.randn(p.shape)
        opt.step()
    assert len(made) == 1
    params[3].grad = torch.randn(params[3].shape)
    opt.step()
    assert len(made) == 2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adagrad"])
def test_16bit_params_against_torch_fused(name, dtype):
    pytest.importorskip("ml_dtypes")
    ours_p, theirs_p = make_params(dtype), make_params(dtype)
    ours = getattr(ft, name)(ours_p, lr=1e-2)
    theirs = getattr(torch.optim, name)(theirs_p, lr=1e-2, fused=True)
    run(ours, ours_p, 20, seed=6, drop=False)
    run(theirs, theirs_p, 20, seed=6, drop=False)
    eps = torch.finfo(dtype).eps
    for a, b in zip(ours_p, theirs_p):
        assert float(((a.detach().float() - b.detach().float()).abs() / (b.detach().float().abs() + 1)).max()) <= 4 * eps
    assert ours.state[ours_p[0]]["exp_avg" if name != "Adagrad" else "sum"].dtype == dtype  # torch's layout


def test_float32_state_and_stochastic_rounding_for_bf16():
    pytest.importorskip("ml_dtypes")
    params = make_params(torch.bfloat16)
    opt = ft.Adam(params, lr=1e-3, state_dtype="float32", stochastic_rounding=True, seed=3)
    run(opt, params, 3, seed=7, drop=False)
    assert opt.state[params[0]]["exp_avg"].dtype == torch.float32
    again = make_params(torch.bfloat16)
    opt2 = ft.Adam(again, lr=1e-3, state_dtype="float32", stochastic_rounding=True, seed=3)
    run(opt2, again, 3, seed=7, drop=False)
    for a, b in zip(params, again):
        assert torch.equal(a, b)  # reproducible bits
    # The float32 state survives a state_dict round trip (torch would cast it to bf16).
    sd = opt.state_dict()
    opt2.load_state_dict(sd)
    assert opt2.state[again[0]]["exp_avg"].dtype == torch.float32
    assert torch.equal(opt2.state[again[0]]["exp_avg"], opt.state[params[0]]["exp_avg"])


def test_zero_copy_and_no_parameter_sized_allocations():
    p = torch.zeros(1 << 22, requires_grad=True)   # 16 MiB
    opt = ft.Adam([p], lr=1e-3)
    p.grad = torch.ones_like(p)
    opt.step()                                      # state created here
    ptr, state_ptrs = p.data_ptr(), [v.data_ptr() for v in opt.state[p].values()]
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(20):
        opt.step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert p.data_ptr() == ptr and [v.data_ptr() for v in opt.state[p].values()] == state_ptrs
    assert after - before < 8 * 1024  # KiB: no 16 MiB buffer per step
    assert float(p.detach()[0]) < 0


@pytest.mark.parametrize("build, exc, text", [
    (lambda p: ft.Adam(p, fused=True), ValueError, "fused=True is not supported"),
    (lambda p: ft.Adam(p, foreach=True), ValueError, "foreach"),
    (lambda p: ft.SGD(p, differentiable=True), ValueError, "differentiable"),
    (lambda p: ft.Adam(p, lr=-1), ValueError, "lr"),
    (lambda p: ft.Adam(p, betas=(1.5, 0.9)), ValueError, "beta1"),
    (lambda p: ft.SGD(p, nesterov=True), ValueError, "nesterov"),
    (lambda p: ft.Adam(p, amsgrad="yes"), TypeError, "amsgrad"),
    (lambda p: ft.Adam(p, state_dtype="float16"), ValueError, "state_dtype"),
    (lambda p: ft.Adam(p, seed=-1), ValueError, "seed"),
])
def test_bad_arguments(build, exc, text):
    with pytest.raises(exc, match=text):
        build(make_params(torch.float32))


def _set_grad(p, grad):
    """A gradient of another dtype (torch refuses it unless grad_dtype allows any)."""
    p.grad_dtype = None
    p.grad = grad


@pytest.mark.parametrize("setup, exc, text", [
    (lambda p: setattr(p[0], "grad", torch.zeros(20, 3).to_sparse()), TypeError, "sparse|layout"),
    (lambda p: setattr(p[2], "grad", torch.zeros(2000)[::2]), ValueError, "not contiguous"),
    (lambda p: _set_grad(p[1], torch.zeros(7, dtype=torch.float64)), TypeError, "dtype float64"),
    (lambda p: _set_grad(p[1], torch.zeros(7, dtype=torch.int32)), TypeError, "int32"),
    (lambda p: setattr(p[1], "grad", torch.zeros(14)[::2]), ValueError, "not contiguous"),
])
def test_bad_gradients_change_nothing(setup, exc, text):
    params = make_params(torch.float32)
    opt = ft.Adam(params, lr=0.1)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    before = [p.detach().clone() for p in params], {k: v.clone() for k, v in opt.state[params[0]].items()}
    for p in params:
        p.grad = torch.ones_like(p)
    setup(params)
    with pytest.raises(exc, match=text):
        opt.step()
    for p, q in zip(params, before[0]):
        assert torch.equal(p, q)
    for k, v in opt.state[params[0]].items():
        assert torch.equal(v, before[1][k])


def test_replaced_or_resized_parameter_storage_is_followed():
    """`p.data = other` keeps the tensor object but moves its memory: the step must
    update the new memory (as torch does), never the old one."""
    ours_p, theirs_p = make_params(torch.float64), make_params(torch.float64)
    ours, theirs = ft.Adam(ours_p, lr=0.1), torch.optim.Adam(theirs_p, lr=0.1)
    run(ours, ours_p, 3, seed=8, drop=False)
    run(theirs, theirs_p, 3, seed=8, drop=False)
    old = ours_p[2].data
    for params in (ours_p, theirs_p):
        params[2].data = torch.zeros(1000, dtype=torch.float64)
    kept = old.clone()
    run(ours, ours_p, 3, seed=9, drop=False)
    run(theirs, theirs_p, 3, seed=9, drop=False)
    assert torch.equal(old, kept)                       # the old memory is not written
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)


def test_a_refused_first_step_creates_no_state():
    params = make_params(torch.float32)
    opt = ft.SGD(params, lr=0.1, momentum=0.9, dampening=0.5)
    for p in params:
        p.grad = torch.ones_like(p)
    params[3].grad = torch.ones(32)[::2].view(4, 4)
    with pytest.raises(ValueError, match="not contiguous"):
        opt.step()
    assert all(not opt.state[p] for p in params)


def test_import_fastopt_does_not_import_torch():
    import subprocess
    code = "import sys, fastopt; fastopt.optim.Adam; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_two_threads_and_a_deepcopy():
    import copy
    import threading
    params = make_params(torch.float64)
    opt = ft.Adam(params, lr=1e-2, state_dtype="float32")
    for p in params:
        p.grad = torch.ones_like(p)
    threads = [threading.Thread(target=lambda: [opt.step() for _ in range(25)]) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(opt.state[p]["step"].item() == 50 for p in params)
    twin = copy.deepcopy(opt)  # torch pickles defaults, state and groups; fastopt's options come along
    assert twin._state_dtype == "float32"
    twin.step()
    opt.step()
    for a, b in zip(opt.param_groups[0]["params"], twin.param_groups[0]["params"]):
        assert a.data_ptr() != b.data_ptr() and torch.equal(a, b)  # its own tensors, the same trajectory
    assert all(twin.state[p]["step"].item() == 51 for p in twin.param_groups[0]["params"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_edits_between_steps(seed):
    """tests/torch_fuzz.py in a subprocess: 1000 steps with random user edits of
    gradients, parameters, state and groups between them; no crash or hang, only
    TypeError / ValueError, and nothing changed by a refused step."""
    import subprocess
    from pathlib import Path
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("torch_fuzz.py")), str(seed), "1000"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '"applied"' in proc.stderr  # it ran to the end and reported its outcomes


def test_state_dtype_takes_torch_float32():
    p = torch.zeros(8, dtype=torch.bfloat16, requires_grad=True)
    p.grad = torch.ones(8, dtype=torch.bfloat16)
    opt = ft.Adam([p], state_dtype=torch.float32)
    opt.step()
    assert opt.state[p]["exp_avg"].dtype == torch.float32
    with pytest.raises(ValueError, match="state_dtype"):
        ft.Adam([p], state_dtype=torch.bfloat16)


def test_stochastic_rounding_without_16_bit_parameters_warns():
    with pytest.warns(UserWarning, match="no float16 or bfloat16 parameter"):
        ft.SGD([torch.zeros(3, requires_grad=True)], stochastic_rounding=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ft.SGD([torch.zeros(3, dtype=torch.bfloat16, requires_grad=True)], stochastic_rounding=True)


def test_import_without_torch_says_how_to_install_it():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import fastopt.torch\nexcept ModuleNotFoundError as e:\n"
            "    print(e.name, str(e))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("torch ") and 'pip install "fastopt[torch]"' in out


def _channels_last_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3),
                               torch.nn.Flatten(), torch.nn.Linear(64, 10)).double().to(
                                   memory_format=torch.channels_last)


@pytest.mark.parametrize("name, kwargs", [("AdamW", dict(lr=1e-2)), ("SGD", dict(lr=0.1, momentum=0.9)),
                                          ("RMSprop", dict(lr=1e-3, centered=True))])
def test_channels_last_model_trains_as_with_torch(name, kwargs):
    a, b = _channels_last_model(), _channels_last_model()
    assert not a[0].weight.is_contiguous()
    oa, ob = getattr(torch.optim, name)(a.parameters(), **kwargs), getattr(ft, name)(b.parameters(), **kwargs)
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,))
    for _ in range(6):
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pb, pa, rtol=1e-9, atol=1e-12)
        assert pb.stride() == pa.stride()
    for key, value in ob.state[b[0].weight].items():
        if value.dim() > 0:
            assert value.stride() == b[0].weight.stride(), key


def test_gradient_in_another_memory_order_is_refused_and_changes_nothing():
    m = _channels_last_model()
    opt = ft.Adam(m.parameters())
    m(torch.randn(2, 3, 8, 8, dtype=torch.float64)).sum().backward()
    opt.step()
    w = m[0].weight
    w.grad = w.grad.contiguous()  # the same values, in the contiguous order
    before = [p.detach().clone() for p in m.parameters()]
    state = {k: v.clone() for k, v in opt.state[w].items()}
    with pytest.raises(ValueError, match=r"the gradient of param_groups\[0\]\['params'\]\[0\] .* strides"):
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), before))
    assert all(torch.equal(opt.state[w][k], v) for k, v in state.items())


def test_adafactor_refuses_channels_last():
    m = _channels_last_model()
    opt = ft.Adafactor(m.parameters())
    m(torch.randn(2, 3, 8, 8, dtype=torch.float64)).sum().backward()
    with pytest.raises(ValueError, match="not contiguous: Adafactor"):
        opt.step()


def test_hyperparameters_edited_between_steps_take_effect():
    """A group's converted hyperparameters are kept between steps and redone when any of its
    values changes: a number, a pair replaced or edited in place, a tensor lr filled in place."""
    ours_p, theirs_p = make_params(torch.float64), make_params(torch.float64)
    ours, theirs = ft.Adam(ours_p, lr=1e-2), torch.optim.Adam(theirs_p, lr=1e-2, foreach=False)
    edits = [lambda g: None, lambda g: g.update(lr=0.03), lambda g: g.update(betas=(0.8, 0.9)),
             lambda g: g.update(betas=[0.9, 0.99]), lambda g: g["betas"].__setitem__(0, 0.7),
             lambda g: g.update(lr=torch.tensor(0.02, dtype=torch.float64)),
             lambda g: g["lr"].fill_(0.05), lambda g: g.update(weight_decay=0.1)]
    for t, edit in enumerate(edits):
        for opt in (ours, theirs):
            edit(opt.param_groups[0])
        run(ours, ours_p, 1, seed=t, drop=False)
        run(theirs, theirs_p, 1, seed=t, drop=False)
        for a, b in zip(ours_p, theirs_p):
            torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)
    before = [p.detach().clone() for p in ours_p]
    ours.param_groups[0]["eps"] = -1.0
    with pytest.raises(ValueError, match="eps"):
        run(ours, ours_p, 1, seed=99, drop=False)
    assert all(torch.equal(a, b) for a, b in zip(before, ours_p))


@pytest.mark.parametrize("cls", ["Adam", "SGD"])
def test_step_hooks_and_the_profiler_as_torch(cls):
    # fastopt's step wrapper runs torch's step hooks as torch's does (global and per-optimizer,
    # pre hooks may replace the arguments) and records the step for a running profiler.
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    def run(module):
        p = torch.ones(3, requires_grad=True)
        p.grad = torch.ones(3)
        opt = getattr(module, cls)([p], lr=0.1)
        calls = []
        handles = [register_optimizer_step_pre_hook(lambda o, a, k: calls.append(("global pre", len(a)))),
                   register_optimizer_step_post_hook(lambda o, a, k: calls.append(("global post", len(a)))),
                   opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", len(a))) or ((o,), {})),
                   opt.register_step_post_hook(lambda o, a, k: calls.append(("post", len(a))))]
        try:
            opt.step(None)  # the pre hook drops the closure argument
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                opt.step()
        finally:
            for h in handles:
                h.remove()
        events = [e.name for e in prof.events() if e.name.startswith("Optimizer.step#")]
        return calls, events, p.detach()

    ours, theirs = run(ft), run(torch.optim)
    assert ours[0] == theirs[0] == [("global pre", 2), ("pre", 2), ("post", 1), ("global post", 1),
                                    ("global pre", 1), ("pre", 1), ("post", 1), ("global post", 1)]
    assert ours[1] == theirs[1] == [f"Optimizer.step#{cls}.step"]
    torch.testing.assert_close(ours[2], theirs[2])
