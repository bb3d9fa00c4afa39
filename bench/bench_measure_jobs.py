"""Wall time of a 24-point ``tpprof measure`` grid: ``--jobs 2`` vs ``--jobs 1`` (each point in its
own process forked from a zygote), and the former one-fresh-interpreter-per-point runner.

    PYTHONPATH=$PWD python bench/bench_measure_jobs.py

Prints wall seconds per variant, the ratio jobs2/jobs1, and the load average around each run
(the machine is shared: the ratio is the figure, the seconds move with the load).
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
    with tempfile.TemporaryDirectory() as d:
        res = {}
        for name, fn in (("jobs1", lambda o: _run(["--jobs", "1"], o)), ("jobs2", lambda o: _run(["--jobs", "2"], o)),
                         ("fresh-interpreter-per-point", _fresh_interpreters)):
            load0 = os.getloadavg()[0]
            res[name] = fn(Path(d) / f"{name}.csv")
            print(f"{name:30s} {res[name]:7.1f} s wall   (load avg 1 min: {load0:.1f} before, {os.getloadavg()[0]:.1f} after)",
                  flush=True)
        print(f"jobs2 / jobs1 = {res['jobs2'] / res['jobs1']:.2f}   "
              f"jobs1 / fresh-interpreter-per-point = {res['jobs1'] / res['fresh-interpreter-per-point']:.2f}   "
              f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
