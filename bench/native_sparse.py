"""The sparse input path's native kernels (tpprof.snn.native) next to torch's and numpy's path.

    PYTHONPATH=$PWD python bench/native_sparse.py                 # P(1) = 0.05, 7 rounds
    PYTHONPATH=$PWD python bench/native_sparse.py --density 0.02 --rounds 9

SHD layer 1 (700 → 450), B = 128, T = 100, synthetic spikes at ``--density``, one thread, CPU ms per
time step (median of ``--rounds`` alternating rounds; the load average is printed), two pieces of a
step on the same index lists:

* weight gradient ``∂W_1 += δᵀ x^t`` into a column-major gradient: ``embedding_bag`` over the rows of
  δ plus the add into the gradient, against the native kernel adding into it directly;
* the batch's index lists (once per mini-batch, shown per step): numpy against the native scans.

The two paths' results are compared first (max |Δ| printed; the lists must be identical). The
products are timed on lists and weights that stay in cache between calls, unlike inside a step
(see ``bench/bench_floor.py`` and ``bench/ab_step.py`` for whole steps).
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

from _alternate import alternate
from tpprof.snn import native
from tpprof.snn.sparse import SpikeFrames, _entries_native, _entries_numpy

B, T, N_IN, H = 128, 100, 700, 450


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if native.library() is None:
        raise SystemExit(f"native_sparse: the native kernels are {native.status()}")
    x = (torch.rand((B, T, N_IN), generator=torch.Generator().manual_seed(1)) < args.density).float()
    g = torch.zeros(N_IN, H).t()
    d = torch.randn(B, H)
    fr = SpikeFrames(x, torch.float32, torch.device("cpu"))
    torch_fr = SpikeFrames(x, torch.float32, torch.device("cpu"))
    torch_fr.native = False  # embedding_bag's products on the same lists

    g2 = g.clone()
    fr.add_wgrad(3, g, d)
    torch_fr.add_wgrad(3, g2, d)
    err_g = float((g - g2).abs().max())
    a, b = _entries_native(x), _entries_numpy(x)
    if not all(u is v or torch.equal(u, v) for u, v in zip(a, b)):
        raise SystemExit("native_sparse: the native index lists differ from numpy's")
    runs = {
        "weight grad, embedding_bag": lambda: [torch_fr.add_wgrad(t, g, d) for t in range(T)],
        "weight grad, native": lambda: [fr.add_wgrad(t, g, d) for t in range(T)],
        "index lists, numpy": lambda: _entries_numpy(x),
        "index lists, native": lambda: _entries_native(x),
    }
    for fn in runs.values():
        fn()  # warm-up
    load0 = os.getloadavg()[0]
    med = {k: statistics.median(v) for k, v in alternate(runs, args.rounds, per=T).items()}
    print(f"layer 1 of 700-450-20, B={B}, T={T}, P(1)={args.density}: CPU ms per step, 1 thread, median of "
          f"{args.rounds} alternating rounds; load average {load0:.1f} → {os.getloadavg()[0]:.1f}")
    print(f"  (compared first: weight grad max |Δ| {err_g:.1e}, index lists identical)")
    for k, v in med.items():
        print(f"  {k:28s} {v:7.3f}")


if __name__ == "__main__":
    main()
