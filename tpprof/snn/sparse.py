"""The sparse input path: layer 1's two products with the input spikes, on the spikes' indices.

A dense first layer reads the input frame x^t (B, n_in) twice per step:

  forward        I_1 = x^t W_1ᵀ                    (B, H)
  weight grad    ∂W_1 ← β ∂W_1 + δᵀ x^t            (H, n_in)

(every learner: TP in all modes, TESS's non-causal term, OTTT's forward, the BPTT family's
forward and backward). Input spikes are mostly zeros: with k_t = density · B · n_in entries,
both products cost k_t · H instead of B · n_in · H. The batch is converted once per mini-batch
(:class:`SpikeFrames`: one ``nonzero`` pass); a step's entries are slices of it. Results equal
the dense path's up to summation order (tests/test_snn_sparse.py: ≤ 1e-6 in float64 for every
learner).

Which path runs (:func:`choose_frames`): ``Learner.input_path`` = ``"dense"`` | ``"sparse"`` |
``"auto"`` (default). ``auto`` takes the sparse path when the batch's input density is at most
:data:`SPARSE_DENSITY_MAX` and layer 1's product is large enough for the per-call costs
(B·n_in·H ≥ :data:`SPARSE_MIN_MACS`). The density threshold is measured:
``PYTHONPATH=$PWD python bench/bench_floor.py --threshold --rounds 3 --steps 50`` times layer 1
of 700-450-20 at B = 128, dense products against sparse products plus the conversion amortised
over T (CPU time, one thread, alternating rounds), and prints the largest density of the run of
sparse wins. On this project's 2-core machine (2026-12-07, load ≈ 9): sparse wins 2.4× at 0.005,
1.3× at 0.02, 1.06× at 0.03, loses from 0.04 on → 0.03.

Memory: the index arrays live for the mini-batch, nnz · 2 · 8 + (T·B + 1) · 8 bytes (+ nnz · d
for graded, non-binary inputs); they depend on the data's density, so the analytic model does
not count them (listed as not modelled in tpprof/analytic/implementation.py). ``auto`` never
takes the sparse path for the small nets of the allocator tests, nor at the measurement
protocol's synthetic density (0.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SpikeFrames", "SPARSE_DENSITY_MAX", "SPARSE_MIN_MACS", "INPUT_PATHS", "choose_frames",
           "batch_density", "SparseInputLinear"]

#: Largest input density for which ``auto`` takes the sparse path (measured crossover, see above).
SPARSE_DENSITY_MAX = 0.03
#: Smallest layer-1 product B·n_in·H (MACs) for which ``auto`` considers the sparse path.
SPARSE_MIN_MACS = 2_000_000
INPUT_PATHS = ("auto", "dense", "sparse")
#: Elements sampled (evenly strided) to estimate a batch's density: the estimate costs no pass over x.
DENSITY_SAMPLE = 65_536


def batch_density(x: torch.Tensor) -> float:
    """Fraction of non-zero entries of x, estimated on ≤ :data:`DENSITY_SAMPLE` evenly strided
    entries (exact for smaller batches)."""
    flat = x.reshape(-1)
    step = max(1, flat.numel() // DENSITY_SAMPLE)
    sample = flat[::step]
    return float(torch.count_nonzero(sample)) / max(1, sample.numel())


class SpikeFrames:
    """The input batch x (B, T, n_in) as per-step lists of its non-zero entries, built once per
    mini-batch by one ``nonzero`` pass over x in (t, b, j) order: for step t, ``cols`` (input j)
    of each entry, grouped by sample b (``offsets``, B per step) and, unless every entry is 1
    (spikes), ``vals`` x^t[b, j]; k_t entries.

    forward:      I^t[b] = Σ_{j ∈ b} x[b, j] W[:, j]        embedding_bag over the rows of Wᵀ (n_in, H)
    weight grad:  ∂W[:, j] += Σ_{b ∋ j} x[b, j] δ[b]         index_add into the rows of ∂Wᵀ (n_in, H)

    Both cost k_t · H instead of B · n_in · H. Wᵀ and ∂Wᵀ are contiguous because layer 1's
    weight is stored column-major (tpprof.snn.nets.build_net); other layouts work, slower.
    """

    def __init__(self, x: torch.Tensor, dtype: torch.dtype, device: torch.device) -> None:
        B, T = x.shape[0], x.shape[1]
        n = x[0, 0].numel()
        xtb = x.reshape(B, T, n).transpose(0, 1)  # (T, B, n) view: nonzero lists entries by step, then sample
        nz = torch.nonzero(xtb)  # (nnz, 3): t, b, j
        vals = xtb[nz[:, 0], nz[:, 1], nz[:, 2]]
        self.cols = nz[:, 2].to(device)  # (nnz,)
        self.rows = nz[:, 1].to(device)  # (nnz,) sample b of each entry (weight gradient)
        self.vals = None if bool((vals == 1).all()) else vals.to(device=device, dtype=dtype)
        per_bag = torch.bincount(nz[:, 0] * B + nz[:, 1], minlength=T * B)  # entries per (t, b)
        starts = torch.zeros(T * B + 1, dtype=torch.long)
        torch.cumsum(per_bag, 0, out=starts[1:])
        self.offsets = starts.to(device)  # (T·B + 1,): step t, sample b → entries starts[tB + b] …
        self._bounds = starts[::B].tolist()  # step t → entries bounds[t] … bounds[t + 1] − 1
        self.B, self.T, self.n = B, T, n

    def _entries(self, t: int) -> tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        a, b = self._bounds[t], self._bounds[t + 1]
        return a, b, self.cols[a:b], self.rows[a:b], None if self.vals is None else self.vals[a:b]

    def linear(self, t: int, w: torch.Tensor) -> torch.Tensor:
        """I = x^t Wᵀ (B, H) for W (H, n_in)."""
        a, _, cols, _, vals = self._entries(t)
        off = self.offsets[t * self.B:(t + 1) * self.B] - a  # (B,) start of each sample's entries
        return F.embedding_bag(cols, w.t(), off, mode="sum", per_sample_weights=vals)  # (B, H)

    def add_wgrad(self, t: int, gbuf: torch.Tensor, delta: torch.Tensor, beta: float = 1.0) -> None:
        """gbuf (H, n_in) ← beta·gbuf + δᵀ x^t for δ (B, H)."""
        _, _, cols, rows, vals = self._entries(t)
        d = delta.index_select(0, rows)  # (k, H): δ[b] per entry
        if vals is not None:
            d.mul_(vals.unsqueeze(1))
        if beta == 0.0:
            gbuf.zero_()
        elif beta != 1.0:
            gbuf.mul_(beta)
        gbuf.t().index_add_(0, cols, d)  # ∂Wᵀ[j] += δ[b]

    def wgrad(self, t: int, delta: torch.Tensor) -> torch.Tensor:
        """δᵀ x^t (H, n_in), column-major like W_1."""
        g = torch.zeros((self.n, delta.shape[1]), dtype=delta.dtype, device=delta.device).t()
        self.add_wgrad(t, g, delta)
        return g

    def nbytes(self) -> int:
        """Bytes of the index (and value) arrays held for the mini-batch."""
        ts = [self.rows, self.cols, self.offsets] + ([self.vals] if self.vals is not None else [])
        return sum(t.numel() * t.element_size() for t in ts)


def choose_frames(mode: str, x: torch.Tensor, first_dense: bool, n_out: int, dtype: torch.dtype,
                  device: torch.device) -> SpikeFrames | None:
    """The CSR frames of this batch when the sparse path is taken, else None (see module)."""
    if mode not in INPUT_PATHS:
        raise ValueError(f"input_path {mode!r}: one of {INPUT_PATHS}")
    if mode == "dense" or not first_dense:
        return None
    if mode == "auto":
        B, n = x.shape[0], x[0, 0].numel()
        if B * n * n_out < SPARSE_MIN_MACS or batch_density(x) > SPARSE_DENSITY_MAX:
            return None
    return SpikeFrames(x, dtype, device)


class SparseInputLinear(torch.autograd.Function):
    """I = x^t Wᵀ on a CSR frame with autograd for W only (the input is data): backward
    ∂W = (x^tᵀ g)ᵀ, added into ``gbuf`` in place when given (then None is returned for W)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, frames: SpikeFrames, t: int,  # type: ignore[override]
                gbuf: torch.Tensor | None) -> torch.Tensor:
        ctx.frames, ctx.t, ctx.gbuf = frames, t, gbuf
        return frames.linear(t, w)  # (B, H)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        if ctx.gbuf is not None:
            ctx.frames.add_wgrad(ctx.t, ctx.gbuf, g)
            return None, None, None, None
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        return ctx.frames.wgrad(ctx.t, g), None, None, None  # (H, n_in)


