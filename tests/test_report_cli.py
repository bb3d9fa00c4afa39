"""`tpprof report` writes every figure as PDF, SVG, PNG + JSON and an index; each file opens."""

from __future__ import annotations

import json
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("tpprof.analytic.paper")
from tpprof import store  # noqa: E402
from tpprof.analytic import estimate  # noqa: E402
from tpprof.cli import main  # noqa: E402
from tpprof.config import make_config  # noqa: E402
from test_store_schema import measurement_row  # noqa: E402  (tests/ is on sys.path under pytest)

HAS_BROWSER = any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))


def _check_files(out: Path, stem: str) -> dict:
    assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    root = ET.parse(out / f"{stem}.svg").getroot()
    assert root.tag.endswith("svg")
    png = (out / f"{stem}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert w >= 600 and h >= 400
    return json.loads((out / f"{stem}.json").read_text())


@pytest.mark.skipif(not HAS_BROWSER, reason="static export needs Chromium (apt-get install chromium)")
def test_report_writes_every_figure(tmp_path, monkeypatch, capsys) -> None:
    meas = tmp_path / "meas.csv"
    for rule in ("tp", "bptt"):
        for t in (25, 100):
            pk = estimate(make_config("700-32-10", rule, batch=4, classes=10, steps=t)).peak_bytes
            store.append_row(meas, measurement_row(rule, t, int(pk * 1.01)))
    res = tmp_path / "results"
    res.mkdir()
    pd.DataFrame({"speaker": ["a"] * 4, "shots": ["0", "1", "5", "all"], "accuracy": [0.8, 0.9, 0.93, 0.97],
                  "seed": [0] * 4}).to_csv(res / "finetune.csv", index=False)
    from tpprof import compare

    compare.write_results(res / "compare_tiny.csv", [
        {"label": lab, "rule": lab, "seed": s, "test_final": a, "batch": 8, "classes": 10, "data": "x.npz",
         "task": "labels", "net_string": "12-16-10", "peak_bytes_full": pk, "peak_bytes_algorithm": pk // 2}
        for lab, pk, accs in (("tp", 3 * 2**20, (0.8, 0.82)), ("bptt", 9 * 2**20, (0.9, 0.92)))
        for s, a in enumerate(accs)])
    out = tmp_path / "fig"
    rc = main(["report", "--out", str(out), "--measurements", str(meas), "--results", str(res), "--budget", "4MiB"])
    assert rc == 0
    stems = ["figure5", "figure5_full", "regime_map", "scaling", "measured_vs_analytic", "t_invariance", "finetune",
             "compare_tiny"]
    for stem in stems:
        prov = _check_files(out, stem)
        assert prov["figure"] == stem and prov["versions"]["tpprof"]
        assert "torch" in prov["versions"]
    f5 = _check_files(out, "figure5")
    assert f5["label"].startswith("reconstructed") and f5["config"]["accounting"] == "paper"
    assert f5["config"]["base_config"]["net"]["string"] == "700-450-20"
    assert _check_files(out, "regime_map")["device"]["budget_bytes"] == 4 * 2**20
    assert _check_files(out, "measured_vs_analytic")["measurement_files"] == [str(meas)]
    index = (out / "index.html").read_text()
    for stem in stems:
        assert f"{stem}.svg" in index
    assert "accuracy.svg" not in index  # no accuracy.csv given: figure left out, not faked
    # The comparison: a figure and its ranking table (4 MiB budget, a custom device: full accounting).
    assert _check_files(out, "compare_tiny")["accounting"] == "full"
    assert "<td>1</td><td>tp</td><td>81.0 ± 1.4</td>" in index and "<td>bptt</td>" in index
    assert "index.html" in capsys.readouterr().out


def test_report_bad_flags_are_one_line_errors(tmp_path, capsys) -> None:
    assert main(["report", "--out", str(tmp_path), "--measurements", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tpprof report: error: measurements:") and "\n" not in err
    assert main(["report", "--out", str(tmp_path), "--budget", "lots"]) == 2
    assert "budget:" in capsys.readouterr().err


def test_report_without_a_browser_says_how_to_install(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser on PATH
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    assert main(["report", "--out", str(tmp_path / "o")]) == 2
    assert "apt-get install chromium" in capsys.readouterr().err


def test_app_command_line(monkeypatch) -> None:
    from tpprof.cli import app_cmds, build_parser

    args = build_parser().parse_args(["app", "--port", "8599"])
    assert args.port == 8599 and args.address == "127.0.0.1"
    cmd = app_cmds.app_command(args.port, args.address)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]).is_file()
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["app", "--port", "99999"])
    assert e.value.code == 2


@pytest.mark.parametrize("browser", [True, False])
def test_report_error_is_one_line_with_no_progress_bar(tmp_path, monkeypatch, capsys, browser) -> None:
    """An --out of 5,000 characters fails in one line, with Chromium or without: the progress bar
    is drawn only after every input was checked (README's test command on a machine without a browser)."""
    from tpprof import plots

    if browser:
        monkeypatch.setattr(plots, "find_browser", lambda: "/no/browser/needed")
    else:
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("BROWSER_PATH", raising=False)
    assert main(["report", "--out", str(tmp_path / ("9" * 5000))]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "fig" not in err.split("error:", 1)[0], err[:300]
