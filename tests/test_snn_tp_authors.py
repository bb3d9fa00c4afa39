"""TP ``flavour="authors"``: the learner equals a reference written from the authors' code
(lollopes/traces_propagation; see docs/tp_authors.md for file and function of each item):

* D1 (models/tp_mlp.py TP_MLP._build_network / update): the layer-1 target path is its own LIF
  layer with a fixed random recurrent matrix R̃_1; R_1 gets only the input-path term.
* +1e-9 (TP_MLP.loss, TP_CNN.loss): y = softmax(−‖ε̃_b − ε̃_b′ + 1e-9‖).
* D2 (models/tp_cnn.py target_propagator, neuron_layers.py Norm._maybe_ws): S enters as 1.8·WS(S).
* D3 (LILayer.forward, TP_CNN.update): readout forward with 1.8·WS(W_out), delta rule on W_out.
* D4 (LIFLayerCNN_PROP built without vth): the layer-1 target path's threshold is 1.0.
* D5 (gsc/fine_tune_gsc.py passes l_rst_type="Soft"; LIFLayer checks == "soft"): hard reset.

The reference is per-layer autograd of each E_l^t with inputs and past state detached, SGD
per step, float64 (as tests/test_snn_tp.py's reference for the paper's flavour).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tpprof.config import NeuronSpec, make_config, parse_net
from tpprof.snn import make_learner
from snn_reference import ws, pool  # noqa: E402
from test_snn_tp import _lif  # noqa: E402

torch.set_num_threads(1)
D = torch.float64
TOL = 1e-6
SHIFT = 1e-9


def ws2(w: torch.Tensor) -> torch.Tensor:
    """1.8·WS of a 2-D weight (rows over the fan-in), as the authors' Norm._ws for dim 2."""
    mean = w.mean(dim=1, keepdim=True)
    var = w.var(dim=1, keepdim=True, unbiased=False)
    return 1.8 * (w - mean) / torch.sqrt(var * w.shape[1] + 1e-5)


def _dist(a: torch.Tensor) -> torch.Tensor:
    """The authors' ‖a_b − a_b′ + 1e-9‖ (spatial: per position over channels, mean over positions)."""
    if a.dim() == 4:
        t0 = a.flatten(2).permute(2, 0, 1)  # (P, B, C)
        return ((t0.unsqueeze(2) - t0.unsqueeze(1) + SHIFT) ** 2).sum(-1).sqrt().mean(0)
    a = a.reshape(a.shape[0], -1)
    return ((a.unsqueeze(1) - a.unsqueeze(0) + SHIFT) ** 2).sum(-1).sqrt()


def reference_authors(cfg, params, S, R_t1, x, y, lr):
    """The authors' TP (D1–D4 and the shifted distance), per-step grads {name: [T]}."""
    net, n = cfg.net, cfg.net.neuron
    cnn = net.layers[0].kind == "conv"
    n_t1 = dataclasses.replace(n, v_th=1.0) if cnn else n  # D4
    W = {k: v.detach().clone() for k, v in params.items()}
    B, T = x.shape[:2]
    C = net.readout
    c = F.one_hot(y, C).to(D)
    geo = net.geometry()
    z = lambda shape: torch.zeros((B, *shape), dtype=D)  # noqa: E731
    v, s, vt, st = ([z(g.neuron_shape) for g in geo] for _ in range(4))
    eps, epst = ([z(g.out_shape) for g in geo] for _ in range(2))
    eps0t, m = z((C,)), z((C,))
    out = {k: [] for k in W}
    for t in range(T):
        eps0t = n.beta * eps0t + c
        a, at, prev = x[:, t], c, eps0t
        grads = {}
        for i, (lay, g) in enumerate(zip(net.layers, geo)):
            name = f"layer{i + 1}"
            Wl = W[name + ".W"].clone().requires_grad_()
            Rl = W[name + ".R"].clone().requires_grad_() if lay.kind == "recurrent" else None
            Sv = W["S"].clone().requires_grad_() if i == 0 and "S" in W else None
            if lay.kind == "conv":
                weff = ws(Wl) if lay.weight_std else Wl
                cur = F.conv2d(a, weff, padding=lay.kernel // 2)
                cur_t = None if i == 0 else F.conv2d(at, weff, padding=lay.kernel // 2)
            else:
                cur = a.reshape(B, -1) @ Wl.t()
                cur_t = None if i == 0 else at.reshape(B, -1) @ Wl.t()
            if i == 0:
                s_mat = S if Sv is None else Sv
                s_mat = ws2(s_mat) if cnn else s_mat  # D2
                cur_t = (c @ s_mat.t()).reshape(B, *g.neuron_shape)
            if Rl is not None:
                cur = cur + s[i] @ Rl.t()
                cur_t = cur_t + st[i] @ (R_t1 if i == 0 else Rl).t()  # D1: the target path's own R̃_1
            s_new, v[i] = _lif(cur, v[i], s[i], n)
            st_new, vt[i] = _lif(cur_t, vt[i], st[i], n_t1 if i == 0 else n)
            o, ot = pool(s_new, lay.pool), pool(st_new, lay.pool)
            e, et = n.beta * eps[i] + o, n.beta * epst[i] + ot
            P = e[0, 0].numel() if e.dim() == 4 else 1
            zz = e.reshape(B, -1) @ et.reshape(B, -1).t() / P
            yy = torch.softmax(-_dist(prev), dim=1)
            E = -(yy * torch.log_softmax(zz, dim=1)).sum() / B
            wrt = [Wl] + ([Rl] if Rl is not None else []) + ([Sv] if Sv is not None else [])
            gs = torch.autograd.grad(E, wrt, allow_unused=True)
            grads[name + ".W"] = gs[0]
            if Rl is not None:
                grads[name + ".R"] = gs[1]
            if Sv is not None:
                grads["S"] = gs[-1]
            v[i], vt[i] = v[i].detach(), vt[i].detach()
            s[i], st[i] = s_new.detach(), st_new.detach()
            eps[i], epst[i] = e.detach(), et.detach()
            a, at, prev = o.detach(), ot.detach(), epst[i]
        w_out = ws2(W["readout.W"]) if cnn else W["readout.W"]  # D3: forward through 1.8·WS(W_out)
        m = m + a.reshape(B, -1) @ w_out.t()
        grads["readout.W"] = (torch.softmax(m, 1) - c).t() @ eps[-1].reshape(B, -1) / B  # on the raw W_out
        for k, gk in grads.items():
            out[k].append(gk)
            W[k] = W[k] - lr * gk
    return out


def _cfg(net: str, v_th: float = 0.4, **rule):
    neuron = NeuronSpec(v_th=v_th, alpha=0.8, beta=0.7, reset="soft", order="code", surrogate_k=1.0)
    return make_config(parse_net(net, neuron), "tp", batch=5, steps=6, optimizer="sgd", lr=0.05,
                       flavour="authors", **rule)


def _data(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((5, 6, *cfg.net.input_shape), generator=g) < 0.5).to(D)
    return x, torch.tensor([0, 1, 0, 2, 1])


def _run(cfg, x, y):
    lr = make_learner(cfg, dtype=D, seed=0)
    init = {k: p.detach().clone() for k, p in lr.named_parameters()}
    S = lr.S.detach().clone()
    R_t1 = None if lr.R_t1 is None else lr.R_t1.clone()
    grads = {k: [] for k in init}

    def on_step(t):
        for k, p in lr.named_parameters():
            grads[k].append(p.grad.detach().clone())

    lr.train_batch(x, y, on_step=on_step)
    return init, S, R_t1, grads


CASES = {
    "D1 recurrent": ("6-7r-5r-3", {}),
    "D1 recurrent, train_s": ("6-7r-5r-3", {"train_s": True}),
    "dense (+1e-9)": ("6-7-5-3", {}),
    "D2-D4 conv": ("2x6x6-c3-c4a2-3", {}),
    "D2-D4 conv, train_s": ("2x6x6-c3-c4a2-3", {"train_s": True}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_authors_flavour_equals_reference(case):
    net, rule = CASES[case]
    cfg = _cfg(net, **rule)
    x, y = _data(cfg)
    init, S, R_t1, grads = _run(cfg, x, y)
    ref = reference_authors(cfg, init, S, R_t1, x, y, lr=0.05)
    for name in ref:
        for t in range(cfg.workload.steps):
            diff = (grads[name][t] - ref[name][t]).abs().max().item()
            assert diff <= TOL, (name, t, diff)
        assert sum(g.abs().sum().item() for g in ref[name]) > 1e-4, f"{name}: trivially zero"


@pytest.mark.parametrize("net,moved", [("6-7r-5r-3", "layer1.R"), ("2x6x6-c3-c4a2-3", "layer1.W")])
def test_authors_flavour_differs_from_paper(net, moved):
    """The differences are real: the paper flavour's updates of these nets differ."""
    cfg = _cfg(net)
    x, y = _data(cfg)
    _, _, _, g_a = _run(cfg, x, y)
    _, _, _, g_p = _run(cfg.with_(flavour="paper"), x, y)
    gap = max((a - b).abs().max().item() for a, b in zip(g_a[moved], g_p[moved]))
    assert gap > 1e-4


def test_authors_r_target_is_fixed_aux():
    cfg = _cfg("6-7r-5r-3")
    lr = make_learner(cfg, dtype=D, seed=0)
    names = {n: c for n, c, _ in lr.memory_inventory()}
    assert names["R_target1"] == "aux"
    assert all(n != "R_target1" for n, _ in lr.named_parameters())  # never trained


def test_d5_gsc_hard_reset():
    """The authors' gsc fine-tuning runs with a hard reset ('Soft' fails their == 'soft' check)."""
    cfg = make_config("gsc", "tp", batch=2, steps=2, flavour="authors")
    assert make_learner(cfg).lif.reset == "hard"
    assert make_learner(cfg.with_(flavour="paper")).lif.reset == cfg.net.neuron.reset


@pytest.mark.parametrize("net", ["12-8r-6r-3", "12-8-6-3"])
def test_authors_inventory_equals_analytic(net):
    """Persistent bytes (R̃_1 as aux) equal the analytic model's, category by category."""
    from tpprof.analytic import estimate
    from tpprof.snn import inventory_bytes

    cfg = make_config(net, "tp", batch=4, steps=3, flavour="authors")
    lr = make_learner(cfg, dtype=torch.float32, seed=0)
    x = (torch.rand((4, 3, 12), generator=torch.Generator().manual_seed(0)) < 0.3).float()
    lr.train_batch(x, torch.tensor([0, 1, 0, 2]))
    held = inventory_bytes(lr.memory_inventory())
    bd = estimate(cfg, "full")
    for cat in ("weights", "neuron_state", "traces", "aux"):
        want = sum(t.bytes for t in bd.terms if t.persistent and t.category == cat)
        assert held.get(cat, 0) == want, cat
