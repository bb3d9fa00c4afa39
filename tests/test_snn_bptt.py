"""BPTT oracle: the learner's gradient equals autograd through a plain unrolled reference
written here (own surrogate, explicit matmuls); saved tensors grow with t, TP's do not."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from tpprof.config import NeuronSpec, make_config, parse_net
from tpprof.snn import inventory_bytes, make_learner
from snn_reference import Spike, ws, pool  # noqa: E402  (tests/ is on sys.path under pytest)

torch.set_num_threads(1)  # 2 shared cores: more threads only spin
D = torch.float64
TOL = 1e-9


def reference_bptt(cfg, params, x, y):
    """Unrolled forward over T, cross-entropy of m^T, autograd: {name: gradient}."""
    net, n = cfg.net, cfg.net.neuron
    W = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    B, T = x.shape[:2]
    geo = net.geometry()
    v = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
    s = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
    m = torch.zeros(B, net.readout, dtype=D)
    for t in range(T):
        a = x[:, t]
        for i, lay in enumerate(net.layers):
            w = W[f"layer{i + 1}.W"]
            if lay.kind == "conv":
                cur = F.conv2d(a, ws(w) if lay.weight_std else w, padding=1)
            else:
                cur = a.reshape(B, -1) @ w.t()
            if lay.kind == "recurrent":
                cur = cur + s[i] @ W[f"layer{i + 1}.R"].t()
            if n.order == "code":
                u = n.alpha * v[i] + cur
                s[i] = Spike.apply(u - n.v_th, n.surrogate_k)
                v[i] = u - n.v_th * s[i] if n.reset == "soft" else u * (1 - s[i])
            else:
                u = n.alpha * v[i] + cur - n.v_th * s[i] if n.reset == "soft" else n.alpha * v[i] * (1 - s[i]) + cur
                s[i] = Spike.apply(u - n.v_th, n.surrogate_k)
                v[i] = u
            a = pool(s[i], lay.pool)
        m = m + a.reshape(B, -1) @ W["readout.W"].t()
    loss = F.cross_entropy(m, y)
    grads = torch.autograd.grad(loss, list(W.values()))
    return dict(zip(W, grads)), float(loss.detach())


def _cfg(net, order="code", reset="soft"):
    neuron = NeuronSpec(v_th=0.4, alpha=0.8, beta=0.7, reset=reset, order=order, surrogate_k=2.0)
    return make_config(parse_net(net, neuron), "bptt", batch=5, steps=6, optimizer="sgd", lr=0.05)


def _data(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((5, 6, *cfg.net.input_shape), generator=g) < 0.5).to(D)
    return x, torch.tensor([0, 1, 0, 2, 1])


@pytest.mark.parametrize("net,order,reset", [
    ("6-7-5-3", "code", "soft"), ("6-7r-5r-3", "code", "soft"), ("6-7r-5-3", "paper", "soft"),
    ("6-7r-5-3", "code", "hard"), ("6-7-5r-3", "paper", "hard"),
    ("2x6x6-c3p-c4a2-3", "code", "soft"), ("2x5x5-c3v-6-3", "code", "soft"),
])
def test_bptt_gradient_equals_unrolled_autograd(net: str, order: str, reset: str) -> None:
    cfg = _cfg(net, order, reset)
    x, y = _data(cfg)
    learner = make_learner(cfg, dtype=D)
    init = {k: p.detach().clone() for k, p in learner.named_parameters()}
    out = learner.train_batch(x, y)
    ref, loss = reference_bptt(cfg, init, x, y)
    assert out["loss"] == pytest.approx(loss, abs=1e-12)
    for name, p in learner.named_parameters():
        assert (p.grad - ref[name]).abs().max() <= TOL, name
        assert ref[name].abs().max() > 1e-6, f"{name}: gradient trivially zero"
        assert (p.detach() - (init[name] - 0.05 * ref[name])).abs().max() <= TOL  # one SGD step per batch


def test_bptt_saved_tensors_grow_with_t_and_are_released() -> None:
    cfg = _cfg("6-7r-5-3")
    x, y = _data(cfg)
    learner = make_learner(cfg, dtype=D)
    saved = []
    learner.train_batch(x, y, on_step=lambda t: saved.append(inventory_bytes(learner.memory_inventory())["saved"]))
    assert all(b > a for a, b in zip(saved, saved[1:]))
    assert saved[-1] >= 6 * 5 * (7 + 5) * 8  # at least one (B, H) tensor per layer and step
    assert inventory_bytes(learner.memory_inventory())["saved"] == 0


def test_freeze_hidden_trains_only_the_readout() -> None:
    for rule in ("tp", "tess", "bptt"):
        cfg = _cfg("6-7r-5-3").with_(name=rule, trainable="readout")
        x, y = _data(cfg)
        learner = make_learner(cfg, dtype=D)
        before = {k: p.detach().clone() for k, p in learner.named_parameters()}
        learner.train_batch(x, y)
        for name, p in learner.named_parameters():
            changed = not torch.equal(p.detach(), before[name])
            assert changed == (name == "readout.W"), (rule, name)
