"""bptt-ckpt: BPTT with time checkpointing (tpprof/snn/bptt_variants.py), full model.

k = ``RuleSpec.segment`` or ⌈√T⌉, n_seg = ⌈T/k⌉ segments. The no-graph forward keeps the
LIF state (v_l, s_l: 2·B·n_nrn per layer) at every segment start (n_seg states, the first
being the zero state); the segments are back-propagated one at a time, last first, each from
its kept state after a recompute with its graph. The largest moment is the backward of a full
segment of k steps: BPTT's terms over k steps (:mod:`tpprof.analytic.rules.bptt`, or
bptt-compact's saving with ``compact``), all n_seg kept states (held until the batch ends), and,
when a later segment exists, the adjoint of the segment's end state that it handed back
(∂E/∂v_l, B·n_nrn per layer; ∂E/∂s_l too where s_l^{t−1} is read: recurrent layers or the
paper's reset ordering). Memory O(n_seg·state + k·saved) ≈ O(√T); compute ≈ one extra forward
over the first T − k_last steps.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tpprof.analytic.rules import bptt as _bptt
from tpprof.analytic.rules._common import ctx, fwd_macs
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.rules.bptt_compact import compact_terms
from tpprof.analytic.terms import TermList
from tpprof.config import Config

BACKWARD = ("backward",)
SRC = "bptt-ckpt (snn/bptt_variants.py)"


def segment_len(cfg: Config, T: object) -> object:
    """k: RuleSpec.segment or ⌈√T⌉ (numpy, so T may be an array)."""
    seg = cfg.rule.segment
    return np.ceil(np.sqrt(T)) if seg is None else seg + 0 * T


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    T = c.T
    k = segment_len(cfg, T)
    n_seg = np.ceil(T / k)
    cs = dataclasses.replace(c, T=k)
    (compact_terms if cfg.rule.compact else _bptt.full_terms)(cfg, tl, cs)
    s_read = cfg.net.neuron.order == "paper"
    for g in c.geo:
        tl.mem("kept segment-start states (v, s) × ⌈T/k⌉", "saved", n_seg * 2 * c.B * g.n_neurons,
               f"{SRC}: the no-graph forward keeps (v_l, s_l) at each of the ⌈T/k⌉ segment starts (the first is "
               "the zero state), 2·B·n_nrn each, until the batch ends", layer=g.index, phases=BACKWARD)
        n_adj = 1 + (1 if (g.n_recurrent or s_read) else 0)
        tl.mem("end-state adjoint from the next segment", "loss_buffers",
               np.where(n_seg >= 2, n_adj * c.B * g.n_neurons, 0),
               f"{SRC}: ∂E/∂v_l of the segment's end state (and ∂E/∂s_l when s^{{t−1}} is read: recurrent layers, "
               "the paper's ordering), B × n_nrn each, handed back by the segment after it", layer=g.index,
               phases=BACKWARD)
        tl.ops("recompute forward", fwd_macs(c, g) * (n_seg - 1) * k / T, 0,
               f"{SRC}: every segment but the last is run twice (no-graph forward, recompute), amortised per step",
               layer=g.index)


NOT_MODELLED = _bptt.NOT_MODELLED + (
    "the input sequence must stay readable for the recompute (the data set / loader keeps it; "
    "only the recomputed segment's frames are counted)",
)

register(RuleModel("bptt-ckpt", "BPTT, time checkpointing", full_terms, NOT_MODELLED, locality="through-time",
                   locality_source="bptt-ckpt (tpprof/snn/bptt_variants.py): BPTT's gradient, recomputing segments "
                                   "of the unrolled graph: back-propagation through layers and time"))
