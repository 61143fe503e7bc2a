import numpy as np
import pytest

import fastopt

ISAS = fastopt.available_isas()
THREAD_COUNTS = [1, 2, 3]


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs the test once per kernel path this CPU supports."""
    previous = fastopt.get_isa()
    fastopt.set_isa(request.param)
    yield request.param
    fastopt.set_isa(previous)


@pytest.fixture(params=THREAD_COUNTS, ids=lambda n: f"threads{n}")
def threads(request):
    previous = fastopt.get_num_threads()
    fastopt.set_num_threads(request.param)
    yield request.param
    fastopt.set_num_threads(previous)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


def tolerances(dtype, steps):
    """docs/design.md, 'Numerical agreement with the reference'."""
    if dtype == np.float64:
        return dict(rtol=1e-12, atol=1e-14)
    if steps <= 1:
        return dict(rtol=1e-6, atol=1e-7)
    return dict(rtol=1e-5, atol=1e-6)
