"""TP's fixed S by ``RuleSpec.s_init`` on FSDD (digit × speaker, 60 classes; digit, 10 classes).

    OMP_NUM_THREADS=1 TPPROF_FSDD=/path/to/fsdd python bench/tp_s_scale/s_init_fsdd.py \
        --inits uniform ws c-invariant --task digit-speaker --epochs 10 --seeds 0 1 2

The ``fsdd`` preset's neuron (α = β = 0.9, v_th = 1), B = 32, lr 1e-4, Adam, S fixed (not
trained), the cosine schedule of ``tpprof train``. Prints one line per run (final, best test
accuracy) and the mean ± std per init; ``--runs DIR`` keeps metrics.json per run. Also the
layer-1 target drive at init: RMS of S c over units and classes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from tpprof.config import make_config  # noqa: E402
from tpprof.data.select import load_train_test  # noqa: E402
from tpprof.snn import make_learner  # noqa: E402
from tpprof.train import fit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inits", nargs="+", default=["uniform", "ws", "c-invariant"])
    ap.add_argument("--task", default="digit-speaker", help="digit-speaker (60 classes) or digit (10)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--runs", default=None, help="folder for metrics.json per run (default: a temp dir)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, test, spec = load_train_test("fsdd", args.task)
    runs = Path(args.runs or tempfile.mkdtemp(prefix="s_init_"))
    for init in args.inits:
        cfg = make_config("fsdd", "tp", batch=32, classes=train.classes, steps=train.steps, lr=1e-4, s_init=init)
        s = make_learner(cfg, seed=0)._s_matrix()  # (n_1, C): S c is column c
        print(f"{init:12s} C={train.classes}: layer-1 target drive RMS {s.pow(2).mean().sqrt():.4f}", flush=True)
        finals, bests = [], []
        for seed in args.seeds:
            m = fit(cfg, train, test, epochs=args.epochs, seed=seed, out_dir=runs / f"{args.task}-{init}-s{seed}",
                    progress=False, meta=spec)
            finals.append(100 * m["test_final"])
            bests.append(100 * m["test_best"])
            print(f"  {init:12s} seed {seed}: final {finals[-1]:.1f} %, best {bests[-1]:.1f} %, "
                  f"{m['seconds_per_epoch']:.1f} s/epoch", flush=True)
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        print(f"{init:12s} {args.task} {args.epochs} epochs, seeds {args.seeds}: final {statistics.mean(finals):.1f} "
              f"± {sd:.1f} %, best {statistics.mean(bests):.1f} %", flush=True)


if __name__ == "__main__":
    main()
