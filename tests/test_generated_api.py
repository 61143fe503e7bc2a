"""The Python API of each update rule is generated from the native registry
(tools/generate_api.py): the generated code in the package and the guide's table
are what the registry gives, and the generator refuses a malformed entry."""
import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

import fastopt
from fastopt import _core, optim

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("generate_api", ROOT / "tools" / "generate_api.py")
generate_api = importlib.util.module_from_spec(spec)
sys.modules["generate_api"] = generate_api  # (its dataclasses look their module up)
spec.loader.exec_module(generate_api)
RULES = generate_api.load_rules()


@pytest.mark.parametrize("module", generate_api.TARGETS)
def test_generated_code_is_what_the_registry_gives(module):
    text = (ROOT / module).read_text()
    assert generate_api.generate(module, text, RULES) == text, \
        f"{module} is stale: run python tools/generate_api.py"


def test_every_rule_is_in_the_api():
    for rule in RULES:
        assert callable(getattr(fastopt, rule.name)), rule.name
        cls = getattr(optim, rule.class_name)
        assert cls._rule == rule.name and cls.__module__ == "fastopt.optim"
        assert rule.name in fastopt.__all__ and rule.class_name in optim.__all__


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_the_function_takes_the_registry_arguments(rule):
    if rule.name == "sgd":  # written by hand: sgd and sgd_momentum
        return
    parameters = inspect.signature(getattr(fastopt, rule.name)).parameters
    expected = {"p", "g", "p_copy", "stochastic_rounding_seed"} | {s["arg"] for s in rule.spec["states"]}
    expected |= {h["name"] for h in generate_api.step_hypers(rule)} | ({"step"} if rule.spec["uses_step"] else set())
    assert set(parameters) == expected
    # the reference (the specification) takes the same arguments, but the low-precision options
    reference = inspect.signature(getattr(fastopt.reference, rule.name)).parameters
    assert set(reference) == expected - {"p_copy", "stochastic_rounding_seed"}


@pytest.mark.parametrize("api, error", [
    ("Adam(lr, betas=(beta1, beta2), eps)", "api lacks"),          # weight_decay, ... missing
    ("Adam(lr, rate, betas=(beta1, beta2))", "not a hyperparameter"),
    ("Adam(lr, betas=(beta1, gamma))", "not a tuple"),
    ("Adam(lr, betas=(beta1), eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)", "not a tuple"),
    ("Adam(lr, betas=(beta1, beta2), beta1, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)",
     "twice"),
    ("Adam lr", "is not 'Class"),
])
def test_a_malformed_api_entry_is_refused(api, error):
    spec = dict(next(r for r in _core.rules() if r["name"] == "adam"), api=api)
    with pytest.raises(ValueError, match=error):
        generate_api.parse_rule(spec)


def test_hand_written_names_are_not_generated():
    text = (ROOT / "python" / "fastopt" / "torch" / "_rules.py").read_text()
    head, generated, tail = generate_api.split(text, Path("_rules.py"))
    assert "class AdamW(Adam)" in tail and "class AdamW(" not in generated   # torch's AdamW is its Adam
    assert "class SGD(_SGDBase)" in generated                                 # torch's state creation
