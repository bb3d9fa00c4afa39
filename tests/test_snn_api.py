"""The learner API contract (docs/architecture.md, tpprof.snn): construction, results, input
errors, checkpoints, inventories, variable batch size, and that TP learns a toy task."""

from __future__ import annotations

import io

import pytest
import torch

from tpprof.config import NeuronSpec, make_config, parse_net
from tpprof.errors import UserError
from tpprof.snn import CATEGORIES, inventory_bytes, make_learner

torch.set_num_threads(1)  # 2 shared cores: more threads only spin
RULES = ("tp", "tess", "bptt", "bptt-compact", "bptt-ckpt", "tbptt", "ottt")


def _xy(cfg, B=6, T=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((B, T, *cfg.net.input_shape), generator=g) < 0.4).float()
    return x, torch.randint(0, cfg.net.readout, (B,), generator=g)


def test_unknown_rule_is_a_user_error() -> None:
    with pytest.raises(UserError, match="rule"):
        make_learner(make_config("20-8-4", "eprop", batch=4, steps=3))


@pytest.mark.parametrize("rule", RULES)
def test_train_batch_predict_traces_and_variable_batch(rule: str) -> None:
    cfg = make_config("2x6x6-c3p-8r-4", rule, batch=6, steps=4)
    learner = make_learner(cfg)
    x, y = _xy(cfg)
    steps = []
    out = learner.train_batch(x, y, on_step=steps.append)
    assert steps == [0, 1, 2, 3]
    assert set(out) >= {"loss", "correct", "n"} and out["n"] == 6 and 0 <= out["correct"] <= 6
    assert isinstance(out["loss"], float) and out["loss"] > 0
    short = learner.train_batch(x[:3], y[:3])  # a short last batch: state is reallocated
    assert short["n"] == 3
    assert learner.predict(x).shape == (6, 4)
    feats = learner.layer_traces(x)
    assert [f.shape for f in feats] == [(6, 27), (6, 8)]
    assert torch.isfinite(learner.predict(x)).all()


@pytest.mark.parametrize("rule", RULES)
def test_input_errors_are_one_line_user_errors(rule: str) -> None:
    cfg = make_config("20-8-4", rule, batch=4, steps=3)
    learner = make_learner(cfg)
    x, y = _xy(cfg, B=4, T=3)
    with pytest.raises(UserError, match="x"):
        learner.train_batch(torch.zeros(4, 3, 21), y)
    with pytest.raises(UserError, match="y"):
        learner.train_batch(x, torch.tensor([0, 1, 2, 4]))
    with pytest.raises(UserError, match="y"):
        learner.train_batch(x, y[:3])


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("aux", ["stored", "regenerated"])
def test_state_dict_round_trip_with_weights_only(rule: str, aux: str) -> None:
    cfg = make_config("20-8r-6-4", rule, batch=4, steps=3, aux=aux)
    a = make_learner(cfg, seed=1)
    x, y = _xy(cfg, B=4, T=3)
    a.train_batch(x, y)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    b = make_learner(cfg, seed=2)
    b.load_state_dict(sd)
    assert torch.equal(a.predict(x), b.predict(x))
    if rule == "tp":  # the fixed label projection S travels with the checkpoint
        s_a = a.S if aux == "stored" else a._draw_s()
        s_b = b.S if aux == "stored" else b._draw_s()
        assert torch.equal(s_a, s_b)
        assert not torch.equal(s_a, make_learner(cfg, seed=2)._s_matrix())  # seeds differ: S would too


def test_load_state_dict_rejects_another_net() -> None:
    a = make_learner(make_config("20-8-4", "tp", batch=4, steps=3))
    b = make_learner(make_config("20-9-4", "tp", batch=4, steps=3))
    with pytest.raises(UserError, match="shape"):
        b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("rule", RULES)
def test_inventory_uses_the_shared_categories(rule: str) -> None:
    cfg = make_config("2x6x6-c3p-8r-4", rule, batch=4, steps=3)
    learner = make_learner(cfg)
    seen = []
    learner.train_batch(*_xy(cfg, B=4, T=3), on_step=lambda t: seen.append(learner.memory_inventory()))
    for inv in seen:
        names = [n for n, _, _ in inv]
        assert len(names) == len(set(names))
        assert {c for _, c, _ in inv} <= set(CATEGORIES)
    by = inventory_bytes(seen[-1])
    assert by["weights"] == cfg.net.n_params() * 4 == by["gradients"]


def test_tp_learns_a_toy_task() -> None:
    """Four classes, each a different set of active input channels: TP's readout beats chance."""
    neuron = NeuronSpec(v_th=1.0, alpha=0.9, beta=0.9)
    cfg = make_config(parse_net("24-32-32-4", neuron), "tp", batch=16, steps=10, lr=3e-3)
    learner = make_learner(cfg, seed=0)
    g = torch.Generator().manual_seed(0)

    def batch(n):
        y = torch.randint(0, 4, (n,), generator=g)
        rate = torch.full((n, 24), 0.05)
        for i, c in enumerate(y.tolist()):
            rate[i, 6 * c:6 * c + 6] = 0.6
        return (torch.rand((n, 10, 24), generator=g) < rate[:, None]).float(), y

    for _ in range(15):
        learner.train_batch(*batch(16))
    x, y = batch(64)
    acc = (learner.predict(x).argmax(1) == y).float().mean().item()
    assert acc > 0.6  # chance is 0.25


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("rule", RULES)
def test_cuda_matches_cpu(rule: str) -> None:
    cfg = make_config("2x6x6-c3p-8r-4", rule, batch=4, steps=3, optimizer="sgd", lr=0.05)
    x, y = _xy(cfg, B=4, T=3)
    cpu = make_learner(cfg, dtype=torch.float64)
    gpu = make_learner(cfg, device="cuda", dtype=torch.float64)
    cpu.train_batch(x.double(), y)
    gpu.train_batch(x.double().cuda(), y.cuda())
    for (n, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert (p.detach() - q.detach().cpu()).abs().max() < 1e-9, n


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_layer_optimizer_matches_torch_optim(name: str) -> None:
    from tpprof.snn.base import LayerOptimizer

    torch.manual_seed(0)
    p1 = torch.nn.Parameter(torch.randn(6, 5, dtype=torch.float64))
    p2 = torch.nn.Parameter(p1.detach().clone())
    ours = LayerOptimizer([p1], name, 1e-2)
    ref = {"sgd": lambda: torch.optim.SGD([p2], lr=1e-2),
           "momentum": lambda: torch.optim.SGD([p2], lr=1e-2, momentum=0.9),
           "adam": lambda: torch.optim.Adam([p2], lr=1e-2)}[name]()
    for _ in range(5):
        g = torch.randn(6, 5, dtype=torch.float64)
        p1.grad, p2.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    assert (p1 - p2).abs().max() < 1e-12


@pytest.mark.parametrize("rule", RULES)
def test_lr_scale_weighs_a_batch(rule: str) -> None:
    cfg = make_config("20-8r-4", rule, batch=4, steps=3, optimizer="sgd", lr=0.1)
    x, y = _xy(cfg, B=4, T=3)
    a, b, z = (make_learner(cfg, dtype=torch.float64) for _ in range(3))
    before = {k: p.detach().clone() for k, p in a.named_parameters()}
    a.train_batch(x, y)
    b.train_batch(x, y, lr_scale=0.5)
    z.train_batch(x, y, lr_scale=0.0)
    for (n, pa), (_, pb), (_, pz) in zip(a.named_parameters(), b.named_parameters(), z.named_parameters()):
        assert torch.equal(pz, before[n])
        if rule == "bptt":  # one step per batch: exactly half the update
            assert torch.allclose(pb - before[n], 0.5 * (pa - before[n]), atol=1e-12)
    assert any(not torch.equal(p, before[n]) for n, p in b.named_parameters())
