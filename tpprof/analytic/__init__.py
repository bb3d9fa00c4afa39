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

from tpprof.analytic.model import (
    ACCOUNTING_LABELS, ACCOUNTINGS, PAPER_ACCOUNTINGS, breakdown, check_accounting, estimate,
)
from tpprof.analytic.terms import CATEGORIES, Breakdown, ComputeTerm, MemoryTerm
from tpprof.config import RULES


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


__all__ = ["estimate", "estimate_grid", "breakdown", "check_accounting", "CATEGORIES", "Breakdown", "MemoryTerm",
           "ComputeTerm", "ACCOUNTINGS", "ACCOUNTING_LABELS", "PAPER_ACCOUNTINGS", "RULES"]
