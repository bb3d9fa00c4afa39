"""TESS (reference sheet §10): temporally and spatially local learning with a fixed per-layer
learning-signal generator.

Per layer l and time step t (input path only; o_l = pooled spikes, n_l = its size):

  learning signal:  z = o_l B_lᵀ (B, C),  m_l = (softmax(z) − c) B_l / B   (B, n_l),
                    mapped to the neurons through the pooling's backward
  causal trace:     x̄_l ← λ_pre x̄_l + a_{l−1},  x̄ = Σ_{t′≤t} λ_pre^{t−t′} a_{l−1}[t′]  (B, *in_shape_l)
  non-causal trace: q_l = λ_post e_l,  e_l ← q_l + Ψ(u_l),  q = Σ_{t′<t} λ_post^{t−t′} Ψ(u[t′])
                    e_l: (B, *neuron_shape_l)
  update:  ∂W_l = (m ⊙ α_pre Ψ(u))ᵀ x̄_l  +  (m ⊙ q)ᵀ α_post a_{l−1}
           recurrent R_l: the same with a_{l−1} → s_l^{t−1} and its own causal trace
           conv: both terms through ``conv2d_weight`` (and weight standardisation)
  readout:  as TP, m_out ← m_out + W_out a_L,  ∂W_out = (softmax(m_out) − c)ᵀ ε_L / B

Ψ is the shared ArcTan surrogate Θ′. B_l (C × n_l) has square-wave rows as in the TESS code:
B_l[c, j] = sign(sin(f_c j)) / n_l with f_c = linspace(50, 512, C) (row of class c); it is
deterministic, so ``aux = "regenerated"`` recomputes it every step instead of storing it.
Factors ``cfg.rule.tess_factors = (λ_post, λ_pre, α_post, α_pre)``.

``cfg.rule.flavour = "authors"`` runs the authors' code instead (mapolinario94/TESS @07b311d,
docs/tess_authors.md lists every difference D1–D13 with its place there). Per layer and step,
with θ = 0.6, decay α = 0.5 (conv) / σ(2) (dense), r = round(θ) (conv) / θ (dense):

  u = α v + I(a_{l−1}; Ŵ),  s = [u − θ > 0],  v ← u − r s                    (B, *neuron)
  Ψ = 0.3·max(0, 1 − |u − θ|) (conv)  or  1 / (100 |u − θ| + 1)² (dense)
  x̄ ← λ_pre x̄ + a_{l−1} (B, *in);   e^t = λ_post e^{t−1} + Ψ  (B, *neuron)
  o = pool(s);  h = adaptive_avg_pool(o, p_l) (B, D_l = C_l p_l²; dense: h = o)
  B_l[c, j] = sign(sin(f_c j)) / D_l (float32, regenerated at every call)
  g_h = (softmax(h B_lᵀ) − c) B_l / B,  g_s = pool_backward(adaptive_pool_backward(g_h))
  ∂Ŵ += α_post (g_s ⊙ e^{t−1})ᵀ a_{l−1} + α_pre (g_s ⊙ Ψ)ᵀ x̄          (conv: conv2d_weight)
  conv, weight_std: Ŵ = γ (W − μ) / sqrt(var_unbiased · fan_in + 1e-4), γ learnable (init 1)
  readout: z^t = W_out o_L + b,  ∂W_out += (softmax(z^t) − c)ᵀ o_L / B,  ∂b += Σ_B (softmax(z^t) − c) / B
  all gradients summed over the T steps, one optimiser step per mini-batch.

``tess-authors-schedule`` (:class:`TESSAuthorsScheduleLearner`) is their training loop
(utils/train.py ``do_epoch``): the first T − delay_ls steps as above but without training the
readout; the last delay_ls steps back-propagate CE(z^t) spatially through all blocks
(g_{a_{l−1}} = ∂I/∂a (g_s ⊙ Ψ)), with the same trace-based weight gradient for the given g_s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from tpprof.analytic.rules.tess import tess_authors_lls_pool
from tpprof.config import uses_tess_authors
from tpprof.snn.base import Inventory, Learner
from tpprof.snn.neurons import LIFState, lif_step, surrogate_at

__all__ = ["TESSLearner", "TESSState", "TESSAuthorsState", "TESSAuthorsScheduleLearner", "square_wave_basis",
           "authors_basis"]

WS_EPS_AUTHORS = 1e-4  # ScaledWSConv2d / Conv2dSTDP eps
#: The authors' TESS constants (mapolinario94/TESS, docs/tess_authors.md D13): threshold θ
#: (``Conv2dSTDP``/``LinearSTDP`` threshold=0.6), decay σ(leak) with leak = 0 in ``ConvBlock``
#: (0.5) and the default leak = 2 of ``LinearSTDP`` (σ(2) ≈ 0.881).
TESS_AUTHORS_VTH = 0.6
TESS_AUTHORS_DECAY = {"conv": 0.5, "dense": 1.0 / (1.0 + math.exp(-2.0))}


def authors_basis(classes: int, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """B (C, n) as the authors' ``generate_frequency_matrix`` + ``sign`` + ``/ n``: computed in
    float32 (their ``torch.linspace`` and ``arange().float()``), f_c = linspace(50, 512, C)."""
    f = torch.linspace(50.0, 512.0, classes, dtype=torch.float32, device=device).unsqueeze(1)  # (C, 1)
    j = torch.arange(n, device=device).float().unsqueeze(0)  # (1, n)
    return (torch.sign(torch.sin(f * j)) / n).to(dtype=dtype)  # (C, n)


def square_wave_basis(classes: int, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """B (C, n): B[c, j] = sign(sin(f_c · j)) / n, f_c = linspace(50, 512, C)[c]."""
    f = torch.linspace(50.0, 512.0, classes, dtype=torch.float64).unsqueeze(1)  # (C, 1)
    j = torch.arange(n, dtype=torch.float64).unsqueeze(0)  # (1, n)
    return (torch.sign(torch.sin(f * j)) / n).to(device=device, dtype=dtype)


@dataclass
class TESSState:
    """What TESS holds between two time steps of one mini-batch."""

    lif: list[LIFState]  # (v, s) per layer, (B, *neuron_shape_l)
    tr_in: list[torch.Tensor | None]  # causal presynaptic trace x̄_l, (B, *in_shape_l); None if α_pre = 0
    tr_post: list[torch.Tensor | None]  # e_l, (B, *neuron_shape_l); None if α_post = 0
    tr_rec: list[torch.Tensor | None]  # recurrent causal trace, (B, H_l); None unless recurrent and α_pre ≠ 0
    eps_last: torch.Tensor  # ε_L for the readout, (B, *out_shape_L)
    m: torch.Tensor  # readout potential, (B, C)


class TESSLearner(Learner):
    """TESS learner; see the module docstring for the equations."""

    rule = "tess"

    def _setup_extra(self) -> None:
        self.factors = tuple(float(f) for f in self.cfg.rule.tess_factors)
        self.authors = uses_tess_authors(self.cfg.rule)
        self.aux_stored = self.cfg.rule.aux == "stored" and not self.authors  # authors: B_l regenerated (D8)
        self.basis: list[torch.Tensor] | None = None
        if self.aux_stored:
            # a frozen layer forms no learning signal: its B_l is not held (RuleSpec.trainable)
            self.basis = [self._basis(i) if self.trains(i) else None for i in range(len(self.net.layers))]
        self.gains: list[torch.nn.Parameter | None] = []
        self.bias: torch.nn.Parameter | None = None
        if self.authors:
            self.lls_pool = tess_authors_lls_pool(self.cfg.net)
            self.gains = [torch.nn.Parameter(torch.ones(lay.W.shape[0], 1, 1, 1, device=self.device, dtype=self.dtype))
                          if lay.uses_ws else None for lay in self.net.layers]  # γ_l (C_out, 1, 1, 1)
            self.bias = torch.nn.Parameter(torch.zeros(self.classes, device=self.device, dtype=self.dtype))  # b (C,)

    def _param_groups(self) -> list[tuple[str, list[torch.nn.Parameter]]]:
        groups = super()._param_groups()
        if not self.authors:
            return groups
        out = []
        for i, (name, ps) in enumerate(groups[:-1]):
            out.append((name, ps + ([self.gains[i]] if self.gains[i] is not None else [])))
        out.append(("readout", groups[-1][1] + [self.bias]))
        return out

    def named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        out = self.net.named_parameters()
        if self.authors:
            out += [(f"layer{i + 1}.gain", g) for i, g in enumerate(self.gains) if g is not None]
            out.append(("readout.b", self.bias))
        return out

    def _basis(self, i: int) -> torch.Tensor:
        return square_wave_basis(self.classes, self.net.layers[i].geom.n_out, self.device, self.dtype)

    def _aux_inventory(self) -> Inventory:
        if self.basis is None:
            return []
        return [(f"layer{i + 1}.B", "aux", b) for i, b in enumerate(self.basis) if b is not None]

    def _state_inventory(self) -> Inventory:
        st = self._state
        if st is None:
            return []
        if isinstance(st, TESSAuthorsState):
            inv_a: Inventory = []
            for i in range(len(st.v)):
                l = i + 1
                inv_a += [(f"layer{l}.v", "neuron_state", st.v[i]), (f"layer{l}.trace_in", "traces", st.tr_in[i]),
                          (f"layer{l}.trace_post", "traces", st.e[i])]
            return inv_a + [("readout.pred", "neuron_state", st.m)]
        inv: Inventory = []
        for i in range(len(st.lif)):
            l = i + 1
            inv += [(f"layer{l}.v", "neuron_state", st.lif[i].v), (f"layer{l}.s", "neuron_state", st.lif[i].s)]
            for key, tr in (("trace_in", st.tr_in[i]), ("trace_post", st.tr_post[i]), ("trace_rec", st.tr_rec[i])):
                if tr is not None:
                    inv.append((f"layer{l}.{key}", "traces", tr))
        inv += [(f"layer{len(st.lif)}.eps", "traces", st.eps_last), ("readout.m", "neuron_state", st.m)]
        return inv

    def _new_state(self, B: int) -> TESSState:
        """All-zero state; a trace whose term has a zero factor (α_pre or α_post), or of a frozen
        layer (it has no update), is not kept."""
        layers = self.net.layers
        causal, noncausal = self.factors[3] != 0.0, self.factors[2] != 0.0
        train = [self.trains(i) for i in range(len(layers))]
        return TESSState(
            lif=[self._lif_zeros(B, lay.geom.neuron_shape) for lay in layers],
            tr_in=[self._zeros(B, *lay.geom.in_shape) if causal and t else None for lay, t in zip(layers, train)],
            tr_post=[self._zeros(B, *lay.geom.neuron_shape) if noncausal and t else None
                     for lay, t in zip(layers, train)],
            tr_rec=[self._zeros(B, lay.spec.width) if lay.R is not None and causal and t else None
                    for lay, t in zip(layers, train)],
            eps_last=self._zeros(B, *layers[-1].geom.out_shape),
            m=self._zeros(B, self.classes),
        )

    @torch.no_grad()
    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:
        """One mini-batch of T steps; returns {"loss", "correct", "n"} (loss = CE of m^T)."""
        x, y = self._check_xy(x, y)
        if self.authors:
            return self._train_batch_authors(x, y, on_step, lr_scale)
        B = x.shape[0]
        self._state = None
        st = self._state = self._new_state(B)
        c = self._one_hot(y)
        self._run_local_steps(x, c, st, lr_scale, on_step)  # per step, the first contribution overwrites
        return self._result(st.m, y)

    def _step(self, x_t: torch.Tensor, c: torch.Tensor, st: TESSState, acc: float) -> None:
        B = x_t.shape[0]
        p = self.lif
        lam_post, lam_pre, a_post, a_pre = self.factors
        a = x_t
        for i, lay in enumerate(self.net.layers):
            s_prev = st.lif[i].s
            w_eff = lay.weight_eff()
            cur = self._current1(a, w_eff) if i == 0 else lay.current(a, w_eff)  # (B, *neuron)
            if lay.R is not None:
                cur += lay.rec_current(s_prev)
            s, u, st.lif[i] = lif_step(cur, st.lif[i], p)
            o, idx = lay.pool(s)  # (B, *out)
            if self.trains(i):
                psi = surrogate_at(u, p.v_th, p.k)  # Ψ(u^t), (B, *neuron)
                basis = self.basis[i] if self.basis is not None else self._basis(i)  # (C, n_out)
                err = torch.softmax(o.reshape(B, -1) @ basis.t(), dim=1).sub_(c)  # (B, C)
                sig = (err @ basis).div_(B).view_as(o)  # learning signal m, (B, *out)
                sig = lay.pool_backward(sig, s, idx)  # (B, *neuron)
                pairs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (presynaptic, δ) for W_l
                rec: list[tuple[torch.Tensor, torch.Tensor]] = []  # (presynaptic, δ) for R_l
                if a_pre != 0.0:  # causal term
                    torch.add(a, st.tr_in[i], alpha=lam_pre, out=st.tr_in[i])  # x̄ ← λ_pre x̄ + a_{l−1}
                    d_causal = sig * psi * a_pre  # (B, *neuron)
                    pairs.append((st.tr_in[i], d_causal))
                    if lay.R is not None:
                        torch.add(s_prev, st.tr_rec[i], alpha=lam_pre, out=st.tr_rec[i])
                        rec.append((st.tr_rec[i], d_causal))
                frame_delta = None  # layer 1 on the sparse path: the input frame's δ, applied on its index lists
                if a_post != 0.0:  # non-causal term
                    q = st.tr_post[i].mul_(lam_post)  # q = λ_post e^{t−1}, in place (e is rebuilt below)
                    d_nc = sig * q * a_post  # (B, *neuron)
                    if i == 0 and self._frames is not None:
                        frame_delta = d_nc
                    else:
                        pairs.append((a, d_nc))
                    if lay.R is not None:
                        rec.append((s_prev, d_nc))
                    q.add_(psi)  # e^t = λ_post e^{t−1} + Ψ(u^t)
                if pairs:
                    lay.add_weight_grad(lay.W.grad, pairs, beta=acc)
                if frame_delta is not None:
                    self._wgrad1(lay.W.grad, a, frame_delta, 1.0 if pairs else acc)
                elif not pairs:  # α_pre = α_post = 0: no hidden update
                    lay.W.grad.mul_(acc)
                if lay.R is not None:
                    lay.R.grad.mul_(acc)
                    for pre, d in rec:
                        lay.R.grad.addmm_(d.t(), pre)  # (H, H)
            a = o
        torch.add(a, st.eps_last, alpha=self.beta, out=st.eps_last)
        st.m.addmm_(a.reshape(B, -1), self.net.W_out.t())
        self._readout_delta(st.m, c, st.eps_last, beta=acc)

    # ---- the authors' code (flavour "authors", rule tess-authors-schedule) -------------------
    def _authors_w_hat(self) -> list[torch.Tensor]:
        """Ŵ_l per layer for this mini-batch (weights change only at its end, D4); W_l itself
        when the layer is not standardised."""
        out = []
        for lay, g in zip(self.net.layers, self.gains):
            if g is None:
                out.append(lay.W)
            else:
                dev, sigma = _ws_authors(lay.W)
                out.append(dev.mul_(g / sigma))  # Ŵ = γ (W − μ)/σ, in the W − μ buffer  (C_out, C_in, k, k)
        return out

    def _new_authors_state(self, B: int) -> "TESSAuthorsState":
        """v, x̄ and e per layer (kept whatever the factors, D10; no spikes kept, D11) and Σ_t z^t."""
        layers = self.net.layers
        return TESSAuthorsState(
            v=[self._zeros(B, *lay.geom.neuron_shape) for lay in layers],
            tr_in=[self._zeros(B, *lay.geom.in_shape) for lay in layers],
            e=[self._zeros(B, *lay.geom.neuron_shape) for lay in layers],
            m=self._zeros(B, self.classes),
        )

    def _train_batch_authors(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None,
                             lr_scale: float) -> dict:
        B, T = x.shape[0], x.shape[1]
        self._state = None
        st = self._state = self._new_authors_state(B)
        c = self._one_hot(y)
        schedule = self.cfg.rule.name == "tess-authors-schedule"
        delay = self.cfg.rule.delay_ls
        self._zero_grads()
        w_hat = self._authors_w_hat()
        for t in range(T):
            bp = schedule and (T - t) <= delay  # their do_epoch: target=None (back-prop) on the last delay_ls steps
            self._authors_step(self._x_at(x, t), c, st, w_hat, readout=bp or not schedule, bp=bp)
            if on_step is not None:
                on_step(t)
        self._step_optims(lr_scale)  # one step per mini-batch (D4)
        return self._result(st.m, y)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        if not self.authors:
            return super().predict(x)
        return self._authors_input_path(self._check_x(x))[0]  # Σ_t z^t (their pred)

    @torch.no_grad()
    def layer_traces(self, x: torch.Tensor) -> list[torch.Tensor]:
        if not self.authors:
            return super().layer_traces(x)
        return self._authors_input_path(self._check_x(x), want_traces=True)[1]

    def _authors_input_path(self, x: torch.Tensor, want_traces: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The authors' dynamics without learning: Σ_t z^t (B, C) and ε_l^T = Σ_t β^{T−t} o_l^t (B, n_out_l)."""
        B = x.shape[0]
        st = self._new_authors_state(B)
        w_hat = self._authors_w_hat()
        traces = [self._zeros(B, lay.geom.n_out) for lay in self.net.layers] if want_traces else []
        for t in range(x.shape[1]):
            a = self._x_at(x, t)
            for i in range(len(self.net.layers)):
                a, _ = self._authors_layer(i, a, None, st, w_hat[i], False)
                if want_traces:
                    traces[i].mul_(self.beta).add_(a.reshape(B, -1))
            st.m.add_(torch.addmm(self.bias, a.reshape(B, -1), self.net.W_out.t()))
        return st.m, traces

    def _authors_step(self, x_t: torch.Tensor, c: torch.Tensor | None, st: "TESSAuthorsState",
                      w_hat: list[torch.Tensor], readout: bool, bp: bool) -> None:
        """One time step: layers in order (local signal unless ``bp``), then the readout."""
        B = x_t.shape[0]
        learn = not self.freeze_hidden and c is not None
        a = x_t
        kept: list[tuple] = []  # back-prop steps: (a_{l−1}, Ψ, e^{t−1}, s, idx) per layer
        for i in range(len(self.net.layers)):
            a, keep = self._authors_layer(i, a, c if learn and not bp and self.trains(i) else None, st, w_hat[i], bp)
            if keep is not None:
                kept.append(keep)
        a_flat = a.reshape(B, -1)  # (B, n_out_L)
        z = torch.addmm(self.bias, a_flat, self.net.W_out.t())  # z^t = W_out o_L + b  (B, C)
        st.m.add_(z)
        if c is None or not (readout or bp):
            return
        g = torch.softmax(z, dim=1).sub_(c).div_(B)  # ∂CE(z^t)/∂z, (B, C)
        del z
        self.net.W_out.grad.addmm_(g.t(), a_flat)
        self.bias.grad.add_(g.sum(0))
        if bp and learn:
            self._authors_backprop((g @ self.net.W_out).view_as(a), kept, st, w_hat)

    def _authors_layer(self, i: int, a: torch.Tensor, c: torch.Tensor | None, st: "TESSAuthorsState",
                       w_hat: torch.Tensor, keep: bool) -> tuple[torch.Tensor, tuple | None]:
        """Layer i at one step: LIF, traces, and (``c`` given) the local update. Returns the
        pooled spikes o (B, *out) and, when ``keep``, what the back-prop step reads."""
        lay = self.net.layers[i]
        conv = lay.is_conv
        lam_post, lam_pre = self.factors[0], self.factors[1]
        th = TESS_AUTHORS_VTH
        u = torch.add(lay.current(a, w_hat), st.v[i], alpha=TESS_AUTHORS_DECAY["conv" if conv else "dense"])
        x_thr = u - th  # u − θ  (B, *neuron)
        s = (x_thr > 0).to(self.dtype)  # strict threshold (D9)
        if conv:  # D2: triangle 0.3·max(0, 1 − |u − θ|)
            psi = x_thr.abs_().neg_().add_(1.0).clamp_(min=0.0).mul_(0.3)
        else:  # D2: 1 / (100 |u − θ| + 1)²
            psi = x_thr.abs_().mul_(100.0).add_(1.0).square_().reciprocal_()
        del x_thr
        st.tr_in[i].mul_(lam_pre).add_(a)  # x̄ ← λ_pre x̄ + a_{l−1}
        e_prev = st.e[i]
        st.e[i] = torch.add(psi, e_prev, alpha=lam_post)  # e^t = λ_post e^{t−1} + Ψ
        st.v[i] = u.sub_(s, alpha=float(round(th)) if conv else th)  # D6: conv resets by round(θ)
        del u
        o, idx = lay.pool(s)
        if c is not None:
            self._authors_wgrad(i, a, st.tr_in[i], e_prev, psi, self._authors_lls_grad(i, o, s, idx, c))
        return o, ((a, psi, e_prev, s, idx) if keep else None)

    def _authors_backprop(self, g_o: torch.Tensor, kept: list[tuple], st: "TESSAuthorsState",
                          w_hat: list[torch.Tensor]) -> None:
        """Back-prop step: ∂CE(z^t)/∂o_L down through all blocks within the step (their
        STDPConv2dGrad / STDPLinearGrad backward: ∂a_{l−1} = ∂I/∂a (g_s ⊙ Ψ))."""
        for i in range(len(self.net.layers) - 1, self.frozen - 1, -1):  # down to the first trained layer
            lay = self.net.layers[i]
            a_in, psi, e_prev, s, idx = kept[i]
            g_s = lay.pool_backward(g_o, s, idx)  # (B, *neuron)
            del g_o
            self._authors_wgrad(i, a_in, st.tr_in[i], e_prev, psi, g_s)
            if i > self.frozen:
                d = g_s.mul_(psi)  # ∂L/∂I  (B, *neuron), in place: g_s is not read again
                if lay.is_conv:
                    g_o = torch.nn.grad.conv2d_input(a_in.shape, w_hat[i], d, padding=lay.spec.kernel // 2)
                else:
                    g_o = (d @ w_hat[i]).view_as(a_in)  # (B, *in)
                del d
            del g_s
            kept[i] = None  # type: ignore[call-overload]  # this layer's kept tensors are no longer needed

    def _authors_lls_grad(self, i: int, o: torch.Tensor, s: torch.Tensor, idx: torch.Tensor | None,
                          c: torch.Tensor) -> torch.Tensor:
        """g_s = ∂CE(h B_lᵀ)/∂s through the LLS pool and the block's pool (compute_LLS)."""
        B = o.shape[0]
        lay = self.net.layers[i]
        p = self.lls_pool[i]
        h = o.reshape(B, -1) if p is None else F.adaptive_avg_pool2d(o, p).reshape(B, -1)  # (B, D)
        basis = authors_basis(self.classes, h.shape[1], self.device, self.dtype)  # (C, D), regenerated (D8)
        err = torch.softmax(h @ basis.t(), dim=1).sub_(c).div_(B)  # (B, C)
        del h
        g_h = err @ basis  # (B, D)
        del err, basis
        if p is not None:
            g_h = torch.ops.aten._adaptive_avg_pool2d_backward(g_h.view(B, o.shape[1], p, p), o)  # (B, *out)
        return lay.pool_backward(g_h.view_as(o), s, idx)

    def _authors_wgrad(self, i: int, a: torch.Tensor, tr_in: torch.Tensor, e_prev: torch.Tensor,
                       psi: torch.Tensor, g_s: torch.Tensor) -> None:
        """∂Ŵ = α_post (g_s ⊙ e^{t−1})ᵀ a + α_pre (g_s ⊙ Ψ)ᵀ x̄ (D1: e^{t−1}, not λ_post e^{t−1}),
        then through the standardisation into W.grad and γ.grad."""
        lay = self.net.layers[i]
        a_post, a_pre = self.factors[2], self.factors[3]
        pairs = [(a, torch.mul(g_s, e_prev).mul_(a_post)), (tr_in, torch.mul(g_s, psi).mul_(a_pre))]
        if not lay.is_conv:
            for pre, d in pairs:
                lay.W.grad.addmm_(d.t(), pre.reshape(pre.shape[0], -1))  # (H, n_in)
            return
        G = None
        for pre, d in pairs:
            gi = torch.nn.grad.conv2d_weight(pre, lay.W.shape, d, padding=lay.spec.kernel // 2)
            G = gi if G is None else G.add_(gi)  # ∂L/∂Ŵ  (C_out, C_in, k, k)
            del gi
        del pairs, pre, d
        gain = self.gains[i]
        if gain is None:
            lay.W.grad.add_(G)
            return
        dims = (1, 2, 3)
        dev, sigma = _ws_authors(lay.W)
        k = lay.W[0].numel() / (lay.W[0].numel() - 1)  # unbiased variance: σ² = k Σ d² + eps
        gd = (G * dev).sum(dim=dims, keepdim=True)  # Σ G ⊙ (W − μ)  (C_out, 1, 1, 1)
        gain.grad.add_(gd / sigma)  # ∂γ = Σ G ⊙ (W − μ)/σ
        G.sub_(G.mean(dim=dims, keepdim=True)).div_(sigma)  # (G − Ḡ)/σ
        G.sub_(dev.mul_(gd * k / sigma**3))  # − k d Σ(G ⊙ d)/σ³
        lay.W.grad.addcmul_(G, gain.expand_as(G))  # ∂W = γ [(G − Ḡ)/σ − k d Σ(G ⊙ d)/σ³]


def _ws_authors(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W − μ and σ = sqrt(var_unbiased · fan_in + 1e-4) per output channel (Conv2dSTDP.get_weight)."""
    dims = tuple(range(1, w.dim()))
    n = w[0].numel()
    dev = w - w.mean(dim=dims, keepdim=True)  # (C_out, C_in, k, k)
    sigma = torch.linalg.vector_norm(dev, 2, dim=dims, keepdim=True).square_().mul_(n / (n - 1)).add_(WS_EPS_AUTHORS).sqrt_()
    return dev, sigma  # σ: (C_out, 1, 1, 1)


@dataclass
class TESSAuthorsState:
    """What the authors' TESS holds between two steps: v, x̄, e per layer (B, *shape_l) and Σ_t z^t (B, C)."""

    v: list[torch.Tensor]
    tr_in: list[torch.Tensor]
    e: list[torch.Tensor]
    m: torch.Tensor


class TESSAuthorsScheduleLearner(TESSLearner):
    """The authors' training loop (D12): local signal on the first T − delay_ls steps, readout
    cross-entropy back-propagated through all blocks on the last delay_ls."""

    rule = "tess-authors-schedule"
