"""tpprof's analytic memory and compute model (pure Python + numpy; never imports torch).

    from tpprof.analytic import estimate
    bd = estimate(make_config("shd", "tp"), accounting="full")   # "full" | "algorithm" | "paper" | "paper+s"
    bd.total_bytes, bd.peak_bytes, bd.by_category(), bd.macs_per_step, bd.not_modelled

``full``: every algorithmic term of the rule (weights, gradients, optimiser state, neuron state,
traces, auxiliary matrices, loss buffers, saved tensors) plus the PyTorch implementation's
overheads (:mod:`tpprof.analytic.implementation`). ``algorithm``: the same algorithmic terms
without the implementation's (no framework temporaries: what any implementation of the rule must
hold). ``paper`` / ``paper+s``: the paper's own state accounting (§9 / Table 3), labelled as such.
"""

from __future__ import annotations

from typing import Any

from tpprof.analytic.paper import PAPER_NOT_MODELLED, paper_terms
from tpprof.analytic.rules import REGISTRY, get_rule
from tpprof.analytic.terms import CATEGORIES, Breakdown, ComputeTerm, MemoryTerm, TermList
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


def estimate_grid(grid: Any, accounting: str = "full", *, implementation: bool = True,
                  at_peak: bool = False, budget_bytes: int | None = None, device: Any = None,
                  locality: Any = None) -> Any:
    """A tidy DataFrame for a :class:`tpprof.config.Grid`: one row per point (in the grid's
    order), one column per category; see :func:`tpprof.analytic.grid.estimate_grid` (``device``
    and ``locality`` limit the best-alternative columns to the rules the device runs / of those
    locality classes)."""
    from tpprof.analytic.grid import estimate_grid as _eg

    return _eg(grid, accounting, implementation=implementation, at_peak=at_peak, budget_bytes=budget_bytes,
               device=device, locality=locality)


__all__ = ["estimate", "estimate_grid", "breakdown", "CATEGORIES", "Breakdown", "MemoryTerm", "ComputeTerm", "ACCOUNTINGS",
           "ACCOUNTING_LABELS", "PAPER_ACCOUNTINGS", "RULES"]
