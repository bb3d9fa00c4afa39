"""TESS oracle: the learner's per-step update equals the §10 formula computed independently
(explicit sums over the stored history, autograd for the conv and pooling maps)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tpprof.config import NeuronSpec, make_config, parse_net
from tpprof.snn import inventory_bytes, make_learner
from snn_reference import ws, pool  # noqa: E402  (tests/ is on sys.path under pytest)

torch.set_num_threads(1)  # 2 shared cores: more threads only spin
D = torch.float64
TOL = 1e-9


def _basis(C: int, n: int) -> torch.Tensor:
    """Square-wave rows as the TESS code: sign(sin(f_c j)) / n, f_c = linspace(50, 512, C)."""
    rows = []
    for c in range(C):
        f = 50.0 + (512.0 - 50.0) * c / (C - 1)
        rows.append([math.copysign(1.0, math.sin(f * j)) if math.sin(f * j) != 0 else 0.0 for j in range(n)])
    return torch.tensor(rows, dtype=D) / n


def reference_tess(cfg, params, x, y, lr):
    """Per-step ∂W of TESS from the history (SGD with lr between steps): {name: [T tensors]}."""
    net, n = cfg.net, cfg.net.neuron
    lam_post, lam_pre, a_post, a_pre = cfg.rule.tess_factors
    W = {k: v.detach().clone() for k, v in params.items()}
    B, T = x.shape[:2]
    C = net.readout
    c = F.one_hot(y, C).to(D)
    geo = net.geometry()
    v = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
    s = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
    hist_in = [[] for _ in geo]  # a_{l−1}[t′]
    hist_rec = [[] for _ in geo]  # s_l[t′ − 1]
    hist_psi = [[] for _ in geo]  # Ψ(u_l[t′])
    eps_last = torch.zeros((B, *geo[-1].out_shape), dtype=D)
    m = torch.zeros(B, C, dtype=D)
    out = {k: [] for k in W}
    for t in range(T):
        a = x[:, t]
        grads = {}
        for i, (lay, g) in enumerate(zip(net.layers, geo)):
            name = f"layer{i + 1}"
            Wl = W[name + ".W"]
            weff = ws(Wl) if lay.kind == "conv" and lay.weight_std else Wl
            if lay.kind == "conv":
                cur = F.conv2d(a, weff, padding=lay.kernel // 2)
            else:
                cur = a.reshape(B, -1) @ weff.t()
            s_prev = s[i]
            if lay.kind == "recurrent":
                cur = cur + s_prev @ W[name + ".R"].t()
            u = n.alpha * v[i] + cur  # code ordering, soft reset
            s[i] = (u >= n.v_th).to(D)
            v[i] = u - n.v_th * s[i]
            psi = n.surrogate_k / (1 + (math.pi * (u - n.v_th)) ** 2)
            hist_in[i].append(a)
            hist_rec[i].append(s_prev)
            hist_psi[i].append(psi)
            causal = sum(lam_pre ** (t - tp) * hist_in[i][tp] for tp in range(t + 1))
            causal_rec = sum(lam_pre ** (t - tp) * hist_rec[i][tp] for tp in range(t + 1))
            q = sum(lam_post ** (t - tp) * hist_psi[i][tp] for tp in range(t)) if t > 0 else torch.zeros_like(psi)
            # learning signal m = B_lᵀ (softmax(B_l o) − c) / B, mapped to the neurons by the pooling
            s_var = s[i].clone().requires_grad_()
            o = pool(s_var, lay.pool)
            Bl = _basis(C, o[0].numel())
            sig_out = ((torch.softmax(o.detach().reshape(B, -1) @ Bl.t(), 1) - c) @ Bl / B).reshape(o.shape)
            (sig,) = torch.autograd.grad((o * sig_out).sum(), s_var)
            d_causal, d_nc = a_pre * sig * psi, a_post * sig * q
            if lay.kind == "conv":
                w_var = Wl.clone().requires_grad_()
                we = ws(w_var) if lay.weight_std else w_var
                obj = (d_causal * F.conv2d(causal, we, padding=1)).sum() + (d_nc * F.conv2d(a, we, padding=1)).sum()
                (gW,) = torch.autograd.grad(obj, w_var)
            else:
                gW = d_causal.t() @ causal.reshape(B, -1) + d_nc.t() @ a.reshape(B, -1)
            grads[name + ".W"] = gW
            if lay.kind == "recurrent":
                grads[name + ".R"] = d_causal.t() @ causal_rec + d_nc.t() @ s_prev
            a = o.detach()
        eps_last = n.beta * eps_last + a
        m = m + a.reshape(B, -1) @ W["readout.W"].t()
        grads["readout.W"] = (torch.softmax(m, 1) - c).t() @ eps_last.reshape(B, -1) / B
        for k, gk in grads.items():
            out[k].append(gk)
            W[k] = W[k] - lr * gk
    return out, W


def _cfg(net, factors=(0.3, 0.6, 0.8, 1.1), **rule):
    neuron = NeuronSpec(v_th=0.4, alpha=0.8, beta=0.7, surrogate_k=1.0)
    return make_config(parse_net(net, neuron), "tess", batch=5, steps=6, optimizer="sgd", lr=0.05,
                       tess_factors=factors, **rule)


def _data(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((5, 6, *cfg.net.input_shape), generator=g) < 0.5).to(D)
    return x, torch.tensor([0, 1, 0, 2, 1])


@pytest.mark.parametrize("net", ["6-7-5-3", "6-7r-5r-3", "2x6x6-c3p-c4a2-3", "2x5x5-c3v-6-3"])
@pytest.mark.parametrize("aux", ["stored", "regenerated"])
def test_tess_update_equals_its_formula(net: str, aux: str) -> None:
    _check_against_reference(_cfg(net, aux=aux))


@pytest.mark.parametrize("factors", [(0.2, 0.5, 0.0, 1.0), (0.2, 0.5, 1.0, 0.0)])
def test_tess_with_one_term_switched_off_keeps_no_trace_for_it(factors) -> None:
    cfg = _cfg("6-7r-5-3", factors=factors)
    learner = _check_against_reference(cfg)
    names = {n for n, _, _ in learner.memory_inventory()}
    assert ("layer1.trace_post" in names) == (factors[2] != 0)
    assert ("layer1.trace_in" in names) == ("layer1.trace_rec" in names) == (factors[3] != 0)


def _check_against_reference(cfg):
    x, y = _data(cfg)
    learner = make_learner(cfg, dtype=D)
    init = {k: p.detach().clone() for k, p in learner.named_parameters()}
    grads = {k: [] for k in init}
    spikes = torch.zeros(len(cfg.net.layers))

    def on_step(t):
        for k, p in learner.named_parameters():
            grads[k].append(p.grad.clone())
        spikes.add_(torch.tensor([float(st.s.sum()) for st in learner._state.lif]))

    learner.train_batch(x, y, on_step=on_step)
    assert (spikes > 0).all(), "every layer must spike"
    ref, final = reference_tess(cfg, init, x, y, lr=0.05)
    for name in ref:
        for t in range(6):
            assert (grads[name][t] - ref[name][t]).abs().max() <= TOL, (name, t)
        assert sum(g.abs().sum().item() for g in ref[name]) > 1e-4, f"{name}: trivially zero"
    for name, p in learner.named_parameters():
        assert (p.detach() - final[name]).abs().max() <= TOL
    return learner


def test_square_wave_basis_and_aux_memory() -> None:
    cfg = _cfg("6-7-5-3")
    learner = make_learner(cfg, dtype=D)
    assert torch.allclose(learner.basis[0], _basis(3, 7))
    assert set((learner.basis[0] * 7).unique().tolist()) <= {-1, 0, 1}  # binary (±1, and 0 at j = 0)
    assert inventory_bytes(learner.memory_inventory())["aux"] == (3 * 7 + 3 * 5) * 8
    regen = make_learner(cfg.with_(aux="regenerated"), dtype=D)
    assert inventory_bytes(regen.memory_inventory())["aux"] == 0


def test_tess_inventory_golden_bytes() -> None:
    """40-16r-12-10 at B = 4, fp32, Adam: what TESS holds between steps."""
    cfg = make_config("40-16r-12-10", "tess", batch=4, steps=2)
    learner = make_learner(cfg)
    learner.train_batch(torch.zeros(4, 2, 40), torch.tensor([0, 1, 2, 3]))
    got = inventory_bytes(learner.memory_inventory())
    assert got["neuron_state"] == (2 * 4 * 16 + 2 * 4 * 12 + 4 * 10) * 4  # (v, s) per layer + readout m
    # trace_in (B·n_in) + trace_post (B·H) per layer, trace_rec (B·H_1), ε_L (B·H_2)
    assert got["traces"] == (4 * 40 + 4 * 16 + 4 * 16 + 4 * 16 + 4 * 12 + 4 * 12) * 4
    assert got["aux"] == (10 * 16 + 10 * 12) * 4
