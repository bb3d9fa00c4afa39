"""Step time and peak memory of TP, TESS and BPTT, with ratios measured in the same run.

Cases (fp32, CPU, Adam, one thread):
  shd    the SHD feed-forward net 700-450-20, B=128, T=100
  vgg9   the paper's VGG-9 on 2x32x32 input (DVS-Gesture shape, 11 classes), B=16, T=21
  micro  one Linear+LIF layer, W-W-10 for W in 512..4096, B=16, T=500 (the community
         micro-benchmark shape)

Time (CPU time of this process, ``time.process_time``; one thread, so it is the work without
what other jobs on a shared machine took): the three learners are built in this process, warmed
up, then their mini-batches are
interleaved (tp, tess, bptt, tp, ...) ``--repeats`` times; the median per rule is reported,
so the ratios TP/BPTT and TP/TESS come from the same run under the same load.
Peak: each rule in a fresh subprocess with the profiler counter (tpprof.measure protocol;
peak_bytes + input frames kept for backward, the figure ``tpprof validate`` compares).
Achieved GMAC/s = the analytic model's MACs per step / measured seconds per step.

    python bench/bench_rules.py                  # all cases
    python bench/bench_rules.py --case shd --repeats 5
    python bench/bench_rules.py --case micro --widths 512,1024
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

RULES = ("tp", "tess", "bptt")


def cases(names: list[str], widths: list[int]) -> list[tuple[str, str, int, int]]:
    """(label, net, B, T) per case."""
    out = []
    if "shd" in names:
        out.append(("shd", "700-450-20", 128, 100))
    if "vgg9" in names:
        out.append(("vgg9", "vgg9:2x32x32-11", 16, 21))
    if "micro" in names:
        out += [(f"micro{w}", f"{w}-{w}-10", 16, 500) for w in widths]
    return out


def time_rules(net: str, batch: int, steps: int, repeats: int) -> dict[str, list[float]]:
    """CPU seconds per mini-batch for each rule, interleaved in this process."""
    import torch

    from tpprof.config import make_config
    from tpprof.measure.protocol import make_batch
    from tpprof.snn import make_learner

    torch.set_num_threads(1)
    learners, data = {}, {}
    for r in RULES:
        cfg = make_config(net, r, batch, None, steps)
        data[r] = make_batch(cfg, "cpu")
        learners[r] = make_learner(cfg, device="cpu", dtype=torch.float32, seed=0)
        learners[r].train_batch(*data[r])  # warm-up: Adam's moments, allocator, caches
    times: dict[str, list[float]] = {r: [] for r in RULES}
    for _ in range(repeats):
        for r in RULES:
            t0 = time.process_time()  # CPU time: on a shared machine wall time is mostly others' work
            learners[r].train_batch(*data[r])
            times[r].append(time.process_time() - t0)
    return times


def peak_rules(net: str, batch: int, steps: int, timeout: float) -> dict[str, dict]:
    """Peak row per rule, each from a fresh subprocess."""
    from tpprof.config import make_config
    from tpprof.measure.grid import Point, Protocol, run_subprocess

    proto = Protocol(batches=1, repeats=1, warmup=1, rss=False, timeout=timeout)
    return {r: run_subprocess(Point(make_config(net, r, batch, None, steps), net), proto, timing=False) for r in RULES}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", default="shd,vgg9,micro", help="comma list of shd, vgg9, micro")
    ap.add_argument("--widths", default="512,1024,2048,4096", help="micro-benchmark widths")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed mini-batches per rule")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per peak subprocess")
    ap.add_argument("--no-peak", action="store_true", help="time only")
    args = ap.parse_args(argv)
    from tpprof import __version__
    from tpprof.analytic import estimate
    from tpprof.config import make_config
    from tpprof.units import format_bytes
    from tpprof.measure.counters import hardware_description
    from tpprof.validate import measured_total

    import torch

    print(f"tpprof {__version__}, torch {torch.__version__}, {hardware_description()}, 1 thread")
    print("command: python bench/bench_rules.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    widths = [int(w) for w in args.widths.split(",")]
    for label, net, b, t in cases(args.case.split(","), widths):
        start = time.time()
        times = time_rules(net, b, t, args.repeats)
        peaks = {} if args.no_peak else peak_rules(net, b, t, args.timeout)
        print(f"\n== {label}: net {net}, B={b}, T={t}, fp32, adam, {args.repeats} interleaved repeats ==")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; times are CPU time")
        print(f"{'rule':<5} {'s/batch':>9} {'ms/step':>9} {'MMAC/step':>10} {'GMAC/s':>7} {'peak':>11}  status")
        med = {r: statistics.median(times[r]) for r in RULES}
        pk = {}
        for r in RULES:
            macs = estimate(make_config(net, r, b, None, t)).macs_per_step
            ms = med[r] * 1e3 / t
            row = peaks.get(r, {})
            if row.get("status") == "ok":
                pk[r] = measured_total(row)
            peak_txt = format_bytes(pk[r]) if r in pk else "-"
            print(f"{r:<5} {med[r]:>9.3f} {ms:>9.3f} {macs / 1e6:>10.1f} {macs / (ms * 1e-3) / 1e9:>7.2f} "
                  f"{peak_txt:>11}  {row.get('status', 'not measured')} {row.get('error', '')}")
        print(f"time  TP/BPTT {med['tp'] / med['bptt']:.3f}   TP/TESS {med['tp'] / med['tess']:.3f}")
        if "tp" in pk and "bptt" in pk and "tess" in pk:
            print(f"peak  TP/BPTT {pk['tp'] / pk['bptt']:.3f}   TP/TESS {pk['tp'] / pk['tess']:.3f}")
        print(f"({time.time() - start:.0f} s)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
