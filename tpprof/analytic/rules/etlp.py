"""ETLP (Quintana et al. 2024), event-based three-factor local plasticity, at Table-3 depth.

Per hidden layer: LIF state; per-neuron traces only (the paper's text: ETLP stores per-neuron
traces, O(LH)): a presynaptic trace (B × n_in) and a postsynaptic trace (B × n_nrn); a fixed
random C × n_out projection of the label (the third factor, DRTP-like); the learning signal
(B × n_nrn, transient). Readout: delta rule as §7.
"""

from __future__ import annotations

from tpprof.analytic.rules import RuleModel, register
from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SPIKES_WHY, TRACE_OPS, add_forward_ops, add_lif_state, add_params, add_pooled_spikes,
    add_readout_delta, add_readout_state, ctx, fwd_macs, net_params, readout_phases,
)
from tpprof.analytic.rules._local import feedback_matrix, learning_signal, presyn_trace
from tpprof.analytic.terms import TermList
from tpprof.config import Config


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    src = "ETLP (Quintana et al. 2024)"
    add_params(tl, c, net_params(c), readout_phases)
    for g in c.geo:
        add_lif_state(tl, c, g, "", SPIKES_WHY)
        add_pooled_spikes(tl, c, g, "")
        presyn_trace(tl, c, g, src)
        tl.mem("postsynaptic trace", "traces", c.B * g.n_neurons, f"{src}: per neuron, B × n_nrn", layer=g.index)
        feedback_matrix(tl, c, g, src + ", label projection")
        learning_signal(tl, c, g, src)
        add_forward_ops(tl, c, g, "")
        tl.ops("weight update", fwd_macs(c, g), TRACE_OPS * c.B * g.n_neurons,
               f"{src}: (signal ⊙ post trace)ᵀ pre trace, B·(nW·P + nR) MACs", layer=g.index)
    add_readout_state(tl, c)
    tl.mem("ε_L (readout input trace)", "traces", c.B * c.n_out_last,
           "§7: the readout's delta rule reads a trace of the last hidden spikes, B × n_out_L")
    add_readout_delta(tl, c)


NOT_MODELLED = COMMON_NOT_MODELLED + ("modelled at the depth of the paper's text (per-neuron traces, O(LH))",)

register(RuleModel("etlp", "ETLP", full_terms, NOT_MODELLED))
