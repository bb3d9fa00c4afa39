"""Traces Propagation (TP): full memory and compute model (reference sheet §2–8).

Per time step, for every hidden layer l (geometry from ``cfg.net.geometry()``):

* both paths (input, target) keep a membrane v and spikes s at the pre-pool neuron shape
  (B·n_nrn each) and a trace at the post-pool output shape (B·n_out each, Eqs. 11–12); the
  pooled spikes of a pooled conv layer (B·n_out per path) are a transient of the step, live
  while layers l and l+1 (or the readout) are processed;
* the target path enters layer 1 through the fixed S (C × n_nrn_1; conv: C → C_1·H·W), then
  the shared W_l (§4); the layer-0 target trace needs no tensor: the label is constant within a
  mini-batch and all state starts at 0, so ε̃_0^t = Σ_k β^k c = κ_t c with the scalar
  κ_t = β κ_{t−1} + 1, and y_1 (Eq. 15) is softmax of f(κ_t c_b, κ_t c_b′), from c cᵀ (distance:
  −κ_t √2 (1 − c_b·c_b′)). The labels are the target path's input, as x^t is the input path's,
  and an input of every rule: B integers suffice (S c is a column gather, c cᵀ a label
  equality), counted with the data (not modelled); the one-hot B × C copy the learner keeps
  for the mini-batch is an implementation term;
* the local loss of layer l is a B×B problem (Eqs. 13–15): z, y and softmax(z) are B×B each,
  live only while layer l's loss is computed (losses in sequence: peak = largest layer's set);
* Eq. 18: δ_l = ((softmax(z) − y) ε̃_l) ⊙ Θ′(u_l) and δ̃_l = ((softmax(z) − y)ᵀ ε_l) ⊙ Θ′(ũ_l)
  (B × n_nrn each; δ̃ whenever a trained matrix sees the target path: W_l for l ≥ 2, R_l of a
  recurrent layer — layer 1 included, since R_1 s̃_1^{t−1} drives the target path — and S when
  it is trained), then dW_l = δ_lᵀ s_{l−1} + δ̃_lᵀ s̃_{l−1} (second term l ≥ 2),
  dR_l = δ_lᵀ s_l^{t−1} + δ̃_lᵀ s̃_l^{t−1}, dS = δ̃_1ᵀ c.

Class-deduplicated target path (``target_rows="classes"``, tpprof/snn/tp.py): every sample
of a class has the same target-path state, so ṽ_l, s̃_l, ε̃_l (and δ̃_l, the pooled target
spikes) are held for K rows, one per class present in the mini-batch, and z, y, softmax(z)
are B × K (y from a K × K similarity, log n_k added); the updates are the same exactly. K
is the number of distinct labels of a mini-batch, known only with the data: the model
takes the worst case K = min(B, C) (every class present, or every sample distinct).

Compute per step: forward B·(nW·P + nR) MACs per path (layer 1 target: B·C·n_nrn_1 for S c),
similarity z: B²·n_out, distance f for y: B²·n_prev (n_prev = n_out_{l−1}; for l = 1 the
label Gram c cᵀ, B²·C), Eq. 18: B²·n_out per B×B product (one, or two with δ̃), and for the
weight gradients B·nW·P per W_l term plus B·nR per R_l term.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SPIKES_WHY, SURR_OPS, TRACE_OPS, add_forward_ops, add_lif_state, add_params,
    add_pooled_spikes, add_readout_delta, add_readout_state, ctx, net_params, next_phase, positions, readout_phases,
)
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import Config


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    B, C = c.B, c.C
    train_s = cfg.rule.train_s
    n1 = c.geo[0].n_neurons
    dedup = cfg.rule.target_rows == "classes"
    # target-path rows: B (the paper's), or K = min(B, C), the worst case of the classes present
    Kt = np.minimum(B, C) if dedup else B
    K_WHY = ("K = min(B, C) rows: one per class present in the mini-batch (target_rows='classes'; "
             "the model takes the worst case, every class present or every sample distinct)")
    params = net_params(c)
    if train_s:
        params.insert(0, ("S", C * n1, 1, "§4: label projection S, C × n_nrn_1, trained (train_s)"))
    add_params(tl, c, params, readout_phases)

    # flavour "authors" D1 (docs/tp_authors.md): a recurrent layer 1's target path has its own
    # fixed random R̃_1 (H_1 × H_1, stored), and R_1 sees only the input path.
    authors = cfg.rule.flavour == "authors"
    # every hidden layer frozen (trainable = "readout"): no local loss, so no target path at all
    # (tpprof/snn/tp.py allocates K = 0 target rows and no fixed S / R̃_1); only the readout learns
    no_target = c.frozen == c.L
    d1 = authors and c.geo[0].n_recurrent > 0 and not no_target
    if d1:
        tl.mem("R̃_1 (target-path recurrent, fixed)", "aux", c.geo[0].n_recurrent,
               "flavour 'authors' D1: the layer-1 target path's own fixed random recurrent matrix, H_1 × H_1 "
               "(lollopes/traces_propagation models/tp_mlp.py, TP_MLP.target_propagator)", layer=1)

    # Fixed label projection S (not a parameter unless trained).
    if not train_s and not no_target:
        if c.aux_stored:
            tl.mem("S (label projection)", "aux", C * n1,
                   "§4: fixed random S, C × n_nrn_1 (conv: C × C_1·H·W)", layer=1)
        else:
            tl.ops("regenerate S rows", 0, np.minimum(B, C) * n1,
                   "§4: S regenerated from its seed (aux='regenerated'): rows of the batch's labels", layer=1)

    # ε̃_0 = κ_t c (module docstring): a scalar, no tensor; its update is one multiply-add per step.
    tl.ops("label-trace scale κ_t", 0, TRACE_OPS, "Eq. 12 layer 0 with a constant label: ε̃_0 = κ_t c, "
           "κ_t = β κ_{t−1} + 1 (one scalar)", layer=0)

    for g in c.geo:
        l = g.index
        for path in ("input", "target"):
            if path == "target" and no_target:
                continue
            if path == "target" and dedup:
                _target_state_k(tl, c, g, Kt, K_WHY)
                continue
            add_lif_state(tl, c, g, path)
            add_pooled_spikes(tl, c, g, path)
        if c.trains(l) or l == c.L:  # a frozen layer's ε_l is read by no loss (ε_L: the readout's)
            tl.mem("ε (input trace)", "traces", B * g.n_out, "Eq. 11: ε_l, B × n_out (post-pool)", layer=l)
        if not no_target and (c.trains(l) or l == c.frozen):  # ε̃_F: layer F+1's y (Eq. 15)
            tl.mem("ε̃ (target trace)", "traces", Kt * g.n_out, f"Eq. 12: ε̃_l, K × n_out (post-pool); {K_WHY}"
                   if dedup else "Eq. 12: ε̃_l, B × n_out (post-pool)", layer=l)

        phase = (f"loss:{l}",)
        if g.n_recurrent:
            # R_l s_l^{t−1} and dR_l = δᵀ s^{t−1} + δ̃ᵀ s̃^{t−1} read the previous spikes after s_l^t is formed
            # (s^t is needed at the same time: u = v + v_th s for Θ′(u), the next layer's input), so the
            # previous spikes of both paths are a copy held while layer l is processed
            tl.mem("s^{t−1} (input path)", "neuron_state", B * g.n_neurons,
                   "Eq. 1 and Eq. 18: previous spikes s_l^{t−1}, B × n_nrn, held from layer l's forward (R_l s^{t−1}) "
                   "to its dR_l, while s_l^t exists", layer=l, phases=phase)
            tl.mem("s^{t−1} (target path)", "neuron_state", Kt * g.n_neurons,
                   "Eq. 1 and Eq. 18: previous target-path spikes s̃_l^{t−1}, B (dedup: K) × n_nrn, held from the "
                   "target forward to dR_l", layer=l, phases=phase)
        # Eq. 18's target-path term is needed wherever a trained matrix sees the target path:
        # W_l for l ≥ 2 (shared), R_l of any recurrent layer (layer 1 included), S when trained.
        w_terms = 2 if l >= 2 else 1
        r_terms = (1 if d1 and l == 1 else 2) if g.n_recurrent else 0
        two_terms = l >= 2 or (g.n_recurrent > 0 and not (d1 and l == 1)) or (train_s and l == 1)
        if c.trains(l):  # a frozen layer forms no local loss
            if dedup:
                tl.mem("z (similarity)", "loss_buffers", B * Kt,
                       f"Eq. 14: z_l = ε_l ε̃_Kᵀ + log n_k, B × K; {K_WHY}", layer=l, phases=phase)
                tl.mem("y (soft targets)", "loss_buffers", B * Kt,
                       "Eq. 15: y = softmax_k(f(ε̃_{l−1,K}) + log n_k) (K × K), row k(b) per sample: B × K",
                       layer=l, phases=phase)
                tl.mem("softmax(z)", "loss_buffers", B * Kt,
                       "Eq. 13: softmax(z_l + log n_k), B × K; G_K = (softmax − y)/B in place for Eq. 18",
                       layer=l, phases=phase)
            else:
                tl.mem("z (similarity)", "loss_buffers", B * B, "Eq. 14: z_l = ε_l ε̃_lᵀ, B × B", layer=l, phases=phase)
                tl.mem("y (soft targets)", "loss_buffers", B * B,
                       "Eq. 15: y_l = softmax(f(ε̃_{l−1}, ε̃_{l−1})), B × B (distance computed in place)",
                       layer=l, phases=phase)
                tl.mem("softmax(z)", "loss_buffers", B * B,
                       "Eq. 13: softmax(z_l), B × B; (softmax(z) − y)/B formed in place for Eq. 18", layer=l,
                       phases=phase)
            tl.mem("δ (input-path signal)", "loss_buffers", B * g.n_neurons,
                   "Eq. 18 first term: ((softmax(z) − y) ε̃_l) ⊙ Θ′(u_l), B × n_nrn (un-pooled)", layer=l, phases=phase)
            if two_terms:
                tl.mem("δ̃ (target-path signal)", "loss_buffers", Kt * g.n_neurons,
                       "Eq. 18 second term: ((softmax(z) − y)ᵀ ε_l) ⊙ Θ′(ũ_l), B (dedup: K) × n_nrn "
                       "(needed by W_l for l ≥ 2, "
                       "R_l of a recurrent layer, S when trained)",
                       layer=l, phases=phase)

        # ---- compute ----
        add_forward_ops(tl, c, g, "input path")
        if no_target:
            tl.ops("traces ε", 0, TRACE_OPS * B * g.n_out * (l == c.L), "Eq. 11", layer=l)
            continue
        ct = replace(c, B=Kt)  # the target path runs on Kt rows
        add_forward_ops(tl, ct, g, "target path", macs=Kt * C * n1 + Kt * g.n_recurrent if l == 1 else None)
        tl.ops("traces ε, ε̃", 0, TRACE_OPS * (B + Kt) * g.n_out, "Eqs. 11–12", layer=l)
        if not c.trains(l):
            continue
        n_prev = C if l == 1 else c.geo[l - 2].n_out
        rows = "B×K" if dedup else "B×B"
        tl.ops("similarity z", B * Kt * g.n_out, 0, f"Eq. 14: {rows}·n_out MACs", layer=l)
        tl.ops("distance f for y", Kt * Kt * n_prev, 6 * Kt * Kt + (B * Kt if dedup else 0),
               "Eq. 15: B²·n_prev MACs (dedup: K²·n_prev, then row k(b) per sample) (negative Euclidean "
               "distance via Gram; layer 1: the label Gram c cᵀ scaled by κ_t), softmax", layer=l)
        tl.ops("softmax(z) − y", 0, 5 * B * Kt, f"Eq. 13 ({rows})", layer=l)
        k_terms = 2 if two_terms else 1
        tl.ops("Eq. 18 B×B products", k_terms * B * Kt * g.n_out,
               (SURR_OPS + 1) * (B + (Kt if two_terms else 0)) * g.n_neurons,
               f"Eq. 18: (softmax(z) − y) ε̃_l and its transpose with ε_l, {rows}·n_out MACs each; ⊙ Θ′(u)",
               layer=l)
        P = positions(g)
        tl.ops("Eq. 18 weight gradient",
               (B + (Kt if l >= 2 else 0)) * g.n_weights * P + (B + (Kt if r_terms == 2 else 0)) * g.n_recurrent
               * (r_terms > 0), 0,
               "Eq. 18: δᵀ s_{l−1} (+ δ̃ᵀ s̃_{l−1} for l ≥ 2), B·nW·P MACs per term (target term: K rows with "
               "dedup); recurrent δᵀ s_l^{t−1} + δ̃ᵀ s̃_l^{t−1}, B·nR (+ K·nR) MACs", layer=l)
        if train_s and l == 1:
            tl.ops("S gradient", Kt * C * n1, 0, "δ̃_1ᵀ c, B (dedup: K)·C·n_nrn_1 MACs", layer=1)

    add_readout_state(tl, c)
    add_readout_delta(tl, c)


def _target_state_k(tl: TermList, c, g, K, why: str) -> None:
    """Target-path ṽ_l, s̃_l (K × n_nrn each) and pooled s̃_l (K × n_out, a transient), K rows."""
    l = g.index
    tl.mem("v (target path)", "neuron_state", K * g.n_neurons, f"Eq. 1: membrane potential, K × n_nrn; {why}",
           layer=l)
    tl.mem("s (target path)", "neuron_state", K * g.n_neurons, f"{SPIKES_WHY}; K × n_nrn: {why}", layer=l)
    if g.n_out != g.n_neurons:
        tl.mem("pooled s (target path)", "neuron_state", K * g.n_out,
               f"§3: pooled target spikes, K × n_out, a transient of the step; {why}", layer=l,
               phases=(f"loss:{l}", next_phase(c, l)))


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "ε̃_0 (layer-0 target trace): held as the scalar κ_t (ε̃_0 = κ_t c, constant label within a mini-batch), "
    "O(1); the labels c are the target path's input (the learner's one-hot B × C copy is an implementation term)",
    "ε_0 (input-path layer-0 trace, B × F): defined in §3 and updated in §8, but read by no TP loss "
    "(Eqs. 13–15 use ε̃_0 only), so not algorithmic memory; a learner that keeps it shows it as implementation",
    "conv layers: the pooled-shape intermediate of δ before un-pooling (B × n_out, smaller than δ)",
    "the B vector of squared norms in the distance of Eq. 15 (O(B))",
)

register(RuleModel(
    "tp", "Traces Propagation", full_terms, NOT_MODELLED, locality="local",
    locality_source="Traces Propagation (reference §3–8, tpprof/snn/tp.py): layer l's loss E_l (Eq. 13–15) reads "
                    "its own input and target traces and layer l−1's target traces, all constants of E_l^t; "
                    "no error crosses a layer or a time step, and no readout error reaches the hidden layers",
    min_batch=2,
    min_batch_source="Eq. 13–15: the contrastive loss is a softmax over the mini-batch's target rows (B, or the "
                     "K ≤ min(B, C) classes present with target_rows = classes); at B = 1 it is a 1×1 softmax, "
                     "identically zero, and no hidden weight moves (only the readout's delta rule learns). "
                     "Likewise any mini-batch whose samples share one class (equal target rows: K = 1)",
    learns_nothing=("a mini-batch of one class (K = 1 target row) gives every hidden layer a zero update",)))
