"""Figures from tpprof's result tables (plotly), and their static export with provenance.

Every figure function takes a tidy :class:`pandas.DataFrame` produced by :mod:`tpprof.views`
(the same table the dashboard offers as CSV) and returns a :class:`plotly.graph_objects.Figure`;
no figure function computes a memory formula. :func:`save_figure` writes one figure as PDF, SVG
and PNG plus a JSON provenance sidecar.

Static export uses kaleido 1.x, which drives a Chromium-family browser installed on the
machine (Debian: ``apt-get install chromium``). One kaleido server is started per process
(:func:`figure_bytes`), so each export after the first costs ~0.15 s instead of ~2.5 s.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import functools
import json
import math
import os
import shutil
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from tpprof.units import format_bytes
from tpprof.errors import UserError
from tpprof.store import CATEGORIES  # the shared memory categories, in stacking order

CATEGORY_COLORS: dict[str, str] = {
    "weights": "#4C78A8", "gradients": "#9ECAE9", "optimizer": "#F58518", "neuron_state": "#54A24B",
    "traces": "#E45756", "aux": "#B279A2", "loss_buffers": "#FF9DA6", "saved": "#9D755D",
    "implementation": "#BAB0AC",
}
#: One colour per rule (every rule of :data:`tpprof.config.RULES`, all distinct; a test checks):
#: a rule keeps its colour in every figure, measured and modelled alike.
RULE_COLORS: dict[str, str] = {
    "tp": "#D62728", "tess": "#1F77B4", "bptt": "#7F7F7F", "eprop": "#2CA02C", "eprop-rfb": "#98DF8A",
    "ostl": "#9467BD", "osttp": "#C5B0D5", "etlp": "#8C564B", "ottt": "#E377C2",
    "tess-authors-schedule": "#FF7F0E", "bptt-compact": "#17BECF", "bptt-ckpt": "#BCBD22", "tbptt": "#393B79",
}
RULE_LABELS: dict[str, str] = {
    "tp": "TP", "tess": "TESS", "bptt": "BPTT", "eprop": "e-prop", "eprop-rfb": "e-prop (random fb)",
    "ostl": "OSTL", "osttp": "OSTTP", "etlp": "ETLP", "ottt": "OTTT",
}
#: Regime-map verdicts (see tpprof.views.regime_frame), in legend order, with their colours.
VERDICTS: tuple[str, ...] = ("neither fits", "TP fits, does not learn", "only TESS fits", "both fit, TESS smaller",
                             "both fit, TP smaller", "only TP fits")
VERDICT_COLORS: tuple[str, ...] = ("#E0E0E0", "#9E9E9E", "#3C78B4", "#A6C8E6", "#F4A6A0", "#C8322D")
EXPORT_FORMATS: tuple[str, ...] = ("png", "svg", "pdf")
#: Static export size in CSS pixels (96 per inch): 7 × 5 in, the width of a two-column paper's
#: full-width figure, so a PDF goes in at 100 % with its fonts at their set size.
_EXPORT_SIZE = {"width": 672, "height": 480}
_TEMPLATE = "plotly_white"


def byte_unit(max_bytes: float) -> tuple[float, str]:
    """(divisor, name) of the binary unit that keeps axis numbers readable for ``max_bytes``."""
    for div, name in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if max_bytes >= div:
            return float(div), name
    return 1.0, "B"


def human_bytes(n: float) -> str:
    """Binary-prefixed size for labels, as every text of tpprof writes it
    (:func:`tpprof.config.format_bytes`); NaN or None → ``'–'``."""
    if n is None or not math.isfinite(float(n)):
        return "–"
    return format_bytes(n)


def byte_ticks(lo: float, hi: float, max_ticks: int = 8) -> dict[str, Any]:
    """Axis ticks for a log byte axis from ``lo`` to ``hi``: powers of two labelled in binary
    units (``1 MiB``, ``32 MiB``, ``1 GiB``), never plotly's default "1B" (= a billion)."""
    lo, hi = max(float(lo), 1.0), max(float(hi), 2.0)
    k0, k1 = math.floor(math.log2(lo)), math.ceil(math.log2(hi))
    step = 1
    while (k1 - k0) // step + 1 > max_ticks:
        step += 1
    vals = [2.0**k for k in range(k0, k1 + 1) if (k - k0) % step == 0]
    # powers of two are exact in their unit: "32 MiB", not "32.0 MiB"
    return {"tickvals": vals, "ticktext": [human_bytes(v).replace(".00 ", " ").replace(".0 ", " ") for v in vals]}


def _rule_rank(rule: str) -> int:
    """A rule's place in legends: the order of :data:`RULE_COLORS` (TP, TESS, BPTT first)."""
    order = list(RULE_COLORS)
    return order.index(rule) if rule in order else len(order)


def _rule_label(rule: str) -> str:
    return RULE_LABELS.get(rule, rule)


def _pivot(df: pd.DataFrame, value: str, index: str = "classes", columns: str = "batch") -> pd.DataFrame:
    """(index × columns) table of ``value`` (float when numeric), both axes sorted; the first row
    wins where a cell repeats and a cell no row names is NaN. Numpy, not ``DataFrame.pivot``: a
    dashboard figure pivots up to ten columns, and pandas' pivot costs ~4 ms each."""
    rows, r = np.unique(df[index].to_numpy(), return_inverse=True)  # (nR,), (n,)
    cols, c = np.unique(df[columns].to_numpy(), return_inverse=True)  # (nC,), (n,)
    _, first = np.unique(r * len(cols) + c, return_index=True)  # the first row of each cell
    vals = df[value].to_numpy()[first]
    out = np.full((len(rows), len(cols)), np.nan, dtype=np.float64 if vals.dtype.kind in "biuf" else object)
    out[r[first], c[first]] = vals
    return pd.DataFrame(out, index=pd.Index(rows, name=index), columns=pd.Index(cols, name=columns))


def _diverging(lo: float, hi: float, name: str = "RdBu_r", n: int = 11) -> list[list[Any]]:
    """A diverging colour scale over [lo, hi] whose white midpoint sits at 0 and whose
    saturation is proportional to |value| / max(|lo|, |hi|) on both sides."""
    from plotly.colors import sample_colorscale

    m = max(abs(lo), abs(hi))
    pos = np.linspace(0.0, 1.0, n)
    vals = lo + pos * (hi - lo)
    cols = sample_colorscale(name, list(0.5 + 0.5 * vals / m))
    return [[float(p), c] for p, c in zip(pos, cols)]


def _log_edges(v: np.ndarray) -> list[float]:
    """Log10 axis range covering the heatmap cells centred on the (log-spaced) values ``v``."""
    lv = np.log10(np.asarray(v, dtype=float))
    half = (lv[-1] - lv[0]) / max(len(lv) - 1, 1) / 2
    return [float(lv[0] - half), float(lv[-1] + half)]


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """The figure of plain trace and layout dicts, validated once.

    Building the same figure call by call (``add_trace``, ``update_layout``, ``update_xaxes``)
    validates at every call: 20-80 ms a figure, against ~10 ms here, and a dashboard
    interaction rebuilds up to three figures.
    """
    return go.Figure({"data": data, "layout": layout})


def _layout(title: str, margin: Mapping[str, int] | None = None, **kw: Any) -> dict[str, Any]:
    """The layout every figure shares (title, margins) plus ``kw``.

    No template here: the dashboard styles figures with Streamlit's theme, and applying a
    template costs ~25 ms per figure; static export (figure_bytes) applies _TEMPLATE.
    """
    return {"title": {"text": title, "x": 0.01, "xanchor": "left"},
            "margin": {"l": 70, "r": 30, "t": 70, "b": 60, **(margin or {})}, **kw}


def _axis(title: str, **kw: Any) -> dict[str, Any]:
    return {"title": {"text": title}, **kw}


def _log_axis(title: str, centres: np.ndarray) -> dict[str, Any]:
    """A log axis that spans the heatmap cells centred on ``centres``, labelled by :func:`log_ticks`."""
    c = np.asarray(centres, dtype=float)
    return _axis(title, type="log", range=_log_edges(c), **log_ticks(float(c.min()), float(c.max()), max_ticks=10))


def log_ticks(lo: float, hi: float, values: Iterable[float] | None = None, max_ticks: int = 8) -> dict[str, Any]:
    """Ticks of a log count axis, each labelled with its full value: plotly's own labels on a
    short log axis read "2" for 20 and "4" for 400.

    ``values`` (e.g. the T a measurement used) are the ticks when at most ``max_ticks`` of them;
    else 1-2-5 steps per decade, thinned to 1-10 or to every k-th decade to stay ≤ ``max_ticks``.
    """
    if values is not None:
        vals = sorted({float(v) for v in values if v and float(v) > 0})
        if 0 < len(vals) <= max_ticks:
            return {"tickvals": vals, "ticktext": [f"{v:,.0f}" if v >= 1 else f"{v:g}" for v in vals]}
    lo, hi = max(float(lo), 1e-12), max(float(hi), float(lo) * 1.0001, 1e-12)
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    vals = []
    for mantissas in ((1, 2, 5), (1,)):
        vals = [m * 10.0 ** d for d in range(d0, d1 + 1) for m in mantissas if lo <= m * 10.0 ** d <= hi]
        if len(vals) <= max_ticks:
            break
    step = 1
    while len(vals[::step]) > max_ticks:
        step += 1
    vals = vals[::step]
    return {"tickvals": vals, "ticktext": [f"{v:,.0f}" if v >= 1 else f"{v:g}" for v in vals]}


# --------------------------------------------------------------------------------------
# Relative memory cost (the paper's Figure 5)
# --------------------------------------------------------------------------------------


def figure5(df: pd.DataFrame, title: str | None = None, points: pd.DataFrame | None = None) -> go.Figure:
    """Heatmap of G(C, B) = Mem_other / Mem_TP over classes × batch, log axes (other: TESS, or
    per cell the best alternative named in ``other``).

    ``df``: one row per (classes, batch) with ``tp_bytes``, ``other_bytes`` (or ``tess_bytes``),
    optionally ``other``, and ``G`` (:func:`tpprof.views.figure5_frame`). Colour is log2 G (red: TP needs less, G > 1;
    blue: TESS needs less); thin contours at G = 2^k; the bold line is G = 1 (equal memory).
    ``points`` (name, classes, batch) marks workloads, e.g. the paper's benchmarks.
    """
    g = _pivot(df, "G")  # (C, B)
    tp = _pivot(df, "tp_bytes").reindex_like(g)
    other_col = "other_bytes" if "other_bytes" in df else "tess_bytes"
    tess = _pivot(df, other_col).reindex_like(g)
    names = (_pivot(df.assign(o=df["other"].map(_rule_label)), "o").reindex_like(g).to_numpy(dtype=object)
             if "other" in df else np.full(g.shape, "TESS", dtype=object))
    b = g.columns.to_numpy(dtype=float)  # (nB,)
    c = g.index.to_numpy(dtype=float)  # (nC,)
    log2g = np.log2(g.to_numpy(dtype=float))  # (nC, nB)
    finite = log2g[np.isfinite(log2g)]
    dlo, dhi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    lo, hi = min(-1, math.floor(dlo)), max(1, math.ceil(dhi))
    narrow = dhi - dlo < 2  # less than a factor 4 in G: label and contour in steps of 0.1 in G
    if narrow:
        nice = (0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
        gvals = [v for v in nice if lo <= math.log2(v) <= hi]
        ticks, labels = [math.log2(v) for v in gvals], [f"{v:g}" for v in gvals]
        gmin, gmax = 2.0 ** dlo, 2.0 ** dhi
        size = 0.1 if gmax <= 2 else 0.25 if gmax <= 4 else 0.5
        level_name = f"G in steps of {size:g}"
    else:
        ticks = list(range(lo, hi + 1))
        labels = [f"{2.0 ** t:g}" for t in ticks]
        level_name = "G = 2^k"
    text_tp = np.vectorize(human_bytes)(tp.to_numpy(dtype=float))
    text_tess = np.vectorize(human_bytes)(tess.to_numpy(dtype=float))
    custom = np.dstack([text_tp, text_tess, g.to_numpy(dtype=float), names])  # (nC, nB, 4)
    traces = [dict(
        type="heatmap", x=b, y=c, z=log2g, zmin=lo, zmax=hi, colorscale=_diverging(lo, hi), customdata=custom,
        colorbar={"title": {"text": "G"}, "tickvals": ticks, "ticktext": labels},
        hovertemplate="B = %{x}<br>C = %{y}<br>TP: %{customdata[0]}<br>%{customdata[3]}: %{customdata[1]}"
                      "<br>G = %{customdata[3]} / TP = %{customdata[2]:.3f}<extra></extra>",
        name="G",
    )]
    zc = np.power(2.0, log2g) if narrow else log2g  # contour levels must be evenly spaced
    start, end, size = ((size * math.ceil(gmin / size), gmax, size) if narrow else (float(lo), float(hi), 1.0))
    traces.append(dict(
        type="contour", x=b, y=c, z=zc, contours={"start": start, "end": end, "size": size, "coloring": "none"},
        line={"width": 0.6, "color": "rgba(40,40,40,0.45)"}, showscale=False, hoverinfo="skip",
        name=level_name, showlegend=True,
    ))
    crosses = dlo < 0 < dhi
    traces.append(dict(
        type="contour", x=b, y=c, z=log2g, contours={"start": 0, "end": 0, "size": 1, "coloring": "none"},
        line={"width": 3, "color": "black"}, showscale=False, hoverinfo="skip",
        name="G = 1 (equal memory)" if crosses else "G = 1 (not reached in this range)", showlegend=True,
    ))
    if points is not None and len(points):
        inside = points[points["classes"].between(c.min(), c.max()) & points["batch"].between(b.min(), b.max())]
        inside = inside.groupby(["classes", "batch"], as_index=False)["name"].agg(", ".join)  # one label per spot
        pos = label_positions(np.log10(inside["batch"].to_numpy(dtype=float)),
                              np.log10(inside["classes"].to_numpy(dtype=float)), list(inside["name"]),
                              _log_edges(b), _log_edges(c),
                              size=(_EXPORT_SIZE["width"] - 180.0, _EXPORT_SIZE["height"] - 170.0))
        traces.append(dict(type="scatter", x=inside["batch"], y=inside["classes"], mode="markers+text",
                           text=inside["name"], textposition=list(pos), textfont={"size": 10},
                           marker={"symbol": "x", "size": 9, "color": "black"}, name="paper's workloads",
                           hovertemplate="%{text}: B = %{x}, C = %{y}<extra></extra>"))
    return _figure(traces, _layout(title or "Relative memory cost G(C, B) = Mem_TESS / Mem_TP (G > 1: TP needs less)",
                                   xaxis=_log_axis("batch size B", b), yaxis=_log_axis("classes C", c),
                                   legend={"orientation": "h", "y": -0.16, "x": 0}, height=560))


# --------------------------------------------------------------------------------------
# Device regimes
# --------------------------------------------------------------------------------------


_LABEL_SPOTS: tuple[str, ...] = ("top right", "bottom right", "top left", "bottom left", "middle right",
                                 "middle left", "top center", "bottom center")


def label_positions(x: np.ndarray, y: np.ndarray, texts: Sequence[str], xrange: Sequence[float],
                    yrange: Sequence[float], size: tuple[float, float] = (700.0, 420.0),
                    char_px: float = 6.2, line_px: float = 13.0) -> list[str]:
    """A ``textposition`` per marker such that no label box overlaps another label or marker and
    each stays inside the plot (greedy, markers taken left to right; the first spot of
    :data:`_LABEL_SPOTS` that is free wins, else the least-overlapping one).

    ``x``, ``y``: marker positions in axis units (log10 for a log axis); ``xrange``/``yrange``:
    the axis ranges in those units; ``size``: the plot area in pixels (an estimate; labels are
    about ``char_px`` per character and ``line_px`` high at font size 10).
    """
    px = (np.asarray(x, float) - xrange[0]) / (xrange[1] - xrange[0]) * size[0]  # (n,)
    py = (np.asarray(y, float) - yrange[0]) / (yrange[1] - yrange[0]) * size[1]  # (n,)
    m, gap = 6.0, 5.0  # marker half-size; the clearance a label keeps from another marker (px)
    boxes = [(px[i] - m - gap, py[i] - m - gap, px[i] + m + gap, py[i] + m + gap) for i in range(len(px))]
    out = [""] * len(px)

    def box(i: int, spot: str) -> tuple[float, float, float, float]:
        vert, horiz = spot.split()
        w = char_px * len(texts[i])
        x0 = {"right": px[i] + m, "left": px[i] - m - w, "center": px[i] - w / 2}[horiz]
        y0 = {"top": py[i] + m, "bottom": py[i] - m - line_px, "middle": py[i] - line_px / 2}[vert]
        return (x0, y0, x0 + w, y0 + line_px)

    def overlap(a: tuple[float, ...], c: tuple[float, ...]) -> float:
        return max(0.0, min(a[2], c[2]) - max(a[0], c[0])) * max(0.0, min(a[3], c[3]) - max(a[1], c[1]))

    for i in sorted(range(len(px)), key=lambda k: (px[k], py[k])):
        def cost(spot: str) -> float:
            bx = box(i, spot)
            outside = (max(0.0, -bx[0]) + max(0.0, bx[2] - size[0]) + max(0.0, -bx[1])
                       + max(0.0, bx[3] - size[1])) * line_px
            return sum(overlap(bx, o) for j, o in enumerate(boxes) if j != i) + outside

        costs = [cost(sp) for sp in _LABEL_SPOTS]
        best = next((sp for sp, c in zip(_LABEL_SPOTS, costs) if c == 0), _LABEL_SPOTS[int(np.argmin(costs))])
        out[i] = best
        boxes.append(box(i, best))
    return out


def _learning_words(text: str, on_chip_learning: str) -> str:
    """A verdict as the device allows it: on a chip that cannot learn, nothing "fits", it only
    fits the memory (Device.can_learn)."""
    if on_chip_learning == "no":
        return text.replace("fits", "fits memory").replace("fit,", "fit memory,") + " — cannot learn on chip"
    return text


def regime_map(df: pd.DataFrame, budget_bytes: int, device: str = "", title: str | None = None,
               on_chip_learning: str = "yes") -> go.Figure:
    """Per (classes, batch) cell: which of TP / TESS fits the budget and which needs less.

    ``on_chip_learning`` (:attr:`tpprof.device.Device.on_chip_learning`): ``"no"`` relabels every
    verdict "fits memory — cannot learn on chip" and says so in the title; ``"partial"`` is
    stated in the title.

    ``df``: :func:`tpprof.views.regime_frame` (one row per cell and rule with ``peak_bytes``,
    ``fits``, and the cell's ``verdict``). BPTT (when present) is drawn as the boundary of
    the cells where it fits.
    """
    cells = df.drop_duplicates(["classes", "batch"]).copy()
    codes = cells["verdict"].map({v: i for i, v in enumerate(VERDICTS)})
    cells = cells.assign(code=codes)
    z = _pivot(cells, "code")  # (C, B)
    b = z.columns.to_numpy(dtype=float)
    c = z.index.to_numpy(dtype=float)
    hv = None
    for rule in dict.fromkeys(df["rule"]):
        sub = df[df["rule"] == rule]
        fit_words = " fits memory (cannot learn on chip)" if on_chip_learning == "no" else " fits"
        fits_txt = np.where(sub["learns"], fit_words, fit_words + ", does not learn") if "learns" in sub else fit_words
        txt = (_rule_label(rule) + ": " + sub["peak_bytes"].map(human_bytes)
               + np.where(sub["fits"], fits_txt, " does not fit"))
        part = _pivot(sub.assign(txt=txt), "txt").reindex_like(z).to_numpy(dtype=object)
        hv = part if hv is None else hv + "<br>" + part
    verdict = _pivot(cells.assign(verdict=cells["verdict"].map(lambda v: _learning_words(v, on_chip_learning))),
                     "verdict").reindex_like(z)
    n = len(VERDICTS)
    scale = []
    for i, col in enumerate(VERDICT_COLORS):
        scale += [[i / n, col], [(i + 1) / n, col]]
    traces = [dict(
        type="heatmap", x=b, y=c, z=z.to_numpy(dtype=float), zmin=-0.5, zmax=n - 0.5, colorscale=scale,
        customdata=np.dstack([verdict.to_numpy(dtype=object), hv]),
        colorbar={"tickvals": list(range(n)), "ticktext": [_learning_words(v, on_chip_learning) for v in VERDICTS],
                  "title": {"text": ""}},
        hovertemplate="B = %{x}<br>C = %{y}<br><b>%{customdata[0]}</b><br>%{customdata[1]}<extra></extra>",
        name="regime",
    )]
    if "bptt" in set(df["rule"]):
        bp = _pivot(df[df["rule"] == "bptt"].assign(f=lambda d: d["fits"].astype(float)), "f").reindex_like(z)
        if 0 < np.nanmean(bp.to_numpy(dtype=float)) < 1:
            traces.append(dict(
                type="contour", x=b, y=c, z=bp.to_numpy(dtype=float),
                contours={"start": 0.5, "end": 0.5, "size": 1, "coloring": "none"},
                line={"width": 2.5, "dash": "dash", "color": "black"}, showscale=False, hoverinfo="skip",
                name="BPTT fits on the small-B side of this line", showlegend=True,
            ))
    where = f" on {device}" if device else ""
    title = title or f"Which rule fits{where} (budget {human_bytes(budget_bytes)}) and where TP wins"
    if on_chip_learning == "no":
        title = f"{device or 'This device'} cannot learn on chip — memory only: " + title
    elif on_chip_learning == "partial":
        title += " (on-chip learning: partial)"
    return _figure(traces, _layout(title, xaxis=_log_axis("batch size B", b), yaxis=_log_axis("classes C", c),
                                   legend={"orientation": "h", "y": -0.16, "x": 0}, height=560))


def category_bars(df: pd.DataFrame, x: str = "rule", budget_bytes: int | None = None,
                  title: str = "Memory at the step's peak, by category") -> go.Figure:
    """Stacked bars of the bytes live at the peak per category for each ``x`` value (e.g. each
    rule), the peak marked with its headroom, and the budget line.

    ``df``: columns ``x``, ``category``, ``bytes``, optionally ``peak_bytes``
    (:func:`tpprof.views.breakdown_frame`).
    """
    traces: list[dict[str, Any]] = []
    order = list(dict.fromkeys(df[x]))
    labels = [_rule_label(v) if x == "rule" else str(v) for v in order]
    top = max(float(df.groupby(x)["bytes"].sum().max()), float(budget_bytes or 0))
    div, unit = byte_unit(top)
    table = _pivot(df, "bytes", index=x, columns="category").reindex(order)  # (x values, categories)
    for cat in (c for c in CATEGORIES if c in table):
        sub = table[cat].fillna(0)
        if (sub > 0).any():
            traces.append(dict(type="bar", x=labels, y=sub.to_numpy() / div, name=cat,
                               marker={"color": CATEGORY_COLORS[cat]}, customdata=[human_bytes(v) for v in sub],
                               hovertemplate=f"{cat}: %{{customdata}}<extra>%{{x}}</extra>"))
    if "peak_bytes" in df:
        pk = df.drop_duplicates(x).set_index(x)["peak_bytes"].reindex(order)
        txt = [human_bytes(v) + (f"<br>headroom {human_bytes(budget_bytes - v)}" if budget_bytes and v <= budget_bytes
                                 else " (over budget)" if budget_bytes else "") for v in pk]
        traces.append(dict(type="scatter", x=labels, y=pk.to_numpy() / div, mode="markers+text",
                           name="peak over a step", marker={"symbol": "diamond", "size": 11, "color": "black"},
                           text=txt, textposition="top center", hovertemplate="peak %{text}<extra>%{x}</extra>"))
    # with a budget, its label sits in a wider right margin
    layout = _layout(title, margin={"r": 90} if budget_bytes else None, barmode="stack",
                     yaxis=_axis(unit, rangemode="tozero"))
    if budget_bytes:
        y = budget_bytes / div
        layout["shapes"] = [{"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y,
                             "line": {"color": "black", "dash": "dash", "width": 2}}]
        # the label sits in the right margin, beside the line's end, so it never covers a bar
        layout["annotations"] = [{"x": 1.0, "xref": "paper", "xanchor": "left", "y": y, "yref": "y",
                                  "showarrow": False, "text": f"budget<br>{human_bytes(budget_bytes)}",
                                  "align": "left"}]
    return _figure(traces, layout)


# --------------------------------------------------------------------------------------
# Scaling
# --------------------------------------------------------------------------------------


def scaling(df: pd.DataFrame, var: str, title: str | None = None, shared_y: bool = True) -> go.Figure:
    """Memory vs ``var`` (depth, width or steps), one panel per rule, stacked by category.

    ``df``: :func:`tpprof.views.scaling_frame` (columns ``rule``, ``var``, ``category``, ``bytes``; one
    row per rule, value and category).
    Bars stack the bytes live at the step's peak (their top is the peak).
    ``shared_y=False`` gives each rule its own scale (BPTT can dwarf the local rules).
    """
    rules = list(dict.fromkeys(df["rule"]))
    xs = sorted(df[var].unique())
    # A linear numeric axis: T, depth and width are spaced by value, so linear growth looks linear
    # (an evenly spaced category axis made 10, 25, 50, 100, 200, 400 look exponential).
    xvals = [float(v) for v in xs]
    gaps = [b - a for a, b in zip(xvals, xvals[1:])]
    width = 0.7 * min(gaps) if gaps else None
    div, unit = byte_unit(float(df.groupby(["rule", var])["bytes"].sum().max()))
    traces: list[dict[str, Any]] = []
    in_legend: set[str] = set()  # every category once, from whichever panel has it first
    for j, rule in enumerate(rules, start=1):
        sub = df[df["rule"] == rule]
        table = _pivot(sub, "bytes", index="category", columns=var).reindex(columns=xs)  # one row per cell
        for cat in CATEGORIES:
            if cat not in table.index:
                continue
            vals = table.loc[cat].fillna(0).to_numpy()
            if (vals > 0).any():
                suffix = "" if j == 1 else str(j)
                traces.append(dict(type="bar", x=xvals, y=vals / div, name=cat, legendgroup=cat,
                                   showlegend=cat not in in_legend, width=width, marker={"color": CATEGORY_COLORS[cat]},
                                   customdata=[human_bytes(v) for v in vals], xaxis="x" + suffix, yaxis="y" + suffix,
                                   hovertemplate=f"{var} = %{{x}}<br>{cat}: %{{customdata}}<extra>{rule}</extra>"))
                in_legend.add(cat)
    layout = _layout(title or f"Memory at the step's peak vs {var}, by category",
                     legend={"orientation": "h", "y": -0.2, "x": 0}, barmode="stack",
                     **_subplot_row([_rule_label(r) for r in rules], shared_y))
    for j in range(1, len(rules) + 1):
        layout["xaxis" + ("" if j == 1 else str(j))].update(_axis(var, type="linear", tickvals=xvals,
                                                                   ticktext=[str(v) for v in xs]))
    layout["yaxis"]["title"] = {"text": unit}
    return _figure(traces, layout)


def _subplot_row(titles: list[str], shared_y: bool) -> dict[str, Any]:
    """Layout axes and title annotations of one row of panels, as plotly's ``make_subplots``
    lays them out (a test compares the two). Computed, not built: ``make_subplots`` costs ~10 ms,
    and ~90 ms the first time in a process.

    Panel j of n spans ``[j·(w + s), j·(w + s) + w]`` of the width, w = (1 − s·(n − 1)) / n, with
    spacing s = 0.03 when the panels share their y axis (tick labels on the first only), else 0.06.
    """
    n, s = len(titles), (0.03 if shared_y else 0.06)
    widths = [(1.0 - s * (n - 1)) / n] * n
    layout: dict[str, Any] = {}
    annotations = []
    for j, title in enumerate(titles):
        suffix = "" if j == 0 else str(j + 1)
        x0 = sum(widths[:j]) + j * s
        domain = [x0, x0 + widths[j]]
        layout["xaxis" + suffix] = {"anchor": "y" + suffix, "domain": domain}
        layout["yaxis" + suffix] = {"anchor": "x" + suffix, "domain": [0.0, 1.0]}
        if shared_y and j:
            layout["yaxis" + suffix].update(matches="y", showticklabels=False)
        annotations.append({"font": {"size": 16}, "showarrow": False, "text": title, "x": sum(domain) / 2.0,
                            "xanchor": "center", "xref": "paper", "y": 1.0, "yanchor": "bottom", "yref": "paper"})
    layout["annotations"] = annotations
    return layout


# --------------------------------------------------------------------------------------
# Measured vs analytic
# --------------------------------------------------------------------------------------


def measured_vs_analytic(df: pd.DataFrame, tolerance: float = 0.05, title: str | None = None) -> go.Figure:
    """Measured peak against the analytic peak, log-log, with y = x and a ±tolerance band.

    ``df``: :func:`tpprof.views.compare_frame` (columns ``rule``, ``predicted_bytes``,
    ``measured_bytes``, ``error``, ``label``, ``source``).
    """
    pos = df[(df["predicted_bytes"] > 0) & (df["measured_bytes"] > 0)]
    if len(pos):
        lo = float(min(pos["predicted_bytes"].min(), pos["measured_bytes"].min())) / 1.5
        hi = float(max(pos["predicted_bytes"].max(), pos["measured_bytes"].max())) * 1.5
    else:
        lo, hi = 1.0, 1e9
    line = np.geomspace(lo, hi, 50)
    traces = [dict(type="scatter", x=np.r_[line, line[::-1]],
                   y=np.r_[line * (1 + tolerance), (line * (1 - tolerance))[::-1]], fill="toself",
                   fillcolor="rgba(120,120,120,0.18)", line={"width": 0}, name=f"±{tolerance:.0%} band",
                   hoverinfo="skip"),
              dict(type="scatter", x=line, y=line, mode="lines", line={"color": "black", "width": 1.5},
                   name="y = x (exact)", hoverinfo="skip")]
    # TP, TESS, BPTT first in the legend (RULE_COLORS order) and drawn last, on top of the others
    for rule in sorted(dict.fromkeys(pos["rule"]), key=_rule_rank, reverse=True):
        sub = pos[pos["rule"] == rule]
        traces.append(dict(
            type="scatter", x=sub["predicted_bytes"], y=sub["measured_bytes"], mode="markers", name=_rule_label(rule),
            legendrank=100 + _rule_rank(rule),
            marker={"color": RULE_COLORS.get(rule), "size": 8, "line": {"width": 0.5, "color": "white"}},
            customdata=np.c_[sub["label"].astype(str), sub["error"].map(lambda e: f"{e:+.1%}"), sub["source"]],
            hovertemplate="%{customdata[0]}<br>analytic %{x:.4s}B, measured %{y:.4s}B<br>error %{customdata[1]}"
                          "<br>%{customdata[2]}<extra></extra>",
        ))
    return _figure(traces, _layout(title or "Measured vs analytic peak memory",
                                   xaxis=_axis("analytic peak (bytes)", type="log", **byte_ticks(lo, hi)),
                                   yaxis=_axis("measured peak (bytes)", type="log", **byte_ticks(lo, hi))))


#: Marker symbols that tell the measured groups (net, B, C, ...) of one figure apart.
_GROUP_SYMBOLS: tuple[str, ...] = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross",
                                   "triangle-down", "pentagon", "hexagon")


def _common_words(names: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The words every name shares (in the first name's order), and each name without them:
    ``["shd B=16 fp32", "shd B=128 fp32"]`` → ``("shd fp32", {...: "B=16", ...: "B=128"})``."""
    if len(names) < 2:
        return "", {n: n for n in names}
    shared = set(names[0].split()).intersection(*(n.split() for n in names[1:]))
    common = " ".join(w for w in names[0].split() if w in shared)
    return common, {n: " ".join(w for w in n.split() if w not in shared) or n for n in names}


def t_invariance(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Peak memory against time steps T per rule: measured (markers), analytic (dotted lines).

    ``df``: :func:`tpprof.views.compare_frame` rows of groups measured at ≥ 2 values of T.
    A rule has one colour (:data:`RULE_COLORS`) for its measured and modelled points; a group
    (the rest of the configuration: net, B, C, dtype, device, options) has one marker symbol.
    The legend lists each rule once, each group once (in grey) and the two line styles, so it
    stays short enough to show whole however many groups were measured.
    """
    traces: list[dict[str, Any]] = []
    groups = list(dict.fromkeys(df["group"])) if len(df) else []
    symbol = {g: _GROUP_SYMBOLS[i % len(_GROUP_SYMBOLS)] for i, g in enumerate(groups)}
    common, short = _common_words(groups)
    rules = sorted(dict.fromkeys(df["rule"]), key=_rule_rank) if len(df) else []
    for rule in rules:
        color, label = RULE_COLORS.get(rule, "#333333"), _rule_label(rule)
        first = True
        for group, sub in df[df["rule"] == rule].groupby("group", sort=False):
            sub = sub.sort_values("steps")
            where = f"{label} · {group}"
            traces.append(dict(type="scatter", x=sub["steps"], y=sub["predicted_bytes"], mode="lines",
                               name=label, legendgroup=rule, showlegend=first,
                               line={"color": color, "dash": "dot", "width": 2},
                               hovertemplate="T = %{x}<br>analytic %{y:.4s}B<extra>" + where + "</extra>"))
            traces.append(dict(type="scatter", x=sub["steps"], y=sub["measured_bytes"], mode="markers",
                               name=label, legendgroup=rule, showlegend=False,
                               marker={"color": color, "size": 9, "symbol": symbol[group],
                                       "line": {"width": 0.5, "color": "white"}},
                               hovertemplate="T = %{x}<br>measured %{y:.4s}B<extra>" + where + "</extra>"))
            first = False
    # the legend's key: the line style of the model, a marker symbol per group (legend-only traces)
    traces.append(dict(type="scatter", x=[None], y=[None], mode="lines", name="analytic (model)",
                       line={"color": "#444", "dash": "dot"}, legendgroup="_key", hoverinfo="skip"))
    for group in groups:
        traces.append(dict(type="scatter", x=[None], y=[None], mode="markers", name=f"measured {short[group]}",
                           marker={"color": "#444", "symbol": symbol[group], "size": 9}, legendgroup="_key",
                           hoverinfo="skip"))
    vals = pd.concat([df["measured_bytes"], df["predicted_bytes"]]) if len(df) else pd.Series([1.0, 2.0])
    vals = vals[vals > 0]
    ticks = byte_ticks(float(vals.min()), float(vals.max())) if len(vals) else {}
    steps = df["steps"] if len(df) else pd.Series([1, 10])
    return _figure(traces, _layout(title or "T-invariance: TP and TESS flat in T, BPTT linear",
                                   legend={"orientation": "h", "y": -0.18, "x": 0, "yanchor": "top",
                                           "font": {"size": 11},
                                           "title": {"text": f"all: {common}" if common else "", "side": "top"}},
                                   margin={"b": 40},
                                   xaxis=_axis("time steps T", type="log",
                                               **log_ticks(float(steps.min()), float(steps.max()), values=steps)),
                                   yaxis=_axis("peak memory (bytes)", type="log", **ticks)))


# --------------------------------------------------------------------------------------
# Training results
# --------------------------------------------------------------------------------------


def _mean_std(df: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    out = df.groupby(keys, sort=False)[value].agg(["mean", "std", "count"]).reset_index()
    return out.fillna({"std": 0.0})


ACCURACY_GROUP_KEYS: tuple[str, ...] = ("task", "rule", "net", "neuron", "frozen")


def accuracy_groups(df: pd.DataFrame, metric: str = "test_final") -> pd.DataFrame:
    """Mean ± std over seeds per (task, rule, net, neuron, frozen): runs with different nets or
    neuron settings are never pooled. ``variant`` names a bar series: the rule, plus the net and
    the neuron setting when the rows hold more than one, plus "(hidden frozen)" for controls."""
    d = df.copy()
    for col in ("net", "neuron"):
        d[col] = d[col].astype(str) if col in d else ""
    d["frozen"] = d["frozen_hidden"].astype(str).str.lower().isin(["true", "1"])
    many_nets, many_neurons = d["net"].nunique() > 1, d["neuron"].nunique() > 1
    d["variant"] = (d["rule"].map(_rule_label)
                    + (" " + d["net"] if many_nets else "")
                    + (" [" + d["neuron"] + "]" if many_neurons else "")
                    + np.where(d["frozen"], " (hidden frozen)", ""))
    return _mean_std(d, [*ACCURACY_GROUP_KEYS, "variant"], metric)


def _config_title(net: str, neuron: str) -> str:
    """A panel title for one (net, neuron) configuration: ``40-256-256-60 · α=0.96 β=0.97``."""
    words = neuron.replace("alpha=", "α=").replace("beta=", "β=").strip()
    return "<br>".join(x for x in (net, words) if x and x != "nan")


def accuracy_bars(df: pd.DataFrame, metric: str = "test_final", title: str | None = None) -> go.Figure:
    """Test accuracy per rule and task (mean ± std over seeds), one panel per configuration
    (net and neuron setting, named above the panel), so two configurations are never side by side
    in one colour; hidden-frozen controls hatched (:func:`accuracy_groups`). Default: the final
    epoch, as the README reports (``test_best`` picks the epoch on the test set).

    ``df``: docs/results/accuracy.csv rows (accuracies as fractions 0–1).
    """
    stats = accuracy_groups(df, metric)
    configs = list(dict.fromkeys(zip(stats["net"], stats["neuron"])))
    traces: list[dict[str, Any]] = []
    in_legend: set[tuple[str, bool]] = set()
    for j, (net, neuron) in enumerate(configs, start=1):
        panel = stats[(stats["net"] == net) & (stats["neuron"] == neuron)]
        suffix = "" if j == 1 else str(j)
        for (rule, frozen), sub in panel.groupby(["rule", "frozen"], sort=False):
            name = _rule_label(str(rule)) + (" (hidden frozen)" if frozen else "")
            traces.append(dict(type="bar", x=sub["task"], y=sub["mean"] * 100, name=name,
                               legendgroup=name, showlegend=(rule, frozen) not in in_legend,
                               error_y={"type": "data", "array": sub["std"] * 100},
                               marker={"color": RULE_COLORS.get(str(rule)),
                                       "pattern": {"shape": "/" if frozen else ""}},
                               customdata=sub["count"], xaxis="x" + suffix, yaxis="y" + suffix,
                               hovertemplate="%{x}: %{y:.2f} %<br>seeds: %{customdata}<extra>"
                                             + sub["variant"].iloc[0] + "</extra>"))
            in_legend.add((rule, frozen))
    layout = _layout(title or "Test accuracy per rule (mean ± std over seeds)", barmode="group",
                     legend={"orientation": "h", "y": -0.18, "x": 0}, margin={"t": 100 if len(configs) > 1 else 70},
                     **_subplot_row([_config_title(n, u) if len(configs) > 1 else "" for n, u in configs], True))
    for j in range(1, len(configs) + 1):
        layout["xaxis" + ("" if j == 1 else str(j))].update(_axis("task", type="category"))
    layout["yaxis"].update(_axis(f"{metric.replace('_', ' ')} accuracy (%)", range=[0, 100]))
    for ann in layout["annotations"]:
        ann["font"] = {"size": 11}
    return _figure(traces, layout)


def _shots_order(v: Any) -> tuple[int, str]:
    s = str(v).strip().lower()
    if s in {"0", "before"}:
        return (0, "before")
    if s.isdigit():
        return (int(s), f"{s}-shot")
    return (10**9, s)


def finetune_bars(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """On-device fine-tuning on a new speaker: accuracy before, after 1-shot, 5-shot, all.

    ``df``: docs/results/finetune.csv rows (speaker, shots, accuracy, seed); bars are means
    over speakers and seeds, error bars one std, dots individual speakers.
    """
    d = df.assign(order=df["shots"].map(lambda v: _shots_order(v)[0]),
                  label=df["shots"].map(lambda v: _shots_order(v)[1]))
    stats = _mean_std(d.sort_values("order"), ["order", "label"], "accuracy")
    runs = d.sort_values("order")
    traces = [dict(type="bar", x=stats["label"], y=stats["mean"] * 100,
                   error_y={"type": "data", "array": stats["std"] * 100},
                   marker={"color": ["#BBBBBB"] + [RULE_COLORS["tp"]] * (len(stats) - 1)}, name="mean ± std",
                   hovertemplate="%{x}: %{y:.2f} %<extra></extra>"),
              dict(type="scatter", x=runs["label"], y=runs["accuracy"] * 100, mode="markers",
                   marker={"color": "black", "size": 5, "opacity": 0.6}, name="speaker / seed",
                   customdata=runs["speaker"], hovertemplate="%{customdata}: %{y:.1f} %<extra></extra>")]
    return _figure(traces, _layout(title or "Fine-tuning on a new speaker (Figure 3b analogue)",
                                   yaxis=_axis("query accuracy (%)", range=[0, 100]),
                                   xaxis=_axis("fine-tuning shots per class", type="category")))


def silhouette(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Per-layer silhouette score of the input traces (Figure 4 analogue), one line per net."""
    traces: list[dict[str, Any]] = []
    for net, sub in df.groupby("net", sort=False):
        s = _mean_std(sub, ["layer"], "silhouette").sort_values("layer")
        traces.append(dict(type="scatter", x=s["layer"], y=s["mean"], error_y={"type": "data", "array": s["std"]},
                           mode="lines+markers", name=str(net)))
    return _figure(traces, _layout(title or "Class separation of the input traces per layer (Figure 4 analogue)",
                                   xaxis=_axis("hidden layer", dtick=1), yaxis=_axis("silhouette score")))


def empty_figure(message: str) -> go.Figure:
    """A blank figure carrying a message (for views with no data)."""
    return _figure([], _layout("", annotations=[{"text": message, "showarrow": False, "x": 0.5, "y": 0.5,
                                                  "xref": "paper", "yref": "paper"}],
                               xaxis={"visible": False}, yaxis={"visible": False}))


# --------------------------------------------------------------------------------------
# Static export
# --------------------------------------------------------------------------------------

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_export_lock = threading.Lock()
_server_started = False


def find_browser() -> str:
    """Path of the Chromium-family browser kaleido will drive; a one-line error if none.

    Honours ``BROWSER_PATH`` (as kaleido's browser finder does), then searches ``PATH``.
    """
    env = os.environ.get("BROWSER_PATH")
    if env and os.access(env, os.X_OK):
        return env
    for name in _BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise UserError("export", "static figure export needs a Chromium browser and none was found",
                    "install it with `apt-get install chromium` (or set BROWSER_PATH)")


def _stop_server() -> None:
    global _server_started
    if _server_started:
        import kaleido

        try:
            kaleido.stop_sync_server(silence_warnings=True)
        except Exception:  # noqa: BLE001 - interpreter shutdown; nothing to report to
            pass
        _server_started = False


def figure_bytes(fig: go.Figure, fmt: str, width: int | None = None, height: int | None = None,
                 scale: float = 2.0) -> bytes:
    """Render ``fig`` as ``png``, ``svg`` or ``pdf`` bytes with kaleido (one server per process)."""
    global _server_started
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise UserError("format", f"{fmt!r} is not an export format", ", ".join(EXPORT_FORMATS))
    find_browser()
    import kaleido

    with _export_lock:
        if not _server_started:
            kaleido.start_sync_server(silence_warnings=True)
            _server_started = True
            atexit.register(_stop_server)
        opts = {"format": fmt, "width": width or _EXPORT_SIZE["width"], "height": height or _EXPORT_SIZE["height"],
                "scale": scale if fmt == "png" else 1}
        spec = go.Figure(fig).update_layout(template=_TEMPLATE).to_dict()
        return kaleido.calc_fig_sync(spec, opts=opts)


def versions() -> dict[str, str | None]:
    """Versions for provenance, read from installed metadata (no torch import)."""
    out: dict[str, str | None] = {}
    for pkg in ("tpprof", "torch", "numpy", "pandas", "plotly", "kaleido"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """Which tpprof drew a figure: the git commit (and whether the checkout had uncommitted
    changes) when the package runs from its own git checkout, else the installed version."""
    import subprocess

    pkg = Path(__file__).resolve().parent
    try:
        run = functools.partial(subprocess.run, cwd=pkg.parent, capture_output=True, text=True, timeout=10,
                                check=True)
        run(["git", "ls-files", "--error-unmatch", "tpprof/__init__.py"])  # this checkout holds the package
        sha = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        dirty = bool(run(["git", "status", "--porcelain", "--untracked-files=no", "--", "tpprof"]).stdout.strip())
        return {"tpprof_commit": sha, "tpprof_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"tpprof_version": versions()["tpprof"]}


def provenance_record(figure: str, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON sidecar: the caller's provenance (config, data files and their hashes) + the code
    (:func:`code_version`) + versions + time."""
    rec: dict[str, Any] = {"figure": figure}
    rec.update(dict(provenance or {}))
    rec.setdefault("code", code_version())
    rec.setdefault("versions", versions())
    rec.setdefault("created_utc", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    return rec


def save_figure(fig: go.Figure, path_stem: str | Path, provenance: Mapping[str, Any] | None = None,
                formats: Iterable[str] = EXPORT_FORMATS, size: tuple[int, int] | None = None) -> list[Path]:
    """Write ``<stem>.pdf/.svg/.png`` and ``<stem>.json`` (provenance); return the paths.
    ``size``: (width, height) in CSS pixels, 96 per inch (default :data:`_EXPORT_SIZE`).

    Each file is written to a temporary name and renamed, so an interrupted export never
    leaves a half-written figure behind.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        data = figure_bytes(fig, fmt, *(size or ()))
        written.append(_atomic_write(stem.with_name(stem.name + "." + fmt), data))
    rec = provenance_record(stem.name, provenance)
    written.append(_atomic_write(stem.with_name(stem.name + ".json"),
                                 json.dumps(rec, indent=2, sort_keys=True, default=str).encode()))
    return written


def _atomic_write(path: Path, data: bytes) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------------------
# Memory × time per step (the Pareto view of every learner on one config)
# --------------------------------------------------------------------------------------


def pareto(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Peak memory (log x) against modelled time per step (y) for the rows of
    :func:`tpprof.analytic.timing.pareto_table`; the Pareto front is joined by a line and its
    points are filled, the dominated ones hollow."""
    front = df[df["pareto"]].sort_values("peak_bytes")
    traces = [dict(type="scatter", x=front["peak_bytes"], y=front["time_s_per_step"] * 1e3, mode="lines",
                   line={"color": "#888", "dash": "dot"}, name="Pareto front", hoverinfo="skip")]
    for rule, g in df.groupby("rule", sort=False, observed=True):
        traces.append(dict(
            type="scatter", x=g["peak_bytes"], y=g["time_s_per_step"] * 1e3, mode="markers",
            name=_rule_label(str(rule)),
            marker={"size": 10, "symbol": ["circle" if p else "circle-open" for p in g["pareto"]],
                    "color": RULE_COLORS.get(str(rule), "#333333"), "line": {"width": 2}},
            text=g["label"], customdata=[human_bytes(v) for v in g["peak_bytes"]],
            hovertemplate="%{text}<br>peak %{customdata}<br>%{y:.3g} ms / step<extra></extra>"))
    lo, hi = float(df["peak_bytes"].min()), float(df["peak_bytes"].max())
    return _figure(traces, _layout(title or "Memory against time per step: filled = Pareto front", height=520,
                                   legend={"title": {"text": "rule"}},
                                   xaxis=_axis("peak memory (full accounting)", type="log", **byte_ticks(lo, hi)),
                                   yaxis=_axis("time per step, ms (compute model)", rangemode="tozero")))


#: Marker symbols of a rule's modes in one figure (its first mode a circle), each with an "-open" form.
_MODE_SYMBOLS: tuple[str, ...] = ("circle", "diamond", "square", "triangle-up")


def accuracy_vs_peak(df: pd.DataFrame, budget_bytes: int | None = None, device: str = "",
                     title: str | None = None) -> go.Figure:
    """Final-epoch test accuracy (mean ± sd over seeds) against peak memory (log x) per learner of a
    comparison (:func:`tpprof.compare.ranking_frame`); the accuracy × peak Pareto front joined by a
    line, learners that do not fit or learn on the device hollow, the device's budget a vertical line.
    The peak's accounting is the frame's ``accounting`` column, named on the axis."""
    acc = str(df["accounting"].iloc[0]) if len(df) else "full"
    front = df[df["pareto"]].sort_values("peak_bytes")
    traces: list[dict[str, Any]] = [dict(type="scatter", x=front["peak_bytes"], y=front["acc_mean"] * 100,
                                         mode="lines", line={"color": "#888", "dash": "dot"},
                                         name="Pareto front", hoverinfo="skip")]
    modes: dict[str, int] = {}  # a rule's modes (TP per sample, per class, authors') share its colour: one symbol each
    for label, g in df.groupby("label", sort=False):
        rule = str(g["rule"].iloc[0])
        ok = bool(g["fits_learns"].iloc[0])
        shape = _MODE_SYMBOLS[modes.setdefault(rule, 0) % len(_MODE_SYMBOLS)]
        modes[rule] += 1
        traces.append(dict(
            type="scatter", x=g["peak_bytes"], y=g["acc_mean"] * 100, mode="markers", name=str(label),
            error_y={"type": "data", "array": g["acc_sd"].fillna(0) * 100},
            marker={"size": 11, "color": RULE_COLORS.get(rule, "#555"), "symbol": shape if ok else f"{shape}-open",
                    "line": {"width": 2, "color": RULE_COLORS.get(rule, "#555")}},
            customdata=[[human_bytes(p), w or "fits and learns"] for p, w in zip(g["peak_bytes"], g["why_not"])],
            hovertemplate=f"{label}<br>%{{y:.1f}} %<br>peak %{{customdata[0]}}<br>%{{customdata[1]}}<extra></extra>"))
    lo = float(df["peak_bytes"].min()) if len(df) else 1.0
    hi = float(df["peak_bytes"].max()) if len(df) else 2.0
    shapes = []
    if budget_bytes:
        lo, hi = min(lo, budget_bytes), max(hi, budget_bytes)
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": budget_bytes, "x1": budget_bytes,
                       "y0": 0, "y1": 1, "line": {"color": "#C8322D", "dash": "dash"}})
    return _figure(traces, _layout(
        title or f"Accuracy against peak memory{' vs ' + device if device else ''}: filled = fits and learns",
        height=520, shapes=shapes, legend={"title": {"text": "learner"}},
        xaxis=_axis(f"peak memory ({acc} accounting)", type="log", **byte_ticks(lo * 0.8, hi * 1.25)),
        yaxis=_axis("final-epoch test accuracy, % (mean ± sd over seeds)")))
