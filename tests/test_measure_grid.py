"""Grid expansion, TOML files and the `tpprof measure` command line (no learner runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpprof.cli import main
from tpprof.errors import UserError
from tpprof.measure.grid import Protocol, expand, load_grid

ROOT = Path(__file__).resolve().parents[1]


def test_expand_product_and_union_dedupes() -> None:
    pts = expand([{"rule": ["tp", "bptt"], "net": "shd", "batch": [4, 8], "steps": [25]},
                  {"rule": "tp", "net": "shd", "batch": 4, "steps": 25}])
    assert [p.label() for p in pts] == ["tp shd B=4 C=20 T=25 fp32 cpu", "tp shd B=8 C=20 T=25 fp32 cpu",
                                        "bptt shd B=4 C=20 T=25 fp32 cpu", "bptt shd B=8 C=20 T=25 fp32 cpu"]
    (p,) = expand([{"rule": "tess", "net": "700-450-20", "batch": 2, "classes": 100, "steps": 3}])
    assert p.cfg.net.readout == 100 and p.cfg.workload.classes == 100


@pytest.mark.parametrize("block,match", [
    ({"rule": "eprop", "net": "shd", "batch": 4, "steps": 3}, "no torch learner"),
    ({"rule": "tp", "net": "shd", "batch": 4}, "lacks 'steps'"),
    ({"rule": "tp", "net": "shd", "batch": 4, "steps": 3, "colour": 1}, "unknown key"),
    ({"rule": "tp", "net": "shd", "batch": 4, "steps": 3, "device": "tpu"}, "device"),
    ({"rule": "tp", "net": "shd", "batch": [], "steps": 3}, "empty list"),
])
def test_expand_rejects_bad_blocks(block: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        expand([block])


def test_protocol_validation() -> None:
    with pytest.raises(UserError, match="batches"):
        Protocol(batches=0)
    with pytest.raises(UserError, match="timeout"):
        Protocol(timeout=-1)


def test_shipped_default_grid_has_the_required_coverage() -> None:
    blocks, proto = load_grid(ROOT / "measurements" / "default_grid.toml")
    pts = expand(blocks)
    assert len(pts) >= 50 and proto["threads"] == 1
    rules = {p.cfg.rule.name for p in pts}
    steps = {p.cfg.workload.steps for p in pts}
    nets = {p.net for p in pts}
    assert rules == {"tp", "tess", "bptt"} and {25, 400} <= steps
    assert {"shd", "shd-rec", "nmnist", "dvsgesture-vgg9"} <= nets
    assert {p.cfg.net.depth for p in pts} >= {1, 2, 3}


def test_load_grid_errors(tmp_path: Path) -> None:
    bad = tmp_path / "g.toml"
    bad.write_text("[[grid]\n")
    with pytest.raises(UserError, match="does not parse"):
        load_grid(bad)
    bad.write_text("[protocol]\nbatches = 1\n")
    with pytest.raises(UserError, match="no \\[\\[grid\\]\\] block"):
        load_grid(bad)
    bad.write_text("[protocol]\nspeed = 1\n[[grid]]\nrule='tp'\n")
    with pytest.raises(UserError, match="unknown key"):
        load_grid(bad)


def test_cli_measure_dry_run_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "m.csv")
    assert main(["measure", "--net", "shd,nmnist", "--rule", "tp,tess", "--batch", "4,8", "--steps", "25",
                 "--classes", "12", "--out", out, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and lines[0] == "tp shd B=4 C=12 T=25 fp32 cpu"
    assert main(["measure", "--net", "shd", "--batch", "4,x", "--steps", "25", "--out", out]) == 2
    assert "batch: 'x' is not an integer" in capsys.readouterr().err
    assert main(["measure", "--net", "shd", "--out", out]) == 2
    assert main(["measure", "--grid", "nope.toml", "--out", out]) == 2
    assert main(["measure", "--grid", str(ROOT / "measurements" / "default_grid.toml"), "--net", "shd",
                 "--out", out]) == 2
    assert not Path(out).exists()


def test_measure_and_validate_modules_stay_torch_free() -> None:
    import subprocess
    import sys

    code = ("import sys, tpprof.cli, tpprof.store, tpprof.measure.grid, tpprof.validate; "
            "tpprof.cli.build_parser(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("extra", ['batch = [true]', 'batch = [2.7]', 'batch = ["16"]', 'batch = [[16]]',
                                   'batch = [nan]', 'batch = [inf]', 'batch = [{a = 1}]', 'dtype = [1]',
                                   'batch = [16]\n[protocol]\nseed = "abc"', 'batch = [16]\n[protocol]\nrss = "no"',
                                   'batch = [16]\n[protocol]\ntimeout = inf', 'batch = [16]\n[protocol]\nseed = -1',
                                   'batch = [16]\n[protocol]\nrepeats = 1e400'])
def test_grid_values_are_type_checked_before_any_point(tmp_path, extra) -> None:
    from tpprof.measure.grid import Protocol, expand, load_grid

    g = tmp_path / "g.toml"
    g.write_text('[[grid]]\nrule = ["tp"]\nnet = ["shd"]\nsteps = [5]\n' + extra + "\n")
    with pytest.raises(UserError) as e:
        blocks, proto = load_grid(g)
        Protocol(**proto)
        expand(blocks)
    assert "\n" not in str(e.value)


def test_grid_size_is_capped_before_expanding() -> None:
    from tpprof.measure.grid import MAX_POINTS, expand

    big = {"rule": ["tp"], "net": ["shd"], "batch": list(range(1, 401)), "steps": list(range(1, 401))}
    assert 400 * 400 > MAX_POINTS
    with pytest.raises(UserError, match="points"):
        expand([big])
