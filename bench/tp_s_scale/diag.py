"""Per-layer diagnostics of TP training on FSDD (a diagnostic, not a test; default digit × speaker).

Prints, on stdout:

* ``init``: for the first 300 test samples at initialisation, per hidden layer the fraction
  of units whose input trace ε_l^T is zero for every sample ("silent") and the mean trace;
  then the bound 1/√C of S's init and the rheobase (1 − α) v_th;
* one line per epoch: train and test accuracy; per layer, averaged over the epoch's steps,
  the local loss E_l, the mean input trace ε_l and target trace ε̃_l, the fraction of units
  whose target trace is zero over the whole mini-batch, and the mean diagonal of the target
  similarity softmax(f(ε̃_{l−1})) (the weight a sample gives itself); then test silent/mean
  traces as at init, and the epoch's seconds;
* attribution: the test silent/mean traces with W_l put back to its initial value, one
  layer at a time (which layer's change silences the deeper layer).

The per-layer figures are recorded by wrapping ``tpprof.snn.tp.tp_loss_grad``, which TP calls
once per hidden layer and step (not at all with ``--freeze``: those columns are then None).

    python bench/tp_s_scale/diag.py --epochs 3 [--train-s] [--sim dot] [--sscale 3] [--limit 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import tpprof.snn.tp as tpm
from tpprof.config import make_config
from tpprof.data.select import load_train_test
from tpprof.snn import make_learner
from tpprof.train import evaluate, train_epoch

KEYS = ("loss", "eps", "eps_t", "tsil", "ydiag")


def _silent(learner, data) -> tuple[list[float], list[float]]:
    """Per layer: fraction of units with ε_l^T = 0 on every one of the first 300 samples, mean ε_l^T."""
    tr = learner.layer_traces(torch.as_tensor(data.x[:300], dtype=torch.float32))
    return [round(float((t.sum(0) == 0).float().mean()), 3) for t in tr], [round(float(t.mean()), 4) for t in tr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", default="fsdd", help="net or preset, e.g. fsdd or 40-256-256-60")
    ap.add_argument("--task", default="digit-speaker", help="digit, speaker or digit-speaker")
    ap.add_argument("--epochs", type=int, default=3, help="epochs, e.g. 3")
    ap.add_argument("--limit", type=int, default=None, help="use the first N training samples, e.g. 200")
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate, e.g. 1e-4")
    ap.add_argument("--sim", default="distance", help="TP similarity f: distance or dot")
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights and the shuffling")
    ap.add_argument("--freeze", action="store_true", help="control: only the readout learns")
    ap.add_argument("--sscale", type=float, default=None, help="multiply the initial S by this, e.g. 3")
    ap.add_argument("--train-s", action="store_true", help="train the label projection S too")
    a = ap.parse_args()
    torch.set_num_threads(1)

    train, test, _ = load_train_test("fsdd", a.task, seed=a.seed)
    train = train.head(a.limit)
    cfg = make_config(a.net, "tp", batch=32, classes=train.classes, steps=train.steps, lr=a.lr,
                      similarity=a.sim, train_s=a.train_s, trainable="readout" if a.freeze else "all")
    learner = make_learner(cfg, seed=a.seed)
    if a.sscale is not None:
        with torch.no_grad():  # a trained S is a parameter
            learner.S.mul_(a.sscale)
    n_layers = len(cfg.net.layers)
    rec: dict[str, list[list[float]]] = {}
    calls = [0]
    orig = tpm.tp_loss_grad

    def wrapped(eps, eps_t, sim, need_target=True):
        i = calls[0] % n_layers  # TP calls it for layers 1..L in turn, every step
        calls[0] += 1
        out = orig(eps, eps_t, sim, need_target)
        rec["loss"][i].append(float(out[0]))
        rec["eps"][i].append(float(eps.mean()))
        rec["eps_t"][i].append(float(eps_t.mean()))
        rec["tsil"][i].append(float((eps_t.sum(0) == 0).float().mean()))
        rec["ydiag"][i].append(float(torch.softmax(sim, 1).diagonal().mean()))
        return out

    tpm.tp_loss_grad = wrapped
    nrn = cfg.net.neuron
    print("init silent/mean trace (test):", _silent(learner, test), "S-bound", 1 / train.classes**0.5,
          "rheobase", (1 - nrn.alpha) * nrn.v_th, flush=True)
    rng = np.random.default_rng(a.seed)
    for ep in range(a.epochs):
        rec.update({k: [[] for _ in range(n_layers)] for k in KEYS})
        t0 = time.time()
        r = train_epoch(learner, train, 32, rng, "cpu", False, "")
        acc = evaluate(learner, test, 256, "cpu")
        s = {k: [round(float(np.mean(v)), 4) if v else None for v in rec[k]] for k in KEYS}
        print(f"ep{ep + 1} train {r['train_accuracy']:.3f} test {acc:.3f} loss/l {s['loss']} eps {s['eps']} "
              f"eps_t {s['eps_t']} tgt-silent {s['tsil']} ydiag {s['ydiag']} "
              f"test-silent/mean {_silent(learner, test)} ({time.time() - t0:.0f}s)", flush=True)
    # attribution: which change silences the deeper layer? swap one layer's initial weights back in
    init = make_learner(cfg, seed=a.seed)
    with torch.no_grad():
        for src, (lay, lay0) in enumerate(zip(learner.net.layers, init.net.layers)):
            trained = lay.W.detach().clone()
            lay.W.copy_(lay0.W)
            print(f"W{src + 1} from init -> test-silent/mean", _silent(learner, test))
            lay.W.copy_(trained)


if __name__ == "__main__":
    main()
