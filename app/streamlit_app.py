"""tpprof dashboard: `tpprof app` (or `streamlit run app/streamlit_app.py`).

Thin by design: widgets → plain values → cached table functions from tpprof.report (which call
the analytic model) → figures from tpprof.plots. Every view's settings live in the URL query,
so copying the address shares the view.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # the views package sits beside this file
    sys.path.insert(0, str(_HERE))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="tpprof — memory of on-device learning rules", layout="wide")

from tpviews import common, figure5, measured, regimes, scaling, training  # noqa: E402

PAGES = {
    "Relative memory cost": figure5.render,
    "Device regimes": regimes.render,
    "Scaling": scaling.render,
    "Measured vs analytic": measured.render,
    "Training": training.render,
}

st.title("tpprof")
st.caption("Can this spiking net learn on this device, with Traces Propagation, TESS or BPTT, and at what memory "
           "cost? Settings live in the URL: copy it to share a view.")
tabs = st.tabs(list(PAGES), key="page", bind="query-params")
common.warm_up()
for tab, render in zip(tabs, PAGES.values()):
    if tab.open:
        with tab:
            common.guard(render)
