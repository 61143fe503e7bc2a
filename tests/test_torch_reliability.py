"""fastopt.torch under what users do to tensors between steps: storage moved
(share_memory_, a state_dict sent through a torch.multiprocessing queue),
shapes, strides and sizes changed behind the same address, negation bits,
inference tensors, empty tensors; autograd's version counters; per-step
stochastic rounding; Adam's decoupled weight decay and Adagrad's initial sum
as torch; interrupts, allocation failures and forks mid-step. torch.optim is
the reference wherever it steps. Skipped when torch is absent."""
import copy
import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ft = importlib.import_module("fastopt.torch")
_Optimizer = importlib.import_module("fastopt.torch._optimizer")._Optimizer
fo = importlib.import_module("fastopt.optim")


def params(dtype=torch.float64, seed=0, shapes=((20, 3), (7,), (50,), (4, 4))):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]


def set_grads(ps, seed):
    g = torch.Generator().manual_seed(seed)
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)


def pair(name, **kwargs):
    """fastopt.torch's and torch.optim's optimizer over equal parameters."""
    ours_p, theirs_p = params(), params()
    return (ours_p, getattr(ft, name)(ours_p, **kwargs),
            theirs_p, getattr(torch.optim, name)(theirs_p, foreach=False, **kwargs))


def step_both(ours, ours_p, theirs, theirs_p, seed):
    set_grads(ours_p, seed), set_grads(theirs_p, seed)
    ours.step(), theirs.step()


def assert_same(ours_p, theirs_p, ours=None, theirs=None):
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    if ours is not None:
        for a, b in zip(ours_p, theirs_p):
            for key, value in theirs.state[b].items():
                torch.testing.assert_close(ours.state[a][key].double(), value.double(), rtol=1e-12, atol=1e-14)


# --- memory moved behind a cached view -------------------------------------------------------

@pytest.mark.parametrize("move", ["share_memory", "queue"])
@pytest.mark.parametrize("name", ["Adam", "SGD", "Adagrad", "RMSprop"])
def test_state_moved_to_shared_memory_is_followed(name, move):
    """share_memory_() frees a tensor's old memory: the next step must update the new
    memory (a step on the old address wrote freed memory: ASan's heap-use-after-free)."""
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401  (registers torch's reductions: pickling shares memory)

    kwargs = dict(lr=0.05, momentum=0.9) if name == "SGD" else dict(lr=0.05)
    ours_p, ours, theirs_p, theirs = pair(name, **kwargs)
    for t in range(3):
        step_both(ours, ours_p, theirs, theirs_p, t)
        if move == "share_memory":
            for p in ours_p:
                for value in ours.state[p].values():
                    value.share_memory_()
            ours_p[t].data.share_memory_()
        else:
            ForkingPickler.dumps(ours.state_dict())  # what Queue.put(opt.state_dict()) does to the tensors
        assert all(v.is_shared() for p in ours_p for v in ours.state[p].values())
    step_both(ours, ours_p, theirs, theirs_p, 9)
    assert_same(ours_p, theirs_p, ours, theirs)


def test_parameter_set_to_other_memory_is_followed():
    ours_p, ours, theirs_p, theirs = pair("Adam", lr=0.05)
    step_both(ours, ours_p, theirs, theirs_p, 0)
    for ps in (ours_p, theirs_p):
        with torch.no_grad():
            ps[0].set_(ps[0].detach().clone())
            ps[1].data = ps[1].data.clone()
    step_both(ours, ours_p, theirs, theirs_p, 1)
    assert_same(ours_p, theirs_p, ours, theirs)


def test_storage_stays_resizable_and_a_resized_tensor_is_refused_or_followed():
    """A step does not make storages non-resizable (torch.optim does not); a
    resized state or parameter is seen at the next step."""
    ps = params()
    opt = ft.Adam(ps, lr=0.05)
    set_grads(ps, 0)
    opt.step()
    state = opt.state[ps[2]]["exp_avg"]
    state.resize_(5000)                         # torch allows it: no NumPy view pins it
    set_grads(ps, 1)
    before = [p.detach().clone() for p in ps]
    with pytest.raises(ValueError, match=r"exp_avg.*param_groups\[0\]\['params'\]\[2\]|params\[2\]"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ps, before))
    opt.state[ps[2]]["exp_avg"] = torch.zeros_like(ps[2])
    opt.step()                                  # a state of the parameter's shape again: steps
    address = ps[3].data_ptr()
    ps[3].data.resize_(1 << 20)                 # the parameter's storage grows: its memory moves
    assert ps[3].data_ptr() != address
    before = ps[3].detach().clone()
    opt.step()                                  # the new memory is updated
    assert not torch.equal(ps[3], before)
    del opt
    for p in ps:
        p.data.resize_(10_000)                  # still resizable after the optimizer is gone


def test_transposed_or_reshaped_parameter_is_refused_with_nothing_changed():
    """`p.data = p.data.t()` keeps the address: the stride check sees it (a fresh
    optimizer refuses the same non-contiguous tensor)."""
    ps = params()
    opt = ft.SGD(ps, lr=0.1, momentum=0.9)
    set_grads(ps, 0)
    opt.step()
    ps[0].data = ps[0].data.t()
    ps[0].grad = torch.ones(3, 20, dtype=ps[0].dtype)
    before = [bytes(p.untyped_storage()) for p in ps], [opt.state[p]["momentum_buffer"].clone() for p in ps]
    with pytest.raises(ValueError, match=r"state\['momentum_buffer'\] of param_groups\[0\]\['params'\]\[0\] "
                                         r"has shape \(20, 3\) but the parameter has shape \(3, 20\)"):
        opt.step()
    strided = torch.zeros(4, 6)[:, ::2].requires_grad_()  # neither contiguous nor dense
    strided.grad = torch.ones(4, 3)
    with pytest.raises(ValueError, match="is not contiguous, nor dense in another order"):
        ft.SGD([strided], lr=0.1).step()
    ps[0].data = ps[0].data.t().view(3, 20)     # same memory, contiguous, another shape than its state
    with pytest.raises(ValueError, match="shape"):
        opt.step()
    assert [bytes(p.untyped_storage()) for p in ps] == before[0]
    assert all(torch.equal(opt.state[p]["momentum_buffer"], b) for p, b in zip(ps, before[1]))


def test_shrunk_parameter_takes_a_gradient_of_its_new_size():
    ours_p, ours, theirs_p, theirs = pair("SGD", lr=0.1)
    step_both(ours, ours_p, theirs, theirs_p, 0)
    for ps in (ours_p, theirs_p):
        ps[2].data = ps[2].data[:3]
    step_both(ours, ours_p, theirs, theirs_p, 1)
    assert ours_p[2].shape == (3,)
    assert_same(ours_p, theirs_p)


def test_zero_element_parameters_step_as_in_torch():
    ours_p, ours, theirs_p, theirs = pair("Adam", lr=0.05)
    for ps in (ours_p, theirs_p):
        ps.append(torch.zeros(0, dtype=torch.float64, requires_grad=True))
    ours.add_param_group({"params": [ours_p[-1]]}), theirs.add_param_group({"params": [theirs_p[-1]]})
    for t in range(3):
        step_both(ours, ours_p, theirs, theirs_p, t)
    assert_same(ours_p, theirs_p, ours, theirs)
    assert ours.state[ours_p[-1]]["step"].item() == 3


def test_params_given_as_a_tuple_keep_the_view():
    ours_p, ours, theirs_p, theirs = pair("Adam", lr=0.05)
    ours.param_groups[0]["params"] = tuple(ours.param_groups[0]["params"])
    for t in range(3):
        step_both(ours, ours_p, theirs, theirs_p, t)
    assert_same(ours_p, theirs_p, ours, theirs)


# --- what torch's tensors carry -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_gradient_with_the_negation_bit_is_read_as_its_value(name):
    ours_p, ours, theirs_p, theirs = pair(name, lr=0.05)
    for t in range(2):
        g = torch.Generator().manual_seed(t)
        for a, b in zip(ours_p, theirs_p):
            value = torch.randn(a.shape, generator=g, dtype=a.dtype)
            a.grad = torch._neg_view(-value)
            assert a.grad.is_neg()
            b.grad = value.clone()
        ours.step(), theirs.step()
    assert_same(ours_p, theirs_p, ours, theirs)


def test_parameter_with_the_negation_bit_is_refused():
    ps = params()
    opt = ft.SGD(ps, lr=0.1)
    set_grads(ps, 0)
    opt.step()
    ps[1].data = torch._neg_view(ps[1].data)
    before = [p.detach().clone() for p in ps]
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\] has torch's negation bit"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ps, before))


def test_inference_tensors_are_refused_as_torch_refuses_them():
    with torch.inference_mode():
        p = torch.zeros(3)
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[0\] is an inference tensor"):
        ft.SGD([p], lr=0.1).step()
    assert torch.equal(p, torch.zeros(3))
    with torch.inference_mode():
        q = torch.zeros(3)
    q.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="inference tensor"):
        torch.optim.SGD([q], lr=0.1).step()
    with torch.inference_mode():                # inside inference mode torch updates it, and so do we
        ft.SGD([p], lr=0.1).step()
    assert torch.equal(p, torch.full((3,), -0.1))


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Lion"])
def test_a_step_bumps_autograd_versions_as_torch_does(name):
    p = torch.randn(5, requires_grad=True)
    opt = getattr(ft, name)([p], lr=0.1)
    for _ in range(2):
        y = (p * p).sum()                       # saves p for the backward pass
        p.grad = torch.ones(5)
        version = p._version
        opt.step()
        assert p._version > version
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()


def test_fortran_order_parameter_steps_in_its_memory_order():
    """A Fortran-order parameter is dense: stepped over its memory with a gradient and state in the
    same order (as torch makes them), refused with the gradient named when the orders differ."""
    ours, theirs = torch.randn(4, 3).t().requires_grad_(), None  # a Fortran-order view
    theirs = ours.detach().clone().t().contiguous().t().requires_grad_()
    grad = torch.randn(4, 3).t()
    ours.grad, theirs.grad = grad.clone().t().contiguous().t(), grad.clone()
    ft.Adam([ours]).step()
    torch.optim.Adam([theirs]).step()
    assert torch.equal(ours, theirs) and ours.stride() == (1, 3)
    ours.grad = torch.ones(3, 4)  # contiguous: another memory order
    with pytest.raises(ValueError, match=r"^the gradient of param_groups\[0\]\['params'\]\[0\] .* strides \(4, 1\)"):
        ft.Adam([ours]).step()


def test_integer_step_counts_are_accepted_as_torch_accepts_them():
    ours_p, ours, theirs_p, theirs = pair("Adam", lr=0.05)
    step_both(ours, ours_p, theirs, theirs_p, 0)
    for opt, ps in ((ours, ours_p), (theirs, theirs_p)):
        for p in ps:
            opt.state[p]["step"] = torch.tensor(int(opt.state[p]["step"]), dtype=torch.int64)
    for t in range(1, 3):
        step_both(ours, ours_p, theirs, theirs_p, t)
    assert_same(ours_p, theirs_p)
    assert ours.state[ours_p[0]]["step"].dtype == torch.int64 and ours.state[ours_p[0]]["step"].item() == 3


@pytest.mark.parametrize("dtype, below, after, limit", [
    (torch.int32, 2**31 - 2, 2**31 - 1, 2**31 - 1),
    (torch.float64, 2.0**53 - 1, 2.0**53, 2.0**53),
    (torch.float32, 2.0**53 - 2.0**29, 2.0**53 - 2.0**29, 2.0**53)])  # float32 absorbs the + 1, as torch's
def test_step_counts_at_their_limit_are_refused_by_name(dtype, below, after, limit):
    # The driver counts steps in the count's own type; a count whose increment would not be
    # exact (or would overflow int32) is refused, naming it, before anything changes.
    p = torch.ones(3, requires_grad=True)
    opt = ft.Adam([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    opt.state[p]["step"] = torch.tensor(below, dtype=dtype)
    opt.step()
    assert opt.state[p]["step"].item() == after and opt.state[p]["step"].dtype == dtype
    before = p.detach().clone()
    for bad in (limit, -1, 0.5):
        if dtype == torch.int32 and bad == 0.5:
            continue
        opt.state[p]["step"] = torch.tensor(bad, dtype=dtype)
        with pytest.raises(ValueError, match=r"^state\['step'\] of param_groups\[0\]\['params'\]\[0\] is .*"
                                             "a step count is a whole number"):
            opt.step()
        assert torch.equal(p, before) and opt.state[p]["step"].item() == bad


def test_grad_scale_zero_is_a_value_error():
    ps = params()
    opt = ft.Adam(ps)
    set_grads(ps, 0)
    opt.grad_scale, opt.found_inf = torch.tensor(0.0), torch.tensor(0.0)
    with pytest.raises(ValueError, match="grad_scale"):
        opt.step()


# --- torch's semantics ---------------------------------------------------------------------------

def test_adam_groups_with_decoupled_weight_decay_are_adamw():
    """Reached by loading torch's AdamW (or Adam(decoupled_weight_decay=True))
    state_dict into fastopt.torch.Adam, or by add_param_group."""
    ours_p, theirs_p = params(), params()
    ours = ft.Adam(ours_p[:2], lr=0.05, weight_decay=0.5)
    theirs = torch.optim.Adam(theirs_p[:2], lr=0.05, weight_decay=0.5, foreach=False)
    ours.add_param_group({"params": ours_p[2:], "decoupled_weight_decay": True})
    theirs.add_param_group({"params": theirs_p[2:], "decoupled_weight_decay": True})
    for t in range(3):
        step_both(ours, ours_p, theirs, theirs_p, t)
    assert_same(ours_p, theirs_p, ours, theirs)
    source_p, target_p = params(seed=1), params(seed=1)
    source = torch.optim.AdamW(source_p, lr=0.05, weight_decay=0.5)
    set_grads(source_p, 0)
    source.step()
    target = ft.Adam(target_p, lr=0.05, weight_decay=0.5)
    target.load_state_dict(copy.deepcopy(source.state_dict()))  # torch's state_dict holds its own tensors
    assert target.param_groups[0]["decoupled_weight_decay"] is True
    with torch.no_grad():
        for a, b in zip(target_p, source_p):
            a.copy_(b)
    set_grads(source_p, 1), set_grads(target_p, 1)
    source.step(), target.step()
    assert_same(target_p, source_p, target, source)


def test_adagrad_per_group_initial_accumulator_is_torchs():
    """torch.optim.Adagrad starts every sum at the optimizer's value, whatever the group says."""
    ours_p, theirs_p = params(), params()
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:3], "initial_accumulator_value": 5.0}]  # noqa: E731
    ours = ft.Adagrad(groups(ours_p), lr=0.1, initial_accumulator_value=0.5)
    theirs = torch.optim.Adagrad(groups(theirs_p), lr=0.1, initial_accumulator_value=0.5, foreach=False)
    ours.add_param_group({"params": ours_p[3:], "initial_accumulator_value": 2.0})
    theirs.add_param_group({"params": theirs_p[3:], "initial_accumulator_value": 2.0})
    for t in range(3):
        step_both(ours, ours_p, theirs, theirs_p, t)
    assert_same(ours_p, theirs_p, ours, theirs)


# --- stochastic rounding --------------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=0.01)), ("SGD", dict(lr=0.01, momentum=0.5, dampening=0.5)), ("Lion", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.0)), ("Adam", dict(lr=0.01)), ("Adagrad", dict(lr=0.05))])
def test_stochastic_rounding_draws_new_bits_every_step(name, kwargs):
    """bfloat16 at 100 (an ulp of 0.5), updates of about 2% of an ulp: with new
    bits each step an element stays put 200 times with probability ~2%; with the
    same bits every step, 98% never moved."""
    p = torch.full((4096,), 100.0, dtype=torch.bfloat16, requires_grad=True)
    opt = getattr(ft, name)([p], stochastic_rounding=True, seed=7, state_dtype="float32", **kwargs)
    for _ in range(200):
        p.grad = torch.ones_like(p)
        opt.step()
    assert (p == 100.0).float().mean().item() < 0.15


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.01)), ("Lion", dict(lr=0.01)),
                                          ("RMSprop", dict(lr=0.01, alpha=0.0)), ("Adam", dict(lr=0.01))])
def test_stochastic_rounding_is_fastopt_optims_bit_for_bit(name, kwargs):
    """fastopt.torch's steps (counted by state['step'] or by the optimizer) hash the
    same step numbers as fastopt.optim's."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    start = torch.randn(2, 300, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    ps = [start[0].clone().requires_grad_(), start[1].clone().requires_grad_()]
    arrays = [p.detach().view(torch.int16).numpy().copy().view(ml_dtypes.bfloat16) for p in ps]
    opt = getattr(ft, name)(ps, stochastic_rounding=True, seed=3, state_dtype="float32", **kwargs)
    ref_kwargs = {k: v for k, v in kwargs.items()}
    ref = getattr(fo, name)(arrays, stochastic_rounding=True, seed=3, **ref_kwargs)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        grads = [torch.randn(300, generator=g) * 0.01 for _ in ps]
        for p, grad in zip(ps, grads):
            p.grad = grad.to(torch.bfloat16)
        opt.step()
        ref.step([grad.to(torch.bfloat16).view(torch.int16).numpy().view(ml_dtypes.bfloat16) for grad in grads])
    for p, a in zip(ps, arrays):
        assert np.array_equal(p.detach().view(torch.int16).numpy(), a.view(np.int16))


# --- interrupts and failures mid-step ----------------------------------------------------------

class _InterruptAfter:
    """A view whose step runs the native step, then raises KeyboardInterrupt (a
    Ctrl-C that arrives as the native call returns)."""

    def __init__(self, view):
        self.view = view

    def step(self, *args, **kwargs):
        self.view.step(*args, **kwargs)
        raise KeyboardInterrupt

    def __getattr__(self, name):
        return getattr(self.view, name)


@pytest.mark.parametrize("name", ["Adam", "SGD"])
def test_interrupt_after_the_native_step_keeps_the_step(name, monkeypatch):
    kwargs = dict(lr=0.05, momentum=0.9) if name == "SGD" else dict(lr=0.05)
    ours_p, ours, theirs_p, theirs = pair(name, **kwargs)
    original = _Optimizer._make_view
    monkeypatch.setattr(_Optimizer, "_make_view",
                        lambda self, *a: (lambda v, f: (_InterruptAfter(v), f))(*original(self, *a)))
    set_grads(ours_p, 0), set_grads(theirs_p, 0)
    with pytest.raises(KeyboardInterrupt):
        ours.step()                              # the first step creates the state
    theirs.step()
    assert_same(ours_p, theirs_p, ours, theirs)   # the state the step made and updated is kept, counted
    monkeypatch.undo()
    ours._fastopt_view = None
    for t in range(1, 4):
        step_both(ours, ours_p, theirs, theirs_p, t)
    assert_same(ours_p, theirs_p, ours, theirs)


def test_interrupt_in_a_cached_view_step_keeps_the_count():
    ours_p, ours, theirs_p, theirs = pair("Adam", lr=0.05)
    step_both(ours, ours_p, theirs, theirs_p, 0)
    ours._fastopt_view = (ours._fastopt_view[0], _InterruptAfter(ours._fastopt_view[1]))
    set_grads(ours_p, 1), set_grads(theirs_p, 1)
    with pytest.raises(KeyboardInterrupt):
        ours.step()
    theirs.step()
    assert_same(ours_p, theirs_p, ours, theirs)


def test_failed_state_allocation_leaves_no_partial_state(monkeypatch):
    ours_p, ours, theirs_p, theirs = pair("Adam", lr=0.05)
    calls = []
    real = torch.full_like

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # exp_avg_sq of the third parameter
            raise MemoryError("out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "full_like", failing)
    set_grads(ours_p, 0)
    before = [p.detach().clone() for p in ours_p]
    with pytest.raises(MemoryError):
        ours.step()
    assert all(len(ours.state[p]) == 0 for p in ours_p)
    assert all(torch.equal(a, b) for a, b in zip(ours_p, before))
    monkeypatch.undo()
    ours.step()                                  # the retry creates everything and steps
    theirs_p_grads = set_grads(theirs_p, 0)      # noqa: F841
    theirs.step()
    assert_same(ours_p, theirs_p, ours, theirs)


FORK_DURING_STEP = """
    import os, threading, time
    import torch
    import fastopt.torch as ft

    p = torch.zeros(1 << 22, requires_grad=True)
    opt = ft.Adam([p], lr=1e-3)
    p.grad = torch.ones_like(p)
    opt.step()
    stop = threading.Event()

    def steps():
        while not stop.is_set():
            opt.step()

    worker = threading.Thread(target=steps)
    worker.start()
    time.sleep(0.05)
    children = []
    for _ in range(5):                            # forks while the worker is (often) inside a step
        pid = os.fork()
        if pid == 0:
            opt.step()
            os._exit(0 if opt.state[p]["step"].item() > 1 else 3)
        children.append(pid)
        time.sleep(0.01)
    stop.set()
    worker.join()
    for pid in children:
        for _ in range(600):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            raise SystemExit("a forked child hung in its first step")
        assert os.WEXITSTATUS(status) == 0, status
    # a held lock, deterministically: a thread inside the optimizer's lock at the fork
    held, release = threading.Event(), threading.Event()

    def hold():
        with opt._step_lock:
            held.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        opt.step()
        os._exit(0)
    release.set()
    holder.join()
    for _ in range(600):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        raise SystemExit("a child forked while a thread held the lock hung")
    assert os.WEXITSTATUS(status) == 0, status
    print("fork ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_children_forked_during_a_step_can_step():
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(FORK_DURING_STEP)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "fork ok" in proc.stdout
