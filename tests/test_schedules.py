"""fastopt.schedules: closed forms, torch.optim.lr_scheduler (when installed), use in optimizers."""
import math

import numpy as np
import pytest

from fastopt import optim, schedules


def test_closed_forms():
    assert [schedules.constant(0.3)(t) for t in (0, 7)] == [0.3, 0.3]
    s = schedules.step_decay(1.0, step_size=3, gamma=0.5)
    assert [s(t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    c = schedules.cosine(1.0, total_steps=10, min_lr=0.1)
    assert c(0) == 1.0 and c(10) == pytest.approx(0.1) and c(5) == pytest.approx(0.55)
    lin = schedules.linear(2.0, total_steps=4, start_factor=1.0, end_factor=0.5)
    assert [lin(t) for t in range(6)] == pytest.approx([2.0, 1.75, 1.5, 1.25, 1.0, 1.0])
    inv = schedules.inverse_sqrt(1.0, warmup_steps=4)
    assert [inv(t) for t in (0, 3, 4, 16)] == pytest.approx([1.0, 1.0, 1.0, 0.5])
    w = schedules.linear_warmup(schedules.constant(1.0), warmup_steps=4)
    assert [w(t) for t in range(6)] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    assert schedules.scale_lr_for_batch(0.1, 256, 1024) == pytest.approx(0.4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="base_lr"):
        schedules.cosine(-1.0, 10)
    with pytest.raises(ValueError, match="total_steps"):
        schedules.cosine(1.0, 0)
    with pytest.raises(TypeError, match="step_size"):
        schedules.step_decay(1.0, 2.5)
    with pytest.raises(TypeError, match="schedule"):
        schedules.linear_warmup(0.1, 10)
    with pytest.raises(ValueError, match="t must be >= 0"):
        schedules.constant(0.1)(-1)
    with pytest.raises(TypeError, match="t must be an int"):
        schedules.constant(0.1)(1.5)


def test_optimizer_follows_schedule():
    sched = schedules.step_decay(0.1, step_size=2, gamma=0.5)
    p = np.zeros(3)
    opt = optim.SGD([p], lr=sched)
    expected = 0.0
    for t in range(6):
        opt.step([np.ones(3)])
        expected -= sched(t)
        assert opt.lr == sched(t)
    np.testing.assert_allclose(p, expected, rtol=1e-15)


def test_optimizer_rejects_bad_first_lr():
    with pytest.raises(ValueError, match="lr"):
        optim.Adam([np.zeros(3)], lr=lambda t: -1.0)


@pytest.mark.parametrize("name", ["step", "cosine", "linear", "warmup"])
def test_matches_torch_lr_scheduler(name):
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.5)
    lrs = torch.optim.lr_scheduler
    if name == "step":
        ours, theirs = schedules.step_decay(0.5, 3, 0.7), lrs.StepLR(opt, 3, gamma=0.7)
    elif name == "cosine":
        ours, theirs = schedules.cosine(0.5, 10, 0.05), lrs.CosineAnnealingLR(opt, T_max=10, eta_min=0.05)
    elif name == "linear":
        ours, theirs = schedules.linear(0.5, 8, 1.0, 0.1), lrs.LinearLR(opt, 1.0, 0.1, total_iters=8)
    else:
        ours = schedules.linear_warmup(schedules.constant(0.5), 5, start_factor=0.2)
        theirs = lrs.LinearLR(opt, 0.2, 1.0, total_iters=5)
    for t in range(12):
        assert ours(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12), t
        opt.step()
        theirs.step()
    assert math.isfinite(ours(100))
