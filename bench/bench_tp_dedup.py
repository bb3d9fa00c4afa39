"""TP with the class-deduplicated target path (target_rows="classes") vs the paper's B rows.

    OMP_NUM_THREADS=1 python bench/bench_tp_dedup.py            # all cases, ~2 min on one core
    OMP_NUM_THREADS=1 python bench/bench_tp_dedup.py --quick    # shorter T

One process, one thread. Per case (SHD 700-450-20 B=128 C=20; a 2-hidden 700-450-450-20;
VGG-9 at a small B with repeated classes) and mode (TP batch, TP classes, BPTT): ms/step
(process CPU time, the minimum over rounds in which the three modes run interleaved: the
machine is shared, and CPU time is less disturbed than wall time), the measured peak
(profiler counter, + input frames BPTT saves: the figure ``tpprof validate`` uses), the analytic
full-accounting peak, and their error. Then TP's peak at T = 25 and T = 400 in every mode
(``--t-only``: that check alone).
Synthetic inputs: spikes with P(1) = 0.1 and labels cycling through the classes (make_batch),
so every class is present (K = min(B, C), the model's worst case).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tpprof.analytic import estimate  # noqa: E402
from tpprof.config import make_config  # noqa: E402
from tpprof.measure.protocol import measure_point  # noqa: E402
from tpprof.validate import measured_total  # noqa: E402

MiB = 2**20


def _row(cfg) -> tuple[int, int]:
    """(measured peak: profiler counter + saved input frames, analytic full peak), bytes."""
    r = measure_point(cfg, warmup=1, rss=False, threads=1, timing=False)
    return measured_total(r), estimate(cfg, "full").peak_bytes


def _cpu_ms_per_step(cfgs: dict[str, object], rounds: int) -> dict[str, float]:
    """Min over ``rounds`` of process CPU time per step, the modes interleaved in each round."""
    import torch

    from tpprof.measure.protocol import make_batch
    from tpprof.snn import make_learner

    torch.set_num_threads(1)
    run = {}
    for mode, cfg in cfgs.items():
        lr = make_learner(cfg, seed=0)
        x, y = make_batch(cfg, "cpu")
        lr.train_batch(x, y)  # warm-up (Adam state, allocator)
        run[mode] = (lr, x, y, cfg.workload.steps)
    best = {m: float("inf") for m in run}
    for _ in range(rounds):
        for m, (lr, x, y, T) in run.items():
            t0 = time.process_time()
            lr.train_batch(x, y)
            best[m] = min(best[m], (time.process_time() - t0) * 1e3 / T)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="T = 20 for the dense cases")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds, e.g. 3")
    ap.add_argument("--t-only", action="store_true", help="only the T-flatness check")
    args = ap.parse_args()
    if args.t_only:
        return t_flatness()
    T = 20 if args.quick else 100
    cases = [("SHD 700-450-20", "700-450-20", 128, 20, T),
             ("2-hidden 700-450-450-20", "700-450-450-20", 128, 20, T),
             ("VGG-9 2x32x32 (B=8, C=4)", "vgg9:2x32x32-4", 8, 4, 2)]
    print(f"{'case':26s} {'mode':12s} {'ms/step':>9s} {'meas MiB':>9s} {'model MiB':>9s} {'err':>7s}")
    for label, net, B, C, steps in cases:
        res = {}
        cfgs = {mode: make_config(net, rule, batch=B, classes=C, steps=steps, target_rows=rows)
                for mode, rule, rows in (("tp batch", "tp", "batch"), ("tp classes", "tp", "classes"),
                                         ("bptt", "bptt", "batch"))}
        times = _cpu_ms_per_step(cfgs, rounds=args.rounds)
        for mode, cfg in cfgs.items():
            meas, model = _row(cfg)
            ms = times[mode]
            res[mode] = (ms, meas)
            print(f"{label:26s} {mode:12s} {ms:9.3f} {meas / MiB:9.3f} {model / MiB:9.3f} {meas / model - 1:+7.2%}",
                  flush=True)
        (tb, pb), (tc, pc), (tbp, pbp) = res["tp batch"], res["tp classes"], res["bptt"]
        print(f"{label:26s} classes/batch: time {tc / tb:.3f}x, peak {pc / pb:.3f}x; classes/bptt: time "
              f"{tc / tbp:.3f}x, peak {pc / pbp:.3f}x", flush=True)
    t_flatness()


def t_flatness() -> None:
    """TP's measured peak at T = 400 over T = 25 (B = 128, C = 20) in every mode: target rows
    batch / classes, flavour paper / authors (the latter on a recurrent net, where D1 adds R̃_1)."""
    print("TP peak flat in T (B=128, C=20): peak(T=400) / peak(T=25)")
    for net, flavour in (("700-450-20", "paper"), ("700-450r-20", "authors")):
        for rows in ("batch", "classes"):
            p = {t: _row(make_config(net, batch=128, classes=20, steps=t, target_rows=rows, flavour=flavour))[0]
                 for t in (25, 400)}
            print(f"  {net:12s} {flavour:8s} {rows:8s} {p[25] / MiB:.3f} MiB -> {p[400] / MiB:.3f} MiB: "
                  f"ratio {p[400] / p[25]:.4f}", flush=True)


if __name__ == "__main__":
    main()
