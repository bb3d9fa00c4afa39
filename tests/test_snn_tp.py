"""TP oracle: the closed-form Eq. 18 updates equal per-layer autograd of E_l^t with inputs and
past state detached (float64, tiny random nets), for dense, recurrent and conv layers; both
terms are present for l ≥ 2; no gradient leaks to layer l−1; held memory does not grow with t."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from tpprof.config import NeuronSpec, make_config, parse_net
from tpprof.snn import inventory_bytes, make_learner
from snn_reference import Spike, ws, pool  # noqa: E402  (tests/ is on sys.path under pytest)

torch.set_num_threads(1)  # 2 shared cores: more threads only spin
D = torch.float64
TOL = 1e-6


def _dist(a):
    """Exact pairwise distances (B, B); spatial traces: per position over channels, averaged."""
    if a.dim() == 4:
        pos = a.flatten(2)  # (B, C, P)
        return ((pos[:, None] - pos[None]) ** 2).sum(2).sqrt().mean(-1)
    a = a.reshape(a.shape[0], -1)
    return ((a[:, None] - a[None]) ** 2).sum(-1).sqrt()


def _lif(cur, v, s_prev, n):
    """Returns (s, v_new) with autograd through the surrogate at the pre-reset potential."""
    if n.order == "code":
        u = n.alpha * v + cur
        s = Spike.apply(u - n.v_th, n.surrogate_k)
        v_new = u - n.v_th * s if n.reset == "soft" else u * (1 - s)
    else:
        u = n.alpha * v + cur - n.v_th * s_prev if n.reset == "soft" else n.alpha * v * (1 - s_prev) + cur
        s = Spike.apply(u - n.v_th, n.surrogate_k)
        v_new = u
    return s, v_new


def reference_tp(cfg, params, S, x, y, lr, target_term=True):
    """Plain TP with autograd per layer and step, SGD. Returns per-step grads {name: [T tensors]}.

    ``target_term=False`` detaches W_l in the target path (the first term of Eq. 18 only).
    """
    net, n = cfg.net, cfg.net.neuron
    W = {k: v.detach().clone() for k, v in params.items()}
    B, T = x.shape[:2]
    C = net.readout
    c = F.one_hot(y, C).to(D)
    geo = net.geometry()
    z = lambda shape: torch.zeros((B, *shape), dtype=D)  # noqa: E731
    v = [z(g.neuron_shape) for g in geo]
    s = [z(g.neuron_shape) for g in geo]
    vt = [z(g.neuron_shape) for g in geo]
    st = [z(g.neuron_shape) for g in geo]
    eps = [z(g.out_shape) for g in geo]
    epst = [z(g.out_shape) for g in geo]
    eps0t = z((C,))
    m = z((C,))
    out = {k: [] for k in W}
    for t in range(T):
        eps0t = n.beta * eps0t + c
        a, at, prev = x[:, t], c, eps0t
        grads = {}
        for i, (lay, g) in enumerate(zip(net.layers, geo)):
            name = f"layer{i + 1}"
            Wl = W[name + ".W"].clone().requires_grad_()
            Rl = W[name + ".R"].clone().requires_grad_() if lay.kind == "recurrent" else None
            if lay.kind == "conv":
                weff = ws(Wl) if lay.weight_std else Wl
                weff_t = weff if target_term else weff.detach()
                cur = F.conv2d(a, weff, padding=lay.kernel // 2)
                cur_t = None if i == 0 else F.conv2d(at, weff_t, padding=lay.kernel // 2)
            else:
                cur = a.reshape(B, -1) @ Wl.t()
                cur_t = None if i == 0 else at.reshape(B, -1) @ (Wl if target_term else Wl.detach()).t()
            Sv = W["S"].clone().requires_grad_() if i == 0 and "S" in W else None  # trained S (train_s)
            if i == 0:
                cur_t = (c @ (S if Sv is None else Sv).t()).reshape(B, *g.neuron_shape)
            if Rl is not None:
                cur = cur + s[i] @ Rl.t()
                cur_t = cur_t + st[i] @ Rl.t()
            s_new, v[i] = _lif(cur, v[i], s[i], n)
            st_new, vt[i] = _lif(cur_t, vt[i], st[i], n)
            o, ot = pool(s_new, lay.pool), pool(st_new, lay.pool)
            e, et = n.beta * eps[i] + o, n.beta * epst[i] + ot
            P = e[0, 0].numel() if e.dim() == 4 else 1
            zz = e.reshape(B, -1) @ et.reshape(B, -1).t() / P
            yy = torch.softmax(-_dist(prev), dim=1)
            E = -(yy * torch.log_softmax(zz, dim=1)).sum() / B
            wrt = [Wl] + ([Rl] if Rl is not None else []) + ([Sv] if Sv is not None else [])
            gs = torch.autograd.grad(E, wrt)
            grads[name + ".W"] = gs[0]
            if Rl is not None:
                grads[name + ".R"] = gs[1]
            if Sv is not None:
                grads["S"] = gs[-1]
            # detach everything that carries to the next layer / step
            v[i], vt[i] = v[i].detach(), vt[i].detach()
            s[i], st[i] = s_new.detach(), st_new.detach()
            eps[i], epst[i] = e.detach(), et.detach()
            a, at, prev = o.detach(), ot.detach(), epst[i]
        m = m + a.reshape(B, -1) @ W["readout.W"].t()
        grads["readout.W"] = (torch.softmax(m, 1) - c).t() @ eps[-1].reshape(B, -1) / B
        for k, gk in grads.items():
            out[k].append(gk)
            W[k] = W[k] - lr * gk
    return out, W


def _spiky_cfg(net: str, order="code", reset="soft", v_th=0.4, **rule):
    neuron = NeuronSpec(v_th=v_th, alpha=0.8, beta=0.7, reset=reset, order=order, surrogate_k=1.0)
    spec = parse_net(net, neuron)
    return make_config(spec, "tp", batch=5, steps=6, optimizer="sgd", lr=0.05, **rule)


def _data(cfg, seed=0, density=0.5):
    g = torch.Generator().manual_seed(seed)
    B, T = cfg.workload.batch, cfg.workload.steps
    x = (torch.rand((B, T, *cfg.net.input_shape), generator=g) < density).to(D)
    y = torch.tensor([0, 1, 0, 2, 1])[:B]  # classes repeat within the batch
    return x, y


def _run_learner(cfg, x, y, seed=0):
    learner = make_learner(cfg, dtype=D, seed=seed)
    init = {k: p.detach().clone() for k, p in learner.named_parameters()}
    S = learner.S.detach().clone()
    grads = {k: [] for k in init}
    spikes = []

    def on_step(t):
        for k, p in learner.named_parameters():
            grads[k].append(p.grad.detach().clone())
        spikes.append([float(st.s.sum()) for st in learner._state.inp])

    learner.train_batch(x, y, on_step=on_step)
    return learner, init, S, grads, spikes


NETS = {
    "dense": "6-7-5-3",
    "recurrent": "6-7r-5r-3",
    "conv": "2x6x6-c3p-c4a2-3",
    "conv-avg-dense": "2x5x5-c3v-6-3",
}


@pytest.mark.parametrize("kind", list(NETS))
def test_tp_update_equals_per_layer_autograd(kind: str) -> None:
    cfg = _spiky_cfg(NETS[kind])
    x, y = _data(cfg)
    learner, init, S, grads, spikes = _run_learner(cfg, x, y)
    assert all(sum(sp[i] for sp in spikes) > 0 for i in range(len(spikes[0]))), "every layer must spike"
    ref, ref_final = reference_tp(cfg, init, S, x, y, lr=0.05)
    for name in ref:
        for t in range(cfg.workload.steps):
            diff = (grads[name][t] - ref[name][t]).abs().max().item()
            assert diff <= TOL, (name, t, diff)
        assert sum(g.abs().sum().item() for g in ref[name]) > 1e-3, f"{name}: gradient is trivially zero"
    for name, p in learner.named_parameters():
        assert (p.detach() - ref_final[name]).abs().max() <= TOL


@pytest.mark.parametrize("kind", ["dense", "recurrent", "conv"])
def test_target_path_term_is_present_for_deeper_layers(kind: str) -> None:
    cfg = _spiky_cfg(NETS[kind])
    x, y = _data(cfg, seed=1)
    _, init, S, grads, _ = _run_learner(cfg, x, y)
    first_only, _ = reference_tp(cfg, init, S, x, y, lr=0.05, target_term=False)
    full, _ = reference_tp(cfg, init, S, x, y, lr=0.05)
    gap = max((a - b).abs().max().item() for a, b in zip(full["layer2.W"], first_only["layer2.W"]))
    assert gap > 1e-3  # the target-path term of W_2 is not zero ...
    tp_vs_full = max((a - b).abs().max().item() for a, b in zip(grads["layer2.W"], full["layer2.W"]))
    assert tp_vs_full <= TOL  # ... and TP has it
    # layer 1's target path runs through the fixed S: W_1 gets the first term only
    assert max((a - b).abs().max().item() for a, b in zip(full["layer1.W"], first_only["layer1.W"])) == 0.0


@pytest.mark.parametrize("order,reset", [("paper", "soft"), ("code", "hard"), ("paper", "hard")])
def test_tp_oracle_other_neuron_variants(order: str, reset: str) -> None:
    cfg = _spiky_cfg(NETS["recurrent"], order=order, reset=reset)
    x, y = _data(cfg, seed=2)
    _, init, S, grads, _ = _run_learner(cfg, x, y)
    ref, _ = reference_tp(cfg, init, S, x, y, lr=0.05)
    for name in ref:
        assert max((a - b).abs().max().item() for a, b in zip(grads[name], ref[name])) <= TOL, name


def test_no_gradient_reaches_the_previous_layer() -> None:
    """W_1's update is ∂E_1/∂W_1 only: it differs from the gradient of E_1 + E_2 when layer 2's
    inputs are *not* detached (what a leaking implementation would compute)."""
    cfg = _spiky_cfg(NETS["dense"], v_th=0.15)
    x, y = _data(cfg)
    x[:, 0] = 1.0  # a strong first frame: both layers spike at t = 0
    _, init, S, grads, _ = _run_learner(cfg, x, y)
    n = cfg.net.neuron
    B = x.shape[0]
    c = F.one_hot(y, 3).to(D)
    W1 = init["layer1.W"].clone().requires_grad_()
    W2 = init["layer2.W"]
    # step t = 0 only (weights still initial): both layers, graph kept from layer 1 into layer 2
    s1, _ = _lif(x[:, 0] @ W1.t(), torch.zeros(B, 7, dtype=D), torch.zeros(B, 7, dtype=D), n)
    st1, _ = _lif(c @ S.t(), torch.zeros(B, 7, dtype=D), torch.zeros(B, 7, dtype=D), n)
    s2, _ = _lif(s1 @ W2.t(), torch.zeros(B, 5, dtype=D), torch.zeros(B, 5, dtype=D), n)
    st2, _ = _lif(st1 @ W2.t(), torch.zeros(B, 5, dtype=D), torch.zeros(B, 5, dtype=D), n)
    e0 = c  # ε̃_0 at t = 0

    def E(e, et, prev):
        return -(torch.softmax(-_dist(prev), 1) * torch.log_softmax(e @ et.t(), 1)).sum() / B

    (g_local,) = torch.autograd.grad(E(s1, st1, e0), W1, retain_graph=True)
    (g_leak,) = torch.autograd.grad(E(s1, st1, e0) + E(s2, st2, st1), W1)
    assert (grads["layer1.W"][0] - g_local).abs().max() <= TOL
    assert g_local.abs().max() > 1e-3
    assert (g_leak - g_local).abs().max() > 1e-3  # the test would see a leak


def test_held_memory_does_not_grow_with_t_and_no_graph_is_kept() -> None:
    cfg = _spiky_cfg("2x6x6-c3p-5r-3")
    x, y = _data(cfg)
    x = torch.cat([x, x, x], dim=1)  # T = 18
    learner = make_learner(cfg, dtype=D)
    sizes, names = [], []

    def on_step(t):
        inv = learner.memory_inventory()
        sizes.append(sum(v.numel() * v.element_size() for _, _, v in inv))
        names.append(sorted(n for n, _, _ in inv))
        for name, cat, v in inv:
            assert v.grad_fn is None, name
            if cat not in ("weights",):
                assert not v.requires_grad, name

    learner.train_batch(x, y, on_step=on_step)
    assert len(set(sizes)) == 1 and len(set(map(tuple, names))) == 1


def test_inventory_golden_bytes_dense() -> None:
    """700-450-20 at B = 4, fp32, Adam: what TP holds between steps, term by term."""
    cfg = make_config("shd", "tp", batch=4, steps=2)
    learner = make_learner(cfg, dtype=torch.float32)
    learner.train_batch(torch.zeros(4, 2, 700), torch.tensor([0, 1, 2, 3]))
    got = inventory_bytes(learner.memory_inventory())
    n_params = 700 * 450 + 450 * 20  # 324000
    assert got["weights"] == n_params * 4
    assert got["gradients"] == n_params * 4
    assert got["optimizer"] == 2 * n_params * 4 + 2 * 4  # exp_avg, exp_avg_sq + one fp32 step per tensor
    # v, s for both paths (4·B·H) + readout m (B·C)
    assert got["neuron_state"] == (4 * 4 * 450 + 4 * 20) * 4
    # ε, ε̃ (2·B·H); ε̃_0 = κ_t c is a number times the labels, not stored
    assert got["traces"] == 2 * 4 * 450 * 4
    assert got["aux"] == 450 * 20 * 4  # S
    assert got["saved"] == got["loss_buffers"] == got["implementation"] == 0


def test_aux_regenerated_equals_stored_and_holds_no_s() -> None:
    cfg = _spiky_cfg(NETS["dense"])
    x, y = _data(cfg)
    a = make_learner(cfg, dtype=D)
    b = make_learner(cfg.with_(aux="regenerated"), dtype=D)
    a.train_batch(x, y)
    b.train_batch(x, y)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n
    assert inventory_bytes(b.memory_inventory())["aux"] == 0


def test_sequence_cadence_sums_the_step_gradients() -> None:
    cfg = _spiky_cfg(NETS["recurrent"], cadence="sequence")
    x, y = _data(cfg)
    learner, init, S, grads, _ = _run_learner(cfg, x, y)
    # weights fixed during the sequence: the reference with lr = 0 gives the per-step grads
    ref, _ = reference_tp(cfg, init, S, x, y, lr=0.0)
    for name, p in learner.named_parameters():
        total = sum(ref[name])
        assert (grads[name][-1] - total).abs().max() <= TOL
        assert (p.detach() - (init[name] - 0.05 * total)).abs().max() <= TOL


@pytest.mark.parametrize("kind", ["dense", "recurrent"])
def test_train_s_updates_s_by_the_target_term(kind: str) -> None:
    cfg = _spiky_cfg(NETS[kind], train_s=True)
    x, y = _data(cfg)
    learner, init, S, grads, _ = _run_learner(cfg, x, y)
    assert "S" in init and learner.n_params() == cfg.net.n_params() + S.numel()
    ref, ref_final = reference_tp(cfg, init, S, x, y, lr=0.05)  # S's gradient by autograd through S c
    assert sum(g.abs().sum().item() for g in ref["S"]) > 1e-3, "S: gradient is trivially zero"
    for name in ref:
        assert max((a - b).abs().max().item() for a, b in zip(grads[name], ref[name])) <= TOL, name
    for name, p in learner.named_parameters():
        assert (p.detach() - ref_final[name]).abs().max() <= TOL, name


def test_tp_oracle_conv_without_weight_standardisation() -> None:
    from dataclasses import replace

    cfg = _spiky_cfg(NETS["conv"])
    net = replace(cfg.net, layers=tuple(replace(lay, weight_std=False) for lay in cfg.net.layers))
    cfg = replace(cfg, net=net)
    x, y = _data(cfg, seed=3)
    _, init, S, grads, _ = _run_learner(cfg, x, y)
    ref, _ = reference_tp(cfg, init, S, x, y, lr=0.05)
    for name in ref:
        assert max((a - b).abs().max().item() for a, b in zip(grads[name], ref[name])) <= TOL, name


@pytest.mark.parametrize("rule", ["tp", "tess", "bptt"])
def test_set_lr_sets_every_layer_optimiser(rule: str) -> None:
    from tpprof.errors import UserError

    cfg = make_config("12-8-8-3", rule, batch=4, steps=8, lr=1e-4, **({"train_s": True} if rule == "tp" else {}))
    learner = make_learner(cfg, dtype=D)
    learner.set_lr(0.25)
    assert len(learner._optims) == 3  # two hidden layers (S rides with layer 1) and the readout
    assert all(o.lr == 0.25 for o in learner._optims)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(UserError):
            learner.set_lr(bad)
    assert all(o.lr == 0.25 for o in learner._optims)


def test_set_lr_drives_the_update_size() -> None:
    cfg = _spiky_cfg(NETS["dense"], cadence="sequence")  # SGD
    x, y = _data(cfg)
    runs = []
    for lr in (0.1, 0.3):
        learner = make_learner(cfg, dtype=D)
        learner.set_lr(lr)
        w0 = learner.net.W_out.detach().clone()
        learner.train_batch(x, y)
        runs.append((learner.net.W_out.detach() - w0, learner.net.W_out.grad.clone()))
    for (dw, g), lr in zip(runs, (0.1, 0.3)):
        assert g.abs().max() > 0
        assert (dw + lr * g).abs().max() <= TOL  # SGD: ΔW = −lr·grad with the lr just set
