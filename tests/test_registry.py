"""The native registry of update rules is the one definition of each rule: the
public functions and classes agree with it, and it is well formed."""
import inspect

import numpy as np
import pytest

import fastopt
from fastopt import _core, optim, reference
from fastopt._registry import parse_api

RULES = {r["name"]: r for r in _core.rules()}

# The public function and class of each rule (the class is named in the rule's api).
FUNCTIONS = {name: getattr(fastopt, name) for name in RULES}
CLASSES = {name: getattr(optim, parse_api(r).class_name) for name, r in RULES.items()}


def test_every_rule_has_a_function_a_class_and_a_reference():
    assert set(RULES) == set(FUNCTIONS) == set(CLASSES)
    for name in RULES:
        assert callable(getattr(reference, name)), name
        assert CLASSES[name]._rule == name


@pytest.mark.parametrize("name", sorted(RULES))
def test_registry_entries_are_well_formed(name):
    rule = RULES[name]
    hypers = [h["name"] for h in rule["hypers"]]
    assert hypers[0] == "lr" and len(hypers) == len(set(hypers)) <= 12
    shapes = [state["shape"] for state in rule["states"]]
    for state in rule["states"]:
        assert state["needed_when"] in (None, *hypers)
        assert state["initial"] in (None, *hypers)
    # states in slots first (elementwise, or factored: row, col and the unfactored stand-in),
    # then at most two per-tensor numbers
    slots = [s for s in shapes if s != "tensor"]
    assert shapes == slots + ["tensor"] * shapes.count("tensor")
    assert 1 <= len(slots) <= 3 and shapes.count("tensor") <= 2
    assert set(slots) <= {"elementwise", "row", "col", "unfactored"}
    factored = [s for s in slots if s != "elementwise"]
    assert factored in ([], ["row", "col", "unfactored"])


@pytest.mark.parametrize("name", sorted(RULES))
def test_function_defaults_are_the_registry_defaults(name):
    signature = inspect.signature(FUNCTIONS[name])
    for h in RULES[name]["hypers"]:
        if h["name"] in signature.parameters and h["name"] != "lr":
            assert signature.parameters[h["name"]].default == h["default"], h["name"]
    lr = signature.parameters["lr"].default
    assert lr is inspect.Parameter.empty or lr == RULES[name]["hypers"][0]["default"]


@pytest.mark.parametrize("name", sorted(RULES))
def test_class_defaults_are_the_registry_defaults(name):
    signature = inspect.signature(CLASSES[name])
    defaults = {h["name"]: h["default"] for h in RULES[name]["hypers"]}
    tuples = parse_api(RULES[name]).tuples
    for p in signature.parameters.values():
        if p.name in tuples:
            assert p.default == tuple(defaults[h] for h in tuples[p.name]), p.name
        elif p.name in defaults:
            assert p.default == defaults[p.name], p.name
    opt = CLASSES[name]([np.zeros(3)])
    with opt.native_loop() as run:
        assert run.settings["rule"] == name


@pytest.mark.parametrize("name", sorted(RULES))
def test_torch_class_defaults_are_the_registry_defaults(name):
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft
    # AdamW is torch's Adam with decoupled_weight_decay=True: the adamw rule's defaults are its own
    # (Muon steps its AdamW groups with the adam rule, its own arguments are torch.optim.Muon's;
    # LBFGS is no rule of the registry)
    rule_of = {cls: "adamw" if cls.__name__ == "AdamW" else cls._rule
               for cls in (getattr(ft, n) for n in ft.__all__) if cls.__name__ not in ("Muon", "LBFGS")}
    classes = [cls for cls, rule in rule_of.items() if rule == name]
    assert classes, f"fastopt.torch has no class for {name}"
    defaults = {h["name"]: h["default"] for h in RULES[name]["hypers"]}
    pairs = parse_api(RULES[name]).tuples
    for cls in classes:
        torch_defaults = getattr(torch.optim, cls.__name__, None)
        for p in inspect.signature(cls).parameters.values():
            if p.name in pairs:
                assert tuple(p.default) == tuple(defaults[k] for k in pairs[p.name]), (cls.__name__, p.name)
            elif p.name in defaults and p.name != "decoupled_weight_decay":
                assert p.default == defaults[p.name], (cls.__name__, p.name)
            if torch_defaults is not None and p.name in inspect.signature(torch_defaults).parameters:
                assert p.default == inspect.signature(torch_defaults).parameters[p.name].default, \
                    (cls.__name__, p.name, "differs from torch.optim")


def test_states_follow_the_hyperparameters():
    assert _core.needed_states("sgd", {}) == []
    assert _core.needed_states("sgd", {"momentum": 0.9}) == ["momentum_buffer"]
    assert _core.needed_states("rmsprop", {"centered": True}) == ["square_avg", "grad_avg"]
    assert _core.needed_states("adam", {"amsgrad": True}) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    assert list(optim.Lion([np.zeros(3)]).state) == ["exp_avg"]
    assert np.all(optim.Adagrad([np.zeros(3)], initial_accumulator_value=0.5).state["sum"][0] == 0.5)


@pytest.mark.parametrize("call, error, text", [
    (lambda: _core.step("lamb", {}, {}), ValueError, "rule must be one of"),
    (lambda: _core.step(3, {}, {}), TypeError, "rule must be a str"),
    (lambda: _core.check_hyperparameters("adam", {"betas": (0.9, 0.99)}), ValueError, "adam has no hyperparameter 'betas'"),
    (lambda: _core.check_hyperparameters("adam", {"amsgrad": 1}), TypeError, "amsgrad"),
    (lambda: _core.check_hyperparameters("lion", {"beta2": 1.0}), ValueError, "beta2"),
    (lambda: _core.check_hyperparameters("adam", []), TypeError, "dict"),
])
def test_registry_lookups_refuse_bad_input(call, error, text):
    with pytest.raises(error, match=text):
        call()


def test_lion_moves_every_element_by_lr():
    p = np.zeros(5)
    m = np.zeros(5)
    g = np.array([-2.0, -1e-30, 0.0, 1e-30, 3.0])
    fastopt.lion(p, g, m, lr=0.1)
    np.testing.assert_array_equal(p, [0.1, 0.1, 0.0, -0.1, -0.1])    # sign(0) = 0
    np.testing.assert_allclose(m, 0.01 * g)
