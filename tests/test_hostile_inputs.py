"""Hostile inputs that used to give a traceback or a wrong exit 0 (issue 23: T2, W1, W3, ...):
each is now a one-line error and exit 2."""

from __future__ import annotations

import pytest

from tpprof.cli import main
from tpprof.config import ConfigError, make_config


def _one_line_exit_2(argv, capsys, fragment: str) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (argv, rc, err)
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err


@pytest.mark.parametrize("factors", ["nan,1,1,1", "inf,0.5,1,1", "0.2,0.5,1e400,1", "0.2,-0.5,1,1",
                                     "1.5,0.5,1,1", "0.2,0.5,1,-1", "0.2,0.5,1,1e9"])
def test_w1_tess_factors_finite_and_in_range(factors, capsys):
    _one_line_exit_2(["estimate", "--net", "12-16-3", "--rule", "tess", f"--tess-factors={factors}"], capsys,
                     "tess_factors")
    with pytest.raises(ConfigError):
        make_config("12-16-3", "tess", tess_factors=tuple(float(x) for x in factors.split(",")))


def test_w1_edges_of_the_ranges_are_accepted():
    cfg = make_config("12-16-3", "tess", tess_factors=(0.0, 1.0, 0.0, 1000.0))
    assert cfg.rule.tess_factors == (0.0, 1.0, 0.0, 1000.0)


def test_t2_grid_protocol_not_a_table(tmp_path, capsys):
    g = tmp_path / "g.toml"
    g.write_text('protocol = 3\n[[grid]]\nnet = "12-16-3"\nrule = "tp"\n')
    _one_line_exit_2(["measure", "--dry-run", "--grid", str(g)], capsys, "not a table")


def test_w3_report_folders_without_the_users_data(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_exit_2(["report", "--measurements", str(empty), "--out", str(tmp_path / "r")], capsys,
                     "holds no measurement file")
    _one_line_exit_2(["report", "--results", str(empty), "--out", str(tmp_path / "r")], capsys,
                     "holds none of the results files")
    (empty / "x.csv").write_text("rule,net\n")  # a CSV, but no valid row
    pytest.importorskip("plotly")
    from tpprof import plots
    from tpprof.errors import UserError

    try:
        plots.find_browser()
    except UserError:
        pytest.skip("no browser for static export (the check above runs before it)")
    _one_line_exit_2(["report", "--measurements", str(empty), "--out", str(tmp_path / "r")], capsys,
                     "no valid measurement row")


def test_t5_app_address_that_does_not_resolve_or_bind(capsys):
    import socket

    _one_line_exit_2(["app", "--address", "no.such.host.invalid", "--port", "8597"], capsys, "does not resolve")
    with socket.socket() as s:  # a port in use: the server would print a traceback
        s.bind(("127.0.0.1", 0))
        s.listen()
        _one_line_exit_2(["app", "--address", "127.0.0.1", "--port", str(s.getsockname()[1])], capsys,
                         "cannot serve on")
