"""``tpprof report``: every paper figure to a folder (PDF, SVG, PNG + JSON provenance) and an
``index.html``.

The tables come from :mod:`tpprof.views`, the files they read from :mod:`tpprof.datafiles`, the
figures from :mod:`tpprof.plots`; this module only chooses the default views, writes them and
records where each figure came from. No torch import here.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tpprof import resources
from tpprof.cli.config_flags import config_from_values
from tpprof.compare import load_comparisons, ranking_frame
from tpprof.config import Config
from tpprof.datafiles import load_measurements, load_results, shipped_measurement_files
from tpprof.device import Device
from tpprof.errors import UserError
from tpprof.views import (DEFAULT_SCALING_VALUES, compare_frame, dense_net, error_summary, figure5_frame, net_label,
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
    table_html: str = ""  # a table shown under the figure in index.html (the comparison's ranking)


def report_config(net: str | None = None) -> Config:
    """The report's Config, built once through the CLI's path from :data:`REPORT_DEFAULTS`
    (``net`` replaces its net: a preset, a net string or a .nir file)."""
    d = REPORT_DEFAULTS
    return config_from_values(net=net or d["net"], dtype=d["dtype"], optimizer=d["optimizer"])


_RESULTS_ACCEPTED = "a folder with accuracy.csv, finetune.csv, silhouette.csv or memory.csv (tpprof's sweeps)"


def check_user_folders(measurements: str | Path | None, results: str | Path | None) -> None:
    """A folder the user names must hold what it is named for: figures written without the
    user's data would read as if their data had been used."""
    from tpprof.datafiles import RESULT_FILES

    m = Path(measurements) if measurements else None
    if m is not None and m.is_dir() and not any(m.glob("*.csv")):
        raise UserError("measurements", f"{str(measurements)!r} holds no measurement file (*.csv)",
                        "a CSV written by tpprof measure, or a folder of them")
    if results:
        r = Path(results)
        if not r.is_dir():
            raise UserError("results", f"{str(results)!r} is not a folder", _RESULTS_ACCEPTED)
        if not any((r / f"{name}.csv").is_file() for name in RESULT_FILES):
            raise UserError("results", f"{str(results)!r} holds none of the results files", _RESULTS_ACCEPTED)


def file_hashes(paths: Sequence[str | Path]) -> dict[str, str]:
    """``{path: sha256 hex}`` of each data file a figure was drawn from (provenance)."""
    out: dict[str, str] = {}
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out[str(p)] = h.hexdigest()
    return out


def build_report(out: str | Path, measurements: str | Path | None = None, results: str | Path | None = None,
                 device: Device | None = None,
                 progress: Callable[[str, int], Any] | None = None, net: str | None = None, titles: bool = True,
                 size: tuple[int, int] | None = None) -> list[ReportItem]:
    """Write every available paper figure to ``out`` (PDF, SVG, PNG + JSON each) and
    ``out/index.html``; return what was written.

    Always: figure5 (paper accounting, reconstructed), figure5_full (tpprof's accounting),
    regime_map, scaling, for ``net`` (default the SHD net; scaling needs a dense net and is drawn
    for the SHD net's shape otherwise). With measurement files (``measurements`` or the shipped
    measurements/): measured_vs_analytic and t_invariance. With training results (``results``
    or docs/results/): accuracy, finetune and silhouette, and per comparison file (``compare_*.csv``,
    written by ``tpprof compare``) accuracy against peak memory with its ranking table for
    ``device``. ``titles=False`` leaves the figures
    without a title (a paper's caption says it); ``size``: (width, height) in CSS px. Each
    sidecar names the code (git commit or version) and the sha256 of every data file read.
    ``progress(stem, n_figures)`` is called after each figure, once every input was checked.
    """
    from tpprof import plots

    if measurements and not Path(measurements).exists():
        raise UserError("measurements", f"{str(measurements)!r} does not exist", "a .csv file or a folder of them")
    check_user_folders(measurements, results)
    cfg = report_config(net)
    plots.find_browser()  # fail before any work, in one line, when static export cannot work
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    dflt = {**REPORT_DEFAULTS, "net": net_label(cfg)}
    jobs: list[tuple[str, str, Any, dict[str, Any]]] = []  # (stem, title, thunk, provenance)

    def add(stem: str, title: str, thunk: Any, prov: dict[str, Any]) -> None:
        jobs.append((stem, title, thunk, prov))

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
         "label": "reconstructed from the paper's §9 / Table 3 state terms: TP = 2BLH, TESS = BLH + LCH", "memory": paper_sum})
    add("figure5_full", f"G(C, B) under tpprof's full accounting ({f5['net']})",
        lambda: plots.figure5(figure5_frame(cfg, "full", **axes), points=preset_points(),
                              title=f"G(C, B) = peak TESS / peak TP, tpprof full accounting ({f5['net']})"),
        {"config": {"view": "figure5", "accounting": "full", **f5, "base_config": base}, "memory": peak_full})
    dev = device or informative_device(cfg, dflt["classes"], dflt["batch"])
    reg = {**f5, "points": 20}
    from tpprof.analytic.devices import device_accounting

    dev_acc, dev_acc_why = device_accounting(dev)  # a microcontroller's lean implementation: algorithm
    add("regime_map", f"Device regimes on {dev.name} (accounting {dev_acc})",
        lambda: plots.regime_map(regime_frame(cfg, dev.budget_bytes, **{**axes, "points": 20}, accounting=dev_acc),
                                 dev.budget_bytes, dev.name),
        {"config": {"view": "regimes", "accounting": dev_acc, "accounting_why": dev_acc_why, **reg,
                    "base_config": base},
         "device": {"name": dev.name, "budget_bytes": dev.budget_bytes, "source": dev.source}, "memory": peak_full})
    sc = {**_scaling_shape(cfg), "batch": 128, "steps": 100, "dtype": "fp32", "optimizer": "adam"}
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
        if measurements and meas.rows.empty:  # the user's data, not silently a report without it
            why = f" ({meas.bad[0][2][:200]})" if meas.bad else ""
            raise UserError("measurements", f"{str(measurements)!r} holds no valid measurement row{why}",
                            "a CSV written by tpprof measure, or a folder of them")
        cmp = compare_frame(meas.rows)
        mprov = {"config": {"view": "measured", "accounting": "full"}, "measurement_files": meas.files,
                 "data_sha256": file_hashes(meas.files),
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
    if results and not frames:
        raise UserError("results", f"{str(results)!r} holds no usable results file"
                        + (f" ({_problems[0][:200]})" if _problems else ""), _RESULTS_ACCEPTED)
    rprov = {"config": {"view": "training"}, "results_dir": str(res_dir)}
    for name, title, plot in (("accuracy", "Test accuracy per rule", plots.accuracy_bars),
                              ("finetune", "Fine-tuning on a new speaker", plots.finetune_bars),
                              ("silhouette", "Per-layer silhouette", plots.silhouette)):
        if name in frames:
            add(name, title, functools.partial(plot, frames[name]),
                {**rprov, "results_files": [f"{name}.csv"], "data_sha256": file_hashes([res_dir / f"{name}.csv"])})
    tables: dict[str, str] = {}
    comps, _cproblems = load_comparisons(res_dir)
    for cstem, rows in comps.items():
        frame = ranking_frame(rows, dev)
        r0 = rows[0]
        ctitle = (f"Which learner for {r0.get('data')} {r0.get('task')} ({r0.get('net_string')}) on {dev.name}: "
                  "accuracy against peak memory")
        add(cstem, ctitle, functools.partial(plots.accuracy_vs_peak, frame, dev.budget_bytes, dev.name),
            {**rprov, "results_files": [f"{cstem}.csv"], "data_sha256": file_hashes([res_dir / f"{cstem}.csv"]),
             "device": {"name": dev.name, "budget_bytes": dev.budget_bytes},
             "accounting": str(frame["accounting"].iloc[0]),
             "accuracy": "final-epoch test accuracy, mean ± sample sd over seeds (never the best epoch)",
             "memory": "the analytic peak of each run's config in the device's accounting (tpprof.compare.rank)"})
        tables[cstem] = ranking_html(frame)
    items: list[ReportItem] = []
    for stem, title, thunk, prov in jobs:
        fig = thunk()
        if not titles:
            fig.update_layout(title_text="", margin_t=30)
        written = plots.save_figure(fig, out_dir / stem, prov, size=size)
        items.append(ReportItem(stem, title, written, json.loads(written[-1].read_text()), tables.get(stem, "")))
        if progress is not None:
            progress(stem, len(jobs))
    write_index(out_dir, items)
    return items


def ranking_html(frame: Any) -> str:
    """The comparison's ranking as an HTML table: rank, learner, accuracy, peak, fits, learns."""
    from tpprof.plots import human_bytes

    acc = str(frame["accounting"].iloc[0]) if len(frame) else "full"
    head = ("<table><tr><th>rank</th><th>learner</th><th>accuracy % (mean ± sd)</th><th>seeds</th>"
            f"<th>peak ({html.escape(acc)})</th><th>fits</th><th>learns there</th><th>Pareto</th></tr>")
    body = []
    for r in frame.to_dict("records"):
        rank = "" if r["rank"] is None or r["rank"] != r["rank"] else str(int(r["rank"]))
        sd = f" ± {100 * r['acc_sd']:.1f}" if r["acc_sd"] == r["acc_sd"] else ""
        body.append(f"<tr><td>{rank}</td><td>{html.escape(str(r['label']))}</td><td>{100 * r['acc_mean']:.1f}{sd}</td>"
                    f"<td>{r['seeds']}</td><td>{human_bytes(r['peak_bytes'])}</td>"
                    f"<td>{'yes' if r['fits'] else 'no'}</td>"
                    f"<td>{'yes' if r['learns'] else html.escape(str(r['why_not']))}</td>"
                    f"<td>{'yes' if r['pareto'] else ''}</td></tr>")
    return head + "".join(body) + "</table>"


def _scaling_shape(cfg: Config) -> dict[str, int]:
    """The uniform dense net of the scaling figure: ``cfg``'s input, first hidden width, depth and
    classes when its net is dense, else the SHD net's (700-450-20)."""
    spec = cfg.net
    if not (len(spec.input_shape) == 1 and all(layer.kind == "dense" for layer in spec.layers)):
        return {"features": 700, "width": 450, "depth": 1, "classes": 20}
    return {"features": spec.input_size, "width": spec.layers[0].width, "depth": spec.depth,
            "classes": spec.readout}


def write_index(out_dir: Path, items: Sequence[ReportItem]) -> Path:
    """``index.html``: each figure (SVG inline via <img>) with links to its files and provenance."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tpprof report</title>",
             "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}"
             "figure{margin:2em 0}img{max-width:100%;border:1px solid #ddd}"
             "pre{background:#f6f6f6;padding:.5em;font-size:11px;overflow:auto;max-height:12em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:2px 6px}</style>",
             "</head><body><h1>tpprof report</h1>"]
    for it in items:
        links = " · ".join(f"<a href='{html.escape(p.name)}'>{html.escape(p.suffix[1:].upper())}</a>"
                           for p in it.files)
        parts.append(f"<figure id='{html.escape(it.stem)}'><h2>{html.escape(it.title)}</h2>"
                     f"<img src='{html.escape(it.stem)}.svg' alt='{html.escape(it.title)}'>"
                     f"<figcaption>{links}</figcaption>{it.table_html}"
                     f"<pre>{html.escape(json.dumps(it.provenance, indent=1, sort_keys=True, default=str))}</pre>"
                     "</figure>")
    parts.append("</body></html>")
    path = out_dir / "index.html"
    tmp = path.with_name("index.html.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
