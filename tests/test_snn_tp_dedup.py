"""Class-deduplicated TP (RuleSpec.target_rows = "classes") equals standard TP exactly.

Oracle: the standard (per-sample, B-row) TP learner of tpprof/snn/tp.py, itself checked against
per-layer autograd in test_snn_tp.py. In float64 every per-step gradient (all W_l, R_l, S when
trained, the readout) and the parameters after the mini-batch agree to ≤ 1e-10, for dense,
recurrent and conv nets and label multisets with K = 1, K = B (all distinct) and mixed counts.
Both learners use an exact pairwise distance (differences, not the |a|² + |b|² − 2a·b
expansion, whose float64 cancellation leaves ≈ 1e-8·|a| between equal rows in the B-row
reference). The held memory equals the analytic K-row terms to the byte (K = min(B, C)).
"""

from __future__ import annotations

import pytest
import torch

import tpprof.snn.tp as tp_mod
from tpprof.analytic import estimate
from tpprof.config import make_config
from tpprof.snn import inventory_bytes, make_learner

torch.set_num_threads(1)  # 2 shared cores
D = torch.float64
TOL = 1e-10
GAIN = 3.0

NETS = {"dense": "12-8-6-5", "recurrent": "12-8r-6r-5", "conv": "2x6x6-c4p-c3-c2a2-5"}
LABELS = {
    "one class (K=1)": [2, 2, 2, 2, 2, 2],
    "all distinct (K=B)": [4, 0, 3, 1, 2],
    "mixed": [0, 3, 3, 1, 0, 3],
    "single sample": [4],
}


def _exact_distance(a: torch.Tensor) -> torch.Tensor:
    """‖a_b − a_b′‖ over the last dim, by differences (0 exactly between equal rows): (…, B, B)."""
    return (a.unsqueeze(-2) - a.unsqueeze(-3)).pow(2).sum(-1).sqrt()


def _run(cfg, x, y):
    """Per-step gradients {name: [T tensors]} and the parameters after one mini-batch."""
    lr = make_learner(cfg, dtype=D, seed=3)
    with torch.no_grad():  # stronger weights (and S) than the init, so that every layer spikes
        for _, p in lr.named_parameters():
            p.mul_(GAIN)
        if lr.S is not None and not lr.train_s:
            lr.S.mul_(GAIN)
    grads: dict[str, list[torch.Tensor]] = {n: [] for n, _ in lr.named_parameters()}

    def on_step(t: int) -> None:
        for n, p in lr.named_parameters():
            grads[n].append(p.grad.detach().clone())

    out = lr.train_batch(x, y, on_step=on_step)
    return grads, {n: p.detach().clone() for n, p in lr.named_parameters()}, out, lr


@pytest.fixture
def exact_distance(monkeypatch):
    monkeypatch.setattr(tp_mod, "pairwise_distance", _exact_distance)


@pytest.mark.parametrize("labels", list(LABELS), ids=list(LABELS))
@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("extra", [{}, {"train_s": True}, {"similarity": "dot", "cadence": "sequence"}],
                         ids=["default", "train_s", "dot-sequence"])
def test_dedup_equals_standard(net, labels, extra, exact_distance):
    y = torch.tensor(LABELS[labels])
    B, T = len(y), 4
    base = make_config(NETS[net], batch=B, steps=T, classes=5, optimizer="sgd", lr=0.05, **extra)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand((B, T, *base.net.input_shape), generator=gen) < 0.4).to(D)  # (B, T, *input)
    g_ref, p_ref, o_ref, _ = _run(base, x, y)
    g_k, p_k, o_k, lk = _run(base.with_(target_rows="classes"), x, y)
    assert lk._state.eps_t[0].shape[0] == len(set(LABELS[labels]))  # K rows held
    nonzero = 0
    for n in g_ref:
        for t, (a, b) in enumerate(zip(g_ref[n], g_k[n])):
            assert torch.allclose(a, b, rtol=0, atol=TOL), (n, t, (a - b).abs().max().item())
            nonzero += int(a.abs().max() > 1e-6)
        assert torch.allclose(p_ref[n], p_k[n], rtol=0, atol=TOL), n
    if len(set(LABELS[labels])) > 1:  # K = 1: y and softmax(z) are both uniform, G = 0 (no hidden update)
        assert nonzero >= len(g_ref) - 1  # every hidden tensor learned something
    assert abs(o_ref["local_loss"] - o_k["local_loss"]) <= TOL * max(1.0, abs(o_ref["local_loss"]))
    assert o_ref["loss"] == pytest.approx(o_k["loss"], abs=TOL)


def test_dedup_default_distance_matches_reference_closely():
    """With the production (expansion) distance the two differ only by its float64 rounding."""
    y = torch.tensor(LABELS["mixed"])
    base = make_config(NETS["recurrent"], batch=6, steps=4, classes=5, optimizer="sgd", lr=0.05)
    x = (torch.rand((6, 4, 12), generator=torch.Generator().manual_seed(2)) < 0.4).to(D)
    g_ref, _, _, _ = _run(base, x, y)
    g_k, _, _, _ = _run(base.with_(target_rows="classes"), x, y)
    for n in g_ref:
        for a, b in zip(g_ref[n], g_k[n]):
            assert torch.allclose(a, b, rtol=0, atol=1e-6), n


COMPARED = ("weights", "optimizer", "neuron_state", "traces", "aux")


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("B,labels", [(4, [0, 1, 0, 2]), (7, [0, 1, 2, 3, 4, 0, 1])], ids=["K=3<C", "K=C<B"])
def test_dedup_inventory_equals_analytic_k_rows(net, B, labels):
    """Persistent bytes per category = the analytic terms with K = min(B, C) rows (the model's
    worst case); here the batch holds K = min(B, C) classes... and for K < min(B, C) the learner
    holds exactly (min(B, C) − K)·(2·n_nrn + n_out) fewer target-path elements per layer."""
    C = 3 if B == 4 else 5
    cfg = make_config(NETS[net][:-1] + str(C), batch=B, steps=3, classes=C, target_rows="classes")
    lr = make_learner(cfg, dtype=torch.float32, seed=0)
    x = (torch.rand((B, 3, *cfg.net.input_shape), generator=torch.Generator().manual_seed(0)) < 0.3).float()
    y = torch.tensor(labels)
    lr.train_batch(x, y)
    held = inventory_bytes(lr.memory_inventory())
    bd = estimate(cfg, "full")
    want = {c: 0 for c in COMPARED}
    for t in bd.terms:
        if t.persistent and t.category in COMPARED:
            want[t.category] += t.bytes
    want["optimizer"] += sum(t.bytes for t in bd.terms if t.name == "Adam step counters")
    K, Kmax = len(set(labels)), min(B, C)
    short = sum((Kmax - K) * (2 * g.n_neurons) * 4 for g in cfg.net.geometry())
    short_tr = sum((Kmax - K) * g.n_out * 4 for g in cfg.net.geometry())
    assert held["neuron_state"] == want["neuron_state"] - short
    assert held["traces"] == want["traces"] - short_tr
    for cat in ("weights", "optimizer", "aux"):
        assert held.get(cat, 0) == want[cat], cat


def test_dedup_analytic_terms_use_k_rows():
    """The target-path state is K·n per layer, the loss buffers B·K, with K = min(B, C)."""
    for B, C in ((128, 20), (4, 20)):
        cfg = make_config("700-450-20", batch=B, steps=10, classes=C)
        std = {t.name: t.count for t in estimate(cfg, "full").terms}
        ded = {t.name: t.count for t in estimate(cfg.with_(target_rows="classes"), "full").terms}
        K = min(B, C)
        assert ded["layer1/v (target path)"] == K * 450 and std["layer1/v (target path)"] == B * 450
        assert ded["layer1/ε̃ (target trace)"] == K * 450
        assert ded["layer1/z (similarity)"] == B * K and std["layer1/z (similarity)"] == B * B


def test_paper_accounting_dedup_is_b_plus_k():
    """Paper accounting: dedup TP = (B + K)·L·H with K = min(B, C); G = (B + C)/(B + K) ≥ 1."""
    import numpy as np

    from tpprof.analytic.paper import g_ratio

    for B, C in ((128, 20), (8, 20), (16, 16)):
        cfg = make_config("700-450-450-20", batch=B, steps=10, classes=C, target_rows="classes")
        tp = estimate(cfg, "paper").total_bytes
        tess = estimate(cfg.with_(name="tess"), "paper").total_bytes
        K = min(B, C)
        assert tp == (B + K) * 2 * 450 * 4
        assert tess / tp == pytest.approx(float(g_ratio(C, B, 2, "dedup")))
        assert tess / tp >= 1.0
    assert np.all(g_ratio(np.arange(1, 500), 16, 3, "dedup") >= 1.0)
