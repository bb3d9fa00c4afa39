"""The model's entry point for one configuration: :func:`estimate` (a Config → a Breakdown under
one accounting) and :func:`breakdown`, which :mod:`tpprof.analytic.grid` calls on array-valued
groups. Re-exported by :mod:`tpprof.analytic`; modules inside the package import it from here.
"""

from __future__ import annotations

from typing import Any

from tpprof.analytic.paper import PAPER_NOT_MODELLED, paper_terms
from tpprof.analytic.rules import REGISTRY, get_rule
from tpprof.analytic.terms import Breakdown, TermList
from tpprof.config import RULES, Config
from tpprof.errors import UserError

ACCOUNTINGS: tuple[str, ...] = ("full", "algorithm", "paper", "paper+s")
#: The paper's accountings: persistent state only (peak = total), no implementation terms.
PAPER_ACCOUNTINGS: tuple[str, ...] = ("paper", "paper+s")
#: One label per accounting, for every table, chart and help text that names one.
ACCOUNTING_LABELS: dict[str, str] = {
    "full": "tpprof full accounting: every term, PyTorch implementation temporaries included, peak over a step",
    "algorithm": "algorithm only: no framework temporaries; tpprof's algorithmic terms, peak over a step",
    "paper": "paper (reconstructed): TP = 2BLH, TESS = BLH + LCH",
    "paper+s": "paper + S: TP also stores its C×H label projection S",
}

if set(REGISTRY) != set(RULES):  # pragma: no cover - a packaging bug, caught by the tests too
    raise RuntimeError(f"analytic rule registry {sorted(REGISTRY)} does not match tpprof.config.RULES {sorted(RULES)}")


def estimate(cfg: Config, accounting: str = "full", *, implementation: bool = True) -> Breakdown:
    """Memory terms, peak, total and compute per step for one configuration.

    ``implementation=False`` (or ``accounting="algorithm"``) leaves out the implementation-overhead
    terms of the full model (the algorithmic memory alone). :func:`estimate_grid` evaluates the same terms on arrays.
    """
    return breakdown(cfg, accounting, implementation=implementation)


def breakdown(cfg: Any, accounting: str = "full", *, implementation: bool = True) -> Breakdown:
    """The rule's terms for ``cfg`` — a Config, or a grid group whose workload fields (batch,
    classes, steps, dtype_bytes) are int64 arrays (:mod:`tpprof.analytic.grid`)."""
    acc = check_accounting(accounting)
    model = get_rule(cfg.rule.name)
    tl = TermList(cfg.workload.dtype_bytes)
    if acc not in PAPER_ACCOUNTINGS:  # full or algorithm: the same algorithmic terms
        implementation = implementation and acc == "full"
        model.full(cfg, tl)
        terms = list(tl.terms)
        if implementation:
            from tpprof.analytic.implementation import implementation_terms

            terms += implementation_terms(cfg, tl.terms)
        not_modelled = model.not_modelled
        if not implementation:
            not_modelled = not_modelled + ("implementation overheads: framework temporaries, allocator rounding "
                                           "(algorithm only)",)
    else:
        paper_terms(cfg, tl, with_s=acc == "paper+s")
        # The compute of the paper accounting is the full model's (the paper gives orders only).
        model.full(cfg, full := TermList(cfg.workload.dtype_bytes))
        tl.compute = full.compute
        terms = list(tl.terms)
        not_modelled = PAPER_NOT_MODELLED + model.not_modelled
    return Breakdown(model.name, acc, tuple(terms), tuple(tl.compute), tuple(not_modelled),
                     steps=cfg.workload.steps, config=cfg if isinstance(cfg, Config) else None)


def check_accounting(accounting: str) -> str:
    acc = str(accounting).strip().lower()
    if acc not in ACCOUNTINGS:
        raise UserError("accounting", f"{accounting!r} is not known", ", ".join(ACCOUNTINGS))
    return acc
