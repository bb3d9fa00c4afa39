"""OTTT oracle: per step, autograd of the one-step graph with the traces, the state and the reset
detached (written here: the weight enters through I = W a + (W − W̄) â − ..., so that its
gradient is δᵀ â while the spatial path sees W a), summed over T (cadence "sequence") and
stepped by SGD every step (cadence "step")."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tpprof.config import NeuronSpec, make_config, parse_net
from tpprof.snn import inventory_bytes, make_learner
from snn_reference import Spike, pool, ws  # noqa: E402  (tests/ is on sys.path under pytest)

torch.set_num_threads(1)
D = torch.float64
TOL = 1e-10
NETS = [("6-7-5-3", "code", "soft"), ("6-7r-5r-3", "code", "soft"), ("6-7r-5-3", "paper", "hard"),
        ("2x6x6-c3p-c4a2-3", "code", "soft"), ("2x5x5-c3v-6-3", "code", "soft")]


def _cfg(net: str, order: str, reset: str, cadence: str):
    neuron = NeuronSpec(v_th=0.4, alpha=0.8, beta=0.7, reset=reset, order=order, surrogate_k=2.0)
    return make_config(parse_net(net, neuron), "ottt", batch=5, steps=6, optimizer="sgd", lr=0.05, cadence=cadence)


def _data(cfg):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand((5, 6, *cfg.net.input_shape), generator=g) < 0.5).to(D)
    return x, torch.tensor([0, 1, 0, 2, 1])


def _through(pre_now: torch.Tensor, pre_trace: torch.Tensor, w: torch.Tensor, op) -> torch.Tensor:
    """op(pre_now, w) in value and spatial gradient; ∂/∂w = that of op(pre_trace, w)."""
    return op(pre_now, w.detach()) + op(pre_trace, w) - op(pre_trace, w).detach()


def reference_ottt(cfg, params, x, y, step_lr: float | None):
    """{name: Σ_t ∂L_t/∂W} (step_lr None), or the parameters after SGD every step."""
    net, n = cfg.net, cfg.net.neuron
    W = {k: v.detach().clone() for k, v in params.items()}
    B, T = x.shape[:2]
    geo = net.geometry()
    v = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
    s = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
    tr = [torch.zeros((B, *g.in_shape), dtype=D) for g in geo]
    rtr = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
    eps = torch.zeros((B, geo[-1].n_out), dtype=D)
    m = torch.zeros(B, net.readout, dtype=D)
    total = {k: torch.zeros_like(p) for k, p in W.items()}
    for t in range(T):
        P = {k: p.clone().requires_grad_() for k, p in W.items()}
        a = x[:, t]
        for i, lay in enumerate(net.layers):
            tr[i] = (n.alpha * tr[i] + a).detach()  # traces are detached
            w = P[f"layer{i + 1}.W"]
            if lay.kind == "conv":
                weff = ws(w) if lay.weight_std else w
                cur = _through(a, tr[i], weff, lambda q, ww: F.conv2d(q, ww, padding=1))
            else:
                cur = _through(a.reshape(B, -1), tr[i].reshape(B, -1), w, lambda q, ww: q @ ww.t())
            if lay.kind == "recurrent":
                rtr[i] = (n.alpha * rtr[i] + s[i]).detach()
                cur = cur + _through(s[i], rtr[i], P[f"layer{i + 1}.R"], lambda q, ww: q @ ww.t())
            vp, sp = v[i].detach(), s[i].detach()
            if n.order == "code":
                u = n.alpha * vp + cur
                s[i] = Spike.apply(u - n.v_th, n.surrogate_k)
                v[i] = (u - n.v_th * s[i] if n.reset == "soft" else u * (1 - s[i])).detach()
            else:
                u = n.alpha * vp + cur - n.v_th * sp if n.reset == "soft" else n.alpha * vp * (1 - sp) + cur
                s[i] = Spike.apply(u - n.v_th, n.surrogate_k)
                v[i] = u.detach()
            a = pool(s[i], lay.pool)
        eps = eps + a.reshape(B, -1).detach()
        m = m.detach() + _through(a.reshape(B, -1), eps, P["readout.W"], lambda q, ww: q @ ww.t())
        grads = torch.autograd.grad(F.cross_entropy(m, y), list(P.values()))
        s = [q.detach() for q in s]
        for k, g in zip(P, grads):
            total[k] += g
            if step_lr is not None:
                W[k] = W[k] - step_lr * g
    return W if step_lr is not None else total


@pytest.mark.parametrize("net,order,reset", NETS)
def test_ottt_gradient_equals_one_step_autograd(net: str, order: str, reset: str) -> None:
    cfg = _cfg(net, order, reset, "sequence")
    x, y = _data(cfg)
    learner = make_learner(cfg, dtype=D)
    init = {k: p.detach().clone() for k, p in learner.named_parameters()}
    steps: list[int] = []
    learner.train_batch(x, y, on_step=steps.append)
    assert steps == list(range(6))
    ref = reference_ottt(cfg, init, x, y, None)
    for name, p in learner.named_parameters():
        assert (p.grad - ref[name]).abs().max() <= TOL, name
        assert ref[name].abs().max() > 1e-6, f"{name}: gradient trivially zero"


@pytest.mark.parametrize("net,order,reset", NETS[:2] + NETS[3:4])
def test_ottt_online_updates_equal_reference(net: str, order: str, reset: str) -> None:
    cfg = _cfg(net, order, reset, "step")
    x, y = _data(cfg)
    learner = make_learner(cfg, dtype=D)
    init = {k: p.detach().clone() for k, p in learner.named_parameters()}
    learner.train_batch(x, y)
    ref = reference_ottt(cfg, init, x, y, 0.05)
    for name, p in learner.named_parameters():
        assert (p.detach() - ref[name]).abs().max() <= TOL, name


def test_ottt_memory_is_flat_in_t_and_freeze_trains_only_readout() -> None:
    sizes = []
    for T in (4, 12):
        cfg = make_config("6-7r-5-3", "ottt", batch=5, steps=T)
        learner = make_learner(cfg)
        x = (torch.rand(5, T, 6) < 0.5).float()
        got = []
        learner.train_batch(x, torch.tensor([0, 1, 0, 2, 1]), on_step=lambda t: got.append(
            sum(inventory_bytes(learner.memory_inventory()).values())))
        assert len(set(got)) == 1
        sizes.append(got[0])
    assert sizes[0] == sizes[1]
    cfg = _cfg("6-7r-5-3", "code", "soft", "step").with_(trainable="readout")
    learner = make_learner(cfg, dtype=D)
    before = {k: p.detach().clone() for k, p in learner.named_parameters()}
    learner.train_batch(*_data(cfg))
    for name, p in learner.named_parameters():
        assert (not torch.equal(p.detach(), before[name])) == (name == "readout.W"), name
