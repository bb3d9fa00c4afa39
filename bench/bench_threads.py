"""Per-step time of the learners at 1 vs N torch threads, against per-step MACs.

Measures the rule behind :func:`tpprof.train.default_threads`: for each (rule, net, B) it
times ``learner.train_batch`` on random spikes (T steps; median of ``--repeats`` after one
warm-up) at 1 thread and at N threads (default: every core), and prints the per-step
multiply-accumulates ``B × n_params`` with the ratio t_N / t_1. Usage (a minute on 2 cores):

    OMP_NUM_THREADS=1 python bench/bench_threads.py [--threads N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [  # (rule, net, batch, steps): small to large per-step work
    ("tp", "40-256-256-10", 32, 50),  # tpprof train's FSDD default
    ("bptt", "40-256-256-10", 32, 50),
    ("tp", "40-256-256-10", 128, 25),
    ("tp", "700-450-450-20", 128, 10),
    ("tp", "700-1024-1024-20", 256, 5),
    ("tp", "700-2048-2048-20", 256, 3),
]


def time_case(rule: str, net: str, batch: int, steps: int, threads: int, repeats: int) -> float:
    import torch

    from tpprof.config import make_config
    from tpprof.data.synthetic import synthetic_batch
    from tpprof.snn import make_learner

    torch.set_num_threads(threads)
    cfg = make_config(net, rule, batch=batch, steps=steps)
    learner = make_learner(cfg, seed=0)
    x, y = synthetic_batch(batch, steps, cfg.net.input_shape, cfg.workload.classes)
    learner.train_batch(x, y)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        learner.train_batch(x, y)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from tpprof.config import make_config

    print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; N = {a.threads}")
    print(f"{'rule':<5} {'net':<18} {'B':>4} {'MACs/step':>11} {'1 thr ms':>9} {'N thr ms':>9} {'N/1':>6}")
    for rule, net, b, t in CASES:
        macs = b * make_config(net, rule, batch=b, steps=t).net.n_params()
        t1 = time_case(rule, net, b, t, 1, a.repeats)
        tn = time_case(rule, net, b, t, a.threads, a.repeats)
        print(f"{rule:<5} {net:<18} {b:>4} {macs:>11.2e} {t1 * 1e3:>9.3f} {tn * 1e3:>9.3f} {tn / t1:>6.2f}")


if __name__ == "__main__":
    main()
