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


#: Locality classes, from most to least local (what a chip's on-chip learning can run):
#: ``local`` — each layer's update reads only its own inputs, state and traces and a signal
#: derived from the label (or broadcast to every layer): no error is carried back through
#: layers or time; ``time-local`` — online in time (nothing kept per past step) but the error
#: is back-propagated through the layers within a step (weight transport); ``through-time`` —
#: the error is back-propagated through the layers and the past steps (a temporal graph).
LOCALITIES: tuple[str, ...] = ("local", "time-local", "through-time")
LOCALITY_LABELS: dict[str, str] = {
    "local": "fully local (no error crosses a layer or a time step)",
    "time-local": "time-local, with spatial back-propagation within each step",
    "through-time": "back-propagation through layers and time",
}


@dataclass(frozen=True)
class RuleModel:
    """A rule's memory/compute model, and what it needs to learn at all.

    ``locality`` (:data:`LOCALITIES`) with ``locality_source`` (why, from the rule's equations);
    ``min_batch``: the smallest mini-batch at which its hidden layers receive a non-zero update,
    with ``min_batch_source``; ``learns_nothing``: other conditions under which it learns nothing
    (each a sentence; :mod:`tpprof.analytic.learnability` evaluates them per point).
    """

    name: str
    title: str
    full: FullFn
    not_modelled: tuple[str, ...] = ()
    locality: str = ""
    locality_source: str = ""
    min_batch: int = 1
    min_batch_source: str = "its learning signal is per sample: one sample gives a non-zero update"
    learns_nothing: tuple[str, ...] = ()


REGISTRY: dict[str, RuleModel] = {}


def register(model: RuleModel) -> RuleModel:
    """Add a rule model; a duplicate name raises ``ValueError``."""
    if model.name in REGISTRY:
        raise ValueError(f"rule {model.name!r} is already registered")
    if model.locality not in LOCALITIES or not model.locality_source:
        raise ValueError(f"rule {model.name!r} needs a locality in {LOCALITIES} with its source")
    REGISTRY[model.name] = model
    return model


def get_rule(name: str) -> RuleModel:
    from tpprof.errors import UserError

    key = str(name).strip().lower()
    if key not in REGISTRY:
        raise UserError("rule", f"{name!r} is not known", ", ".join(sorted(REGISTRY)))
    return REGISTRY[key]
