"""ETLP (Quintana et al. 2024), event-based three-factor local plasticity, at Table-3 depth.

Per hidden layer: LIF state; per-neuron traces only (the paper's text: ETLP stores per-neuron
traces, O(LH)): a presynaptic trace (B × n_in) and a postsynaptic trace (B × n_nrn); a fixed
random C × n_out projection of the label (the third factor, DRTP-like); the learning signal
(B × n_nrn, transient). Readout: delta rule as §7.
"""

from __future__ import annotations

from functools import partial

from tpprof.analytic.rules._common import COMMON_NOT_MODELLED, Ctx, TRACE_OPS, fwd_macs
from tpprof.analytic.rules._local import feedback_matrix, learning_signal, local_rule_terms
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import LayerGeometry

SOURCE = "ETLP (Quintana et al. 2024)"


def _layer(tl: TermList, c: Ctx, g: LayerGeometry) -> None:
    tl.mem("postsynaptic trace", "traces", c.B * g.n_neurons, f"{SOURCE}: per neuron, B × n_nrn", layer=g.index)
    feedback_matrix(tl, c, g, SOURCE + ", label projection")
    learning_signal(tl, c, g, SOURCE)
    tl.ops("weight update", fwd_macs(c, g), TRACE_OPS * c.B * g.n_neurons,
           f"{SOURCE}: (signal ⊙ post trace)ᵀ pre trace, B·(nW·P + nR) MACs", layer=g.index)


NOT_MODELLED = COMMON_NOT_MODELLED + ("modelled at the depth of the paper's text (per-neuron traces, O(LH))",)

register(RuleModel("etlp", "ETLP", partial(local_rule_terms, source=SOURCE, layer_terms=_layer), NOT_MODELLED,
                   locality="local",
                   locality_source=f"{SOURCE}: per-neuron pre/post traces and a fixed random projection of the "
                                   "label as the third factor; no error crosses a layer or a time step"))
