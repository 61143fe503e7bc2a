"""Run-time configuration: kernel path (ISA) and threads."""
import os
import platform

from . import _core

__all__ = ["show_config", "config", "get_isa", "set_isa", "available_isas", "compiled_isas",
           "get_num_threads", "set_num_threads"]


def available_isas():
    """Kernel paths this build contains and this CPU can run, slowest first."""
    return list(_core.supported_isas())


def compiled_isas():
    """Kernel paths compiled into this build, slowest first."""
    return list(_core.compiled_isas())


def get_isa():
    """Name of the active kernel path ('baseline', 'avx2' or 'avx512')."""
    return _core.get_isa()


def set_isa(name):
    """Force a kernel path for every later call.

    Parameters
    ----------
    name : str
        One of :func:`available_isas`. The environment variable ``FASTOPT_ISA``
        does the same at import time.

    Raises
    ------
    ValueError
        If the path is unknown, not compiled in, or not supported by this CPU.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    _core.set_isa(name)


def get_num_threads():
    """Threads used for steps of at least ``_core.parallel_min_elements`` elements."""
    return _core.get_num_threads()


def set_num_threads(n):
    """Set the OpenMP thread count for fastopt's kernels (default: ``OMP_NUM_THREADS``
    or the number of cores). Results are bitwise identical for any ``n``."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def config():
    """The build and run-time configuration as a dict."""
    return {
        "version": _core.__version__,
        "compiler": _core.compiler,
        "openmp": _core.openmp_version,
        "isa": get_isa(),
        "available_isas": available_isas(),
        "compiled_isas": compiled_isas(),
        "num_threads": get_num_threads(),
        "parallel_min_elements": _core.parallel_min_elements,
        "block_elements": _core.block_elements,
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def show_config():
    """Print version, compiler, selected and available ISAs, and OpenMP threads."""
    for key, value in config().items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:>22}: {value}")


def _apply_environment():
    name = os.environ.get("FASTOPT_ISA")
    if name:
        try:
            _core.set_isa(name.strip().lower())
        except ValueError as exc:
            raise ImportError(f"FASTOPT_ISA={name!r}: {exc}") from None
