"""TESS: temporally and spatially local learning (reference sheet §10; Apolinario, Roy, Frenkel).

Per hidden layer l, one path only:

* LIF state v, s at the neuron (pre-pool) shape, B·n_nrn each; the pooled spikes o_l of a
  pooled conv layer (B·n_out) are a transient of the step (read by z = B_l o and by layer l+1);
* trace_in = Σ λ_pre^{t−t′} o^{(l−1)}[t′] (B × n_in; recurrent layers add B × n_nrn, the same
  trace of s_l^{t−1} for R_l's input), needed only when α_pre ≠ 0 (causal term), and
  trace_out = Σ λ_post^{t−t′} Ψ(u[t′]) (B × n_nrn), needed only when α_post ≠ 0 (non-causal
  term) — TESS paper §10 and the TESS code (one presynaptic and one postsynaptic trace per
  layer); the learner (tpprof/snn/tess.py) keeps exactly these, and nothing when a factor is 0;
* the fixed binary matrix B_l (C × n_out; the TP paper's accounting treats it as C × H_l),
  stored, or regenerated from its square-wave definition (compute instead of memory);
* learning-signal generation (transient, layer by layer): z = B_l o → p = softmax(z) and
  p − t* (B × C, in place), m_l = B_lᵀ(p − t*) modulated into δ_causal = m ⊙ α_pre Ψ(u) and
  δ_noncausal = m ⊙ trace_out (B × n_nrn each);
* ΔW_l = δ_causalᵀ trace_in + δ_noncausalᵀ (α_post o^{(l−1)}).

Readout: trained by the same delta rule as TP's (§7) on a trace ε_L of the last layer's
(pooled) spikes, B × n_out_L, whatever the factors.
Compute per step: forward B·(nW·P + nR); LSG 2·B·C·n_out (z and m); updates B·(nW·P + nR) per term.
"""

from __future__ import annotations

from tpprof.analytic.rules import RuleModel, register
from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SURR_OPS, TRACE_OPS, add_forward_ops, add_lif_state, add_params,
    add_pooled_spikes, add_readout_delta, add_readout_state, ctx, fwd_macs, net_params, readout_phases,
)
from tpprof.analytic.terms import TermList
from tpprof.config import Config


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    B, C = c.B, c.C
    _lam_post, _lam_pre, a_post, a_pre = cfg.rule.tess_factors
    causal, noncausal = a_pre != 0.0, a_post != 0.0
    add_params(tl, c, net_params(c), readout_phases)
    for g in c.geo:
        l = g.index
        add_lif_state(tl, c, g, "")
        add_pooled_spikes(tl, c, g, "")
        if causal:
            tl.mem("trace_in", "traces", B * g.n_in,
                   "TESS §10: presynaptic trace Σ λ_pre^{t−t′} o^{(l−1)}[t′], B × n_in (causal term, α_pre ≠ 0)",
                   layer=l)
            if g.n_recurrent:
                tl.mem("trace_in (recurrent)", "traces", B * g.n_neurons,
                       "TESS §10: presynaptic trace Σ λ_pre^{t−t′} s_l^{t′−1} for R_l (the causal term of the "
                       "recurrent input), B × n_nrn (α_pre ≠ 0)", layer=l)
        if noncausal:
            tl.mem("trace_out", "traces", B * g.n_neurons,
                   "TESS §10: postsynaptic trace Σ λ_post^{t−t′} Ψ(u[t′]), B × n_nrn (non-causal, α_post ≠ 0)",
                   layer=l)
        if c.aux_stored:
            tl.mem("B_l (LSG matrix)", "aux", C * g.n_out,
                   "TESS §10: fixed binary learning-signal matrix, C × n_out (TP paper: C × H_l)", layer=l)
        else:
            tl.ops("regenerate B_l", 0, 2 * C * g.n_out,
                   "TESS §10: square-wave columns regenerated for z and m (aux='regenerated')", layer=l)
        phase = (f"loss:{l}",)
        tl.mem("p − t* (LSG error)", "loss_buffers", B * C,
               "TESS §10: z = B_l o, p = softmax(z), p − t*, B × C in place", layer=l, phases=phase)
        if causal:
            tl.mem("δ causal", "loss_buffers", B * g.n_neurons,
                   "TESS §10: m_l ⊙ α_pre Ψ(u), m_l = B_lᵀ(p − t*) un-pooled, B × n_nrn", layer=l, phases=phase)
        if noncausal:
            tl.mem("δ non-causal", "loss_buffers", B * g.n_neurons,
                   "TESS §10: m_l ⊙ trace_out, B × n_nrn", layer=l, phases=phase)
        add_forward_ops(tl, c, g, "")
        n_pre = (g.n_in + (g.n_neurons if g.n_recurrent else 0)) * causal
        tl.ops("traces", 0, TRACE_OPS * B * (n_pre + g.n_neurons * noncausal) + SURR_OPS * B * g.n_neurons,
               "TESS §10: trace_in, trace_out, Ψ(u)", layer=l)
        tl.ops("learning signal z, m", 2 * B * C * g.n_out, 5 * B * C + 2 * B * g.n_neurons,
               "TESS §10: z = B_l o and m = B_lᵀ(p − t*), B·C·n_out MACs each", layer=l)
        tl.ops("weight update", (causal + noncausal) * fwd_macs(c, g), 0,
               "TESS §10: one outer product per term, B·(nW·P + nR) MACs", layer=l)
    add_readout_state(tl, c)
    tl.mem("ε_L (readout input trace)", "traces", B * c.n_out_last,
           "§7: the readout's delta rule (the one tpprof uses for every local rule) reads a trace of the last "
           "hidden (pooled) spikes, B × n_out_L")
    add_readout_delta(tl, c)


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "TESS's published code pools activations to p×p before B_l; tpprof uses B_l at C × n_out as the TP paper does",
    "conv layers: the pooled-shape m_l before un-pooling (B × n_out)",
)

register(RuleModel("tess", "TESS", full_terms, NOT_MODELLED))
