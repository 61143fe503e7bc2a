"""fastopt.torch against other libraries' implementations of the rules torch.optim does not
have (skipped when the library is not installed): the rule's meaning, beyond its NumPy
reference (which the kernels are checked against bitwise elsewhere)."""
import pytest

torch = pytest.importorskip("torch")
import fastopt.torch as ft  # noqa: E402


@pytest.mark.parametrize("options", [{}, {"t_alpha": 20, "t_beta3": 30},
                                     {"betas": (0.8, 0.99, 0.999), "alpha": 2.0, "weight_decay": 0.0}])
def test_ademamix_is_bitsandbytes_ademamix(options):
    # bitsandbytes' own 32-bit AdEMAMix (its CPU kernel), schedules per step. (Its
    # _ReferenceAdEMAMix applies the schedules once per parameter, compounding them
    # from the second parameter on, so it is not the comparison.)
    bnb = pytest.importorskip("bitsandbytes")
    gen = torch.Generator().manual_seed(0)
    shapes = [(4096,), (64, 80)]
    ours = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    a = ft.AdEMAMix(ours, lr=1e-3, **options)
    b = bnb.optim.AdEMAMix(theirs, lr=1e-3, **options)
    for _ in range(25):
        for x, y in zip(ours, theirs):
            x.grad = torch.randn(x.shape, generator=gen)
            y.grad = x.grad.clone()
        a.step()
        b.step()
    for x, y in zip(ours, theirs):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
