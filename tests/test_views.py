"""The tables behind the figures (tpprof.views, files read by tpprof.datafiles) against independent oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tpprof import datafiles, store, views
from tpprof.config import RuleSpec, make_config
from tpprof.errors import UserError

pytest.importorskip("tpprof.analytic.paper")
from tpprof.analytic import estimate  # noqa: E402
from tpprof.analytic.paper import g_ratio  # noqa: E402
from tpprof.cli.config_flags import config_from_values as cfg_of  # noqa: E402
from test_store_schema import measurement_row  # noqa: E402  (tests/ is on sys.path under pytest)


def test_figure5_paper_accounting_equals_the_reconstructed_ratio() -> None:
    # Oracle: paper.g_ratio, (B + C) / (2B), whatever the net (per-layer H cancels).
    df = views.figure5_frame(cfg_of(net="shd"), "paper", classes=(2, 1000), batch=(2, 1000), points=6)
    np.testing.assert_allclose(df["G"], g_ratio(df["classes"], df["batch"]), rtol=1e-12)
    assert set(df.columns) >= {"classes", "batch", "tp_bytes", "tess_bytes", "G"}
    # G crosses 1 at C = B.
    assert np.all((df["G"] > 1) == (df["classes"] > df["batch"]))


def test_figure5_paper_plus_s_equals_the_s_variant_for_one_layer() -> None:
    # SHD net: one hidden layer of 450, so L = 1 and S adds C·H: G = (B + C) / (2B + C).
    df = views.figure5_frame(cfg_of(net="shd"), "paper+s", classes=(2, 500), batch=(2, 500), points=5)
    np.testing.assert_allclose(df["G"], g_ratio(df["classes"], df["batch"], 1, "s"), rtol=1e-12)


def test_figure5_full_uses_the_full_model_peaks() -> None:
    df = views.figure5_frame(cfg_of(net="700-64-10"), "full", classes=(10, 100), batch=(2, 64), points=3)
    row = df.iloc[-1]
    cfg = make_config("700-64-10", "tp", batch=int(row["batch"]), classes=int(row["classes"]))
    assert row["tp_bytes"] == estimate(cfg, accounting="full").peak_bytes


def test_figure5_rejects_bad_input_in_one_line() -> None:
    with pytest.raises(UserError, match="net"):
        views.figure5_frame(cfg_of(net="700-x-10"), "paper")
    with pytest.raises(UserError, match="accounting"):
        views.figure5_frame(cfg_of(net="shd"), "nope")


def test_regime_verdicts_agree_with_estimate_and_budget() -> None:
    budget = 4 * 2**20
    df = views.regime_frame(cfg_of(net="shd"), budget, classes=(2, 1000), batch=(2, 1000), points=5)
    for (c, b), cell in df.groupby(["classes", "batch"]):
        peaks = {}
        for rule in ("tp", "tess", "bptt"):
            cfg = make_config("shd", rule, batch=int(b), classes=int(c))
            peaks[rule] = estimate(cfg, accounting="full").peak_bytes
            assert cell.loc[cell["rule"] == rule, "peak_bytes"].item() == peaks[rule]
            assert cell.loc[cell["rule"] == rule, "fits"].item() == (peaks[rule] <= budget)
        tp_fit, tess_fit = peaks["tp"] <= budget, peaks["tess"] <= budget
        v = cell["verdict"].iloc[0]
        assert ("TP" in v and "only TP" in v) == (tp_fit and not tess_fit)
        assert (v == "neither fits") == (not tp_fit and not tess_fit)
        if tp_fit and tess_fit:
            assert v == ("both fit, TP smaller" if peaks["tp"] < peaks["tess"] else "both fit, TESS smaller")


def test_largest_batch_is_the_boundary_of_the_budget() -> None:
    budget = 3 * 2**20
    inv = views.inverse_frame(cfg_of(net="shd", classes=100), ("tp", "tess", "bptt"), budget).set_index("rule")
    for rule in ("tp", "tess", "bptt"):
        b = int(inv.loc[rule, "max_batch"])
        peak = lambda n: estimate(make_config("shd", rule, batch=n, classes=100), accounting="full").peak_bytes  # noqa: E731
        if b == 0:
            assert peak(1) > budget
        else:
            assert peak(b) <= budget < peak(b + 1)


def test_scaling_frame_reflects_t_invariance_of_local_rules() -> None:
    df = views.scaling_frame(cfg_of(net="700-450-20", batch=128, steps=100), "steps", (10, 100, 400),
                         rules=("tp", "tess", "bptt"))
    pk = df.drop_duplicates(["rule", "steps"]).pivot(index="steps", columns="rule", values="peak_bytes")
    assert pk["tp"].nunique() == 1 and pk["tess"].nunique() == 1
    assert pk["bptt"].is_monotonic_increasing and pk["bptt"].iloc[-1] > pk["bptt"].iloc[0]
    # Bytes at the peak add up to the peak; every term's bytes add up to the total.
    tot = df.groupby(["rule", "steps"]).agg(s=("bytes", "sum"), p=("peak_bytes", "first"),
                                            a=("all_terms_bytes", "sum"), t=("total_bytes", "first"))
    assert (tot["s"] == tot["p"]).all() and (tot["a"] == tot["t"]).all()


def test_measurements_join_validates_and_reports_bad_rows(tmp_path) -> None:
    p = tmp_path / "m.csv"
    for rule, t in (("tp", 25), ("tp", 100), ("bptt", 25), ("bptt", 100)):
        pred = estimate(make_config("700-32-10", RuleSpec(rule), batch=4, classes=10, steps=t)).peak_bytes
        store.append_row(p, measurement_row(rule, t, int(pred * 1.02)))
    with p.open("a") as f:
        f.write("tp,broken,row\n")
    m = datafiles.load_measurements([p])
    assert len(m.rows) == 4 and len(m.bad) == 1 and m.bad[0][1] == 6
    cmp = views.compare_frame(m.rows)
    np.testing.assert_allclose(cmp["error"], 0.02, atol=1e-5)  # int() rounding of the peak
    assert views.error_summary(cmp, 0.05)["out_of_tolerance"] == 0
    assert views.error_summary(cmp, 0.01)["out_of_tolerance"] == 4
    ti = views.t_invariance_frame(cmp)
    assert set(ti["steps"]) == {25, 100} and len(ti) == 4


def test_t_invariance_keeps_optimiser_and_cadence_variants_apart() -> None:
    # An SGD or sequence-cadence run at T = 25 is another point, not a third T of the Adam line.
    rows = [measurement_row("tp", t, 10**6) for t in (25, 100)]
    rows += [{**measurement_row("tp", 25, 10**6), "optimizer": "sgd"},
             {**measurement_row("tp", 25, 10**6), "cadence": "sequence"}]
    cmp = views.compare_frame(pd.DataFrame(rows))
    assert cmp["group"].nunique() == 3
    ti = views.t_invariance_frame(cmp)
    assert len(ti) == 2 and list(ti["steps"]) == [25, 100] and set(ti["optimizer"]) == {"adam"}


def test_uploaded_garbage_is_reported_not_raised() -> None:
    m = datafiles.load_uploaded("junk.csv", b"\x00\xffnot,a\ncsv")
    assert m.rows.empty and m.bad and m.bad[0][0] == "junk.csv"
    assert views.compare_frame(m.rows).empty


def test_results_loader_reports_wrong_columns(tmp_path) -> None:
    pd.DataFrame({"speaker": ["a"], "shots": [0], "accuracy": [0.5], "seed": [0]}).to_csv(
        tmp_path / "finetune.csv", index=False)
    pd.DataFrame({"net": ["x"]}).to_csv(tmp_path / "silhouette.csv", index=False)
    frames, problems = datafiles.load_results(tmp_path)
    assert list(frames) == ["finetune"]
    assert problems == ["silhouette.csv: lacks column(s) layer, silhouette"]


def test_figure5_best_alternative_is_the_least_other_learner() -> None:
    from tpprof.analytic import estimate
    from tpprof.config import TRAINABLE_RULES, make_config, rules_accepting

    df = views.figure5_frame(cfg_of(net="40-32-10"), "full", points=4, classes=(2, 500), batch=(2, 300), versus="best")
    rules = [r for r in rules_accepting(make_config("40-32-10"), TRAINABLE_RULES) if r != "tp"]
    for r in df.to_dict("records"):
        peaks = {x: estimate(make_config("40-32-10", x, batch=r["batch"], classes=r["classes"])).peak_bytes
                 for x in rules}
        assert r["other_bytes"] == min(peaks.values()) and peaks[r["other"]] == r["other_bytes"]
        tp = estimate(make_config("40-32-10", "tp", batch=r["batch"], classes=r["classes"])).peak_bytes
        assert r["G"] == pytest.approx(min(peaks.values()) / tp)


def test_figure_pivot_equals_pandas_pivot_first_row_wins() -> None:
    # Oracle: pandas' pivot of the first row per cell. Repeated cells, an empty cell, floats and strings.
    from tpprof.plots import _pivot

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"classes": rng.choice([2, 10, 300], 40), "batch": rng.choice([1, 8, 64, 512], 40),
                       "G": rng.random(40), "rule": rng.choice(["tp", "tess"], 40)})
    df = df[~((df["classes"] == 300) & (df["batch"] == 1))]  # a cell no row names
    first = df.drop_duplicates(["classes", "batch"])
    for value in ("G", "rule"):
        want = first.pivot(index="classes", columns="batch", values=value).sort_index().sort_index(axis=1)
        got = _pivot(df, value)
        assert list(got.index) == list(want.index) and list(got.columns) == list(want.columns)
        w, g = want.to_numpy(dtype=object), got.to_numpy(dtype=object)
        missing = pd.isna(w)
        assert (pd.isna(g) == missing).all() and missing.sum() == 1
        assert (g[~missing] == w[~missing]).all()


@pytest.mark.parametrize("shared_y", [True, False])
def test_scaling_panels_are_laid_out_as_make_subplots_does(shared_y: bool) -> None:
    # Oracle: plotly's make_subplots (one row, the spacing the scaling figure uses), 1 to 9 panels.
    import json

    from plotly.subplots import make_subplots

    from tpprof.plots import _subplot_row

    for n in range(1, 10):
        titles = [f"rule {j}" for j in range(n)]
        want = make_subplots(rows=1, cols=n, shared_yaxes=shared_y, horizontal_spacing=0.03 if shared_y else 0.06,
                             subplot_titles=titles).layout.to_plotly_json()
        want.pop("template", None)
        assert json.dumps(_subplot_row(titles, shared_y), sort_keys=True) == json.dumps(want, sort_keys=True)


def test_views_take_the_config_the_cli_builds() -> None:
    # The app's and the report's path (config_from_values) is the CLI's: the same Config as the flags.
    from tpprof.cli import build_parser
    from tpprof.cli.config_flags import config_from_args

    argv = ["estimate", "--net", "shd-rec", "--batch", "8", "--dtype", "fp16", "--optimizer", "sgd",
            "--target-rows", "classes"]
    flags = config_from_args(build_parser().parse_args(argv))
    assert cfg_of(net="shd-rec", batch=8, dtype="fp16", optimizer="sgd", target_rows="classes") == flags
    with pytest.raises(UserError, match="batch"):
        cfg_of(net="shd", batch="x")
    with pytest.raises(UserError, match="config"):
        cfg_of(nett="shd")


def test_scaling_frame_needs_a_uniform_dense_net() -> None:
    with pytest.raises(UserError, match="uniform dense"):
        views.scaling_frame(cfg_of(net="700-450-200-20"), "depth")
    with pytest.raises(UserError, match="uniform dense"):
        views.scaling_frame(cfg_of(net="2x16x16-c8-10"), "depth")
