"""Spiking nets built from :class:`tpprof.config.NetSpec` (reference sheet §2, §7, §11).

Layers (shapes from ``net.geometry()``, so the learners and the analytic model agree):

* dense:      I_l = W_l a_{l−1}                       W_l: (H_l, n_in), init U(±1/√n_in)
* recurrent:  I_l = W_l a_{l−1} + R_l s_l^{t−1}       R_l: (H_l, H_l), init U(±1/√H_l)
* conv:       I_l = conv3x3(a_{l−1}, Ŵ_l), pad k//2, stride 1, no bias,
              W_l: (C_out, C_in, k, k), Kaiming-normal init; with ``weight_std`` the forward
              uses Ŵ = 1.8 (W − mean)/sqrt(var · fan_in + 1e-5) per output channel.
  Pooling acts on the spikes (``LayerSpec.pool``): max2, avg2 or adaptive-average to 2×2;
  what the next layer and the traces see is the pooled output.
* readout:    non-spiking integrator m^t = m^{t−1} + W_out a_L^t, W_out: (C, n_out_L),
              init U(±1/√n_out_L).

No biases anywhere. Every layer also offers the explicit backward pieces the local rules
need (pooling backward, weight-standardisation backward), so no autograd graph is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tpprof.config import LayerGeometry, LayerSpec, NetSpec

__all__ = [
    "HiddenLayer", "SpikingNet", "build_net", "ws_forward", "ws_backward", "WS_GAIN", "WS_EPS",
]

WS_GAIN = 1.8
WS_EPS = 1e-5


def ws_forward(w: torch.Tensor, gain: float = WS_GAIN, eps: float = WS_EPS) -> torch.Tensor:
    """Scaled weight standardisation per output unit (dim 0).

    Ŵ = g (W − μ) / σ with μ, var over the fan-in (population variance) and
    σ = sqrt(var · fan_in + eps) = sqrt(Σ (W − μ)² + eps).
    """
    dims = tuple(range(1, w.dim()))
    d = w - w.mean(dim=dims, keepdim=True)  # (C_out, C_in, k, k)
    sigma = torch.sqrt((d * d).sum(dim=dims, keepdim=True) + eps)  # (C_out, 1, 1, 1)
    return gain * d / sigma


def ws_backward(w: torch.Tensor, grad_eff: torch.Tensor, gain: float = WS_GAIN, eps: float = WS_EPS) -> torch.Tensor:
    """∂L/∂W from G = ∂L/∂Ŵ through :func:`ws_forward` (closed form).

    With d = W − μ, σ = sqrt(Σd² + eps):  ∂L/∂W = g/σ (G − mean G) − g d Σ(G ⊙ d) / σ³.
    (The mean of the second term vanishes because Σ d = 0.)
    """
    dims = tuple(range(1, w.dim()))
    d = w - w.mean(dim=dims, keepdim=True)
    sigma = torch.sqrt((d * d).sum(dim=dims, keepdim=True) + eps)
    gd = (grad_eff * d).sum(dim=dims, keepdim=True)
    return gain * ((grad_eff - grad_eff.mean(dim=dims, keepdim=True)) / sigma - d * gd / sigma**3)


@dataclass
class HiddenLayer:
    """One hidden layer's parameters and its pure forward / explicit backward pieces."""

    spec: LayerSpec
    geom: LayerGeometry
    W: torch.nn.Parameter
    R: torch.nn.Parameter | None = None

    @property
    def is_conv(self) -> bool:
        return self.spec.kind == "conv"

    @property
    def uses_ws(self) -> bool:
        return self.is_conv and self.spec.weight_std

    def weight_eff(self) -> torch.Tensor:
        """The weight the forward pass uses: Ŵ for standardised conv, else W itself."""
        return ws_forward(self.W) if self.uses_ws else self.W

    def current(self, a: torch.Tensor, w_eff: torch.Tensor) -> torch.Tensor:
        """Feed-forward input current: (B, *in_shape) → (B, *neuron_shape)."""
        if self.is_conv:
            return F.conv2d(a, w_eff, padding=self.spec.kernel // 2)  # (B, C_out, H, W)
        return F.linear(a.reshape(a.shape[0], -1), w_eff)  # (B, H)

    def rec_current(self, s_prev: torch.Tensor) -> torch.Tensor:
        """Recurrent current R_l s_l^{t−1}: (B, H) → (B, H)."""
        assert self.R is not None
        return F.linear(s_prev, self.R)

    # ---- pooling on spikes and its explicit backward ------------------------------------
    def pool(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, *neuron_shape) → (pooled (B, *out_shape), max-pool indices or None)."""
        kind = self.spec.pool
        if kind == "none":
            return s, None
        if kind == "max2":
            return F.max_pool2d(s, 2, return_indices=True)
        if kind == "avg2":
            return F.avg_pool2d(s, 2), None
        return F.adaptive_avg_pool2d(s, 2), None

    def pool_backward(self, grad_out: torch.Tensor, s: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        """Gradient w.r.t. the unpooled spikes s from the gradient w.r.t. the pooled output."""
        kind = self.spec.pool
        if kind == "none":
            return grad_out
        if kind == "max2":
            return F.max_unpool2d(grad_out, idx, 2, output_size=s.shape[-2:])  # (B, C, H, W)
        if kind == "avg2":
            g = grad_out.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2) / 4.0
            return F.pad(g, (0, s.shape[-1] - g.shape[-1], 0, s.shape[-2] - g.shape[-2]))  # odd edge: no grad
        return torch.ops.aten._adaptive_avg_pool2d_backward(grad_out, s)

    def add_weight_grad(self, gbuf: torch.Tensor, pairs: list[tuple[torch.Tensor, torch.Tensor]],
                        beta: float = 1.0) -> None:
        """gbuf ← beta·gbuf + Σ_pairs ∂(Σ δ ⊙ I(a))/∂W for I = current(a), δ shaped like the neurons.

        beta = 0 overwrites (a per-step update needs no separate zeroing pass).

        dense: δᵀ a (H, n_in) by addmm into the buffer (no temporary);
        conv: Σ conv2d_weight(a, δ) (C_out, C_in, k, k), then through the standardisation.
        """
        if self.is_conv:
            g = None
            for a, delta in pairs:
                gi = torch.nn.grad.conv2d_weight(a, self.W.shape, delta, padding=self.spec.kernel // 2)
                g = gi if g is None else g.add_(gi)
            if g is None:
                return
            g = ws_backward(self.W.detach(), g) if self.uses_ws else g
            gbuf.copy_(g) if beta == 0.0 else gbuf.add_(g)
        else:
            for j, (a, delta) in enumerate(pairs):
                gbuf.addmm_(delta.t(), a.reshape(a.shape[0], -1), beta=beta if j == 0 else 1.0)  # (H, B) @ (B, n_in)


@dataclass
class SpikingNet:
    """Hidden layers plus the integrator readout W_out (C, n_out_L)."""

    spec: NetSpec
    layers: list[HiddenLayer]
    W_out: torch.nn.Parameter

    def named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        out: list[tuple[str, torch.nn.Parameter]] = []
        for i, layer in enumerate(self.layers, start=1):
            out.append((f"layer{i}.W", layer.W))
            if layer.R is not None:
                out.append((f"layer{i}.R", layer.R))
        out.append(("readout.W", self.W_out))
        return out

    def n_params(self) -> int:
        return sum(p.numel() for _, p in self.named_parameters())


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * bound


def build_net(spec: NetSpec, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
              seed: int = 0) -> SpikingNet:
    """Parameters for ``spec``, drawn in float64 on the CPU from ``seed`` and then cast, so one
    seed gives the same net on every device and dtype."""
    gen = torch.Generator().manual_seed(int(seed))

    def param(t: torch.Tensor) -> torch.nn.Parameter:
        return torch.nn.Parameter(t.to(device=device, dtype=dtype))

    layers: list[HiddenLayer] = []
    for layer, g in zip(spec.layers, spec.geometry()):
        if layer.kind == "conv":
            c_out, c_in, k = layer.width, g.in_shape[0], layer.kernel
            fan_in = c_in * k * k
            # Kaiming normal (fan_in, gain √2): std = √2 / √fan_in
            w = torch.randn((c_out, c_in, k, k), generator=gen, dtype=torch.float64) * math.sqrt(2.0 / fan_in)
            layers.append(HiddenLayer(layer, g, param(w)))
        else:
            w = _uniform((layer.width, g.n_in), 1.0 / math.sqrt(g.n_in), gen)
            r = None
            if layer.kind == "recurrent":
                r = param(_uniform((layer.width, layer.width), 1.0 / math.sqrt(layer.width), gen))
            # layer 1 reads the input spikes: its W_1 (H, n_in) is stored column-major, so a column
            # W_1[:, j] (what one input spike adds) is contiguous for the sparse input path
            # (tpprof.snn.sparse); the dense products take either layout at the same speed
            w_p = torch.nn.Parameter(w.t().contiguous().to(device=device, dtype=dtype).t()) if not layers else param(w)
            layers.append(HiddenLayer(layer, g, w_p, r))
    n_last = spec.geometry()[-1].n_out
    w_out = param(_uniform((spec.readout, n_last), 1.0 / math.sqrt(n_last), gen))
    return SpikingNet(spec, layers, w_out)
