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
    classes, steps, dtype_bytes) are int64 arrays (:mod:`tpprof.analytic.grid`).

    Sizes are Python ints for one Config, but numpy helpers (``np.maximum``, ``np.minimum``) turn
    them into int64: a size past 2^63 would raise ``OverflowError`` or wrap silently. Every numpy
    overflow is made an error here and refused in one line (no machine holds 2^63 bytes)."""
    import numpy as np

    try:
        with np.errstate(over="raise"):
            return _breakdown(cfg, accounting, implementation)
    except (OverflowError, FloatingPointError):
        raise UserError("net", INT64_PROBLEM, "a smaller net, batch, classes or steps") from None


#: The one-line problem of a configuration whose sizes leave the model's int64 arithmetic.
INT64_PROBLEM = "the configuration's sizes pass 2^63 (bytes or operations), beyond the model's int64 arithmetic"


def _breakdown(cfg: Any, accounting: str, implementation: bool) -> Breakdown:
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
        if cfg.rule.trainable != "all":
            not_modelled = not_modelled + (
                f"trainable = {cfg.rule.trainable}: frozen layers hold no gradient or optimiser state; TP with "
                "every hidden layer frozen no target path, TESS and the rules without a learner no traces for "
                "them, OTTT and the BPTT family no backward through them. Not modelled: the BPTT family's forward "
                "moment at the last step, which can exceed its backward when few layers learn (measured +6 % for "
                "bptt, +19 % for tbptt at trainable = readout on 40-64-48-32-10, B = 8, T = 10, CPU), and the "
                "authors' TESS frozen layers' traces (counted: an upper bound)",)
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
