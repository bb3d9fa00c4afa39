"""The sparse input path: layer 1's two products with the input spikes, on the spikes' indices.

A dense first layer reads the input frame x^t (B, n_in) twice per step:

  forward        I_1 = x^t W_1ᵀ                    (B, H)
  weight grad    ∂W_1 ← β ∂W_1 + δᵀ x^t            (H, n_in)

(every learner: TP in all modes, TESS's non-causal term, OTTT's forward, the BPTT family's
forward and backward). Input spikes are mostly zeros: with k_t = density · B · n_in entries,
both products cost k_t · H instead of B · n_in · H. The batch is converted once per mini-batch
(:class:`SpikeFrames`: entries counted per bag, then placed); a step's entries are slices of it.
Results equal the dense path's up to summation order (tests/test_snn_sparse.py: ≤ 1e-6 in
float64 for every learner).

Kernels: the forward is torch's ``embedding_bag``; the lists and, on one thread, the weight
gradient run the native kernels (tpprof.snn.native: C compiled on first use, the gradient added
straight into W_1's column-major buffer) when a C compiler is there, else numpy and
``embedding_bag`` with the same results. At SHD's size (700-450-20, B = 128, T = 100, P(1) = 0.05,
one thread) they take 6–10 % off the steps of TP classes, TESS and the BPTT family
(``python bench/ab_step.py``, docs/results.md §9).

Which path runs (:func:`choose_frames`): ``Learner.input_path`` = ``"dense"`` | ``"sparse"`` |
``"auto"`` (default). ``auto`` takes the sparse path when the batch's input density is at most
:data:`SPARSE_DENSITY_MAX` · min(1, H / :data:`SPARSE_REFERENCE_H`) and layer 1's product is large
enough for the per-call costs (B·n_in·H ≥ :data:`SPARSE_MIN_MACS`). The products saved scale with
H and the conversion does not, so a narrower layer needs a sparser input. The density threshold is
measured: ``PYTHONPATH=$PWD python bench/bench_floor.py --threshold --rounds 3 --steps 100`` times
layer 1 of 700-450-20 at B = 128, dense products against sparse products plus the conversion
amortised over T (CPU time, one thread, alternating rounds), and prints the largest density of
the run of sparse wins. On this project's 2-core machine (2026-12-07, load 0.8), without the native
kernels (``TPPROF_NATIVE=0``): per step, dense 1.38–1.48 ms at every density; sparse (products +
conversion) 0.62 ms at 0.005, 1.09 ms at 0.05, 1.30 ms at 0.07, 1.43 ms at 0.08 → wins up to 0.07;
with them 0.53, 0.88, 1.00, 1.12 ms, and 1.25 ms at 0.1 → wins up to 0.1. The threshold is the
lower, 0.07, so the path ``auto`` takes does not depend on whether a C compiler is installed.

Memory: the index arrays live for the mini-batch, nnz · 2 · 8 + T·B · 8 + T·n_in · 8
bytes (+ nnz · 2 · d for graded, non-binary inputs), and the native kernels hold (T·B + T·n_in) · 8
bytes of counters while they build them; they depend on the data's density, so the analytic model
does not count them (listed as not modelled in tpprof/analytic/implementation.py).
``auto`` never takes the sparse path for the small nets of the allocator tests, nor at the
measurement protocol's synthetic density (0.1).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from tpprof.snn import native

__all__ = ["SpikeFrames", "SPARSE_DENSITY_MAX", "SPARSE_REFERENCE_H", "SPARSE_MIN_MACS", "density_max", "INPUT_PATHS", "choose_frames",
           "batch_density", "SparseInputLinear"]

#: Largest input density for which ``auto`` takes the sparse path, for a layer of
#: :data:`SPARSE_REFERENCE_H` neurons or more (measured crossover, see above).
SPARSE_DENSITY_MAX = 0.07
#: The layer width the threshold was measured at; a narrower layer's threshold scales with H.
SPARSE_REFERENCE_H = 450
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
    mini-batch, in two orders:

    * by sample (t, b, j): ``cols`` (input j) of each entry, bags ``offsets`` (T, B): bag (t, b)'s
      start within step t's entries;
    * by input (t, j, b): ``grows`` (sample b) of each entry, bags ``goffsets`` (T, n_in) likewise;

    and, unless every entry is 1 (spikes), the values x^t[b, j] in each order. k_t entries at step t.

    forward:      I^t[b] = Σ_{j ∈ b} x[b, j] W[:, j]        embedding_bag over the rows of Wᵀ (n_in, H)
    weight grad:  ∂Wᵀ[j] = Σ_{b ∋ j} x[b, j] δ[b]          embedding_bag over the rows of δ (B, H)

    Both are gathers of k_t rows (k_t · H adds) instead of B · n_in · H MACs; a scatter (index_add)
    of the gradient was 3–5× slower than its gather. Wᵀ and ∂Wᵀ are contiguous because layer 1's
    weight is stored column-major (tpprof.snn.nets.build_net); other layouts work, slower.
    On the CPU the lists are made by the native kernels (two scans of x) or, without them, with
    numpy (one pass per sample, entries placed by counting); on other devices with torch.nonzero.
    """

    def __init__(self, x: torch.Tensor, dtype: torch.dtype, device: torch.device, grad: bool = True) -> None:
        """``grad=False``: the lists by (t, j) are not built (a learner whose weight gradient
        reads a trace of x, not x itself: OTTT); :meth:`add_wgrad` then raises."""
        B, T = x.shape[0], x.shape[1]
        n = x[0, 0].numel()
        x3 = x.reshape(B, T, n)
        if x3.device.type != "cpu":
            e = _entries_torch(x3, grad)
        elif native.enabled(x3.dtype, x3.device):
            e = _entries_native(x3.contiguous(), grad)
        else:
            e = _entries_numpy(x3, grad)
        self.cols = e.cols.to(device)  # (nnz,) input j, by (t, b)
        self.vals = None if e.vals is None else e.vals.to(device=device, dtype=dtype)
        # step t's entries are bounds[t] … bounds[t + 1] − 1; offsets[t] (B,): where each sample's bag
        # starts inside them (one row per step, so a step's call slices nothing)
        self.offsets, self._bounds = _step_bags(e.fcount, T, B, device)  # (T, B)
        self.grows = self.gvals = self.goffsets = None
        if grad:
            self.grows = e.grows.to(device)  # (nnz,) sample b, by (t, j)
            self.gvals = None if e.gvals is None else e.gvals.to(device=device, dtype=dtype)
            self.goffsets, self._gbounds = _step_bags(e.gcount, T, n, device)  # (T, n_in): bags (t, j)
        self.B, self.T, self.n, self.dtype = B, T, n, dtype  # dtype: the values' (vals, gvals)
        #: the products may run the native kernels (set False to time or test torch's path alone)
        self.native = True

    def _bags(self, t: int, by_input: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Step t's bags: (entries' indices, their values or None, bag starts), by sample (forward:
        inputs j, (B,) starts) or by input (weight gradient: samples b, (n_in,) starts)."""
        if not by_input:
            a, b = self._bounds[t], self._bounds[t + 1]
            return self.cols[a:b], None if self.vals is None else self.vals[a:b], self.offsets[t]
        if self.goffsets is None:
            raise RuntimeError("these frames were built without the weight-gradient lists (grad=False)")
        a, b = self._gbounds[t], self._gbounds[t + 1]
        return self.grows[a:b], None if self.gvals is None else self.gvals[a:b], self.goffsets[t]

    def linear(self, t: int, w: torch.Tensor) -> torch.Tensor:
        """I = x^t Wᵀ (B, H) for W (H, n_in)."""
        cols, vals, offs = self._bags(t, by_input=False)
        return F.embedding_bag(cols, w.t(), offs, mode="sum", per_sample_weights=vals)  # (B, H)

    def wgrad_t(self, t: int, delta: torch.Tensor) -> torch.Tensor:
        """(δᵀ x^t)ᵀ = x^tᵀ δ (n_in, H) for δ (B, H): one bag of δ's rows per input j."""
        rows, vals, offs = self._bags(t, by_input=True)
        delta = delta.contiguous()
        if self._native(delta):
            g = torch.empty((self.n, delta.shape[1]), dtype=delta.dtype)
            native.wgrad(g, rows, vals, offs, delta, 0.0)
            return g  # (n_in, H)
        return F.embedding_bag(rows, delta, offs, mode="sum", per_sample_weights=vals)  # (n_in, H)

    def add_wgrad(self, t: int, gbuf: torch.Tensor, delta: torch.Tensor, beta: float = 1.0) -> None:
        """gbuf (H, n_in) ← beta·gbuf + δᵀ x^t for δ (B, H)."""
        if self.in_place(gbuf, delta):
            rows, vals, offs = self._bags(t, by_input=True)
            native.wgrad(gbuf.t(), rows, vals, offs, delta.contiguous(), beta)  # into gbuf, (n_in, H)
            return
        g = self.wgrad_t(t, delta)  # (n_in, H)
        if beta == 0.0:
            gbuf.t().copy_(g)
        elif beta == 1.0:
            gbuf.t().add_(g)
        else:
            gbuf.t().mul_(beta).add_(g)

    def in_place(self, gbuf: torch.Tensor, delta: torch.Tensor) -> bool:
        """Whether :meth:`add_wgrad` writes into gbuf (H, n_in) directly (the native kernels, for a
        column-major gbuf: ``gbuf.t()`` contiguous), with no (n_in, H) temporary."""
        return self.goffsets is not None and delta.dtype == gbuf.dtype and self._native(gbuf.t())

    def wgrad(self, t: int, delta: torch.Tensor) -> torch.Tensor:
        """δᵀ x^t (H, n_in), column-major like W_1."""
        return self.wgrad_t(t, delta).t()

    def _native(self, t: torch.Tensor) -> bool:
        """Whether a product on ``t`` (contiguous, of the values' dtype) runs the native kernels
        (tpprof.snn.native): on one thread only, where they were measured faster; with more,
        ``embedding_bag`` splits its bags across threads and the kernels would not."""
        return (self.native and t.dtype == self.dtype and t.is_contiguous() and torch.get_num_threads() == 1
                and native.enabled(t.dtype, t.device))

    def nbytes(self) -> int:
        """Bytes of the index (and value) arrays held for the mini-batch."""
        ts = [self.cols, self.grows, self.offsets, self.goffsets, self.vals, self.gvals]
        return sum(t.numel() * t.element_size() for t in ts if t is not None)


def _step_bags(counts: torch.Tensor, T: int, bags: int, device: torch.device) -> tuple[torch.Tensor, list[int]]:
    """Bags by step from the entries per bag (T·bags,), bags in (t, bag) order: the start of each
    bag relative to its step's first entry, (T, bags) int64, and the steps' bounds (T + 1 ints)."""
    starts = torch.zeros(T * bags + 1, dtype=torch.long)
    torch.cumsum(counts, 0, out=starts[1:])  # absolute start of every bag, and the total
    first = starts[::bags]  # (T + 1,) each step's first entry, and the total
    rel = starts[:-1].view(T, bags) - first[:-1].unsqueeze(1)  # (T, bags)
    return rel.to(device), first.tolist()


class _Entries(NamedTuple):
    """x's non-zero entries in the two orders of :class:`SpikeFrames` (CPU int64 / value tensors)."""

    cols: torch.Tensor  # (nnz,) j, in (t, b, j) order
    fcount: torch.Tensor  # (T·B,) entries per bag (t, b), bags in that order
    grows: torch.Tensor | None  # (nnz,) b, in (t, j, b) order (None when not asked for)
    gcount: torch.Tensor | None  # (T·n,) entries per bag (t, j)
    vals: torch.Tensor | None  # values in (t, b, j) order; None when every entry is 1
    gvals: torch.Tensor | None  # values in (t, j, b) order


def _entries_numpy(x: torch.Tensor, grad: bool = True) -> _Entries:
    """:class:`_Entries` of x (B, T, n) with numpy, in time linear in B·T·n + nnz and no sort.

    One pass per sample b finds its entries (tn + j, in (t, j) order). Counting then places them:
    by (t, b) each sample's entries of step t are one run, written at the bag's start; by (t, j)
    no sample has two entries in one bag, so a per-bag fill counter, advanced once per sample in
    order of b, gives each entry its slot. 2–3× faster than torch.nonzero on transposed copies, and
    than sorting, on this machine."""
    import numpy as np

    xn = x.detach().contiguous().numpy()  # (B, T, n), no copy when x is contiguous
    B, T, n = xn.shape
    x2 = xn.reshape(B, T * n)
    mask = np.empty(T * n, dtype=bool)
    per_b, binary = [], True
    for b in range(B):
        np.not_equal(x2[b], 0, out=mask)
        tj = np.flatnonzero(mask)  # (k_b,) t·n + j, increasing
        binary = binary and bool((x2[b, tj] == 1).all())
        per_b.append(tj)
    gcount = np.zeros(T * n, dtype=np.int64)  # entries per bag (t, j)
    fcount = np.zeros((T, B), dtype=np.int64)  # entries per bag (t, b)
    for b, tj in enumerate(per_b):
        if grad:
            gcount[tj] += 1  # a sample's tj are distinct
        fcount[:, b] = np.bincount(tj // n, minlength=T)
    gstart = np.concatenate(([0], np.cumsum(gcount)[:-1]))
    fstart = np.concatenate(([0], np.cumsum(fcount.ravel())[:-1])).reshape(T, B)
    nnz = int(fcount.sum())
    cols, grows = np.empty(nnz, dtype=np.int64), np.empty(nnz, dtype=np.int64)
    vals = gvals = None if binary else (np.empty(nnz, dtype=xn.dtype), np.empty(nnz, dtype=xn.dtype))
    fill = np.zeros(T * n, dtype=np.int64)
    for b, tj in enumerate(per_b):
        t, j = np.divmod(tj, n)
        run0 = np.concatenate(([0], np.cumsum(fcount[:, b])[:-1]))  # (T,) first entry of step t in tj
        fdest = fstart[t, b] + np.arange(len(tj)) - run0[t]
        cols[fdest] = j
        if grad:
            gdest = gstart[tj] + fill[tj]
            fill[tj] += 1
            grows[gdest] = b
        if not binary:
            v = x2[b, tj]
            vals[0][fdest] = v  # type: ignore[index]
            if grad:
                vals[1][gdest] = v  # type: ignore[index]
    if vals is not None:
        vals, gvals = vals
    return _Entries(torch.from_numpy(cols), torch.from_numpy(fcount.reshape(-1)),
                    torch.from_numpy(grows) if grad else None, torch.from_numpy(gcount) if grad else None,
                    None if binary else torch.from_numpy(vals),
                    None if binary or not grad else torch.from_numpy(gvals))


def _entries_native(x: torch.Tensor, grad: bool = True) -> _Entries:
    """:class:`_Entries` of a contiguous float32/64 CPU x (B, T, n) with the native kernels: one scan
    counts the entries per bag, a second places them (tpprof.snn.native; the same lists as
    :func:`_entries_numpy`)."""
    nnz, fcount, gcount, binary = native.count(x, grad)
    cols, vals, grows, gvals = native.fill(x, fcount, gcount, nnz, binary)
    return _Entries(cols, fcount, grows, gcount, vals, gvals)


def _entries_torch(x: torch.Tensor, grad: bool = True) -> _Entries:
    """:class:`_Entries` of x (B, T, n) with torch.nonzero (any device; indices come back on the CPU)."""
    B, T, n = x.shape
    xtb, xtj = x.transpose(0, 1), x.permute(1, 2, 0)  # (T, B, n), (T, n, B) views
    fwd = torch.nonzero(xtb.reshape(-1)).squeeze(1)  # (nnz,) (tB + b)n + j
    gpos = torch.nonzero(xtj.reshape(-1)).squeeze(1)  # (nnz,) (tn + j)B + b
    vf, vg = xtb.reshape(-1)[fwd], xtj.reshape(-1)[gpos]
    binary = bool((vf == 1).all())
    fwd, gpos = fwd.cpu(), gpos.cpu()
    fcount, gcount = torch.bincount(fwd // n, minlength=T * B), torch.bincount(gpos // B, minlength=T * n)
    if not grad:
        return _Entries(fwd % n, fcount, None, None, None if binary else vf, None)
    return _Entries(fwd % n, fcount, gpos % B, gcount, None if binary else vf, None if binary else vg)


def density_max(n_out: int) -> float:
    """The largest input density at which ``auto`` takes the sparse path for a layer 1 of
    ``n_out`` neurons: SPARSE_DENSITY_MAX · min(1, n_out / SPARSE_REFERENCE_H)."""
    return SPARSE_DENSITY_MAX * min(1.0, n_out / SPARSE_REFERENCE_H)


def choose_frames(mode: str, x: torch.Tensor, first_dense: bool, n_out: int, dtype: torch.dtype,
                  device: torch.device, grad: bool = True) -> SpikeFrames | None:
    """The index lists (SpikeFrames) of this batch when the sparse path is taken, else None (see module)."""
    if mode not in INPUT_PATHS:
        raise ValueError(f"input_path {mode!r}: one of {INPUT_PATHS}")
    if mode == "dense" or not first_dense:
        return None
    if mode == "auto":
        B, n = x.shape[0], x[0, 0].numel()
        if B * n * n_out < SPARSE_MIN_MACS or batch_density(x) > density_max(n_out):
            return None
    return SpikeFrames(x, dtype, device, grad)


class SparseInputLinear(torch.autograd.Function):
    """I = x^t Wᵀ on the index lists of step t with autograd for W only (the input is data): backward
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


