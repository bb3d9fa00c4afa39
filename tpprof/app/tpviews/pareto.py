"""Memory × time per step: every learner on one config as a point, the Pareto front marked
(checkpointing and truncation trade memory for recompute)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tpprof.analytic.timing import TimeModel, pareto_table, shipped_time_model
from tpprof.config import Config

from . import common


@st.cache_data(max_entries=32, show_spinner=False)
def _frame(cfg: Config, model: TimeModel | None) -> tuple[pd.DataFrame, str]:
    df = pareto_table(cfg, model)
    return df, df.attrs["time_model"]


def render() -> None:
    st.subheader("Memory against time per step, every learner")
    st.caption("Each point is a learner on the same net and workload: peak from tpprof's full accounting, time per "
               "step from the compute model (MACs per step / a throughput calibrated on the shipped measurements, "
               "plus a per-step overhead). bptt-ckpt appears at several segment lengths k and tbptt at several "
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
    df, model = _frame(cfg, shipped_time_model("cpu"))
    st.caption(f"Time model: {model}. It times the host of the shipped measurements, not a target device.")
    common.show_figure(common.figure("pareto", df), df, "pareto")
    st.dataframe(df, hide_index=True)
