"""The algorithm-only accounting ("no framework temporaries"): the full model's algorithmic terms
without the implementation's, selectable by name in the API, the CLI and the views."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from tpprof.analytic import ACCOUNTING_LABELS, ACCOUNTINGS, estimate, estimate_grid
from tpprof.cli import main
from tpprof.cli.config_flags import config_from_values as cfg_of
from tpprof.config import Grid, make_config


@pytest.mark.parametrize("net, rule", [("shd", "tp"), ("shd", "tess"), ("700-450r-20", "bptt"),
                                       ("2x32x32-c16p-10", "tp")])
def test_algorithm_is_full_without_implementation_terms(net, rule) -> None:
    cfg = make_config(net, rule)
    alg, full = estimate(cfg, "algorithm"), estimate(cfg, "full")
    assert alg.terms == estimate(cfg, "full", implementation=False).terms
    assert alg.by_category()["implementation"] == 0 and full.by_category()["implementation"] > 0
    assert alg.peak_bytes < full.peak_bytes
    assert alg.accounting == "algorithm" and any("algorithm only" in x for x in alg.not_modelled)


def test_grid_agrees_with_estimate_under_algorithm() -> None:
    grid = Grid(make_config("shd", "tp"), (("classes", (10, 300)), ("rule", ("tp", "tess"))))
    df = estimate_grid(grid, "algorithm")
    for row, cfg in zip(df.to_dict("records"), grid.configs()):
        assert row["peak_bytes"] == estimate(cfg, "algorithm").peak_bytes
        assert row["accounting"] == "algorithm" and row["implementation_bytes"] == 0


def test_every_accounting_has_one_label() -> None:
    assert set(ACCOUNTING_LABELS) == set(ACCOUNTINGS)
    assert "no framework temporaries" in ACCOUNTING_LABELS["algorithm"]


def _cli(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0
    return out.getvalue()


def test_cli_selects_and_labels_algorithm_only() -> None:
    text = _cli(["estimate", "--net", "shd", "--accounting", "algorithm"])
    assert "algorithm only: no framework temporaries" in text.splitlines()[0]
    doc = json.loads(_cli(["estimate", "--net", "shd", "--accounting", "algorithm", "--json"]))
    assert doc["peak_bytes"] == estimate(make_config("shd", "tp"), "algorithm").peak_bytes
    sweep = _cli(["sweep", "--net", "shd", "--rule", "tp,tess", "--accounting", "algorithm"])
    assert sweep.count("algorithm") == 2


def test_figure5_frame_algorithm_and_dedup() -> None:
    from tpprof import views

    df = views.figure5_frame(cfg_of(net="shd"), "algorithm", points=4)
    row = df.iloc[-1]
    cfg = make_config("shd", "tp", batch=int(row["batch"]), classes=int(row["classes"]))
    assert row["tp_bytes"] == estimate(cfg, "algorithm").peak_bytes
    dedup = views.figure5_frame(cfg_of(net="shd", target_rows="classes"), "paper", points=6)
    assert (dedup["G"] >= 1).all()  # (B + K)LH <= BLH + CLH (issue 11)
    full = views.figure5_frame(cfg_of(net="shd", target_rows="classes"), "full", points=4).iloc[-1]
    from tpprof.config import RuleSpec
    cfg_d = make_config("shd", RuleSpec(name="tp", target_rows="classes"), batch=int(full["batch"]),
                        classes=int(full["classes"]))
    assert full["tp_bytes"] == estimate(cfg_d, "full").peak_bytes
