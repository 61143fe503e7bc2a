"""Test cases derived from the native registry of update rules: for each rule,
option sets that switch each of its options on. The tables of the tests
(functions and classes against the reference, fastopt.torch against
torch.optim) are built from here, so a rule added to the registry is tested by
all of them with no table edited; a table may add cases of its own for what
generic option sets do not reach (a rule's regimes, its torch specifics)."""
from fastopt import _core
from fastopt._registry import parse_api

RULES = {r["name"]: r for r in _core.rules()}


def class_name(name):
    """The rule's class name in fastopt.optim and fastopt.torch (from its api entry)."""
    return parse_api(RULES[name]).class_name


def in_torch(name):
    """Whether torch.optim has the rule's class."""
    return parse_api(RULES[name]).in_torch


def tuples(name):
    """The rule's tuples of hyperparameters: {"betas": ("beta1", "beta2")}."""
    return parse_api(RULES[name]).tuples


def elementwise(name):
    """True when every state buffer is elementwise or one number (the tables' array model)."""
    return all(s["shape"] in ("elementwise", "tensor") for s in RULES[name]["states"])


def _accepted(name, hypers):
    try:
        _core.check_hyperparameters(name, hypers)
    except ValueError:
        return False
    return True


def option_sets(name):
    """Hyperparameter sets (registry names) of rule ``name``: its defaults; then, with its
    numbers that default to 0 made nonzero and those that default to None given (5.0: a
    warm-up of 5 steps, a floor), every flag off, each on and all on (``maximize`` only with
    the others). A set the rule refuses (SGD's nesterov with dampening) drops its nonzero
    numbers one at a time until it is accepted."""
    hypers = RULES[name]["hypers"]
    nonzero = {h["name"]: 0.05 for h in hypers if h["range"] != "flag" and h["default"] == 0.0}
    nonzero.update({h["name"]: 5.0 for h in hypers if h["default"] is None})
    flags = [h["name"] for h in hypers if h["range"] == "flag" and h["name"] != "maximize"]
    candidates = [{}, *([nonzero] if flags else []), *({**nonzero, f: True} for f in flags),
                  {**nonzero, **dict.fromkeys(flags, True), "maximize": True}]
    out = []
    for c in candidates:
        tries = [c] + [{k: v for k, v in c.items() if k != drop} for drop in nonzero]
        accepted = next((t for t in tries if _accepted(name, t)), None)
        if accepted is not None and accepted not in out:
            out.append(accepted)
    return out


def as_class_options(name, hypers):
    """Registry hyperparameters as the class's arguments (torch's tuples joined)."""
    defaults = {h["name"]: h["default"] for h in RULES[name]["hypers"]}
    out = {k: v for k, v in hypers.items() if not any(k in members for members in tuples(name).values())}
    for key, members in tuples(name).items():
        if any(h in hypers for h in members):
            out[key] = tuple(hypers.get(h, defaults[h]) for h in members)
    return out


def step_hypers(name, hypers):
    """``hypers`` without those used only when state is created (Adagrad's
    initial_accumulator_value): what the functions and the reference take."""
    per_step = {h["name"] for h in RULES[name]["hypers"] if h["per_step"] or h["name"] == "lr"}
    return {k: v for k, v in hypers.items() if k in per_step}


def set_id(hypers):
    """A short id of an option set: the names set, joined."""
    return "-".join(k for k in hypers) or "defaults"


def states(name, hypers):
    """The rule's state buffers these hyperparameters use, as (state name, functional argument,
    positional?): positional unless a hyperparameter makes them needed."""
    specs = {s["name"]: s for s in RULES[name]["states"]}
    return [(n, specs[n]["arg"], specs[n]["needed_when"] is None) for n in _core.needed_states(name, hypers)]
