"""BPTT with surrogate gradients: full memory and compute model (reference sheet §9).

Forward over T steps keeps, per layer, v and s (B·n_nrn), and saves for backward at every step:

* the layer's input s_{l−1}^t (B × n_in; x^t for l = 1), for dW_l = Σ_t δ_l^tᵀ s_{l−1}^t;
* the pre-reset potential u_l^t (B × n_nrn), for Θ′(u) in the backward pass;
* for max-pooled conv layers, the pool switches (B × n_out);
* the readout's input s_L^t (B × n_out_L).

Spikes are not saved a second time: s_l^t *is* layer l+1's input (counted there) and, in
recurrent layers, R_l s_l^{t−1} reads the tensor already saved at t−1. The last step's spikes
s_l^T of an unpooled layer are the state buffer s_l itself (counted under neuron_state), so
of that layer's spikes only T − 1 steps are saved beyond the state; a pooled layer passes
o_l^t = pool(s_l^t), a different tensor, saved at all T steps. So

    saved = B · [Σ_l (T·n_in_l − [l−1 unpooled] n_in_l + T·n_nrn_l + [max-pool] T·n_out_l)
                 + T·n_out_L − [L unpooled] n_out_L]                           (linear in T).

Backward (step-major, t = T … 1, layers L … 1): gradients (all parameters), one adjoint per
layer carried through time, δ_l = ∂E/∂u_l (B × n_nrn: the carried ∂E/∂v_l^t becomes
δ_l^t = ∂E/∂v_l^t + Θ′(u_l^t)(∂E/∂s_l^t − v_th ∂E/∂v_l^t) and then α δ_l^t = ∂E/∂v_l^{t−1},
in place), and ∂E/∂m (B × C), read at every step because m^T = Σ_t W_out s_L^t. The spike
adjoint ∂E/∂s_l^t = W_{l+1}ᵀ δ_{l+1}^t (or W_outᵀ ∂E/∂m) is consumed as it is formed (the
product's epilogue combines it elementwise with the carried buffer), so no B × n_out buffer
per layer is held. A recurrent layer also carries R_lᵀ δ_l^t (B × n_nrn) from step t to t − 1:
it needs all of δ_l^t, which the carried buffer overwrites with δ_l^{t−1} elementwise, so it is a
buffer of its own. Loss: cross-entropy on the readout m^T.
Compute: forward B·(nW·P + nR) per layer per step; backward ≈ 2× forward: a weight-gradient
product for every matmul plus an input-gradient product for every matmul but layer 1's.
BPTT updates once per sequence whatever the cadence setting.
"""

from __future__ import annotations

from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SURR_OPS, add_forward_ops, add_lif_state, add_params, add_readout_state,
    Ctx, ctx, fwd_macs, net_params,
)
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import Config, LayerGeometry

BACKWARD = ("backward",)


def full_terms(cfg: Config, tl: TermList, c: Ctx | None = None) -> None:
    """BPTT's terms; ``c`` (default ``ctx(cfg)``) lets bptt-ckpt and tbptt reuse them over a
    segment / window (their ``c.T`` is then k or K)."""
    c = ctx(cfg) if c is None else c
    B, C, T = c.B, c.C, c.T
    add_params(tl, c, net_params(c), lambda _layer: ("backward", "update"),
               once_per_sequence=True,
               grad_source="gradient of the sequence loss (one element per parameter element), accumulated "
                           "over the T steps during backward, applied once per mini-batch")
    for g in c.geo:
        l = g.index
        add_lif_state(tl, c, g, "")
        if not c.trains(l):  # frozen (RuleSpec.trainable): nothing below a trained layer needs a gradient,
            add_forward_ops(tl, c, g, "")  # so autograd records nothing for it: no saved tensor, no adjoint
            continue
        if l == 1:
            tl.mem("saved input x^t × T", "saved", T * B * g.n_in,
                   "BPTT: layer input saved at each of T steps for dW_l, T·B·n_in", layer=l, phases=BACKWARD)
        else:
            _saved_spikes(tl, c, c.geo[l - 2], f"saved input s_{{l−1}}^t", "layer input saved for dW_l", layer=l)
        tl.mem("saved u × T", "saved", T * B * g.n_neurons,
               "BPTT: pre-reset potential saved at each step for Θ′(u), T·B·n_nrn", layer=l, phases=BACKWARD)
        if g.out_shape != g.neuron_shape and cfg.net.layers[l - 1].pool == "max2":
            tl.mem("saved pool switches × T", "saved", T * B * g.n_out,
                   "BPTT: max-pool winner positions per step, T·B·n_out", layer=l, phases=BACKWARD)
        tl.mem("adjoint δ = ∂E/∂u (carried)", "loss_buffers", B * g.n_neurons,
               "BPTT backward: one B × n_nrn buffer per layer carried from t+1 to t; ∂E/∂v^t is turned into "
               "δ^t = ∂E/∂v^t + Θ′(u^t)(∂E/∂s^t − v_th ∂E/∂v^t) in place and scaled by α for t − 1; the spike "
               "adjoint ∂E/∂s^t = W_{l+1}ᵀ δ_{l+1}^t is consumed as formed, B × n_nrn", layer=l, phases=BACKWARD)
        if g.n_recurrent:
            tl.mem("R_lᵀ δ (recurrent adjoint, carried)", "loss_buffers", B * g.n_neurons,
                   "BPTT backward, recurrent layer: s^{t−1} feeds u^t through R_l, so ∂E/∂s^{t−1} gains R_lᵀ δ^t; "
                   "it is formed at step t from the whole δ^t (which the carried buffer then overwrites with "
                   "δ^{t−1}) and held until step t − 1 reads it, B × n_nrn", layer=l, phases=BACKWARD)
        f = fwd_macs(c, g)
        add_forward_ops(tl, c, g, "")
        tl.ops("backward", f * (2 if c.trains(l - 1) and l >= 2 else 1), (SURR_OPS + 3) * B * g.n_neurons,
               "BPTT: weight-gradient product (+ input-gradient product for l ≥ 2), ≈ 2× forward", layer=l)
    _saved_spikes(tl, c, c.geo[-1], "saved s_L", "readout input saved for dW_out", layer=None)
    tl.mem("∂E/∂m", "loss_buffers", B * C, "cross-entropy gradient at m^T, B × C", phases=BACKWARD)
    add_readout_state(tl, c)
    tl.ops("readout backward", 2 * B * c.n_out_last * C, 0, "BPTT: dW_out and ∂E/∂s_L, 2·B·n_out_L·C MACs")


def _saved_spikes(tl: TermList, c: Ctx, prev: LayerGeometry, what: str, why: str, layer: int | None) -> None:
    """Spikes of layer ``prev`` saved as the next consumer's input: T·B·n_out, less the last step's
    B·n_out when ``prev`` is unpooled (s^T is then the state buffer s, counted as neuron_state)."""
    B, T = c.B, c.T
    if prev.n_out == prev.n_neurons:
        tl.mem(f"{what} × (T−1)", "saved", (T - 1) * B * prev.n_out,
               f"BPTT: {why} at each of T steps, T·B·n_in, less the last step's B·n_in: s^T is the state s of the "
               "layer before (neuron_state), so (T−1)·B·n_in", layer=layer, phases=BACKWARD)
    else:
        tl.mem(f"{what} × T", "saved", T * B * prev.n_out,
               f"BPTT: {why} at each of T steps; the pooled spikes o^t are not the (pre-pool) state s, so "
               "T·B·n_in", layer=layer, phases=BACKWARD)


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "BPTT updates once per sequence; the cadence setting is ignored",
    "autograd graph nodes and their metadata (small per op, × T)",
    "checkpointing / recomputation variants of BPTT (not used here)",
)

register(RuleModel("bptt", "BPTT (surrogate gradient)", full_terms, NOT_MODELLED, locality="through-time",
                   locality_source="BPTT (tpprof/snn/bptt.py): the readout's loss is back-propagated through every "
                                   "layer and every past step of the sequence (the unrolled graph)"))
