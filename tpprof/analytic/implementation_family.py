"""Implementation terms of the BPTT family and OTTT learners (snn/bptt_variants.py, snn/ottt.py):
what they hold beyond the algorithm (category "implementation"); called by
:func:`tpprof.analytic.implementation.implementation_terms`. Derived from the learner code and
checked with ``tpprof measure --explain``; nothing fitted. Notation of :mod:`tpprof.analytic.implementation`.

Also the per-layer sizes (:class:`_Lay`) and the temporaries every learner shares (one-hot labels,
conv weight-gradient temporaries) that implementation.py's TP / TESS / BPTT terms use: this module
is the lower of the pair (implementation.py imports it, never the other way).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tpprof.analytic.rules.bptt_ckpt import segment_len
from tpprof.analytic.rules.tbptt import window_len
from tpprof.analytic.terms import MemoryTerm, TermList
from tpprof.config import Config, frozen_layers

SRC = "implementation: "


def _one_hot(tl: TermList, cfg: Config) -> None:
    wl = cfg.workload
    tl.mem("one-hot labels c (B × C)", "implementation", wl.batch * wl.classes,
           SRC + "the learner forms c = one_hot(y) once per mini-batch and keeps it for all T steps "
           "(the algorithm reads the labels through ε̃_0 / the error terms): B·C·d")
    if cfg.rule.name == "tp" and cfg.rule.target_rows == "classes":
        K = np.minimum(wl.batch, wl.classes)
        tl.mem("class rows: one-hot c_K (K × C) and log n_k (K)", "implementation", K * wl.classes + K,
               SRC + "snn/tp.py ClassRows, kept for the mini-batch: the K classes' one-hot labels (the target "
               "path's input) and log n_k; K = min(B, C), the worst case of the classes present")
        tl.mem("class rows: k(b) per sample (B int64)", "implementation", wl.batch,
               SRC + "snn/tp.py ClassRows.inv, torch.unique's inverse index, int64", elem_bytes=8)


@dataclass(frozen=True)
class _Lay:
    """Per-layer sizes used by the step models (elements unless noted)."""

    l: int
    n: int  # neurons (pre-pool)
    no: int  # outputs (post-pool)
    w: int  # feed-forward weights
    conv: bool
    ws: bool  # conv with weight standardisation
    maxpool: bool
    P_out: int  # spatial positions of the output map (1 for dense)
    c_out: int = 0  # output channels (conv) / units (dense)

    @property
    def pooled(self) -> bool:
        return self.no != self.n


def _layers(cfg: Config) -> list[_Lay]:
    out = []
    for g, spec in zip(cfg.net.geometry(), cfg.net.layers):
        conv = g.kind == "conv"
        out.append(_Lay(g.index, g.n_neurons, g.n_out, g.n_weights, conv, conv and spec.weight_std,
                        spec.pool == "max2", g.n_out // g.out_shape[0] if conv else 1, g.neuron_shape[0]))
    return out


def _ws_temps(pairs: int, lay: _Lay, d: int) -> int:
    """Weight-gradient temporaries of a conv layer (snn/nets.py add_weight_grad + ws_backward).

    conv2d_weight output per pair (g, and the second pair's gi before g.add_(gi)); through the
    standardisation ws_backward holds d = W − μ, (G − Ḡ)/σ, d·Σ(G⊙d) and its /σ³ at once:
    (pairs + 4)·|W| with standardisation, pairs·|W| without. Dense layers use addmm_ (none).
    """
    if not lay.conv:
        return 0
    return (pairs + 4 if lay.ws else pairs) * lay.w * d


def family_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm], bptt_terms: Callable[..., None]) -> None:
    rule, T = cfg.rule.name, cfg.workload.steps
    if rule == "ottt":
        return _ottt_terms(tl, cfg, algo)
    steps = T if rule == "bptt-compact" else segment_len(cfg, T) if rule == "bptt-ckpt" else window_len(cfg, T)
    compact = rule == "bptt-compact" or cfg.rule.compact
    if rule == "tbptt":  # live through the window's forward (compact: its forward:last moment) and backward
        tl.mem("m^{w0} (readout at the window start)", "implementation", cfg.workload.batch * cfg.workload.classes,
               SRC + "snn/bptt_variants.py tbptt: the detached readout of the previous windows, B × C, onto which "
               "this window's W_out a_L^t are summed out of place (m = m + r) and which the loop variable keeps; "
               "an in-place sum needs no second copy", phases=("backward", FWD) if compact else ("backward",))
    if compact:
        return _compact_terms(tl, cfg, algo, steps)
    # plain saving inside a segment / window: BPTT's terms over k or K steps (an upper bound: the
    # learner frees each step's saved tensors as backward passes it, bptt.py's record keeps them)
    bptt_terms(tl, cfg, algo, steps, family=True)


FWD = "forward:last"


def _compact_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm], steps: object) -> None:
    """Compact saving (bptt-compact; bptt-ckpt / tbptt with ``compact``): two moments.

    ``forward:last`` — inside the last layer's lif_step at the last step of the graph (T, or the
    segment / window): every saved tensor of the algorithm except those of this step not yet
    formed (the layers above l: u_j − v_th; this layer and those above: the packed consumer inputs
    and packed pre-pool spikes), next to the step's current, u, new spikes and new membrane
    (4·B·n_nrn_l; the old v, s are the state), the float max-pooled input of layer l (B·n_out_{l−1})
    and every p.grad (no gradient is formed yet): the largest over layers l. With standardised conv
    weights Ŵ_l and its graph (4·|W_l| + C_out) are live in both moments.
    ``backward`` — the readout's backward at the last step: ∂E/∂a_L = g W_out (B·n_out_L) and the
    unpacked spikes (B·n_out_L at d, plus B·n_out_L bytes of unpacking bits), log_softmax(m^T)
    (B·C) and three loss scalars.
    """
    wl = cfg.workload
    B, C, d = wl.batch, wl.classes, wl.dtype_bytes
    lays = _layers(cfg)
    geo = cfg.net.geometry()
    grads = sum(g.n_weights + g.n_recurrent for g in geo) + geo[-1].n_out * C
    both = ("backward", FWD)
    ws = [lay for lay in lays if lay.ws]
    if ws:
        tl.mem("standardised weights Ŵ_l and their graph (4·|W_l| + C_out)", "implementation",
               sum(4 * lay.w + lay.c_out for lay in ws),
               SRC + "snn/bptt_variants.py forms Ŵ_l = ws_forward(W_l) under autograd once per graph: Ŵ and the "
               "graph's W − μ, g·(W − μ) (3·|W_l|) and σ (C_out)", phases=both)
    base = sum(t.bytes for t in algo if not t.persistent and "backward" in t.phases and t.category != "gradients"
               and "adjoint δ" not in t.name and t.name != "∂E/∂m")

    def packed(n: int) -> object:
        return np.ceil(B * n / 8)

    def consumer_in(j: int) -> object:  # bytes layer j's output costs its consumer at one step
        pool = cfg.net.layers[j].pool
        return packed(lays[j].no) if pool in ("none", "max2") else B * lays[j].no * d

    moments = []
    for i, lay in enumerate(lays):
        missing = sum(B * lays[j].n * d for j in range(i + 1, len(lays)))
        missing = missing + sum(consumer_in(j) for j in range(i, len(lays)))
        missing = missing + sum(packed(lays[j].n) for j in range(i, len(lays)) if lays[j].maxpool)
        extra = 4 * B * lay.n * d + (B * lays[i - 1].no * d if i >= 1 and lays[i - 1].maxpool else 0)
        moments.append(base - missing + extra)
    peak_fwd = functools.reduce(np.maximum, moments)
    tl.mem("forward moment: saved so far and the last step's temporaries", "implementation", peak_fwd // d,
           SRC + "snn/bptt_variants.py _run at the last step, inside layer l's lif_step: the algorithm's saved "
           "tensors less those of this step not yet formed, plus current, u, new s and new v (4·B·n_nrn_l) and a "
           "float max-pooled input; the largest over l", phases=(FWD,))
    tl.mem(f"p.grad buffers outside their update ({FWD})", "implementation", grads,
           SRC + "snn.base.Learner allocates p.grad once for every parameter; no gradient is formed in the forward",
           phases=(FWD,))
    n_L = lays[-1].no
    tl.mem("readout backward: ∂E/∂a_L and the unpacked spikes", "implementation",
           B * n_L + ((B * n_L + B * n_L / d) if cfg.net.layers[-1].pool in ("none", "max2") else 0),
           SRC + "CompactLinear.backward of the readout: g W_out (B·n_out_L) and unpack_bits' float spikes "
           "(B·n_out_L) and its uint8 bits (B·n_out_L bytes)", phases=("backward",))
    tl.mem("log-softmax output and loss scalars", "implementation", B * C + 3,
           SRC + "F.cross_entropy saves log_softmax(m^T) (B·C); nll_loss's output, total_weight and the seed "
           "(3 scalars)", phases=("backward",))


def _ottt_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm]) -> None:
    """OTTT (snn/ottt.py ``_step``): the one-hot labels (B·C, the mini-batch); in every phase of the
    step's backward the last layer's current ``cur`` and previous spikes ``s_prev`` (2·B·n_nrn_L,
    loop variables), its pooled output when pooled (B·n_out_L), the standardised weights Ŵ_l
    (|W_l|) and, until layer l is back-propagated, its int64 max-pool indices; in backward:l the
    surrogate Θ′(u_l) temporary (B·n_nrn_l) or, for conv layers, the weight-gradient temporaries
    (:func:`_ws_temps`), whichever is larger."""
    _one_hot(tl, cfg)
    wl = cfg.workload
    B, d = wl.batch, wl.dtype_bytes
    lays = _layers(cfg)
    L = len(lays)
    last = lays[-1]
    from tpprof.analytic.rules.ottt import phases_of

    every = phases_of(L)
    tl.mem("last layer's cur and s_prev (2 × B × n_nrn_L)", "implementation", 2 * B * last.n,
           SRC + "snn/ottt.py _step: the loop variables cur and s_prev of the last layer stay referenced through "
           "the step's backward", phases=every)
    if last.pooled:
        tl.mem("last layer's pooled output (B × n_out_L)", "implementation", B * last.no,
               SRC + "snn/ottt.py _step: a = pool(s_L) stays referenced through the step's backward", phases=every)
    if any(lay.ws for lay in lays):
        tl.mem("standardised weights Ŵ_l", "implementation", sum(lay.w for lay in lays if lay.ws),
               SRC + "snn/ottt.py _step forms w_eff = ws_forward(W_l) once per step", phases=every)
    for lay in lays:
        if lay.l <= frozen_layers(cfg.rule, L):  # frozen: not back-propagated, its indices are dropped
            tl.mem("forward temporaries of a frozen layer", "implementation",
                   4 * B * lay.n + (2 * B * lay.no if lay.maxpool else 0),
                   SRC + "snn/ottt.py _step, a frozen layer (RuleSpec.trainable): inside lif_step the current, "
                   "pre-reset potential and new v, s (4·B·n_nrn), and its int64 max-pool indices (2·B·n_out "
                   "elements); nothing of it is kept for the backward", layer=lay.l, phases=(f"forward:{lay.l}",))
            continue
        if lay.maxpool:
            tl.mem("max-pool indices (int64)", "implementation", B * lay.no,
                   SRC + "lay.pool keeps int64 switches for the step's backward, B·n_out·8 bytes", layer=lay.l,
                   phases=phases_of(L, lay.l), elem_bytes=8)
        tl.mem("Θ′(u) temporary or weight-gradient temporaries", "implementation",
               np.maximum(B * lay.n, _ws_temps(1, lay, d) / d),
               SRC + "snn/ottt.py: mul_surrogate_ (its u − v_th, B·n_nrn) in δ = g_s ⊙ Θ′(u), then (conv) add_weight_grad's "
               "temporaries", layer=lay.l, phases=(f"backward:{lay.l}",))
