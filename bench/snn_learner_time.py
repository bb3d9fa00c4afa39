"""Time per mini-batch of the TP, TESS and BPTT learners (one thread, warm-up, median).

    python bench/snn_learner_time.py --net shd --batch 128 --steps 100 --repeats 3

Prints, per rule, the median wall time and the minimum process CPU time per mini-batch, and
the ratios to BPTT, measured interleaved in one process (ratios transfer between machines,
absolute times do not; CPU time is less disturbed by other processes than wall time).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tpprof.config import make_config
from tpprof.snn import make_learner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", default="shd", help="net or preset, e.g. shd or 700-450-20")
    ap.add_argument("--batch", type=int, default=128, help="batch size B, e.g. 128")
    ap.add_argument("--steps", type=int, default=100, help="time steps T, e.g. 100")
    ap.add_argument("--repeats", type=int, default=3, help="timed mini-batches per rule, e.g. 3")
    ap.add_argument("--rules", default="tp,tess,bptt", help="comma list, e.g. tp,bptt")
    ap.add_argument("--rate", type=float, default=0.05, help="input spike probability per step, e.g. 0.05")
    args = ap.parse_args()
    torch.set_num_threads(1)
    learners, data = {}, {}
    for rule in args.rules.split(","):
        cfg = make_config(args.net, rule, batch=args.batch, steps=args.steps)
        learners[rule] = make_learner(cfg, seed=0)
        gen = torch.Generator().manual_seed(0)
        x = (torch.rand((args.batch, args.steps, *cfg.net.input_shape), generator=gen) < args.rate).float()
        data[rule] = (x, torch.randint(0, cfg.net.readout, (args.batch,), generator=gen))
        learners[rule].train_batch(*data[rule])  # warm-up
    wall: dict[str, list[float]] = {r: [] for r in learners}
    cpu: dict[str, list[float]] = {r: [] for r in learners}
    for _ in range(args.repeats):  # interleaved, so background load hits every rule alike
        for rule, learner in learners.items():
            w0, c0 = time.perf_counter(), time.process_time()
            learner.train_batch(*data[rule])
            wall[rule].append(time.perf_counter() - w0)
            cpu[rule].append(time.process_time() - c0)
    base = "bptt" if "bptt" in learners else None
    print(f"{args.net} B={args.batch} T={args.steps}, one thread, {args.repeats} interleaved repeats")
    for rule in learners:
        w, c = statistics.median(wall[rule]), min(cpu[rule])
        ratio = ""
        if base:
            ratio = (f"  wall ×{w / statistics.median(wall[base]):.2f}, cpu ×{c / min(cpu[base]):.2f} of bptt")
        print(f"{rule:5s} wall median {w:7.3f} s, cpu min {c:7.3f} s per mini-batch{ratio}")

if __name__ == "__main__":
    main()
