"""OTTT: online training through time (Xiao et al., NeurIPS 2022), on tpprof's nets and readout.

Per time step t (no temporal graph; everything below is of this step only):

  forward        u_l = α v_l + I_l(a_{l−1}) (+ R_l s_l^{t−1}),  s_l = Θ(u_l − v_th),  a_l = pool(s_l)
  traces         â_{l−1} ← λ â_{l−1} + a_{l−1}    (B, *in_shape_l),  λ = the neuron's α (the leak)
                 r̂_l ← λ r̂_l + s_l^{t−1}          (B, H_l), recurrent layers (R_l's input)
                 ε_L ← ε_L + a_L                  (B, *out_L), λ = 1: the readout is the integrator
  readout        m^t = m^{t−1} + W_out a_L,  instantaneous loss L_t = CE(m^t, y) (mean over B)
  spatial        g_m = (softmax(m^t) − c) / B;  ∂L_t/∂a_L = g_m W_out
  backprop       g_{s_l} = pool_backward(∂L_t/∂a_l);  δ_l = g_{s_l} ⊙ Θ′(u_l)   (reset detached)
                 ∂L_t/∂a_{l−1} = δ_l W_l (dense) | conv2d_input(δ_l, Ŵ_l) (conv)
  gradients      ∂W_l = δ_lᵀ â_{l−1} (conv: conv2d_weight(â_{l−1}, δ_l), through the standardisation),
                 ∂R_l = δ_lᵀ r̂_l,  ∂W_out = g_mᵀ ε_L

The trace stands in for the history of inputs, so ∂W_l is OTTT's online approximation of the
gradient through time; only one step's u_l, s_l and pooling switches are held for the spatial
backward. ``cadence = "step"``: every layer's optimiser steps after each step (OTTT_O);
``"sequence"``: the gradients are summed over the T steps and applied once (OTTT_A).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from tpprof.snn.base import Inventory, Learner
from tpprof.snn.neurons import LIFState, lif_step, mul_surrogate_

__all__ = ["OTTTLearner", "OTTTState"]


@dataclass
class OTTTState:
    """What OTTT holds between two time steps of one mini-batch."""

    lif: list[LIFState]  # (v, s) per layer, (B, *neuron_shape_l)
    tr_in: list[torch.Tensor]  # â_{l−1}, (B, *in_shape_l)
    tr_rec: list[torch.Tensor | None]  # r̂_l, (B, H_l); None unless recurrent
    eps_last: torch.Tensor  # ε_L, (B, *out_shape_L)
    m: torch.Tensor  # readout potential, (B, C)


class OTTTLearner(Learner):
    """OTTT learner; see the module docstring for the equations."""

    rule = "ottt"
    sparse_wgrad = False  # ∂W_1 = δᵀ â_0 reads the input trace, dense: only the forward is sparse

    def _state_inventory(self) -> Inventory:
        st = self._state
        if not isinstance(st, OTTTState):
            return []
        inv: Inventory = []
        for i, lif in enumerate(st.lif):
            l = i + 1
            inv += [(f"layer{l}.v", "neuron_state", lif.v), (f"layer{l}.s", "neuron_state", lif.s)]
            if st.tr_in[i] is not None:
                inv.append((f"layer{l}.trace_in", "traces", st.tr_in[i]))
            if st.tr_rec[i] is not None:
                inv.append((f"layer{l}.trace_rec", "traces", st.tr_rec[i]))
        inv += [(f"layer{len(st.lif)}.eps", "traces", st.eps_last), ("readout.m", "neuron_state", st.m)]
        return inv

    def _new_state(self, B: int) -> OTTTState:
        layers = self.net.layers
        return OTTTState(
            lif=[self._lif_zeros(B, lay.geom.neuron_shape) for lay in layers],
            # a frozen layer (RuleSpec.trainable) has no weight gradient: no presynaptic trace
            tr_in=[self._zeros(B, *lay.geom.in_shape) if self.trains(i) else None for i, lay in enumerate(layers)],
            tr_rec=[self._zeros(B, lay.spec.width) if lay.R is not None and self.trains(i) else None
                    for i, lay in enumerate(layers)],
            eps_last=self._zeros(B, *layers[-1].geom.out_shape),
            m=self._zeros(B, self.classes),
        )

    @torch.no_grad()
    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:
        """One mini-batch of T steps; returns {"loss", "correct", "n"} (loss = CE of m^T)."""
        x, y = self._check_xy(x, y)
        B = x.shape[0]
        self._state = None
        st = self._state = self._new_state(B)
        c = self._one_hot(y)
        self._run_local_steps(x, c, st, lr_scale, on_step)
        return self._result(st.m, y)

    def _step(self, x_t: torch.Tensor, c: torch.Tensor, st: OTTTState, acc: float) -> None:
        """Forward one step, update the traces, backpropagate L_t through the layers of this step."""
        B = x_t.shape[0]
        p = self.lif
        lam = p.alpha
        learn = not self.freeze_hidden  # the spatial backward stops below the first trained layer
        layers = self.net.layers
        w_eff = [lay.weight_eff() for lay in layers]
        a = x_t
        keep: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []  # (u, s, pool idx) per layer
        for i, lay in enumerate(layers):
            s_prev = st.lif[i].s
            cur = self._current1(a, w_eff[i]) if i == 0 else lay.current(a, w_eff[i])  # (B, *neuron)
            if lay.R is not None:
                cur += lay.rec_current(s_prev)
                if st.tr_rec[i] is not None:
                    st.tr_rec[i].mul_(lam).add_(s_prev)  # r̂ ← λ r̂ + s^{t−1}
            s, u, st.lif[i] = lif_step(cur, st.lif[i], p)
            if st.tr_in[i] is not None:
                st.tr_in[i].mul_(lam).add_(a)  # â_{l−1} ← λ â_{l−1} + a_{l−1}
            o, idx = lay.pool(s)  # (B, *out)
            keep.append((u, s, idx) if self.trains(i) else None)  # a frozen layer is not back-propagated
            del u
            a = o
        st.eps_last.add_(a)  # ε_L ← ε_L + a_L
        st.m.addmm_(a.reshape(B, -1), self.net.W_out.t())  # m^t = m^{t−1} + W_out a_L
        g_m = torch.softmax(st.m, dim=1).sub_(c).div_(B)  # ∂L_t/∂m^t, (B, C)
        self.net.W_out.grad.addmm_(g_m.t(), st.eps_last.reshape(B, -1), beta=acc)  # (C, n_out_L)
        if not learn:
            return
        g_a = (g_m @ self.net.W_out).view_as(a)  # ∂L_t/∂a_L, (B, *out_L)
        for i in range(len(layers) - 1, self.frozen - 1, -1):  # down to the first trained layer
            lay = layers[i]
            u, s, idx = keep.pop()
            g_s = lay.pool_backward(g_a, s, idx)  # (B, *neuron)
            delta = mul_surrogate_(g_s, u, p.v_th, p.k)  # δ_l = g_s ⊙ Θ′(u_l), in place (g_s is this step's)
            del u, g_s, g_a
            lay.add_weight_grad(lay.W.grad, [(st.tr_in[i], delta)], beta=acc)  # ∂W_l = δ_lᵀ â_{l−1}
            if lay.R is not None:
                lay.R.grad.addmm_(delta.t(), st.tr_rec[i], beta=acc)  # ∂R_l = δ_lᵀ r̂_l, (H, H)
            if i > self.frozen:  # layer i−1 learns: carry ∂L_t/∂a_{l−1} down
                if lay.is_conv:
                    g_a = torch.nn.grad.conv2d_input((B, *lay.geom.in_shape), w_eff[i],
                                                     delta, padding=lay.spec.kernel // 2)  # (B, *in_shape)
                else:
                    g_a = (delta @ w_eff[i]).view(B, *lay.geom.in_shape)  # (B, n_in)
            del delta, s, idx
