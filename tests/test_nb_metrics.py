"""NeuroBench metrics of a tpprof checkpoint: NeuroBench's own harness on the wrapped net agrees
with tpprof's closed forms (footprint, connection sparsity, activation sparsity, synaptic
operations), and ``tpprof evaluate --neurobench --json`` reports both plus training peaks."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("neurobench")
torch = pytest.importorskip("torch")

from tpprof.cli import main  # noqa: E402
from tpprof.config import NeuronSpec, make_config, parse_net  # noqa: E402
from tpprof.nb_metrics import HarnessNet, closed_forms, conv_dense_ops, neurobench_metrics  # noqa: E402
from tpprof.snn import make_learner  # noqa: E402


def _learner(net: str, prune: float = 0.0, seed: int = 0):
    cfg = make_config(parse_net(net, NeuronSpec(v_th=0.3)), "tp", batch=8, steps=10)
    learner = make_learner(cfg, seed=seed)
    if prune:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for _, p in learner.named_parameters():
                p.mul_((torch.rand(p.shape, generator=g) >= prune).to(p.dtype))
    return learner


def _data(learner, n: int = 20, spikes: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (n, learner.cfg.workload.steps, *learner.cfg.net.input_shape)
    x = (torch.rand(shape, generator=g) < 0.3).float() if spikes else torch.rand(shape, generator=g)
    return x, torch.randint(0, learner.cfg.net.readout, (n,), generator=g)


@pytest.mark.parametrize("net,spikes,prune", [("40-32r-10", False, 0.3), ("2x8x8-c4v-c6a2-5", True, 0.2),
                                               ("30-16-16-4", True, 0.0)])
def test_harness_agrees_with_closed_forms(net, spikes, prune):
    learner = _learner(net, prune)
    x, y = _data(learner, spikes=spikes)
    torch.testing.assert_close(HarnessNet(learner)(x), learner.predict(x), rtol=0, atol=0)
    nb = neurobench_metrics(learner, x, y, batch=7)  # batches that do not divide N
    cf = closed_forms(learner, x)
    assert nb["Footprint"] == cf["Footprint"] == learner.cfg.net.n_params() * 4
    assert nb["ConnectionSparsity"] == pytest.approx(cf["ConnectionSparsity"], abs=1e-4)
    if prune and not learner.cfg.net.is_conv:  # conv: the forward's standardised Ŵ has no zeros left
        assert cf["ConnectionSparsity"] == pytest.approx(prune, abs=0.08)
    assert nb["ActivationSparsity"] == pytest.approx(cf["ActivationSparsity"], rel=1e-12)
    assert 0 < cf["ActivationSparsity"] < 1
    for k in ("Dense", "Effective_ACs", "Effective_MACs"):
        assert nb["SynapticOperations"][k] == pytest.approx(cf["SynapticOperations"][k], rel=1e-12), k
    assert cf["SynapticOperations"]["Effective_ACs"] > 0


def test_conv_dense_ops_counts_taps_inside_the_map():
    # brute force: every (output position, kernel tap) pair that lands inside a 5x7 map, k = 3 and 5
    for k in (1, 3, 5):
        p = k // 2
        taps = sum(1 for y in range(5) for x in range(7) for dy in range(-p, p + 1) for dx in range(-p, p + 1)
                   if 0 <= y + dy < 5 and 0 <= x + dx < 7)
        assert conv_dense_ops(2, 3, 5, 7, k) == 2 * 3 * taps


def test_evaluate_cli_neurobench_json(tmp_path, capsys):
    from tpprof.train import save_checkpoint

    learner = _learner("12-16-3")
    rng = np.random.default_rng(0)
    npz = tmp_path / "d.npz"
    np.savez(npz, x=rng.random((30, 10, 12)).astype(np.float32), y=rng.integers(0, 3, 30))
    ck = tmp_path / "model.pt"
    save_checkpoint(ck, learner, learner.cfg, {"data": {"kind": "file", "path": str(npz)}, "seed": 0})
    assert main(["evaluate", "--checkpoint", str(ck), "--data", str(npz), "--neurobench", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert all(rep["agree"].values()), rep["agree"]
    from tpprof.config import TRAINABLE_RULES, rules_accepting

    assert set(rep["tpprof_train_peak_analytic_bytes"]) == set(rules_accepting(learner.cfg, TRAINABLE_RULES))
    measured = rep["tpprof_train_peak_measured_bytes"]
    assert all(isinstance(v, int) and v > 0 for v in measured.values()), measured
    assert set(measured) == {"tp", "tess", "bptt"}
    for r, v in measured.items():
        assert 0.5 < v / rep["tpprof_train_peak_analytic_bytes"][r] < 2.0, (r, v)


@pytest.mark.parametrize("reset,order", [("hard", "code"), ("hard", "paper"), ("soft", "paper"), ("soft", "code")])
def test_closest_snntorch_neuron_is_what_the_report_says(reset, order):
    """The neuron-semantics statement of ``evaluate --neurobench``: snnTorch's Leaky with the stated
    setting gives tpprof's spikes step by step (exactly where the report says identical; for
    code + soft, as long as no post-reset membrane stays >= v_th)."""
    snn = pytest.importorskip("snntorch")
    from tpprof.config import NeuronSpec
    from tpprof.nb_metrics import neuron_semantics
    from tpprof.snn.neurons import LIFParams, lif_step, lif_zeros

    nrn = NeuronSpec(v_th=0.8, alpha=0.9, beta=0.9, reset=reset, order=order)
    eq = neuron_semantics(nrn)["closest_snntorch"]
    assert eq["exact"] == (not (reset == "soft" and order == "code"))
    g = torch.Generator().manual_seed(0)
    hi = 1.5 if eq["exact"] else 0.5  # soft + code: I <= 0.75 < (2 - alpha) v_th keeps u < 2 v_th
    cur = (torch.rand((200, 64), generator=g) * 2 - 0.5) * hi  # (T, B·H) input currents
    lif = snn.Leaky(**eq["kwargs"])
    mem = lif.init_leaky()
    st = lif_zeros((64,), torch.float32, "cpu")
    params = LIFParams.from_spec(nrn)
    fired = 0
    for t in range(cur.shape[0]):
        spk, mem = lif(cur[t], mem)
        s, _, st = lif_step(cur[t], st, params)
        assert torch.equal(spk, s), (t, eq["setting"])
        fired += int(s.sum())
    assert fired > 100
