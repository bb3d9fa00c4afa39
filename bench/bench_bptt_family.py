"""The BPTT family and OTTT over T: measured peak (CPU profiler counter, + the input frames a
learner keeps for backward, as ``tpprof validate`` counts them) against the analytic peak, and
the T-scaling of each rule.

    OMP_NUM_THREADS=1 python bench/bench_bptt_family.py [--net shd] [--batch 16] [--steps 25,100,400]
        [--rules bptt,bptt-compact,bptt-ckpt,tbptt,ottt] [--no-measure]

Prints one line per (rule, T): measured, analytic, error; then per rule the slope of the peak
between the smallest and largest T (bytes per step) and peak(T_max)/peak(T_min), next to √(T_max/T_min).
Expected shape: bptt and bptt-compact linear (compact with the smaller slope), bptt-ckpt ~√T,
tbptt and ottt flat once T ≥ the window.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tpprof.analytic import estimate  # noqa: E402
from tpprof.config import make_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="shd")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", default="25,100,400")
    ap.add_argument("--rules", default="bptt,bptt-compact,bptt-ckpt,tbptt,ottt")
    ap.add_argument("--compact", action="store_true", help="bptt-ckpt / tbptt with compact saving")
    ap.add_argument("--no-measure", action="store_true", help="analytic figures only")
    a = ap.parse_args(argv)
    steps = [int(t) for t in a.steps.split(",")]
    rules = a.rules.split(",")
    if not a.no_measure:
        from tpprof.measure.protocol import measure_point
    print(f"net {a.net}, B = {a.batch}; peaks in bytes (measured = peak + input frames kept for backward)")
    print(f"{'rule':<14}{'T':>6}{'measured':>12}{'analytic':>12}{'error':>9}")
    table: dict[str, dict[int, tuple[int | None, int]]] = {}
    persistent: dict[str, dict[int, int]] = {}
    for rule in rules:
        kw = {"compact": True} if a.compact and rule in ("bptt-ckpt", "tbptt") else {}
        for T in steps:
            cfg = make_config(a.net, rule, batch=a.batch, steps=T, **kw)
            bd = estimate(cfg)
            ana = int(bd.peak_bytes)
            persistent.setdefault(rule, {})[T] = int(bd.by_category()["saved"])
            meas = None
            if not a.no_measure:
                row = measure_point(cfg, timing=False, rss=False)
                meas = int(row["peak_bytes"]) + int(row.get("input_saved_bytes") or 0)
            table.setdefault(rule, {})[T] = (meas, ana)
            err = f"{(meas / ana - 1) * 100:+8.2f}%" if meas is not None else ""
            print(f"{rule:<14}{T:>6}{meas if meas is not None else '-':>12}{ana:>12}{err:>9}", flush=True)
    t0, t1 = min(steps), max(steps)
    if t1 == t0:
        return 0
    print(f"\nT-scaling between T = {t0} and T = {t1} (√ ratio {math.sqrt(t1 / t0):.2f}):")
    print("  slope = Δpeak/ΔT; peak ratio = peak(T_max)/peak(T_min); saved ratio = the same for the analytic 'saved'")
    print("  bytes (all saved terms): the T ratio for linear rules, about the √ ratio for bptt-ckpt, 1 for flat ones")
    print(f"{'rule':<14}{'slope B/step':>14}{'peak ratio':>12}{'saved ratio':>14}   (measured; analytic in brackets; saved ratio analytic)")
    for rule, row in table.items():
        (m0, a0), (m1, a1) = row[t0], row[t1]
        p0, p1 = persistent[rule][t0], persistent[rule][t1]  # analytic saved bytes at the peak
        am = f"{(a1 - a0) / (t1 - t0):.0f}"
        ap = f"{p1 / p0:.3f}" if p0 else "-"
        if m0 is not None:
            print(f"{rule:<14}{(m1 - m0) / (t1 - t0):>14.0f}{m1 / m0:>12.3f}{ap:>14}   "
                  f"[{am} B/step, {a1 / a0:.3f}]")
        else:
            print(f"{rule:<14}{am:>14}{a1 / a0:>12.3f}{ap:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
