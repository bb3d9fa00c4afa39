"""tpprof dashboard: `tpprof app` (or `streamlit run tpprof/app/streamlit_app.py`).

Thin by design: widgets → one Config per page, built through the CLI's path
(tpprof.cli.config_flags.config_from_values) → cached table functions from tpprof.views (which
call the analytic model) → figures from tpprof.plots. Every view's settings live in the URL query,
so copying the address shares the view.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` executes this file as a script: make `tpprof` resolve to the package that holds
# it (a checkout or site-packages), not whichever tpprof happens to be first on sys.path.
_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

# No traceback (with server paths) ever reaches the browser, however the app was started
# (`tpprof app` also passes --client.showErrorDetails=none); client options may be set at runtime.
st.set_option("client.showErrorDetails", "none")
st.set_page_config(page_title="tpprof — memory of on-device learning rules", layout="wide")

from tpprof.app.tpviews import common, figure5, measured, pareto, regimes, scaling, training  # noqa: E402

PAGES = {
    "Relative memory cost": figure5.render,
    "Device regimes": regimes.render,
    "Scaling": scaling.render,
    "Measured vs analytic": measured.render,
    "Training": training.render,
    "Memory × time": pareto.render,
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
common.prefetch()
