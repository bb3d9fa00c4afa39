"""The device page's answer: which rules fit this device and learn, ranked by accuracy then memory.

Accuracy comes from a comparison (``tpprof compare``): the shipped ones (``compare_*.csv`` in the
results folder) for the chosen net, or the user's uploaded results.csv. Without one for the net,
the learners are ranked by memory alone, and the page says so.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from tpprof import compare, plots, resources
from tpprof.config import Config
from tpprof.device import Device
from tpprof.errors import UserError
from tpprof.units import format_bytes

from . import common

_UPLOAD = "your results.csv (tpprof compare)"
_MEMORY = "memory only (no accuracy results for this net)"


@st.cache_data(max_entries=8, show_spinner=False)
def _comparisons(folder: str, stamp: tuple) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:  # noqa: ARG001
    return compare.load_comparisons(folder)


def comparisons() -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The shipped comparisons, cached on the folder and its files' sizes and times."""
    folder = resources.results_dir()
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime) for f in sorted(folder.glob(compare.COMPARISON_GLOB))) \
        if folder.is_dir() else ()
    return _comparisons(str(folder), stamp)


@st.cache_data(max_entries=16, show_spinner=False)
def _uploaded(data: bytes) -> list[dict[str, Any]]:
    return compare.load_results(common.saved_upload(data, ".csv"))


def _title(stem: str, rows: list[dict[str, Any]]) -> str:
    r = rows[0]
    return (f"shipped: {r.get('data')} {r.get('task')}, {r.get('classes')} classes "
            f"({r.get('net_string')}, {r.get('epochs')} epochs, {len({x['seed'] for x in rows})} seeds)")


def _source(net_string: str, classes: int) -> tuple[str, list[dict[str, Any]] | None]:
    """(what the accuracies come from, the results rows or None for memory only). The comparisons
    of the page's net are offered, the one with the page's class count first."""
    comps, problems = comparisons()
    for p in problems:
        st.warning(p)
    mine = {stem: rows for stem, rows in comps.items()
            if compare.hidden_part(str(rows[0]["net_string"])) == compare.hidden_part(net_string)}
    mine = dict(sorted(mine.items(), key=lambda kv: (kv[1][0].get("classes") != classes, kv[0])))
    options = {_title(stem, rows): rows for stem, rows in mine.items()}
    choice = common.select("Accuracy from", list(options) + [_MEMORY, _UPLOAD], "an_src",
                           next(iter(options), _MEMORY),
                           help="A comparison trained every learner on one task (tpprof compare); the shipped ones "
                                "cover the fsdd net. Upload your own results.csv to rank for your task.")
    if choice == _UPLOAD:
        up = st.file_uploader(f"results.csv from tpprof compare (at most {common.MAX_UPLOAD_MB} MB)", type=["csv"],
                              key="an_upload", max_upload_size=common.MAX_UPLOAD_MB)
        if up is None:
            st.info("Upload the results.csv that `tpprof compare --out DIR` wrote in DIR.")
            return choice, None
        try:
            return choice, _uploaded(up.getvalue())
        except UserError as e:  # the page below still draws
            st.error(str(e))
            return choice, None
    return choice, options.get(choice)


def _table(df: pd.DataFrame) -> pd.DataFrame:
    known = df["acc_mean"].notna().any()
    out = pd.DataFrame({
        "rank": df["rank"].map(lambda v: "" if v != v or v is None else str(int(v))),
        "learner": df["label"],
        "accuracy %": [f"{100 * m:.1f} ± {100 * s:.1f}" if s == s else (f"{100 * m:.1f}" if m == m else "–")
                       for m, s in zip(df["acc_mean"], df["acc_sd"])],
        f"peak ({df['accounting'].iloc[0]})": df["peak_bytes"].map(plots.human_bytes),
        "fits": df["fits"].map({True: "yes", False: "no"}),
        "learns there": [("yes" if ok else why) for ok, why in zip(df["learns"], df["why_not"])],
    })
    if not known:
        out = out.drop(columns=["accuracy %"])
    return out


def _headline(df: pd.DataFrame, dev: Device, known: bool) -> None:
    ok = df[df["fits_learns"]]
    acc = df["accounting"].iloc[0]
    words = "a lean implementation on the chip" if acc == "algorithm" else "the PyTorch learner"
    if ok.empty:
        small = df.loc[df["peak_bytes"].idxmin()]
        st.warning(f"**No learner fits {dev.name} ({format_bytes(dev.budget_bytes)}) and learns there** "
                   f"({acc} accounting: {words}). The smallest is {small['label']} at "
                   f"{format_bytes(int(small['peak_bytes']))}: try sgd, a smaller batch or net, or another device.")
        return
    top = ok.iloc[0]
    what = (f"{100 * top['acc_mean']:.1f} ± {100 * top['acc_sd']:.1f} % final-epoch test accuracy, "
            if known and top["acc_sd"] == top["acc_sd"] else "")
    lead = "The most accurate learner" if known else "The smallest learner (no accuracy known for this net)"
    st.success(f"**{lead} that fits {dev.name} and learns there: {top['label']}** — {what}"
               f"peak {format_bytes(int(top['peak_bytes']))} of {format_bytes(dev.budget_bytes)} "
               f"({acc} accounting: {words}); {len(ok)} of {len(df)} learners fit and learn.")
    tp = compare.tp_place(df.to_dict("records"))
    if tp is None:
        return
    if tp["rank"] is None:
        st.markdown(f"TP: not ranked here ({tp['why_not']}).")
    elif tp["versus"] is not None:
        gap = (f"{tp['acc_points']:+.1f} accuracy points, " if known else "")
        st.markdown(f"TP: **{tp['rank']} of {tp['of']}** — {gap}{tp['peak_ratio']:.2f}× the peak of {tp['versus']}.")
    else:
        st.markdown(f"TP: **1 of {tp['of']}** (the only learner that fits and learns).")


def render(dev: Device, net: str, cfg: Config) -> None:
    """The answer for ``dev`` and the page's net (``net`` as typed, ``cfg`` its Config from the widgets)."""
    st.markdown(f"#### The answer: which learners fit {dev.name} and learn there, ranked by accuracy then memory")
    net_string = cfg.net.to_string()
    choice, rows = _source(net_string, cfg.workload.classes)
    if choice == _UPLOAD and rows is None:
        return
    if rows:
        df = compare.ranking_frame(rows, dev)
        r0 = rows[0]
        if compare.hidden_part(str(r0["net_string"])) != compare.hidden_part(net_string):
            st.info(f"These results are for net {r0['net_string']}, not the page's {net_string}: memory and accuracy "
                    "below are those of the results' net.")
        st.caption(f"Accuracy: final-epoch test accuracy, mean ± sd over seeds ({r0.get('data')}, {r0.get('task')}, "
                   f"B = {r0.get('batch')}, T = {r0.get('steps')}, {r0.get('optimizer')}, {r0.get('epochs')} epochs); "
                   "memory: the analytic peak of each run's config, in the device's accounting.")
    else:
        wl = cfg.workload
        df = compare.memory_frame(cfg, dev)
        st.caption(f"No comparison for this net: ranked by memory alone at the page's config (B = {wl.batch}, "
                   f"C = {wl.classes}, T = {wl.steps}, {wl.dtype}, {cfg.rule.optimizer}). `tpprof compare --net {net} "
                   f"--device {dev.name} --out DIR` trains every learner and ranks by accuracy.")
    if df.empty:
        st.info("No learner in these results.")
        return
    known = bool(df["acc_mean"].notna().any())
    _headline(df, dev, known)
    st.dataframe(_table(df), hide_index=True, width="content", key="an_table")
    if known:
        common.show_figure(common.figure("accuracy_vs_peak", df, dev.budget_bytes, dev.name), df, "accuracy_vs_peak")


def device_for(name: str, budget: int, dev: Device | None) -> Device:
    """The page's device with the chosen budget (on-chip, off-chip or the catalogue's)."""
    if dev is None:
        return Device(name=name, budget_bytes=budget, source="typed budget")
    return dev if budget == dev.budget_bytes else replace(dev, name=name, budget_bytes=budget)
