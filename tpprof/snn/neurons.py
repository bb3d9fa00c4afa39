"""Leaky integrate-and-fire neurons as pure step functions (reference sheet §2).

Two orderings of the same neuron, chosen by :class:`tpprof.config.NeuronSpec.order`:

* ``"code"`` (default; the authors' implementation, reset before the next decay)::

      u^t = α v^{t−1} + I^t ;   s^t = Θ(u^t − v_th) ;
      v^t = u^t − v_th s^t            (soft)     or   v^t = u^t (1 − s^t)   (hard)

* ``"paper"`` (Eq. 1, reset applied from the previous step's spike)::

      v^t = α v^{t−1} + I^t − v_th s^{t−1}          (soft)
      v^t = α v^{t−1} (1 − s^{t−1}) + I^t           (hard)
      s^t = Θ(v^t − v_th)                           (u^t = v^t)

``u^t`` is the pre-reset potential; the surrogate derivative is evaluated there:
Θ′(u) = k / (1 + (π (u − v_th))²)  (ArcTan, scale k).

State is an immutable record :class:`LIFState` ``(v, s)``: membrane and the last spikes.
A step never mutates its inputs: ``s, u, new_state = lif_step(current, state, params)``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch

from tpprof.config import NeuronSpec

__all__ = ["LIFParams", "LIFState", "ArcTanSpike", "surrogate_grad", "surrogate_at", "mul_surrogate_", "lif_step",
           "lif_zeros"]


class LIFParams(NamedTuple):
    """Neuron constants (no tensors): threshold, decay, reset, ordering, surrogate scale."""

    v_th: float = 1.0
    alpha: float = 0.96
    reset: str = "soft"  # "soft" | "hard"
    order: str = "code"  # "code" | "paper"
    k: float = 1.0

    @classmethod
    def from_spec(cls, spec: NeuronSpec) -> "LIFParams":
        return cls(float(spec.v_th), float(spec.alpha), spec.reset, spec.order, float(spec.surrogate_k))


class LIFState(NamedTuple):
    """Per-layer neuron state, both tensors shaped like the layer's neurons (B, *neuron_shape).

    ``v``: membrane after this step (post-reset in the code ordering, pre-reset in the paper
    ordering); ``s``: this step's spikes (the paper ordering resets from them, recurrent
    layers feed them back through R_l).
    """

    v: torch.Tensor
    s: torch.Tensor


def lif_zeros(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str) -> LIFState:
    """All-zero state (reset at the start of every mini-batch, reference §3)."""
    return LIFState(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))


@functools.lru_cache(maxsize=None)
def _one(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.ones((), dtype=dtype, device=device)  # the 1 of 1 + π² d², made once per dtype and device


def _arctan_den(d: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """1 + π² d², the ArcTan surrogate's denominator, in one fused multiply-add pass (into ``out``,
    which may be d itself), three passes fewer than scaling, squaring and adding one by one."""
    return torch.addcmul(_one(d.dtype, d.device), d, d, value=math.pi * math.pi, out=out)


def _arctan_of(d: torch.Tensor, k: float) -> torch.Tensor:
    """d ← k / (1 + π² d²) in place: the denominator into d, then its reciprocal."""
    g = _arctan_den(d, out=d).reciprocal_()
    return g.mul_(k) if k != 1.0 else g


def surrogate_grad(x: torch.Tensor, k: float) -> torch.Tensor:
    """ArcTan surrogate derivative Θ′ at x = u − v_th: k / (1 + (π x)²) (a new tensor)."""
    return _arctan_of(x.clone(memory_format=torch.contiguous_format), k)


def surrogate_at(u: torch.Tensor, v_th: float, k: float) -> torch.Tensor:
    """Θ′(u) = k / (1 + (π (u − v_th))²) from the pre-reset potential u (a new tensor)."""
    return _arctan_of(torch.sub(u, v_th), k)


def mul_surrogate_(g: torch.Tensor, u: torch.Tensor, v_th: float, k: float) -> torch.Tensor:
    """g ← g ⊙ Θ′(u) = k g / (1 + π² (u − v_th)²) in place (δ = ∂E/∂s ⊙ Θ′(u)); returns g.

    One temporary, like :func:`surrogate_at`, and a division in place of its reciprocal and the
    product: one pass fewer."""
    d = torch.sub(u, v_th)  # the temporary, overwritten by 1 + π² d²
    g.div_(_arctan_den(d, out=d))
    return g.mul_(k) if k != 1.0 else g


def _step_fn(x: torch.Tensor) -> torch.Tensor:
    # ge into a float buffer: 8x faster on CPU than bool → float conversion
    return torch.ge(x, 0.0, out=torch.empty_like(x))


class ArcTanSpike(torch.autograd.Function):
    """Heaviside forward Θ(x) = [x ≥ 0]; backward multiplies by k / (1 + (π x)²)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.k = k
        return _step_fn(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        den = _arctan_den(x)  # 1 + π² x², the one temporary
        g = torch.div(grad_out, den, out=den)  # grad_out ⊙ Θ′(x): two passes (clone, square, reciprocal, product were four)
        return (g.mul_(ctx.k) if ctx.k != 1.0 else g), None


def lif_step(current: torch.Tensor, state: LIFState, p: LIFParams) -> tuple[torch.Tensor, torch.Tensor, LIFState]:
    """One LIF step. Returns ``(s^t, u^t, LIFState(v^t, s^t))``; all shaped like ``current``.

    ``u^t`` is the pre-reset potential (where Θ and its surrogate are evaluated). Pure: the
    inputs are not modified.
    """
    v_prev, s_prev = state
    grad = torch.is_grad_enabled() and (current.requires_grad or v_prev.requires_grad or s_prev.requires_grad)
    if p.order == "code":
        u = torch.add(current, v_prev, alpha=p.alpha)  # u = α v + I
        if grad:
            s = ArcTanSpike.apply(u - p.v_th, p.k)
        else:
            s = torch.ge(u, p.v_th, out=torch.empty_like(u))  # u ≥ v_th ⇔ u − v_th ≥ 0 (exact in IEEE)
        v = torch.add(u, s, alpha=-p.v_th) if p.reset == "soft" else u * (1.0 - s)
    else:  # paper, Eq. 1: the previous spike resets before this step's input is added
        if p.reset == "soft":
            u = torch.add(current, v_prev, alpha=p.alpha).sub_(s_prev, alpha=p.v_th) if not grad else \
                current + p.alpha * v_prev - p.v_th * s_prev
        else:
            u = p.alpha * v_prev * (1.0 - s_prev) + current
        s = ArcTanSpike.apply(u - p.v_th, p.k) if grad else torch.ge(u, p.v_th, out=torch.empty_like(u))
        v = u
    return s, u, LIFState(v, s)
