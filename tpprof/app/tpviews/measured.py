"""Measured vs analytic: shipped measurements/ plus an uploaded file, validated row by row."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tpprof import plots, views

from . import common


def _pct(v: float) -> str:
    """A relative error as a percentage that stays informative when tiny (2.8e-06 → '0.00028%')."""
    return f"{v:.2%}" if v >= 1e-3 or v == 0 else f"{v * 100:.2g}%"


def _bad_rows(bad: list[tuple[str, int, str]]) -> None:
    if bad:
        st.warning(f"{len(bad)} row(s) rejected by validation and left out (file, line, problem):")
        st.dataframe(pd.DataFrame(bad, columns=["file", "line", "problem"]), hide_index=True, width="stretch")


def render() -> None:
    st.subheader("Measured peak memory against the analytic model")
    rows, bad, files = common.shipped_measurements()
    frames = [rows] if not rows.empty else []
    bad = list(bad)
    up = st.file_uploader(f"Add a measurement CSV (written by tpprof measure; at most {common.MAX_UPLOAD_MB} MB)",
                          type=["csv"], key="ms_upload", max_upload_size=common.MAX_UPLOAD_MB,
                          help="Columns as in measurements/README.md; bad rows are reported, not fatal")
    if up is not None:
        urows, ubad, _ = common.uploaded_measurements(up.name, up.getvalue())
        bad += ubad
        if urows.empty:
            st.error(f"{up.name}: no valid row to show" + (" (see the rejected rows below)" if ubad else ""))
        else:
            frames.append(urows)
            st.success(f"{up.name}: {len(urows)} valid row(s)")
    st.caption("Files: " + (", ".join(f"`{f.split('/')[-1]}`" for f in files) or "no shipped measurement file")
               + (f" + `{up.name}`" if up is not None else ""))
    _bad_rows(bad)
    if not frames:
        st.info("No measurements yet. Measure with e.g. `tpprof measure --net shd --rule tp,tess,bptt --batch 16 "
                "--classes 20 --steps 25 --out measurements/mine.csv`, or upload a file above.")
        return
    cmp = common.compare_frame(frames)
    if cmp.empty:
        st.info("No measured point with status ok could be joined with the analytic model.")
        return
    c1, c2 = st.columns([1, 3])
    with c1:
        tol = st.slider("Error band ±", min_value=0.01, max_value=0.5, value=0.05, step=0.01, key="ms_tol",
                        format="%.2f", help="Relative tolerance drawn around y = x, e.g. 0.05", **common._BIND)
    with c2:
        present = sorted(cmp["rule"].unique())
        chosen = st.multiselect("Rules", present, default=present, key="ms_rules",
                                format_func=lambda r: plots.RULE_LABELS.get(r, r), **common._BIND)
    sub = cmp[cmp["rule"].isin(chosen or present)]
    s = views.error_summary(sub, tol)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Points", s["points"])
    m2.metric("Median |error|", _pct(s["median_abs_error"]) if s["points"] else "–")
    m3.metric("Max |error|", _pct(s["max_abs_error"]) if s["points"] else "–")
    m4.metric(f"Outside ±{tol:.0%}", s["out_of_tolerance"])
    if cmp.attrs.get("skipped"):
        st.caption(f"{cmp.attrs['skipped']} measured row(s) have a configuration the analytic model rejects.")
    common.show_figure(common.figure("measured_vs_analytic", sub, tol), sub, "measured_vs_analytic")
    out = sub[sub["error"].abs() > tol]
    with st.expander(f"Points outside ±{tol:.0%} ({len(out)}) and the joined table"):
        cols = ["rule", "net", "batch", "classes", "steps", "dtype", "measured_bytes", "predicted_bytes", "error",
                "source"]
        st.dataframe((out if len(out) else sub)[cols], hide_index=True, width="stretch",
                     column_config={"error": st.column_config.NumberColumn(format="percent")})
    _target_section(pd.concat(frames, ignore_index=True))
    ti = views.t_invariance_frame(sub)
    if ti.empty:
        st.info("No rule and workload was measured at two or more values of T: no T-invariance plot.")
    else:
        common.show_figure(common.figure("t_invariance", ti), ti, "t_invariance")


def _target_section(rows: pd.DataFrame) -> None:
    """The configs measured on a microcontroller target (QEMU), marked apart from the host rows."""
    tf = views.target_frame(rows)
    if tf.empty:
        return
    ok = tf[tf["status"] == "ok"]
    worst = int(ok["difference_bytes"].abs().max()) if len(ok) else 0
    st.markdown(f"**Measured on the target** (the step as C under QEMU, `device` = qemu:<core>): {len(ok)} "
                f"configs ran, {int((tf['status'] == 'does-not-fit').sum())} did not fit the device's SRAM; "
                f"the kernel's arrays differ from the algorithmic model by at most {worst} B")
    st.dataframe(tf, hide_index=True, width="stretch")
