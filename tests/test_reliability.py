"""Regression tests of the reliability issue: each reproducer that used to crash,
hang or silently do the wrong thing now gets a clear error or the right result.
Cases that could take the process down run in a subprocess with a timeout, so a
regression is a failed test, not a dead test run."""
import gc
import os
import subprocess
import sys
import textwrap
import threading
from fractions import Fraction

import numpy as np
import pytest

import fastopt
from fastopt import _core, optim
from fastopt.linear import LinearSVMClassifier, SoftmaxClassifier
from fastopt.training import SplitMix64, minibatch_indices, train_linear


def run_python(code, timeout=60, **env):
    """Runs `code` in a fresh interpreter; returns the CompletedProcess (TimeoutExpired on a hang)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **env))


def data(n=300, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


# --- 1. None for a required array -------------------------------------------------

def _functional_calls():
    """(function name, call(arrays), names of its required arrays)."""
    return [
        ("sgd", lambda a: fastopt.sgd(a["p"], a["g"], lr=0.1), ["p", "g"]),
        ("sgd_momentum", lambda a: fastopt.sgd_momentum(a["p"], a["g"], a["buf"], lr=0.1), ["p", "g", "buf"]),
        ("adagrad", lambda a: fastopt.adagrad(a["p"], a["g"], a["sum_sq"], step=1), ["p", "g", "sum_sq"]),
        ("rmsprop", lambda a: fastopt.rmsprop(a["p"], a["g"], a["square_avg"], momentum=0.9, momentum_buf=a["buf"],
                                              centered=True, grad_avg=a["grad_avg"]),
         ["p", "g", "square_avg", "buf", "grad_avg"]),
        ("adam", lambda a: fastopt.adam(a["p"], a["g"], a["m"], a["v"], step=1, amsgrad=True, max_v=a["max_v"]),
         ["p", "g", "m", "v", "max_v"]),
        ("adamw", lambda a: fastopt.adamw(a["p"], a["g"], a["m"], a["v"], step=1), ["p", "g", "m", "v"]),
    ]


@pytest.mark.parametrize("name, call, required", _functional_calls(), ids=[c[0] for c in _functional_calls()])
def test_none_for_a_required_array_is_a_type_error(name, call, required):
    keys = ("p", "g", "buf", "sum_sq", "square_avg", "grad_avg", "m", "v", "max_v")
    for missing in required:
        arrays = {k: np.full(8, 0.5, np.float32) for k in keys}
        before = {k: v.copy() for k, v in arrays.items()}
        arrays[missing] = None
        # the Python keyword is "momentum_buf" where the array dict says "buf"
        shown = "momentum_buf" if (name == "rmsprop" and missing == "buf") else missing
        with pytest.raises((TypeError, ValueError), match=rf"\b{shown}\b"):
            call(arrays)
        for k, v in arrays.items():
            if v is not None:
                assert np.array_equal(v, before[k]), f"{name}: {k} changed"


# --- 2. arrays are owned for as long as they are used --------------------------------

def test_replaced_registered_gradient_is_read_from_the_container():
    p = np.zeros(4)
    grads = [np.ones(4)]
    opt = optim.SGD([p], lr=0.5, grads=grads)
    grads[0] = np.full(4, 2.0)     # the old array's last reference is gone
    gc.collect()
    opt.step()
    np.testing.assert_array_equal(p, np.full(4, -1.0))   # the new gradient was used
    grads[0] = np.zeros(3)
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        opt.step()


def test_gradients_dropped_by_another_thread_during_steps():
    """Another thread replaces the gradients while steps run with the GIL released:
    every step reads arrays it holds (ASan would report a use-after-free)."""
    params = [np.zeros(1 << 18, np.float32) for _ in range(3)]
    grads = [np.ones(1 << 18, np.float32) for _ in range(3)]
    opt = optim.Adam(params, lr=1e-3)
    stop = threading.Event()

    def replace():
        while not stop.is_set():
            for i in range(3):
                grads[i] = np.ones(1 << 18, np.float32)

    t = threading.Thread(target=replace)
    t.start()
    try:
        for _ in range(30):
            opt.step(grads)
    finally:
        stop.set()
        t.join()
    # Adam with a constant gradient of 1 moves every element by lr per step (bias-corrected)
    np.testing.assert_allclose(params[0], -30e-3, rtol=1e-4)


@pytest.mark.parametrize("change", ["resize", "dtype", "read-only"])
def test_parameter_changed_in_place_after_construction(change):
    p = np.zeros(8)
    opt = optim.Adam([p])
    if change == "resize":
        p.resize(100_000, refcheck=False)   # reallocates the data the optimizer checked
    elif change == "dtype":
        p.dtype = np.float32
    else:
        p.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\]"):
        opt.step([np.ones_like(p)])


def test_state_arrays_cannot_be_replaced():
    opt = optim.Adam([np.zeros(3)])
    with pytest.raises(TypeError):
        opt.state["exp_avg"][0] = np.ones(3)


# --- 3. overflowing update counts -------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(epochs=2**62, batch_size=2), "epochs"),
    (dict(epochs=2**61 + 1, batch_size=39), "epochs"),
    (dict(num_iters=2**62), "num_iters"),
    (dict(epochs=2**64), "epochs"),
    (dict(num_iters=5, batch_size=2**40), "batch_size"),
])
def test_overflowing_counts_are_refused_before_any_update(kwargs, name):
    X, y = data()
    W = np.zeros((5, 3))
    opt = optim.SGD([W], lr=0.1)
    with pytest.raises(ValueError, match=name):
        train_linear(opt, X, y, **kwargs)
    assert opt.step_count == 0 and not W.any()


def test_minibatch_indices_and_estimators_refuse_absurd_counts():
    with pytest.raises(ValueError, match="indices"):
        minibatch_indices(4, 1, 2**62)
    with pytest.raises(ValueError, match="indices"):
        minibatch_indices(2**40, 1, 1)
    with pytest.raises(ValueError, match="int64"):
        minibatch_indices(4, 1, 2**64)
    X, y = data()
    for cls in (SoftmaxClassifier, LinearSVMClassifier):
        with pytest.raises(ValueError, match="max_iter"):
            cls(solver="sgd", max_iter=2**62).fit(X, y)


# --- 4. fork ---------------------------------------------------------------------------

FORK_CHILD = """
    import multiprocessing as mp, os, sys
    import numpy as np
    import fastopt

    def adam_sum(seed):
        rng = np.random.default_rng(seed)
        p = rng.standard_normal(1 << 18); g = rng.standard_normal(p.size)
        fastopt.adam(p, g, np.zeros_like(p), np.zeros_like(p), step=1)
        return float(p.sum()), fastopt.get_num_threads(), fastopt._core.in_forked_child()

    fastopt.set_num_threads(2)
    expected = [adam_sum(s)[0] for s in range(4)]   # threaded in the parent: the pool exists
    assert not fastopt._core.in_forked_child()
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map(adam_sum, range(4))
    assert [r[0] for r in got] == expected, (got, expected)
    assert all(r[1] == 1 and r[2] for r in got), got
    pid = os.fork()
    if pid == 0:
        value = adam_sum(0)[0]
        X = np.random.default_rng(0).standard_normal((5000, 64)); y = np.arange(5000) % 10
        fastopt.softmax_loss(np.zeros((64, 10)), X, y)
        os._exit(0 if value == expected[0] else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, status
    print("fork ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_children_compute_and_never_hang():
    proc = run_python(FORK_CHILD, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "fork ok" in proc.stdout


# --- 5. a loop never reads what it writes -----------------------------------------------

def test_labels_sharing_memory_with_W_are_refused():
    X, _ = data(15)
    W = np.zeros((5, 3))
    opt = optim.SGD([W], lr=0.1)
    y = W.view(np.int64).ravel()          # 15 labels that are W's bytes
    with pytest.raises(ValueError, match="share memory"):
        train_linear(opt, X, y, epochs=1)
    state_opt = optim.SGD([W], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="share memory"):
        train_linear(state_opt, X, state_opt.state["momentum_buffer"][0].view(np.int64).ravel(), epochs=1)
    assert opt.step_count == 0 and not W.any()


def test_labels_are_copied_before_the_kernels_read_them():
    W = np.zeros((3, 2))
    X = np.ones((4, 3))
    y = np.array([0, 1, 1, 0])
    loss, _ = fastopt.softmax_loss(W, X, y)
    assert loss == pytest.approx(np.log(2))


# --- 6. one optimizer from two threads ---------------------------------------------------

@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.RMSprop])
def test_optimizer_stepped_from_two_threads_is_serialized(cls):
    n = 1 << 17                               # big enough that steps release the GIL for a while
    g = np.random.default_rng(0).standard_normal(n)
    kwargs = dict(lr=1e-2, momentum=0.9) if cls is optim.SGD else dict(lr=1e-2)
    shared, sequential = np.zeros(n), np.zeros(n)
    opt, ref = cls([shared], **kwargs), cls([sequential], **kwargs)
    for _ in range(200):
        ref.step([g])

    def worker():
        for _ in range(100):
            opt.step([g])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opt.step_count == 200
    np.testing.assert_array_equal(shared, sequential)


def test_training_and_stepping_from_two_threads_is_serialized():
    X, y = data(2000, 32, 10)
    W, W_ref = np.zeros((32, 10)), np.zeros((32, 10))
    opt, ref = optim.Adam([W], lr=1e-2), optim.Adam([W_ref], lr=1e-2)
    train_linear(ref, X, y, epochs=20, batch_size=50, rng=0)
    t = threading.Thread(target=lambda: train_linear(opt, X, y, epochs=20, batch_size=50, rng=0))
    t.start()
    steps = 0
    while t.is_alive() and steps < 50:
        opt.state_dict()                       # waits for the run; never sees it half done
        steps += 1
    t.join()
    assert opt.step_count == ref.step_count
    np.testing.assert_array_equal(W, W_ref)


# --- 7. silent acceptance ------------------------------------------------------------------

@pytest.mark.parametrize("build, name", [
    (lambda: optim.SGD([np.zeros(3)], momentum=0.9, nesterov="False"), "nesterov"),
    (lambda: optim.RMSprop([np.zeros(3)], centered="False"), "centered"),
    (lambda: optim.Adam([np.zeros(3)], amsgrad="no"), "amsgrad"),
    (lambda: optim.Adam([np.zeros(3)], amsgrad=1), "amsgrad"),
    (lambda: fastopt.sgd_momentum(np.zeros(3), np.zeros(3), np.zeros(3), lr=0.1, nesterov=0), "nesterov"),
    (lambda: fastopt.sgd(np.zeros(3), np.zeros(3), lr=np.complex128(0.1 + 1j)), "lr"),
    (lambda: fastopt.sgd(np.zeros(3), np.zeros(3), lr=1j), "lr"),
    (lambda: fastopt.sgd(np.zeros(3), np.zeros(3), lr=True), "lr"),
    (lambda: fastopt.adam(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), step=True), "step"),
    (lambda: optim.Adam([np.zeros(3)], betas=(0.9, "0.999")), "beta2"),
])
def test_flags_take_only_bools_and_numbers_only_real_numbers(build, name):
    with pytest.raises(TypeError, match=rf"\b{name}\b"):
        build()


def test_real_numbers_of_any_kind_are_accepted():
    p = np.zeros(3)
    fastopt.sgd(p, np.ones(3), lr=Fraction(1, 2))
    fastopt.sgd(p, np.ones(3), lr=np.float32(0.5), weight_decay=np.int64(0))
    fastopt.sgd_momentum(p, np.ones(3), np.zeros(3), lr=1, nesterov=np.bool_(True))
    np.testing.assert_allclose(p, -1.0 - 1.9)


@pytest.mark.parametrize("edit, error, name", [
    (lambda sd: sd["param_groups"][0].update(lr=float("nan")), ValueError, "lr"),
    (lambda sd: sd["param_groups"][0].update(lr="0.1"), TypeError, "lr"),
    (lambda sd: sd["param_groups"][0].update(betas=(2, -1)), ValueError, "beta1"),
    (lambda sd: sd["param_groups"][0].update(betas=0.9), TypeError, "betas"),
    (lambda sd: sd["param_groups"][0].update(eps=0.0), ValueError, "eps"),
    (lambda sd: sd["param_groups"][0].update(amsgrad="yes"), TypeError, "amsgrad"),
    (lambda sd: sd["state"][0].update(step=-5), ValueError, "step"),
    (lambda sd: sd["state"][0].update(step=2.5), TypeError, "step"),
    (lambda sd: sd["state"][0].update(step=True), TypeError, "step"),
    (lambda sd: sd["state"][0].update(exp_avg=[0.0, 0.0, 0.0]), TypeError, "exp_avg"),
    (lambda sd: sd["state"][0].update(exp_avg=np.zeros(4)), ValueError, "exp_avg"),
    (lambda sd: sd.pop("state"), ValueError, "state"),
])
def test_load_state_dict_checks_like_the_constructor_and_changes_nothing(edit, error, name):
    p = np.zeros(3)
    opt = optim.Adam([p], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    edit(sd)
    before = opt.state_dict()
    with pytest.raises(error, match=name):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(after["state"][0][key], before["state"][0][key])
    assert opt.step_count == 1


@pytest.mark.parametrize("call, name", [
    (lambda m: fastopt.sgd(m, np.ones(3), lr=0.1), "p"),
    (lambda m: fastopt.sgd(np.zeros(3), m, lr=0.1), "g"),
    (lambda m: optim.SGD([m]), r"params\[0\]"),
    (lambda m: optim.SGD([np.zeros(3)]).step([m]), r"grads\[0\]"),
    (lambda m: fastopt.softmax_loss(np.zeros((3, 2)), np.ma.masked_array(np.zeros((4, 3))), [0, 1, 0, 1]), "X"),
    (lambda m: fastopt.softmax_loss(np.zeros((3, 2)), np.zeros((4, 3)), np.ma.masked_array([0, 1, 0, 1])), "y"),
    (lambda m: fastopt.softmax_loss(np.matrix(np.zeros((3, 2))), np.zeros((4, 3)), [0, 1, 0, 1]), "W"),
])
def test_masked_arrays_and_other_subclasses_are_refused(call, name):
    m = np.ma.masked_array(np.zeros(3), mask=[False, True, False])
    with pytest.raises(TypeError, match=name):
        call(m)
    assert not m.data.any()


def test_memmap_is_an_ndarray(tmp_path):
    p = np.memmap(tmp_path / "p.bin", dtype=np.float64, mode="w+", shape=(4,))
    fastopt.sgd(p, np.ones(4), lr=0.5)
    np.testing.assert_array_equal(p, -0.5)


# --- 8. clear errors -------------------------------------------------------------------

@pytest.mark.parametrize("call, error, name", [
    (lambda: optim.Adagrad([[1.0, 2.0]]), TypeError, r"params\[0\]"),
    (lambda: optim.SGD([np.zeros(3)], lr=None), TypeError, "lr"),
    (lambda: setattr(optim.SGD([np.zeros(3)]), "lr", "0.1"), TypeError, "lr"),
    (lambda: fastopt.set_num_threads(2**40), ValueError, r"\bn\b"),
    (lambda: fastopt.set_num_threads(True), TypeError, r"\bn\b"),
    (lambda: _core.set_num_threads(None), TypeError, r"\bn\b"),
    (lambda: _core.set_isa(3), TypeError, "name"),
    (lambda: fastopt.adam(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), step=2**64), ValueError, "step"),
    (lambda: optim.SGD([np.zeros(3)]).step(np.zeros(3)), TypeError, "grads"),
    (lambda: optim.SGD([np.zeros(3)]).step([np.zeros(3)], skip_if_nonfinite="yes"), TypeError, "skip_if_nonfinite"),
    (lambda: SoftmaxClassifier(learning_rate="0.1").fit(*data()), TypeError, "learning_rate"),
    (lambda: SoftmaxClassifier(reg=-1).fit(*data()), ValueError, "reg"),
    (lambda: SoftmaxClassifier(random_state="x").fit(*data()), TypeError, "random_state"),
    (lambda: train_linear(optim.SGD([np.zeros((5, 3))]), data()[0].tolist(), data()[1], epochs=1), TypeError, "X"),
])
def test_errors_name_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


# --- 9. misaligned inputs ----------------------------------------------------------------

def misaligned(a):
    raw = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    return out


def test_misaligned_loss_inputs_are_copied_and_give_the_aligned_result():
    rng = np.random.default_rng(0)
    W, X, y = rng.standard_normal((6, 4)), rng.standard_normal((50, 6)), rng.integers(0, 4, 50)
    expected = fastopt.softmax_loss(W, X, y, 0.1)
    got = fastopt.softmax_loss(misaligned(W), misaligned(X), misaligned(y), 0.1)
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])
    S = X @ W
    assert fastopt.multiclass_hinge(misaligned(S), misaligned(y))[0] == fastopt.multiclass_hinge(S, y)[0]


def test_misaligned_arrays_written_in_place_are_refused():
    p = misaligned(np.zeros(8))
    with pytest.raises(ValueError, match="aligned"):
        fastopt.sgd(p, np.ones(8), lr=0.1)


# --- 10. threads follow OpenMP's setting and threadpoolctl -----------------------------------

THREADS_CHILD = """
    import ctypes, threading
    import fastopt
    # the OpenMP runtime the extension loaded (a wheel vendors its own, renamed, copy)
    paths = {line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}
    assert len(paths) == 1, paths
    gomp = ctypes.CDLL(paths.pop())
    fastopt.set_num_threads(3)
    assert fastopt.get_num_threads() == 3
    gomp.omp_set_num_threads(1)
    assert fastopt.get_num_threads() == 1, fastopt.get_num_threads()
    gomp.omp_set_num_threads(2)
    assert fastopt.get_num_threads() == 2
    fastopt.set_num_threads(4)              # applies to every thread, including new ones
    seen = []
    t = threading.Thread(target=lambda: seen.append(fastopt.get_num_threads()))
    t.start(); t.join()
    assert seen == [4], seen
    assert fastopt.get_num_threads() == 4
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("no threadpoolctl")
    else:
        with threadpool_limits(limits=1):
            assert fastopt.get_num_threads() == 1
        assert fastopt.get_num_threads() == 4
    print("threads ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds libgomp in /proc/self/maps")
def test_threads_follow_openmp_and_threadpoolctl():
    proc = run_python(THREADS_CHILD)
    assert proc.returncode == 0, proc.stderr
    assert "threads ok" in proc.stdout


def test_threadpoolctl_limits_the_kernels():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    previous = fastopt.get_num_threads()
    fastopt.set_num_threads(2)
    try:
        with threadpoolctl.threadpool_limits(limits=1):
            assert fastopt.get_num_threads() == 1
        assert fastopt.get_num_threads() == 2
    finally:
        fastopt.set_num_threads(previous)


# --- exceptions inside threaded regions -----------------------------------------------------

@pytest.mark.skipif(os.environ.get("FASTOPT_SANITIZED") == "1",
                    reason="ASan aborts on a failed operator new instead of throwing std::bad_alloc")
def test_allocation_failure_inside_a_threaded_loss_is_a_memory_error():
    """A scratch allocation that fails on a worker thread is re-raised on the caller
    (an exception escaping an OpenMP region would terminate the process)."""
    proc = run_python("""
        import resource, numpy as np, fastopt
        fastopt.set_num_threads(2)
        # 2 chunks of 35,000 rows on 2 threads; each chunk's score tile (64 rows × 4M classes) needs 1 GiB
        W = np.zeros((1, 1 << 22), np.float32); X = np.ones((70_000, 1), np.float32); y = np.zeros(70_000, np.int64)
        vm = int([l for l in open("/proc/self/status") if l.startswith("VmSize")][0].split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (400 << 20), resource.RLIM_INFINITY))
        try:
            fastopt.softmax_loss(W, X, y)
        except MemoryError:
            print("memory error")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "memory error" in proc.stdout


# --- 7. interrupts, refused schedules, forks and checkpoints of fastopt.optim -----------------

class _InterruptAfter:
    """A native group whose steps run, then raise KeyboardInterrupt (a Ctrl-C that
    arrives as the native call returns)."""

    def __init__(self, group):
        self.group = group

    def step(self, *args, **kwargs):
        self.group.step(*args, **kwargs)
        raise KeyboardInterrupt

    def offload_step(self, *args, **kwargs):
        self.group.offload_step(*args, **kwargs)
        raise KeyboardInterrupt

    def __getattr__(self, name):
        return getattr(self.group, name)


@pytest.mark.parametrize("method", ["step", "offload_step"])
def test_interrupt_after_the_native_step_leaves_it_counted(method):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((30, 4))
    W2 = W.copy()
    grads = [rng.standard_normal((30, 4)) for _ in range(3)]
    opt, ref = optim.Adam([W], lr=0.1), optim.Adam([W2], lr=0.1)
    getattr(opt, method)([grads[0]]), getattr(ref, method)([grads[0]])
    native = opt._group
    opt._group = _InterruptAfter(native)
    with pytest.raises(KeyboardInterrupt):
        getattr(opt, method)([grads[1]])
    getattr(ref, method)([grads[1]])
    opt._group = native
    assert opt.step_count == ref.step_count == 2
    getattr(opt, method)([grads[2]]), getattr(ref, method)([grads[2]])
    np.testing.assert_array_equal(W, W2)


def test_a_refused_step_puts_the_scheduled_lr_back():
    W = np.zeros(4)
    opt = optim.SGD([W], lr=lambda t: 0.1 - 0.1 * t)   # negative from the third step
    for _ in range(2):
        opt.step([np.ones(4)])
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="lr"):
        opt.step([np.ones(4)])
    assert opt.param_groups[0]["lr"] == 0.0 and opt.step_count == 2
    checkpoint = opt.state_dict()
    assert checkpoint["param_groups"][0]["lr"] == saved["param_groups"][0]["lr"]
    optim.SGD([np.zeros(4)], lr=0.1).load_state_dict(checkpoint)   # the checkpoint still loads


def test_load_state_dict_refuses_buffers_this_optimizer_lacks():
    for cls, key, value in ((optim.SGD, "momentum", 0.9), (optim.Adam, "amsgrad", True),
                            (optim.RMSprop, "centered", True)):
        source = cls([np.zeros(4)], lr=0.1, **{key: value})
        source.step([np.ones(4)])
        target = cls([np.zeros(4)], lr=0.1)
        W_before = target.params[0].copy()
        with pytest.raises(ValueError, match="state buffer"):
            target.load_state_dict(source.state_dict())
        assert target.param_groups[0][key] != value and target.step_count == 0
        target.step([np.ones(4)])                   # still steps
        assert not np.array_equal(target.params[0], W_before)


def test_seeds_up_to_two_to_the_64_are_accepted():
    p16 = np.full(8, 1.0, np.float16)
    opt = optim.SGD([p16], lr=1e-4, stochastic_rounding=True, seed=2**64 - 1)
    opt.step([np.ones(8, np.float16)])
    assert opt.seed == 2**64 - 1
    with pytest.raises(ValueError, match="seed"):
        optim.SGD([np.zeros(2)], seed=2**64)
    with pytest.raises(TypeError, match="seed"):
        optim.SGD([np.zeros(2)], seed=1.0)


FORK_WITH_HELD_STEP = """
    import os, threading, time
    import numpy as np
    from fastopt import optim

    W = np.zeros(1 << 22)
    opt = optim.Adam([W], lr=1e-3)
    g = np.ones_like(W)
    stop = threading.Event()

    def steps():
        while not stop.is_set():
            opt.step([g])

    worker = threading.Thread(target=steps)
    worker.start()
    time.sleep(0.05)
    pids = []
    for _ in range(5):
        pid = os.fork()
        if pid == 0:
            n = opt.step_count
            opt.step([g])
            os._exit(0 if opt.step_count == n + 1 else 3)
        pids.append(pid)
        time.sleep(0.01)
    stop.set()
    worker.join()
    for pid in pids:
        for _ in range(600):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            raise SystemExit("a forked child hung in its first step")
        assert os.WEXITSTATUS(status) == 0, status
    print("fork ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_children_forked_during_a_step_can_step():
    proc = run_python(FORK_WITH_HELD_STEP, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "fork ok" in proc.stdout


# --- 8. estimators: DataFrames, weights ---------------------------------------------------------

@pytest.mark.filterwarnings("ignore::fastopt._validation.ConvergenceWarning")
def test_dataframes_follow_scikit_learns_feature_name_contract():
    pd = pytest.importorskip("pandas")
    X, y = data(200, 4, 3)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    for cls in (SoftmaxClassifier, LinearSVMClassifier):
        model = cls(max_iter=5).fit(frame, y)
        assert list(model.feature_names_in_) == ["a", "b", "c", "d"]
        with pytest.raises(ValueError, match="feature names should match"):
            model.predict(frame[["b", "a", "c", "d"]])
        with pytest.warns(UserWarning, match="does not have valid feature names"):
            np.testing.assert_array_equal(model.predict(frame), model.predict(X))
        model.fit(X, y)
        assert not hasattr(model, "feature_names_in_")
    nullable = frame.astype("Float64")
    nullable.iloc[3, 2] = pd.NA
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxClassifier().fit(nullable, y)
    model = SoftmaxClassifier(max_iter=5).fit(frame.astype("Float64"), y)
    assert model.score(frame, y) > 0.3


@pytest.mark.filterwarnings("ignore::fastopt._validation.ConvergenceWarning")
def test_early_stopping_with_a_zero_weight_validation_split():
    X, y = data(300, 5, 3)
    model = SoftmaxClassifier(solver="sgd", early_stopping=True, max_iter=5, random_state=0, tol=1.0)
    _, val = model._validation_split(np.searchsorted(np.unique(y), y), SplitMix64(0))
    weights = np.ones(len(y))
    weights[val] = 0.0
    model.fit(X, y, sample_weight=weights)
    assert len(model.validation_scores_) > 0 and all(0 <= s <= 1 for s in model.validation_scores_)


def test_tiny_sample_weights_name_sample_weight():
    X, y = data(100, 5, 3)
    with pytest.raises(ValueError, match="sample_weight"):
        SoftmaxClassifier().fit(X, y, sample_weight=np.full(100, 1e-320))
