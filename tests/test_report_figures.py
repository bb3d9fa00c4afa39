"""Every figure of ``tpprof report`` checked on its figure JSON (no browser): legend entries are
named and unique and few enough to show whole, one colour per rule and distinct colours across
rules, log axes labelled with full values, and the provenance names the code and hashes the data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("tpprof.analytic.paper")
from tpprof import plots, report  # noqa: E402
from tpprof.config import RULES  # noqa: E402

LABEL_TO_RULE = {v: k for k, v in plots.RULE_LABELS.items()} | {r: r for r in RULES}


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict:
    """stem → (figure, provenance) of a report over the shipped measurements and results."""
    out = tmp_path_factory.mktemp("rep")
    captured: dict = {}
    mp = pytest.MonkeyPatch()
    mp.setattr(plots, "find_browser", lambda: "/no/browser/needed")
    mp.setattr(plots, "figure_bytes", lambda fig, fmt, *size: b"stub")
    orig = plots.save_figure

    def keep(fig, stem, prov=None, **kw):
        captured[Path(stem).name] = fig
        return orig(fig, stem, prov, **kw)

    mp.setattr(plots, "save_figure", keep)
    try:
        items = report.build_report(out)
    finally:
        mp.undo()
    return {it.stem: (captured[it.stem], it.provenance) for it in items}


def _shown(fig) -> list:
    return [t for t in fig.data if t.showlegend is True or (t.showlegend is None and t.type in ("scatter", "bar"))]


def _color(t) -> str | None:
    for part in (getattr(t, "marker", None), getattr(t, "line", None)):
        c = getattr(part, "color", None) if part is not None else None
        if isinstance(c, str):
            return c
    return None


def _marker(t, what: str) -> str | None:
    """A trace's marker symbol, or its bar pattern's shape (hatched controls)."""
    m = getattr(t, "marker", None)
    v = getattr(m, what, None) if m is not None else None
    return getattr(v, "shape", None) if what == "pattern" and v is not None else v


def test_the_report_has_every_figure(figures) -> None:
    assert {"figure5", "figure5_full", "regime_map", "scaling", "measured_vs_analytic", "t_invariance",
            "accuracy", "finetune", "silhouette"} <= set(figures)


def test_legend_entries_are_named_unique_and_few(figures) -> None:
    for stem, (fig, _) in figures.items():
        names = [t.name for t in _shown(fig)]
        assert all(n and n.strip() for n in names), (stem, names)
        assert len(names) == len(set(names)), (stem, names)
        assert len(names) <= 16, (stem, len(names))  # more would not fit a 7 x 5 in page


def test_one_colour_per_rule_and_distinct_across_rules(figures) -> None:
    for stem, (fig, _) in figures.items():
        by_rule: dict[str, set] = {}
        for t in fig.data:
            base = str(t.name or "").replace(" (hidden frozen)", "")
            rule = LABEL_TO_RULE.get(base)
            if rule is not None:  # no explicit colour = the theme's cycle, which repeats colours
                assert _color(t), (stem, t.name)
                by_rule.setdefault(rule, set()).add(_color(t))
        assert all(len(c) == 1 for c in by_rule.values()), (stem, by_rule)
        colours = [next(iter(c)) for c in by_rule.values()]
        assert len(colours) == len(set(colours)), (stem, by_rule)
    assert {"tp", "bptt"} <= {LABEL_TO_RULE.get(t.name) for t in figures["t_invariance"][0].data}


def test_every_legend_entry_is_told_apart_by_colour_and_symbol(figures) -> None:
    """Two entries of one figure never look the same: a rule's modes (TP per sample, per class, the
    authors') share the rule's colour, so they differ by marker symbol."""
    for stem, (fig, _) in figures.items():
        looks = [(_color(t), _marker(t, "symbol"), _marker(t, "pattern"), getattr(getattr(t, "line", None), "dash", None))
                 for t in _shown(fig) if getattr(t, "mode", None) != "lines"]
        assert len(looks) == len(set(looks)), (stem, [t.name for t in _shown(fig)], looks)


def test_every_rule_has_its_own_colour() -> None:
    assert set(RULES) <= set(plots.RULE_COLORS)
    assert len(set(plots.RULE_COLORS.values())) == len(plots.RULE_COLORS)


def test_log_axes_carry_full_value_labels(figures) -> None:
    for stem, (fig, _) in figures.items():
        for name in [k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]:
            ax = fig.layout[name]
            if ax.type != "log":
                continue
            assert ax.tickvals is not None and ax.ticktext is not None, (stem, name)
            assert len(ax.tickvals) == len(ax.ticktext) >= 2, (stem, name)
            for v, text in zip(ax.tickvals, ax.ticktext):
                if not text.endswith("B"):  # a byte label (KiB, MiB) is checked by test_plots_training
                    assert float(text.replace(",", "")) == pytest.approx(v), (stem, name, v, text)


def test_log_ticks_never_abbreviate() -> None:
    t = plots.log_ticks(25, 400)
    assert t["ticktext"] == ["50", "100", "200"]
    t = plots.log_ticks(2, 1024, max_ticks=10)
    assert "1,000" in t["ticktext"] and "2" in t["ticktext"]
    assert plots.log_ticks(1, 1e4, values=[25, 100, 400])["ticktext"] == ["25", "100", "400"]


def test_figure5_labels_do_not_overlap() -> None:
    import numpy as np

    x = np.log10([32, 64, 64, 128])
    y = np.log10([10, 10, 11, 10])
    texts = ["fsdd", "cifar10dvs-vgg9", "dvsgesture-vgg9", "nmnist"]
    pos = plots.label_positions(x, y, texts, [0.2, 3.1], [0.2, 3.1], size=(492, 310))
    assert pos[1].split()[0] != pos[2].split()[0]  # the two VGG-9 points, one above the other, label apart


def test_provenance_names_the_code_and_hashes_the_data(figures) -> None:
    _, prov = figures["measured_vs_analytic"]
    assert prov["code"].get("tpprof_commit") or prov["code"].get("tpprof_version")
    assert prov["data_sha256"] and set(prov["data_sha256"]) == set(prov["measurement_files"])
    for path, digest in prov["data_sha256"].items():
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
    _, acc = figures["accuracy"]
    assert len(acc["data_sha256"]) == 1


def test_no_titles_and_page_size(tmp_path, monkeypatch) -> None:
    sizes = []
    monkeypatch.setattr(plots, "find_browser", lambda: "/no/browser/needed")
    monkeypatch.setattr(plots, "figure_bytes", lambda fig, fmt, *size: sizes.append((fig, size)) or b"stub")
    from tpprof.cli import main

    assert main(["report", "--out", str(tmp_path), "--no-titles", "--size", "3.5x2.5", "--net", "nmnist"]) == 0
    assert sizes and all(s == (336, 240) for _, s in sizes)
    assert all(not (f.layout.title.text or "") for f, _ in sizes)
    prov = json.loads((tmp_path / "figure5.json").read_text())
    assert prov["config"]["net"] == "nmnist"


def test_dashboard_pareto_colours_each_rule() -> None:
    """The Memory x time chart (dashboard only): each rule in its own explicit colour."""
    from tpprof.analytic.timing import pareto_table
    from tpprof.config import make_config

    fig = plots.pareto(pareto_table(make_config("shd")))
    by_rule = {t.name: t.marker.color for t in fig.data if t.name in LABEL_TO_RULE}
    assert len(by_rule) >= 3 and all(by_rule.values())
    assert len(set(by_rule.values())) == len(by_rule)
