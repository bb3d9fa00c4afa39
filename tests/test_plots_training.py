"""The Training chart never pools runs with different nets or neuron settings, and shows the
final epoch by default (the README's figure), not the test-picked best epoch."""

from __future__ import annotations

import pandas as pd

from tpprof import plots
from tpprof.cli.config_flags import config_from_values as cfg_of


def _rows() -> pd.DataFrame:
    rows = []
    for neuron, acc in (("v_th=1.0 alpha=0.9 beta=0.9", 0.95), ("v_th=1.0 alpha=0.96 beta=0.97", 0.35)):
        for seed in range(3):
            rows.append(dict(rule="tp", task="digit-speaker", net="40-256-256-60", seed=seed, epochs=30,
                             frozen_hidden="false", test_final=acc, test_best=acc + 0.02, test_mean_last3=acc,
                             train_final=acc, seconds_per_epoch=1.0, neuron=neuron))
    for seed in range(3):
        rows.append(dict(rule="tp", task="digit-speaker", net="40-256-256-60", seed=seed, epochs=30,
                         frozen_hidden="true", test_final=0.5, test_best=0.6, test_mean_last3=0.5, train_final=0.5,
                         seconds_per_epoch=1.0, neuron="v_th=1.0 alpha=0.9 beta=0.9"))
    return pd.DataFrame(rows)


def test_groups_are_unique_per_rule_task_net_neuron_frozen() -> None:
    g = plots.accuracy_groups(_rows())
    assert not g.duplicated(list(plots.ACCURACY_GROUP_KEYS)).any()
    assert sorted(g["count"]) == [3, 3, 3]  # the old (task, rule, frozen) grouping pooled 6 runs: 65 ± 33 %
    assert g["variant"].nunique() == 3
    assert sorted(round(m, 2) for m in g["mean"]) == [0.35, 0.5, 0.95]


def test_chart_series_and_default_metric() -> None:
    fig = plots.accuracy_bars(_rows())
    assert len(fig.data) == 3
    assert all(max(tr.customdata) == 3 for tr in fig.data)
    ys = sorted(round(float(tr.y[0]), 1) for tr in fig.data)
    assert ys == [35.0, 50.0, 95.0]  # test_final, not test_best (+2)
    assert "test final" in fig.layout.yaxis.title.text


def test_scaling_legend_lists_every_category_and_x_is_linear() -> None:
    from tpprof import views

    df = views.scaling_frame(cfg_of(net="700-450-20", batch=128, steps=100), "steps", (10, 100, 400),
                         rules=("tp", "bptt"))
    fig = plots.scaling(df, "steps")
    shown = {tr.name for tr in fig.data if tr.showlegend is not False}
    assert shown == {tr.name for tr in fig.data}  # "saved" (BPTT only, 2nd panel) has a legend entry
    assert "saved" in shown
    assert fig.layout.xaxis.type == "linear" and list(fig.layout.xaxis.tickvals) == [10.0, 100.0, 400.0]


def test_byte_axes_never_show_billions() -> None:
    t = plots.byte_ticks(3e5, 5e9)
    assert t["ticktext"] and all(x.endswith(("B", "KiB", "MiB", "GiB", "TiB")) for x in t["ticktext"])
    assert "1 GiB" in t["ticktext"] or "2 GiB" in t["ticktext"] or "4 GiB" in t["ticktext"]
    assert len(t["tickvals"]) <= 8 and all(v > 0 for v in t["tickvals"])
