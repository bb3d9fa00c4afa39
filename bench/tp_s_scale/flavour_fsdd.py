"""TP flavour "paper" vs "authors" on FSDD digits with a recurrent layer 1 (D1 applies).

    OMP_NUM_THREADS=1 TPPROF_FSDD=/path/to/fsdd python bench/tp_s_scale/flavour_fsdd.py --epochs 20 --seeds 0 1 2 [--flavours paper]

Net 40-256r-256-10 with the ``fsdd`` preset's neuron, B = 32, lr 1e-4, Adam, S fixed. D2–D4
are conv-only and D5 gsc-only, so on this dense net "authors" differs by D1 and the +1e-9.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from tpprof.config import PRESETS, make_config, parse_net  # noqa: E402
from tpprof.data.select import load_train_test  # noqa: E402
from tpprof.train import fit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--flavours", nargs="+", default=["paper", "authors"], help="e.g. --flavours authors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, test, spec = load_train_test("fsdd", "digit")
    net = parse_net("40-256r-256-10", PRESETS["fsdd"].net.neuron)
    runs = Path(tempfile.mkdtemp(prefix="flavour_"))
    for flavour in args.flavours:
        cfg = make_config(net, "tp", batch=32, classes=10, steps=train.steps, lr=1e-4, flavour=flavour)
        for seed in args.seeds:
            m = fit(cfg, train, test, epochs=args.epochs, seed=seed, out_dir=runs / f"{flavour}-s{seed}",
                    progress=False, meta=spec)
            print(f"{flavour:8s} seed {seed}: final {100 * m['test_final']:.1f} %, best {100 * m['test_best']:.1f} %",
                  flush=True)


if __name__ == "__main__":
    main()
