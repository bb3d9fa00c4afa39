"""Memory × time per step: every learner on one config as a point, the Pareto front marked
(checkpointing and truncation trade memory for recompute)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tpprof.analytic.timing import TimeModels, pareto_table, shipped_time_models
from tpprof.config import Config

from . import common


@st.cache_data(max_entries=32, show_spinner=False)
def _frame(cfg: Config, model_key: str, _model: TimeModels | None) -> tuple[pd.DataFrame, str]:
    """``model_key`` (the model's description) keys the cache; ``_model`` itself is not hashed."""
    df = pareto_table(cfg, _model)
    return df, df.attrs["time_model"]


def render() -> None:
    st.subheader("Memory against time per step, every learner")
    st.caption("Each point is a learner on the same net and workload: peak from tpprof's full accounting, time per "
               "step from the per-learner time model (MACs and elementwise work per step, coefficients fitted per "
               "learner on the shipped measurements and scored on configs left out of the fit). bptt-ckpt appears at several segment lengths k and tbptt at several "
               "windows K: checkpointing buys memory with recompute, truncation with a shorter gradient. Filled "
               "points are the Pareto front: no other learner needs both less memory and less time.")
    c1, c2, c3 = st.columns([2, 1, 1])
    with c1:
        net = common.net_input("pa_net", "shd")
    with c2:
        batch = int(st.number_input("Batch B", min_value=1, max_value=10**5, value=128, step=1, key="pa_b",
                                    help="e.g. 128", **common._BIND))
    with c3:
        steps = int(st.number_input("Steps T", min_value=1, max_value=10**5, value=100, step=1, key="pa_t",
                                    help="e.g. 100", **common._BIND))
    dtype, opt = common.dtype_optimizer("pa")
    cfg = common.config(net=net, batch=batch, steps=steps, dtype=dtype, optimizer=opt)
    tm = shipped_time_models("cpu")
    df, model = _frame(cfg, tm.describe() if tm else "", tm)
    st.caption(f"Time model: {model}. It times the host of the shipped measurements, not a target device; "
               "the column time_error_held_out is each learner's held-out median error.")
    common.show_figure(common.figure("pareto", df), df, "pareto")
    st.dataframe(df, hide_index=True)
