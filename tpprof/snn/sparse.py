"""The sparse input path: layer 1's two products with the input spikes done on CSR frames.

A dense first layer reads the input frame x^t (B, n_in) twice per step:

  forward        I_1 = x^t W_1ᵀ                    (B, H)        = CSR(x^t) @ W_1ᵀ
  weight grad    ∂W_1 ← β ∂W_1 + δᵀ x^t            (H, n_in)     ⇔ ∂W_1ᵀ ← β ∂W_1ᵀ + CSR(x^tᵀ) @ δ

(every learner: TP in all modes, TESS's non-causal term, OTTT's forward, the BPTT family's
forward and backward). Input spikes are mostly zeros, so with nnz = density · B · n_in both
products cost nnz · H MACs instead of B · n_in · H. The batch is converted once per
mini-batch (:class:`SpikeFrames`: the time-major CSR of x, (T·B, n_in), and of its per-step
transpose, (T·n_in, B)); a frame is a slice of it (views, no copy). Results equal the dense
path's up to summation order (tests/test_snn_sparse.py: ≤ 1e-6 in float64 for every learner).

Which path runs (:func:`choose_frames`): ``Learner.input_path`` = ``"dense"`` | ``"sparse"`` |
``"auto"`` (default). ``auto`` takes the sparse path when the batch's measured input density is
at most :data:`SPARSE_DENSITY_MAX` and layer 1's product is large enough for the CSR kernels'
fixed cost (B·n_in·H ≥ :data:`SPARSE_MIN_MACS`). Both constants are measured on this project's
machine by ``python bench/bench_floor.py --threshold`` (it prints the crossover density of the
SHD input layer, dense products vs sparse products plus the amortised conversion, CPU time, one
thread); the value below is the one it printed, with the date.

Memory: the CSR copies live for the mini-batch, (nnz · (d + 8) + (T·B + 1) · 8) bytes for x and
(nnz · (d + 8) + (T·n_in + 1) · 8) for its transpose; they depend on the data's density, so the
analytic model does not count them (docs/architecture.md, "not modelled") — ``auto`` never takes
the sparse path for the small nets of the allocator tests, nor at the measurement protocol's
synthetic density (0.1 > :data:`SPARSE_DENSITY_MAX`).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

__all__ = ["SpikeFrames", "SPARSE_DENSITY_MAX", "SPARSE_MIN_MACS", "INPUT_PATHS", "choose_frames",
           "batch_density", "SparseInputLinear"]

#: Largest input density for which ``auto`` takes the sparse path (measured crossover, see above).
SPARSE_DENSITY_MAX = 0.02
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


def _csr(dense2d: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": a one-line note, not for users
        warnings.simplefilter("ignore")
        return dense2d.to_sparse_csr()


def _rows(csr: torch.Tensor, r0: int, r1: int, n_cols: int) -> torch.Tensor:
    """Rows r0 … r1−1 of a CSR matrix as a CSR matrix (views of its index and value arrays)."""
    crow, col, val = csr.crow_indices(), csr.col_indices(), csr.values()
    a, b = int(crow[r0]), int(crow[r1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(crow[r0:r1 + 1] - a, col[a:b], val[a:b], (r1 - r0, n_cols),
                                       check_invariants=False)


class SpikeFrames:
    """The input batch x (B, T, n_in) as CSR frames, converted once per mini-batch.

    ``frame(t)``: CSR of x^t (B, n_in); ``frame_t(t)``: CSR of x^tᵀ (n_in, B).
    """

    def __init__(self, x: torch.Tensor, dtype: torch.dtype, device: torch.device) -> None:
        B, T = x.shape[0], x.shape[1]
        n = x[0, 0].numel()
        xt = x.to(device=device, dtype=dtype).reshape(B, T, n)
        self.B, self.T, self.n = B, T, n
        self._fwd = _csr(xt.transpose(0, 1).reshape(T * B, n))  # row t·B + b = x^t[b]
        self._bwd = _csr(xt.permute(1, 2, 0).reshape(T * n, B))  # row t·n + j = x^t[:, j]
        self._cache: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def _frames(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None or self._cache[0] != t:
            B, n = self.B, self.n
            self._cache = (t, _rows(self._fwd, t * B, (t + 1) * B, n), _rows(self._bwd, t * n, (t + 1) * n, B))
        return self._cache[1], self._cache[2]

    def frame(self, t: int) -> torch.Tensor:
        return self._frames(t)[0]

    def frame_t(self, t: int) -> torch.Tensor:
        return self._frames(t)[1]

    def linear(self, t: int, w: torch.Tensor) -> torch.Tensor:
        """I = x^t Wᵀ (B, H) from the CSR frame (W: (H, n_in))."""
        return torch.sparse.mm(self.frame(t), w.t())

    def add_wgrad(self, t: int, gbuf: torch.Tensor, delta: torch.Tensor, beta: float = 1.0) -> None:
        """gbuf (H, n_in) ← beta·gbuf + δᵀ x^t, computed as (x^tᵀ δ)ᵀ with δ (B, H)."""
        prod = torch.sparse.mm(self.frame_t(t), delta)  # (n_in, H)
        if beta == 0.0:
            gbuf.copy_(prod.t())
        else:
            if beta != 1.0:
                gbuf.mul_(beta)
            gbuf.add_(prod.t())

    def nbytes(self) -> int:
        """Bytes of the two CSR copies (index and value arrays)."""
        return sum(t.untyped_storage().nbytes() for c in (self._fwd, self._bwd)
                   for t in (c.crow_indices(), c.col_indices(), c.values()))


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
        return torch.sparse.mm(ctx.frames.frame_t(ctx.t), g).t(), None, None, None  # (H, n_in)


def dense_or_sparse_linear(frames: SpikeFrames | None, t: int, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x^t Wᵀ on the sparse frame when there is one, else F.linear on the dense frame."""
    if frames is None:
        return F.linear(a.reshape(a.shape[0], -1), w)
    return frames.linear(t, w)
