"""``tpprof estimate``, ``tpprof sweep`` and ``tpprof devices``: thin shells over tpprof.analytic.

Each handler parses flags into a :class:`tpprof.config.Config`, calls a data function and
renders a table, JSON or a file. Nothing here imports torch; pandas is imported only by
``sweep``.
"""

from __future__ import annotations

import argparse
import json
import sys
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


def _add_flags(p: argparse.ArgumentParser, *, lists: bool) -> None:
    add_config_flags(p, lists=lists)
    from tpprof.analytic import ACCOUNTING_LABELS, ACCOUNTINGS  # torch-free, small

    p.add_argument("--accounting", default="full", choices=ACCOUNTINGS,
                   help="; ".join(f"{k}: {v}" for k, v in ACCOUNTING_LABELS.items())
                        + " (default full), e.g. --accounting algorithm")
    p.add_argument("--budget", default=None,
                   help="memory budget to fit into: bytes or a size with unit, e.g. --budget 512KiB, --budget '1.5 MB'")
    p.add_argument("--device", default=None,
                   help="a device from 'tpprof devices' whose memory is the budget, e.g. --device stm32h743")
    p.add_argument("--devices", default=None, metavar="FILE",
                   help="extra device catalogue (JSON/TOML, see 'tpprof devices --help'), e.g. --devices boards.toml")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``estimate``, ``sweep`` and ``devices``."""
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


def _estimate_grid(args: argparse.Namespace) -> tuple[Any, Any]:
    """The flags' grid estimated (one row per point and rule), with the budget's device (or None)."""
    from tpprof.analytic import estimate_grid

    grid = grid_from_args(args)
    dev = _device(args, grid.base)
    return estimate_grid(grid, args.accounting, budget_bytes=dev.budget_bytes if dev else None), dev


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


def render_breakdown(bd: Any, per_layer: bool = False, device: Any = None) -> str:
    """The human table of ``tpprof estimate``."""
    from tpprof.analytic import ACCOUNTING_LABELS
    from tpprof.analytic.rules import REGISTRY
    from tpprof.units import format_bytes

    cfg = bd.config
    total = bd.total_bytes or 1
    wl, rs = cfg.workload, cfg.rule
    head = [f"tpprof estimate: rule {bd.rule} ({REGISTRY[bd.rule].title}), accounting {bd.accounting} — "
            f"{ACCOUNTING_LABELS[bd.accounting]}",
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
        verdict = ("fits, headroom " + format_bytes(fit["headroom_bytes"])
                   + f" ({100 * fit['headroom_fraction']:.0f}% of the budget)") if fit["fits"] else \
            ("does NOT fit: short by " + format_bytes(-fit["headroom_bytes"])
             + f" (peak is {bd.peak_bytes / device.budget_bytes:.2f}× the budget)")
        lines.append(f"budget: {device.name} {format_bytes(device.budget_bytes)} ({_budget_source(device)}): {verdict}")
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
    df, dev = _estimate_grid(args)
    df = df.sort_values(["peak_bytes", "macs_per_step"], kind="stable").reset_index(drop=True)
    if "tp" in set(df["rule"].astype(str)):
        df["vs_tp"] = df["peak_bytes"] / int(df.loc[df["rule"] == "tp", "peak_bytes"].iloc[0])
    add_step_time(df)
    return df, dev


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
            f"{ACCOUNTING_LABELS[str(first['accounting'])]}\n"
            f"net {first['net']} | B={first['batch']} C={first['classes']} T={first['steps']} | {first['dtype']} | "
            f"{first['optimizer']}" + (f" | budget {format_bytes(dev.budget_bytes)} ({dev.name})" if dev else ""))
    cols = ["rank", "rule", "peak", "total", "MACs/step", "time/step*"] + (["peak / TP"] if "vs_tp" in df else []) + (
        ["fits"] if dev else []) + ["model"]
    rows = [cols]
    for i, r in enumerate(df.to_dict("records"), start=1):
        t = r.get("time_s_per_step", float("nan"))
        e = r.get("time_error_held_out", float("nan"))
        row = [str(i), str(r["rule"]), format_bytes(r["peak_bytes"]), format_bytes(r["total_bytes"]),
               _si(r["macs_per_step"]), (f"{t * 1e3:.3g} ms" + (f" ±{e:.0%}" if e == e else " (pooled)"))
               if t == t else "-"]
        if "vs_tp" in r:
            row.append(f"{r['vs_tp']:.3f}")
        if dev:
            row.append("yes" if r["fits"] else "no")
        row.append("learner" if r["rule"] in TRAINABLE_RULES else "algorithm only")
        rows.append(row)
    note = ("\nmodel: 'learner' = a tpprof learner exists, its peak includes the PyTorch implementation's "
            "overheads and is checked against measurement; 'algorithm only' = the rule's algorithmic terms "
            "(no learner, no implementation overheads), so it reads low next to a learner's")
    if str(first["accounting"]) != "full":
        note = (f"\nmodel: 'learner' = a tpprof learner exists and is checked against measurement; 'algorithm only' = "
                f"no learner. Accounting {first['accounting']}: no row includes implementation overheads")
    note += (f"\n* {df.attrs.get('time_model', 'time model not computed')}; it times the host of the "
             "shipped measurements (torch learners), not the budget's device")
    return head + "\n\n" + _table(rows, "rlrrrr" + "r" * (len(cols) - 7) + "l") + note


def cmd_estimate(args: argparse.Namespace) -> int:
    from tpprof.analytic import estimate

    if args.rule is not None and (args.rule.strip().lower() == "all" or "," in args.rule):
        df, dev = rank_rules(args)
        sys.stdout.write((df.astype({c: str for c in df.select_dtypes("category").columns}).to_json(
            orient="records", indent=2) if args.json else render_ranking(df, dev)) + "\n")
        return 0
    cfg = config_from_args(args)
    dev = _device(args, cfg)
    bd = estimate(cfg, args.accounting)
    if args.json:
        doc = bd.to_dict()
        g = figure5_g(bd)
        if g is not None:
            doc["figure5_g"] = g
        if dev is not None:
            doc["device"] = {"name": dev.name, "budget_bytes": dev.budget_bytes, "source": dev.source}
            doc["fit"] = bd.fit(dev.budget_bytes)
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_breakdown(bd, args.per_layer, dev) + "\n")
    return 0


# ---------------------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------------------


def sweep_frame(args: argparse.Namespace) -> Any:
    """One row per (point, rule): config columns, total/peak bytes, one column per category."""
    df, dev = _estimate_grid(args)
    if dev:
        df.insert(len(df.columns) - 3, "device", dev.name)
    return df


def cmd_sweep(args: argparse.Namespace) -> int:
    out = args.out
    if out is not None and not out.lower().endswith((".csv", ".parquet")):
        raise UserError("out", f"{out!r} has an unknown extension", "a .csv or .parquet file")
    df = sweep_frame(args)
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
    rows = [["name", "kind", "on-chip", "off-chip", "budget", "figures"]] + [
        [d.name, d.kind, format_bytes(d.on_chip_bytes) if d.on_chip_bytes else "-",
         format_bytes(d.off_chip_bytes) if d.off_chip_bytes else "-", format_bytes(d.budget_bytes),
         "partly unverified" if "unverified" in d.source else "sourced"] for d in devs]
    sys.stdout.write(_table(rows, "llrrrl") + "\n")
    sys.stdout.write("\nsources: 'tpprof devices --json' lists the source of every figure; 'unverified' marks "
                     "figures recalled from the named datasheet but not re-checked.\n")
    return 0
