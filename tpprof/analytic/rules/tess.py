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

``cfg.rule.flavour == "authors"`` (and the rule tess-authors-schedule) models the authors' code
instead (:func:`authors_terms`, docs/tess_authors.md): B_l is C × D_l with D_l = C_l·p_l² after
their adaptive average pool (D7) and regenerated at every call (D8: a transient C × D_l, no aux
held); both traces are kept whatever the factors (D10); no spikes are kept between steps (D11);
the conv gains γ_l (C_out) and the readout bias b (C) are parameters; gradients are summed over
the T steps and applied once per mini-batch (D4: persistent accumulators); the readout is a
per-step cross-entropy on z^t = W_out o_L + b (D3), and Σ_t z^t (B × C) is kept for the prediction.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, LIF_OPS, SURR_OPS, TRACE_OPS, Param, add_forward_ops, add_lif_state, add_params,
    add_pooled_spikes, add_readout_delta, add_readout_state, ctx, fwd_macs, net_params, readout_phases,
)
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import Config, NetSpec


def tess_authors_lls_pool(net: NetSpec) -> tuple[int | None, ...]:
    """Per hidden layer, the side p of the adaptive average pool applied to the block's output
    before B_l in the authors' code (``compute_LLS``; VGG-9: 4, 2, 2, 2, 2, 2, 2, 1): the first
    conv layer 4, a conv layer that is the last hidden layer 1, other conv layers 2; dense
    layers None (no pooling: their repository has no dense TESS model, tpprof uses the width)."""
    n = len(net.layers)
    return tuple(None if layer.kind != "conv" else 4 if i == 0 else 1 if i == n - 1 else 2
                 for i, layer in enumerate(net.layers))


def tess_authors_lls_size(net: NetSpec) -> tuple[int, ...]:
    """D_l = C_l · p_l² (conv) or n_out_l (dense): the width of B_l in the authors' code."""
    return tuple(g.n_out if p is None else g.out_shape[0] * p * p
                 for g, p in zip(net.geometry(), tess_authors_lls_pool(net)))


def full_terms(cfg: Config, tl: TermList) -> None:
    if cfg.rule.flavour == "authors":
        authors_terms(cfg, tl, schedule=False)
        return
    c = ctx(cfg)
    B, C = c.B, c.C
    _lam_post, _lam_pre, a_post, a_pre = cfg.rule.tess_factors
    causal, noncausal = a_pre != 0.0, a_post != 0.0
    add_params(tl, c, net_params(c), readout_phases)
    for g in c.geo:
        l = g.index
        add_lif_state(tl, c, g, "")
        add_pooled_spikes(tl, c, g, "")
        add_forward_ops(tl, c, g, "")
        if not c.trains(l):  # frozen (RuleSpec.trainable): no traces, B_l, signal or update
            continue
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
        if g.n_recurrent:
            # R_l s_l^{t−1} needs every previous spike while s_l^t is formed, and the non-causal R_l term
            # (δ_ncᵀ s^{t−1}) and the recurrent trace read them after: a copy held through layer l's phase
            tl.mem("s^{t−1}", "neuron_state", B * g.n_neurons,
                   "TESS §10 with R_l: previous spikes s_l^{t−1}, B × n_nrn, held from layer l's forward (R_l s^{t−1}) "
                   "to its R_l update, while s_l^t exists", layer=l, phases=phase)
        tl.mem("p − t* (LSG error)", "loss_buffers", B * C,
               "TESS §10: z = B_l o, p = softmax(z), p − t*, B × C in place", layer=l, phases=phase)
        if causal:
            tl.mem("δ causal", "loss_buffers", B * g.n_neurons,
                   "TESS §10: m_l ⊙ α_pre Ψ(u), m_l = B_lᵀ(p − t*) un-pooled, B × n_nrn", layer=l, phases=phase)
        if noncausal:
            tl.mem("δ non-causal", "loss_buffers", B * g.n_neurons,
                   "TESS §10: m_l ⊙ trace_out, B × n_nrn", layer=l, phases=phase)
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


def authors_params(cfg: Config) -> list[Param]:
    """W_l (+ γ_l, C_out, for standardised conv layers), W_out and the readout bias b (C)."""
    c = ctx(cfg)
    out: list[Param] = []
    for p in net_params(c):
        out.append(p)
        key, _n, layer, _src = p
        if key == "W" and layer is not None:
            spec = cfg.net.layers[layer - 1]
            if spec.kind == "conv" and spec.weight_std:
                out.append(("gain γ", c.geo[layer - 1].out_shape[0], layer,
                            "TESS code, Conv2dSTDP.gain: learnable gain of the weight standardisation, C_out (D5)"))
    out.append(("b_out", c.C, None, "TESS code, VGGConvModel.linear = nn.Linear(…, bias=True): readout bias, C (D3)"))
    return out


def backward_phases(c, l: int) -> tuple[str, ...]:
    """Back-prop step, processing layers L … 1: what layer l keeps for it is live while layers
    L … l are processed. Layer j has two moments: ``backward:j`` (its weight update, g_s and both
    δ) and, for j ≥ 2, ``backward-in:j`` (g_s and ∂L/∂a_{j−1}, after the δ are freed)."""
    return tuple(p for j in range(l, c.L + 1) for p in ((f"backward:{j}", f"backward-in:{j}") if j >= 2
                                                          else (f"backward:{j}",)))


def authors_terms(cfg: Config, tl: TermList, schedule: bool) -> None:
    """The authors' TESS (flavour "authors"); ``schedule``: their training loop (D12), whose last
    delay_ls steps back-propagate the readout's cross-entropy through all blocks."""
    c = dataclasses.replace(ctx(cfg), cadence="sequence")  # D4: one optimiser step per mini-batch
    B, C, T = c.B, c.C, c.T
    pools = tess_authors_lls_pool(cfg.net)
    sizes = tess_authors_lls_size(cfg.net)
    add_params(tl, c, authors_params(cfg), readout_phases)
    bp = schedule and cfg.rule.delay_ls > 0
    f_bp = np.minimum(cfg.rule.delay_ls, T) / T if schedule else 0.0  # fraction of back-prop steps
    f_loc = 1.0 - f_bp
    loc = 1  # the local phases are counted even when delay_ls ≥ T leaves no local step (an upper bound)
    for g, p, D in zip(c.geo, pools, sizes):
        l = g.index
        n, no = g.n_neurons, g.n_out
        lsg, upd = f"lsg:{l}", f"loss:{l}"  # forming the learning signal; the weight update
        both = (lsg, upd)
        nxt = (f"lsg:{l + 1}", f"loss:{l + 1}") if l < c.L else ("readout",)
        tl.mem("v", "neuron_state", B * n, "TESS code, Conv2dSTDP/LinearSTDP.u: membrane, B × n_nrn", layer=l)
        tl.mem("s (this step's spikes)", "neuron_state", B * n,
               "TESS code: spikes are not kept between steps (the reset is applied at once, D11); s^t is layer "
               "l+1's input (or pooled first) within the step, B × n_nrn", layer=l,
               phases=both if no != n else both + nxt)
        if no != n:
            tl.mem("pooled s", "neuron_state", B * no,
                   "§3: pooled spikes o_l = pool(s_l), B × n_out: the LLS input and layer l+1's input (or the "
                   "readout's); a transient of the step", layer=l, phases=both + nxt)
        tl.mem("trace_in", "traces", B * g.n_in,
               "TESS code, Conv2dSTDP.trace_in: λ_pre x̄ + a_{l−1}, B × n_in, kept whatever α_pre (D10)", layer=l)
        tl.mem("trace_out", "traces", B * n,
               "TESS code, Conv2dSTDP.trace_out: λ_post e + Ψ, B × n_nrn, kept whatever α_post (D10)", layer=l)
        tl.mem("Ψ(u)", "loss_buffers", B * n, "TESS code, STDPConv2dGrad: surrogate of this step, B × n_nrn",
               layer=l, phases=both)
        tl.mem("B_l (regenerated)", "aux", loc * C * D,
               "TESS code, compute_LLS → generate_frequency_matrix: sign(sin(f_c j))/D_l regenerated at every call "
               "(D8), C × D_l with D_l = C_l·p_l² after the adaptive pool (D7)", layer=l, phases=(lsg,))
        if p is not None:
            tl.mem("h (LLS-pooled output)", "loss_buffers", loc * B * D,
                   "TESS code, compute_LLS: adaptive_avg_pool2d(o, p_l), B × D_l (D7)", layer=l, phases=(lsg,))
        tl.mem("p − t* (LSG error)", "loss_buffers", loc * B * C, "TESS code, compute_LLS: CE(h B_lᵀ), B × C",
               layer=l, phases=(lsg,))
        tl.mem("g_s (learning signal)", "loss_buffers", loc * B * n,
               "∂CE/∂s through both poolings, B × n_nrn", layer=l, phases=both)
        tl.mem("δ causal, δ non-causal", "loss_buffers", loc * 2 * B * n,
               "TESS code, STDPConv2dGrad.backward: g_s ⊙ Ψ and g_s ⊙ e^{t−1} (D1), 2 × B × n_nrn", layer=l,
               phases=(upd,))
        if bp:
            bw = backward_phases(c, l)
            tl.mem("saved s, Ψ, e^{t−1}", "saved", 3 * B * n,
                   "TESS code, back-prop step (D12): STDPConv2dGrad's saved Ψ and trace_out and the pool's input, "
                   "3 × B × n_nrn, until layer l is back-propagated", layer=l, phases=bw)
            if l >= 2 and c.geo[l - 2].n_out != c.geo[l - 2].n_neurons:
                tl.mem("saved input o_{l−1}", "saved", B * g.n_in,
                       "TESS code, back-prop step: the block input saved by STDPConv2dGrad, B × n_in (pooled "
                       "o_{l−1}; an unpooled layer's input is its s, counted there)", layer=l, phases=bw)
            tl.mem("back-prop g_s", "loss_buffers", B * n, "back-prop step: ∂L/∂s_l, B × n_nrn", layer=l,
                   phases=(f"backward:{l}",) + ((f"backward-in:{l}",) if l >= 2 else ()))
            tl.mem("back-prop δ causal, δ non-causal", "loss_buffers", 2 * B * n,
                   "back-prop step: the two trace-modulated deltas, 2 × B × n_nrn", layer=l,
                   phases=(f"backward:{l}",))
            if l >= 2:
                tl.mem("back-prop ∂L/∂a_{l−1}", "loss_buffers", B * g.n_in,
                       "back-prop step: ∂I/∂a (g_s ⊙ Ψ), formed after the δ are freed, B × n_in", layer=l,
                       phases=(f"backward-in:{l}",))
        add_forward_ops(tl, c, g, "")
        tl.ops("traces", 0, TRACE_OPS * B * (g.n_in + n) + SURR_OPS * B * n, "TESS code: trace_in, trace_out, Ψ",
               layer=l)
        tl.ops("regenerate B_l", 0, f_loc * 3 * C * D, "D8: B_l regenerated at every call (sin, sign, /D)", layer=l)
        tl.ops("learning signal", f_loc * 2 * B * C * D, f_loc * (5 * B * C + 2 * B * no),
               "compute_LLS: h B_lᵀ and (p − t*) B_l, B·C·D_l MACs each, on the local steps", layer=l)
        tl.ops("weight update", 2 * fwd_macs(c, g), 2 * B * n,
               "STDPConv2dGrad.backward: both terms are computed whatever the factors", layer=l)
        if bp and l >= 2:
            tl.ops("back-prop ∂a_{l−1}", f_bp * fwd_macs(c, g), f_bp * B * n,
                   "back-prop steps: conv2d_input / δ Ŵ, on delay_ls of T steps", layer=l)
    tl.mem("Σ_t z^t (prediction)", "neuron_state", B * C, "TESS code, do_epoch: pred += output, B × C")
    tl.mem("z^t, softmax(z^t) − c", "loss_buffers", 2 * B * C,
           "TESS code, do_epoch: per-step cross-entropy of the readout z^t = W_out o_L + b (D3), 2 × B × C",
           phases=("readout",))
    if bp:
        tl.mem("back-prop ∂L/∂z", "loss_buffers", B * C, "back-prop step: softmax(z^t) − c, held while the blocks "
               "are back-propagated, B × C", phases=backward_phases(c, 1))
        if c.geo[-1].n_out != c.geo[-1].n_neurons:
            tl.mem("back-prop o_L", "saved", B * c.n_out_last, "back-prop step: the readout's input, B × n_out_L",
                   phases=backward_phases(c, 1))
    tl.ops("readout", c.B * c.n_out_last * C * (1 + (1 if not schedule else f_bp)), LIF_OPS * B * C,
           "z^t = W_out o_L + b and, when the readout learns, (softmax(z) − c)ᵀ o_L")


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "flavour 'paper': TESS's published code pools activations to p×p before B_l; tpprof uses B_l at C × n_out as "
    "the TP paper does (flavour 'authors' models their pooled, regenerated B_l)",
    "conv layers: the pooled-shape m_l before un-pooling (B × n_out)",
)

register(RuleModel(
    "tess", "TESS", full_terms, NOT_MODELLED, locality="local",
    locality_source="TESS (Apolinario et al.; tpprof/snn/tess.py): each layer's learning signal is its own output "
                    "projected to the classes by a fixed random B_l against the label, times its own eligibility "
                    "traces; no error crosses a layer or a time step"))
