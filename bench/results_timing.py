"""Training wall time per FSDD epoch for each rule on this machine (benchmark, not a test).

One process, one torch thread; for each rule: a learner of the same net, 3 warm-up
mini-batches, then ``--batches`` timed mini-batches of B = 32 (T = 50), repeated ``--repeats``
times, rules interleaved so that load from other processes hits them alike. Seconds per epoch
= median seconds per mini-batch × 84 (the official split's 2,700 training samples / 32, short
last batch dropped). Evaluation time is reported apart (one pass over the 300 test samples).

    python bench/results_timing.py --batches 20 --repeats 3 [--net fsdd] [--out docs/results/timing.csv]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tpprof.config import make_config
from tpprof.data import load_fsdd, official_split
from tpprof.snn import make_learner
from tpprof.train import evaluate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default="fsdd")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    train, test = official_split(load_fsdd(), "digit")
    per_epoch = len(train) // 32
    xs = [(torch.from_numpy(xb), torch.from_numpy(yb))
          for xb, yb in train.batches(32, shuffle=True, rng=np.random.default_rng(0), drop_last=True)]
    learners = {r: make_learner(make_config(args.net, r, batch=32, classes=10, steps=50,
                                            lr={"bptt": 1e-3}.get(r, 1e-4)), seed=0) for r in ("tp", "tess", "bptt")}
    for lrn in learners.values():  # warm-up
        for x, y in xs[:3]:
            lrn.train_batch(x, y)
    times: dict[str, list[float]] = {r: [] for r in learners}
    for rep in range(args.repeats):
        for r, lrn in learners.items():
            t0 = time.perf_counter()
            for x, y in xs[3:3 + args.batches]:
                lrn.train_batch(x, y)
            times[r].append((time.perf_counter() - t0) / args.batches)
    rows = []
    for r, lrn in learners.items():
        t0 = time.perf_counter()
        evaluate(lrn, test)
        ev = time.perf_counter() - t0
        med = statistics.median(times[r])
        rows.append([r, lrn.cfg.net.to_string(), 32, 50,
                     f"{med:.4f}", f"{med * per_epoch:.2f}", f"{ev:.2f}", f"{min(times[r]):.4f}", f"{max(times[r]):.4f}"])
    header = ["rule", "net", "batch", "steps", "seconds_per_batch", "seconds_per_epoch", "eval_seconds",
              "min_seconds_per_batch", "max_seconds_per_batch"]
    print(",".join(header))
    for row in rows:
        print(",".join(map(str, row)))
    tp = float(rows[0][4])
    print("ratios to TP:", {r[0]: round(float(r[4]) / tp, 2) for r in rows})
    if args.out:
        with Path(args.out).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
