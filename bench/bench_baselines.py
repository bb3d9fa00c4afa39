"""TP against every baseline learner, in one run: ms/step and peak, and their ratios to TP.

    OMP_NUM_THREADS=1 python bench/bench_baselines.py            # SHD and VGG-9, a few minutes
    OMP_NUM_THREADS=1 python bench/bench_baselines.py --quick    # T = 20 on SHD

One process, one thread. Cases: SHD 700-450-20, B=128, C=20, T=100 (the paper's SHD workload),
and VGG-9 on 2x32x32 inputs at B=8, C=4, T=2 (a size this CPU finishes in minutes). Per learner:
ms/step (process CPU time, minimum over rounds in which all learners of a case run interleaved,
the method of bench_tp_dedup.py), the measured peak (profiler counter + saved input frames, the
figure ``tpprof validate`` uses), the analytic full peak, and time and peak relative to TP.
Synthetic inputs (make_batch): spikes with P(1) = 0.1, labels cycling through the classes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tp_dedup import MiB, _cpu_ms_per_step, _row  # noqa: E402

from tpprof.config import make_config  # noqa: E402

#: (label, rule, rule options): every learner tpprof has, TP first (the reference of the ratios).
LEARNERS: tuple[tuple[str, str, dict], ...] = (
    ("tp", "tp", {}),
    ("tp classes", "tp", {"target_rows": "classes"}),
    ("tess", "tess", {}),
    ("tess authors", "tess", {"flavour": "authors"}),
    ("tess-authors-schedule", "tess-authors-schedule", {}),
    ("ottt", "ottt", {}),
    ("bptt", "bptt", {}),
    ("bptt-compact", "bptt-compact", {}),
    ("bptt-ckpt", "bptt-ckpt", {}),
    ("bptt-ckpt compact", "bptt-ckpt", {"compact": True}),
    ("tbptt", "tbptt", {}),
)


def run_case(label: str, net: str, batch: int, classes: int, steps: int, rounds: int) -> None:
    """Print one row per learner: ms/step, measured and analytic peak, ratios to TP."""
    cfgs = {name: make_config(net, rule, batch=batch, classes=classes, steps=steps, **opts)
            for name, rule, opts in LEARNERS}
    times = _cpu_ms_per_step(cfgs, rounds=rounds)
    peaks = {name: _row(cfg) for name, cfg in cfgs.items()}
    t_tp, p_tp = times["tp"], peaks["tp"][0]
    print(f"\n{label}: net {net}, B={batch}, C={classes}, T={steps}, 1 thread")
    print(f"{'learner':24s} {'ms/step':>9s} {'meas MiB':>9s} {'model MiB':>9s} {'err':>7s} {'time/TP':>8s} "
          f"{'peak/TP':>8s}")
    for name, (meas, model) in peaks.items():
        print(f"{name:24s} {times[name]:9.3f} {meas / MiB:9.3f} {model / MiB:9.3f} {meas / model - 1:+7.2%} "
              f"{times[name] / t_tp:8.2f} {meas / p_tp:8.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="T = 20 on SHD")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds, e.g. 3")
    args = ap.parse_args()
    run_case("SHD", "700-450-20", 128, 20, 20 if args.quick else 100, args.rounds)
    run_case("VGG-9", "vgg9:2x32x32-4", 8, 4, 2, args.rounds)


if __name__ == "__main__":
    main()
