"""Scaling: memory vs depth, width and T for each rule, stacked by category."""

from __future__ import annotations

import streamlit as st

from tpprof import views

from . import common

_LABELS = {"depth": "depth L (hidden layers)", "width": "width H (neurons per layer)", "steps": "time steps T"}


def render() -> None:
    st.subheader("How memory scales with depth, width and time steps")
    st.caption("A uniform dense net F–H–…–H–C; bars stack, by category, the bytes live at the step's peak "
               "(tpprof full accounting: persistent terms plus the transients of the peak phase; the CSV also has "
               "every term's sum). TP and TESS stay flat in T; BPTT grows linearly.")
    var = st.radio("Sweep", list(views.SCALING_VARS), key="sc_var", horizontal=True,
                   captions=[_LABELS[v] for v in views.SCALING_VARS], **common._BIND)
    cols = st.columns(6)
    spec = [("Input F", "sc_f", 700), ("Width H", "sc_h", 450), ("Depth L", "sc_l", 1), ("Classes C", "sc_c", 20),
            ("Batch B", "sc_bs", 128), ("Steps T", "sc_t", 100)]
    vals = {}
    for col, (label, key, default) in zip(cols, spec):
        with col:
            vals[key] = int(st.number_input(label, min_value=1, max_value=10**6, value=default, step=1, key=key,
                                            help=f"e.g. {default}", **common._BIND))
    c1, c2 = st.columns([2, 3])
    with c1:
        dtype, opt = common.dtype_optimizer("sc")
    with c2:
        rules = common.rules_select("sc_rules")
    cfg = common.config(net=views.dense_net(vals["sc_f"], vals["sc_h"], vals["sc_l"], vals["sc_c"]),
                        batch=vals["sc_bs"], steps=vals["sc_t"], dtype=dtype, optimizer=opt)
    df = common.scaling_frame(cfg, var, None, tuple(rules))
    shared = st.checkbox("Same y axis for every rule", value=True, key="sc_shared", **common._BIND,
                         help="Untick to give each rule its own scale (BPTT can dwarf TP and TESS)")
    common.show_figure(common.figure("scaling", df, var, shared_y=shared), df, f"scaling_{var}")
