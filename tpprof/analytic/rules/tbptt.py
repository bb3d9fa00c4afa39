"""tbptt: truncated BPTT (tpprof/snn/bptt_variants.py), full model.

Window K = ``RuleSpec.window`` or min(T, 25): the sequence is cut into ⌈T/K⌉ windows; each
starts from the detached state and running readout m of the one before, is back-propagated
through its own ≤ K steps only (loss CE(m^{w1}, y)) and ends with one optimiser step. Its memory
is BPTT's (:mod:`tpprof.analytic.rules.bptt`, or bptt-compact's saving with ``compact``) over K
steps: flat in T once T ≥ K. The running readout m is summed onto in place (the window's loss
reads only m^{w1}); the learner's out-of-place sum also holds the previous window's m^{w0}
(B × C), an implementation term (:mod:`tpprof.analytic.implementation_family`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tpprof.analytic.rules import bptt as _bptt
from tpprof.analytic.rules._common import COMMON_NOT_MODELLED, ctx
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.rules.bptt_compact import compact_terms
from tpprof.analytic.terms import TermList
from tpprof.config import TBPTT_DEFAULT_WINDOW, Config

SRC = "tbptt (snn/bptt_variants.py)"


def window_len(cfg: Config, T: object) -> object:
    """K: RuleSpec.window or min(T, 25) (numpy, so T may be an array)."""
    w = cfg.rule.window
    return np.minimum(T, TBPTT_DEFAULT_WINDOW) if w is None else np.minimum(T, w)


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    K = window_len(cfg, c.T)
    (compact_terms if cfg.rule.compact else _bptt.full_terms)(cfg, tl, dataclasses.replace(c, T=K))


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "one optimiser step per window: the optimiser compute is amortised over K, not T",
    "autograd graph nodes and their metadata (small per op, × K)",
)

register(RuleModel("tbptt", "truncated BPTT", full_terms, NOT_MODELLED, locality="through-time",
                   locality_source="tbptt (tpprof/snn/bptt_variants.py): back-propagation through layers and the "
                                   "≤ K steps of each window"))
