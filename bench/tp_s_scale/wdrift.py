"""Weight drift after 1 epoch of TP (fsdd neuron, 60 classes): how far W_1, W_2 move versus their init scale."""
import sys, numpy as np, torch; torch.set_num_threads(1)
from tpprof.config import make_config
from tpprof.data.select import load_train_test
from tpprof.snn import make_learner
from tpprof.train import train_epoch
train, test, _ = load_train_test("fsdd", "digit-speaker", seed=0)
opts = {"train_s": True} if "train_s" in sys.argv else {}
cfg = make_config("fsdd", "tp", batch=32, classes=60, steps=50, lr=1e-4, **opts)
L = make_learner(cfg, seed=0); W0 = [lay.W.detach().clone() for lay in L.net.layers]; S0 = L.S.detach().clone()
train_epoch(L, train, 32, np.random.default_rng(0), "cpu", False, "")
for i, lay in enumerate(L.net.layers):
    d = lay.W.detach() - W0[i]
    print(f"W{i+1}: init mean|W| {W0[i].abs().mean():.4f}, mean|dW| {d.abs().mean():.4f}, mean dW {d.mean():+.5f}, "
          f"row-sum change (mean over units) {d.sum(1).mean():+.4f}")
print(f"S: init mean|S| {S0.abs().mean():.4f} -> {L.S.detach().abs().mean():.4f}; entries above rheobase {(S0 > 0.1).float().mean():.3f} -> {(L.S.detach() > 0.1).float().mean():.3f}")
