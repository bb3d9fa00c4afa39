"""``tpprof report``: every paper figure to a folder (PDF, SVG, PNG + JSON provenance) and an
``index.html``.

The tables come from :mod:`tpprof.views`, the files they read from :mod:`tpprof.datafiles`, the
figures from :mod:`tpprof.plots`; this module only chooses the default views, writes them and
records where each figure came from. No torch import here.
"""

from __future__ import annotations

import functools
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tpprof import resources
from tpprof.cli.config_flags import config_from_values
from tpprof.config import Config
from tpprof.datafiles import load_measurements, load_results, shipped_measurement_files
from tpprof.device import Device
from tpprof.errors import UserError
from tpprof.views import (DEFAULT_SCALING_VALUES, compare_frame, dense_net, error_summary, figure5_frame,
                          informative_device, preset_points, regime_frame, scaling_frame, t_invariance_frame)


#: Figure 5 grid and the default views exported by ``tpprof report``.
REPORT_DEFAULTS: dict[str, Any] = {
    "net": "shd", "dtype": "fp32", "optimizer": "adam", "classes": (2, 1000), "batch": (2, 1024), "points": 24,
}


@dataclass
class ReportItem:
    """One exported figure: its stem, title, files written and provenance."""

    stem: str
    title: str
    files: list[Path]
    provenance: dict[str, Any]


def report_config() -> Config:
    """The report's Config, built once through the CLI's path from :data:`REPORT_DEFAULTS`."""
    d = REPORT_DEFAULTS
    return config_from_values(net=d["net"], dtype=d["dtype"], optimizer=d["optimizer"])


def default_report_device() -> Device:
    """The regime map's device in ``tpprof report`` (see :func:`informative_device`)."""
    d = REPORT_DEFAULTS
    return informative_device(report_config(), d["classes"], d["batch"])


def build_report(out: str | Path, measurements: str | Path | None = None, results: str | Path | None = None,
                 device: Device | None = None,
                 progress: Callable[[str, int], Any] | None = None) -> list[ReportItem]:
    """Write every available paper figure to ``out`` (PDF, SVG, PNG + JSON each) and
    ``out/index.html``; return what was written.

    Always: figure5 (paper accounting, reconstructed), figure5_full (tpprof's accounting),
    regime_map, scaling. With measurement files (``measurements`` or the shipped
    measurements/): measured_vs_analytic and t_invariance. With training results (``results``
    or docs/results/): accuracy, finetune and silhouette. ``progress(stem, n_figures)`` is
    called after each figure.
    """
    from tpprof import plots

    if measurements and not Path(measurements).exists():
        raise UserError("measurements", f"{str(measurements)!r} does not exist", "a .csv file or a folder of them")
    plots.find_browser()  # fail before any work, in one line, when static export cannot work
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    dflt = REPORT_DEFAULTS
    jobs: list[tuple[str, str, Any, dict[str, Any]]] = []  # (stem, title, thunk, provenance)

    def add(stem: str, title: str, thunk: Any, prov: dict[str, Any]) -> None:
        jobs.append((stem, title, thunk, prov))

    cfg = report_config()
    base = cfg.to_dict()
    peak_full = ("tpprof.analytic.estimate(cfg, 'full').peak_bytes: persistent terms + the largest set of "
                 "transients live at once in a step")
    paper_sum = "tpprof.analytic.estimate(cfg, accounting).total_bytes: the sum of the paper's state terms"
    f5 = {k: dflt[k] for k in ("net", "dtype", "optimizer", "classes", "batch", "points")}
    axes = {k: dflt[k] for k in ("classes", "batch", "points")}  # the views' own axes; the rest is cfg
    add("figure5", "Figure 5 reproduction: G(C, B), paper accounting (reconstructed)",
        lambda: plots.figure5(figure5_frame(cfg, "paper", **axes), points=preset_points(),
                              title="G(C, B) = Mem_TESS / Mem_TP, paper accounting [reconstructed]"),
        {"config": {"view": "figure5", "accounting": "paper", **f5, "base_config": base},
         "label": "reconstructed (reference sheet §9): TP = 2BLH, TESS = BLH + LCH", "memory": paper_sum})
    add("figure5_full", "G(C, B) under tpprof's full accounting (SHD net)",
        lambda: plots.figure5(figure5_frame(cfg, "full", **axes), points=preset_points(),
                              title=f"G(C, B) = peak TESS / peak TP, tpprof full accounting ({f5['net']})"),
        {"config": {"view": "figure5", "accounting": "full", **f5, "base_config": base}, "memory": peak_full})
    dev = device or informative_device(cfg, dflt["classes"], dflt["batch"])
    reg = {**f5, "points": 20}
    add("regime_map", f"Device regimes on {dev.name}",
        lambda: plots.regime_map(regime_frame(cfg, dev.budget_bytes, **{**axes, "points": 20}), dev.budget_bytes,
                                 dev.name),
        {"config": {"view": "regimes", "accounting": "full", **reg, "base_config": base},
         "device": {"name": dev.name, "budget_bytes": dev.budget_bytes, "source": dev.source}, "memory": peak_full})
    sc = {"features": 700, "width": 450, "depth": 1, "classes": 20, "batch": 128, "steps": 100, "dtype": "fp32",
          "optimizer": "adam"}
    sc_cfg = config_from_values(net=dense_net(sc["features"], sc["width"], sc["depth"], sc["classes"]),
                                batch=sc["batch"], steps=sc["steps"], dtype=sc["dtype"], optimizer=sc["optimizer"])
    add("scaling", "Memory vs depth per rule, by category",
        lambda: plots.scaling(scaling_frame(sc_cfg, "depth"), "depth"),
        {"config": {"view": "scaling", "accounting": "full", "var": "depth",
                    "values": list(DEFAULT_SCALING_VALUES["depth"]), **sc},
         "memory": "bytes live at the step's peak per category (persistent + peak-phase transients)"})
    files = [Path(measurements)] if measurements else shipped_measurement_files()
    if files:
        meas = load_measurements(files)
        cmp = compare_frame(meas.rows)
        mprov = {"config": {"view": "measured", "accounting": "full"}, "measurement_files": meas.files,
                 "memory": "measured: the files' peak_bytes (see measurements/README.md); analytic: " + peak_full,
                 "bad_rows": [list(b) for b in meas.bad], "summary": error_summary(cmp)}
        if not cmp.empty:
            add("measured_vs_analytic", "Measured vs analytic peak memory", lambda: plots.measured_vs_analytic(cmp),
                mprov)
            ti = t_invariance_frame(cmp)
            if not ti.empty:
                add("t_invariance", "T-invariance of peak memory", lambda: plots.t_invariance(ti), mprov)
    res_dir = Path(results) if results else resources.results_dir()
    frames, _problems = load_results(res_dir)
    rprov = {"config": {"view": "training"}, "results_dir": str(res_dir)}
    for name, title, plot in (("accuracy", "Test accuracy per rule", plots.accuracy_bars),
                              ("finetune", "Fine-tuning on a new speaker", plots.finetune_bars),
                              ("silhouette", "Per-layer silhouette", plots.silhouette)):
        if name in frames:
            add(name, title, functools.partial(plot, frames[name]), {**rprov, "results_files": [f"{name}.csv"]})
    items: list[ReportItem] = []
    for stem, title, thunk, prov in jobs:
        fig = thunk()
        written = plots.save_figure(fig, out_dir / stem, prov)
        items.append(ReportItem(stem, title, written, json.loads(written[-1].read_text())))
        if progress is not None:
            progress(stem, len(jobs))
    write_index(out_dir, items)
    return items


def write_index(out_dir: Path, items: Sequence[ReportItem]) -> Path:
    """``index.html``: each figure (SVG inline via <img>) with links to its files and provenance."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tpprof report</title>",
             "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}"
             "figure{margin:2em 0}img{max-width:100%;border:1px solid #ddd}"
             "pre{background:#f6f6f6;padding:.5em;font-size:11px;overflow:auto;max-height:12em}</style>",
             "</head><body><h1>tpprof report</h1>"]
    for it in items:
        links = " · ".join(f"<a href='{html.escape(p.name)}'>{html.escape(p.suffix[1:].upper())}</a>"
                           for p in it.files)
        parts.append(f"<figure id='{html.escape(it.stem)}'><h2>{html.escape(it.title)}</h2>"
                     f"<img src='{html.escape(it.stem)}.svg' alt='{html.escape(it.title)}'>"
                     f"<figcaption>{links}</figcaption>"
                     f"<pre>{html.escape(json.dumps(it.provenance, indent=1, sort_keys=True, default=str))}</pre>"
                     "</figure>")
    parts.append("</body></html>")
    path = out_dir / "index.html"
    tmp = path.with_name("index.html.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
