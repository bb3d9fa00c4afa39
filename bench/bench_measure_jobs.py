"""Wall time of a 24-point ``tpprof measure`` grid: ``--jobs 2`` vs ``--jobs 1`` (each point in its
own process forked from a zygote), and the former one-fresh-interpreter-per-point runner.

    PYTHONPATH=$PWD python bench/bench_measure_jobs.py [--rounds 3] [--no-fresh]

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

GRID = ["--net", "100-64-10,200-64-10", "--rule", "tp,tess,bptt", "--batch", "4,8", "--steps", "5,10",
        "--repeats", "1", "--no-rss", "--quiet"]  # 2 × 3 × 2 × 2 = 24 points


def _run(extra: list[str], out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tpprof", "measure", *GRID, *extra, "--out", str(out)], check=True,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _fresh_interpreters(out: Path) -> float:
    """The runner before --jobs: one `python -m tpprof.measure.protocol` per point, in order."""
    code = ("import sys; from tpprof.cli.config_flags import split_list; "
            "from tpprof.measure.grid import Protocol, expand, run_grid, run_subprocess; "
            "pts = expand([{'rule': ['tp','tess','bptt'], 'net': ['100-64-10','200-64-10'], 'batch': [4, 8], "
            "'steps': [5, 10]}]); "
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
    args = ap.parse_args()
    variants = {"jobs1": lambda o: _run(["--jobs", "1"], o), "jobs2": lambda o: _run(["--jobs", "2"], o)}
    if not args.no_fresh:
        variants["fresh-interpreter-per-point"] = _fresh_interpreters
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
    print(f"median of {args.rounds} alternating rounds: " + ", ".join(f"{k} {v:.1f} s" for k, v in med.items()))
    line = f"jobs2 / jobs1 = {med['jobs2'] / med['jobs1']:.2f}"
    if "fresh-interpreter-per-point" in med:
        line += f"   jobs1 / fresh-interpreter-per-point = {med['jobs1'] / med['fresh-interpreter-per-point']:.2f}"
    print(f"{line}   (wall time, {os.cpu_count()} CPUs, load average {min(loads):.1f}–{max(loads):.1f})")


if __name__ == "__main__":
    main()
