"""fastopt.torch against torch.optim on torch's own optimizer configurations
(torch.testing._internal.common_optimizers.optim_db: CPU, float64), over many
steps with two parameter groups. Skipped when torch (or the expecttest package
its test internals import) is absent."""
import importlib

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")
common_optimizers = pytest.importorskip("torch.testing._internal.common_optimizers")
ft = importlib.import_module("fastopt.torch")

# torch.optim's class fastopt.torch does not have: SparseAdam (sparse gradients).
ABSENT = {"SparseAdam"}


def _inputs():
    out = []
    for info in common_optimizers.optim_db:
        name = info.optim_cls.__name__
        if name in ABSENT:
            continue
        for optim_input in info.optim_inputs_func(device="cpu", dtype=torch.float64):
            out.append(pytest.param(name, optim_input.kwargs, id=f"{name}-{optim_input.desc}"))
    return out


def _params(name):
    # Muon takes matrices; distinct shapes, so that each runs torch's very operations.
    shapes = [(6, 4), (5, 3), (3, 7), (4, 2)] if name == "Muon" else [(6, 4), (5,), (3, 7), (2,)]
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]


@pytest.mark.parametrize("name, kwargs", [p for p in _inputs() if p.values[0] == "LBFGS"])
def test_lbfgs_trajectory_equals_torch(name, kwargs):
    """LBFGS steps with a closure and one group (torch's only form)."""
    target = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(6, 4)

    def run(module, params):
        opt = module.LBFGS(params, **kwargs)

        def closure():
            opt.zero_grad()
            loss = (params[0] - target).pow(4).sum() + (params[1] + params[0][:5, 0]).square().sum()
            loss.backward()
            return loss
        return [float(opt.step(closure).detach()) for _ in range(5)]

    ours_p, theirs_p = _params(name)[:2], _params(name)[:2]
    assert run(ft, ours_p) == pytest.approx(run(torch.optim, theirs_p), rel=1e-9)
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, kwargs", [p for p in _inputs() if p.values[0] != "LBFGS"])
def test_trajectory_equals_torch(name, kwargs):
    def make(module, params):
        lr = kwargs.get("lr", None)
        second = {"params": params[2:]}
        if not isinstance(lr, torch.Tensor):  # a second group with its own lr
            second["lr"] = 0.5 * (lr if lr is not None else module.__dict__[name]([torch.zeros(2, 2)]).defaults["lr"])
        return getattr(module, name)([{"params": params[:2]}, second], **kwargs)

    ours_p, theirs_p = _params(name), _params(name)
    ours, theirs = make(ft, ours_p), make(torch.optim, theirs_p)
    g = torch.Generator().manual_seed(1)
    for _ in range(25):
        for a, b in zip(ours_p, theirs_p):
            grad = torch.randn(a.shape, generator=g, dtype=torch.float64)
            a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    for a, b in zip(ours_p, theirs_p):
        assert set(ours.state[a]) == set(theirs.state[b])
