"""Traces Propagation (reference sheet §3–8): forward-only, layer-local, time-local learning.

Per mini-batch (c = one-hot labels; all state zero), for every time step t:

  target trace 0:   ε̃_0 ← β ε̃_0 + c = κ_t c   (a number κ_t is kept, not the (B, C) tensor)
  layer l, input path:   u_l = LIF(W_l a_{l−1} [+ R_l s_l^{t−1}]),  a_l = pool(s_l)
  layer l, target path:  ũ_l = LIF(S c  (l = 1)  |  W_l ã_{l−1} (l ≥ 2)  [+ R_l s̃_l^{t−1}])
  traces:           ε_l ← β ε_l + a_l ;  ε̃_l ← β ε̃_l + ã_l                  (B, *out_shape_l)
  local loss (13)–(15):  z = ε_l ε̃_lᵀ / P   (B, B),   P = spatial positions (1 if dense)
                         y = softmax_b′ f(ε̃_{l−1}[b], ε̃_{l−1}[b′]),  f = −‖·‖ (or dot)
                         E_l = −(1/B) Σ y log softmax(z)
  update (Eq. 18), closed form with G = (softmax(z) − y) / B   (B, B):
      δ_in = pool′(G ε̃_l / P) ⊙ Θ′(u_l)        δ_tg = pool′(Gᵀ ε_l / P) ⊙ Θ′(ũ_l)
      ∂E/∂W_l = δ_inᵀ a_{l−1} + δ_tgᵀ ã_{l−1}   (second term only for l ≥ 2: layer 1's
                                                 target path runs through the fixed S)
      ∂E/∂R_l = δ_inᵀ s_l^{t−1} + δ_tgᵀ s̃_l^{t−1};   ∂E/∂S = δ_tg,1ᵀ c  (only with train_s)
  readout:          m ← m + W_out a_L ;  ∂W_out = (softmax(m) − c)ᵀ ε_L / B
  optimiser step per layer (cadence "step"), or accumulate over T and step once ("sequence").

Class-deduplicated target path (``RuleSpec.target_rows = "classes"``): the target path's
input is the label, its state starts at 0 and the weights are shared, so every sample of
class k has the same ṽ_l, s̃_l, ε̃_l. They are held once per class present (K ≤ min(B, C)
rows; n_k samples of class k, b ↦ k(b)) and the B×B problem becomes B×K, exactly:
  z_K = ε ε̃_Kᵀ / P (B, K);  softmax_b′(z)[b, b′] = softmax_k(z_K + log n)[b, k(b′)] / n_k(b′)
  y likewise from the K×K similarity f(ε̃_{l−1,K}):  y_K = softmax_k(f_K + log n) (K, K), row k(b)
  G_K = Σ_{b′ ∈ k} G[b, b′] = (softmax(z_K + log n) − y_K[k(b)]) / (B P)   (B, K)
  dε = G_K ε̃_K / … (= G ε̃),  dε̃_K = G_Kᵀ ε (= Σ_{b′ ∈ k} dε̃[b′]),  and the target-path
  weight, R and S terms sum over the K rows;  E_l = −(1/B) Σ y_K (log softmax(z_K + log n) − log n).

Inputs, past state and past traces are constants of E_l^t, so no autograd graph exists:
the whole step runs under ``torch.no_grad`` and every gradient is a matmul (conv: through
``conv2d_weight`` with the pooling's backward done explicitly). No B×B×H tensor is formed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from tpprof.snn.base import Inventory, Learner
from tpprof.snn.nets import ws_backward, ws_forward
from tpprof.snn.neurons import LIFState, lif_step, mul_surrogate_

__all__ = ["TPLearner", "TPState", "ClassRows", "tp_similarity", "label_similarity", "tp_loss_grad",
           "tp_loss_grad_classes", "pairwise_distance"]


@dataclass
class ClassRows:
    """The classes present in a mini-batch (target_rows="classes"): K of them."""

    inv: torch.Tensor  # (B,) int64: k(b), the row of sample b's class
    log_n: torch.Tensor  # (K,) log n_k, n_k = samples of class k in the batch
    c: torch.Tensor  # (K, C) one-hot labels of the K classes (the target path's input)


@dataclass
class TPState:
    """Everything TP holds between two time steps of one mini-batch."""

    inp: list[LIFState]  # input path (v, s) per layer, (B, *neuron_shape_l)
    tgt: list[LIFState]  # target path (ṽ, s̃) per layer, (B | K, *neuron_shape_l)
    eps: list[torch.Tensor]  # ε_l, (B, *out_shape_l)
    eps_t: list[torch.Tensor]  # ε̃_l, (B | K, *out_shape_l)
    kappa: float  # ε̃_0 = κ_t c with κ_t = β κ_{t−1} + 1 (held as a number, see label_similarity)
    m: torch.Tensor  # readout potential, (B, C)


#: the authors' code adds 1e-9 inside the distance: ‖a_b − a_b′ + 1e-9‖ (models/tp_mlp.py, TP_MLP.loss)
AUTHORS_DIST_SHIFT = 1e-9


def shifted_distance(a: torch.Tensor, shift: float) -> torch.Tensor:
    """‖a_b − a_b′ + shift·1‖₂ over the last dim, (…, B, n) → (…, B, B) (the authors' distance).

    Expanded from the centred Gram as in :func:`pairwise_distance`:
    ‖a_b − a_b′ + ε‖² = ‖a_b − a_b′‖² + 2ε (Σa_b − Σa_b′) + n ε².
    """
    a64 = a.to(torch.float64)
    a64 = a64 - a64.mean(dim=-2, keepdim=True)
    sq = (a64 * a64).sum(dim=-1)  # (…, B)
    rs = a64.sum(dim=-1)  # (…, B)
    d2 = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2.0 * (a64 @ a64.transpose(-1, -2))  # (…, B, B)
    d2.clamp_(min=0.0).add_(2.0 * shift * (rs.unsqueeze(-1) - rs.unsqueeze(-2))).add_(a.shape[-1] * shift * shift)
    return d2.clamp_(min=0.0).sqrt_().to(a.dtype)


def pairwise_distance(a: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of a (…, B, n) → (…, B, B), exact enough for targets.

    Same-class target traces are identical rows whose distance must come out ≈ 0; the fast
    expansion |a|² + |b|² − 2 a·b loses that to cancellation in float32 (an error of
    √ε_mach·|a|, tens of percent in y). So the rows are centred and the expansion is done in
    float64 (error ≈ 1e-8·|a|), at the cost of one float64 (B, B, n) matmul — much cheaper
    than the direct (B·B·n, non-BLAS) evaluation.
    """
    a64 = a.to(torch.float64)
    a64 = a64 - a64.mean(dim=-2, keepdim=True)  # distances are translation invariant
    sq = (a64 * a64).sum(dim=-1)  # (…, B)
    d2 = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2.0 * (a64 @ a64.transpose(-1, -2))  # (…, B, B)
    return d2.clamp_(min=0.0).sqrt_().to(a.dtype)


def tp_similarity(prev: torch.Tensor, kind: str = "distance", shift: float = 0.0) -> torch.Tensor:
    """f(ε̃_{l−1}[b], ε̃_{l−1}[b′]) (B, B) of Eq. 15.

    distance: −‖a_b − a_b′‖₂ (for spatial (B, C, H, W) traces: per position over channels,
    averaged over positions); dot: a_b · a_b′ (spatial: flattened dot / P). ``shift`` > 0:
    the authors' −‖a_b − a_b′ + shift‖ (:func:`shifted_distance`).
    """
    B = prev.shape[0]
    if kind == "distance" and shift:
        if prev.dim() == 4:
            return -shifted_distance(prev.flatten(2).permute(2, 0, 1), shift).mean(dim=0)  # (B, B)
        return -shifted_distance(prev.reshape(B, -1), shift)
    if kind == "dot":
        flat = prev.reshape(B, -1)
        p = prev[0, 0].numel() if prev.dim() == 4 else 1
        return flat @ flat.t() / p
    if prev.dim() == 4:
        pos = prev.flatten(2).permute(2, 0, 1)  # (P, B, C)
        return -pairwise_distance(pos).mean(dim=0)  # (B, B)
    return -pairwise_distance(prev.reshape(B, -1))  # (B, B)


def label_similarity(c: torch.Tensor, kappa: float, kind: str = "distance", shift: float = 0.0) -> torch.Tensor:
    """f(ε̃_0[b], ε̃_0[b′]) (B, B) for layer 1, up to a constant (softmax ignores it).

    The layer-0 target trace is ε̃_0^t = Σ_k β^k c = κ_t c: a multiple of the one-hot labels,
    so it is never stored. With same = c cᵀ (1 for equal labels, else 0):
    distance: −‖κ c_b − κ c_b′‖ = κ√2 (same − 1), returned as κ√2 same;  dot: κ² same.
    ``shift`` > 0 (the authors' distance): −‖κ c_b − κ c_b′ + shift‖ = −√(2κ²(1 − same) + C shift²)
    (the shift's cross term vanishes: both rows sum to κ).
    """
    same = c @ c.t()  # (B, B)
    if kind == "distance" and shift:
        return same.sub_(1.0).mul_(-2.0 * kappa * kappa).add_(c.shape[1] * shift * shift).sqrt_().neg_()
    return same.mul_(kappa * math.sqrt(2.0) if kind == "distance" else kappa * kappa)


def tp_loss_grad(eps: torch.Tensor, eps_t: torch.Tensor, sim: torch.Tensor, need_target: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """E_l^t and its gradients w.r.t. the two traces of layer l, given sim = f(ε̃_{l−1}) (B, B).

    Returns (E, dε, dε̃) with dε = G ε̃ / P, dε̃ = Gᵀ ε / P, G = (softmax(z) − y)/B, shaped
    like the traces. P = spatial positions of the traces (1 for dense layers). dε̃ is None
    unless ``need_target`` (layer 1's target path runs through the fixed S: no W_1 term).
    """
    B = eps.shape[0]
    P = eps[0, 0].numel() if eps.dim() == 4 else 1
    flat, flat_t = eps.reshape(B, -1), eps_t.reshape(B, -1)  # (B, n_out)
    z = flat @ flat_t.t() / P  # (B, B)
    y = torch.softmax(sim, dim=1)  # (B, B)
    logp = torch.log_softmax(z, dim=1)  # (B, B)
    loss = torch.vdot(y.reshape(-1), logp.reshape(-1)).div_(-B)  # −(1/B) Σ y log softmax(z)
    G = logp.exp_().sub_(y).div_(B * P)  # (B, B): (softmax(z) − y) / (B P)
    d_eps = (G @ flat_t).view_as(eps)  # (B, *out)
    d_eps_t = (G.t() @ flat).view_as(eps_t) if need_target else None  # (B, *out)
    return loss, d_eps, d_eps_t


def tp_loss_grad_classes(eps: torch.Tensor, eps_t: torch.Tensor, sim: torch.Tensor, rows: ClassRows,
                         need_target: bool = True
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`tp_loss_grad` with the target traces held once per class (module docstring).

    eps (B, *out), eps_t (K, *out), sim = f(ε̃_{l−1,K}) (K, K). Returns (E, dε (B, *out),
    dε̃_K (K, *out) or None), equal to the per-sample E, dε and Σ_{b′ ∈ k} dε̃[b′].
    """
    B, K = eps.shape[0], eps_t.shape[0]
    P = eps[0, 0].numel() if eps.dim() == 4 else 1
    flat, flat_t = eps.reshape(B, -1), eps_t.reshape(K, -1)  # (B, n_out), (K, n_out)
    zh = torch.addmm(rows.log_n.unsqueeze(0), flat, flat_t.t(), alpha=1.0 / P)  # (B, K): z_K + log n
    y = torch.softmax(sim + rows.log_n, dim=1)[rows.inv]  # (K, K) → (B, K): y_K[k(b)]
    logp = torch.log_softmax(zh, dim=1)  # (B, K)
    loss = torch.vdot(y.reshape(-1), (logp - rows.log_n).reshape(-1)).div_(-B)
    G = logp.exp_().sub_(y).div_(B * P)  # (B, K): G_K = (softmax(z_K + log n) − y_K) / (B P)
    d_eps = (G @ flat_t).view_as(eps)  # (B, *out)
    d_eps_t = (G.t() @ flat).view_as(eps_t) if need_target else None  # (K, *out)
    return loss, d_eps, d_eps_t


class TPLearner(Learner):
    """Traces Propagation learner; see the module docstring for the equations."""

    rule = "tp"

    def _setup_extra(self) -> None:
        g1 = self.net.layers[0].geom
        self.train_s = bool(self.cfg.rule.train_s)
        self.by_class = self.cfg.rule.target_rows == "classes"
        self._rows: ClassRows | None = None
        # flavour "authors" (docs/tp_authors.md): D1 a fixed random R̃_1 for the layer-1 target path
        # of a recurrent net; D2–D4 on conv nets (1.8·WS(S), 1.8·WS(W_out) in the readout forward,
        # target-path layer-1 threshold 1.0); D5 hard reset for the gsc preset; the +1e-9 distance
        self.authors = self.cfg.rule.flavour == "authors"
        lay1 = self.net.layers[0]
        self._authors_cnn = self.authors and lay1.is_conv
        self._shift = AUTHORS_DIST_SHIFT if self.authors else 0.0
        if self.authors and self.cfg.net.name == "gsc":  # D5: "Soft" != "soft" in their check → hard
            self.lif = self.lif._replace(reset="hard")
        self._lif_t1 = self.lif._replace(v_th=1.0) if self._authors_cnn else self.lif  # D4
        self.R_t1: torch.Tensor | None = None
        # D1: nn.Linear(H, H) default init, U(±1/√H), never trained (none when no target path runs)
        if self.authors and lay1.R is not None and not self.freeze_hidden:
            gen = torch.Generator().manual_seed(self.seed + 104729)
            H = lay1.R.shape[0]
            r = (torch.rand((H, H), generator=gen, dtype=torch.float64) * 2 - 1) / H**0.5
            self.R_t1 = r.to(device=self.device, dtype=self.dtype)
        # a trained S must be stored; with every hidden layer frozen no target path runs: no fixed S
        self.aux_stored = (self.cfg.rule.aux == "stored" and not self.freeze_hidden) or self.train_s
        self._s_shape = (g1.n_neurons, self.classes)  # S: (n_neurons_1, C), c ↦ S c
        self._aux_seed = self.seed + 7919  # S has its own stream: the net's draw does not move it
        s = self._draw_s()
        # a fixed S is a plain tensor (no autograd); a trained S is a parameter with its own gradient
        self.S: torch.Tensor | None = None
        if self.aux_stored:
            self.S = torch.nn.Parameter(s) if self.train_s else s

    def _draw_s(self) -> torch.Tensor:
        """The label projection S (n_1, C) by ``RuleSpec.s_init``:

        uniform:      S ~ U(±1/√C), the default init of a C → n_1 linear map (RMS 1/√(3C));
        ws:           S = 1.8·WS(U(±1/√C)), rows zero-mean with RMS 1.8/√C (the authors' CNN S, D2);
        c-invariant:  S ~ U(±1): a one-hot input has one active entry, so the fan-in that sets the
                      drive's scale is 1, not C; the layer-1 target drive S c (a column of S) then has
                      RMS 1/√3 whatever C (uniform gives 1/√(3C), 0.18 at C = 10, 0.075 at C = 60).
        """
        gen = torch.Generator().manual_seed(self._aux_seed)
        init = self.cfg.rule.s_init
        bound = 1.0 if init == "c-invariant" else 1.0 / self.classes**0.5
        s = (torch.rand(self._s_shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        if init == "ws":
            s = ws_forward(s)
        return s.to(device=self.device, dtype=self.dtype)

    def _s_matrix(self) -> torch.Tensor:
        s = self.S if self.S is not None else self._draw_s()  # regenerated: a transient
        return ws_forward(s) if self._authors_cnn else s  # D2: the forward uses 1.8·WS(S)

    def _w_out(self) -> torch.Tensor:
        """The readout's forward weight: D3 (authors, conv nets) 1.8·WS(W_out), else W_out."""
        return ws_forward(self.net.W_out) if self._authors_cnn else self.net.W_out

    def _param_groups(self):
        groups = super()._param_groups()
        if self.train_s:
            groups[0] = (groups[0][0], groups[0][1] + [self.S])
        return groups

    def named_parameters(self):
        ps = self.net.named_parameters()
        if self.train_s:
            ps = ps[:-1] + [("S", self.S)] + ps[-1:]
        return ps

    def _aux_inventory(self) -> Inventory:
        inv: Inventory = [("R_target1", "aux", self.R_t1)] if self.R_t1 is not None else []
        if self.S is not None and not self.train_s:
            inv.append(("S", "aux", self.S))
        return inv

    def _extra_state_dict(self):
        sd = {"aux_seed": torch.tensor(self._aux_seed, dtype=torch.int64)}
        if self.S is not None and not self.train_s:
            sd["S"] = self.S
        return sd

    def _load_extra(self, sd):
        if "aux_seed" in sd:
            self._aux_seed = int(sd["aux_seed"])
        if self.S is not None and "S" in sd and not self.train_s:
            with torch.no_grad():
                self.S.copy_(sd["S"].to(device=self.device, dtype=self.dtype))
        elif self.S is not None and not self.train_s:
            with torch.no_grad():
                self.S.copy_(self._draw_s())

    def _state_inventory(self) -> Inventory:
        st = self._state
        if st is None:
            return []
        inv: Inventory = []
        for i in range(len(st.inp)):
            l = i + 1
            inv += [(f"layer{l}.v", "neuron_state", st.inp[i].v), (f"layer{l}.s", "neuron_state", st.inp[i].s),
                    (f"layer{l}.v_target", "neuron_state", st.tgt[i].v),
                    (f"layer{l}.s_target", "neuron_state", st.tgt[i].s),
                    (f"layer{l}.eps", "traces", st.eps[i]), (f"layer{l}.eps_target", "traces", st.eps_t[i])]
            inv = [e for e in inv if e[2] is not None]  # traces a frozen layer does not need
        inv += [("readout.m", "neuron_state", st.m)]
        return inv

    def _new_state(self, B: int, K: int | None = None) -> TPState:
        """Zero state; the target path has K rows (one per class present) or, by default, B.

        With frozen layers (RuleSpec.trainable, layers 1..F): ε_l is held for a trained layer and
        for the readout's ε_L; ε̃_l for a trained layer and for layer F (the first trained layer's
        y reads it); the target path's LIF state for every layer (it carries S c up)."""
        layers = self.net.layers
        Kt = B if K is None else K
        F, L = self.frozen, len(layers)
        return TPState(
            inp=[self._lif_zeros(B, lay.geom.neuron_shape) for lay in layers],
            tgt=[self._lif_zeros(Kt, lay.geom.neuron_shape) for lay in layers],
            eps=[self._zeros(B, *lay.geom.out_shape) if i >= F or i == L - 1 else None for i, lay in enumerate(layers)],
            eps_t=[self._zeros(Kt, *lay.geom.out_shape) if i >= F - 1 else None for i, lay in enumerate(layers)],
            kappa=0.0,
            m=self._zeros(B, self.classes),
        )

    @torch.no_grad()
    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:
        """One mini-batch of T steps; returns {"loss", "correct", "n", "local_loss"}.

        ``loss`` is the readout cross-entropy at t = T; ``local_loss`` is the mean over steps
        of Σ_l E_l^t.
        """
        x, y = self._check_xy(x, y)
        B, T = x.shape[0], x.shape[1]
        self._state = self._rows = None  # free the previous batch's state before allocating this one
        c = self._one_hot(y)  # (B, C)
        if self.by_class:
            uniq, inv, counts = torch.unique(y, sorted=True, return_inverse=True, return_counts=True)
            self._rows = ClassRows(inv, counts.to(self.dtype).log_(), self._one_hot(uniq))  # K = len(uniq)
        K = 0 if self.freeze_hidden else None if self._rows is None else self._rows.c.shape[0]
        st = self._state = self._new_state(B, K)  # every hidden layer frozen: no target path (K = 0 rows)
        local = torch.zeros((), dtype=self.dtype, device=self.device)
        self._run_local_steps(x, c, st, lr_scale, on_step, take=local.add_)  # local += Σ_l E_l^t
        return self._result(st.m, y, local_loss=float(local) / T)

    def _step(self, x_t: torch.Tensor, c: torch.Tensor, st: TPState, acc: float) -> torch.Tensor | float:
        """One time step, all layers: both paths, traces, local losses, gradients (in p.grad);
        returns Σ_l E_l^t (0.0 when no layer learns)."""
        B = x_t.shape[0]
        p, beta = self.lif, self.beta
        learn = not self.freeze_hidden  # some hidden layer learns: the target path runs
        kind = self.cfg.rule.similarity
        st.kappa = beta * st.kappa + 1.0  # ε̃_0 ← β ε̃_0 + c, as ε̃_0 = κ c
        rows = self._rows
        c_t = c if rows is None else rows.c  # the target path's input, (B | K, C)
        Kt = c_t.shape[0]
        a, a_t, prev_t = x_t, c_t, None
        total: torch.Tensor | None = None
        for i, lay in enumerate(self.net.layers):
            w_eff = lay.weight_eff()
            s_prev, s_prev_t = st.inp[i].s, st.tgt[i].s  # (B, H) previous spikes (recurrent term)
            cur = self._current1(a, w_eff) if i == 0 else lay.current(a, w_eff)  # (B, *neuron)
            if lay.R is not None:
                cur += lay.rec_current(s_prev)
            s, u, st.inp[i] = lif_step(cur, st.inp[i], p)
            o, idx = lay.pool(s)  # (B, *out)
            if st.eps[i] is not None:
                torch.add(o, st.eps[i], alpha=beta, out=st.eps[i])  # ε ← β ε + o, one pass
            if learn:
                if i == 0:
                    cur_t = F.linear(c_t, self._s_matrix()).view(Kt, *lay.geom.neuron_shape)  # S c
                else:
                    cur_t = lay.current(a_t, w_eff)
                if lay.R is not None:
                    cur_t += F.linear(s_prev_t, self.R_t1) if i == 0 and self.R_t1 is not None \
                        else lay.rec_current(s_prev_t)
                p_t = self._lif_t1 if i == 0 else p
                s_t, u_t, st.tgt[i] = lif_step(cur_t, st.tgt[i], p_t)
                o_t, idx_t = lay.pool(s_t)
                if st.eps_t[i] is not None:
                    torch.add(o_t, st.eps_t[i], alpha=beta, out=st.eps_t[i])
                if self.trains(i):  # a frozen layer runs its target path (for the layers above) but has no loss
                    # the target-path term reaches W_l for l ≥ 2, R_l, and S when it is trained
                    r_sees_tg = lay.R is not None and not (i == 0 and self.R_t1 is not None)  # D1: R_1 does not
                    need_tg = i > 0 or r_sees_tg or self.train_s
                    sim = (label_similarity(c_t, st.kappa, kind, self._shift) if i == 0
                           else tp_similarity(prev_t, kind, self._shift))
                    if rows is None:
                        loss, d_eps, d_eps_t = tp_loss_grad(st.eps[i], st.eps_t[i], sim, need_tg)
                    else:
                        if kind == "distance" and i > 0:  # a class's distance to itself: exactly 0 (+ the shift)
                            n_feat = prev_t.shape[1] if prev_t.dim() == 4 else prev_t[0].numel()
                            sim.diagonal().fill_(-math.sqrt(n_feat) * self._shift)
                        loss, d_eps, d_eps_t = tp_loss_grad_classes(st.eps[i], st.eps_t[i], sim, rows, need_tg)
                    total = loss if total is None else total.add_(loss)
                    d_in = mul_surrogate_(lay.pool_backward(d_eps, s, idx), u, p.v_th, p.k)  # (B, *neuron)
                    pairs = [(a, d_in)]
                    if need_tg:
                        d_tg = mul_surrogate_(lay.pool_backward(d_eps_t, s_t, idx_t), u_t, p_t.v_th, p.k)
                        if i > 0:
                            pairs.append((a_t, d_tg))
                    if i == 0:  # layer 1's only W term is the input frame's (sparse path or dense)
                        self._wgrad1(lay.W.grad, a, d_in, acc)
                    else:
                        lay.add_weight_grad(lay.W.grad, pairs, beta=acc)
                    if lay.R is not None:
                        lay.R.grad.addmm_(d_in.t(), s_prev, beta=acc)  # (H, H)
                        if r_sees_tg:
                            lay.R.grad.addmm_(d_tg.t(), s_prev_t)
                    if i == 0 and self.train_s:
                        if self._authors_cnn:  # D2: through S_eff = 1.8·WS(S)
                            g_s = ws_backward(self.S.detach(), d_tg.reshape(Kt, -1).t() @ c_t)  # (n_1, C)
                            self.S.grad.mul_(acc).add_(g_s)
                        else:
                            self.S.grad.addmm_(d_tg.reshape(Kt, -1).t(), c_t, beta=acc)  # (n_1, C)
                a_t, prev_t = o_t, st.eps_t[i]
            a = o
        st.m.addmm_(a.reshape(B, -1), self._w_out().t())  # m ← m + W_out a_L (D3: 1.8·WS(W_out))
        self._readout_delta(st.m, c, st.eps[-1], beta=acc)
        return 0.0 if total is None else total
