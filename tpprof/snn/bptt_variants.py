"""The memory-aware BPTT family: bptt-compact, bptt-ckpt (time checkpointing), tbptt (truncated).

All three use the nets, neuron and readout of :mod:`tpprof.snn.bptt` (m^T = Σ_t W_out a_L^t,
loss = cross-entropy(m^T, y), mean over the batch, the ArcTan surrogate for Θ′, resets in the
graph) and differ only in what they keep for the backward pass:

* ``bptt-compact`` — the same gradient as ``bptt`` over all T steps, with the minimal saving:
  per step and layer the surrogate's argument u − v_th once (``ArcTanSpike``), binary spikes
  bit-packed (1 bit per spike, :func:`pack_bits`) by the custom Functions that consume them
  (:class:`CompactLinear`, :class:`CompactConv`, :class:`CompactPool`), the input frames x^t as
  views of the caller's batch (never copied). Pooling keeps no float input: max-pooling keeps
  the packed pre-pool spikes and recomputes its switches in backward; average pooling keeps
  only the shape. Weight gradients are accumulated in place into ``p.grad`` (addmm_), so no
  per-step weight-gradient sums are formed (standardised conv weights: through autograd).
* ``bptt-ckpt`` — time checkpointing: a no-graph forward keeps only the state (v_l, s_l) at
  the segment starts t = 0, k, 2k, …; the last segment is run with its graph directly; then,
  from the last segment to the first, each segment [t0, t1) is recomputed from its kept state
  with a graph and back-propagated with the adjoint of its end state (from the segment after
  it) and ∂E/∂m. Memory O(⌈T/k⌉·state + k·saved), compute ≈ one extra forward. k =
  ``RuleSpec.segment`` or ⌈√T⌉; ``RuleSpec.compact`` saves inside a segment as bptt-compact.
* ``tbptt`` — truncated BPTT, window K = ``RuleSpec.window`` or min(T, 25): the sequence is cut
  into windows [w0, w1) of K steps; each window starts from the (detached) state and readout
  m^{w0} of the previous one, its loss is cross-entropy(m^{w1}, y) (the running readout), and
  its gradient flows through the ≤ K steps of the window only; one optimiser step per window.
  ``RuleSpec.compact`` saves as bptt-compact inside the window.

Segment recurrence (bptt-ckpt): with S_t = (v_l^t, s_l^t)_l the state after step t and
g_t = ∂E/∂S_t, a segment maps (S_{t0−1}, x^{t0..t1−1}) → (S_{t1−1}, Σ_t W_out a_L^t); its
backward takes g_{t1−1} and ∂E/∂m^T and returns g_{t0−1} (``.grad`` of the kept state made a
leaf) while accumulating the weight gradients, which is BPTT's chain rule cut at t0.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from tpprof.snn.base import Inventory, Learner
from tpprof.snn.neurons import LIFState, lif_step
from tpprof.snn.nets import HiddenLayer
from tpprof.snn.sparse import SparseInputLinear

__all__ = ["BPTTCompactLearner", "BPTTCkptLearner", "TBPTTLearner", "pack_bits", "unpack_bits",
           "CompactLinear", "CompactConv", "CompactPool"]

_BIT_WEIGHTS: dict[torch.device, torch.Tensor] = {}


def _weights(device: torch.device) -> torch.Tensor:
    w = _BIT_WEIGHTS.get(device)
    if w is None:
        w = _BIT_WEIGHTS[device] = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=device)
    return w


def pack_bits(s: torch.Tensor) -> torch.Tensor:
    """Binary tensor (any shape, values 0/1) → (⌈numel/8⌉,) uint8, bit j of byte i = s.flat[8i + j]."""
    flat = s.reshape(-1).to(torch.uint8)  # (n,) 1 byte per spike
    pad = (-flat.numel()) % 8
    if pad:
        flat = F.pad(flat, (0, pad))
    return flat.view(-1, 8).mul_(_weights(s.device)).sum(1, dtype=torch.uint8)  # (⌈n/8⌉,)


def unpack_bits(p: torch.Tensor, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: (⌈n/8⌉,) uint8 → tensor of ``shape`` with values 0/1 in ``dtype``."""
    n = 1
    for d in shape:
        n *= d
    bits = torch.bitwise_and(p.unsqueeze(1), _weights(p.device)).ne_(0)  # (⌈n/8⌉, 8) uint8 0/1
    return bits.view(-1)[:n].to(dtype).view(shape)


def _restore(keep: torch.Tensor, packed: bool, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    return unpack_bits(keep, shape, dtype) if packed else keep


class CompactLinear(torch.autograd.Function):
    """y = a Wᵀ (a: (B, n_in), W: (H, n_in)); saves ``keep`` = pack_bits(a) or a itself (a view).

    Backward: ∂a = g W; ∂W = gᵀ a, added in place to ``gbuf`` (then no gradient is returned for
    W) or returned when ``gbuf`` is None.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, w: torch.Tensor, keep: torch.Tensor,  # type: ignore[override]
                gbuf: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(keep, w)
        ctx.packed = keep is not a
        ctx.shape, ctx.dtype, ctx.gbuf = a.shape, a.dtype, gbuf
        return F.linear(a, w)  # (B, H)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        keep, w = ctx.saved_tensors
        ga = g @ w if ctx.needs_input_grad[0] else None  # (B, n_in)
        gw = None
        if ctx.gbuf is not None or ctx.needs_input_grad[1]:
            a = _restore(keep, ctx.packed, ctx.shape, ctx.dtype)  # (B, n_in)
            if ctx.gbuf is not None:
                ctx.gbuf.addmm_(g.t(), a)  # (H, B) @ (B, n_in)
            else:
                gw = g.t() @ a
        return ga, gw, None, None


class CompactConv(torch.autograd.Function):
    """y = conv2d(a, W, padding); saves pack_bits(a) or a (a view); ∂W in place into ``gbuf``
    (unstandardised weights) or returned (Ŵ of a standardised layer, through autograd)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, w: torch.Tensor, keep: torch.Tensor,  # type: ignore[override]
                gbuf: torch.Tensor | None, padding: int) -> torch.Tensor:
        ctx.save_for_backward(keep, w)
        ctx.packed = keep is not a
        ctx.shape, ctx.dtype, ctx.gbuf, ctx.padding = a.shape, a.dtype, gbuf, padding
        return F.conv2d(a, w, padding=padding)  # (B, C_out, H, W)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        keep, w = ctx.saved_tensors
        ga = torch.nn.grad.conv2d_input(ctx.shape, w, g, padding=ctx.padding) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.gbuf is not None or ctx.needs_input_grad[1]:
            a = _restore(keep, ctx.packed, ctx.shape, ctx.dtype)  # (B, C_in, H, W)
            gw = torch.nn.grad.conv2d_weight(a, w.shape, g, padding=ctx.padding)
            if ctx.gbuf is not None:
                ctx.gbuf.add_(gw)
                gw = None
        return ga, gw, None, None, None


class CompactPool(torch.autograd.Function):
    """Pooling of spikes s (B, C, H, W) that keeps no float input: max2 keeps pack_bits(s) and
    recomputes its switches in backward (the same max_pool2d on the same values: the same
    indices); avg2 and adaptive-average keep only the shape."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, keep: torch.Tensor | None, kind: str) -> torch.Tensor:  # type: ignore[override]
        ctx.kind, ctx.shape, ctx.dtype = kind, s.shape, s.dtype
        if keep is not None:
            ctx.save_for_backward(keep)
        if kind == "max2":
            return F.max_pool2d(s, 2)
        if kind == "avg2":
            return F.avg_pool2d(s, 2)
        return F.adaptive_avg_pool2d(s, 2)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        shape = ctx.shape
        if ctx.kind == "max2":
            (keep,) = ctx.saved_tensors
            _, idx = F.max_pool2d(unpack_bits(keep, shape, ctx.dtype), 2, return_indices=True)
            return F.max_unpool2d(g, idx, 2, output_size=shape[-2:]), None, None
        if ctx.kind == "avg2":
            gs = g.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2) / 4.0
            return F.pad(gs, (0, shape[-1] - gs.shape[-1], 0, shape[-2] - gs.shape[-2])), None, None
        ref = torch.empty(shape, dtype=g.dtype, device=g.device)  # shape carrier for the aten backward
        return torch.ops.aten._adaptive_avg_pool2d_backward(g, ref), None, None


def _binary_out(lay: HiddenLayer) -> bool:
    """Whether the layer passes on binary values (spikes, or max-pooled spikes)."""
    return lay.spec.pool in ("none", "max2")


class _BPTTFamily(Learner):
    """Shared segment runner: steps [t0, t1) from a given state, with or without compact saving."""

    rule = "bptt-family"

    def _setup_extra(self) -> None:
        self._live: dict[str, torch.Tensor] = {}
        self._kept: list[list[LIFState]] = []  # bptt-ckpt: states at the segment starts

    def _state_inventory(self) -> Inventory:
        inv: Inventory = [(name, "neuron_state", t) for name, t in self._live.items()]
        for j, states in enumerate(self._kept):
            for i, st in enumerate(states):
                inv += [(f"kept{j}.layer{i + 1}.v", "saved", st.v), (f"kept{j}.layer{i + 1}.s", "saved", st.s)]
        return inv

    def _hidden_trainable(self) -> list[torch.nn.Parameter]:
        """The hidden parameters that learn (frozen ones have requires_grad False since __init__)."""
        return [p for g in self._groups[:-1] for p in g[1] if p.requires_grad]

    def _zero_states(self, B: int) -> list[LIFState]:
        return [self._lif_zeros(B, lay.geom.neuron_shape) for lay in self.net.layers]

    def _run(self, x: torch.Tensor, t0: int, t1: int, states: list[LIFState], w_eff: list[torch.Tensor],
             compact: bool, on_step: Callable[[int], None] | None, m_prev: torch.Tensor | None = None,
             ) -> tuple[torch.Tensor, list[LIFState]]:
        """Steps t0 … t1−1 from ``states``; returns (Σ_t W_out a_L^t [+ m_prev], end states).

        Graph or not as the caller's grad mode says; ``compact`` uses the compact Functions.
        """
        B = x.shape[0]
        layers = self.net.layers
        states = list(states)
        m = m_prev
        W_out = self.net.W_out
        packed_prev: list[torch.Tensor | None] = [None] * len(layers)  # pack_bits(s_l^{t−1}) for R_l
        grad = torch.is_grad_enabled()
        for t in range(t0, t1):
            a = self._x_at(x, t)  # (B, *input) — a view of x
            a_keep = a  # what a consumer saves for this input: the view itself, or its packed bits
            for i, lay in enumerate(layers):
                if i == 0 and self._frames is not None:  # the sparse input path: I_1 on the spikes' index lists
                    gbuf = lay.W.grad if grad and lay.W.requires_grad else None  # ∂W_1 added in place
                    cur = SparseInputLinear.apply(w_eff[0], self._frames, t, gbuf)  # (B, H)
                    if lay.R is not None:
                        if compact and grad:
                            s_prev = states[i].s
                            pk = packed_prev[i] if packed_prev[i] is not None else pack_bits(s_prev)
                            cur = cur + CompactLinear.apply(s_prev, lay.R, pk, lay.R.grad if lay.W.requires_grad else None)
                            del s_prev, pk
                        else:
                            cur = cur + lay.rec_current(states[i].s)
                    s, states[i] = lif_step(cur, states[i], self.lif)[::2]
                    del cur
                    if compact and grad:
                        ps = pack_bits(s) if lay.R is not None or _binary_out(lay) else None
                        packed_prev[i] = ps if lay.R is not None else None
                        a, a_keep = s, ps  # a dense first layer is not pooled
                    else:
                        a = a_keep = s
                    continue
                if compact and grad:
                    trainable = lay.W.requires_grad
                    if lay.is_conv:
                        gbuf = lay.W.grad if trainable and not lay.uses_ws else None
                        cur = CompactConv.apply(a, w_eff[i], a_keep, gbuf, lay.spec.kernel // 2)
                    else:
                        a2 = a.reshape(B, -1)
                        keep = a2 if a_keep is a else a_keep
                        cur = CompactLinear.apply(a2, w_eff[i], keep, lay.W.grad if trainable else None)
                    if lay.R is not None:
                        s_prev = states[i].s
                        pk = packed_prev[i] if packed_prev[i] is not None else pack_bits(s_prev)
                        cur = cur + CompactLinear.apply(s_prev, lay.R, pk, lay.R.grad if trainable else None)
                        del s_prev, pk
                    s, states[i] = lif_step(cur, states[i], self.lif)[::2]  # u is not kept (u − v_th is saved)
                    del cur
                    need = lay.R is not None or lay.spec.pool in ("none", "max2")
                    ps = pack_bits(s) if need else None
                    packed_prev[i] = ps if lay.R is not None else None
                    if lay.spec.pool == "none":
                        a, a_keep = s, ps
                    else:
                        a = CompactPool.apply(s, ps if lay.spec.pool == "max2" else None, lay.spec.pool)
                        a_keep = pack_bits(a) if _binary_out(lay) else a
                else:
                    cur = lay.current(a, w_eff[i])  # (B, *neuron)
                    if lay.R is not None:
                        cur = cur + lay.rec_current(states[i].s)
                    s, states[i] = lif_step(cur, states[i], self.lif)[::2]
                    del cur
                    a = lay.pool(s)[0]
                    a_keep = a
            if compact and grad:
                a2 = a.reshape(B, -1)
                keep = a2 if a_keep is a else a_keep
                r = CompactLinear.apply(a2, W_out, keep, W_out.grad)
            else:
                r = F.linear(a.reshape(B, -1), W_out)  # (B, C)
            m = r if m is None else m + r
            del r, s
            if on_step is not None:  # the live state is listed (memory_inventory) only while on_step runs
                self._live = {f"layer{i + 1}.{k}": getattr(st, k) for i, st in enumerate(states) for k in ("v", "s")}
                self._live["readout.m"] = m
                on_step(t)
                self._live = {}
        assert m is not None
        return m, states

    def _finish(self, m: torch.Tensor, y: torch.Tensor, hidden: list[torch.nn.Parameter]) -> dict:
        self._use_frames(None)
        self._live = {}
        self._kept = []
        return self._result(m.detach(), y)


class BPTTCompactLearner(_BPTTFamily):
    """BPTT over all T steps with bit-packed spikes and views of the input (see the module)."""

    rule = "bptt-compact"

    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:
        """Forward T steps with the compact graph, backward once, one optimiser step."""
        x, y = self._check_xy(x, y)
        self._use_frames(x)  # the sparse input path's index lists, when taken (tpprof.snn.sparse)
        B, T = x.shape[0], x.shape[1]
        hidden = self._hidden_trainable()
        self._zero_grads()
        with torch.enable_grad():
            w_eff = [lay.weight_eff() for lay in self.net.layers]
            m, states = self._run(x, 0, T, self._zero_states(B), w_eff, True, on_step)
            loss = F.cross_entropy(m, y)
        del states
        self._live = {}
        loss.backward()
        del w_eff, loss
        self._step_optims(lr_scale)
        return self._finish(m, y, hidden)


class BPTTCkptLearner(_BPTTFamily):
    """BPTT with time checkpointing every k steps (see the module docstring)."""

    rule = "bptt-ckpt"

    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:
        """No-graph forward keeping the segment-start states, then segment-wise recompute + backward."""
        x, y = self._check_xy(x, y)
        self._use_frames(x)  # the sparse input path's index lists, when taken (tpprof.snn.sparse)
        B, T = x.shape[0], x.shape[1]
        k = self.cfg.rule.segment_for(T)
        compact = self.cfg.rule.compact
        starts = list(range(0, T, k))  # segment j = [starts[j], min(starts[j] + k, T))
        hidden = self._hidden_trainable()
        self._zero_grads()
        layers = self.net.layers
        # 1. forward without a graph up to the last segment, keeping the state at each segment start
        states = self._zero_states(B)
        self._kept = []
        m_head = None
        with torch.no_grad():
            w_eff = [lay.weight_eff() for lay in layers]
            for j, t0 in enumerate(starts[:-1]):
                self._kept.append(states)
                m_head, states = self._run(x, t0, t0 + k, states, w_eff, False, on_step, m_head)
        # 2. the last segment with its graph, then ∂E/∂m^T
        self._kept.append(states)
        with torch.enable_grad():
            w_eff = [lay.weight_eff() for lay in layers]
            leaves = self._leaves(states) if len(starts) > 1 else states
            m_tail = self._run(x, starts[-1], T, leaves, w_eff, compact, on_step, m_head)[0]  # m^T, as bptt sums it
            m = m_tail.detach()
            dm = (torch.softmax(m.detach(), dim=1) - self._one_hot(y)) / B  # ∂CE/∂m^T (B, C)
            self._live = {}
            m_tail.backward(dm)
            del m_tail
            adj = self._adjoints(leaves) if len(starts) > 1 else None
            del leaves
            # 3. the other segments, last to first: recompute from the kept state, backward
            for j in range(len(starts) - 2, -1, -1):
                t0 = starts[j]
                kept = self._kept[j]
                leaves = self._leaves(kept) if j > 0 else kept
                w_eff = [lay.weight_eff() for lay in layers]  # a fresh Ŵ graph per segment backward
                m_seg, end = self._run(x, t0, t0 + k, leaves, w_eff, compact, None)
                self._live = {}
                outs, grads = self._with_adjoints(m_seg, dm, end, adj)
                del end, m_seg, adj
                torch.autograd.backward(outs, grads)
                del outs, grads
                adj = self._adjoints(leaves) if j > 0 else None
                del leaves
        del w_eff
        self._step_optims(lr_scale)
        return self._finish(m, y, hidden)

    @staticmethod
    def _with_adjoints(m_seg: torch.Tensor, dm: torch.Tensor, end: list[LIFState],
                       adj: list[tuple[torch.Tensor | None, torch.Tensor | None]]
                       ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Outputs of a segment and their adjoints: (m_seg, ∂E/∂m) and each end-state tensor that
        the next segment handed an adjoint for."""
        outs, grads = [m_seg], [dm]
        for st, (gv, gs) in zip(end, adj):
            for tns, g in ((st.v, gv), (st.s, gs)):
                if g is not None and tns.requires_grad:
                    outs.append(tns)
                    grads.append(g)
        return outs, grads

    @staticmethod
    def _leaves(states: list[LIFState]) -> list[LIFState]:
        """The kept state as graph leaves (no copy): their .grad is the adjoint g_{t0−1}."""
        return [LIFState(st.v.detach().requires_grad_(), st.s.detach().requires_grad_()) for st in states]

    @staticmethod
    def _adjoints(leaves: list[LIFState]) -> list[tuple[torch.Tensor | None, torch.Tensor | None]]:
        return [(st.v.grad, st.s.grad) for st in leaves]


class TBPTTLearner(_BPTTFamily):
    """Truncated BPTT: one update per window of K steps, gradient through the window only."""

    rule = "tbptt"

    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:
        """Windows [w0, w0 + K): forward with a graph from the detached state, loss CE(m^{w1}, y),
        backward, one optimiser step."""
        x, y = self._check_xy(x, y)
        self._use_frames(x)  # the sparse input path's index lists, when taken (tpprof.snn.sparse)
        B, T = x.shape[0], x.shape[1]
        K = min(self.cfg.rule.window_for(T), T)
        hidden = self._hidden_trainable()
        states = self._zero_states(B)
        m = self._zeros(B, self.classes)  # (B, C)
        for w0 in range(0, T, K):
            self._zero_grads()
            with torch.enable_grad():
                w_eff = [lay.weight_eff() for lay in self.net.layers]
                m_w, states = self._run(x, w0, min(w0 + K, T), states, w_eff, self.cfg.rule.compact, on_step, m)
                loss = F.cross_entropy(m_w, y)
            self._live = {}
            loss.backward()
            del loss, w_eff
            states = [LIFState(st.v.detach(), st.s.detach()) for st in states]
            m = m_w.detach()
            del m_w
            self._step_optims(lr_scale)
        return self._finish(m, y, hidden)
