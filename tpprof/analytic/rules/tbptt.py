"""tbptt: truncated BPTT (tpprof/snn/bptt_variants.py), full model.

Window K = ``RuleSpec.window`` or min(T, 25): the sequence is cut into ⌈T/K⌉ windows; each
starts from the detached state and running readout m of the one before, is back-propagated
through its own ≤ K steps only (loss CE(m^{w1}, y)) and ends with one optimiser step. Its memory
is BPTT's (:mod:`tpprof.analytic.rules.bptt`, or bptt-compact's saving with ``compact``) over K
steps, plus the previous window's readout m^{w0} (B × C) that the window's m^t are summed onto:
flat in T once T ≥ K.
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
    tl.mem("m^{w0} (readout at the window start)", "neuron_state", c.B * c.C,
           f"{SRC}: the detached readout of the previous windows, B × C, onto which this window's W_out a_L^t "
           "are summed", phases=("backward",))


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "one optimiser step per window: the optimiser compute is amortised over K, not T",
    "autograd graph nodes and their metadata (small per op, × K)",
)

register(RuleModel("tbptt", "truncated BPTT", full_terms, NOT_MODELLED))
