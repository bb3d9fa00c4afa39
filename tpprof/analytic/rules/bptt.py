"""BPTT with surrogate gradients: full memory and compute model (reference sheet §9).

Forward over T steps keeps, per layer, v and s (B·n_nrn), and saves for backward at every step:

* the layer's input s_{l−1}^t (B × n_in; x^t for l = 1), for dW_l = Σ_t δ_l^tᵀ s_{l−1}^t;
* the pre-reset potential u_l^t (B × n_nrn), for Θ′(u) in the backward pass;
* for max-pooled conv layers, the pool switches (B × n_out);
* the readout's input s_L^t (B × n_out_L).

Spikes are not saved a second time: s_l^t *is* layer l+1's input (counted there) and, in
recurrent layers, R_l s_l^{t−1} reads the tensor already saved at t−1. So

    saved = T · B · [Σ_l (n_in_l + n_nrn_l + [max-pool] n_out_l) + n_out_L]   (linear in T).

Backward: gradients (all parameters), the adjoints ∂E/∂v_l and ∂E/∂s_l carried through time
(B·n_nrn + B·n_out per layer), ∂E/∂m (B × C). Loss: cross-entropy on the readout m^T.
Compute: forward B·(nW·P + nR) per layer per step; backward ≈ 2× forward: a weight-gradient
product for every matmul plus an input-gradient product for every matmul but layer 1's.
BPTT updates once per sequence whatever the cadence setting.
"""

from __future__ import annotations

from tpprof.analytic.rules import RuleModel, register
from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SPIKES_WHY, SURR_OPS, add_forward_ops, add_lif_state, add_params, add_readout_state,
    ctx, fwd_macs, net_params,
)
from tpprof.analytic.terms import TermList
from tpprof.config import Config

BACKWARD = ("backward",)


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    B, C, T = c.B, c.C, c.T
    add_params(tl, c, net_params(c), lambda _layer: ("backward", "update"),
               once_per_sequence=True,
               grad_source="gradient of the sequence loss (one element per parameter element), accumulated "
                           "over the T steps during backward, applied once per mini-batch")
    for g in c.geo:
        l = g.index
        add_lif_state(tl, c, g, "", SPIKES_WHY)
        src_in = "x^t" if l == 1 else "s_{l−1}^t"
        tl.mem(f"saved input {src_in} × T", "saved", T * B * g.n_in,
               f"BPTT: layer input saved at each of T steps for dW_l, T·B·n_in", layer=l, phases=BACKWARD)
        tl.mem("saved u × T", "saved", T * B * g.n_neurons,
               "BPTT: pre-reset potential saved at each step for Θ′(u), T·B·n_nrn", layer=l, phases=BACKWARD)
        if g.out_shape != g.neuron_shape and cfg.net.layers[l - 1].pool == "max2":
            tl.mem("saved pool switches × T", "saved", T * B * g.n_out,
                   "BPTT: max-pool winner positions per step, T·B·n_out", layer=l, phases=BACKWARD)
        tl.mem("adjoint ∂E/∂v", "loss_buffers", B * g.n_neurons,
               "BPTT backward: membrane adjoint carried from t+1 to t, B × n_nrn", layer=l, phases=BACKWARD)
        tl.mem("adjoint ∂E/∂s", "loss_buffers", B * g.n_out,
               "BPTT backward: spike adjoint from layer l+1 / readout, B × n_out", layer=l, phases=BACKWARD)
        f = fwd_macs(c, g)
        add_forward_ops(tl, c, g, "")
        tl.ops("backward", f * (2 if l >= 2 else 1), (SURR_OPS + 3) * B * g.n_neurons,
               "BPTT: weight-gradient product (+ input-gradient product for l ≥ 2), ≈ 2× forward", layer=l)
    tl.mem("saved s_L × T (readout input)", "saved", T * B * c.n_out_last,
           "BPTT: readout input saved at each step for dW_out, T·B·n_out_L", phases=BACKWARD)
    tl.mem("∂E/∂m", "loss_buffers", B * C, "cross-entropy gradient at m^T, B × C", phases=BACKWARD)
    add_readout_state(tl, c)
    tl.ops("readout backward", 2 * B * c.n_out_last * C, 0, "BPTT: dW_out and ∂E/∂s_L, 2·B·n_out_L·C MACs")


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "BPTT updates once per sequence; the cadence setting is ignored",
    "autograd graph nodes and their metadata (small per op, × T)",
    "checkpointing / recomputation variants of BPTT (not used here)",
)

register(RuleModel("bptt", "BPTT (surrogate gradient)", full_terms, NOT_MODELLED))
