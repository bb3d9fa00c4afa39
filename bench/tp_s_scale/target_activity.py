"""Target-path activity at init, per class: layer-1 and layer-2 firing of the label-driven path."""
import torch; torch.set_num_threads(1)
from tpprof.config import make_config
from tpprof.snn import make_learner
from tpprof.snn.neurons import lif_step
import torch.nn.functional as F
for net, C in (("fsdd", 10), ("fsdd", 60), ("40-256-256-60", 60)):
    cfg = make_config(net, "tp", batch=C, classes=C, steps=50)
    L = make_learner(cfg, seed=0)
    c = torch.eye(C)  # one sample per class
    S = L._s_matrix(); p = L.lif
    st = [L._lif_zeros(C, lay.geom.neuron_shape) for lay in L.net.layers]
    cnt = [torch.zeros(C, 256), torch.zeros(C, 256)]
    for t in range(50):
        a = c
        for i, lay in enumerate(L.net.layers):
            cur = F.linear(c, S) if i == 0 else lay.current(a, lay.weight_eff())
            s, u, st[i] = lif_step(cur, st[i], p)
            cnt[i] += s; a = s
    rheo = (1 - p.alpha) * p.v_th
    print(f"{net} C={C} alpha={p.alpha}: S bound {1/C**0.5:.3f}, rheobase {rheo:.3f}, "
          f"S entries above rheobase {(S > rheo).float().mean():.3f}; target spikes/unit/step "
          + ", ".join(f"L{i+1} {float(k.mean())/50:.4f} (units silent for a class {float((k == 0).float().mean()):.3f})" for i, k in enumerate(cnt)))
