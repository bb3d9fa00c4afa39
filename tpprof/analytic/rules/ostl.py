"""OSTL (Bohnstingl et al.), online spatio-temporal learning, at Table-3 depth.

Per hidden layer: LIF state (v, s); a per-synapse, per-sample eligibility B·(nW + nR) carried
through time (Table 3: LH²); the spatial part is exact backpropagation through the layers
within the step (weight transport, no auxiliary matrix): an adjoint B × n_nrn per layer, live
during the step's backward pass. Readout: delta rule as §7.
"""

from __future__ import annotations

from tpprof.analytic.rules import RuleModel, register
from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SPIKES_WHY, add_forward_ops, add_lif_state, add_params, add_pooled_spikes,
    add_readout_delta, add_readout_state, ctx, fwd_macs, net_params, readout_phases,
)
from tpprof.analytic.rules._local import presyn_trace, synapse_eligibility
from tpprof.analytic.terms import TermList
from tpprof.config import Config


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    src = "OSTL (Bohnstingl et al.)"
    add_params(tl, c, net_params(c), readout_phases)
    for g in c.geo:
        add_lif_state(tl, c, g, "", SPIKES_WHY)
        add_pooled_spikes(tl, c, g, "")
        presyn_trace(tl, c, g, src)
        synapse_eligibility(tl, c, g, src)
        tl.mem("spatial adjoint", "loss_buffers", c.B * g.n_neurons,
               f"{src}: error backpropagated through the layers within the step, B × n_nrn",
               layer=g.index, phases=(f"loss:{g.index}",))
        add_forward_ops(tl, c, g, "")
        tl.ops("spatial backprop", fwd_macs(c, g) if g.index >= 2 else 0, 0,
               f"{src}: transposed-weight product within the step", layer=g.index)
    add_readout_state(tl, c)
    tl.mem("ε_L (readout input trace)", "traces", c.B * c.n_out_last,
           "§7: the readout's delta rule reads a trace of the last hidden spikes, B × n_out_L")
    add_readout_delta(tl, c)


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "modelled at the depth of the paper's Table 3: recurrent OSTL's full per-synapse Jacobian terms beyond "
    "one eligibility value per synapse are not counted",
)

register(RuleModel("ostl", "OSTL", full_terms, NOT_MODELLED))
