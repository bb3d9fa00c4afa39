"""TESS as its authors' code (mapolinario94/TESS @07b311d): flavour "authors" and the rule
tess-authors-schedule against a reference written from the equations of their code
(docs/tess_authors.md), not by calling the learner.

The reference gets every gradient from autograd: each spike is a straight-through sum whose
derivatives are the authors' hand-written backward (STDPConv2dGrad / STDPLinearGrad):

  s̃ = s + Ψ·(I(a; Ŵ̸) − ·̸) + α_pre Ψ·(I(x̄; Ŵ) − ·̸) + α_post e^{t−1}·(I(a̸; Ŵ) − ·̸)

(·̸ = detached): its value is s, ∂s̃/∂a = Ψ ∂I/∂a (spatial back-prop), ∂s̃/∂Ŵ the two trace
terms. Ŵ = γ (W − μ)/sqrt(torch.var(W) · fan_in + 1e-4) by autograd, the local loss is
F.cross_entropy(adaptive_avg_pool(pool(s̃)) B_lᵀ, y), the readout's F.cross_entropy(W_out o + b, y),
and one torch.optim.Adam step per mini-batch on the summed gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tpprof.config import ConfigError, RuleSpec, make_config
from tpprof.snn import inventory_bytes, make_learner

torch.set_num_threads(1)
D = torch.float64
TOL = 1e-5


def _basis(C: int, n: int) -> torch.Tensor:
    """generate_frequency_matrix(C, n, max_freq=512) → sign → / n, in float32 as their code."""
    f = torch.linspace(50, 512, C).unsqueeze(1)
    j = torch.arange(n).float().unsqueeze(0)
    return (torch.sign(torch.sin(f * j)) / n).to(D)


def _block_pool(s: torch.Tensor, kind: str) -> torch.Tensor:
    return {"none": lambda v: v, "max2": lambda v: F.max_pool2d(v, 2), "avg2": lambda v: F.avg_pool2d(v, 2),
            "adapt2": lambda v: F.adaptive_avg_pool2d(v, 2)}[kind](s)


def _lls_p(kinds: list[str]) -> list[int | None]:
    """compute_LLS pooling sizes of their VGG (4, 2, …, 2, 1) on a generic stack."""
    n = len(kinds)
    return [None if k != "conv" else (4 if i == 0 else (1 if i == n - 1 else 2)) for i, k in enumerate(kinds)]


class Ref:
    """The authors' TESS, one mini-batch, from the equations of their code."""

    def __init__(self, cfg, params: dict[str, torch.Tensor]) -> None:
        self.cfg = cfg
        self.P = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}

    def w_hat(self, i: int, lay) -> torch.Tensor:
        W = self.P[f"layer{i + 1}.W"]
        if lay.kind == "conv" and lay.weight_std:
            mean = torch.mean(W, dim=(1, 2, 3), keepdim=True)
            var = torch.var(W, dim=(1, 2, 3), keepdim=True)  # unbiased, as torch.var's default
            return (W - mean) / ((var * W[0].numel() + 1e-4) ** 0.5) * self.P[f"layer{i + 1}.gain"]
        return W

    def run(self, x: torch.Tensor, y: torch.Tensor, schedule: bool, delay: int):
        cfg = self.cfg
        net = cfg.net
        lam_post, lam_pre, a_post, a_pre = cfg.rule.tess_factors
        B, T = x.shape[:2]
        C = net.readout
        geo = net.geometry()
        kinds = [lay.kind for lay in net.layers]
        ps = _lls_p(kinds)
        v = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
        tr = [torch.zeros((B, *g.in_shape), dtype=D) for g in geo]
        e = [torch.zeros((B, *g.neuron_shape), dtype=D) for g in geo]
        names = list(self.P)
        acc = {k: torch.zeros_like(p) for k, p in self.P.items()}
        per_step = []
        for t in range(T):
            bp = schedule and (T - t) <= delay
            a = x[:, t]
            losses = []
            for i, (lay, g) in enumerate(zip(net.layers, geo)):
                conv = lay.kind == "conv"
                what = self.w_hat(i, lay)
                wd = what.detach()

                def I(inp, w):  # noqa: E306, ANN001, ANN202
                    return F.conv2d(inp, w, padding=lay.kernel // 2) if conv else inp.reshape(B, -1) @ w.t()

                a_in = a if bp else a.detach()
                alpha = 0.5 if conv else 1 / (1 + math.exp(-2.0))
                u = alpha * v[i] + I(a_in.detach(), wd)
                xt = u - 0.6
                s = (xt > 0).to(D)
                psi = 0.3 * torch.clamp(1 - xt.abs(), min=0) if conv else 1 / (100 * xt.abs() + 1) ** 2
                tr[i] = lam_pre * tr[i] + a_in.detach()
                e_prev = e[i]
                e[i] = lam_post * e_prev + psi

                def st(z):  # noqa: E306, ANN001, ANN202
                    return z - z.detach()

                s_t = (s + psi * st(I(a_in, wd)) + a_pre * psi * st(I(tr[i], what))
                       + a_post * e_prev * st(I(a_in.detach(), what)))
                v[i] = u - (round(0.6) if conv else 0.6) * s
                o = _block_pool(s_t, lay.pool)
                if not bp:
                    h = o.reshape(B, -1) if ps[i] is None else F.adaptive_avg_pool2d(o, ps[i]).reshape(B, -1)
                    losses.append(F.cross_entropy(h @ _basis(C, h.shape[1]).t(), y))
                    o = o.detach()
                a = o
            z = (a if bp else a.detach()).reshape(B, -1) @ self.P["readout.W"].t() + self.P["readout.b"]
            if bp or not schedule:
                losses.append(F.cross_entropy(z, y))
            gs = torch.autograd.grad(sum(losses), [self.P[k] for k in names], allow_unused=True)
            for k, gk in zip(names, gs):
                if gk is not None:
                    acc[k] = acc[k] + gk
            per_step.append({k: acc[k].clone() for k in names})
        return per_step

    def adam(self, grads: dict[str, torch.Tensor], lr: float) -> dict[str, torch.Tensor]:
        P = {k: p.detach().clone().requires_grad_(True) for k, p in self.P.items()}
        opt = torch.optim.Adam(list(P.values()), lr=lr)
        for k, p in P.items():
            p.grad = grads[k].clone()
        opt.step()
        return {k: p.detach() for k, p in P.items()}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    n = float(b.norm())
    return float((a - b).norm()) / n if n > 0 else float(a.norm())


def _check(net: str, rule: str, delay: int = 1, T: int = 6, B: int = 5, scale: float = 1.0, seed: int = 0):
    cfg = make_config(net, rule, batch=B, steps=T, flavour="authors", delay_ls=delay, lr=1e-3)
    learner = make_learner(cfg, dtype=D, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = (torch.rand((B, T, *cfg.net.input_shape), generator=gen) < 0.4).to(D) * scale
    y = torch.randint(0, cfg.net.readout, (B,), generator=gen)
    params = {k: p.detach().clone() for k, p in learner.named_parameters()}
    ref = Ref(cfg, params)
    want = ref.run(x, y, rule == "tess-authors-schedule", delay)
    got = []
    learner.train_batch(x, y, on_step=lambda t: got.append({k: p.grad.clone() for k, p in learner.named_parameters()}))
    assert len(got) == T
    for t in range(T):
        for k in params:
            assert _rel(got[t][k], want[t][k]) <= TOL, (k, t, _rel(got[t][k], want[t][k]))
    after = ref.adam(want[-1], 1e-3)
    for k, p in learner.named_parameters():
        assert _rel(p.detach() - params[k], after[k] - params[k]) <= TOL, k
    return want


def _nonzero(want, keys):
    for k in keys:
        assert float(want[-1][k].abs().sum()) > 0, f"{k}: no gradient (inactive test case)"


def test_authors_dense_equals_reference():
    want = _check("30-20-16-5", "tess", scale=1.5)
    _nonzero(want, ["layer1.W", "layer2.W", "readout.W", "readout.b"])


def test_authors_conv_equals_reference():
    want = _check("2x8x8-c4p-c6-c6a2-5", "tess")
    _nonzero(want, ["layer1.W", "layer2.W", "layer3.W", "layer1.gain", "layer3.gain", "readout.W"])


def test_authors_conv_avgpool_then_dense_equals_reference():
    want = _check("2x8x8-c4v-c4-12-5", "tess")
    _nonzero(want, ["layer1.W", "layer2.W", "layer3.W", "readout.b"])


@pytest.mark.parametrize("net,scale", [("30-20-16-5", 1.5), ("2x8x8-c4p-c6-c6a2-5", 1.0)])
@pytest.mark.parametrize("delay", [0, 2, 6])
def test_schedule_equals_reference(net, scale, delay):
    want = _check(net, "tess-authors-schedule", delay=delay, T=6, scale=scale)
    if delay == 0:  # fully local: their readout is never trained
        assert float(want[-1]["readout.W"].abs().sum()) == 0
    else:
        _nonzero(want, ["layer1.W", "readout.W"])


def test_schedule_bp_steps_are_autograd_backprop():
    """On a back-prop step with α_post = 0 and λ_pre = 0 the trace terms reduce to Ψ·a, so the
    hidden gradient is the plain one-step surrogate backprop of CE(W_out o_L + b)."""
    cfg = make_config("30-20-16-5", "tess-authors-schedule", batch=4, steps=1, flavour="authors", delay_ls=1,
                      tess_factors=(0.2, 0.0, 0.0, 1.0))
    learner = make_learner(cfg, dtype=D, seed=3)
    gen = torch.Generator().manual_seed(5)
    x = (torch.rand((4, 1, 30), generator=gen) < 0.5).to(D) * 1.5
    y = torch.tensor([0, 1, 2, 3])
    P = {k: p.detach().clone().requires_grad_(True) for k, p in learner.named_parameters()}

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, xt):  # noqa: ANN001, ANN205
            ctx.save_for_backward(xt)
            return (xt > 0).to(xt.dtype)

        @staticmethod
        def backward(ctx, g):  # noqa: ANN001, ANN205
            (xt,) = ctx.saved_tensors
            return g / (100 * xt.abs() + 1) ** 2

    a = x[:, 0]
    for i in range(2):
        a = Spike.apply(a @ P[f"layer{i + 1}.W"].t() - 0.6)
    loss = F.cross_entropy(a @ P["readout.W"].t() + P["readout.b"], y)
    want = dict(zip(P, torch.autograd.grad(loss, list(P.values()))))
    grads = []
    learner.train_batch(x, y, on_step=lambda t: grads.append({k: p.grad.clone() for k, p in learner.named_parameters()}))
    for k in P:
        assert _rel(grads[0][k], want[k]) <= 1e-10, k


def test_authors_inventory_keeps_traces_and_no_spikes():
    cfg = make_config("2x8x8-c4p-c6-5", "tess", batch=3, steps=2, flavour="authors", tess_factors=(0.2, 0.5, 0.0, 1.0))
    learner = make_learner(cfg, dtype=torch.float32)
    learner.train_batch(torch.zeros(3, 2, 2, 8, 8), torch.tensor([0, 1, 2]))
    names = {n for n, _, _ in learner.memory_inventory()}
    assert "layer1.trace_post" in names  # kept although α_post = 0 (D10)
    assert "layer1.s" not in names  # no spikes kept (D11)
    assert "layer1.gain" in names and "readout.b" in names
    assert inventory_bytes(learner.memory_inventory())["aux"] == 0  # B_l regenerated (D8)


def test_paper_flavour_is_the_default():
    assert RuleSpec("tess").flavour == "paper"
    assert make_config("shd", "tess").rule.flavour == "paper"


@pytest.mark.parametrize("bad", [dict(flavour="author"), dict(delay_ls=-1), dict(delay_ls="x")])
def test_bad_fields_are_one_line_config_errors(bad):
    with pytest.raises(ConfigError) as ei:
        make_config("shd", "tess", **bad)
    assert "\n" not in str(ei.value)


def test_authors_rejects_recurrent():
    with pytest.raises(ConfigError) as ei:
        make_config("shd-rec", "tess", flavour="authors")
    assert "\n" not in str(ei.value) and "flavour" in str(ei.value)


@pytest.mark.parametrize("net,rule", [("30-20-16-5", "tess"), ("2x8x8-c4p-c6-5", "tess-authors-schedule")])
def test_authors_api_predict_checkpoint_freeze(net, rule):
    cfg = make_config(net, rule, batch=4, steps=5, flavour="authors", delay_ls=2)
    learner = make_learner(cfg, dtype=D)
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand((4, 5, *cfg.net.input_shape), generator=gen) < 0.4).to(D) * 1.5
    y = torch.tensor([0, 1, 2, 3])
    before = learner.predict(x)  # Σ_t z^t with the weights before the update
    learner.train_batch(x, y)
    assert torch.allclose(learner._state.m, before)  # their pred, formed during the batch
    other = make_learner(cfg, dtype=D, seed=9)
    other.load_state_dict(learner.state_dict())
    assert torch.equal(other.predict(x), learner.predict(x))
    assert [t.shape[1] for t in learner.layer_traces(x)] == [g.n_out for g in cfg.net.geometry()]
    learner = make_learner(cfg.with_(trainable="readout"), dtype=D, seed=9)
    w = [lay.W.detach().clone() for lay in learner.net.layers]
    w_out = learner.net.W_out.detach().clone()
    learner.train_batch(x, y)
    assert all(torch.equal(a, lay.W) for a, lay in zip(w, learner.net.layers))
    assert not torch.equal(w_out, learner.net.W_out)
