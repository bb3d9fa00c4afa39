"""The device page: first the answer (which learners fit the device and learn, ranked by accuracy
then memory: :mod:`.answer`), then TP against TESS over (C, B) (the paper's view), TP against the
best alternative, headroom and inverse design."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from tpprof import plots, views
from tpprof.analytic.devices import device_accounting, resolve_budget
from tpprof.config import PRESETS
from tpprof.device import Device
from tpprof.units import format_bytes

from . import answer, common

_CUSTOM = "custom"
#: Log-spaced values per axis (14 × 14 cells × 3 rules: ~590 analytic estimates per view; tpprof report
#: draws 20 × 20).
GRID_POINTS = 14


def _device() -> tuple[str, int, str, Device, str | None]:
    """(name, budget bytes, on-chip learning: yes / no / partial / unknown, the Device at that budget,
    the catalogue name or None for a typed budget)."""
    cat = common.catalogue()
    modes = (["catalogue device"] if cat else []) + ["typed budget"]
    mode = st.radio("Memory budget from", modes, key="rg_src", horizontal=True, **common._BIND)
    if mode == "catalogue device":
        names = [d.name for d in cat]
        by_name = {d.name: d for d in cat}
        name = common.select("Device", names, "rg_device", common.default_device_name(),
                             help="From tpprof's device catalogue (tpprof devices lists each figure's source)")
        dev = by_name[name]
        figures = {"catalogue budget": dev.budget_bytes, "on-chip": dev.on_chip_bytes, "off-chip": dev.off_chip_bytes}
        figures = {k: v for k, v in figures.items() if v}
        which = st.radio("Memory", list(figures), key="rg_mem", horizontal=True, **common._BIND,
                         help="The catalogue's budget is the memory a run must fit in (off-chip when the device "
                         "has it); choose on-chip to ask whether learning fits in SRAM alone")
        budget = int(figures[which])
        st.caption(f"{which}: {format_bytes(budget)}" + (f" — {dev.notes.rstrip('.')}" if dev.notes else ""))
        if dev.source:
            with st.expander("Where these figures come from"):
                st.caption(dev.source)
        if not dev.can_learn:
            st.error(f"{dev.name} cannot learn on chip (inference only): the maps below show memory only; "
                     "no rule trains there.")
        elif dev.on_chip_learning == "partial":
            st.warning(f"{dev.name}: on-chip learning is partial (see the device's notes); the maps show memory only.")
        name = dev.name if which == "catalogue budget" else f"{dev.name} ({which})"
        return name, budget, dev.on_chip_learning, answer.device_for(name, budget, dev), dev.name
    text = st.text_input("Budget", value="8MiB", key="rg_budget", help="e.g. 512KiB, 1.5 MB, 8GiB, 4096",
                         **common._BIND)
    dev = resolve_budget(budget=text, required=True)
    return dev.name, dev.budget_bytes, dev.on_chip_learning, dev, None


def _net() -> str:
    choice = common.select("Net", list(PRESETS) + [_CUSTOM], "rg_preset", "shd",
                           help="One of the paper's nets (presets), or type your own net string")
    if choice == _CUSTOM:
        return common.net_input("rg_net", "700-450-20", label="Net string")
    p = PRESETS[choice]
    st.caption(f"{p.description}: {p.net.to_string()}, preset B = {p.batch}, T = {p.steps}")
    return choice


def render() -> None:
    st.subheader("Which rule lets this net learn on this device")
    c1, c2 = st.columns(2)
    with c1:
        dev_name, budget, learning, device, catalogue_name = _device()
    with c2:
        net = views.check_net(_net())
    dtype, opt = common.dtype_optimizer("rg")
    c3, c4, c5 = st.columns(3)
    with c3:
        steps = st.number_input("Time steps T", min_value=1, max_value=100_000, value=None, step=1, key="rg_steps",
                                placeholder="the preset's T (100 for net strings)",
                                help="T per mini-batch; matters for BPTT (saves every step), e.g. 100",
                                **common._BIND)
    with c4:
        crange = common.range_slider("Classes C", "rg_c", (2, 1000), "Range of class counts (log-spaced)")
    with c5:
        brange = common.range_slider("Batch size B", "rg_b", (2, 1024), "Range of batch sizes (log-spaced)")
    cfg = common.config(net=net, dtype=dtype, optimizer=opt, steps=int(steps) if steps else None)
    answer.render(device, net, cfg)
    if catalogue_name:
        _target_rows(catalogue_name)
    acc, why = device_accounting(device)  # what a learner on this device holds: lean C, or the PyTorch learner
    cfg = replace(cfg, device=device)  # every "best" among the rules this device can run

    st.markdown("#### TP against TESS over classes × batch (the paper's view)")
    st.caption(f"The paper compares TP with TESS only; the answer above ranks every learner. Accounting {acc}: "
               f"{why}.")
    df = common.regime_frame(cfg, budget, crange, brange, GRID_POINTS, ("tp", "tess", "bptt"), acc)
    common.show_figure(common.figure("regime_map", df, budget, dev_name, on_chip_learning=learning), df, "regime_map")
    if not df["fits"].any():
        best = df.loc[df["peak_bytes"].idxmin()]
        st.warning(f"Nothing fits {dev_name} ({format_bytes(budget)}) in this range: the smallest peak is "
                   f"{format_bytes(best['peak_bytes'])} ({plots.RULE_LABELS.get(best['rule'], best['rule'])} at "
                   f"C = {best['classes']}, B = {best['batch']}). Try sgd, fp16 or a smaller net.")
    cells = df.drop_duplicates(["classes", "batch"])
    tp_wins = cells["verdict"].isin(["only TP fits", "both fit, TP smaller"]).mean()
    if learning == "no":
        st.caption(f"{dev_name} cannot learn on chip: TP would need less memory than TESS (or fit where TESS does "
                   f"not) in {tp_wins:.0%} of the cells, but no rule trains there. Accounting {acc}, peak over a step.")
    else:
        st.caption(f"TP wins (fits where TESS does not, or needs less) in {tp_wins:.0%} of the cells; accounting "
                   f"{acc}, peak over a step" + (" (on-chip learning: partial)" if learning == "partial" else "")
                   + ". Hover a cell for each rule's peak.")

    st.markdown("#### TP against the best alternative")
    rows = common.select("TP target path", list(views.TARGET_ROWS), "rg_rows", "batch",
                         format_func=lambda k: views.TARGET_ROWS[k],
                         help="per class: the exact class-deduplicated TP, K = min(B, C) target-path rows")
    best = common.figure5_frame(cfg.with_(target_rows=rows), acc, crange, brange, GRID_POINTS, "best")
    fig = common.figure("figure5", best, title=f"Peak of the best other learner / peak of TP ({common.net_label(net)})"
                        + (", TP target path per class (exact dedup)" if rows == "classes" else ""))
    common.show_figure(fig, best, "tp_vs_best")
    wins = best[best["G"] > 1]
    fits = wins[wins["tp_bytes"] <= budget]
    st.caption(f"Per cell, the learner other than TP that needs least memory among those {dev_name} can run "
               f"(hover for which; accounting {acc}); G > 1: TP needs "
               f"less than every alternative, in {len(wins) / len(best):.0%} of the cells, and "
               + ("would fit the memory of" if learning == "no" else "fits") +
               f" {dev_name} there in {len(fits) / len(best):.0%}"
               + (" (it cannot learn on chip)" if learning == "no" else "") + ". Alternatives: "
               + ", ".join(sorted(set(best["other"]))) + ".")

    st.markdown("#### Headroom at one point, and the largest batch per rule")
    c6, c7, c8 = st.columns([1, 1, 3])
    with c6:
        classes = st.number_input("Classes C", min_value=1, max_value=10**6, value=100, step=1, key="rg_pc",
                                  help="e.g. 100", **common._BIND)
    with c7:
        batch = st.number_input("Batch B", min_value=1, max_value=10**6, value=32, step=1, key="rg_pb",
                                help="e.g. 32", **common._BIND)
    with c8:
        rules = common.rules_select("rg_rules")
    bd = common.breakdown_frame(cfg.with_(batch=int(batch), classes=int(classes)), tuple(rules), acc, budget)
    fig = common.figure("category_bars", bd, budget_bytes=budget,
                              title=f"Memory by category at C = {classes}, B = {batch} vs {dev_name}")
    common.show_figure(fig, bd, "headroom")
    inv = common.inverse_frame(cfg.with_(classes=int(classes)), tuple(rules), budget, acc)
    st.markdown(f"**Largest batch that trains with C = {classes} on {dev_name}** (accounting {acc}, peak ≤ budget"
                + ("; memory only: it cannot learn on chip" if learning == "no" else "") + "):")
    view = inv.assign(rule=inv["rule"].map(lambda r: plots.RULE_LABELS.get(r, r)),
                      peak=inv["peak_bytes"].map(lambda v: plots.human_bytes(v) if v == v and v else "–"),
                      headroom=(inv["budget_bytes"] - inv["peak_bytes"]).map(
                          lambda v: plots.human_bytes(v) if v == v else "–"))
    st.dataframe(view[["rule", "max_batch", "peak", "headroom"]], hide_index=True, width="content")
    st.download_button("CSV", data=lambda: inv.to_csv(index=False), file_name="inverse_design.csv",
                       mime="text/csv", key="dl_inverse_csv", on_click="ignore")


def _target_rows(device: str) -> None:
    """The configs measured on this device's SRAM on an emulated core (tpprof measure --backend qemu:…)."""
    rows, _, _ = common.shipped_measurements()
    tf = views.target_frame(rows, device)
    if tf.empty:
        return
    ok = tf[tf["status"] == "ok"]
    st.caption(f"Measured on the target: {len(ok)} config(s) ran on {', '.join(sorted(set(tf['core'].astype(str))))} "
               f"(QEMU) within {device}'s SRAM, {len(tf) - len(ok)} did not fit; modelled arrays vs the algorithmic "
               f"model: {int(ok['difference_bytes'].abs().max()) if len(ok) else 0} B at most")
    with st.expander(f"Target measurements on {device} ({len(tf)})"):
        st.dataframe(tf, hide_index=True, width="stretch")
    _cycles(device)


def _cycles(device: str) -> None:
    """Time on the device: cycles/step at a stated CPI from instructions/MAC learned on target rows."""
    import pandas as pd

    from tpprof.analytic.target_timing import DEFAULT_CPI, core_of, insn_model, shipped_insn_models

    core = core_of(device)
    models = shipped_insn_models()
    if core is None or not models:
        return
    rules = sorted({r for c, r in models if c == core and r != "*"})
    if not rules:
        return
    rows = [(r, m.insns_per_mac, m.base_insns, m.n_points, m.median_error) for r in rules
            for m in (insn_model(core, r, models),)]
    st.caption(f"Time on {device} ({core}): cycles/step ≈ {DEFAULT_CPI:g} CPI × (i₀ + k · MACs/step), an estimate at "
               "a stated CPI from instructions counted under QEMU (tpprof estimate --rule all --device "
               f"{device} prints it per rule)")
    st.dataframe(pd.DataFrame(rows, columns=["rule", "instructions/MAC k", "i₀", "target rows", "fit error (median)"]),
                 hide_index=True, width="stretch")
