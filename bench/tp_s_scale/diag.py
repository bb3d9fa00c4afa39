"""Diagnostics for TP on FSDD digit-speaker: per-layer firing (both paths), local loss per layer, per epoch."""
import sys, json, argparse, time
import numpy as np, torch
torch.set_num_threads(1)
from tpprof.config import make_config
from tpprof.data.select import load_train_test
from tpprof.snn import make_learner
import tpprof.snn.tp as tpm
from tpprof.train import evaluate, train_epoch

ap = argparse.ArgumentParser()
ap.add_argument("--net", default="fsdd"); ap.add_argument("--task", default="digit-speaker")
ap.add_argument("--epochs", type=int, default=3); ap.add_argument("--limit", type=int, default=None)
ap.add_argument("--lr", type=float, default=1e-4); ap.add_argument("--sim", default="distance")
ap.add_argument("--seed", type=int, default=0); ap.add_argument("--freeze", action="store_true")
ap.add_argument("--sscale", type=float, default=None); ap.add_argument("--train-s", action="store_true")
a = ap.parse_args()
train, test, spec = load_train_test("fsdd", a.task, seed=a.seed)
if a.limit: train = train.head(a.limit)
cfg = make_config(a.net, "tp", batch=32, classes=train.classes, steps=train.steps, lr=a.lr, similarity=a.sim, train_s=a.train_s)
L = make_learner(cfg, seed=a.seed)
if a.sscale is not None:
    L.S.mul_(a.sscale)
L.freeze_hidden = a.freeze
rec = {"loss": [[], []], "eps": [[], []], "eps_t": [[], []], "tsil": [[], []], "ydiag": [[], []]}
orig = tpm.tp_loss_grad
cnt = [0]
def wrapped(eps, eps_t, sim, need_target=True):
    i = cnt[0] % 2; cnt[0] += 1
    out = orig(eps, eps_t, sim, need_target)
    rec["loss"][i].append(float(out[0])); rec["eps"][i].append(float(eps.mean())); rec["eps_t"][i].append(float(eps_t.mean()))
    rec["tsil"][i].append(float((eps_t.sum(0) == 0).float().mean()))
    rec["ydiag"][i].append(float(torch.softmax(sim, 1).diagonal().mean()))
    return out
tpm.tp_loss_grad = wrapped
def silent(L, data):
    tr = L.layer_traces(torch.as_tensor(data.x[:300], dtype=torch.float32))
    return [round(float((t.sum(0) == 0).float().mean()), 3) for t in tr], [round(float(t.mean()), 4) for t in tr]
print("init silent/mean trace (test):", silent(L, test), "S-bound", 1/train.classes**0.5, "rheobase", (1-cfg.net.neuron.alpha)*cfg.net.neuron.v_th, flush=True)
rng = np.random.default_rng(a.seed)
for ep in range(a.epochs):
    for k in rec: rec[k] = [[], []]
    t0 = time.time()
    r = train_epoch(L, train, 32, rng, "cpu", False, "")
    acc = evaluate(L, test, 256, "cpu")
    s = {k: [round(float(np.mean(v)), 4) if v else None for v in rec[k]] for k in rec}
    print(f"ep{ep+1} train {r['train_accuracy']:.3f} test {acc:.3f} loss/l {s['loss']} eps {s['eps']} eps_t {s['eps_t']} "
          f"tgt-silent {s['tsil']} ydiag {s['ydiag']} test-silent/mean {silent(L, test)} ({time.time()-t0:.0f}s)", flush=True)
# attribution: which change silences layer 2? swap init weights back in
L0 = make_learner(cfg, seed=a.seed)
for name, src in (("W1 from init", 0), ("W2 from init", 1)):
    saved = L.net.layers[src].W.detach().clone()
    L.net.layers[src].W.data.copy_(L0.net.layers[src].W)
    print(name, "-> test-silent/mean", silent(L, test))
    L.net.layers[src].W.data.copy_(saved)
