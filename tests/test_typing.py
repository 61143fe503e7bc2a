"""The public API's annotations, checked with mypy --strict from a user's side:
tests/typing/user_script.py must type-check (and run), and every line of
tests/typing/user_errors.py marked ``# error`` must be rejected, no other."""
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("mypy")

HERE = pathlib.Path(__file__).parent / "typing"


def _mypy(path):
    # Run from the script's directory so that the installed fastopt (with its
    # py.typed and _core.pyi) is what mypy reads, not the source tree.
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--hide-error-context", "--no-error-summary", path.name],
                          cwd=path.parent, capture_output=True, text=True, timeout=600)


def test_user_script_type_checks_and_runs():
    out = _mypy(HERE / "user_script.py")
    assert out.returncode == 0, out.stdout + out.stderr
    run = subprocess.run([sys.executable, str(HERE / "user_script.py")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


def test_wrong_calls_are_rejected():
    path = HERE / "user_errors.py"
    expected = {i for i, line in enumerate(path.read_text().splitlines(), 1) if line.rstrip().endswith("# error")}
    out = _mypy(path)
    reported = {int(m.group(1)) for m in re.finditer(r"^user_errors\.py:(\d+): error", out.stdout, re.M)}
    assert reported == expected, out.stdout
