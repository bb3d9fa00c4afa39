"""Analytic sweep throughput: the 10⁶-points-per-rule sweep end to end, and the model's rate.

    python bench/bench_sweep.py [--values 100] [--repeats 3]

Prints (numbers from this run only; the machine and load are printed with them):

* the wall time of ``tpprof sweep --net shd --rule tp,tess,bptt --batch <V values> --classes
  <V values> --steps <V values> --out x.parquet`` in a fresh process (V = 100: 10⁶ points per
  rule, 3·10⁶ rows; goal ≤ 3 s on the 2-core machine), imports and the file write included;
* design points per second of :func:`tpprof.analytic.estimate_grid` alone (median of repeats);
* for scale, :func:`tpprof.analytic.estimate` one point at a time (what sweeps did before).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from tpprof.analytic import estimate, estimate_grid
from tpprof.config import Grid, make_config


def _values(start: int, step: int, n: int) -> str:
    return ",".join(str(start + step * i) for i in range(n))


def sweep_cli_seconds(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "tpprof", "sweep", "--net", "shd", "--rule", "tp,tess,bptt",
               "--batch", _values(1, 1, n), "--classes", _values(2, 1, n), "--steps", _values(5, 5, n),
               "--out", os.path.join(tmp, "x.parquet")]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0


def grid_rate(n: int, repeats: int) -> float:
    grid = Grid(make_config("shd"), (("rule", ("tp", "tess", "bptt")), ("batch", tuple(range(1, n + 1))),
                                     ("classes", tuple(range(2, n + 2))), ("steps", tuple(range(5, 5 * n + 5, 5)))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        estimate_grid(grid)
        times.append(time.perf_counter() - t0)
    return len(grid) / statistics.median(times)


def scalar_rate(points: int = 300) -> float:
    cfgs = [make_config("shd", r, batch=b) for r in ("tp", "tess", "bptt") for b in range(1, points // 3 + 1)]
    t0 = time.perf_counter()
    for cfg in cfgs:
        estimate(cfg)
    return len(cfgs) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--values", type=int, default=100, help="values per axis (points per rule = values³)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}")
    n = a.values
    print(f"tpprof sweep, 3 rules x {n ** 3:,} points -> parquet: {sweep_cli_seconds(n):.2f} s end to end")
    print(f"estimate_grid: {grid_rate(min(n, 60), a.repeats):,.0f} design points/s")
    print(f"estimate (one point at a time): {scalar_rate():,.0f} points/s")


if __name__ == "__main__":
    main()
