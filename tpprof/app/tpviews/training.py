"""Training results (docs/results/*.csv): accuracy per rule, fine-tuning, per-layer silhouette."""

from __future__ import annotations

import streamlit as st


from . import common

_METRICS = {"test_final": "final epoch (as the README reports)", "test_mean_last3": "mean of the last 3 epochs",
            "test_best": "best epoch (picked on the test set: optimistic)"}


def render() -> None:
    st.subheader("Training results")
    frames, problems = common.results()
    for p in problems:
        st.warning(p)
    if not frames:
        st.info("No training results yet (docs/results/accuracy.csv, finetune.csv, silhouette.csv). They are "
                "written by the scripts in bench/results_*.py; see docs/results.md.")
        return
    if "accuracy" in frames:
        metric = common.select("Accuracy", list(_METRICS), "tr_metric", "test_final",
                               help="; ".join(f"{k}: {v}" for k, v in _METRICS.items()))
        acc = frames["accuracy"]
        tasks = sorted(acc["task"].astype(str).unique())
        chosen = st.multiselect("Tasks", tasks, default=tasks, key="tr_tasks", **common._BIND)
        sub = acc[acc["task"].astype(str).isin(chosen or tasks)]
        common.show_figure(common.figure("accuracy_bars", sub, metric), sub, "accuracy")
    else:
        st.info("No accuracy.csv yet.")
    if "finetune" in frames:
        common.show_figure(common.figure("finetune_bars", frames["finetune"]), frames["finetune"], "finetune")
    else:
        st.info("No finetune.csv yet.")
    if "silhouette" in frames:
        common.show_figure(common.figure("silhouette", frames["silhouette"]), frames["silhouette"], "silhouette")
    else:
        st.info("No silhouette.csv yet.")
