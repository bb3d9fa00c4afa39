"""Relative memory cost: G(C, B) = Mem_TESS / Mem_TP over classes × batch (the paper's Figure 5)."""

from __future__ import annotations

import streamlit as st

from tpprof import plots, report

from . import common

_TITLES = {
    "paper": "G(C, B) = Mem_TESS / Mem_TP — paper accounting [reconstructed]",
    "paper+s": "G(C, B) = Mem_TESS / Mem_TP — paper accounting + S [reconstructed]",
    "full": "G(C, B) = peak TESS / peak TP — tpprof full accounting",
}


def render() -> None:
    st.subheader("Relative memory cost of TESS vs TP")
    st.caption("G > 1 (red): TP needs less memory than TESS; G < 1 (blue): TESS needs less. The bold line is "
               "G = 1. The paper's accountings are tpprof's reconstruction of its Figure 5 (reference sheet §9: "
               "TP stores 2BLH, TESS BLH + LCH) and are labelled as such; the full accounting adds every term "
               "(weights, optimiser, both TP paths' state, S, B×B loss buffers, …) and takes the step's peak.")
    c1, c2 = st.columns([2, 3])
    with c1:
        acc = common.select("Accounting", list(report.ACCOUNTINGS), "f5_acc", "paper",
                            help="; ".join(f"{k}: {v}" for k, v in report.ACCOUNTINGS.items()))
        st.caption(report.ACCOUNTINGS[acc])
    with c2:
        net = common.net_input("f5_net", "shd")
    dtype, opt = common.dtype_optimizer("f5")
    c3, c4 = st.columns(2)
    with c3:
        crange = common.range_slider("Classes C", "f5_c", (2, 1000), "Range of class counts (log-spaced)")
    with c4:
        brange = common.range_slider("Batch size B", "f5_b", (2, 1000), "Range of batch sizes (log-spaced)")
    df = common.figure5_frame(acc, net, dtype, opt, None, crange, brange, 24)
    fig = plots.figure5(df, title=_TITLES[acc] + ("" if acc != "full" else f" ({net})"))
    common.show_figure(fig, df, f"figure5_{acc.replace('+', '_')}")
    tp_wins = float((df["G"] > 1).mean())
    m1, m2, m3 = st.columns(3)
    m1.metric("Cells where TP needs less", f"{tp_wins:.0%}")
    m2.metric("G range", f"{df['G'].min():.3g} – {df['G'].max():.3g}")
    m3.metric("Grid", f"{df['classes'].nunique()} C × {df['batch'].nunique()} B")
