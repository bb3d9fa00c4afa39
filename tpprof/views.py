"""The tables behind every tpprof view: functions of a :class:`tpprof.config.Config` and the view's
own axes (ranges, points, the rules compared) that return tidy :class:`pandas.DataFrame` s.

The Config carries the net, the workload and the rule's settings; callers build it once, through
the CLI's path (:func:`tpprof.cli.config_flags.config_from_values`: the app from its widgets, the
report from its defaults). Each ``*_frame`` function derives its points from it (a
:class:`tpprof.config.Grid`, or ``cfg.with_(...)``) and calls the analytic
model (:func:`tpprof.analytic.estimate`, :func:`tpprof.analytic.estimate_grid`); it computes no
memory formula of its own. Measured-vs-analytic tables go through :mod:`tpprof.validate` (the one
join). The dashboard caches these functions on their arguments, :mod:`tpprof.plots` turns the
frames into figures, ``tpprof report`` (:mod:`tpprof.report`) exports them, and the same frame is
what a user downloads as CSV.

No torch import here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tpprof.analytic import ACCOUNTING_LABELS, PAPER_ACCOUNTINGS
from tpprof.config import Config, Grid, make_config, parse_net
from tpprof.device import Device
from tpprof.errors import UserError

#: The accounting choices of the relative-memory view, in the order shown (labels: one place,
#: tpprof.analytic.ACCOUNTING_LABELS).
ACCOUNTINGS: dict[str, str] = {k: ACCOUNTING_LABELS[k] for k in ("paper", "paper+s", "full", "algorithm")}
#: TP's target path in the views: per sample (the paper's) or per class present (exact dedup, K = min(B, C)).
TARGET_ROWS: dict[str, str] = {"batch": "per sample (paper)", "classes": "per class (exact dedup, K = min(B, C))"}
#: What Figure 5 sets TP against: TESS (the paper's view) or the best rule with a learner per cell.
FIGURE5_VERSUS: dict[str, str] = {
    "tess": "TESS (the paper's Figure 5)",
    "best": "the best alternative: per cell, the learner other than TP that needs least memory",
}
SCALING_VARS: tuple[str, ...] = ("depth", "width", "steps")
DEFAULT_SCALING_VALUES: dict[str, tuple[int, ...]] = {
    "depth": (1, 2, 3, 4, 6, 8),
    "width": (64, 128, 256, 512, 1024, 2048),
    "steps": (10, 25, 50, 100, 200, 400),
}

# --------------------------------------------------------------------------------------
# The analytic model, called through one cached door
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)  # a few views' grids; a Breakdown is ~10 KB, so ≤ ~100 MB
def _estimate(cfg: Config, accounting: str) -> Any:
    from tpprof.analytic import estimate

    return estimate(cfg, accounting=accounting)


def memory_of(cfg: Config, accounting: str = "full") -> int:
    """The memory a configuration needs under ``accounting``: the step's peak for the full
    model; the summed state for the paper's accountings (which count persistent state only)."""
    bd = _estimate(cfg, accounting)
    return int(bd.total_bytes if accounting in PAPER_ACCOUNTINGS else bd.peak_bytes)


def net_label(cfg: Config) -> str:
    """The net as the user named it (a preset's name, the net string typed), for tables and titles."""
    return cfg.net.name or cfg.net.to_string()


def class_batch_memory(base: Config, rules: Sequence[str], classes: Sequence[int], batches: Sequence[int],
                       accounting: str = "full") -> pd.DataFrame:
    """Rows (rule, classes, batch, memory_bytes) over rules × classes × batch, rule slowest, then C:
    one :func:`tpprof.analytic.estimate_grid` call on ``base``. ``memory_bytes`` as :func:`memory_of`."""
    from tpprof.analytic import estimate_grid

    first = base.with_(name=rules[0], batch=1, classes=int(classes[0]))
    grid = Grid(first, (("rule", tuple(rules)), ("classes", tuple(int(c) for c in classes)),
                        ("batch", tuple(int(b) for b in batches))))
    df = estimate_grid(grid, accounting)
    df["memory_bytes"] = df["total_bytes"] if accounting in PAPER_ACCOUNTINGS else df["peak_bytes"]
    df["rule"] = df["rule"].astype(str)
    return df[["rule", "classes", "batch", "memory_bytes"]]


def log_grid(lo: int, hi: int, points: int, field_name: str = "range") -> np.ndarray:
    """About ``points`` distinct integers log-spaced over [lo, hi] (both ends included)."""
    lo_i, hi_i = int(lo), int(hi)
    if lo_i < 1 or hi_i < lo_i:
        raise UserError(field_name, f"[{lo}, {hi}] is not a range", "1 <= low <= high")
    if points < 2:
        raise UserError(field_name, f"{points} points is too few", "at least 2 points")
    return np.unique(np.round(np.geomspace(lo_i, hi_i, points)).astype(np.int64))


def check_net(net: str) -> str:
    """Validate a typed net (preset or net string); return it stripped (UserError if bad)."""
    parse_net(net)
    return net.strip()


# --------------------------------------------------------------------------------------
# Relative memory cost (Figure 5)
# --------------------------------------------------------------------------------------


def figure5_frame(base: Config, accounting: str = "paper", classes: tuple[int, int] = (2, 1000),
                  batch: tuple[int, int] = (2, 1024), points: int = 24, versus: str = "tess",
                  locality: tuple[str, ...] | None = None) -> pd.DataFrame:
    """G(C, B) = Mem_other / Mem_TP over a log grid of classes × batch sizes (G > 1: TP needs less),
    for ``base``'s net, steps, dtype and rule settings (TP's target path: ``base.rule.target_rows``).

    ``versus="tess"``: the paper's Figure 5, other = TESS. ``versus="best"``: other = the rule
    with a learner (:data:`tpprof.config.TRAINABLE_RULES`) that needs least memory in that cell
    (under the paper's accountings, among the rules the paper's Table 3 accounts for). Memories
    as :func:`memory_of`, from one :func:`tpprof.analytic.estimate_grid` call. Columns: classes,
    batch, tp_bytes, other_bytes, other (the rule), G, accounting, net, versus; with ``tess``
    also tess_bytes (= other_bytes). "best" is chosen among the rules ``base.device`` (when set) can
    run and, with ``locality``, of those classes (``attrs['alternatives']`` says which; G is NaN
    where no rule is left).
    """
    from tpprof.analytic import estimate_grid
    from tpprof.analytic.paper import PAPER_STATE
    from tpprof.config import TRAINABLE_RULES, rules_accepting

    if accounting not in ACCOUNTINGS:
        raise UserError("accounting", f"{accounting!r} is not known", ", ".join(ACCOUNTINGS))
    if versus not in FIGURE5_VERSUS:
        raise UserError("versus", f"{versus!r} is not known", ", ".join(FIGURE5_VERSUS))
    cs = log_grid(*classes, points, "classes")
    bs = log_grid(*batch, points, "batch")
    net = net_label(base)
    base = base.with_(name="tp", batch=1, classes=int(cs[0]))
    if versus == "tess":
        rules = ["tp", "tess"]
    else:
        known = [r for r in TRAINABLE_RULES if accounting not in PAPER_ACCOUNTINGS or r in PAPER_STATE]
        rules = rules_accepting(base, known)
    grid = Grid(base, (("classes", tuple(int(c) for c in cs)), ("batch", tuple(int(b) for b in bs)),
                       ("rule", tuple(rules))))
    full = estimate_grid(grid, accounting, locality=locality)  # the device: grid.base.device
    tp = full[full["rule"] == "tp"]
    mem = "total_bytes" if accounting in PAPER_ACCOUNTINGS else "peak_bytes"  # paper terms are all state: peak = total
    df = pd.DataFrame({"classes": tp["classes"].to_numpy(), "batch": tp["batch"].to_numpy(),
                       "tp_bytes": tp[mem].to_numpy(), "other_bytes": tp["best_other_peak_bytes"].to_numpy(),
                       "other": tp["best_other"].astype(str).to_numpy()})
    if versus == "tess":
        df["tess_bytes"] = df["other_bytes"]
    df["G"] = df["other_bytes"] / df["tp_bytes"]  # the ratio's definition (paper's Figure 5)
    df = df.assign(accounting=accounting, net=net, versus=versus)
    df.attrs["alternatives"] = full.attrs.get("alternatives", "")
    return df


def preset_points() -> pd.DataFrame:
    """The paper's benchmarks as (classes, batch) points: one row per preset (name, classes,
    batch), to mark where published workloads sit on the Figure-5 map."""
    from tpprof.config import PRESETS

    return pd.DataFrame([(name, p.classes, p.batch) for name, p in PRESETS.items()],
                        columns=["name", "classes", "batch"])


# --------------------------------------------------------------------------------------
# Devices and regimes
# --------------------------------------------------------------------------------------


#: The regime map's verdicts, by (TP fits, TESS fits, TP needs less than TESS).
VERDICTS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "both fit, TP smaller", (True, True, False): "both fit, TESS smaller",
    (True, False, True): "only TP fits", (True, False, False): "only TP fits",
    (False, True, True): "only TESS fits", (False, True, False): "only TESS fits",
    (False, False, True): "neither fits", (False, False, False): "neither fits",
}
#: The regime map's verdict where TP fits the budget but learns nothing (B below its minimum batch).
TP_NO_LEARNING = "TP fits, does not learn"


def regime_frame(base: Config, budget_bytes: int, classes: tuple[int, int] = (2, 1000),
                 batch: tuple[int, int] = (2, 1024), points: int = 20,
                 rules: Sequence[str] = ("tp", "tess", "bptt"), accounting: str = "full") -> pd.DataFrame:
    """Per (classes, batch) cell and rule: peak memory (``accounting``: full by default; a device's
    own is :func:`tpprof.analytic.devices.device_accounting`), fits, headroom, for ``base``'s net,
    steps, dtype and optimiser.

    ``verdict`` (per cell) says which of TP and TESS fit ``budget_bytes`` and which needs
    less (:data:`VERDICTS`); TP wins where it fits and TESS does not, or both fit and TP needs
    less. A rule that fits but learns nothing there (TP at B = 1:
    :func:`tpprof.analytic.learnability.learns`) is never said to fit: its row's ``status`` is
    "fits, does not learn", and a cell where that is TP reads :data:`TP_NO_LEARNING`.
    Rows: cells in (C, B) order, the rules of each cell together.
    """
    from tpprof.analytic.grid import VERDICT_WORDS
    from tpprof.analytic.learnability import learns

    rules = tuple(dict.fromkeys(("tp", "tess") + tuple(rules)))
    cs = log_grid(*classes, points, "classes")
    bs = log_grid(*batch, points, "batch")
    mem = class_batch_memory(base, rules, cs, bs, accounting)
    peaks = mem["memory_bytes"].to_numpy().reshape(len(rules), -1).T  # (cells, rules): rule slowest in ``mem``
    fits = peaks <= budget_bytes
    tp, tess = peaks[:, 0], peaks[:, 1]
    cc, bb = np.meshgrid(cs, bs, indexing="ij")  # (nC, nB): the order of each rule's rows
    ok = np.stack([learns(dataclasses.replace(base.rule, name=r), bb.ravel(), cc.ravel())
                   for r in rules], axis=1)  # (cells, rules)
    verdict = [TP_NO_LEARNING if f_tp and not l_tp else VERDICTS[(f_tp and l_tp, f_te and l_te, smaller)]
               for f_tp, f_te, l_tp, l_te, smaller in zip(fits[:, 0].tolist(), fits[:, 1].tolist(),
                                                          ok[:, 0].tolist(), ok[:, 1].tolist(), (tp < tess).tolist())]
    status = np.where(fits, np.where(ok, VERDICT_WORDS[1], VERDICT_WORDS[2]), VERDICT_WORDS[0])
    n = len(rules)
    return pd.DataFrame({"classes": np.repeat(cc.ravel(), n), "batch": np.repeat(bb.ravel(), n),
                         "rule": list(rules) * peaks.shape[0], "peak_bytes": peaks.ravel(), "fits": fits.ravel(),
                         "learns": ok.ravel(), "status": status.ravel(),
                         "headroom_bytes": budget_bytes - peaks.ravel(), "verdict": np.repeat(verdict, n).tolist()})


def breakdown_frame(base: Config, rules: Sequence[str], accounting: str = "full",
                    budget_bytes: int | None = None) -> pd.DataFrame:
    """Bytes per category for each rule at ``base``'s point: ``bytes`` live at the step's peak (they
    add up to ``peak_bytes``), ``all_terms_bytes`` the plain sum of the category's terms; with
    each rule's peak, total and — given a budget — headroom = budget − peak."""
    rows = []
    for r in rules:
        bd = _estimate(base.with_(name=r), accounting)
        every = bd.by_category()
        for cat, nbytes in bd.at_peak_by_category().items():
            rows.append((r, cat, nbytes, int(every[cat]), int(bd.peak_bytes), int(bd.total_bytes)))
    df = pd.DataFrame(rows, columns=["rule", "category", "bytes", "all_terms_bytes", "peak_bytes", "total_bytes"])
    if budget_bytes is not None:
        df["headroom_bytes"] = budget_bytes - df["peak_bytes"]
    return df


def inverse_frame(base: Config, rules: Sequence[str], budget_bytes: int, accounting: str = "full") -> pd.DataFrame:
    """Per rule: the largest batch that fits with ``base``'s classes (net, steps, ...) within the budget,
    its peak memory, and whether the rule learns there (rows: rule, classes, max_batch, peak_bytes,
    budget_bytes, learns — False e.g. for TP whose largest batch is 1); all rules searched together
    (:func:`tpprof.analytic.regimes.largest_fitting_rules`)."""
    from tpprof.analytic.learnability import learns
    from tpprof.analytic.regimes import largest_fitting_rules

    classes = base.workload.classes
    best = largest_fitting_rules(base.with_(name=rules[0], batch=1), tuple(rules), budget_bytes, "batch",
                                 accounting=accounting)
    rows = [(r, classes, best[r], memory_of(base.with_(name=r, batch=best[r]), accounting) if best[r] else None,
             budget_bytes, bool(best[r]) and learns(dataclasses.replace(base.rule, name=r), best[r], classes))
            for r in rules]
    return pd.DataFrame(rows, columns=["rule", "classes", "max_batch", "peak_bytes", "budget_bytes", "learns"])


# --------------------------------------------------------------------------------------
# Scaling
# --------------------------------------------------------------------------------------


def dense_net(features: int, width: int, depth: int, classes: int) -> str:
    """The net string of a uniform dense net: ``F-H-...-H-C`` with ``depth`` hidden layers."""
    return "-".join([str(features)] + [str(width)] * depth + [str(classes)])


def uniform_dense(cfg: Config) -> tuple[int, int, int]:
    """(features F, width H, depth L) of ``cfg``'s net when it is a uniform dense net F–H–…–H–C."""
    net = cfg.net
    widths = {layer.width for layer in net.layers}
    if len(net.input_shape) != 1 or any(layer.kind != "dense" for layer in net.layers) or len(widths) != 1:
        raise UserError("net", f"{net_label(cfg)!r} is not a uniform dense net", "F-H-...-H-C, e.g. 700-450-450-20")
    return net.input_size, widths.pop(), net.depth


def scaling_frame(base: Config, var: str, values: Sequence[int] | None = None,
                  rules: Sequence[str] = ("tp", "tess", "bptt")) -> pd.DataFrame:
    """Memory vs ``var`` ∈ {depth, width, steps} around ``base``, a uniform dense net F–H–…–H–C
    (:func:`uniform_dense`), per rule and category; batch, classes, dtype and the rule's settings
    are ``base``'s.

    Rows: rule, <var>, category, bytes (live at the step's peak), all_terms_bytes (every term of
    the category), peak_bytes, total_bytes.
    """
    if var not in SCALING_VARS:
        raise UserError("scaling variable", f"{var!r} is not known", ", ".join(SCALING_VARS))
    features, width, depth = uniform_dense(base)
    wl = base.workload
    vals = tuple(values) if values else DEFAULT_SCALING_VALUES[var]
    rows = []
    for v in vals:
        d, w, t = (v, width, wl.steps) if var == "depth" else (depth, v, wl.steps) if var == "width" \
            else (depth, width, v)
        net = dense_net(features, w, d, wl.classes)
        for r in rules:
            rule = dataclasses.replace(base.rule, name=r)
            bd = _estimate(make_config(net, rule, wl.batch, wl.classes, t, wl.dtype), "full")
            every = bd.by_category()
            for cat, nbytes in bd.at_peak_by_category().items():
                rows.append((r, int(v), cat, nbytes, int(every[cat]), int(bd.peak_bytes), int(bd.total_bytes)))
    return pd.DataFrame(rows, columns=["rule", var, "category", "bytes", "all_terms_bytes", "peak_bytes",
                                       "total_bytes"])


def informative_device(base: Config | None = None, classes: tuple[int, int] = (2, 1000),
                       batch: tuple[int, int] = (2, 1024)) -> Device:
    """A catalogue device whose budget cuts through the (C, B) map of ``base`` (default: the SHD
    preset): the one closest (in log scale) to the geometric mean of TP's smallest and largest
    peak over the ranges, so the regime map shows both feasible and infeasible cells. 8 MiB if
    the catalogue is empty."""
    from tpprof.analytic.devices import load_catalogue

    tp = (base or make_config("shd")).with_(name="tp")
    lo = memory_of(tp.with_(batch=batch[0], classes=classes[0]))
    hi = memory_of(tp.with_(batch=batch[1], classes=classes[1]))
    target = math.sqrt(lo * hi)
    catalogue = load_catalogue()
    inside = [d for d in catalogue if lo <= d.budget_bytes <= hi] or list(catalogue)
    if not inside:
        return Device(name="budget 8MiB", budget_bytes=8 * 2**20, source="tpprof default")
    return min(inside, key=lambda d: abs(math.log(d.budget_bytes / target)))


# --------------------------------------------------------------------------------------
# Measured vs analytic
# --------------------------------------------------------------------------------------


def compare_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Measured vs analytic peak per ``ok`` point: :func:`tpprof.validate.validate_rows` (the one
    join), as a table.

    Rows: rule, net, batch, classes, steps, dtype, optimizer, device, measured_bytes,
    predicted_bytes, error (measured / predicted − 1), label, group (:func:`tpprof.validate.t_group`),
    source. Points the analytic model rejects are counted in ``attrs['skipped']``.
    """
    cols = ["rule", "net", "batch", "classes", "steps", "dtype", "optimizer", "device", "measured_bytes",
            "predicted_bytes", "error", "label", "group", "source"]
    if rows is None or rows.empty:
        return pd.DataFrame(columns=cols)
    from tpprof.validate import t_group, validate_rows

    v = validate_rows(rows.to_dict("records"), estimate=lambda cfg, accounting: _estimate(cfg, accounting))
    out = [(r["rule"], r["net"], int(r["batch"]), int(r["classes"]), int(r["steps"]), r.get("dtype"),
            r.get("optimizer"), r.get("device"), float(p.measured), float(p.analytic_peak), p.error, p.label(),
            t_group(r), r.get("_source", "")) for p in v.points for r in (p.row,)]
    df = pd.DataFrame(out, columns=cols)
    df.attrs["skipped"] = sum(1 for _, why in v.skipped if not why.startswith("status "))
    return df


TARGET_COLUMNS = ["rule", "net", "batch", "classes", "steps", "optimizer", "core", "target_device", "status",
                  "modelled_bytes", "model_bytes", "difference_bytes", "static_stack_bytes", "stack_bytes",
                  "insns_per_step", "overflow_bytes"]


def target_frame(rows: pd.DataFrame, device: str | None = None) -> pd.DataFrame:
    """The configs measured on a microcontroller target (counter static+stack; ``tpprof measure
    --backend qemu:<core>``), optionally only those with ``device``'s SRAM: the kernel's modelled
    arrays against ``--accounting algorithm`` peak (difference in bytes), static+stack, the
    instructions per step, and the linker's overflow for configs that do not fit."""
    if rows is None or rows.empty or "counter" not in rows:
        return pd.DataFrame(columns=TARGET_COLUMNS)
    from tpprof.store import TARGET_COUNTER, config_of

    sub = rows[rows["counter"] == TARGET_COUNTER]
    if device is not None and "target_device" in sub:
        sub = sub[sub["target_device"].astype(str).str.lower() == str(device).lower()]
    out = []
    for r in sub.to_dict("records"):
        ok = r.get("status") == "ok"
        model = int(_estimate(config_of(r), "algorithm").peak_bytes) if ok else None
        modelled = int(r["modelled_bytes"]) if ok else None
        out.append((r["rule"], r["net"], int(r["batch"]), int(r["classes"]), int(r["steps"]), r.get("optimizer"),
                    r.get("core"), r.get("target_device") or "", r["status"], modelled, model,
                    (modelled - model) if ok else None, r.get("peak_bytes") if ok else None, r.get("stack_bytes"),
                    r.get("insns_per_step"), r.get("overflow_bytes")))
    return pd.DataFrame(out, columns=TARGET_COLUMNS)


def t_invariance_frame(cmp: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`compare_frame` whose (rule, group) was measured at ≥ 2 values of T."""
    if cmp.empty:
        return cmp
    n = cmp.groupby(["rule", "group"])["steps"].transform("nunique")
    return cmp[n >= 2].sort_values(["rule", "group", "steps"]).reset_index(drop=True)


def error_summary(cmp: pd.DataFrame, tolerance: float = 0.05) -> dict[str, Any]:
    """Median and max |measured / predicted − 1| over the joined points, and how many exceed
    ``tolerance``."""
    if cmp.empty:
        return {"points": 0, "median_abs_error": None, "max_abs_error": None, "out_of_tolerance": 0}
    e = cmp["error"].abs()
    return {"points": int(len(cmp)), "median_abs_error": float(e.median()), "max_abs_error": float(e.max()),
            "out_of_tolerance": int((e > tolerance).sum())}
