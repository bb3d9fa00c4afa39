"""``tpprof estimate``, ``tpprof sweep`` and ``tpprof devices``: thin shells over tpprof.analytic.

Each handler parses flags into a :class:`tpprof.config.Config`, calls a data function and
renders a table, JSON or a file. Nothing here imports torch; pandas is imported only by
``sweep``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any, Iterable, Sequence

from tpprof.cli.config_flags import add_config_flags, config_from_args, grid_from_args
from tpprof.errors import UserError

_EPILOG_ESTIMATE = """examples:
  tpprof estimate --net shd --rule tp --batch 128 --classes 20 --steps 100 --dtype fp32 --optimizer adam
  tpprof estimate --net 700-450r-20 --rule tess --budget 512KiB
  tpprof estimate --net vgg9:2x32x32-11 --rule bptt --steps 21 --device jetson-nano --json
  tpprof estimate --net shd --rule tp --accounting paper+s
  tpprof estimate --net shd --rule tp --accounting algorithm   # no framework temporaries
  tpprof estimate --config run.toml --batch 16
  tpprof estimate --net shd --rule all --device stm32h743      # every rule ranked by peak
"""

_EPILOG_SWEEP = """examples:
  tpprof sweep --net shd --rule tp,tess,bptt --batch 1,8,64 --classes 10,100,1000 --steps 100 --out grid.csv
  tpprof sweep --net 40-256-256-10 --rule tp,tess --batch 16,32 --dtype fp32,fp16 --out grid.parquet
  tpprof sweep --net shd --rule tp,bptt --steps 25,50,100,200 --device stm32h743
  tpprof sweep --net shd --rule tp,tess --classes 10,100,1000 --accounting algorithm --out alg.csv
"""


_EPILOG_FIT = """examples:
  tpprof fit --device stm32h743 --net fsdd --rule all --largest batch --optimizer sgd
  tpprof fit --device stm32h743 --net fsdd --rule tp --largest trained-layers --batch 16
  tpprof fit --device loihi2 --net shd --rule all --largest classes --json
  tpprof fit --budget 256KiB --net 40-64-64-10 --rule tp,tess,ottt --largest width --locality local
"""


def _add_flags(p: argparse.ArgumentParser, *, lists: bool) -> None:
    add_config_flags(p, lists=lists)
    from tpprof.analytic import ACCOUNTING_LABELS, ACCOUNTINGS  # torch-free, small

    p.add_argument("--accounting", default=None, choices=ACCOUNTINGS,
                   help="; ".join(f"{k}: {v}" for k, v in ACCOUNTING_LABELS.items())
                        + " (default: follows --device: algorithm on a microcontroller or neuromorphic chip, "
                          "whose lean implementation holds no PyTorch temporaries; full otherwise), "
                          "e.g. --accounting algorithm")
    p.add_argument("--locality", default=None,
                   help="limit every best alternative to these locality classes: local, time-local, through-time "
                        "(comma-separated; default: the rules --device can run), e.g. --locality local")
    p.add_argument("--budget", default=None,
                   help="memory budget to fit into: bytes or a size with unit, e.g. --budget 512KiB, --budget '1.5 MB'")
    p.add_argument("--device", default=None,
                   help="a device from 'tpprof devices' whose memory is the budget, e.g. --device stm32h743")
    p.add_argument("--devices", default=None, metavar="FILE",
                   help="extra device catalogue (JSON/TOML, see 'tpprof devices --help'), e.g. --devices boards.toml")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``estimate``, ``sweep``, ``fit`` and ``devices``."""
    p = sub.add_parser("estimate", help="analytic memory & compute of one config (no torch)",
                       description="Analytic memory breakdown (named terms, peak and total), compute per step and "
                                   "what is not modelled, for one net, rule and workload.",
                       epilog=_EPILOG_ESTIMATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_flags(p, lists=False)
    p.add_argument("--json", action="store_true", help="print the breakdown as JSON, e.g. --json | jq .peak_bytes")
    p.add_argument("--per-layer", action="store_true",
                   help="one table row per layer's term instead of summing a term over layers, e.g. --per-layer")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("sweep", help="analytic memory over a grid of configs → CSV / Parquet",
                       description="Estimate every combination of the listed values (one row per point and rule).",
                       epilog=_EPILOG_SWEEP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_flags(p, lists=True)
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output file, .csv or .parquet, e.g. --out grid.csv (default: print a table)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("fit", help="inverse design: the largest batch, classes, width, depth or trained layers "
                                   "that fit",
                       description="Per rule, the largest batch, class count, width (every hidden layer), depth "
                                   "(repeating the last hidden layer) or number of trained hidden layers (the last "
                                   "ones, with the readout) whose peak fits the device's memory; searched on the "
                                   "analytic model itself (tpprof.analytic.regimes). The other settings are the "
                                   "flags' (preset workloads fill the rest).",
                       epilog=_EPILOG_FIT, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_flags(p, lists=False)
    p.add_argument("--largest", required=True, metavar="WHAT",
                   help="what to maximise: batch, classes, width, depth or trained-layers, e.g. --largest batch")
    p.add_argument("--json", action="store_true", help="print the rows as JSON, e.g. --json")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("devices", help="the device catalogue (memory per target, with sources)",
                       description="List the device catalogue: on-chip and off-chip memory with a source per figure. "
                                   "Add your own with --devices FILE (JSON: {\"devices\": [{\"name\": ..., "
                                   "\"on_chip_bytes\": \"512KiB\", \"off_chip_bytes\": \"8MiB\", \"budget\": "
                                   "\"off_chip\", \"source\": ...}]}, or TOML [[devices]] tables).",
                       epilog="examples:\n  tpprof devices\n  tpprof devices --json\n  tpprof devices --kind mcu\n"
                              "  tpprof devices --devices boards.toml",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON, e.g. --json")
    p.add_argument("--kind", default=None,
                   help="only this kind: mcu, neuromorphic, sbc, edge-gpu, gpu, custom, e.g. --kind neuromorphic")
    p.add_argument("--devices", default=None, metavar="FILE",
                   help="extra device file (JSON or TOML) merged into the catalogue, e.g. --devices boards.json")
    p.set_defaults(func=cmd_devices)


# ---------------------------------------------------------------------------------------
# Config from flags
# ---------------------------------------------------------------------------------------


def _device(args: argparse.Namespace, cfg: Any) -> Any:
    from tpprof.analytic.devices import resolve_budget

    dev = resolve_budget(args.device, args.budget, args.devices)
    if dev is None and args.devices and not args.device:
        raise UserError("devices", "--devices needs --device NAME to pick one", "--device NAME")
    return dev if dev is not None else cfg.device


def accounting_for(args: argparse.Namespace, dev: Any) -> tuple[str, str]:
    """The accounting of a command and why: ``--accounting`` when given, else the device's
    (:func:`tpprof.analytic.devices.device_accounting`)."""
    from tpprof.analytic.devices import device_accounting

    if getattr(args, "accounting", None):
        return args.accounting, "--accounting " + args.accounting
    return device_accounting(dev)


def localities(args: argparse.Namespace) -> tuple[str, ...] | None:
    from tpprof.analytic.learnability import check_localities
    from tpprof.cli.config_flags import split_list

    return check_localities(split_list("locality", getattr(args, "locality", None)))


def _estimate_grid(args: argparse.Namespace) -> tuple[Any, Any]:
    """The flags' grid estimated (one row per point and rule), with the budget's device (or None);
    ``attrs['accounting_why']`` says why that accounting, ``attrs['alternatives']`` which rules
    the best_* columns chose among."""
    from tpprof.analytic import estimate_grid

    grid = grid_from_args(args)
    dev = _device(args, grid.base)
    acc, why = accounting_for(args, dev)
    df = estimate_grid(grid, acc, budget_bytes=dev.budget_bytes if dev else None, device=dev,
                       locality=localities(args))
    df.attrs["accounting_why"] = why
    return df, dev


# ---------------------------------------------------------------------------------------
# estimate
# ---------------------------------------------------------------------------------------


def _si(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:.0f}"


def _rows(bd: Any, per_layer: bool) -> list[dict[str, Any]]:
    if per_layer:
        return [{"name": t.name, "category": t.category, "count": t.count, "bytes": t.bytes,
                 "live": "persistent" if t.persistent else "transient (" + ", ".join(t.phases) + ")"} for t in bd.terms]
    groups: dict[tuple[str, str, bool], dict[str, Any]] = {}
    for t in bd.terms:
        k = (t.key, t.category, t.persistent)
        g = groups.setdefault(k, {"name": t.key, "category": t.category, "count": 0, "bytes": 0, "layers": [],
                                  "phases": [], "live": "persistent"})
        g["phases"] += [("loss:l" if p.startswith("loss:") else p) for p in t.phases]
        g["count"] += t.count
        g["bytes"] += t.bytes
        if t.layer is not None and t.layer >= 1:
            g["layers"].append(t.layer)
    for g in groups.values():
        ls = g.pop("layers")
        phases = list(dict.fromkeys(g.pop("phases")))
        if phases:
            g["live"] = "transient (" + ", ".join(phases) + ")"
        if len(ls) > 1:
            g["name"] += f" [×{len(ls)} layers]"
        elif len(ls) == 1 and bd.config is not None and bd.config.net.depth > 1:
            g["name"] += f" [layer {ls[0]}]"
    return list(groups.values())


def _width(text: str) -> int:
    """Display width: combining marks (the tilde of ε̃) take no column."""
    import unicodedata

    return sum(0 if unicodedata.combining(ch) else 1 for ch in text)


def _pad(text: str, width: int, align: str) -> str:
    fill = " " * (width - _width(text))
    return fill + text if align == "r" else text + fill


def _table(rows: Sequence[Sequence[str]], aligns: str) -> str:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        cells = [_pad(c, w, a) for c, w, a in zip(r, widths, aligns)]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_breakdown(bd: Any, per_layer: bool = False, device: Any = None, accounting_why: str = "",
                     learning: dict[str, Any] | None = None) -> str:
    """The human table of ``tpprof estimate``."""
    from tpprof.analytic import ACCOUNTING_LABELS
    from tpprof.analytic.rules import REGISTRY
    from tpprof.units import format_bytes

    cfg = bd.config
    total = bd.total_bytes or 1
    wl, rs = cfg.workload, cfg.rule
    head = [f"tpprof estimate: rule {bd.rule} ({REGISTRY[bd.rule].title}), accounting {bd.accounting} — "
            f"{ACCOUNTING_LABELS[bd.accounting]}" + (f" ({accounting_why})" if accounting_why else ""),
            f"net {cfg.net.to_string()}" + (f" ({cfg.net.name})" if cfg.net.name and cfg.net.name != cfg.net.to_string() else "")
            + f" | B={wl.batch} C={wl.classes} T={wl.steps} | {wl.dtype} | {rs.optimizer} | cadence {rs.cadence}"
            + f" | aux {rs.aux}", ""]
    rows = [["term", "category", "elements", "bytes", "%", "live"]]
    for r in _rows(bd, per_layer):
        rows.append([r["name"], r["category"], f"{r['count']:,}", format_bytes(r["bytes"]),
                     f"{100 * r['bytes'] / total:.1f}", r["live"]])
    lines = head + [_table(rows, "llrrrl"), ""]
    phase = bd.peak_phase
    lines.append(f"peak  {format_bytes(bd.peak_bytes):>12}  ({bd.peak_bytes:,} B) = persistent "
                 f"{format_bytes(bd.persistent_bytes)} + largest live transient set"
                 + (f" (phase {phase})" if phase else ""))
    lines.append(f"total {format_bytes(bd.total_bytes):>12}  ({bd.total_bytes:,} B) = sum of all terms")
    cats = bd.by_category()
    lines.append("by category: " + ", ".join(f"{c} {format_bytes(v)} ({100 * v / total:.0f}%)"
                                              for c, v in cats.items() if v))
    lines.append(f"compute per step: {_si(bd.macs_per_step)}MAC, {_si(bd.elementwise_per_step)} elementwise ops; "
                 f"per mini-batch (T={bd.steps}): {_si(bd.macs_per_step * bd.steps)}MAC")
    g = figure5_g(bd)
    if g is not None:
        lines.append(f"Figure-5 ratio G = Mem_TESS / Mem_TP at C={wl.classes}, B={wl.batch}, L={cfg.net.depth}: "
                     f"{g['G']:.3f} ({g['formula']}; {g['label']}; TP cheaper where G > 1)")
    if device is not None:
        fit = bd.fit(device.budget_bytes)
        said = verdict(fit["fits"], learning) if learning else ("fits" if fit["fits"] else "does not fit")
        text = (said + ", headroom " + format_bytes(fit["headroom_bytes"])
                + f" ({100 * fit['headroom_fraction']:.0f}% of the budget)") if fit["fits"] else \
            ("does NOT fit: short by " + format_bytes(-fit["headroom_bytes"])
             + f" (peak is {bd.peak_bytes / device.budget_bytes:.2f}× the budget)")
        lines.append(f"budget: {device.name} {format_bytes(device.budget_bytes)} ({_budget_source(device)}): {text}")
    if learning is not None:
        from tpprof.analytic.learnability import CAPABILITY_LABELS

        lines.append(f"learning: locality {learning['locality']}; "
                     + ("learns" if learning["learns"] else "learns NOTHING here — " + "; ".join(learning["why_not"]))
                     + ("" if device is None else f"; {device.name} runs "
                        + CAPABILITY_LABELS[device.learning_capability]
                        + ("" if learning["device_runs"] else f", so NOT {bd.rule} as configured")))
    lines.append("not modelled:")
    lines += [f"  - {x}" for x in bd.not_modelled]
    return "\n".join(lines)


def figure5_g(bd: Any) -> dict[str, Any] | None:
    """The reconstructed Figure-5 ratio for TP / TESS under the paper's accounting (else None)."""
    from tpprof.analytic import PAPER_ACCOUNTINGS

    if bd.accounting not in PAPER_ACCOUNTINGS or bd.rule not in ("tp", "tess"):
        return None
    from tpprof.analytic.paper import RECONSTRUCTED, g_ratio

    wl = bd.config.workload
    variant = "s" if bd.accounting == "paper+s" else "base"
    formula = "L(B + C)/(2BL + C)" if variant == "s" else "(B + C)/(2B)"
    if bd.config.rule.target_rows == "classes":  # TP's class-deduplicated target path, K = min(B, C)
        variant = "dedup+s" if variant == "s" else "dedup"
        formula = "L(B + C)/(L(B + K) + C)" if variant == "dedup+s" else "(B + C)/(B + K)"
    return {"G": float(g_ratio(wl.classes, wl.batch, bd.config.net.depth, variant)), "variant": variant,
            "formula": formula, "label": RECONSTRUCTED}


def _budget_source(device: Any) -> str:
    """The part of a device's source that backs its budget figure."""
    parts = [p.strip() for p in device.source.split(";")]
    basis = "off_chip" if device.off_chip_bytes and device.budget_bytes == device.off_chip_bytes else "on_chip"
    return next((p for p in parts if p.startswith(basis + ":")), parts[0])


def rank_rules(args: argparse.Namespace) -> Any:
    """``estimate --rule all`` (or a list): every rule on one config, least peak first, with the
    margin of each over TP (peak / TP's peak) and, given a budget, whether it fits."""
    from tpprof.analytic.learnability import why_not

    df, dev = _estimate_grid(args)
    attrs = dict(df.attrs)
    base = grid_from_args(args).base.rule
    df = df.sort_values(["peak_bytes", "macs_per_step"], kind="stable").reset_index(drop=True)
    df.attrs.update(attrs)
    df["why_not_learning"] = ["; ".join(why_not(replace(base, name=str(r)), int(b), int(c)))
                              for r, b, c in zip(df["rule"], df["batch"], df["classes"])]
    df["accounting_why"] = attrs.get("accounting_why", "")
    df["alternatives"] = attrs.get("alternatives", "")
    if "tp" in set(df["rule"].astype(str)):
        df["vs_tp"] = df["peak_bytes"] / int(df.loc[df["rule"] == "tp", "peak_bytes"].iloc[0])
    add_step_time(df)
    add_target_cycles(df, dev)
    return df, dev


def add_target_cycles(df: Any, dev: Any) -> Any:
    """Adds ``cycles_per_step`` on the budget's device when it is a Cortex-M with target rows
    (:mod:`tpprof.analytic.target_timing`: instructions/MAC learned under QEMU × a stated CPI);
    the models used go to ``df.attrs['cycle_model']``."""
    from tpprof.analytic.target_timing import DEFAULT_CPI, core_of, cycles_per_step

    if dev is None or core_of(dev.name) is None:
        return df
    cyc, notes = [], {}
    for rule, macs in zip(df["rule"].astype(str), df["macs_per_step"]):
        c, model = cycles_per_step(dev.name, rule, macs, DEFAULT_CPI)
        cyc.append(float(c))
        if model is not None:
            notes[model.rule] = model.describe(DEFAULT_CPI)
    if notes:
        df["cycles_per_step"] = cyc
        df.attrs["cycle_model"] = notes
    return df


def add_step_time(df: Any) -> Any:
    """Adds ``time_s_per_step`` (the per-learner time model of :mod:`tpprof.analytic.timing`,
    calibrated on the shipped CPU measurements; NaN without a calibration) and
    ``time_error_held_out`` (that learner's held-out median error), and puts the model's
    description, with every learner's held-out error, in ``df.attrs['time_model']``."""
    from tpprof.analytic.timing import shipped_time_models
    from tpprof.config import make_config

    tm = shipped_time_models("cpu")
    times, errs = [], []
    for r in df.to_dict("records"):
        if tm is None:
            times.append(float("nan"))
            errs.append(float("nan"))
            continue
        cfg = make_config(str(r["net"]), str(r["rule"]), int(r["batch"]), int(r["classes"]), int(r["steps"]),
                          dtype=str(r["dtype"]), optimizer=str(r["optimizer"]), cadence=str(r["cadence"]),
                          aux=str(r["aux"]))
        t, m = tm.predict(cfg)
        times.append(t)
        errs.append(m.median_error if m else float("nan"))
    df["time_s_per_step"] = times
    df["time_error_held_out"] = errs
    df.attrs["time_model"] = tm.describe() if tm else "no shipped step times to calibrate a time model on"
    return df


def render_ranking(df: Any, dev: Any) -> str:
    from tpprof.analytic import ACCOUNTING_LABELS
    from tpprof.config import TRAINABLE_RULES
    from tpprof.units import format_bytes

    first = df.iloc[0]
    head = (f"tpprof estimate: {len(df)} rules ranked by peak, accounting {first['accounting']} — "
            f"{ACCOUNTING_LABELS[str(first['accounting'])]} ({df.attrs.get('accounting_why', '')})\n"
            f"net {first['net']} | B={first['batch']} C={first['classes']} T={first['steps']} | {first['dtype']} | "
            f"{first['optimizer']}" + (f" | budget {format_bytes(dev.budget_bytes)} ({dev.name})" if dev else ""))
    cyc = "cycles_per_step" in df
    cols = ["rank", "rule", "peak", "total", "MACs/step", "time/step*"] + (["cycles/step†"] if cyc else []) + (
        ["peak / TP"] if "vs_tp" in df else []) + (["verdict"] if dev else ["learns"]) + ["locality", "model"]
    rows = [cols]
    for i, r in enumerate(df.to_dict("records"), start=1):
        t = r.get("time_s_per_step", float("nan"))
        e = r.get("time_error_held_out", float("nan"))
        row = [str(i), str(r["rule"]), format_bytes(r["peak_bytes"]), format_bytes(r["total_bytes"]),
               _si(r["macs_per_step"]), (f"{t * 1e3:.3g} ms" + (f" ±{e:.0%}" if e == e else " (pooled)"))
               if t == t else "-"]
        if cyc:
            c = r["cycles_per_step"]
            row.append(_si(c) if c == c else "-")
        if "vs_tp" in r:
            row.append(f"{r['vs_tp']:.3f}")
        row.append(str(r["verdict"]) if dev else ("yes" if r["learns"] else "no"))
        row.append(str(r["locality"]) + ("" if r["eligible"] else " (excluded)"))
        row.append("learner" if r["rule"] in TRAINABLE_RULES else "algorithm only")
        rows.append(row)
    note = ""
    if "best_other" in df and len(df):
        bo = first["best_other"]
        note += (f"\n{df.attrs.get('alternatives', '')}: "
                 + (f"{bo} ({format_bytes(first['best_other_peak_bytes'])}; TP margin "
                    f"{first['tp_margin']:.3f}, > 1: TP needs less)" if bo == bo else "none"))
    note += ("\nmodel: 'learner' = a tpprof learner exists, its peak includes the PyTorch implementation's "
             "overheads and is checked against measurement; 'algorithm only' = the rule's algorithmic terms "
             "(no learner, no implementation overheads), so it reads low next to a learner's")
    if str(first["accounting"]) != "full":
        note = note[:note.index("\nmodel:")] + (
            f"\nmodel: 'learner' = a tpprof learner exists and is checked against measurement; 'algorithm only' = "
            f"no learner. Accounting {first['accounting']}: no row includes implementation overheads")
    if not df["learns"].all():
        note += ("\nlearns nothing here: " + " | ".join(
            f"{r['rule']}: {r['why_not_learning']}" for r in df.to_dict("records") if not r["learns"]))
    note += (f"\n* {df.attrs.get('time_model', 'time model not computed')}; it times the host of the "
             "shipped measurements (torch learners), not the budget's device")
    if cyc:
        models = df.attrs["cycle_model"]
        note += (f"\n† on {dev.name}'s core, {len(models)} model(s): " + "; ".join(models.values())
                 + "; a rule without target rows uses the core's pooled model")
    return head + "\n\n" + _table(rows, "rlrrrr" + "r" * (len(cols) - 9) + "lll") + note


def cmd_estimate(args: argparse.Namespace) -> int:
    from tpprof.analytic import estimate

    if args.rule is not None and (args.rule.strip().lower() == "all" or "," in args.rule):
        df, dev = rank_rules(args)
        sys.stdout.write((df.astype({c: str for c in df.select_dtypes("category").columns}).to_json(
            orient="records", indent=2) if args.json else render_ranking(df, dev)) + "\n")
        return 0
    cfg = config_from_args(args)
    dev = _device(args, cfg)
    acc, why = accounting_for(args, dev)
    bd = estimate(cfg, acc)
    learning = learning_doc(cfg, dev)
    if args.json:
        doc = bd.to_dict()
        doc["accounting_why"] = why
        doc["learning"] = learning
        g = figure5_g(bd)
        if g is not None:
            doc["figure5_g"] = g
        if dev is not None:
            doc["device"] = {"name": dev.name, "budget_bytes": dev.budget_bytes, "source": dev.source,
                             "learning_capability": dev.learning_capability}
            doc["fit"] = bd.fit(dev.budget_bytes)
            doc["verdict"] = verdict(doc["fit"]["fits"], learning)
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_breakdown(bd, args.per_layer, dev, why, learning) + "\n")
    return 0


def learning_doc(cfg: Any, dev: Any) -> dict[str, Any]:
    """Whether ``cfg`` learns at all and whether ``dev`` can run its rule (with the reasons)."""
    from tpprof.analytic.learnability import device_runs, locality, rule_facts, why_not

    reasons = why_not(cfg.rule, cfg.workload.batch, cfg.workload.classes)
    return {"learns": not reasons, "why_not": reasons, "locality": locality(cfg.rule),
            "rule": rule_facts(cfg.rule.name),
            "device_runs": device_runs(dev, cfg.rule),
            "device_capability": dev.learning_capability if dev is not None else None}


def verdict(fits: bool, learning: dict[str, Any]) -> str:
    """The budget verdict with learning: "fits" only when the rule also learns and the device runs it."""
    from tpprof.analytic.grid import verdict_word

    return verdict_word(fits, learning["learns"], learning["device_runs"])


# ---------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------


def fit_frame(args: argparse.Namespace) -> Any:
    """One row per rule: the largest value of ``--largest`` that fits the budget, its peak, and
    whether the rule learns there and the device runs it; ranked by that value (largest first),
    rules the device cannot run (or outside ``--locality``) last. ``attrs`` name the accounting
    and the rules the ranking's best was chosen among."""
    import pandas as pd

    from tpprof.analytic import estimate
    from tpprof.analytic.grid import verdict_word
    from tpprof.analytic.learnability import alternatives_label, device_runs, eligible, locality, why_not
    from tpprof.analytic.regimes import (FIT_PARAMS, largest_fitting, largest_fitting_rules, largest_trained_layers,
                                         resize, trainable_for)

    what = str(args.largest).strip().lower()
    if what not in FIT_PARAMS:
        raise UserError("largest", f"{args.largest!r} is not known", ", ".join(FIT_PARAMS))
    grid = grid_from_args(args)
    dev = _device(args, grid.base)
    if dev is None:
        raise UserError("device", "none given", "--device NAME (a catalogue device) or --budget SIZE")
    acc, why = accounting_for(args, dev)
    locs = localities(args)
    rules = [str(r) for r in grid.values("rule")]
    base = grid.base
    budget = dev.budget_bytes
    if what in ("batch", "classes"):
        best = largest_fitting_rules(base, tuple(rules), budget, what, accounting=acc)
    elif what == "trained-layers":
        best = {r: largest_trained_layers(base.with_(name=r), budget, accounting=acc) for r in rules}
    else:
        best = {r: largest_fitting(base.with_(name=r), budget, what, accounting=acc) for r in rules}
    rows = []
    for r in rules:
        v = best[r]
        cfg = base.with_(name=r)
        found = v >= (0 if what == "trained-layers" else 1)
        if found:
            cfg = cfg.with_(trainable=trainable_for(v, cfg.net.depth)) if what == "trained-layers" \
                else resize(cfg, what, v)
        peak = estimate(cfg, acc).peak_bytes if found else None
        reasons = why_not(cfg.rule, cfg.workload.batch, cfg.workload.classes) if found else []
        runs = device_runs(dev, cfg.rule)
        state = verdict_word(True, not reasons, runs) if found else \
            "does not fit at 1" if what != "trained-layers" else "the readout alone does not fit"
        rows.append({"rule": r, "largest": what, "value": v if found else None,
                     "of": cfg.net.depth if what == "trained-layers" else None, "peak_bytes": peak,
                     "budget_bytes": budget, "headroom_bytes": budget - peak if found else None,
                     "verdict": state, "why_not_learning": "; ".join(reasons), "locality": locality(cfg.rule),
                     "device_runs": runs, "eligible": eligible(cfg.rule, dev, locs), "accounting": acc})
    df = pd.DataFrame(rows)
    order = df.assign(_k=~df["eligible"], _v=-df["value"].fillna(-1), _p=df["peak_bytes"].fillna(float("inf"))
                      ).sort_values(["_k", "_v", "_p"], kind="stable")  # largest first, then least memory
    df = df.loc[order.index].reset_index(drop=True)
    df.attrs.update(accounting_why=why, alternatives=alternatives_label(dev, locs).replace(
        "best alternative among", "ranked among"), device=dev.name, what=what)
    return df


def render_fit(df: Any) -> str:
    from tpprof.analytic import ACCOUNTING_LABELS
    from tpprof.units import format_bytes

    what = df.attrs["what"]
    acc = str(df["accounting"].iloc[0])
    head = (f"tpprof fit: the largest {what} that fits {df.attrs['device']} "
            f"({format_bytes(int(df['budget_bytes'].iloc[0]))}), per rule\n"
            f"accounting {acc} — {ACCOUNTING_LABELS[acc]} ({df.attrs['accounting_why']})")
    rows = [["rule", what, "peak", "headroom", "verdict", "locality"]]
    for r in df.to_dict("records"):
        v = "-" if r["value"] is None or r["value"] != r["value"] else str(int(r["value"]))
        if r["of"] is not None and r["of"] == r["of"] and v != "-":
            v = f"{v} of {int(r['of'])}"
        rows.append([r["rule"], v, format_bytes(r["peak_bytes"]) if r["peak_bytes"] == r["peak_bytes"]
                     and r["peak_bytes"] is not None else "-",
                     format_bytes(r["headroom_bytes"]) if r["headroom_bytes"] == r["headroom_bytes"]
                     and r["headroom_bytes"] is not None else "-",
                     r["verdict"], r["locality"] + ("" if r["eligible"] else " (excluded)")])
    note = f"\n{df.attrs['alternatives']}; excluded rules are listed last"
    if what == "trained-layers":
        note += ("\ntrained-layers k: the last k hidden layers and the readout learn, the first L − k are frozen "
                 "(RuleSpec.trainable; 0 = readout only)")
    bad = [f"{r['rule']}: {r['why_not_learning']}" for r in df.to_dict("records") if r["why_not_learning"]]
    if bad:
        note += "\nlearns nothing there: " + " | ".join(bad)
    return head + "\n\n" + _table(rows, "lrrrll") + note


def cmd_fit(args: argparse.Namespace) -> int:
    df = fit_frame(args)
    if args.json:
        doc = {"device": df.attrs["device"], "largest": df.attrs["what"], "accounting_why": df.attrs["accounting_why"],
               "ranked_among": df.attrs["alternatives"], "rows": json.loads(df.to_json(orient="records"))}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_fit(df) + "\n")
    return 0


# ---------------------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------------------


def sweep_frame(args: argparse.Namespace) -> Any:
    """One row per (point, rule): config columns, total/peak bytes, one column per category."""
    df, dev = _estimate_grid(args)
    if dev:
        df.insert(list(df.columns).index("budget_bytes"), "device", dev.name)
    return df


def cmd_sweep(args: argparse.Namespace) -> int:
    out = args.out
    if out is not None and not out.lower().endswith((".csv", ".parquet")):
        raise UserError("out", f"{out!r} has an unknown extension", "a .csv or .parquet file")
    df = sweep_frame(args)
    sys.stderr.write(f"accounting {df['accounting'].iloc[0]} ({df.attrs.get('accounting_why', '')})"
                     + (f"; best_* columns: {df.attrs['alternatives']}" if "best_other" in df else "") + "\n")
    if out is None:
        sys.stdout.write(df.to_string(index=False) + "\n")
        return 0
    from tpprof.store import atomic_write

    write = df.to_csv if out.lower().endswith(".csv") else df.to_parquet
    try:
        atomic_write(out, lambda tmp: write(tmp, index=False))
    except OSError as e:
        raise UserError("out", f"cannot write {out!r} ({e.strerror or e})", "a writable path") from None
    sys.stderr.write(f"wrote {len(df)} rows to {out}\n")
    return 0


# ---------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------


def cmd_devices(args: argparse.Namespace) -> int:
    from tpprof.analytic.devices import KINDS, device_to_dict, load_catalogue
    from tpprof.units import format_bytes

    devs = load_catalogue(args.devices)
    if args.kind:
        if args.kind not in KINDS:
            raise UserError("kind", f"{args.kind!r} is not known", ", ".join(KINDS))
        devs = tuple(d for d in devs if d.kind == args.kind)
    if args.json:
        sys.stdout.write(json.dumps([device_to_dict(d) for d in devs], indent=2, ensure_ascii=False) + "\n")
        return 0
    from tpprof.analytic.devices import device_accounting

    rows = [["name", "kind", "on-chip", "off-chip", "budget", "largest block", "learning", "accounting", "figures"]] + [
        [d.name, d.kind, format_bytes(d.on_chip_bytes) if d.on_chip_bytes else "-",
         format_bytes(d.off_chip_bytes) if d.off_chip_bytes else "-", format_bytes(d.budget_bytes),
         format_bytes(d.largest_block_bytes) if d.largest_block_bytes else "-", d.learning_capability,
         device_accounting(d)[0], "partly unverified" if "unverified" in d.source else "sourced"] for d in devs]
    sys.stdout.write(_table(rows, "llrrrrlll") + "\n")
    sys.stdout.write("\nlargest block: the largest contiguous memory region (one buffer can be no larger; '-' = the "
                     "budget is one block or not known).\nlearning (on chip): none (inference only), readout (only "
                     "the last layer learns on chip), local (on-chip plasticity: local rules only), any (a CPU runs "
                     "any rule in software); accounting: the one estimate/sweep/fit use for the device (algorithm on "
                     "a microcontroller or neuromorphic chip, full on a host).\n"
                     "sources: 'tpprof devices --json' lists the source of every figure; 'unverified' marks "
                     "figures recalled from the named datasheet but not re-checked.\n")
    return 0
