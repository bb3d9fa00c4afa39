"""Files written by the field's libraries with their OWN exporters (tests/fixtures/nir, made by
make_fixtures.py there; the suite needs none of those libraries): each is read with the right
network (widths, recurrence, conv) or refused in one line naming the cause, through the Python
reader and the CLI, and its weights either load into a learner or are refused in one line
naming the node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nir = pytest.importorskip("nir")

from tpprof.cli import main  # noqa: E402
from tpprof.errors import UserError  # noqa: E402
from tpprof.nir_io import read_nir_file  # noqa: E402

HERE = Path(__file__).parent / "fixtures" / "nir"
EXPECTED = json.loads((HERE / "expected.json").read_text())
CASES = [(name, case) for name, cases in EXPECTED.items() if not name.startswith("_") for case in cases]


def test_every_fixture_has_an_expectation():
    files = {p.name for p in HERE.glob("*.nir")}
    assert files == {n for n in EXPECTED if not n.startswith("_")}
    libs = {n.split("_")[0] for n in files}
    assert libs == {"snntorch", "norse", "sinabs", "spikingjelly", "rockpool"}
    assert all(p.stat().st_size < 32_000 for p in HERE.glob("*.nir"))


@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}-dt{c['nir_dt']}" for n, c in CASES])
def test_fixture_maps_or_is_refused_in_one_line(name, case):
    path = HERE / name
    if "error" in case:
        with pytest.raises(UserError) as e:
            read_nir_file(path, dt=case["nir_dt"])
        msg = str(e.value)
        assert case["error"] in msg and "\n" not in msg, msg
        return
    net, notes, weights = read_nir_file(path, dt=case["nir_dt"])
    assert net.to_string() == case["net"]
    assert net.neuron.alpha == pytest.approx(case["alpha"], abs=1e-6)
    if case["weights"] is None:
        weights.check()
        shapes = {k: v.shape for k, v in weights.tensors.items()}
        assert shapes["readout.W"][0] == net.readout
        assert shapes["layer1.W"][0] == net.layers[0].width
        assert ("layer1.R" in shapes) == (net.layers[0].kind == "recurrent")
    else:
        with pytest.raises(UserError) as e:
            weights.check()
        assert case["weights"] in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}-dt{c['nir_dt']}" for n, c in CASES])
def test_fixture_through_the_cli(name, case, capsys):
    argv = ["estimate", "--net", str(HERE / name), "--rule", "tp", "--batch", "2", "--steps", "5"]
    if case["nir_dt"] is not None:
        argv += ["--nir-dt", str(case["nir_dt"])]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if "error" in case:
        assert rc == 2 and err.count("\n") == 1 and case["error"] in err
    else:
        assert rc == 0 and f"net {case['net']} " in out
