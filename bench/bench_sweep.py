"""Analytic sweep throughput: design points per second (goal ≥ 10⁶ on a 2-core machine).

    python bench/bench_sweep.py [--points 2000000] [--repeats 5]

Prints, for the vectorised closed forms (tpprof.analytic.regimes.memory_dense), the median
design points per second per rule (a point = one (B, C, L, H, T, F) memory estimate with
total, peak and the nine categories); the same through regimes.sweep → pandas DataFrame; and,
for scale, the general per-config model (tpprof.analytic.estimate) one point at a time.
Numbers are from this run only; the machine and load are printed with them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from tpprof.analytic import estimate
from tpprof.analytic.regimes import memory_dense, sweep
from tpprof.config import make_config


def _median_rate(fn, n: int, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=2_000_000, help="design points per call, e.g. 2000000")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported), e.g. 5")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.points
    B = rng.integers(1, 1025, n)
    C = rng.integers(2, 10001, n)
    L = rng.integers(1, 9, n)
    H = rng.integers(16, 4097, n)
    T = rng.integers(1, 1001, n)
    F = rng.integers(16, 4097, n)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; numpy {np.__version__}; {n:,} points per call, "
          f"median of {args.repeats}")
    for rule in ("tp", "tess", "bptt", "eprop", "ottt"):
        rate = _median_rate(lambda: memory_dense(rule, B, C, L, H, T, F), n, args.repeats)
        print(f"memory_dense {rule:6s}: {rate:,.0f} design points/s")
    grid = dict(B=np.arange(1, 257), C=np.geomspace(2, 10000, 64).round(), L=[1, 2, 4, 8], H=[128, 256, 512, 1024],
                T=[100], F=[700])
    npts = 256 * 64 * 4 * 4 * 3
    rate = _median_rate(lambda: sweep(("tp", "tess", "bptt"), **grid), npts, args.repeats)
    print(f"regimes.sweep → DataFrame (3 rules, {npts:,} rows): {rate:,.0f} design points/s")
    cfg = make_config("shd", "tp")
    m = 2000
    rate = _median_rate(lambda: [estimate(cfg) for _ in range(m)], m, 3)
    print(f"estimate() general model, one config at a time (shd, tp): {rate:,.0f} configs/s")


if __name__ == "__main__":
    main()
