"""Building blocks for the rules modelled at the depth of the paper's Table 3 (e-prop, OSTL,
OSTTP, ETLP, OTTT): per-synapse eligibility traces, per-neuron traces, fixed feedback matrices
and the per-layer learning signal."""

from __future__ import annotations

from typing import Callable

from tpprof.analytic.rules._common import (
    TRACE_OPS, Ctx, add_forward_ops, add_lif_state, add_params, add_pooled_spikes, add_readout_delta,
    add_readout_state, ctx, fwd_macs, net_params, readout_phases,
)
from tpprof.analytic.terms import TermList
from tpprof.config import Config, LayerGeometry

LayerTerms = Callable[[TermList, Ctx, LayerGeometry], None]


def local_rule_terms(cfg: Config, tl: TermList, source: str, layer_terms: LayerTerms) -> None:
    """The skeleton every Table-3-depth rule shares: parameters; per hidden layer the LIF state,
    pooled spikes, a presynaptic trace, the rule's own ``layer_terms`` and the forward pass; then
    the readout (integrator state, the trace ε_L its delta rule reads, §7, and its update).
    A frozen layer (``RuleSpec.trainable``) has no update: no presynaptic trace and none of the
    rule's own terms (eligibility, feedback matrix, learning signal), only its forward pass."""
    c = ctx(cfg)
    add_params(tl, c, net_params(c), readout_phases)
    for g in c.geo:
        add_lif_state(tl, c, g, "")
        add_pooled_spikes(tl, c, g, "")
        if c.trains(g.index):
            presyn_trace(tl, c, g, source)
            layer_terms(tl, c, g)
        add_forward_ops(tl, c, g, "")
    add_readout_state(tl, c)
    tl.mem("ε_L (readout input trace)", "traces", c.B * c.n_out_last,
           "§7: the readout's delta rule reads a trace of the last hidden spikes, B × n_out_L")
    add_readout_delta(tl, c)


def presyn_trace(tl: TermList, c: Ctx, g: LayerGeometry, source: str) -> None:
    """Filtered presynaptic spikes, B × n_in (+ B × n_nrn for R_l's input in recurrent layers)."""
    tl.mem("presynaptic trace", "traces", c.B * g.n_in, f"{source}: per presynaptic neuron, B × n_in", layer=g.index)
    if g.n_recurrent:
        tl.mem("presynaptic trace (recurrent)", "traces", c.B * g.n_neurons,
               f"{source}: trace of s_l^{{t−1}} for R_l, B × n_nrn", layer=g.index)
    tl.ops("presynaptic trace", 0, TRACE_OPS * c.B * (g.n_in + (g.n_neurons if g.n_recurrent else 0)), source,
           layer=g.index)


def synapse_eligibility(tl: TermList, c: Ctx, g: LayerGeometry, source: str) -> None:
    """One eligibility value per synapse and sample: B·(nW + nR) (Table 3: LH²)."""
    n = c.B * (g.n_weights + g.n_recurrent)
    tl.mem("eligibility (per synapse)", "traces", n,
           f"{source}: per synapse and sample, B·(nW + nR) (paper Table 3: LH²)", layer=g.index)
    tl.ops("eligibility update", fwd_macs(c, g), TRACE_OPS * n,
           f"{source}: ψ ⊗ presynaptic trace, B·(nW·P + nR) MACs, then decay", layer=g.index)
    tl.ops("gradient Σ_b L·e", n, 0, f"{source}: learning signal × eligibility, B·(nW + nR) MACs", layer=g.index)


def feedback_matrix(tl: TermList, c: Ctx, g: LayerGeometry, source: str) -> None:
    """A fixed random C × n_out feedback / target-projection matrix (Table 3: aux LOH)."""
    if c.aux_stored:
        tl.mem("feedback matrix", "aux", c.C * g.n_out, f"{source}: fixed random C × n_out (Table 3 aux: LOH)",
               layer=g.index)
    else:
        tl.ops("regenerate feedback matrix", 0, c.C * g.n_out, f"{source}: regenerated from its seed", layer=g.index)


def learning_signal(tl: TermList, c: Ctx, g: LayerGeometry, source: str) -> None:
    """Per-layer learning signal, B × n_nrn, live while layer l is updated."""
    tl.mem("learning signal", "loss_buffers", c.B * g.n_neurons, f"{source}: B × n_nrn", layer=g.index,
           phases=(f"loss:{g.index}",))
    tl.ops("learning signal", c.B * c.C * g.n_out, 2 * c.B * g.n_neurons,
           f"{source}: output error projected to the layer, B·C·n_out MACs", layer=g.index)
