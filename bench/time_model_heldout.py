"""The per-learner time model's held-out error on the shipped measurements.

    PYTHONPATH=$PWD python bench/time_model_heldout.py

For every host of the shipped measurement files (tpprof/shipped/measurements/*.csv) and every
learner: points, configs, clock (the fastest timed mini-batch where the rows carry it; see
tpprof.analytic.timing.CLOCKS), and the error of predicting each config from a fit on the
learner's other configs (leave one config out): median and max |t̂/t − 1|. Goal (issue 21): median ≤ 10 %, max ≤ 30 % per learner.
"""

from __future__ import annotations

from pathlib import Path

from tpprof.analytic.timing import CLOCK_NAMES, calibrate_learners
from tpprof.resources import measurements_dir
from tpprof.store import load


def main() -> None:
    files = sorted(Path(measurements_dir()).glob("*.csv"))
    rows = [r for f in files for r in load(f).rows]
    for (dev, hw), tm in calibrate_learners(rows).items():
        print(f"{dev} '{hw}' ({CLOCK_NAMES[tm.clock]})")
        print(f"  {'learner':24s} {'points':>6s} {'configs':>7s} {'median':>7s} {'max':>6s}  goal")
        for k, m in sorted(tm.learners.items()):
            ok = m.median_error <= 0.10 and m.max_error <= 0.30
            print(f"  {k:24s} {m.n_points:6d} {m.n_configs:7d} {m.median_error:7.1%} {m.max_error:6.1%}  "
                  f"{'met' if ok else 'not met'}")
        med, mx = tm.held_out()
        print(f"  all learners: median of medians {med:.1%}, max {mx:.1%}")


if __name__ == "__main__":
    main()
