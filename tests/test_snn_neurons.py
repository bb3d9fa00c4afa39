"""LIF step (both orderings, both resets), ArcTan surrogate, net building, explicit backward
pieces (pooling, weight standardisation) against hand values and autograd."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tpprof.config import LayerSpec, NetSpec, NeuronSpec, make_config, parse_net
from tpprof.snn import make_learner
from tpprof.snn.nets import build_net, ws_backward, ws_forward
from tpprof.snn.neurons import (ArcTanSpike, LIFParams, LIFState, lif_step, mul_surrogate_, surrogate_at,
                                 surrogate_grad)

torch.set_num_threads(1)  # 2 shared cores: more threads only spin
D = torch.float64


def _run(p: LIFParams, currents: list[float]) -> list[tuple[float, float, float]]:
    """(s, u, v) per step for one neuron fed the given currents."""
    st = LIFState(torch.zeros(1, dtype=D), torch.zeros(1, dtype=D))
    out = []
    for i in currents:
        s, u, st = lif_step(torch.tensor([i], dtype=D), st, p)
        out.append((float(s), float(u), float(st.v)))
    return out


# Hand derivations, α = 0.5, v_th = 1, currents 0.8, 0.8, 0.2:
# code/soft:  u1 = 0.8 → s 0, v 0.8;  u2 = 0.4 + 0.8 = 1.2 → s 1, v 0.2;  u3 = 0.1 + 0.2 = 0.3 → s 0, v 0.3
# code/hard:  as soft until u2 = 1.2 → s 1, v 0;  u3 = 0 + 0.2 = 0.2 → s 0
# paper/soft: v1 = 0.8 (s 0); v2 = 0.4 + 0.8 − 0 = 1.2 (s 1); v3 = 0.6 + 0.2 − 1·1 = −0.2 (s 0)
# paper/hard: v1 = 0.8; v2 = 1.2 (s 1); v3 = 0.5·1.2·(1 − 1) + 0.2 = 0.2 (s 0)
HAND = {
    ("code", "soft"): [(0, 0.8, 0.8), (1, 1.2, 0.2), (0, 0.3, 0.3)],
    ("code", "hard"): [(0, 0.8, 0.8), (1, 1.2, 0.0), (0, 0.2, 0.2)],
    ("paper", "soft"): [(0, 0.8, 0.8), (1, 1.2, 1.2), (0, -0.2, -0.2)],
    ("paper", "hard"): [(0, 0.8, 0.8), (1, 1.2, 1.2), (0, 0.2, 0.2)],
}


@pytest.mark.parametrize("order,reset", list(HAND))
def test_lif_step_hand_values(order: str, reset: str) -> None:
    got = _run(LIFParams(v_th=1.0, alpha=0.5, reset=reset, order=order), [0.8, 0.8, 0.2])
    for (s, u, v), (hs, hu, hv) in zip(got, HAND[(order, reset)]):
        assert s == hs and u == pytest.approx(hu, abs=1e-12) and v == pytest.approx(hv, abs=1e-12)


def test_lif_step_is_pure() -> None:
    cur = torch.tensor([2.0], dtype=D)
    st = LIFState(torch.tensor([0.5], dtype=D), torch.tensor([1.0], dtype=D))
    for order in ("code", "paper"):
        lif_step(cur, st, LIFParams(order=order))
    assert cur.item() == 2.0 and st.v.item() == 0.5 and st.s.item() == 1.0


def test_threshold_crossing_is_inclusive() -> None:
    s, _, _ = lif_step(torch.tensor([1.0], dtype=D), LIFState(torch.zeros(1, dtype=D), torch.zeros(1, dtype=D)),
                       LIFParams(v_th=1.0, alpha=0.9))
    assert s.item() == 1.0


@pytest.mark.parametrize("k", [1.0, 10.0])
def test_arctan_surrogate(k: float) -> None:
    x = torch.tensor([-0.7, -0.1, 0.0, 0.3, 2.0], dtype=D, requires_grad=True)
    s = ArcTanSpike.apply(x, k)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    (g,) = torch.autograd.grad(s.sum(), x)
    want = [k / (1 + (math.pi * v) ** 2) for v in x.tolist()]
    assert g.tolist() == pytest.approx(want, rel=1e-12)
    assert surrogate_grad(x.detach(), k).tolist() == pytest.approx(want, rel=1e-12)
    assert surrogate_at(x.detach() + 0.5, 0.5, k).tolist() == pytest.approx(want, rel=1e-12)
    # δ = ∂E/∂s ⊙ Θ′ with ∂E/∂s ≠ 1: in place (mul_surrogate_) and through the autograd Function
    d = torch.tensor([0.3, -2.0, 1.5, 0.0, -0.25], dtype=D)
    prod = [a * b for a, b in zip(d.tolist(), want)]
    buf = d.clone()
    assert mul_surrogate_(buf, x.detach() + 0.5, 0.5, k) is buf and buf.tolist() == pytest.approx(prod, rel=1e-12)
    (g,) = torch.autograd.grad(ArcTanSpike.apply(x, k), x, grad_outputs=d)
    assert g.tolist() == pytest.approx(prod, rel=1e-12)


def test_lif_gradient_flows_through_surrogate_at_pre_reset_potential() -> None:
    cur = torch.tensor([1.3], dtype=D, requires_grad=True)
    st = LIFState(torch.tensor([0.2], dtype=D), torch.zeros(1, dtype=D))
    s, u, _ = lif_step(cur, st, LIFParams(v_th=1.0, alpha=0.5, k=2.0))
    (g,) = torch.autograd.grad(s.sum(), cur)
    assert u.item() == pytest.approx(1.4)
    assert g.item() == pytest.approx(2.0 / (1 + (math.pi * 0.4) ** 2))


@pytest.mark.parametrize("net", ["700-450-20", "700-450r-20", "40-16r-12-10", "2x8x8-c4p-c6v-c5a2-7",
                                 "vgg9:2x32x32-11"])
def test_parameter_counts_and_shapes_match_the_config(net: str) -> None:
    spec = parse_net(net)
    built = build_net(spec, seed=0)
    assert built.n_params() == spec.n_params()
    for layer, g in zip(built.layers, spec.geometry()):
        assert layer.W.numel() == g.n_weights
        assert (layer.R.numel() if layer.R is not None else 0) == g.n_recurrent


@pytest.mark.parametrize("rule", ["tp", "tess", "bptt"])
def test_learner_parameter_count_equals_config(rule: str) -> None:
    cfg = make_config("2x6x6-c3p-c4a2-9r-5", rule, batch=4, steps=3)
    learner = make_learner(cfg, dtype=D)
    assert learner.n_params() == cfg.net.n_params() == sum(p.numel() for _, p in learner.named_parameters())
    x = torch.rand(3, 2, 2, 6, 6, dtype=D)
    assert [tr.shape[1] for tr in learner.layer_traces(x)] == [g.n_out for g in cfg.net.geometry()]


def test_init_distributions() -> None:
    spec = NetSpec((400,), (LayerSpec("recurrent", 300),), 50)
    net = build_net(spec, seed=3, dtype=D)
    w, r, wo = net.layers[0].W, net.layers[0].R, net.W_out
    assert w.abs().max() <= 1 / math.sqrt(400) and w.abs().max() > 0.95 / math.sqrt(400)
    assert r.abs().max() <= 1 / math.sqrt(300) and wo.abs().max() <= 1 / math.sqrt(300)
    conv = build_net(parse_net("16x8x8-c256-3"), seed=1, dtype=D).layers[0].W  # fan_in 144
    assert conv.std().item() == pytest.approx(math.sqrt(2 / 144), rel=0.05)
    again = build_net(spec, seed=3, dtype=torch.float32)
    assert torch.allclose(again.layers[0].W.double(), w, atol=1e-7)  # same seed, same net across dtypes


def test_weight_standardisation_forward_and_backward() -> None:
    torch.manual_seed(0)
    w = torch.randn(4, 3, 3, 3, dtype=D, requires_grad=True)
    eff = ws_forward(w)
    flat = eff.detach().reshape(4, -1)
    # per output channel: zero mean, Σ Ŵ² = 1.8² · Σd² / (Σd² + eps) ≈ 1.8²
    assert flat.mean(1).abs().max() < 1e-12
    assert (flat**2).sum(1).tolist() == pytest.approx([1.8**2] * 4, rel=1e-6)
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    var = w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
    ref = 1.8 * (w - mean) / torch.sqrt(var * 27 + 1e-5)
    assert torch.allclose(eff, ref, atol=1e-12)
    g = torch.randn_like(w)
    (auto,) = torch.autograd.grad((ref * g).sum(), w)
    assert (ws_backward(w.detach(), g) - auto).abs().max() < 1e-10


@pytest.mark.parametrize("pool,hw", [("max2", 6), ("max2", 5), ("avg2", 6), ("avg2", 5), ("adapt2", 6),
                                     ("adapt2", 5), ("none", 4)])
def test_pool_backward_equals_autograd(pool: str, hw: int) -> None:
    spec = NetSpec((2, hw, hw), (LayerSpec("conv", 3, pool=pool),), 4)
    layer = build_net(spec, dtype=D).layers[0]
    torch.manual_seed(1)
    s = (torch.rand(2, 3, hw, hw, dtype=D) < 0.4).to(D).requires_grad_()  # binary: ties in max-pool
    o, idx = layer.pool(s)
    assert tuple(o.shape[1:]) == layer.geom.out_shape
    g = torch.randn_like(o)
    (auto,) = torch.autograd.grad((o * g).sum(), s)
    assert (layer.pool_backward(g, s.detach(), idx) - auto).abs().max() < 1e-12


def test_conv_weight_grad_through_standardisation_equals_autograd() -> None:
    spec = NetSpec((2, 5, 5), (LayerSpec("conv", 3),), 4)
    layer = build_net(spec, dtype=D).layers[0]
    torch.manual_seed(2)
    a = torch.rand(3, 2, 5, 5, dtype=D)
    delta = torch.randn(3, 3, 5, 5, dtype=D)
    w = layer.W.detach().clone().requires_grad_()
    (auto,) = torch.autograd.grad((F.conv2d(a, ws_forward(w), padding=1) * delta).sum(), w)
    buf = torch.zeros_like(w)
    layer.add_weight_grad(buf, [(a, delta)])
    assert (buf - auto).abs().max() < 1e-10


def test_neuron_spec_feeds_lif_params() -> None:
    p = LIFParams.from_spec(NeuronSpec(v_th=0.5, alpha=0.85, beta=0.85, reset="hard", order="paper", surrogate_k=10))
    assert p == LIFParams(0.5, 0.85, "hard", "paper", 10.0)
