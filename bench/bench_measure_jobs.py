"""Wall time of a 24-point ``tpprof measure`` grid: ``--jobs 2`` vs ``--jobs 1`` (each point in its
own process forked from a zygote), and the former one-fresh-interpreter-per-point runner.

    PYTHONPATH=$PWD python bench/bench_measure_jobs.py [--grid tiny|shd] [--rounds 3] [--no-fresh]

Grids (24 points each, tp/tess/bptt): ``tiny`` (100-64-10 and 200-64-10, B 4/8, T 5/10: points of
~0.1 s, so the run is mostly the zygote's one torch import, ~1.5 s, which --jobs cannot split),
``shd`` (700-450-20, B 16/32, T 10/25, C 20/35: points of ~0.25 s) and ``shd-t100`` (700-450-20,
B 16/64, T 25/100 as in the SHD runs, C 20/35: points of ~1 s).
Wall seconds per variant in alternating rounds (jobs1, jobs2, fresh, jobs1, ...), the medians, the
ratio jobs2/jobs1 and the load average seen (the machine is shared: the ratio is the figure, the
seconds move with the load).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRIDS = {  # 2 × 3 × 2 × 2 = 24 points each
    "tiny": {"net": ["100-64-10", "200-64-10"], "batch": [4, 8], "steps": [5, 10]},
    "shd": {"net": ["700-450-20"], "batch": [16, 32], "steps": [10, 25], "classes": [20, 35]},
    "shd-t100": {"net": ["700-450-20"], "batch": [16, 64], "steps": [25, 100], "classes": [20, 35]},
}
RULES = ["tp", "tess", "bptt"]


def _flags(grid: str) -> list[str]:
    g = GRIDS[grid]
    out = ["--rule", ",".join(RULES), "--repeats", "1", "--no-rss", "--quiet"]
    for k, v in g.items():
        out += [f"--{k}", ",".join(map(str, v))]
    return out


def _run(grid: str, extra: list[str], out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tpprof", "measure", *_flags(grid), *extra, "--out", str(out)], check=True,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _fresh_interpreters(grid: str, out: Path) -> float:
    """The runner before --jobs: one `python -m tpprof.measure.protocol` per point, in order."""
    code = ("from tpprof.measure.grid import Protocol, expand, run_grid, run_subprocess; "
            f"pts = expand([{dict(GRIDS[grid], rule=RULES)!r}]); "
            f"run_grid(pts, {str(out)!r}, Protocol(repeats=1, rss=False), run_one=run_subprocess, progress=False)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    import argparse
    import statistics

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of each variant (median taken)")
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh-interpreter-per-point variant")
    ap.add_argument("--grid", choices=sorted(GRIDS), default="tiny", help="which 24-point grid (see the docstring)")
    args = ap.parse_args()
    variants = {f"jobs{j}": (lambda o, j=j: _run(args.grid, ["--jobs", str(j)], o)) for j in (1, 2)}
    if not args.no_fresh:
        variants["fresh-interpreter-per-point"] = lambda o: _fresh_interpreters(args.grid, o)
    res: dict[str, list[float]] = {k: [] for k in variants}
    loads = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.rounds):
            for name, fn in variants.items():
                loads.append(os.getloadavg()[0])
                res[name].append(fn(Path(d) / f"{name}-{i}.csv"))
                print(f"round {i + 1} {name:30s} {res[name][-1]:7.1f} s wall (load avg 1 min {loads[-1]:.1f} before)",
                      flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"grid {args.grid}: median of {args.rounds} alternating rounds: " + ", ".join(f"{k} {v:.1f} s" for k, v in med.items()))
    line = f"jobs2 / jobs1 = {med['jobs2'] / med['jobs1']:.2f}"
    if "fresh-interpreter-per-point" in med:
        line += f"   jobs1 / fresh-interpreter-per-point = {med['jobs1'] / med['fresh-interpreter-per-point']:.2f}"
    print(f"{line}   (wall time, {os.cpu_count()} CPUs, load average {min(loads):.1f}–{max(loads):.1f})")


if __name__ == "__main__":
    main()
