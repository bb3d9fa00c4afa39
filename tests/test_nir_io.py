"""NIR import / export (tpprof.nir_io): graphs built with the nir package, graphs exported by
snnTorch, malformed and hostile files, and the export round trip through an independent
NIR consumer (nirtorch's graph executor running snnTorch's own NIR node modules)."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tpprof.analytic import estimate  # noqa: E402
from tpprof.cli import main  # noqa: E402
from tpprof.config import RULES, ConfigError, NeuronSpec, make_config, parse_net, rules_accepting  # noqa: E402
from tpprof.nir_io import read_nir_net  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _lif(n: int, alpha: float = 0.96, dt: float = 1e-3, v_th: float = 1.0, **kw) -> "nir.LIF":
    tau = np.full(n, dt / (1 - alpha))
    args = dict(tau=tau, r=tau / dt, v_leak=np.zeros(n), v_threshold=np.full(n, v_th), v_reset=np.zeros(n))
    args.update(kw)
    return nir.LIF(**args)


def _rec_graph(n_in: int = 64, hidden: int = 128, classes: int = 10, dt: float = 1e-3, rng_seed: int = 0,
               **lif_kw) -> "nir.NIRGraph":
    """Input(64) → Linear → LIF ⟲ Linear(rec) → Linear → LI(τ=∞) → Output: the net 64-128r-10."""
    rng = np.random.default_rng(rng_seed)
    nodes = {
        "in": nir.Input(input_type=np.array([n_in])),
        "fc1": nir.Linear(weight=rng.standard_normal((hidden, n_in))),
        "lif1": _lif(hidden, dt=dt, **lif_kw),
        "rec1": nir.Linear(weight=rng.standard_normal((hidden, hidden))),
        "fc2": nir.Linear(weight=rng.standard_normal((classes, hidden))),
        "li": nir.LI(tau=np.full(classes, np.inf), r=np.ones(classes), v_leak=np.zeros(classes)),
        "out": nir.Output(output_type=np.array([classes])),
    }
    edges = [("in", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"), ("lif1", "fc2"), ("fc2", "li"),
             ("li", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}, type_check=False)


def _write(graph, path: Path) -> str:
    nir.write(path, graph)
    return str(path)


# --------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------


def test_rec_graph_gives_exactly_the_estimate_of_the_net_string(tmp_path):
    path = _write(_rec_graph(), tmp_path / "rec.nir")
    net = parse_net(path)
    ref = parse_net("64-128r-10")
    assert (net.input_shape, net.layers, net.readout) == (ref.input_shape, ref.layers, ref.readout)
    assert net.to_string() == "64-128r-10"
    assert math.isclose(net.neuron.alpha, 0.96) and net.neuron.v_th == 1.0 and net.neuron.reset == "hard"
    for rule in rules_accepting(make_config("64-128r-10"), RULES):  # every rule that takes a recurrent net
        a = estimate(make_config(net, rule, batch=16, steps=50))
        b = estimate(make_config("64-128r-10", rule, batch=16, steps=50))
        assert a == b, rule
        assert a.peak_bytes == b.peak_bytes and a.total_bytes == b.total_bytes


def test_estimate_cli_accepts_a_nir_file(tmp_path, capsys):
    path = _write(_rec_graph(), tmp_path / "rec.nir")
    assert main(["estimate", "--net", path, "--rule", "tess", "--json"]) == 0
    out_nir = capsys.readouterr().out
    assert main(["estimate", "--net", "64-128r-10", "--rule", "tess", "--json"]) == 0
    out_str = capsys.readouterr().out
    import json

    a, b = json.loads(out_nir), json.loads(out_str)
    assert a["peak_bytes"] == b["peak_bytes"] and a["total_bytes"] == b["total_bytes"]


def test_conv_graph_hand_built(tmp_path):
    rng = np.random.default_rng(1)
    n = 4 * 8 * 8
    nodes = {
        "in": nir.Input(input_type=np.array([2, 8, 8])),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.standard_normal((4, 2, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=np.zeros(4)),
        "lif": _lif(n, alpha=0.9, v_th=0.5, dt=1e-3).__class__(
            tau=np.full((4, 8, 8), 1e-2), r=np.full((4, 8, 8), 10.0), v_leak=np.zeros((4, 8, 8)),
            v_threshold=np.full((4, 8, 8), 0.5), v_reset=np.zeros((4, 8, 8))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
        "fc": nir.Affine(weight=rng.standard_normal((10, 64)), bias=np.ones(10)),
        "out": nir.Output(output_type=np.array([10])),
    }
    edges = [("in", "conv"), ("conv", "lif"), ("lif", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "out")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)
    net, notes = read_nir_net(_write(g, tmp_path / "conv.nir"))
    assert net.to_string() == "2x8x8-c4v-10"
    assert math.isclose(net.neuron.alpha, 0.9) and net.neuron.v_th == 0.5
    joined = "\n".join(notes)
    assert "SumPool2d read as average pooling" in joined
    assert "bias (10 values) not modelled" in joined
    assert "no neuron after the last weight" in joined


def test_cubalif_and_if(tmp_path):
    dt = 1e-3
    nodes = {
        "in": nir.Input(input_type=np.array([5])),
        "fc1": nir.Linear(weight=np.ones((6, 5))),
        "cuba": nir.CubaLIF(tau_syn=np.full(6, dt / 0.2), tau_mem=np.full(6, dt / 0.1), r=np.full(6, 10.0),
                            v_leak=np.zeros(6), v_threshold=np.ones(6), w_in=np.full(6, 5.0)),
        "fc2": nir.Linear(weight=np.ones((7, 6))),
        "if": nir.IF(r=np.full(7, 1 / dt), v_threshold=np.ones(7)),
        "fc3": nir.Linear(weight=np.ones((3, 7))),
        "i": nir.I(r=np.ones(3)),
        "out": nir.Output(output_type=np.array([3])),
    }
    edges = [("in", "fc1"), ("fc1", "cuba"), ("cuba", "fc2"), ("fc2", "if"), ("if", "fc3"), ("fc3", "i"), ("i", "out")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}, type_check=False)
    net, notes = read_nir_net(_write(g, tmp_path / "cuba.nir"))
    assert net.to_string() == "5-6-7-3"
    assert math.isclose(net.neuron.alpha, 0.9) and math.isclose(net.neuron.beta, 0.8)
    joined = "\n".join(notes)
    assert "CubaLIF's synaptic current is not simulated" in joined
    assert "if: decay 1" in joined  # the IF layer's α = 1 differs from the first layer's


snntorch = None
try:  # snnTorch is in the test extra; its absence skips only these tests
    import snntorch  # noqa: F401
except ImportError:  # pragma: no cover
    snntorch = None


@pytest.mark.skipif(snntorch is None, reason="snntorch is not installed (pip install 'tpprof[test]')")
def test_graph_exported_by_snntorch(tmp_path):
    import torch
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(64, 128, bias=False)
            self.lif1 = snn.RLeaky(beta=torch.full((128,), 0.9), threshold=torch.ones(128), linear_features=128,
                                   init_hidden=True)
            self.fc2 = torch.nn.Linear(128, 10, bias=False)
            self.lif2 = snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.ones(10), init_hidden=True,
                                  output=True)

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    g = export_to_nir(Net(), torch.randn(1, 64), ignore_dims=[0])
    net, notes = read_nir_net(_write(g, tmp_path / "snn.nir"))
    assert net.to_string() == "64-128r-10"
    assert math.isclose(net.neuron.alpha, 0.9, abs_tol=1e-6) and net.neuron.v_th == 1.0
    joined = "\n".join(notes)
    assert "inferred dt = τ/r = 0.0001" in joined
    assert "spiking output layer read as tpprof's non-spiking integrator readout" in joined
    for rule in ("tp", "tess", "bptt"):
        assert estimate(make_config(net, rule)) == estimate(make_config("64-128r-10", rule))

    seq = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(40, 32),
                              snn.Leaky(beta=torch.full((32,), 0.95), threshold=torch.ones(32), init_hidden=True),
                              torch.nn.Linear(32, 10),
                              snn.Leaky(beta=torch.full((10,), 0.9), threshold=torch.ones(10), init_hidden=True,
                                        output=True))
    g2 = export_to_nir(seq, torch.randn(1, 40), ignore_dims=[0])
    net2, notes2 = read_nir_net(_write(g2, tmp_path / "seq.nir"))
    assert net2.to_string() == "40-32-10"
    assert math.isclose(net2.neuron.alpha, 0.95, abs_tol=1e-6)
    assert any("bias (32 values) not modelled" in n for n in notes2)


# --------------------------------------------------------------------------------------
# Malformed and hostile files: one-line errors, exit 2
# --------------------------------------------------------------------------------------


def _bad_files(tmp: Path) -> dict[str, tuple[str, str]]:
    """name → (path, a fragment the error must contain)."""
    out: dict[str, tuple[str, str]] = {}
    good = _write(_rec_graph(), tmp / "good.nir")
    data = Path(good).read_bytes()
    (tmp / "trunc.nir").write_bytes(data[: len(data) // 2])
    out["truncated"] = (str(tmp / "trunc.nir"), "not a readable NIR/HDF5 file")
    (tmp / "text.nir").write_text("not hdf5 at all\n")
    out["text"] = (str(tmp / "text.nir"), "not a readable NIR/HDF5 file")
    out["missing"] = (str(tmp / "nope.nir"), "does not exist")

    g = _rec_graph()
    g.nodes["fc2"] = nir.Linear(weight=np.ones((10, 99)))
    out["wrong shapes"] = (_write(g, tmp / "shape.nir"), "'fc2': weight shape (10, 99) does not fit")

    g = _rec_graph()
    g.nodes["lif1"].tau[:] = np.nan
    out["nan tau"] = (_write(g, tmp / "nan.nir"), "'lif1': tau has NaN values")

    g = _rec_graph()
    g.nodes["in"] = nir.Input(input_type=np.array([10**9]))
    out["1e9 input"] = (_write(g, tmp / "wide_in.nir"), "input shape (1000000000,)")

    import h5py

    path = _write(_rec_graph(), tmp / "wide.nir")
    with h5py.File(path, "a") as f:  # a 10^9-element weight that costs nothing on disk (never written)
        del f["node/nodes/fc1/weight"]
        f["node/nodes/fc1"].create_dataset("weight", shape=(10**9, 64), dtype="f4", chunks=(1024, 64))
    out["1e9 layer"] = (path, "elements")

    g = _rec_graph()
    g.edges.append(("fc2", "fc1"))
    out["cycle"] = (_write(g, tmp / "cycle.nir"), "(a merge or a cycle)")

    g = _rec_graph()
    g.edges = [e for e in g.edges if e != ("lif1", "fc2")] + [("lif1", "fc2"), ("fc2", "lif1")]
    out["cycle through readout"] = (_write(g, tmp / "cycle2.nir"), "'lif1': has 2 incoming edges")

    g = _rec_graph()
    g.nodes["lif1"] = _lif(128, dt=1e-3, v_leak=np.full(128, 0.5))
    out["v_leak"] = (_write(g, tmp / "leak.nir"), "v_leak")

    g = _rec_graph()
    g.metadata = {}
    g.nodes["lif1"] = _lif(128, r=np.ones(128))
    out["no dt"] = (_write(g, tmp / "nodt.nir"), "dt is missing")

    g = _rec_graph()
    g.nodes["thr"] = nir.Threshold(threshold=np.ones(10))
    g.edges = [e for e in g.edges if e != ("li", "out")] + [("li", "thr"), ("thr", "out")]
    out["unsupported"] = (_write(g, tmp / "thr.nir"), "'thr': has type Threshold")

    g = _rec_graph()
    g.nodes["lif1"] = _lif(128, alpha=0.5, dt=1e-3, tau=np.full(128, 1e-4))
    out["tau < dt"] = (_write(g, tmp / "fast.nir"), "shorter than dt")
    return out


def test_malformed_files_give_one_line_errors(tmp_path):
    for name, (path, fragment) in _bad_files(tmp_path).items():
        with pytest.raises(ConfigError) as ei:
            parse_net(path)
        msg = str(ei.value)
        assert "\n" not in msg, name
        assert fragment in msg, (name, msg)


def test_malformed_files_exit_2_from_the_cli(tmp_path, capsys):
    for name, (path, fragment) in _bad_files(tmp_path).items():
        assert main(["estimate", "--net", path]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and fragment in err, (name, err)


def test_python_m_tpprof_exit_2(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    r = subprocess.run([sys.executable, "-m", "tpprof", "estimate", "--net", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad.nir" in r.stderr, r.stderr


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 0.999))
def test_truncated_anywhere_is_a_config_error(tmp_path, cut):
    good = tmp_path / "g.nir"
    if not good.exists():
        _write(_rec_graph(), good)
    data = good.read_bytes()
    bad = tmp_path / "t.nir"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ConfigError):
        read_nir_net(bad)


@settings(max_examples=30, deadline=None)
@given(n_in=st.integers(1, 20), hidden=st.integers(1, 20), wrong=st.integers(1, 20), classes=st.integers(1, 5))
def test_random_dense_shapes_map_or_fail_cleanly(n_in, hidden, wrong, classes):
    from tpprof.nir_io import net_from_graph

    g = _rec_graph(n_in, hidden, classes)
    g.nodes["fc2"] = nir.Linear(weight=np.ones((classes, wrong)))
    if wrong == hidden:
        net, _ = net_from_graph(g)
        assert net.to_string() == f"{n_in}-{hidden}r-{classes}"
    else:
        with pytest.raises(ConfigError, match="does not fit"):
            net_from_graph(g)


def test_nir_missing_is_a_one_line_error(tmp_path, monkeypatch):
    path = _write(_rec_graph(), tmp_path / "rec.nir")
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ConfigError) as ei:
        parse_net(path)
    assert "pip install 'tpprof[nir]'" in str(ei.value) and "\n" not in str(ei.value)


# --------------------------------------------------------------------------------------
# Export and round trip
# --------------------------------------------------------------------------------------


def _checkpoint(tmp: Path, net: str, neuron: NeuronSpec, rule: str = "tp", seed: int = 3) -> tuple[Path, object]:
    import torch

    from tpprof.snn import make_learner
    from tpprof.train import save_checkpoint

    spec = parse_net(net, neuron)
    cfg = make_config(spec, rule, batch=4, steps=12)
    learner = make_learner(cfg, dtype=torch.float32, seed=seed)
    path = tmp / "model.pt"
    save_checkpoint(path, learner, cfg, {"epoch": 1})
    return path, learner


def _public_forward(path: Path, x):
    """Run a .nir file through snnTorch's PUBLIC ``import_from_nir`` (LIF → Leaky(reset to zero,
    reset_delay=False), Linear, Conv2d, AvgPool2d, Flatten) and read the readout m^T as the
    membrane ``.mem`` of tpprof's readout LIF (α = 1, a threshold it never reaches), which the
    importer maps to Leaky(β = 1). NIR's Flatten dims exclude the batch and snnTorch passes
    them to torch.nn.Flatten as they are, so nets with a Flatten run one sample at a time."""
    import snntorch.utils
    import torch
    from snntorch.import_nir import import_from_nir

    mod = import_from_nir(nir.read(path))
    has_flatten = any(type(n).__name__ == "Flatten" for n in nir.read(path).nodes.values())
    step = 1 if has_flatten else x.shape[0]
    out = []
    with torch.no_grad():
        for b0 in range(0, x.shape[0], step):
            snntorch.utils.reset(mod)
            for t in range(x.shape[1]):
                mod(x[b0:b0 + step, t])
            out.append(mod.integrator.mem.reshape(step, -1).clone())
    return torch.cat(out)


def _consumer_forward(path: Path, x):
    """Run a .nir file with nirtorch's executor and snnTorch's NIR node modules (for recurrent
    graphs, which snnTorch 1.0's public importer cannot run with nirtorch 2.6: its RNN sub-graph
    fails in nirtorch's state builder). NIR's integrator I (``--readout i``; snnTorch does not
    import it) is the only module written here: v ← v + dt·R·x; the readout LIF is read from
    its membrane."""
    import nirtorch
    import snntorch.utils
    import torch
    from snntorch.import_nir import _nir_to_snntorch_module

    graph = nir.read(path)
    dt = float(graph.metadata["dt"])

    class Integrator(torch.nn.Module):
        def __init__(self, r) -> None:
            super().__init__()
            self.gain = float(np.unique(r)[0]) * dt

        def forward(self, x, state=None):
            v = (torch.zeros_like(x) if state is None else state) + self.gain * x
            return v, v

    node_map = {k: (lambda n: _nir_to_snntorch_module(n, init_hidden=True))
                for k in (nir.Linear, nir.Affine, nir.LIF, nir.IF, nir.Conv2d, nir.Flatten, nir.AvgPool2d)}
    node_map[nir.I] = lambda n: Integrator(n.r)
    # NIR's Flatten dims exclude the batch (snnTorch's exporter writes start_dim − 1); both snnTorch's
    # and nirtorch's importers pass them to torch.nn.Flatten as-is, which would flatten the batch too.
    node_map[nir.Flatten] = lambda n: torch.nn.Flatten(int(n.start_dim) + 1, int(n.end_dim))
    mod = nirtorch.nir_to_torch(graph, node_map)
    snntorch.utils.reset(mod)
    state = None
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = mod(x[:, t], state)
    return out if isinstance(graph.nodes["integrator"], nir.I) else mod.integrator.mem


@pytest.mark.skipif(snntorch is None, reason="snntorch is not installed (pip install 'tpprof[test]')")
@pytest.mark.parametrize("net,readout", [("64-128r-10", "lif"), ("64-128r-10", "i"), ("2x8x8-c4v-c6-5", "lif"),
                                         ("30-20-20-4", "lif"), ("30-20-20-4", "i")])
def test_export_round_trip_and_independent_consumer(tmp_path, capsys, net, readout):
    import torch

    neuron = NeuronSpec(v_th=0.5, alpha=0.9, beta=0.95, reset="hard")
    ck, learner = _checkpoint(tmp_path, net, neuron)
    out = tmp_path / "net.nir"
    assert main(["export", "--checkpoint", str(ck), "--out", str(out), "--readout", readout]) == 0
    spec, _ = read_nir_net(out)
    assert replace(spec, name="") == replace(learner.cfg.net, name="")
    shape = learner.cfg.net.input_shape
    x = (torch.rand((6, 12, *shape), generator=torch.Generator().manual_seed(0)) < 0.4).float()
    m_tpprof = learner.predict(x)  # (B, C) readout potential m^T
    m_nir = _consumer_forward(out, x)
    assert m_tpprof.abs().max() > 0
    torch.testing.assert_close(m_nir, m_tpprof, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(snntorch is None, reason="snntorch is not installed (pip install 'tpprof[test]')")
@pytest.mark.parametrize("net", ["30-20-20-4", "2x8x8-c4v-c6-5"])
def test_export_loads_in_snntorchs_public_importer(tmp_path, capsys, net):
    """tpprof export → snnTorch's public import_from_nir: the same readout m^T as tpprof's forward
    (hard reset, code ordering ≡ Leaky(reset_mechanism='zero', reset_delay=False))."""
    import torch

    neuron = NeuronSpec(v_th=0.5, alpha=0.9, beta=0.95, reset="hard")
    ck, learner = _checkpoint(tmp_path, net, neuron)
    out = tmp_path / "net.nir"
    assert main(["export", "--checkpoint", str(ck), "--out", str(out)]) == 0
    shape = learner.cfg.net.input_shape
    x = (torch.rand((5, 12, *shape), generator=torch.Generator().manual_seed(1)) < 0.4).float()
    m_tpprof = learner.predict(x)
    m_snn = _public_forward(out, x)
    assert m_tpprof.abs().max() > 0
    torch.testing.assert_close(m_snn, m_tpprof, rtol=1e-5, atol=1e-5)


def test_export_meets_snn_mlir_constraints(tmp_path):
    """snn-mlir (a NIR-to-C compiler) reads LIF's dt as τ/r and requires I/IF's input gain r = 1,
    v_leak = 0, v_reset = 0 and parameters uniform per layer; tpprof's default export has no I node
    and every LIF meets those, with the readout's decay 1 − (τ/r)/τ exactly 1."""
    ck, _ = _checkpoint(tmp_path, "30-20-4", NeuronSpec(reset="hard"))
    out = tmp_path / "net.nir"
    assert main(["export", "--checkpoint", str(ck), "--out", str(out)]) == 0
    g = nir.read(out)
    kinds = {type(n).__name__ for n in g.nodes.values()}
    assert kinds <= {"Input", "Linear", "LIF", "Output"}
    for name, n in g.nodes.items():
        if isinstance(n, nir.LIF):
            for f in ("tau", "r", "v_threshold", "v_reset", "v_leak"):
                assert np.unique(getattr(n, f)).size == 1, (name, f)
            assert np.all(n.v_leak == 0) and np.all(n.v_reset == 0)
            dt = float(n.tau[0]) / float(n.r[0])
            assert math.isclose(dt, float(g.metadata["dt"]), rel_tol=1e-6)
            if name == "integrator":
                assert 1.0 - dt / float(n.tau[0]) == 1.0


def test_export_soft_reset_round_trips_with_a_note(tmp_path, capsys):
    ck, learner = _checkpoint(tmp_path, "2x8x8-c4a2-6", NeuronSpec())
    out = tmp_path / "soft.nir"
    assert main(["export", "--checkpoint", str(ck), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "soft reset" in err
    spec, notes = read_nir_net(out)
    assert replace(spec, name="") == replace(learner.cfg.net, name="")
    assert spec.neuron == NeuronSpec() and spec.layers[0].weight_std is True


def test_export_max_pool_is_an_error(tmp_path, capsys):
    ck, _ = _checkpoint(tmp_path, "2x8x8-c4p-6", NeuronSpec())
    assert main(["export", "--checkpoint", str(ck), "--out", str(tmp_path / "x.nir")]) == 2
    err = capsys.readouterr().err
    assert "max-pools" in err and err.count("\n") == 1


def test_file_from_a_newer_nir_names_both_versions(tmp_path, capsys):
    import h5py

    path = Path(_write(_rec_graph(8, 6, 3), tmp_path / "new.nir"))
    with h5py.File(path, "r+") as f:
        del f["version"]
        f.create_dataset("version", data="99.1.0", dtype=h5py.string_dtype())
        node = next(iter(f["node/nodes"].values()))
        del node["type"]
        node.create_dataset("type", data="SomeFutureNode", dtype=h5py.string_dtype())
    with pytest.raises(ConfigError) as e:
        read_nir_net(path)
    msg = str(e.value)
    assert "nir 99.1.0" in msg and f"installed nir {nir.version}" in msg and "\n" not in msg
    assert main(["estimate", "--net", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_leading_batch_of_one_stripped_when_the_weight_proves_it(tmp_path):
    rng = np.random.default_rng(0)
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([1, 8])),
                            "fc": nir.Linear(rng.normal(size=(6, 8)).astype(np.float32)),
                            "lif": _lif(6), "out_w": nir.Linear(rng.normal(size=(3, 6)).astype(np.float32)),
                            "out": nir.Output(output_type=np.array([3]))},
                     edges=[("in", "fc"), ("fc", "lif"), ("lif", "out_w"), ("out_w", "out")],
                     metadata={"dt": 1e-3}, type_check=False)
    spec, notes = read_nir_net(_write(g, tmp_path / "b1.nir"))
    assert spec.input_shape == (8,) and any("leading batch dimension" in n for n in notes)
    g.nodes["fc"] = nir.Linear(rng.normal(size=(6, 4)).astype(np.float32))  # fan-in 4 does not prove (1, 8)
    with pytest.raises(ConfigError) as e:
        read_nir_net(_write(g, tmp_path / "b2.nir"))
    assert "input shape (1, 8)" in str(e.value)


def test_nir_dt_flag_gives_the_step_and_metadata_wins(tmp_path, capsys):
    g = _rec_graph(8, 6, 3, dt=1e-3)
    for node in g.nodes.values():
        if isinstance(node, nir.LIF):
            node.r = np.ones_like(node.r)  # r = 1: dt cannot come from r
    g.metadata = {}
    path = _write(g, tmp_path / "nodt.nir")
    assert main(["estimate", "--net", path]) == 2
    assert "--nir-dt" in capsys.readouterr().err
    assert main(["estimate", "--net", path, "--nir-dt", "1e-3"]) == 0
    assert "dt = 0.001 from --nir-dt" in capsys.readouterr().err
    g.metadata = {"dt": 1e-3}
    path2 = _write(g, tmp_path / "dt.nir")
    assert main(["estimate", "--net", path2, "--nir-dt", "5e-4"]) == 0
    assert "--nir-dt 0.0005 ignored" in capsys.readouterr().err
    assert main(["estimate", "--net", path2, "--nir-dt", "-1"]) == 2
