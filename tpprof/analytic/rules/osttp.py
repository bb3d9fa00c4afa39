"""OSTTP (Ortner, Pes et al. 2023): OSTL in time, DRTP-style fixed target projection in space.

Per hidden layer: LIF state; per-synapse, per-sample eligibility B·(nW + nR) (Table 3: LH²);
a fixed random C × n_out target projection (Table 3 aux: LOH) that turns the label into the
layer's learning signal (B × n_nrn, transient) — no weight transport, no update locking.
"""

from __future__ import annotations

from tpprof.analytic.rules import RuleModel, register
from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SPIKES_WHY, add_forward_ops, add_lif_state, add_params, add_pooled_spikes,
    add_readout_delta, add_readout_state, ctx, net_params, readout_phases,
)
from tpprof.analytic.rules._local import feedback_matrix, learning_signal, presyn_trace, synapse_eligibility
from tpprof.analytic.terms import TermList
from tpprof.config import Config


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    src = "OSTTP (Ortner, Pes et al. 2023)"
    add_params(tl, c, net_params(c), readout_phases)
    for g in c.geo:
        add_lif_state(tl, c, g, "", SPIKES_WHY)
        add_pooled_spikes(tl, c, g, "")
        presyn_trace(tl, c, g, src)
        synapse_eligibility(tl, c, g, src)
        feedback_matrix(tl, c, g, src + ", target projection")
        learning_signal(tl, c, g, src)
        add_forward_ops(tl, c, g, "")
    add_readout_state(tl, c)
    tl.mem("ε_L (readout input trace)", "traces", c.B * c.n_out_last,
           "§7: the readout's delta rule reads a trace of the last hidden spikes, B × n_out_L")
    add_readout_delta(tl, c)


NOT_MODELLED = COMMON_NOT_MODELLED + ("modelled at the depth of the paper's Table 3",)

register(RuleModel("osttp", "OSTTP", full_terms, NOT_MODELLED))
