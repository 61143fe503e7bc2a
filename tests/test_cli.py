"""The fastopt command, end to end in a subprocess."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest


def fastopt(*args):
    return subprocess.run([sys.executable, "-m", "fastopt", *args], capture_output=True, text=True, timeout=300)


def test_train_default_reaches_95_percent():
    proc = fastopt("train", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "embedded 8×8 digits" in proc.stdout
    val = float(proc.stdout.split("validation accuracy:")[1].split()[0])
    assert val >= 0.95
    assert "wall time" in proc.stdout


@pytest.mark.parametrize("extra", [["--loss", "svm", "--optimizer", "momentum", "--schedule", "cosine", "--epochs", "3"],
                                   ["--solver", "lbfgs", "--epochs", "20", "--penalty", "l1"]])
def test_train_options(extra):
    proc = fastopt("train", "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr
    assert "validation accuracy" in proc.stdout


def test_train_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    proc = fastopt("train", "--quiet", "--data", str(tmp_path / "d.npz"), "--solver", "lbfgs", "--epochs", "50")
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.split("validation accuracy:")[1].split()[0]) > 0.9


def test_train_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "loss.png"
    proc = fastopt("train", "--quiet", "--epochs", "3", "--plot", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 1000


def without_matplotlib(tmp_path, *args):
    """Runs fastopt with `import matplotlib` failing."""
    blocker = tmp_path / "blocker" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "fastopt", *args], capture_output=True, text=True, env=env,
                          timeout=60)


@pytest.mark.parametrize("args", [["train", "--plot", "x.png"], ["demo"]])
def test_plot_without_matplotlib_is_a_clear_error(tmp_path, args):
    proc = without_matplotlib(tmp_path, *args, *(["--out", str(tmp_path / "d")] if args[0] == "demo" else []))
    assert proc.returncode != 0
    assert "matplotlib" in proc.stderr and "fastopt[plot]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_demo_writes_the_figures(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "figs"
    proc = fastopt("demo", "--out", str(out), "--steps", "30", "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    for name in ("trajectories_quadratic.png", "trajectories_saddle.png", "loss_curves.png"):
        png = (out / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "random search" in proc.stdout


@pytest.mark.parametrize("args", [["train", "--bogus"], ["train", "--loss", "hinge"], ["train", "--lr", "abc"],
                                  ["train", "--epochs", "0"], ["train", "--lr", "-1"], ["train", "--data", "/no/such.npz"],
                                  ["demo", "--steps", "0"], ["demo", "--epochs", "x"], ["demo", "--bogus"],
                                  ["frobnicate"], []])
def test_bad_arguments_exit_nonzero(args):
    proc = fastopt(*args)
    assert proc.returncode == 2
    assert "error" in proc.stderr


def _bad_files(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("X,y\n1,2\n")
    np.savez(tmp_path / "floats.npz", X=np.ones((10, 2)), y=np.arange(10) + 0.5)
    np.savez(tmp_path / "nolabels.npz", X=np.ones((10, 2)))
    np.savez(tmp_path / "norows.npz", X=np.ones((0, 2)), y=np.zeros(0, int))
    np.savez(tmp_path / "strings.npz", X=np.array([["a", "b"]]), y=np.array([0]))


@pytest.mark.parametrize("name, text", [
    ("empty.npz", "not an .npz file"), ("text.npz", "not an .npz file"), (".", "is a directory"),
    ("floats.npz", "integer class labels"), ("nolabels.npz", "no array named y"), ("norows.npz", "N >= 1"),
    ("strings.npz", "numeric"), ("missing.npz", "No such file")])
def test_bad_data_files_are_one_line_errors(tmp_path, name, text):
    _bad_files(tmp_path)
    proc = fastopt("train", "--quiet", "--data", str(tmp_path / name))
    assert proc.returncode == 2, proc.stderr
    assert text in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--lr", "-1"], ["--lr", "nan"], ["--reg", "-1"], ["--l1-ratio", "2"],
                                  ["--val-fraction", "1"], ["--batch-size", "0"]])
def test_bad_numbers_are_refused_before_the_data_is_loaded(args):
    proc = fastopt("train", "--data", "/no/such/file.npz", *args)
    assert proc.returncode == 2
    assert args[0] in proc.stderr and "No such file" not in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["demo", "--help"], ["bench", "--help"],
                                  ["info", "--help"], ["--version"]])
def test_help_and_version_exit_zero(args):
    proc = fastopt(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and not proc.stderr


@pytest.mark.parametrize("args", [["--bogus"], ["info", "--bogus"], ["bench", "--bogus"], ["bench", "--only", "x"],
                                  ["train", "--version"]])
def test_unknown_options_exit_two(args):
    proc = fastopt(*args)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "error" in proc.stderr


def test_version():
    import fastopt as package
    proc = fastopt("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"fastopt {package.__version__}"


def test_ctrl_c_exits_130_with_one_line():
    import signal
    import time
    # A job started in the background by a shell without job control inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: the child gets SIGINT's default back.
    proc = subprocess.Popen([sys.executable, "-u", "-m", "fastopt", "train", "--quiet", "--epochs", "40000",
                             "--batch-size", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().startswith("data:")    # loaded; training starts
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "fastopt: interrupted"


def test_info_and_bench():
    proc = fastopt("info")
    assert proc.returncode == 0 and "available_isas" in proc.stdout
    proc = fastopt("bench", "--quick", "--only", "optim", "--optimizer", "sgd", "--budget", "0.02")
    assert proc.returncode == 0, proc.stderr
    assert "| sgd float32 1k |" in proc.stdout
    proc = fastopt("bench", "--only", "train", "--budget", "0.05")
    assert proc.returncode == 0, proc.stderr
    assert "| softmax+sgd f32 digits" in proc.stdout and "CIFAR-10 shape" in proc.stdout


def test_console_script_installed():
    exe = shutil.which("fastopt")
    if exe is None:
        pytest.skip("the fastopt console script is not on PATH (package not installed in this environment)")
    proc = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "version" in proc.stdout
