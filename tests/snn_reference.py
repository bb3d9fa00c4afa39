"""Reference pieces for the learners' oracle tests, written independently of tpprof.snn."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class Spike(torch.autograd.Function):
    """Heaviside with the reference's ArcTan surrogate k / (1 + (π x)²)."""

    @staticmethod
    def forward(ctx, x, k):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x)
        ctx.k = k
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        (x,) = ctx.saved_tensors
        return g * ctx.k / (1 + (math.pi * x) ** 2), None


def ws(w: torch.Tensor) -> torch.Tensor:
    """Scaled weight standardisation: 1.8 (W − mean) / sqrt(var · fan_in + 1e-5), per output channel."""
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    var = w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return 1.8 * (w - mean) / torch.sqrt(var * w[0].numel() + 1e-5)


def pool(s: torch.Tensor, kind: str) -> torch.Tensor:
    return {"none": lambda v: v, "max2": lambda v: F.max_pool2d(v, 2), "avg2": lambda v: F.avg_pool2d(v, 2),
            "adapt2": lambda v: F.adaptive_avg_pool2d(v, 2)}[kind](s)
