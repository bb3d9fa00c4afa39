"""A learner's step time in two source trees of tpprof, measured in alternating processes: did a
change make it faster, by more than the machine's noise?

    git worktree add /tmp/base <rev>
    PYTHONPATH=$PWD python bench/ab_step.py --base /tmp/base                   # tp:classes, bptt
    PYTHONPATH=$PWD python bench/ab_step.py --base /tmp/base --rules tp,tess,ottt --pairs 7

SHD 700-450-20, B = 128, T = 100, sparse input path, synthetic spikes at ``--density``, one thread.
For each learner, ``--pairs`` pairs of processes run one after the other (base, this tree, base,
...), each timing ``--batches`` mini-batches after a warm-up one and reporting the fastest (CPU
time per step: the least disturbed by other jobs on a shared machine). Printed: each side's
median over its processes, the ratio this / base, and the spread of the per-pair ratios, which is
the noise a difference must beat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

#: one process's work: the fastest of N mini-batches, CPU ms per step, printed alone
CHILD = """
import sys, time, torch
from tpprof.config import make_config
from tpprof.snn import make_learner
torch.set_num_threads(1)
rule, _, mode = sys.argv[1].partition(":")
kw = {"target_rows": "classes"} if mode == "classes" else {}
lr = make_learner(make_config("700-450-20", rule, 128, None, 100, **kw), seed=0)
lr.input_path = "sparse"
g = torch.Generator().manual_seed(1)
x = (torch.rand((128, 100, 700), generator=g) < float(sys.argv[2])).float()
y = torch.arange(128) % 20
lr.train_batch(x, y)
best = float("inf")
for _ in range(int(sys.argv[3])):
    c0 = time.process_time()
    lr.train_batch(x, y)
    best = min(best, time.process_time() - c0)
print(best / 100 * 1e3)
"""


def _one(tree: Path, rule: str, density: float, batches: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", CHILD, rule, str(density), str(batches)], env=env, cwd=tree,
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="the other source tree (a checkout of tpprof)")
    ap.add_argument("--rules", default="tp:classes,bptt", help="learners (rule[:classes]), comma-separated")
    ap.add_argument("--pairs", type=int, default=5, help="alternating (base, this) process pairs per learner")
    ap.add_argument("--batches", type=int, default=5, help="timed mini-batches per process (the fastest counts)")
    ap.add_argument("--density", type=float, default=0.05)
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    base = args.base.resolve()
    if not (base / "tpprof" / "__init__.py").is_file():
        ap.error(f"--base {base}: not a tpprof source tree (no tpprof/__init__.py)")
    load0 = os.getloadavg()[0]
    print(f"CPU ms per step (fastest of {args.batches} mini-batches per process, {args.pairs} alternating pairs); "
          f"base {base}, this {here}")
    print(f"  {'learner':12s} {'base':>7s} {'this':>7s} {'this/base':>9s}  per-pair ratios")
    for rule in args.rules.split(","):
        b, t = [], []
        for _ in range(args.pairs):
            b.append(_one(base, rule, args.density, args.batches))
            t.append(_one(here, rule, args.density, args.batches))
        ratios = sorted(x / y for x, y in zip(t, b))
        mb, mt = statistics.median(b), statistics.median(t)
        print(f"  {rule:12s} {mb:7.3f} {mt:7.3f} {mt / mb:9.3f}  {ratios[0]:.2f}–{ratios[-1]:.2f}")
    print(f"load average {load0:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
