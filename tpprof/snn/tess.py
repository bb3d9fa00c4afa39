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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from tpprof.snn.base import Inventory, Learner
from tpprof.snn.neurons import LIFState, lif_step, surrogate_at

__all__ = ["TESSLearner", "TESSState", "square_wave_basis"]


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
        self.aux_stored = self.cfg.rule.aux == "stored"
        self.basis: list[torch.Tensor] | None = None
        if self.aux_stored:
            self.basis = [self._basis(i) for i in range(len(self.net.layers))]

    def _basis(self, i: int) -> torch.Tensor:
        return square_wave_basis(self.classes, self.net.layers[i].geom.n_out, self.device, self.dtype)

    def _aux_inventory(self) -> Inventory:
        if self.basis is None:
            return []
        return [(f"layer{i + 1}.B", "aux", b) for i, b in enumerate(self.basis)]

    def _state_inventory(self) -> Inventory:
        st = self._state
        if st is None:
            return []
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
        """All-zero state; a trace whose term has a zero factor (α_pre or α_post) is not kept."""
        layers = self.net.layers
        causal, noncausal = self.factors[3] != 0.0, self.factors[2] != 0.0
        return TESSState(
            lif=[self._lif_zeros(B, lay.geom.neuron_shape) for lay in layers],
            tr_in=[self._zeros(B, *lay.geom.in_shape) if causal else None for lay in layers],
            tr_post=[self._zeros(B, *lay.geom.neuron_shape) if noncausal else None for lay in layers],
            tr_rec=[self._zeros(B, lay.spec.width) if lay.R is not None and causal else None for lay in layers],
            eps_last=self._zeros(B, *layers[-1].geom.out_shape),
            m=self._zeros(B, self.classes),
        )

    @torch.no_grad()
    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:
        """One mini-batch of T steps; returns {"loss", "correct", "n"} (loss = CE of m^T)."""
        x, y = self._check_xy(x, y)
        B, T = x.shape[0], x.shape[1]
        self._state = None
        st = self._state = self._new_state(B)
        c = self._one_hot(y)
        per_step = self.cfg.rule.cadence == "step"
        self._zero_grads()  # per step, the first contribution overwrites instead (beta = 0)
        acc = 0.0 if per_step else 1.0
        for t in range(T):
            self._step(self._x_at(x, t), c, st, acc)
            if per_step or t == T - 1:
                self._step_optims(lr_scale)
            if on_step is not None:
                on_step(t)
        return self._result(st.m, y)

    def _step(self, x_t: torch.Tensor, c: torch.Tensor, st: TESSState, acc: float) -> None:
        B = x_t.shape[0]
        p = self.lif
        lam_post, lam_pre, a_post, a_pre = self.factors
        learn = not self.freeze_hidden
        a = x_t
        for i, lay in enumerate(self.net.layers):
            s_prev = st.lif[i].s
            cur = lay.current(a, lay.weight_eff())  # (B, *neuron)
            if lay.R is not None:
                cur += lay.rec_current(s_prev)
            s, u, st.lif[i] = lif_step(cur, st.lif[i], p)
            o, idx = lay.pool(s)  # (B, *out)
            if learn:
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
                if a_post != 0.0:  # non-causal term
                    q = st.tr_post[i].mul_(lam_post)  # q = λ_post e^{t−1}, in place (e is rebuilt below)
                    d_nc = sig * q * a_post  # (B, *neuron)
                    pairs.append((a, d_nc))
                    if lay.R is not None:
                        rec.append((s_prev, d_nc))
                    q.add_(psi)  # e^t = λ_post e^{t−1} + Ψ(u^t)
                if pairs:
                    lay.add_weight_grad(lay.W.grad, pairs, beta=acc)
                else:  # α_pre = α_post = 0: no hidden update
                    lay.W.grad.mul_(acc)
                if lay.R is not None:
                    lay.R.grad.mul_(acc)
                    for pre, d in rec:
                        lay.R.grad.addmm_(d.t(), pre)  # (H, H)
            a = o
        torch.add(a, st.eps_last, alpha=self.beta, out=st.eps_last)
        st.m.addmm_(a.reshape(B, -1), self.net.W_out.t())
        self._readout_delta(st.m, c, st.eps_last, beta=acc)
