"""Relative memory cost: G(C, B) = Mem_TESS / Mem_TP over classes × batch (the paper's Figure 5)."""

from __future__ import annotations

import streamlit as st

from tpprof import views

from . import common

#: Log-spaced values per axis (18 × 18 cells × 2 rules: ~650 analytic estimates per view, one estimate_grid
#: call; an interaction costs ~50-70 ms of server time on a 2-core machine; tpprof report draws 24 × 24).
GRID_POINTS = 18

_TITLES = {
    "paper": "G(C, B) = Mem_TESS / Mem_TP — paper accounting [reconstructed]",
    "paper+s": "G(C, B) = Mem_TESS / Mem_TP — paper accounting + S [reconstructed]",
    "full": "G(C, B) = peak TESS / peak TP — tpprof full accounting",
    "algorithm": "G(C, B) = peak TESS / peak TP — algorithm only: no framework temporaries",
}
_TARGET_LABEL = {"batch": "", "classes": " — TP target path per class (exact dedup, K = min(B, C))"}


def render() -> None:
    st.subheader("Relative memory cost of TESS vs TP")
    st.caption("G > 1 (red): TP needs less memory than TESS; G < 1 (blue): TESS needs less; the bold line is G = 1.")
    # the controls in two rows, so the chart starts within a 1400 × 1000 first screen
    c1, c0, c5, c2 = st.columns([2, 2, 2, 3])
    with c1:
        acc = common.select("Accounting", list(views.ACCOUNTINGS), "f5_acc", "paper",
                            help="; ".join(f"{k}: {v}" for k, v in views.ACCOUNTINGS.items()))
    with c0:
        versus = common.select("TP against", list(views.FIGURE5_VERSUS), "f5_vs", "tess",
                               help="; ".join(f"{k}: {v}" for k, v in views.FIGURE5_VERSUS.items()))
    with c5:
        rows = common.select("TP target path", list(views.TARGET_ROWS), "f5_rows", "batch",
                             format_func=lambda k: views.TARGET_ROWS[k],
                             help="per sample: the paper's TP, B target-path rows; per class: the exact "
                                  "class-deduplicated TP (same updates), K = min(B, C) rows — the model's worst case "
                                  "for K")
    paper = acc in views.ACCOUNTINGS and acc.startswith("paper")
    unused = (f"Not used under the {acc} accounting: it counts state elements per the paper's formulas "
              "with one element size and no optimiser. Choose the full accounting to use the net's widths, dtype "
              "and optimiser.") if paper else None
    with c2:
        net = common.net_input("f5_net", "shd", upload_folded=True)
    d1, d2, d3, d4, d5 = st.columns([1, 1, 2, 2, 1.4])
    dtype, opt = common.dtype_optimizer("f5", unused, cols=(d1, d2))
    with d3:
        crange = common.range_slider("Classes C", "f5_c", (2, 1000), "Range of class counts (log-spaced)")
    with d4:
        brange = common.range_slider("Batch size B", "f5_b", (2, 1024), "Range of batch sizes (log-spaced); "
                                     "1024 is the gsc preset's batch")
    with d5:
        marks_on = st.checkbox("Mark the paper's workloads", value=True, key="f5_marks", **common._BIND,
                               help="Each preset's (C, B), e.g. SHD at C = 20, B = 128")
    cfg = common.config(net=net, dtype=dtype, optimizer=opt, target_rows=rows)
    df = common.figure5_frame(cfg, acc, crange, brange, GRID_POINTS, versus)
    marks = views.preset_points() if marks_on else None
    title = _TITLES[acc] if versus == "tess" else _TITLES[acc].replace("TESS", "best alternative")
    where = "" if acc.startswith("paper") else f" ({common.net_label(net)})"
    fig = common.figure("figure5", df, title=title + _TARGET_LABEL[rows] + where,
                        points=marks)
    common.show_figure(fig, df, f"figure5_{acc.replace('+', '_')}" + ("_dedup" if rows == "classes" else ""))
    tp_wins = float((df["G"] > 1).mean())
    m1, m2, m3 = st.columns(3)
    m1.metric("Cells where TP needs less", f"{tp_wins:.0%}")
    m2.metric("G range", f"{df['G'].min():.3g} – {df['G'].max():.3g}")
    m3.metric("Grid", f"{df['classes'].nunique()} C × {df['batch'].nunique()} B")
    paper_note = (" Under the paper's accounting G depends on C and B (with + S on the depth L too); the net's "
                  "widths cancel. " + unused) if paper else ""
    st.caption(f"{acc}: {views.ACCOUNTINGS[acc]}. The paper's accountings are tpprof's reconstruction of its "
               "Figure 5 (from the paper's §9 and Table 3: TP stores 2BLH, TESS BLH + LCH) and are labelled as such; "
               "the full accounting adds every term (weights, optimiser, both TP paths' state, S, B×B loss buffers, "
               "…) and takes the step's peak." + paper_note)
