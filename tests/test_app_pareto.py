"""The dashboard's memory × time page: runs clean, plots the Pareto table, follows the widgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tpprof.analytic.paper")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "tpprof" / "app" / "streamlit_app.py")
PAGE = "Memory × time"


def _run(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["page"] = PAGE
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _labels(at: AppTest) -> list[str]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return [t["name"] for t in spec["data"]]


@pytest.mark.parametrize("shipped", [False, True])
def test_pareto_page_runs_with_and_without_a_calibration(shipped: bool, tmp_path, monkeypatch) -> None:
    from tpprof.resources import shipped_path

    # no step times (an empty folder): MACs stand in for the time
    monkeypatch.setenv("TPPROF_MEASUREMENTS_DIR", str(shipped_path("measurements") if shipped else tmp_path))
    at = _run()
    names = _labels(at)
    assert names[0] == "Pareto front" and len(names) > 5
    text = " ".join(c.value for c in at.caption)
    assert ("held-out error" in text) == shipped


def test_pareto_page_follows_the_steps_widget(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TPPROF_MEASUREMENTS_DIR", str(tmp_path))
    at = _run(pa_t="8")
    df = at.dataframe[0].value
    assert "bptt-ckpt k=8" in set(df["label"]) and "tbptt K=8" in set(df["label"])
    at.number_input(key="pa_t").set_value(40).run()
    assert "tbptt K=40" in set(at.dataframe[0].value["label"])
