"""fastopt.demo's numbers (no matplotlib needed): the lecture's claims about the optimizers."""
import numpy as np

from fastopt import demo


def test_trajectories_start_together_and_descend():
    for surface, (f, _, start, _) in demo.SURFACES.items():
        paths = demo.trajectories(surface, steps=150)
        assert set(paths) == {"SGD", "SGD+momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam"}
        for name, path in paths.items():
            assert path.shape == (151, 2)
            np.testing.assert_array_equal(path[0], start)
            assert f(*path[-1]) < f(*path[0]), (surface, name)


def test_sgd_is_slowest_on_the_ill_conditioned_quadratic():
    f = demo.SURFACES["quadratic"][0]
    final = {name: f(*path[-1]) for name, path in demo.trajectories("quadratic", steps=150).items()}
    assert final["SGD"] == max(final.values())
    # SGD zig-zags along the steep direction: y changes sign at almost every step early on
    y = demo.trajectories("quadratic", steps=10)["SGD"][:, 1]
    assert np.all(np.sign(y[1:]) != np.sign(y[:-1]))


def test_sgd_lingers_at_the_saddle_and_the_others_escape():
    paths = demo.trajectories("saddle", steps=150)
    assert abs(paths["SGD"][-1, 1]) < 0.5                  # still near y = 0
    for name in ("SGD+momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam"):
        assert abs(abs(paths[name][-1, 1]) - 1) < 0.1, name  # at a minimum, y = ±1


def test_loss_curves_and_random_search_baseline():
    curves, search, accuracy = demo.loss_curves(epochs=2)
    updates = 2 * int(np.ceil(1797 / 100))
    assert all(len(c) == updates for c in curves.values())
    assert len(search.losses) == updates
    for name, c in curves.items():
        assert c[-5:].mean() < 0.5 * c[0], name
        assert accuracy[name] > 0.85, name
    assert accuracy["random search"] < 0.4          # the lecture's "very bad idea"
    assert search.loss > max(c[-5:].mean() for c in curves.values())
