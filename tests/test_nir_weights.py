"""A net trained in snnTorch, exported with snnTorch's own exporter, starts a tpprof learner with
its weights and neuron parameters; TP fine-tunes it; tpprof's export loads in snnTorch's PUBLIC
importer and computes what tpprof computes.

Neuron semantics used (they coincide exactly): snnTorch ``Leaky(beta, threshold,
reset_mechanism="zero", reset_delay=False)`` — mem = β mem + I; spk = Θ(mem − θ); mem ← mem (1 − spk) —
is tpprof's code ordering with hard reset, u = α v + I, s = Θ(u − v_th), v = u (1 − s), with
α = β = 1 − dt/τ read back from snnTorch's τ = dt/(1 − β), r = τ/dt (unit gain). snnTorch's
default (reset_delay=True) resets from the previous step's spike, which is tpprof's paper
ordering; its exporter writes NIR's reset either way, so the test trains with reset_delay=False.
tpprof's readout is the integrator m^T = Σ_t W_out s_L^t: snnTorch's spiking output layer is read
as that integrator (its weights are W_out), so the check compares m^T with Σ_t of snnTorch's
output-layer input current fc_out(s_L^t) — equal only if every hidden spike is equal too."""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")
snn = pytest.importorskip("snntorch", reason="snntorch is not installed (pip install 'tpprof[test]')")
torch = pytest.importorskip("torch")

from tpprof.cli import main  # noqa: E402
from tpprof.config import make_config, parse_net  # noqa: E402
from tpprof.data.arrays import ArrayDataset  # noqa: E402
from tpprof.errors import UserError  # noqa: E402
from tpprof.train import fit, learner_from_nir  # noqa: E402

N_IN, HID, OUT, T = 12, 16, 3, 10


def _snntorch_net(recurrent: bool = False) -> torch.nn.Sequential:
    torch.manual_seed(0)
    lif = dict(beta=torch.full((HID,), 0.85), threshold=torch.full((HID,), 0.7), init_hidden=True,
               reset_mechanism="zero", reset_delay=False)
    hidden = (snn.RLeaky(linear_features=HID, **lif) if recurrent else snn.Leaky(**lif))
    net = torch.nn.Sequential(
        torch.nn.Linear(N_IN, HID, bias=False), hidden, torch.nn.Linear(HID, OUT, bias=False),
        snn.Leaky(beta=torch.full((OUT,), 0.9), threshold=torch.ones(OUT), init_hidden=True, output=True,
                  reset_mechanism="zero", reset_delay=False))
    if recurrent:
        with torch.no_grad():
            hidden.recurrent.bias.zero_()  # tpprof's R has no bias
            hidden.recurrent.bias.requires_grad_(False)
    return net


def _data(n: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % OUT
    rate = 0.1 + 0.5 * (torch.arange(N_IN)[None, :] % OUT == y[:, None]).float()  # (n, F) class-coded rates
    x = (torch.rand((n, T, N_IN), generator=g) < rate[:, None, :]).float()  # (n, T, F)
    return x, y


def _snn_readout(net: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Σ_t fc_out(s_L^t): snnTorch's own forward up to the output layer's input current."""
    import snntorch.utils

    snntorch.utils.reset(net)
    m = torch.zeros(x.shape[0], OUT)
    with torch.no_grad():
        for t in range(x.shape[1]):
            s = net[1](net[0](x[:, t]))
            m += net[2](s)
    return m


def _train_in_snntorch(net: torch.nn.Sequential, x, y, steps: int = 15) -> None:
    import snntorch.utils

    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-2)
    for _ in range(steps):
        snntorch.utils.reset(net)
        mem_sum = 0.0
        for t in range(x.shape[1]):
            _, mem = net(x[:, t])
            mem_sum = mem_sum + mem
        loss = torch.nn.functional.cross_entropy(mem_sum, y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _export_snntorch(net, path) -> None:
    from snntorch.export_nir import export_to_nir

    nir.write(path, export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0]))


@pytest.mark.parametrize("recurrent", [False, True])
def test_snntorch_trained_net_starts_tpprof_with_its_weights(tmp_path, recurrent):
    x, y = _data()
    net = _snntorch_net(recurrent)
    w0 = net[0].weight.detach().clone()
    _train_in_snntorch(net, x, y)
    assert not torch.equal(w0, net[0].weight)  # trained, not the init
    path = tmp_path / "snn.nir"
    _export_snntorch(net, path)
    cfg = make_config(parse_net(str(path)), "tp", batch=8, steps=T)
    assert cfg.net.to_string() == f"{N_IN}-{HID}{'r' if recurrent else ''}-{OUT}"
    assert cfg.net.neuron.reset == "hard" and cfg.net.neuron.order == "code"
    assert cfg.net.neuron.alpha == pytest.approx(0.85, abs=1e-6) and cfg.net.neuron.v_th == pytest.approx(0.7)
    learner = learner_from_nir(path, cfg)
    m_snn = _snn_readout(net, x)
    m_tp = learner.predict(x)
    assert m_snn.abs().max() > 0
    torch.testing.assert_close(m_tp, m_snn, rtol=1e-5, atol=1e-5)


def test_round_trip_snntorch_finetune_with_tp_export_public_importer(tmp_path):
    """snnTorch → .nir → fine-tune with TP in tpprof → tpprof export → snnTorch's public importer."""
    from test_nir_io import _public_forward  # tests/ is on sys.path under pytest (rootdir-less modules)

    x, y = _data()
    net = _snntorch_net()
    _train_in_snntorch(net, x, y)
    src = tmp_path / "snn.nir"
    _export_snntorch(net, src)
    cfg = make_config(parse_net(str(src)), "tp", batch=8, steps=T)
    learner = learner_from_nir(src, cfg)
    torch.testing.assert_close(learner.predict(x), _snn_readout(net, x), rtol=1e-5, atol=1e-5)  # first forward
    before = learner.net.layers[0].W.detach().clone()
    ds = ArrayDataset(x.numpy(), y.numpy(), OUT)
    fit(cfg, ds, ds, epochs=1, learner=learner, progress=False)
    assert not torch.equal(before, learner.net.layers[0].W)  # TP changed the hidden weights
    from tpprof.nir_io import write_nir

    out = tmp_path / "tuned.nir"
    write_nir(learner, out)
    torch.testing.assert_close(_public_forward(out, x), learner.predict(x), rtol=1e-5, atol=1e-5)


def test_train_finetune_evaluate_take_a_nir_net(tmp_path, capsys):
    x, y = _data(30)
    net = _snntorch_net()
    _train_in_snntorch(net, x, y, steps=5)
    src = tmp_path / "snn.nir"
    _export_snntorch(net, src)
    npz = tmp_path / "d.npz"
    np.savez(npz, x=x.numpy(), y=y.numpy())
    # evaluate --net x.nir: the file's own weights, so snnTorch's accuracy (argmax of m^T)
    assert main(["evaluate", "--net", str(src), "--data", str(npz), "--test-data", str(npz), "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    want = float((_snn_readout(net, x).argmax(1) == y).float().mean())
    assert doc["accuracy"] == pytest.approx(want)
    assert main(["train", "--net", str(src), "--rule", "tp", "--data", str(npz), "--test-data", str(npz),
                 "--epochs", "1", "--batch", "8", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "starts from" in out.err and "weights" in out.err


def test_weights_the_learner_cannot_take_name_the_node(tmp_path, capsys):
    g = nir.NIRGraph.from_list(nir.Affine(np.ones((4, 3), np.float32), np.ones(4, np.float32)),
                               nir.LIF(tau=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4),
                                       v_threshold=np.ones(4)),
                               nir.Linear(np.ones((2, 4), np.float32)))
    g.metadata = {"dt": 1e-4}
    path = tmp_path / "bias.nir"
    nir.write(path, g)
    cfg = make_config(parse_net(str(path)), "tp", batch=2, steps=3)
    with pytest.raises(UserError) as e:
        learner_from_nir(path, cfg)
    assert "has a bias" in str(e.value) and "\n" not in str(e.value)
    cfg3 = make_config(parse_net(str(path)), "tp", batch=2, steps=3, classes=3)  # readout resized to 3
    g.nodes[list(g.nodes)[1]] = nir.Linear(np.ones((4, 3), np.float32))
    nir.write(path, g)
    with pytest.raises(UserError) as e:
        learner_from_nir(path, cfg3)
    assert "weight shape (2, 4)" in str(e.value) and "readout" in str(e.value)
