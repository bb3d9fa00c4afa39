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

from tpprof.errors import UserError

_EPILOG_ESTIMATE = """examples:
  tpprof estimate --net shd --rule tp --batch 128 --classes 20 --steps 100 --dtype fp32 --optimizer adam
  tpprof estimate --net 700-450r-20 --rule tess --budget 512KiB
  tpprof estimate --net vgg9:2x32x32-11 --rule bptt --steps 21 --device jetson-nano --json
  tpprof estimate --net shd --rule tp --accounting paper+s
  tpprof estimate --config run.toml --batch 16
"""

_EPILOG_SWEEP = """examples:
  tpprof sweep --net shd --rule tp,tess,bptt --batch 1,8,64 --classes 10,100,1000 --steps 100 --out grid.csv
  tpprof sweep --net 40-256-256-10 --rule tp,tess --batch 16,32 --dtype fp32,fp16 --out grid.parquet
  tpprof sweep --net shd --rule tp,bptt --steps 25,50,100,200 --device stm32h743
"""


def _add_config_flags(p: argparse.ArgumentParser, *, lists: bool) -> None:
    many = " (comma-separated list)" if lists else ""
    p.add_argument("--net", default=None,
                   help="preset (nmnist, shd, shd-rec, gsc, dvsgesture-vgg9, cifar10dvs-vgg9, fsdd) or net string, "
                        "e.g. 700-450-20, 700-450r-20, 2x32x32-c64-c128p-10, vgg9:2x32x32 (default: shd)")
    p.add_argument("--rule", default=None,
                   help=f"learning rule{many}: tp, tess, bptt, eprop, eprop-rfb, ostl, osttp, etlp, ottt "
                        f"(default: tp), e.g. --rule {'tp,tess,bptt' if lists else 'tess'}")
    p.add_argument("--batch", default=None,
                   help=f"batch size B{many}; default: the preset's (128 for shd) or 32, e.g. --batch {'1,8,64' if lists else '128'}")
    p.add_argument("--classes", default=None,
                   help=f"classes C, resizes the readout{many}; default: the net's readout, e.g. --classes {'10,100,1000' if lists else '20'}")
    p.add_argument("--steps", default=None,
                   help=f"time steps T per sequence{many}; default: the preset's (100 for shd) or 100, e.g. --steps 100")
    p.add_argument("--dtype", default=None,
                   help=f"element type of every tensor{many}: fp32, fp16, bf16, fp64, int8 (default fp32), e.g. --dtype fp16")
    p.add_argument("--optimizer", default=None,
                   help=f"optimiser{many}: sgd (no state), momentum (1× params), adam (2× params); default adam")
    p.add_argument("--cadence", default=None,
                   help="update cadence: step (every time step, as published) or sequence (gradients accumulated "
                        "over T, one update per mini-batch); default step, e.g. --cadence sequence")
    p.add_argument("--aux", default=None,
                   help="fixed random matrices (TP's S, TESS's B_l, feedback matrices): stored (memory) or "
                        "regenerated from a seed (compute); default stored, e.g. --aux regenerated")
    p.add_argument("--accounting", default="full", choices=("full", "paper", "paper+s"),
                   help="full: tpprof's full model (default); paper: the paper's state accounting (§9: TP = 2BLH, "
                        "TESS = BLH + LCH, BPTT = TBLH); paper+s: paper, plus S for TP. e.g. --accounting paper")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="TOML or JSON config file (net, [workload], [rule], [device]); flags given on the command "
                        "line override it, e.g. --config run.toml")
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
    _add_config_flags(p, lists=False)
    p.add_argument("--json", action="store_true", help="print the breakdown as JSON, e.g. --json | jq .peak_bytes")
    p.add_argument("--per-layer", action="store_true",
                   help="one table row per layer's term instead of summing a term over layers, e.g. --per-layer")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("sweep", help="analytic memory over a grid of configs → CSV / Parquet",
                       description="Estimate every combination of the listed values (one row per point and rule).",
                       epilog=_EPILOG_SWEEP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_flags(p, lists=True)
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


def build_config(args: argparse.Namespace, *, net: str | None = None, rule: str | None = None,
                 batch: Any = None, classes: Any = None, steps: Any = None, dtype: str | None = None,
                 optimizer: str | None = None) -> Any:
    """Flags (and ``--config``) → Config; explicit keyword values override both."""
    from dataclasses import replace

    from tpprof.config import load_config_file, make_config

    net = net if net is not None else args.net
    rule = rule if rule is not None else args.rule
    batch = batch if batch is not None else args.batch
    classes = classes if classes is not None else args.classes
    steps = steps if steps is not None else args.steps
    dtype = dtype if dtype is not None else args.dtype
    optimizer = optimizer if optimizer is not None else args.optimizer
    if args.config:
        base = load_config_file(args.config)
        rule_changes = {k: v for k, v in (("name", rule), ("optimizer", optimizer), ("cadence", args.cadence),
                                          ("aux", args.aux)) if v is not None}
        rs = replace(base.rule, **rule_changes)
        wl = base.workload
        return make_config(net if net is not None else base.net, rs,
                           batch if batch is not None else wl.batch,
                           classes if classes is not None else (wl.classes if net is None else None),
                           steps if steps is not None else wl.steps,
                           dtype if dtype is not None else wl.dtype, device=base.device)
    from tpprof.config import RuleSpec

    rs = RuleSpec(name=rule or "tp", optimizer=optimizer or "adam", cadence=args.cadence or "step",
                  aux=args.aux or "stored")
    return make_config(net or "shd", rs, batch, classes, steps, dtype or "fp32")


def _int_arg(field: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        v = int(str(value).strip())
    except ValueError:
        raise UserError(field, f"{value!r} is not an integer", "an integer >= 1, e.g. 128") from None
    if v < 1:
        raise UserError(field, f"{v} is too small", "an integer >= 1")
    return v


def _device(args: argparse.Namespace, cfg: Any) -> Any:
    from tpprof.analytic.devices import resolve_budget

    dev = resolve_budget(args.device, args.budget, args.devices)
    if dev is None and args.devices and not args.device:
        raise UserError("devices", "--devices needs --device NAME to pick one", "--device NAME")
    return dev if dev is not None else cfg.device


# ---------------------------------------------------------------------------------------
# estimate
# ---------------------------------------------------------------------------------------


def _fmt_int(n: int) -> str:
    return f"{n:,}"


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
    out = []
    for g in groups.values():
        ls = g.pop("layers")
        phases = list(dict.fromkeys(g.pop("phases")))
        if phases:
            g["live"] = "transient (" + ", ".join(phases) + ")"
        if len(ls) > 1:
            g["name"] += f" [×{len(ls)} layers]"
        elif len(ls) == 1 and bd.config is not None and bd.config.net.depth > 1:
            g["name"] += f" [layer {ls[0]}]"
        out.append(g)
    return out


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
    from tpprof.analytic.rules import REGISTRY
    from tpprof.config import format_bytes

    cfg = bd.config
    total = bd.total_bytes or 1
    wl, rs = cfg.workload, cfg.rule
    head = [f"tpprof estimate: rule {bd.rule} ({REGISTRY[bd.rule].title}), accounting {bd.accounting}",
            f"net {cfg.net.to_string()}" + (f" ({cfg.net.name})" if cfg.net.name and cfg.net.name != cfg.net.to_string() else "")
            + f" | B={wl.batch} C={wl.classes} T={wl.steps} | {wl.dtype} | {rs.optimizer} | cadence {rs.cadence}"
            + f" | aux {rs.aux}", ""]
    rows = [["term", "category", "elements", "bytes", "%", "live"]]
    for r in _rows(bd, per_layer):
        rows.append([r["name"], r["category"], _fmt_int(r["count"]), format_bytes(r["bytes"]),
                     f"{100 * r['bytes'] / total:.1f}", r["live"]])
    lines = head + [_table(rows, "llrrrl"), ""]
    phase = bd.peak_phase
    lines.append(f"peak  {format_bytes(bd.peak_bytes):>12}  ({_fmt_int(bd.peak_bytes)} B) = persistent "
                 f"{format_bytes(bd.persistent_bytes)} + largest live transient set"
                 + (f" (phase {phase})" if phase else ""))
    lines.append(f"total {format_bytes(bd.total_bytes):>12}  ({_fmt_int(bd.total_bytes)} B) = sum of all terms")
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
    if bd.accounting == "full" or bd.rule not in ("tp", "tess"):
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
    for p in parts:
        if p.startswith(basis + ":"):
            return p
    return parts[0]


def cmd_estimate(args: argparse.Namespace) -> int:
    from tpprof.analytic import estimate

    _int_arg("batch", args.batch), _int_arg("classes", args.classes), _int_arg("steps", args.steps)
    cfg = build_config(args)
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


def _list(field: str, value: Any, default: Iterable[Any], conv: Any = str) -> list[Any]:
    if value is None:
        return list(default)
    items = [x.strip() for x in str(value).split(",")]
    if not items or any(not x for x in items):
        raise UserError(field, f"{value!r} has an empty item", "a comma-separated list, e.g. 1,8,64")
    return [conv(field, x) if conv is not str else x for x in items]


def sweep_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One dict per (point, rule): config columns, total/peak bytes, one column per category."""
    from tqdm import tqdm

    from tpprof.analytic import CATEGORIES, estimate

    rules = _list("rule", args.rule, ["tp"])
    batches = _list("batch", args.batch, [None], _int_arg)
    classes = _list("classes", args.classes, [None], _int_arg)
    steps = _list("steps", args.steps, [None], _int_arg)
    dtypes = _list("dtype", args.dtype, [None])
    opts = _list("optimizer", args.optimizer, [None])
    import itertools

    points = list(itertools.product(batches, classes, steps, dtypes, opts, rules))
    if len(points) > 1_000_000:
        raise UserError("sweep", f"{len(points)} points is too many for one run", "at most 1,000,000")
    rows = []
    dev = None
    for b, c, t, dt, opt, rule in tqdm(points, desc="sweep", unit="pt", file=sys.stderr, disable=None):
        cfg = build_config(args, rule=rule, batch=b, classes=c, steps=t, dtype=dt, optimizer=opt)
        if dev is None:
            dev = _device(args, cfg) or False
        bd = estimate(cfg, args.accounting)
        row: dict[str, Any] = {
            "rule": bd.rule, "net": cfg.net.to_string(), "batch": cfg.workload.batch,
            "classes": cfg.workload.classes, "steps": cfg.workload.steps, "dtype": cfg.workload.dtype,
            "optimizer": cfg.rule.optimizer, "cadence": cfg.rule.cadence, "aux": cfg.rule.aux,
            "accounting": bd.accounting, "total_bytes": bd.total_bytes, "peak_bytes": bd.peak_bytes,
        }
        cats = bd.by_category()
        for cat in CATEGORIES:
            row[f"{cat}_bytes"] = cats[cat]
        row["macs_per_step"] = bd.macs_per_step
        if dev:
            fit = bd.fit(dev.budget_bytes)
            row.update(device=dev.name, budget_bytes=dev.budget_bytes, fits=fit["fits"],
                       headroom_bytes=fit["headroom_bytes"])
        rows.append(row)
    return rows


def cmd_sweep(args: argparse.Namespace) -> int:
    out = args.out
    if out is not None and not (out.lower().endswith(".csv") or out.lower().endswith(".parquet")):
        raise UserError("out", f"{out!r} has an unknown extension", "a .csv or .parquet file")
    rows = sweep_rows(args)
    import pandas as pd

    df = pd.DataFrame(rows)
    if out is None:
        sys.stdout.write(df.to_string(index=False) + "\n")
        return 0
    try:
        if out.lower().endswith(".csv"):
            df.to_csv(out, index=False)
        else:
            df.to_parquet(out, index=False)
    except OSError as e:
        raise UserError("out", f"cannot write {out!r} ({e.strerror or e})", "a writable path") from None
    sys.stderr.write(f"wrote {len(df)} rows to {out}\n")
    return 0


# ---------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------


def cmd_devices(args: argparse.Namespace) -> int:
    from tpprof.analytic.devices import KINDS, device_to_dict, load_catalogue
    from tpprof.config import format_bytes

    devs = load_catalogue(args.devices)
    if args.kind:
        if args.kind not in KINDS:
            raise UserError("kind", f"{args.kind!r} is not known", ", ".join(KINDS))
        devs = tuple(d for d in devs if d.kind == args.kind)
    if args.json:
        sys.stdout.write(json.dumps([device_to_dict(d) for d in devs], indent=2, ensure_ascii=False) + "\n")
        return 0
    rows = [["name", "kind", "on-chip", "off-chip", "budget", "figures"]]
    for d in devs:
        rows.append([d.name, d.kind, format_bytes(d.on_chip_bytes) if d.on_chip_bytes else "-",
                     format_bytes(d.off_chip_bytes) if d.off_chip_bytes else "-", format_bytes(d.budget_bytes),
                     "partly unverified" if "unverified" in d.source else "sourced"])
    sys.stdout.write(_table(rows, "llrrrl") + "\n")
    sys.stdout.write("\nsources: 'tpprof devices --json' lists the source of every figure; 'unverified' marks "
                     "figures recalled from the named datasheet but not re-checked.\n")
    return 0
