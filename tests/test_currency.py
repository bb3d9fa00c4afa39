"""Config and Grid are the currency: one vocabulary object, measurement rows that rebuild their
Config losslessly, old files that still load and append, and the sweep CLI on a Grid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tpprof import config, store
from tpprof.analytic import estimate
from tpprof.config import Grid, make_config
from tpprof.errors import UserError
from tpprof.store import FIELDNAMES, append_row, load
from tpprof.store import config_of
from tpprof.validate import validate_rows

from test_store_schema import ok_row  # noqa: E402


def test_one_category_vocabulary() -> None:
    import tpprof.analytic as analytic
    import tpprof.analytic.terms as terms
    import tpprof.snn.base as base

    for user in (analytic, terms, store, base):
        assert user.CATEGORIES is config.CATEGORIES
    assert store.KEY_COLUMNS is config.POINT_KEY


def test_row_rebuilds_its_config_losslessly(tmp_path: Path) -> None:
    from tpprof.measure.protocol import config_columns

    cfg = make_config("shd-rec", "tp", batch=8, classes=30, steps=7, lr=3e-3, train_s=True, similarity="dot",
                      cadence="sequence")
    p = tmp_path / "m.csv"
    append_row(p, ok_row(**config_columns(cfg, "cpu", "shd-rec")))
    (row,) = load(p).rows
    assert config_of(row) == cfg
    assert config_of(row).net.neuron == cfg.net.neuron  # the preset's neuron, not a default one


def test_rows_without_config_json_still_load_and_append(tmp_path: Path) -> None:
    p = tmp_path / "old.csv"
    # the schema before config_json (and the interpreter and target columns that came after it) existed
    old = list(store.PRE_TARGET_FIELDNAMES[:-3])
    pd.DataFrame([{k: v for k, v in ok_row().items() if k in old}], columns=old).to_csv(p, index=False)
    append_row(p, ok_row(steps=25))
    rows = load(p).rows
    assert [r["steps"] for r in rows] == [100, 25]
    assert config_of(rows[0]) == make_config("shd", "tp", batch=128, classes=20, steps=100)


def test_bad_config_json_is_a_one_line_error() -> None:
    with pytest.raises(UserError, match="config_json"):
        config_of(ok_row(config_json="{not json"))


def test_validate_uses_the_config_json(tmp_path: Path) -> None:
    from tpprof.measure.protocol import config_columns

    cfg = make_config("40-16-5", "tp", batch=4, steps=3, train_s=True)
    peak = estimate(cfg).peak_bytes
    r = ok_row(**config_columns(cfg, "cpu", "40-16-5"), peak_bytes=peak)
    (pt,) = validate_rows([r]).points
    assert pt.analytic_peak == peak  # train_s (S trained) counted: the flat columns would lose it
    assert pt.analytic_peak != estimate(cfg.with_(train_s=False)).peak_bytes


def test_sweep_cli_equals_estimate(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    subprocess.run([sys.executable, "-m", "tpprof", "sweep", "--net", "shd", "--rule", "tp,bptt", "--batch", "1,64",
                    "--classes", "10,300", "--steps", "5,50", "--out", str(out)], check=True, capture_output=True)
    df = pd.read_parquet(out)
    assert len(df) == 16
    for r in df.to_dict("records"):
        bd = estimate(make_config("shd", r["rule"], batch=r["batch"], classes=r["classes"], steps=r["steps"]))
        assert (r["peak_bytes"], r["total_bytes"]) == (bd.peak_bytes, bd.total_bytes)


def test_grid_point_order_is_the_product() -> None:
    g = Grid(make_config("shd"), (("rule", ("tp", "tess")), ("batch", (8, 64))))
    assert [(c.rule.name, c.workload.batch) for c in g.configs()] == [("tp", 8), ("tp", 64), ("tess", 8), ("tess", 64)]


def test_every_learner_has_an_implementation_model() -> None:
    from tpprof.analytic.implementation import IMPLEMENTATIONS
    from tpprof.config import TRAINABLE_RULES
    from tpprof.snn import LEARNERS

    assert set(IMPLEMENTATIONS) == set(TRAINABLE_RULES) == set(LEARNERS)
