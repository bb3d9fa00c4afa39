"""Does a configuration learn at all, and can a device run its rule? (torch-free)

Three facts per point, each from one place:

* a rule's **locality class** (:data:`tpprof.analytic.rules.LOCALITIES`, given with its source
  in the rule registry), adjusted for the rule's options: ``trainable = "readout"`` leaves only
  the readout's delta rule (fully local); ``tess-authors-schedule`` with ``delay_ls = 0`` never
  back-propagates (fully local);
* the **conditions under which it learns nothing**: fewer than ``min_batch`` samples (TP: its
  contrastive loss is a B×B softmax, 1×1 at B = 1, identically zero); one class (every rule: a
  softmax cross-entropy over one class is identically zero); a rule's own (registry
  ``learns_nothing``, evaluated here);
* a device's **learning capability** (``Device.learning_capability``, sourced in the catalogue):
  none, readout (only the last layer learns on chip), local (on-chip plasticity only), any (a CPU
  runs any rule in software), unknown (treated as any, and said so).

:func:`learns` and :func:`eligible` work on one Config or, with int64 arrays for batch and
classes, on a grid group (:mod:`tpprof.analytic.grid`), so one rule serves both.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from tpprof.analytic.rules import LOCALITIES, LOCALITY_LABELS, get_rule
from tpprof.config import RuleSpec
from tpprof.device import LEARNING_CAPABILITIES, Device
from tpprof.errors import UserError

#: The locality classes a device capability can run (unknown: treated as any).
CAPABILITY_RUNS: dict[str, tuple[str, ...]] = {
    "none": (), "readout": ("local",), "local": ("local",), "any": LOCALITIES, "unknown": LOCALITIES,
}
CAPABILITY_LABELS: dict[str, str] = {
    "none": "no learning on chip (inference only)",
    "readout": "only the last layer learns on chip (trainable = readout)",
    "local": "local rules only (on-chip plasticity: no error carried back through layers or time)",
    "any": "any rule, back-propagation included (a general-purpose processor, in software)",
    "unknown": "not stated: any rule assumed",
}


def _no_backprop_step(rule: RuleSpec) -> bool:
    """The authors' TESS schedule with ``delay_ls = 0``: no back-prop step at all, so its hidden
    blocks learn locally and its readout, trained on the back-prop steps only, never does
    (docs/tess_authors.md D12)."""
    return rule.name == "tess-authors-schedule" and rule.delay_ls == 0


def locality(rule: RuleSpec) -> str:
    """The locality class of ``rule`` as configured (registry class, adjusted for its options)."""
    if rule.trainable == "readout":
        return "local"  # only the readout's delta rule (softmax(m) − c)ᵀ ε_L learns: layer-local
    if _no_backprop_step(rule):
        return "local"
    return get_rule(rule.name).locality


def min_batch(rule: RuleSpec) -> int:
    """The smallest batch at which ``rule``'s trained layers get a non-zero update.

    TP's hidden layers need B ≥ 2 (registry ``min_batch_source``); with ``trainable = readout``
    only the readout's per-sample delta rule learns, which needs one sample."""
    return 1 if rule.trainable == "readout" else get_rule(rule.name).min_batch


def learns(rule: RuleSpec, batch: Any, classes: Any) -> Any:
    """True where ``rule`` learns something at (batch, classes): B ≥ :func:`min_batch`, C ≥ 2,
    and none of its own conditions holds. Scalars or broadcasting int arrays."""
    ok = (np.asarray(batch) >= min_batch(rule)) & (np.asarray(classes) >= 2)
    if _no_backprop_step(rule):
        ok = np.zeros_like(ok)
    return bool(ok) if np.ndim(ok) == 0 else ok


def why_not(rule: RuleSpec, batch: int, classes: int) -> list[str]:
    """The reasons ``rule`` learns nothing at (batch, classes) (empty when it learns)."""
    out = []
    if classes < 2:
        out.append("C = 1: a softmax cross-entropy over one class is identically zero (the readout and every "
                   "label-projected signal get a zero update)")
    mb = min_batch(rule)
    if batch < mb:
        out.append(f"B = {batch} < {mb}, {rule.name}'s minimum batch: {get_rule(rule.name).min_batch_source}")
    if _no_backprop_step(rule):
        out.append("delay_ls = 0: the authors' loop trains the readout on the back-prop steps only, so it never "
                   "learns (the hidden blocks learn locally, but nothing maps them to the classes)")
    return out


def check_localities(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """Validated locality classes (None: no locality filter)."""
    if values is None:
        return None
    out = tuple(dict.fromkeys(str(v).strip().lower() for v in values if str(v).strip()))
    for v in out:
        if v not in LOCALITIES:
            raise UserError("locality", f"{v!r} is not known", ", ".join(LOCALITIES))
    return out or None


def device_runs(device: Device | None, rule: RuleSpec) -> bool:
    """Can ``device`` run ``rule`` as configured (its learning capability; no device: True)?"""
    if device is None:
        return True
    cap = device.learning_capability
    if cap == "readout" and rule.trainable != "readout":
        return False
    return locality(rule) in CAPABILITY_RUNS[cap]


def eligible(rule: RuleSpec, device: Device | None = None, localities: Sequence[str] | None = None) -> bool:
    """Is ``rule`` among the alternatives considered: run by ``device`` (when given) and of one
    of ``localities`` (when given)?"""
    return device_runs(device, rule) and (localities is None or locality(rule) in localities)


def alternatives_label(device: Device | None, localities: Sequence[str] | None) -> str:
    """One line saying which rules a "best alternative" was chosen among."""
    parts = []
    if device is not None:
        cap = device.learning_capability
        parts.append(f"the rules {device.name} can run — {CAPABILITY_LABELS[cap]}")
    if localities:
        parts.append("locality " + " or ".join(localities))
    return "best alternative among " + (" and ".join(parts) if parts else "every rule compared (no device, no "
                                                                           "locality filter)")


def rule_facts(name: str) -> dict[str, Any]:
    """The registry's learnability facts of one rule, for tables and JSON."""
    m = get_rule(name)
    return {"rule": m.name, "locality": m.locality, "locality_label": LOCALITY_LABELS[m.locality],
            "locality_source": m.locality_source, "min_batch": m.min_batch, "min_batch_source": m.min_batch_source,
            "learns_nothing": list(m.learns_nothing)}


if set(CAPABILITY_RUNS) != set(LEARNING_CAPABILITIES):  # pragma: no cover - a packaging bug
    raise RuntimeError("CAPABILITY_RUNS does not cover tpprof.device.LEARNING_CAPABILITIES")
__all__ = ["locality", "min_batch", "learns", "why_not", "eligible", "device_runs", "alternatives_label",
           "rule_facts", "check_localities", "CAPABILITY_RUNS", "CAPABILITY_LABELS"]
