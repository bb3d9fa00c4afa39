"""Every dashboard page under Streamlit's AppTest: runs clean, and key widgets change the data."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tpprof.analytic.paper")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tpprof import store  # noqa: E402
from tpprof.analytic import estimate  # noqa: E402
from tpprof.cli.config_flags import config_from_values as cfg_of
from tpprof.config import make_config  # noqa: E402
from test_store_schema import measurement_row  # noqa: E402  (tests/ is on sys.path under pytest)

APP = str(Path(__file__).resolve().parent.parent / "tpprof" / "app" / "streamlit_app.py")


def _app(page: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if page:
        at.query_params["page"] = page
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _arr(v) -> np.ndarray:
    """A plotly JSON array (a list, or plotly's base64 ``bdata`` form) as numpy."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v)


def _same(a, b) -> bool:
    x, y = _arr(a), _arr(b)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else x == y))


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(autouse=True)
def _no_shipped_data(tmp_path_factory, monkeypatch):
    """Pages read an empty measurements/ and results/ unless a test provides files."""
    monkeypatch.setenv("TPPROF_MEASUREMENTS_DIR", str(tmp_path_factory.mktemp("meas")))
    monkeypatch.setenv("TPPROF_RESULTS_DIR", str(tmp_path_factory.mktemp("res")))


def test_figure5_page_accounting_and_net_change_the_data() -> None:
    at = _app()
    _clean(at)
    (spec,) = _charts(at)
    heat = spec["data"][0]
    assert heat["type"] == "heatmap" and "reconstructed" in spec["layout"]["title"]["text"]
    paper_z = heat["z"]
    at.selectbox(key="f5_acc").set_value("full").run()
    _clean(at)
    full = _charts(at)[0]["data"][0]
    assert not _same(full["z"], paper_z) and "full accounting" in _charts(at)[0]["layout"]["title"]["text"]
    at.text_input(key="f5_net").set_value("700-64-64-20").run()
    _clean(at)
    assert not _same(_charts(at)[0]["data"][0]["z"], full["z"])
    # The hover carries both memories and the ratio.
    assert "TP: " in heat["hovertemplate"] and "G = " in heat["hovertemplate"]
    assert "TESS" in str(heat["customdata"])  # the rule TP is set against, named per cell
    at.selectbox(key="f5_vs").set_value("best").run()
    best = _charts(at)[0]
    assert "best alternative" in best["layout"]["title"]["text"] and not _same(best["data"][0]["z"], full["z"])


def test_figure5_bad_net_string_is_one_line_error() -> None:
    at = _app(f5_net="700-abc-10")
    assert not at.exception
    assert len(at.error) == 1 and "net" in at.error[0].value and "\n" not in at.error[0].value
    assert not _charts(at)


def test_view_settings_come_from_the_url() -> None:
    at = _app(f5_acc="paper+s")
    _clean(at)
    assert at.selectbox(key="f5_acc").value == "paper+s"
    assert "+ S" in _charts(at)[0]["layout"]["title"]["text"]


def test_regimes_page_budget_changes_the_map_and_bad_budget_errors() -> None:
    at = _app("Device regimes", rg_src="typed budget")
    _clean(at)
    specs = _charts(at)
    assert len(specs) == 3  # regime map, TP against the best alternative, headroom bars
    assert "best other learner" in specs[1]["layout"]["title"]["text"]
    z1 = specs[0]["data"][0]["z"]
    at.text_input(key="rg_budget").set_value("64MiB").run()
    _clean(at)
    assert not _same(_charts(at)[0]["data"][0]["z"], z1)
    # Inverse design table: largest batch per rule at C = 100 (the page's last table; the answer's is first).
    inv = at.dataframe[-1].value
    assert list(inv["rule"]) == ["TP", "TESS", "BPTT"] and (inv["max_batch"] >= 0).all()
    at.text_input(key="rg_budget").set_value("12 parsecs").run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("budget:")


def _comparison_file(folder: Path) -> list[dict]:
    """A comparison results file for the fsdd net (synthetic accuracies; peaks chosen around 1 MiB)."""
    from tpprof import compare

    spec = [("tp", "tp", (0.90, 0.92, 0.91), 900_000), ("tess", "tess", (0.88, 0.86, 0.90), 800_000),
            ("bptt", "bptt", (0.96, 0.97, 0.95), 8_000_000), ("ottt", "ottt", (0.80, 0.82, 0.81), 700_000),
            ("tp-classes", "tp", (0.90, 0.92, 0.91), 850_000)]
    rows = [{"label": lab, "rule": rule, "mode": "default", "seed": s, "test_final": a, "batch": 32, "epochs": 8,
             "data": "fsdd", "task": "digit", "net_string": "40-256-256-10", "classes": 10, "steps": 50,
             "optimizer": "adam", "peak_bytes_full": peak, "peak_bytes_algorithm": peak // 2}
            for lab, rule, accs, peak in spec for s, a in enumerate(accs)]
    compare.write_results(folder / "compare_fsdd_digit.csv", rows)
    return rows


def test_device_page_leads_with_the_ranked_answer(tmp_path, monkeypatch) -> None:
    from tpprof import compare
    from tpprof.config import Device

    rows = _comparison_file(tmp_path)
    monkeypatch.setenv("TPPROF_RESULTS_DIR", str(tmp_path))
    at = _app("Device regimes", rg_src="typed budget", rg_budget="1MiB", rg_preset="fsdd")
    _clean(at)
    dev = Device("budget 1MiB", 2**20)
    want = compare.rank(compare.summarise(rows), dev)  # full accounting: a typed budget is no chip
    best = [r for r in want if r["rank"]]
    assert [r["label"] for r in best] == ["tp-classes", "tp", "tess", "ottt"]  # by accuracy, a tie by memory
    assert "that fits budget 1MiB and learns there: tp-classes**" in at.success[0].value
    table = at.dataframe[0].value
    assert list(table["learner"]) == [r["label"] for r in want]
    assert list(table["rank"])[:4] == ["1", "2", "3", "4"] and table["fits"].iloc[-1] == "no"  # bptt: too large
    assert any("TP: **2 of 4** — +0.0 accuracy points, 1.06× the peak of tp-classes" in m.value for m in at.markdown)
    charts = _charts(at)
    assert "Accuracy against peak memory" in charts[0]["layout"]["title"]["text"]
    # The paper's TP-vs-TESS view stays below, labelled as such.
    assert any("the paper's view" in m.value for m in at.markdown)
    # A larger budget: BPTT fits and is the most accurate.
    at.text_input(key="rg_budget").set_value("64MiB").run()
    _clean(at)
    assert "learns there: bptt**" in at.success[0].value
    assert any("TP: **3 of 5**" in m.value for m in at.markdown)


def test_device_page_without_results_ranks_by_memory() -> None:
    at = _app("Device regimes", rg_src="typed budget", rg_budget="64MiB")
    _clean(at)
    assert "no accuracy known" in at.success[0].value
    table = at.dataframe[0].value
    assert "accuracy %" not in table.columns and len(table) == 10  # every trainable learner and TP's two modes
    from tpprof import compare
    from tpprof.config import Device, make_config

    want = compare.memory_frame(make_config("shd", "tp"), Device("b", 64 * 2**20))
    assert list(table["learner"]) == list(want["label"])


def test_regimes_page_catalogue_device_and_custom_net() -> None:
    at = _app("Device regimes")
    _clean(at)
    if at.radio(key="rg_src").options[0] == "catalogue device":
        names = at.selectbox(key="rg_device").options
        z1 = _charts(at)[0]["data"][0]["z"]
        at.selectbox(key="rg_device").set_value(names[-1]).run()
        _clean(at)
        assert not _same(_charts(at)[0]["data"][0]["z"], z1) or len(names) == 1
        from tpprof.analytic.devices import load_catalogue

        both = [d for d in load_catalogue() if d.on_chip_bytes and d.off_chip_bytes
                and d.on_chip_bytes != d.off_chip_bytes]
        if both:  # on-chip memory alone is a different (smaller) budget: a different map
            at.selectbox(key="rg_device").set_value(both[0].name).run()
            z_off = _charts(at)[0]["data"][0]["z"]
            at.radio(key="rg_mem").set_value("on-chip").run()
            _clean(at)
            assert "on-chip" in _charts(at)[0]["layout"]["title"]["text"]
            assert not _same(_charts(at)[0]["data"][0]["z"], z_off)
    at.selectbox(key="rg_preset").set_value("custom").run()
    at.text_input(key="rg_net").set_value("700-450-x").run()
    assert not at.exception and len(at.error) == 1 and at.error[0].value.startswith("net:")


def test_scaling_page_sweep_variable_changes_the_data() -> None:
    at = _app("Scaling")
    _clean(at)
    depth = _charts(at)[0]
    at.radio(key="sc_var").set_value("steps").run()
    _clean(at)
    steps = _charts(at)[0]
    assert not _same(depth["data"][0]["x"], steps["data"][0]["x"])
    assert steps["layout"]["xaxis"]["title"]["text"] == "steps"


def _write_measurements(path: Path, factor: float = 1.03) -> None:
    for rule in ("tp", "tess", "bptt"):
        for t in (25, 100):
            cfg = make_config("700-32-10", rule, batch=4, classes=10, steps=t)
            store.append_row(path, measurement_row(rule, t, int(estimate(cfg).peak_bytes * factor)))


def test_measured_page_shows_shipped_files_and_survives_a_bad_upload(tmp_path, monkeypatch) -> None:
    _write_measurements(tmp_path / "ref.csv")
    monkeypatch.setenv("TPPROF_MEASUREMENTS_DIR", str(tmp_path))
    at = _app("Measured vs analytic")
    _clean(at)
    scatter, tinv = _charts(at)
    ys = [y for tr in scatter["data"] if tr.get("mode") == "markers" for y in _arr(tr["y"])]
    assert len(ys) == 6
    assert "T-invariance" in tinv["layout"]["title"]["text"]
    band = scatter["data"][0]["y"]
    at.slider(key="ms_tol").set_value(0.2).run()
    _clean(at)
    assert not _same(_charts(at)[0]["data"][0]["y"], band)
    # A broken upload: rejected rows listed, the shipped points still shown, no traceback.
    at.get("file_uploader")[0].set_value(("bad.csv", b"rule,net\ntp,shd\n", "text/csv")).run()
    assert not at.exception
    assert any("bad.csv" in e.value for e in at.error)
    assert any("rejected" in w.value for w in at.warning)
    assert len(_charts(at)) == 2


def test_measured_page_accepts_a_valid_upload(tmp_path) -> None:
    _write_measurements(tmp_path / "up.csv", factor=1.10)
    at = _app("Measured vs analytic")
    _clean(at)
    assert not _charts(at) and any("No measurements yet" in i.value for i in at.info)
    at.get("file_uploader")[0].set_value(("up.csv", (tmp_path / "up.csv").read_bytes(), "text/csv")).run()
    _clean(at)
    assert len(_charts(at)) == 2 and any("6 valid" in s.value for s in at.success)


def test_training_page_without_and_with_results(tmp_path, monkeypatch) -> None:
    at = _app("Training")
    _clean(at)
    assert not _charts(at) and at.info
    pd.DataFrame({
        "rule": ["tp", "tp", "bptt", "bptt", "tp"], "task": ["digit"] * 5, "net": ["fsdd"] * 5, "seed": [0, 1, 0, 1, 0],
        "epochs": [5] * 5, "frozen_hidden": ["false"] * 4 + ["true"], "test_final": [0.9, 0.92, 0.95, 0.96, 0.5],
        "test_best": [0.93, 0.94, 0.97, 0.97, 0.55], "test_mean_last3": [0.9] * 5, "train_final": [0.99] * 5,
        "seconds_per_epoch": [3.0] * 5,
    }).to_csv(tmp_path / "accuracy.csv", index=False)
    pd.DataFrame({"speaker": ["a", "a", "a", "a"], "shots": ["0", "1", "5", "all"], "accuracy": [0.8, 0.9, 0.93, 0.97],
                  "seed": [0] * 4}).to_csv(tmp_path / "finetune.csv", index=False)
    pd.DataFrame({"net": ["n"] * 3, "layer": [1, 2, 3], "silhouette": [0.1, 0.2, 0.3]}).to_csv(
        tmp_path / "silhouette.csv", index=False)
    monkeypatch.setenv("TPPROF_RESULTS_DIR", str(tmp_path))
    at = _app("Training")
    _clean(at)
    acc, ft, sil = _charts(at)
    assert [tr["name"] for tr in acc["data"]] == ["TP", "BPTT", "TP (hidden frozen)"]
    final = acc["data"][0]["y"]  # the default is the final epoch, as the README reports
    at.selectbox(key="tr_metric").set_value("test_best").run()
    _clean(at)
    assert not _same(_charts(at)[0]["data"][0]["y"], final)
    assert list(_arr(ft["data"][0]["x"])) == ["before", "1-shot", "5-shot", "all"]
    np.testing.assert_allclose(_arr(sil["data"][0]["y"]), [0.1, 0.2, 0.3])


def test_figure5_page_takes_an_uploaded_nir_net(tmp_path) -> None:
    nir = pytest.importorskip("nir")
    from tpprof import views

    rng = np.random.default_rng(0)
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([40])), nir.Linear(weight=rng.standard_normal((32, 40))),
        nir.LIF(tau=np.full(32, 0.01), r=np.full(32, 10.0), v_leak=np.zeros(32), v_threshold=np.ones(32)),
        nir.Linear(weight=rng.standard_normal((5, 32))),
        nir.LI(tau=np.full(5, np.inf), r=np.ones(5), v_leak=np.zeros(5)), nir.Output(output_type=np.array([5])))
    g.metadata = {"dt": 1e-3}
    nir.write(tmp_path / "n.nir", g)
    at = _app("Relative memory cost")
    at.selectbox(key="f5_acc").set_value("full").run()
    typed = _charts(at)[0]["data"][0]["z"]
    at.get("file_uploader")[0].set_value(("n.nir", (tmp_path / "n.nir").read_bytes(), "application/octet-stream")).run()
    assert not at.exception and not at.error
    title = _charts(at)[0]["layout"]["title"]["text"]
    assert title.endswith("(n.nir)") and "tpprof-uploads" not in title  # the user's name, no server path
    z = _charts(at)[0]["data"][0]["z"]
    assert not _same(z, typed)
    at.text_input(key="f5_net").set_value("40-32-5").run()  # the uploaded file still wins over the box
    assert _same(_charts(at)[0]["data"][0]["z"], z)
    ref = views.figure5_frame(cfg_of(net="40-32-5"), "full", points=18, classes=(2, 1000), batch=(2, 1024))
    assert np.allclose(np.sort(_arr(z).ravel()), np.sort(np.log2(ref["G"].to_numpy())))
    at.get("file_uploader")[0].set_value(("my-broken.nir", b"not hdf5 at all", "application/octet-stream")).run()
    assert not at.exception and at.error
    err = " ".join(e.value for e in at.error)
    assert "my-broken.nir" in err and "tpprof-uploads" not in err, err  # the user's name, not the hash


def test_regimes_page_never_says_fits_on_a_chip_that_cannot_learn() -> None:
    from tpprof.analytic.devices import load_catalogue as device_catalogue

    dead = [d for d in device_catalogue() if not d.can_learn]
    partial = [d for d in device_catalogue() if d.on_chip_learning == "partial"]
    assert dead, "the catalogue lists an inference-only chip (Xylo)"
    at = _app("Device regimes")
    at.selectbox(key="rg_device").set_value(dead[0].name).run()
    assert not at.exception
    assert any("cannot learn on chip" in e.value for e in at.error)
    spec = _charts(at)[0]
    assert "cannot learn on chip" in spec["layout"]["title"]["text"]
    ticks = spec["data"][0]["colorbar"]["ticktext"]
    assert all("cannot learn on chip" in t for t in ticks if "fit" in t and "neither" not in t), ticks
    assert not any(t in ("only TP fits", "both fit, TP smaller") for t in ticks)
    if partial:
        at.selectbox(key="rg_device").set_value(partial[0].name).run()
        assert "partial" in _charts(at)[0]["layout"]["title"]["text"]


def test_figure5_page_reaches_gsc_batch_and_disables_unused_widgets() -> None:
    at = _app("Relative memory cost")
    assert 1024 in at.select_slider(key="f5_b").options or "1024" in at.select_slider(key="f5_b").options
    at.selectbox(key="f5_acc").set_value("paper").run()
    assert at.selectbox(key="f5_dtype").disabled and at.selectbox(key="f5_opt").disabled
    assert any("Not used under the paper accounting" in c.value for c in at.caption)
    at.selectbox(key="f5_acc").set_value("full").run()
    assert not at.selectbox(key="f5_dtype").disabled and not at.selectbox(key="f5_opt").disabled


def test_budget_label_sits_beside_the_bars() -> None:
    from tpprof import plots, views

    bd = views.breakdown_frame(cfg_of(net="shd", batch=32, classes=100), ("tp", "tess", "bptt"), "full", 8 * 2**20)
    fig = plots.category_bars(bd, budget_bytes=8 * 2**20)
    (ann,) = [a for a in fig.layout.annotations if "budget" in a.text]
    assert ann.xref == "paper" and ann.x >= 1.0 and ann.xanchor == "left"  # in the right margin, past the bars
    assert fig.layout.margin.r >= 80


def test_figure5_page_algorithm_accounting_and_dedup_target_path() -> None:
    from tpprof import views

    at = _app("Relative memory cost")
    at.selectbox(key="f5_acc").set_value("algorithm").run()
    assert not at.exception and not at.error
    spec = _charts(at)[0]
    assert "no framework temporaries" in spec["layout"]["title"]["text"]
    ref = views.figure5_frame(cfg_of(net="shd"), "algorithm", points=18, classes=(2, 1000), batch=(2, 1024))
    assert np.allclose(np.sort(_arr(spec["data"][0]["z"]).ravel()), np.sort(np.log2(ref["G"].to_numpy())))
    at.selectbox(key="f5_acc").set_value("paper").run()
    at.selectbox(key="f5_rows").set_value("classes").run()
    assert not at.exception and not at.error
    spec = _charts(at)[0]
    assert "per class" in spec["layout"]["title"]["text"]
    z = _arr(spec["data"][0]["z"])
    assert np.nanmin(z) >= -1e-9  # paper accounting with dedup: (B + K)LH <= TESS's, so G >= 1 everywhere
    at2 = _app("Device regimes")
    at2.selectbox(key="rg_rows").set_value("classes").run()
    assert not at2.exception and not at2.error
    assert any("per class" in c["layout"]["title"]["text"] for c in _charts(at2))


def test_url_may_name_a_select_option_by_its_key() -> None:
    """?f5_rows=classes (the option, as a script writes it) is honoured, not silently dropped; the
    label the URL holds after a click works too."""
    from tpprof import views

    for value in ("classes", views.TARGET_ROWS["classes"]):
        at = _app("Relative memory cost", f5_acc="full", f5_rows=value)
        assert not at.exception and not at.warning and not at.error
        assert at.selectbox(key="f5_rows").value == "classes"
        assert "per class" in _charts(at)[0]["layout"]["title"]["text"]


def test_device_page_ranks_an_uploaded_results_file(tmp_path) -> None:
    rows = _comparison_file(tmp_path)  # written to tmp_path, uploaded below (the results folder stays empty)
    at = _app("Device regimes", rg_src="typed budget", rg_budget="64MiB", rg_preset="fsdd")
    _clean(at)
    assert "no accuracy known" in at.success[0].value  # nothing shipped for the page: memory only
    at.selectbox(key="an_src").set_value("your results.csv (tpprof compare)").run()
    _clean(at)
    assert not at.dataframe or "accuracy %" not in at.dataframe[0].value.columns
    data = (tmp_path / "compare_fsdd_digit.csv").read_bytes()
    at.get("file_uploader")[0].set_value(("results.csv", data, "text/csv")).run()
    _clean(at)
    assert "learns there: bptt**" in at.success[0].value
    assert list(at.dataframe[0].value["learner"])[:1] == ["bptt"] and len(rows) == 15
    at.get("file_uploader")[0].set_value(("results.csv", b"label,rule\ntp,tp\n", "text/csv")).run()
    assert not at.exception and any("results" in e.value and "lacks the column" in e.value for e in at.error)
    assert any("the paper's view" in m.value for m in at.markdown)  # the rest of the page still draws
