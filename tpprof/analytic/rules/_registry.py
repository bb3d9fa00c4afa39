"""The rule registry: :class:`RuleModel` records keyed by name (a name registered twice is an
error, as in PyTorch's flop-counter registry). Each rule module registers itself; the package
(:mod:`tpprof.analytic.rules`) imports them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tpprof.analytic.terms import TermList

#: ``full(cfg, tl)`` adds the rule's algorithmic memory and compute terms to ``tl``.
FullFn = Callable[[object, TermList], None]


@dataclass(frozen=True)
class RuleModel:
    name: str
    title: str
    full: FullFn
    not_modelled: tuple[str, ...] = ()


REGISTRY: dict[str, RuleModel] = {}


def register(model: RuleModel) -> RuleModel:
    """Add a rule model; a duplicate name raises ``ValueError``."""
    if model.name in REGISTRY:
        raise ValueError(f"rule {model.name!r} is already registered")
    REGISTRY[model.name] = model
    return model


def get_rule(name: str) -> RuleModel:
    from tpprof.errors import UserError

    key = str(name).strip().lower()
    if key not in REGISTRY:
        raise UserError("rule", f"{name!r} is not known", ", ".join(sorted(REGISTRY)))
    return REGISTRY[key]
