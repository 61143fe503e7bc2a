"""A rule's class constructor as its registry entry writes it (``RuleSpec::api``).

Each rule of ``fastopt._core.rules()`` names its class's constructor after
``params`` in torch's argument order, e.g.
``"torch.optim.NAdam(lr, betas=(beta1, beta2), eps, ..., *, foreach=None, maximize)"``:
a hyperparameter by its name, a tuple of them (``betas=(beta1, beta2)``), or a
torch-only argument at the one value fastopt accepts (``foreach=None``). Without
the ``torch.optim.`` prefix the class is fastopt's own. This module reads that
string once for everyone: ``tools/generate_api.py`` (which loads this file by
path, without importing fastopt), the classes' hyperparameter handling and the
tests' tables. It imports nothing of fastopt.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class Arg:
    """One argument of a class's constructor, after ``params``."""
    name: str
    keyword_only: bool
    hypers: tuple[str, ...] = ()  # the hyperparameter, or a tuple's members (betas: beta1, beta2)
    literal: Optional[str] = None  # torch-only arguments: their only accepted value

    @property
    def is_tuple(self) -> bool:
        return self.literal is None and self.hypers != (self.name,)


@dataclass(frozen=True)
class Api:
    """A rule's class: its name, whether torch.optim has it, its arguments in order."""
    class_name: str
    in_torch: bool
    args: tuple[Arg, ...]

    @property
    def tuples(self) -> dict[str, tuple[str, ...]]:
        """The arguments that are tuples of hyperparameters: ``{"betas": ("beta1", "beta2")}``."""
        return {a.name: a.hypers for a in self.args if a.is_tuple}


def _split_top(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_api(spec: Mapping[str, Any]) -> Api:
    """The constructor of rule ``spec`` (an entry of ``_core.rules()``); ValueError when its
    ``api`` is malformed or does not take each hyperparameter exactly once."""
    name = spec["name"]
    m = re.fullmatch(r"(torch\.optim\.)?(\w+)\((.*)\)", spec["api"], re.S)
    if m is None:
        raise ValueError(f"rule {name!r}: api {spec['api']!r} is not 'Class(arg, ...)'")
    hypers = [h["name"] for h in spec["hypers"]]
    args, keyword_only, seen = [], False, []
    for token in _split_top(m.group(3)):
        if token == "*":
            keyword_only = True
            continue
        arg, _, value = token.partition("=")
        if not value:
            if arg not in hypers:
                raise ValueError(f"rule {name!r}: {arg!r} is not a hyperparameter; give torch's default")
            args.append(Arg(arg, keyword_only, (arg,)))
            seen.append(arg)
        elif value.startswith("("):
            members = tuple(p.strip() for p in value.strip("()").split(","))
            if len(members) < 2 or not set(members) <= set(hypers):
                raise ValueError(f"rule {name!r}: {token!r} is not a tuple of hyperparameters")
            args.append(Arg(arg, keyword_only, members))
            seen.extend(members)
        else:
            args.append(Arg(arg, keyword_only, literal=value))
    missing = set(hypers) - set(seen)
    if missing:
        raise ValueError(f"rule {name!r}: api lacks {sorted(missing)}")
    if len(seen) != len(set(seen)):
        raise ValueError(f"rule {name!r}: api takes a hyperparameter twice")
    return Api(m.group(2), bool(m.group(1)), tuple(args))
