"""bptt-compact: BPTT with the minimal saving (tpprof/snn/bptt_variants.py), full model.

Same state, adjoints, loss and compute as BPTT (:mod:`tpprof.analytic.rules.bptt`); what is
saved for backward at each of T steps, per hidden layer l:

* u_l^t − v_th, B × n_nrn at d bytes: the surrogate's argument, saved once (``ArcTanSpike``);
* the layer's input: x^t for l = 1 as a view of the input batch (B × n_in at d: the frames a
  streaming device must keep); for l ≥ 2 the spikes of layer l−1 bit-packed, ⌈B·n_in/8⌉ bytes,
  when they are binary (unpooled or max-pooled), else (average-pooled) the pooled values B × n_in at d;
* max-pooled conv layers: the pre-pool spikes bit-packed, ⌈B·n_nrn/8⌉ bytes (the switches are
  recomputed from them in backward); average pooling keeps only its shape;
* recurrent layers: R_l s^{t−1} reads the packed s^{t−1} that layer l+1 (or the readout) already
  keeps; only s^0 (zeros) is packed once, ⌈B·n_nrn/8⌉ bytes;
* the readout's input a_L^t, packed or at d as above.

So saved = T · Σ_l [B·n_nrn·d + in_l + pool_l] + T·out_L + rec, linear in T with a slope of
about B·(n_in_1 + Σ n_nrn)·d + B·Σ n_out/8 (plain BPTT: B·(n_in_1 + 2 Σ n_nrn)·d).
Weight gradients are added in place into p.grad by the custom Functions (no autograd sums).
"""

from __future__ import annotations

import numpy as np

from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SURR_OPS, Ctx, add_forward_ops, add_lif_state, add_params, add_readout_state, ctx,
    fwd_macs, net_params,
)
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import Config, LayerGeometry

BACKWARD = ("backward",)
SRC = "bptt-compact (snn/bptt_variants.py)"


def packed_bytes(c: Ctx, n: int) -> object:
    """Bytes of one bit-packed B × n spike tensor: ⌈B·n/8⌉ (pack_bits)."""
    return np.ceil(c.B * n / 8)


def binary_out(cfg: Config, g: LayerGeometry) -> bool:
    """Whether layer g passes on binary values (unpooled or max-pooled spikes)."""
    return cfg.net.layers[g.index - 1].pool in ("none", "max2")


def _consumer_input(tl: TermList, cfg: Config, c: Ctx, prev: LayerGeometry, name: str, layer: int | None,
                    T: object) -> None:
    """The spikes of ``prev`` as saved by their consumer (layer prev+1 or the readout), T steps."""
    if binary_out(cfg, prev):
        tl.mem(f"{name} (bit-packed) × T", "saved", T * packed_bytes(c, prev.n_out),
               f"{SRC}: binary input spikes of this consumer saved 1 bit each, T·⌈B·n_in/8⌉ bytes",
               layer=layer, phases=BACKWARD, elem_bytes=1)
    else:
        tl.mem(f"{name} (average-pooled) × T", "saved", T * c.B * prev.n_out,
               f"{SRC}: average-pooled inputs are not binary: saved at d bytes, T·B·n_in", layer=layer,
               phases=BACKWARD)


def compact_terms(cfg: Config, tl: TermList, c: Ctx | None = None) -> None:
    """bptt-compact's terms; ``c.T`` may be a segment / window length (bptt-ckpt, tbptt)."""
    c = ctx(cfg) if c is None else c
    B, C, T = c.B, c.C, c.T
    add_params(tl, c, net_params(c), lambda _layer: ("backward", "update"), once_per_sequence=True,
               grad_source=f"{SRC}: gradient of the sequence loss, added in place into p.grad by the custom "
                           "Functions' backward (addmm_), applied once per mini-batch")
    for g in c.geo:
        l = g.index
        add_lif_state(tl, c, g, "")
        if not c.trains(l):  # frozen (RuleSpec.trainable): no graph below the first trained layer
            add_forward_ops(tl, c, g, "")
            continue
        if l == 1:
            tl.mem("saved input x^t × T (views)", "saved", T * B * g.n_in,
                   f"{SRC}: input frames kept as views of the input batch (never copied), T·B·n_in at d; a "
                   "streaming device must keep them", layer=l, phases=BACKWARD)
        else:
            _consumer_input(tl, cfg, c, c.geo[l - 2], "saved input s_{l−1}^t", l, T)
        tl.mem("saved u − v_th × T", "saved", T * B * g.n_neurons,
               f"{SRC}: the surrogate's argument saved once per step (ArcTanSpike), T·B·n_nrn", layer=l,
               phases=BACKWARD)
        if cfg.net.layers[l - 1].pool == "max2":
            tl.mem("saved pre-pool spikes (bit-packed) × T", "saved", T * packed_bytes(c, g.n_neurons),
                   f"{SRC}: max pooling keeps the packed pre-pool spikes and recomputes its switches in "
                   "backward, T·⌈B·n_nrn/8⌉ bytes", layer=l, phases=BACKWARD, elem_bytes=1)
        if g.n_recurrent:
            tl.mem("saved s^0 for R_l (bit-packed)", "saved", packed_bytes(c, g.n_neurons),
                   f"{SRC}: R_l s^{{t−1}} reads the packed spikes its consumer keeps; only the zero s^0 is packed "
                   "once, ⌈B·n_nrn/8⌉ bytes", layer=l, phases=BACKWARD, elem_bytes=1)
        tl.mem("adjoint δ = ∂E/∂u (carried)", "loss_buffers", B * g.n_neurons,
               "BPTT backward: one B × n_nrn adjoint per layer carried from t+1 to t", layer=l, phases=BACKWARD)
        add_forward_ops(tl, c, g, "")
        tl.ops("backward", fwd_macs(c, g) * (2 if l >= 2 and c.trains(l - 1) else 1), (SURR_OPS + 3) * B * g.n_neurons
               + 2 * B * (g.n_in + g.n_neurons), "BPTT backward ≈ 2× forward, plus packing / unpacking the "
               "spikes (≈ 2 ops per spike each way)", layer=l)
    _consumer_input(tl, cfg, c, c.geo[-1], "saved s_L", None, T)
    tl.mem("∂E/∂m", "loss_buffers", B * C, "cross-entropy gradient at m^T, B × C", phases=BACKWARD)
    add_readout_state(tl, c)
    tl.ops("readout backward", 2 * B * c.n_out_last * C, 0, "BPTT: dW_out and ∂E/∂s_L, 2·B·n_out_L·C MACs")


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "BPTT updates once per sequence; the cadence setting is ignored",
    "autograd graph nodes and their metadata (small per op, × T)",
    "hard reset: u·(1 − s) saves u and 1 − s at d bytes per step (not packed; not modelled)",
)

register(RuleModel("bptt-compact", "BPTT, compact saving (bit-packed spikes)", compact_terms, NOT_MODELLED,
                   locality="through-time",
                   locality_source="bptt-compact (tpprof/snn/bptt_variants.py): BPTT's gradient with compactly "
                                   "saved tensors: back-propagation through layers and time"))
