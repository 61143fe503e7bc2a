"""Run-time configuration: kernel path (ISA) and threads."""
import os
import platform
from typing import Any

from . import _core

__all__ = ["show_config", "config", "get_isa", "set_isa", "available_isas", "compiled_isas",
           "get_num_threads", "set_num_threads"]


def available_isas() -> list[str]:
    """Kernel paths this build contains and this CPU can run, slowest first."""
    return list(_core.supported_isas())


def compiled_isas() -> list[str]:
    """Kernel paths compiled into this build, slowest first."""
    return list(_core.compiled_isas())


def get_isa() -> str:
    """Name of the active kernel path ('baseline', 'avx2' or 'avx512')."""
    return _core.get_isa()


def set_isa(name: str) -> None:
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
    _core.set_isa(name)


def get_num_threads() -> int:
    """Threads the kernels use in the calling thread for inputs of at least
    ``_core.parallel_min_elements`` elements (1 in a child made by ``fork()``)."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads fastopt's kernels use, in every thread of the process.

    Parameters
    ----------
    n : int
        In ``[1, 1024]``. The default is OpenMP's: ``OMP_NUM_THREADS`` or the
        number of cores. Results are bitwise identical for any ``n``.

    Notes
    -----
    The count is OpenMP's own setting, so ``threadpoolctl.threadpool_limits``
    and ``omp_set_num_threads`` (which apply to the calling thread) lower it
    too; ``set_num_threads`` applies ``n`` to every thread on its next call,
    as ``torch.set_num_threads`` does. In a process made by ``fork()`` (the
    default of :mod:`multiprocessing` on Linux) the kernels run on one thread:
    OpenMP's thread pool does not survive ``fork``.
    """
    _core.set_num_threads(n)


def config() -> dict[str, Any]:
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


def show_config() -> None:
    """Print version, compiler, selected and available ISAs, and OpenMP threads."""
    for key, value in config().items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:>22}: {value}")


def _apply_environment() -> None:
    name = os.environ.get("FASTOPT_ISA")
    if name:
        try:
            _core.set_isa(name.strip().lower())
        except ValueError as exc:
            raise ImportError(f"FASTOPT_ISA={name!r}: {exc}") from None
