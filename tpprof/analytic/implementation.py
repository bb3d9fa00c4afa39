"""What the PyTorch learners (``tpprof.snn``) hold beyond the algorithm: category "implementation".

``implementation_terms(cfg)`` is the one entry point. Every term's source starts with
``"implementation: "`` and names the line of learner code (or the torch mechanism) that holds
the buffer, with its formula. The terms were derived by reading the learners and checked
against the allocator with ``tpprof measure --explain`` (every block live at the measured peak,
by allocating op); nothing here is fitted, and algorithmic terms are never adjusted. They are
included only under ``accounting="full"``.

Notation as in :mod:`tpprof.analytic.rules._common`: B batch, C classes, T steps, d bytes per
element; per hidden layer n_in, n_nrn (neurons), n_out (after pooling), nW, nR.

Terms (what, formula, why):

* **gradient buffers outside their update** (all rules with per-step or per-sequence updates):
  the learners allocate ``p.grad`` once, at construction, and write every gradient into it in
  place (``addmm_``); the algorithmic model holds a layer's gradient only while that layer
  updates (update-every-step rules) or during backward/update (BPTT). In every phase p this
  term is Σ_params n · d − (algorithmic gradient bytes live in p), so that persistent buffers
  are counted exactly once.
* **Adam step counters**: ``LayerOptimizer`` keeps one fp32 scalar ``step`` per parameter
  tensor (as ``torch.optim.Adam``): 4 bytes × #parameter tensors. The optimisers update in
  place (fused Adam kernel, ``add_`` for SGD and momentum): no update temporaries.
* **BPTT, autograd's gradient accumulation over T uses of each weight**: every weight is used
  at each of the T steps, so autograd sums T per-step weight gradients in an input buffer
  before ``p.grad`` is touched: one running sum of the weight's size per weight, live for the
  whole backward pass, and — while one weight's sum is being updated — the incoming per-step
  product and the new sum besides (out-of-place add), together with the input gradient the
  same backward node returned (B·n_in; none for layer 1): Σ_w n_w + max_w (2·n_w + B·n_in_w)
  elements (T ≥ 2; for T = 1 no sum is formed: Σ_w n_w).
  Also live in backward: the last layer's input current of step T−1 (B·n_nrn_L, a loop
  variable), log_softmax(m^T) (B·C; its gradient is the algorithmic ∂E/∂m), three loss
  scalars, and for recurrent layers the zero initial spikes saved by R_l s^0 (B·n_nrn; the
  R_lᵀ δ product beside it is the algorithm's carried recurrent adjoint). Conv: ws_forward's graph (W − μ, g·(W − μ), Ŵ: 3·|W_l|, and σ: C_out),
  pooling's saved un-pooled input ((T−1)·B·n_nrn: s^T is the state s) and the int64 max-pool
  indices (T·B·n_out·(8 − d) bytes beyond the algorithmic switches).
* **BPTT with standardised conv weights, a second moment** (``backward:ws-end``): Ŵ_l is
  formed once per mini-batch, so the standardisation's backward runs after the time loop;
  there no adjoint is live, but every saved tensor still is, because snn/bptt.py's
  saved-tensors hook keeps them in ``self._saved`` until ``loss.backward()`` returns (Σ of
  the algorithmic saved terms, as an implementation term of that moment), next to every
  p.grad, the summed dŴ_l (Σ |W_l|) and the division's backward (4·max |W_l|). On VGG-9 this
  moment is the peak.
* **one-hot labels** (TP, TESS): c = one_hot(y), B·C, kept for the mini-batch.
* TP and TESS per-step temporaries, including the conv weight-gradient temporaries through
  the weight standardisation: see :func:`_tp_terms`, :func:`_tess_terms`, :func:`_ws_temps`.

Not modelled (listed, not zero): the sparse input path's index arrays (tpprof.snn.sparse; taken
only for input density ≤ 7 % on large enough layers: nnz · 16 + (T·B + T·n_in + 2) · 8 bytes for
the mini-batch, data-dependent, and while they are built (T·B + T·n_in) · 8 bytes of counters
outside torch's allocator, tpprof.snn.native); the convolution backends' weight-gradient workspaces (oneDNN
reorders or im2col columns, shape- and backend-dependent); they dominate only for conv layers
with few channels (and BPTT's input-gradient conv temporaries there: the model reads low on
small conv nets).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tpprof.analytic.implementation_family import SRC, _layers, _one_hot, _ws_temps, family_terms
from tpprof.analytic.rules._common import ctx
from tpprof.analytic.rules.tess import backward_phases, tess_authors_lls_pool, tess_authors_lls_size
from tpprof.analytic.terms import MemoryTerm, Size, TermList, vmax
from tpprof.config import Config, frozen_layers, uses_tess_authors


def _algorithmic(cfg: Config) -> list[MemoryTerm]:
    from tpprof.analytic.rules import get_rule

    tl = TermList(cfg.workload.dtype_bytes)
    get_rule(cfg.rule.name).full(cfg, tl)
    return tl.terms


def _param_tensors(cfg: Config) -> list[int]:
    """Element counts of the tensors the learners train (each with a p.grad buffer): W_l, R_l, (S),
    W_out; a frozen layer's (RuleSpec.trainable) are left out: it has no gradient buffer."""
    geo = cfg.net.geometry()
    F = frozen_layers(cfg.rule, cfg.net.depth)
    out: list[int] = []
    for g in geo[F:]:
        out.append(g.n_weights)
        if g.n_recurrent:
            out.append(g.n_recurrent)
    if cfg.rule.name == "tp" and cfg.rule.train_s and F == 0:  # S learns with layer 1
        out.append(geo[0].n_neurons * cfg.workload.classes)
    if uses_tess_authors(cfg.rule):  # conv gains γ_l and the readout bias (snn/tess.py _setup_extra)
        out += [g.out_shape[0] for g, spec in list(zip(geo, cfg.net.layers))[F:]
                if spec.kind == "conv" and spec.weight_std]
        out.append(cfg.workload.classes)
    out.append(geo[-1].n_out * cfg.workload.classes)
    return out


def _frozen_phases(cfg: Config) -> list[str]:
    """The phases the implementation model adds for frozen layers (RuleSpec.trainable): a frozen
    TP / TESS layer's forward (``loss:l``, no loss is formed), a frozen OTTT layer's ``forward:l``."""
    F = frozen_layers(cfg.rule, cfg.net.depth)
    if cfg.rule.name in ("tp", "tess") and not uses_tess_authors(cfg.rule):
        return [f"loss:{l}" for l in range(1, F + 1)]
    return [f"forward:{l}" for l in range(1, F + 1)] if cfg.rule.name == "ottt" else []


def _persistent_grads(tl: TermList, cfg: Config, algo: list[MemoryTerm]) -> None:
    d = cfg.workload.dtype_bytes
    total = sum(_param_tensors(cfg)) * d
    phases = sorted({p for t in algo for p in t.phases} | set(_frozen_phases(cfg)))
    if cfg.rule.name in ("bptt", "bptt-ckpt", "tbptt") and not cfg.rule.compact and any(lay.ws for lay in _layers(cfg)):
        phases.append(WS_END)  # the standardisation backward after the time loop: no algorithmic gradient live
    grads = [t for t in algo if t.category == "gradients"]
    always = sum(t.bytes for t in grads if t.persistent)
    for p in phases:
        extra = np.maximum(total - always - sum(t.bytes for t in grads if p in t.phases), 0)
        if np.any(extra):
            tl.mem(f"p.grad buffers outside their update ({p})", "implementation", extra // d,
                   SRC + "snn.base.Learner allocates p.grad once for every parameter and writes gradients in "
                   "place; Σ_params n·d minus the algorithmic gradients live in this phase", phases=(p,))


def _adam_counters(tl: TermList, cfg: Config) -> None:
    if cfg.rule.optimizer == "adam":
        n = len(_param_tensors(cfg))
        tl.mem("Adam step counters", "implementation", n,
               SRC + "LayerOptimizer keeps one fp32 scalar 'step' per parameter tensor (as torch.optim.Adam): "
               "4 B × #parameter tensors", elem_bytes=4)


WS_END = "backward:ws-end"


def _bptt_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm], steps: object = None,
                family: bool = False) -> None:
    """BPTT (snn/bptt.py): what autograd and the learner hold in the backward pass.

    Two moments. ``backward`` (inside the time loop, at the largest weight's gradient
    accumulation): the algorithmic saved tensors, carried adjoints and ∂E/∂m, plus the terms
    below. With standardised conv weights, a second moment ``backward:ws-end``: Ŵ_l is
    computed once per mini-batch, so the standardisation's backward runs after the time loop,
    when no adjoint is live but (snn/bptt.py) every saved tensor still is: the learner's
    saved-tensors hook appends each one to ``self._saved`` (for ``memory_inventory``) and
    clears the list only after ``loss.backward()`` returns.
    """
    sizes = _param_tensors(cfg)
    wl = cfg.workload
    B, C, T, d = wl.batch, wl.classes, wl.steps if steps is None else steps, wl.dtype_bytes
    geo = cfg.net.geometry()
    lays = _layers(cfg)
    F = frozen_layers(cfg.rule, len(geo))  # frozen layers (RuleSpec.trainable) have no gradient at all
    ws_sizes = [lay.w for lay in lays if lay.ws and lay.l > F]
    both = ("backward", WS_END) if ws_sizes else ("backward",)
    if any(lay.ws and lay.l <= F for lay in lays):
        tl.mem("standardised weights Ŵ_l of frozen layers", "implementation",
               sum(lay.w for lay in lays if lay.ws and lay.l <= F),
               SRC + "a frozen layer's Ŵ_l = ws_forward(W_l) is formed without a graph: Ŵ_l alone is held", phases=both)
    # (weight elements, elements of the input gradient its backward node returns with it): layer 1's
    # input x needs no gradient; R_l's input gradient is counted with the recurrent term below
    uses = [(g.n_weights, B * g.n_in if g.index >= 2 and g.index - 1 > F else 0) for g in geo[F:]]
    uses += [(g.n_recurrent, 0) for g in geo[F:] if g.n_recurrent]
    uses.append((geo[-1].n_out * C, B * geo[-1].n_out))
    acc = np.where(T >= 2, vmax(2 * n + gi for n, gi in uses), 0)
    tl.mem("autograd gradient accumulation over T", "implementation", sum(sizes) + acc,
           SRC + "each weight is used at all T steps; autograd sums the T per-step weight gradients in an "
           "input buffer before AccumulateGrad: Σ_w n_w running sums, plus, at the peak moment, one weight's "
           "incoming product and new sum during an out-of-place accumulation (2·n_w) and the input gradient "
           "its Mm/Convolution backward returned with it (B·n_in; none for layer 1, whose input x needs no "
           "gradient): max_w (2·n_w + B·n_in_w); none for T = 1", phases=("backward",))
    if ws_sizes:
        tl.mem("weight standardisation graph (3 × |W_l| + C_out)", "implementation",
               sum(3 * lay.w + lay.c_out for lay in lays if lay.ws and lay.l > F),
               SRC + "snn/bptt.py computes Ŵ_l = ws_forward(W_l) once per mini-batch under autograd, which keeps "
               "W − μ, g·(W − μ) and Ŵ (3·|W_l|) and σ (C_out) for backward, per standardised conv layer",
               phases=both)
        tl.mem("standardisation backward: dŴ sums and the division's backward", "implementation",
               sum(ws_sizes) + 4 * max(ws_sizes),
               SRC + "after the time loop the summed dŴ_l of every standardised layer (Σ |W_l|) are still held "
               "when the first (largest) layer's standardisation backward runs; its division's backward forms "
               "four |W_l| temporaries (4·max |W_l|); the other weights' sums are already in p.grad",
               phases=(WS_END,))
        if family:  # bptt_variants.py keeps no record: only bptt-ckpt's kept states outlive the segment
            kept = sum(t.bytes for t in algo if "kept segment-start" in t.name)
            tl.mem("kept segment-start states at the standardisation backward", "implementation", kept // d,
                   SRC + "snn/bptt_variants.py (bptt-ckpt): Ŵ_l is formed once per segment, so its backward runs "
                   "after the segment's; the saved tensors are freed by then, the kept states are not",
                   phases=(WS_END,))
        saved = 0 if family else (sum(t.bytes for t in algo if t.category == "saved")
                                  + sum(B * g.n_neurons * d for g in geo if g.n_recurrent))
        tl.mem("saved tensors still held by the learner's record", "implementation", saved // d,
               SRC + "snn/bptt.py's saved-tensors hook keeps every saved tensor in self._saved until "
               "loss.backward() returns, so at the standardisation backward (after the time loop) all the "
               "algorithmic 'saved' terms (and R_l's s^0) are still live: their sum", phases=(WS_END,))
    if family:  # the learner frees saved tensors as backward passes them: nothing of theirs at ws-end
        both = ("backward",)
    for lay in lays:
        if lay.pooled:
            tl.mem("pooling's saved input s × (T−1)", "implementation", (T - 1) * B * lay.n,
                   SRC + "max_pool2d / adaptive_avg_pool2d save their un-pooled input s_l^t for backward at each "
                   "step, T·B·n_nrn, less s_l^T, which is the state s (neuron_state): (T−1)·B·n_nrn",
                   layer=lay.l, phases=both)
        if lay.maxpool and np.any(d < 8):
            tl.mem("max-pool indices are int64", "implementation", T * B * lay.no * (d < 8),
                   SRC + "the switches saved by max_pool2d are int64 indices: T·B·n_out·(8 − d) bytes beyond "
                   "the algorithmic T·B·n_out·d", layer=lay.l, phases=both, elem_bytes=8 - d)
    if not family:  # snn/bptt_variants.py deletes cur after each lif_step
        tl.mem("last input current (B × n_nrn_L)", "implementation", B * geo[-1].n_neurons,
               SRC + "snn/bptt.py: the loop variable cur still references the last layer's input current of "
               "step T−1 during backward", phases=both)
    tl.mem("log-softmax output (B × C)", "implementation", B * C,
           SRC + "F.cross_entropy saves log_softmax(m^T) for backward (B·C); the gradient it passes on is the "
           "algorithmic ∂E/∂m, and nll_loss's gradient w.r.t. it is freed once used", phases=both)
    tl.mem("loss scalars (3)", "implementation", 3,
           SRC + "nll_loss's output and total_weight, and the backward seed ones_like(loss): 3 scalars",
           phases=both)
    for g in geo:
        if g.n_recurrent and g.index > F:  # R_lᵀ δ is the algorithm's "R_lᵀ δ (recurrent adjoint, carried)"
            tl.mem("initial spikes s^0 saved for R_l", "implementation", B * g.n_neurons,
                   SRC + "R_l s^{t−1} at t = 0 saves the zero state s^0 (B·n_nrn) that no other op saves",
                   layer=g.index, phases=("backward",))
        elif g.n_recurrent:
            tl.mem("initial spikes s^0 saved for R_l, and the R_lᵀ adjoint product", "implementation",
                   2 * B * g.n_neurons,
                   SRC + "R_l s^{t−1} at t = 0 saves the zero state s^0 (B·n_nrn) that no other op saves; "
                   "backward forms R_lᵀ δ as its own product before adding it to ∂E/∂s (B·n_nrn)",
                   layer=g.index, phases=("backward",))


def _algo_transients(algo: list[MemoryTerm]) -> dict[str, Size]:
    """Algorithmic transient bytes live in each phase, gradients excluded (handled above)."""
    out: dict[str, Size] = {}
    for t in algo:
        if not t.persistent and t.category != "gradients":
            for p in t.phases:
                out[p] = out.get(p, 0) + t.bytes
    return out


def _tp_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm]) -> None:
    """TP step temporaries (snn/tp.py ``_step`` and ``tp_loss_grad``), per hidden layer l.

    While layer l is processed the step holds, beyond the algorithm's state, pooled spikes and
    Eq. 13–18 buffers (``base``): the currents and pre-reset potentials of both paths (``cur``,
    ``u``, ``cur_t``, ``u_t``: 4·B·n_nrn), the previous spikes kept by ``s_prev``/``s_prev_t``
    (2·B·n_nrn), the standardised weight ``w_eff`` (conv: |W|) and max-pool indices (int64,
    2·B·n_out·8 bytes). ``sim`` = f(ε̃_{l−1}) of Eq. 15 (B²·d) is a step variable: live from
    its creation until layer l+1 rebinds it. The peak is the largest of these moments:

    * forming sim (l ≥ 2; layer 1 uses c cᵀ, B²·d) by ``pairwise_distance`` in float64, with
      layer l−1's sim and δ buffers still live: the largest of centring 2·B·n_prev·8 +
      n_prev·8; forming d² B·n_prev·8 + P·B·8 + 3·P·B²·8; casting back B·n_prev·8 + P·B·8 +
      P·B²·(8 + d); negation (and the conv mean) 2·P·B²·d (P = positions of a conv ε̃_{l−1});
    * Eq. 13 loss: sim, z, y, log-softmax and y·log p (5·B²·d), or sim, z, y, G with dε (and
      dε̃) formed, with layer l−1's δ buffers until the call returns;
    * Θ′(u) (``mul_surrogate_``, one B·n_nrn temporary) while sim, dε, dε̃ and the un-pooled δ
      are held (and layer l−1's un-pooled δ until rebound);
    * conv weight gradient: sim, all δ buffers plus :func:`_ws_temps`.

    The term is that peak minus the algorithmic transients of phase ``loss:l``; the readout
    phase gets the last layer's leftovers (m is updated in place by ``addmm_``), on top of the
    algorithm's softmax(m) − c.
    """
    wl = cfg.workload
    B, d = wl.batch, wl.dtype_bytes
    lays = _layers(cfg)
    geo = cfg.net.geometry()
    train_s = cfg.rule.train_s
    algo_tr = _algo_transients(algo)
    dedup = cfg.rule.target_rows == "classes"
    K = np.minimum(B, wl.classes) if dedup else B  # target-path rows (worst case K = min(B, C))
    prev_all = prev_din = 0  # layer l−1's δ buffers still referenced (all / the un-pooled ones)
    base = deltas = 0
    sim = K * K * d
    F = frozen_layers(cfg.rule, len(geo))
    Kf = 0 if F == len(geo) else K  # target-path rows while a frozen layer runs (none when all are frozen)
    for lay, g in zip(lays, geo):
        l, n, no = lay.l, lay.n, lay.no
        if l <= F:  # frozen (RuleSpec.trainable): both paths' forward only, no sim, no δ
            fixed = (lay.w * d if lay.ws else 0) + ((B + Kf) * no * 8 if lay.maxpool else 0)
            base = 3 * (B + Kf) * n * d + fixed  # what stays referenced after the layer (cur, u, s_prev)
            moment = (3 * B + np.maximum(B, 4 * Kf)) * n * d + fixed
            tl.mem("step temporaries of a frozen layer (forward only)", "implementation",
                   np.maximum(moment - algo_tr.get(f"loss:{l}", 0), 0) // d,
                   SRC + "snn/tp.py _step, a frozen layer: inside lif_step the current, pre-reset potential and new "
                   "v, s (4·B·n_nrn; with the target path running, the input path's cur, u, s_prev, 3·B·n_nrn, "
                   "next to the target path's 4·K·n_nrn), w_eff and max-pool indices; no loss", layer=l,
                   phases=(f"loss:{l}",))
            deltas = 0
            continue
        d1 = cfg.rule.flavour == "authors" and l == 1  # D1: R_1 sees only the input path
        tg = l >= 2 or (g.n_recurrent > 0 and not d1) or train_s
        base = 3 * (B + K) * n * d + (lay.w * d if lay.ws else 0) + ((B + K) * no * 8 if lay.maxpool else 0)
        if l == 1:
            dist = sim
        else:
            n_prev, P = lays[l - 2].no, lays[l - 2].P_out
            dist = (sim if l - 1 > F else 0) + np.maximum(np.maximum(2 * K * n_prev * 8 + n_prev * 8,
                                               K * n_prev * 8 + P * K * 8 + 3 * P * K * K * 8),
                                    np.maximum(K * n_prev * 8 + P * K * 8 + P * K * K * (8 + d),
                                               2 * P * K * K * d + (K * K * d if P > 1 else 0)))
        d_pool = (B + K * tg) * no * d  # dε, dε̃ (pooled shape; dε̃ has K rows)
        d_unpool = (B + K * tg) * n * d if lay.pooled else 0  # δ, δ̃ after pool_backward (new tensors)
        # dedup, tp_loss_grad_classes: z + log n, y, log-softmax, log p − log n, y·(…): 5·B·K; per sample
        # (K = B): z, y, log-softmax and y·log p, 4·B²
        loss = sim + np.maximum((5 if dedup else 4) * B * K * d, 3 * B * K * d + d_pool)
        surr_a = sim + d_pool + (B * n * d if lay.pooled else 0) + B * n * d + prev_din
        surr_b = sim + d_pool + d_unpool + B * n * d
        pairs = 1 + (tg and l >= 2)
        wgrad = sim + d_pool + d_unpool + _ws_temps(pairs, lay, d)
        peak = base + vmax((prev_all + dist, prev_all + loss, surr_a, surr_b, wgrad))
        extra = peak - algo_tr.get(f"loss:{l}", 0)
        tl.mem("step temporaries beyond Eqs. 13–18", "implementation", np.maximum(extra, 0) // d,
               SRC + "snn/tp.py _step: currents and pre-reset potentials of both paths (4·B·n_nrn), previous "
               "spikes held by s_prev/s_prev_t (2·B·n_nrn), w_eff and max-pool indices, sim (B²), layer l−1's δ, "
               "plus the largest of the Eq. 15 float64 distance, the Eq. 13 loss, the Θ′(u) temporary and the "
               "conv weight-gradient temporaries; minus the algorithmic loss:l buffers", layer=l, phases=(f"loss:{l}",))
        deltas = d_pool + d_unpool
        prev_all, prev_din = deltas + sim, (d_unpool if lay.pooled else d_pool)
    # leftovers only: the readout's own softmax(m) − c is an algorithmic term of this phase
    ro = base + deltas + (sim if F < len(geo) else 0)
    tl.mem("readout-phase leftovers", "implementation", ro // d,
           SRC + "after the layer loop the last layer's currents, potentials, previous spikes, w_eff, indices, "
           "sim and δ buffers are still referenced", phases=("readout",))


def _tess_terms(tl: TermList, cfg: Config, algo: list[MemoryTerm]) -> None:
    """TESS step temporaries (snn/tess.py ``_step``), per hidden layer l.

    Layer l holds, beyond the algorithm's state and its p − t*, δ_causal, δ_non-causal
    (``base``): the current ``cur``, pre-reset potential ``u``, previous spikes ``s_prev`` and
    Ψ(u) ``psi`` (4·B·n_nrn) and max-pool indices (int64, B·n_out·8 bytes). Its peak is the
    largest of: forming δ_non-causal (the learning signal ``sig`` and the sig·q product, 2·B·n_nrn,
    with layer l−1's δ_non-causal not yet rebound); un-pooling the signal (pooled and un-pooled
    copies, with layer l−1's two δ still referenced); the conv weight gradient
    (:func:`_ws_temps`, two pairs). The readout phase gets the last layer's leftovers (m is
    updated in place), on top of the algorithm's softmax(m) − c.
    """
    wl = cfg.workload
    B, C, d = wl.batch, wl.classes, wl.dtype_bytes
    lays = _layers(cfg)
    algo_tr = _algo_transients(algo)
    prev_nc = prev_two = 0
    base = 0
    algo_l = 0
    F = frozen_layers(cfg.rule, len(lays))
    last_signal = 0
    for lay in lays:
        l, n, no = lay.l, lay.n, lay.no
        algo_l = algo_tr.get(f"loss:{l}", 0)
        if l <= F:  # frozen (RuleSpec.trainable): cur, u, s_prev and indices; no Ψ, signal or δ
            base = 3 * B * n * d + (B * no * 8 if lay.maxpool else 0)  # what stays referenced after the layer
            tl.mem("step temporaries of a frozen layer (forward only)", "implementation",
                   np.maximum(base + B * n * d - algo_l, 0) // d,
                   SRC + "snn/tess.py _step, a frozen layer: inside lif_step the current, pre-reset potential and "
                   "new v, s (4·B·n_nrn) and max-pool indices; no Ψ, signal or δ", layer=l, phases=(f"loss:{l}",))
            last_signal = algo_l = prev_nc = prev_two = 0
            continue
        base = 4 * B * n * d + (B * no * 8 if lay.maxpool else 0)
        last_signal = B * n * d
        m_nc = 2 * B * n * d + prev_nc + algo_l
        m_sig = (B * no * d + B * n * d + prev_two + B * C * d) if lay.pooled else 0
        m_wg = B * n * d + algo_l + _ws_temps(2, lay, d)
        extra = base + vmax((m_nc, m_sig, m_wg)) - algo_l
        tl.mem("step temporaries beyond the LSG update", "implementation", np.maximum(extra, 0) // d,
               SRC + "snn/tess.py _step: cur, u, s_prev, Ψ(u) (4·B·n_nrn) and max-pool indices, plus the largest of "
               "forming δ_non-causal (signal and sig·q product, layer l−1's δ_non-causal), un-pooling the signal "
               "and the conv weight-gradient temporaries", layer=l, phases=(f"loss:{l}",))
        prev_nc, prev_two = B * n * d, 2 * B * n * d
    # leftovers only (m is updated in place); the readout's softmax(m) − c is algorithmic
    ro = base + last_signal + algo_l
    tl.mem("readout-phase leftovers", "implementation", ro // d,
           SRC + "after the layer loop the last layer's cur, u, s_prev, Ψ(u), signal, indices, both δ and p − t* are "
           "still referenced", phases=("readout",))


def _tess_authors_terms(tl: TermList, cfg: Config) -> None:
    """The authors' TESS (snn/tess.py ``_authors_layer``, ``_authors_lls_grad``, ``_authors_wgrad``,
    ``_authors_backprop``), beyond rules/tess.py ``authors_terms``; per hidden layer l, n = n_nrn.

    * Ŵ_l of a standardised conv layer, formed once per mini-batch (|W_l|, held for all T steps);
    * local step (phase loss:l): the learner holds s, Ψ, e^{t−1} (3·B·n), o and the int64 max-pool
      indices, and the largest of: u, Ψ, s, e^t (4·B·n, before o); B_l being formed (2·C·D) or
      the logits and their softmax (2·B·C) with h; g_h (B·D) and its adaptive-pool backward
      (B·n_out) or the un-pooled g_s (B·n_out + B·n); g_s, δ causal, δ non-causal (3·B·n) with,
      for conv, conv2d_weight's G and gi (2·|W_l|); with standardisation, g_s and G, W − μ and
      G ⊙ (W − μ) (3·|W_l|) — minus the algorithmic loss:l terms (5·B·n + o + C·D + h + B·C);
    * back-prop step (phase backward:l): the int64 max-pool indices kept with s_j (j ≤ l) and the
      largest of ∂L/∂o_l with the un-pooled g_s, g_s with both δ (+ 2·|W_l| conv), g_s with the
      standardisation's 3·|W_l| — minus the algorithmic 3·B·n (phase backward-in:l, g_s with
      ∂L/∂a_{l−1}, is exactly its algorithmic terms).
    """
    B, C = cfg.workload.batch, cfg.workload.classes
    bp = cfg.rule.name == "tess-authors-schedule" and cfg.rule.delay_ls > 0
    loc = 1  # as rules/tess.py: local phases counted whatever delay_ls (an upper bound when delay_ls ≥ T)
    c = ctx(cfg)
    for lay, p, D in zip(_layers(cfg), tess_authors_lls_pool(cfg.net), tess_authors_lls_size(cfg.net)):
        l, n, no = lay.l, lay.n, lay.no
        if lay.ws:
            tl.mem("Ŵ (standardised weight)", "implementation", lay.w,
                   SRC + "snn/tess.py _authors_w_hat: γ(W − μ)/σ formed once per mini-batch, |W_l|", layer=l)
        if lay.maxpool:
            tl.mem("max-pool indices", "implementation", loc * B * no,
                   SRC + "nets.py pool: F.max_pool2d(return_indices=True), int64, B·n_out·8 bytes", layer=l,
                   phases=(f"lsg:{l}", f"loss:{l}"), elem_bytes=8)
            if bp:
                tl.mem("max-pool indices (kept for back-prop)", "implementation", B * no,
                       SRC + "snn/tess.py _authors_step: kept with s_l until layer l is back-propagated, int64",
                       layer=l, phases=backward_phases(c, l), elem_bytes=8)
        pooled_o = no if lay.pooled else 0
        base = 3 * n + pooled_o  # s, Ψ, e^{t−1} and o, held through the layer
        h = D if p is not None else 0
        w_conv = 2 * lay.w if lay.conv else 0
        w_ws = 3 * lay.w if lay.ws else 0
        c1 = 4 * B * n
        c2 = B * base + B * h + np.maximum(2 * C * D, C * D + 2 * B * C)
        c3 = B * base + np.maximum(B * D + (B * no if p is not None else 0), B * no + (B * n if lay.pooled else 0))
        algo_lsg = B * (2 * n + pooled_o) + loc * (C * D + B * h + B * C + B * n)
        peak_lsg = np.maximum(np.maximum(c1, c2), c3)
        tl.mem("LSG temporaries", "implementation", loc * np.maximum(peak_lsg - algo_lsg, 0),
               SRC + "snn/tess.py _authors_layer/_authors_lls_grad: e^{t−1} held through the step, u and e^t formed, "
               "B_l's float32 chain, the logits and their softmax, the pool backwards (largest moment minus the "
               "algorithmic lsg:l terms)", layer=l, phases=(f"lsg:{l}",))
        c4 = B * base + 3 * B * n + w_conv
        c5 = B * base + B * n + w_ws
        algo_upd = B * (2 * n + pooled_o) + loc * 3 * B * n
        tl.mem("update temporaries", "implementation", loc * np.maximum(np.maximum(c4, c5) - algo_upd, 0),
               SRC + "snn/tess.py _authors_wgrad: e^{t−1} held through the step, conv2d_weight's G and gi, the "
               "standardisation's W − μ and G ⊙ (W − μ) (largest moment minus the algorithmic loss:l terms)",
               layer=l, phases=(f"loss:{l}",))
        if bp:
            m = np.maximum(np.maximum(B * pooled_o + B * n, 3 * B * n + w_conv), B * n + w_ws)
            tl.mem("back-prop temporaries", "implementation", np.maximum(m - 3 * B * n, 0),
                   SRC + "snn/tess.py _authors_backprop: ∂L/∂o_l with the un-pooled g_s, conv2d_weight and "
                   "standardisation temporaries (largest moment minus the algorithmic backward:l terms)",
                   layer=l, phases=(f"backward:{l}",))


#: What a learner holds beyond the algorithm, one function per rule with a learner: ``fn(tl, cfg,
#: algo)`` adds the rule's implementation terms (the terms every learner shares — p.grad buffers,
#: Adam counters — are added by :func:`implementation_terms`). Each learner module in
#: ``tpprof/snn`` names its entry (``IMPLEMENTATION_MODEL``); a test checks the table covers
#: :data:`tpprof.config.TRAINABLE_RULES`.
ImplFn = Callable[[TermList, Config, list[MemoryTerm]], None]


def _tp_impl(tl: TermList, cfg: Config, algo: list[MemoryTerm]) -> None:
    _one_hot(tl, cfg)
    _tp_terms(tl, cfg, algo)


def _tess_impl(tl: TermList, cfg: Config, algo: list[MemoryTerm]) -> None:
    _one_hot(tl, cfg)
    if uses_tess_authors(cfg.rule):
        _tess_authors_terms(tl, cfg)
    else:
        _tess_terms(tl, cfg, algo)


def _family_impl(tl: TermList, cfg: Config, algo: list[MemoryTerm]) -> None:
    family_terms(tl, cfg, algo, _bptt_terms)


IMPLEMENTATIONS: dict[str, ImplFn] = {
    "tp": _tp_impl, "tess": _tess_impl, "tess-authors-schedule": _tess_impl, "bptt": _bptt_terms,
    "bptt-compact": _family_impl, "bptt-ckpt": _family_impl, "tbptt": _family_impl, "ottt": _family_impl,
}


def implementation_terms(cfg: Config, algo: list[MemoryTerm] | None = None) -> list[MemoryTerm]:
    """Implementation-overhead terms for ``cfg`` (category "implementation"): the shared ones and
    the rule's own (:data:`IMPLEMENTATIONS`; none for a rule without a learner).

    ``algo``: the rule's algorithmic terms when the caller has them already (``estimate``
    does), so that the rule model is not evaluated twice; computed here when omitted.
    """
    tl = TermList(cfg.workload.dtype_bytes)
    if algo is None:
        algo = _algorithmic(cfg)
    _persistent_grads(tl, cfg, algo)
    _adam_counters(tl, cfg)
    own = IMPLEMENTATIONS.get(cfg.rule.name)
    if own is not None:
        own(tl, cfg, algo)
    return tl.terms
