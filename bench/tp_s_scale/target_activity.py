"""TP's target path at initialisation, driven by the labels alone (a diagnostic, not a test).

For each net (the ``fsdd`` preset with 10 and 60 classes, and ``40-256-256-60``), one sample
per class is fed its one-hot label c for T = 50 steps through the target path only:
layer 1 receives S c, layer l ≥ 2 receives W_l ã_{l−1}. Prints one line per net: the bound
1/√C of S's uniform init, the rheobase (1 − α) v_th (the smallest constant current that
makes a neuron fire), the fraction of S's entries above it, and per hidden layer the mean
target spikes per unit and step and the fraction of (class, unit) pairs that never fire.

    python bench/tp_s_scale/target_activity.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tpprof.config import make_config
from tpprof.snn import make_learner
from tpprof.snn.neurons import lif_step, lif_zeros

STEPS = 50


def main() -> None:
    torch.set_num_threads(1)
    for net, C in (("fsdd", 10), ("fsdd", 60), ("40-256-256-60", 60)):
        cfg = make_config(net, "tp", batch=C, classes=C, steps=STEPS)  # aux "stored": learner.S holds S
        learner = make_learner(cfg, seed=0)
        c = torch.eye(C)  # (C, C): one sample per class
        S, p, layers = learner.S, learner.lif, learner.net.layers
        states = [lif_zeros((C, *lay.geom.neuron_shape), torch.float32, "cpu") for lay in layers]
        counts = [torch.zeros(C, *lay.geom.neuron_shape) for lay in layers]
        with torch.no_grad():
            for _ in range(STEPS):
                a = c
                for i, lay in enumerate(layers):
                    cur = F.linear(c, S) if i == 0 else lay.current(a, lay.weight_eff())  # (C, *neuron)
                    s, _, states[i] = lif_step(cur, states[i], p)
                    counts[i] += s
                    a, _ = lay.pool(s)
        rheo = (1 - p.alpha) * p.v_th
        per_layer = ", ".join(f"L{i + 1} {float(k.mean()) / STEPS:.4f} (units silent for a class "
                              f"{float((k == 0).float().mean()):.3f})" for i, k in enumerate(counts))
        print(f"{net} C={C} alpha={p.alpha}: S bound {1 / C**0.5:.3f}, rheobase {rheo:.3f}, "
              f"S entries above rheobase {float((S > rheo).float().mean()):.3f}; target spikes/unit/step {per_layer}")


if __name__ == "__main__":
    main()
