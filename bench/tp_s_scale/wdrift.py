"""How far TP moves its weights in one epoch on FSDD digit × speaker (a diagnostic, not a test).

Trains the ``fsdd`` preset (60 classes, B = 32, lr 1e-4, seed 0) for one epoch and prints,
per hidden layer, the mean |W| at init, the mean |ΔW| and mean ΔW after the epoch, and the
mean over units of the change of each unit's input-weight sum; then the mean |S| before and
after and the fraction of S's entries above the rheobase (1 − α) v_th (S only moves with
``--train-s``).

    python bench/tp_s_scale/wdrift.py [--train-s] [--limit 200]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from tpprof.config import make_config
from tpprof.data.select import load_train_test
from tpprof.snn import make_learner
from tpprof.train import train_epoch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-s", action="store_true", help="train the label projection S too")
    ap.add_argument("--limit", type=int, default=None, help="use the first N training samples, e.g. 200")
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, _, _ = load_train_test("fsdd", "digit-speaker", seed=0)
    train = train.head(args.limit)
    cfg = make_config("fsdd", "tp", batch=32, classes=60, steps=50, lr=1e-4, train_s=args.train_s)
    learner = make_learner(cfg, seed=0)
    w0 = [lay.W.detach().clone() for lay in learner.net.layers]
    s0 = learner.S.detach().clone()
    train_epoch(learner, train, 32, np.random.default_rng(0), "cpu", False, "")
    for i, lay in enumerate(learner.net.layers):
        d = lay.W.detach() - w0[i]
        print(f"W{i + 1}: init mean|W| {w0[i].abs().mean():.4f}, mean|dW| {d.abs().mean():.4f}, "
              f"mean dW {d.mean():+.5f}, row-sum change (mean over units) {d.sum(1).mean():+.4f}")
    s1 = learner.S.detach()
    rheo = (1 - learner.lif.alpha) * learner.lif.v_th
    print(f"S: init mean|S| {s0.abs().mean():.4f} -> {s1.abs().mean():.4f}; entries above rheobase "
          f"{(s0 > rheo).float().mean():.3f} -> {(s1 > rheo).float().mean():.3f}")


if __name__ == "__main__":
    main()
