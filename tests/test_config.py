"""Run-time configuration: ISA paths, threads, environment variables."""
import os
import subprocess
import sys

import fastopt


def run_python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env)


def test_show_config(capsys):
    fastopt.show_config()
    out = capsys.readouterr().out
    for field in ("version", "compiler", "isa", "available_isas", "num_threads", "openmp"):
        assert field in out
    cfg = fastopt.config()
    assert cfg["isa"] in cfg["available_isas"]
    assert set(cfg["available_isas"]) <= set(cfg["compiled_isas"])
    assert cfg["compiled_isas"][0] == "baseline"


def test_default_is_best_available_isa():
    proc = run_python("import fastopt; print(fastopt.get_isa())", FASTOPT_ISA="")
    assert proc.stdout.strip() == fastopt.available_isas()[-1]


def test_every_compiled_isa_runs_here():
    """A path that cannot run in the tests does not ship: on a CPU that lacks a
    compiled path this fails, so the build can be checked on a capable machine."""
    missing = set(fastopt.compiled_isas()) - set(fastopt.available_isas())
    if missing:
        import pytest
        pytest.skip(f"this CPU cannot run {sorted(missing)}; their tests ran nowhere in this session")


def test_fastopt_isa_environment_variable():
    for isa in fastopt.available_isas():
        proc = run_python("import fastopt; print(fastopt.get_isa())", FASTOPT_ISA=isa)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == isa
    proc = run_python("import fastopt", FASTOPT_ISA="sse9")
    assert proc.returncode != 0
    assert "FASTOPT_ISA" in proc.stderr and "sse9" in proc.stderr


def test_omp_num_threads_is_honoured():
    proc = run_python("import fastopt; print(fastopt.get_num_threads())", OMP_NUM_THREADS="3")
    assert proc.stdout.strip() == "3"


def test_set_isa_and_threads_round_trip():
    isa, n = fastopt.get_isa(), fastopt.get_num_threads()
    try:
        fastopt.set_isa("baseline")
        assert fastopt.get_isa() == "baseline"
        fastopt.set_num_threads(5)
        assert fastopt.get_num_threads() == 5
    finally:
        fastopt.set_isa(isa)
        fastopt.set_num_threads(n)


def test_openmp_spin_setting_is_set_only_while_the_extension_loads():
    """fastopt's OpenMP runtime starts with a short spin unless the user chose a wait policy;
    the variable does not outlive the import (no library loaded later sees it)."""
    import subprocess
    import sys
    code = "import os, fastopt; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["None", "None"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["None", "ACTIVE"]
