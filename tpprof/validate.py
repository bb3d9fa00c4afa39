"""Measured vs analytic: join measurement rows with ``estimate(cfg, accounting="full")``.

Per point: ratio = measured / analytic peak, error = ratio − 1 (a fraction). The measured
figure is peak_bytes + input_saved_bytes: the harness holds the input batch x outside the
peak (a device streams it one frame at a time), but frames that autograd keeps for backward
(BPTT: all T) must then be stored by the device, and the analytic model counts them as saved.
Per category, at the peak: measured bytes_<category> vs the analytic terms of that category
that are live at the peak (persistent terms + transients of the peak phase); and the rest,
total minus the learner-held categories (weights … aux) on each side, i.e. loss buffers, saved
tensors and implementation temporaries together.
Summary over ``ok`` rows: median |error|, max |error|, points beyond the tolerance.
Scaling checks on the measured rows alone:

* T-invariance: for TP and TESS, peak(T=400) / peak(T=25) at otherwise equal points (≈ 1: their
  memory does not grow with T);
* BPTT linear in T: least-squares fit peak = a + b·T per otherwise-equal group (≥ 3 values of
  T), coefficient of determination R² = 1 − SS_res / SS_tot.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from tpprof.errors import UserError
from tpprof.store import CATEGORIES, TARGET_COUNTER, config_of, merge, point_label, point_variant

PERSISTENT_CATEGORIES = ("weights", "gradients", "optimizer", "neuron_state", "traces", "aux")
Estimator = Callable[..., Any]


def measured_total(row: Mapping[str, Any]) -> int:
    """peak_bytes + input frames kept for backward (see the module docstring)."""
    extra = row.get("input_saved_bytes")
    return int(row["peak_bytes"]) + (int(extra) if extra is not None and extra == extra else 0)  # NaN != NaN


def _ratio(measured: float, analytic: float) -> float | None:
    if analytic == 0:
        return 1.0 if measured == 0 else None
    return measured / analytic


@dataclass
class PointCheck:
    """One measured point against its analytic twin."""

    row: dict[str, Any]
    measured: int  # peak_bytes + input_saved_bytes
    analytic_peak: int
    ratio: float
    categories: dict[str, dict[str, Any]]
    flagged: bool

    @property
    def error(self) -> float:
        return self.ratio - 1.0

    def label(self) -> str:
        return point_label(self.row)

    def to_dict(self) -> dict[str, Any]:
        keys = ("rule", "net", "net_string", "batch", "classes", "steps", "dtype", "optimizer", "cadence",
                "device", "counter", "peak_bytes", "baseline_bytes", "ms_per_step")
        d = {k: self.row.get(k) for k in keys}
        d.update(input_saved_bytes=self.row.get("input_saved_bytes"), measured_bytes=self.measured,
                 analytic_peak_bytes=self.analytic_peak, ratio=self.ratio, error=self.error,
                 out_of_tolerance=self.flagged, categories=self.categories)
        return d


@dataclass
class Validation:
    """Everything ``tpprof validate`` prints."""

    tolerance: float
    points: list[PointCheck] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (label, why)
    t_invariance: list[dict[str, Any]] = field(default_factory=list)
    bptt_linearity: list[dict[str, Any]] = field(default_factory=list)
    bad_rows: list[tuple[str, int, str]] = field(default_factory=list)
    stale: int = 0  # ok rows measured with learner code other than the installed one

    def summary(self) -> dict[str, Any]:
        errs = [abs(p.error) for p in self.points]
        tinv = [t["ratio"] for t in self.t_invariance]
        r2 = [b["r2"] for b in self.bptt_linearity if b["r2"] is not None]
        return {
            "n_points": len(self.points),
            "median_abs_error": statistics.median(errs) if errs else None,
            "max_abs_error": max(errs) if errs else None,
            "tolerance": self.tolerance,
            "out_of_tolerance": sum(p.flagged for p in self.points),
            "t_invariance_max_ratio": max(tinv) if tinv else None,
            "bptt_min_r2": min(r2) if r2 else None,
            "skipped": len(self.skipped),
            "bad_rows": len(self.bad_rows),
            "rows_from_other_learner_code": self.stale,
            "target_points": len(tgt := [p for p in self.points if p.row.get("counter") == TARGET_COUNTER]),
            "target_max_abs_difference_bytes": max((abs(p.measured - p.analytic_peak) for p in tgt), default=None),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "points": [p.to_dict() for p in self.points],
                "t_invariance": self.t_invariance, "bptt_linearity": self.bptt_linearity,
                "skipped": [{"point": a, "why": b} for a, b in self.skipped],
                "bad_rows": [{"file": f, "line": n, "problem": m} for f, n, m in self.bad_rows]}


#: The RAM of a target row that the algorithmic model does not count, as named lines
#: (column → line); with modelled_bytes they add up to the row's peak_bytes (static+stack).
TARGET_LINES: tuple[tuple[str, str], ...] = (
    ("data_bytes", "data (input frame, labels)"), ("runtime_data_bytes", "C runtime .data"),
    ("runtime_bss_bytes", "C runtime .bss"), ("stack_bytes", "stack (painted high-water)"))


def check_target_point(row: Mapping[str, Any], estimate: Estimator) -> PointCheck:
    """A target row (counter static+stack): the m_* arrays against ``estimate(cfg,
    accounting='algorithm')`` peak_bytes, to the byte (flagged on any difference); per category
    the arrays against the terms live at the peak; the RAM the model does not count as named lines."""
    bd = estimate(config_of(row), accounting="algorithm")
    a_peak = int(bd.peak_bytes)
    at_peak = bd.at_peak_by_category()
    cats: dict[str, dict[str, Any]] = {}
    for c in CATEGORIES:
        m = int(row.get(f"bytes_{c}") or 0)
        cats[c] = {"measured": m, "analytic": at_peak[c], "ratio": _ratio(m, at_peak[c])}
    for col, name in TARGET_LINES:
        v = row.get(col)
        cats[name] = {"measured": int(v) if v is not None else 0, "analytic": 0, "ratio": None, "not_modelled": True}
    measured = int(row["modelled_bytes"])
    ratio = measured / a_peak if a_peak else math.inf
    return PointCheck(dict(row), measured, a_peak, ratio, cats, measured != a_peak)


def check_point(row: Mapping[str, Any], estimate: Estimator, tolerance: float) -> PointCheck:
    """Compare one ok row with ``estimate(cfg, accounting='full')`` (target rows: see
    :func:`check_target_point`)."""
    if row.get("counter") == TARGET_COUNTER:
        return check_target_point(row, estimate)
    bd = estimate(config_of(row), accounting="full")
    a_peak = int(bd.peak_bytes)
    at_peak = bd.at_peak_by_category()
    cats: dict[str, dict[str, Any]] = {}
    total = measured_total(row)
    for c in CATEGORIES:
        m = int(row.get(f"bytes_{c}") or 0)
        if c == "saved":
            m += int(row.get("input_saved_bytes") or 0)
        cats[c] = {"measured": m, "analytic": at_peak[c], "ratio": _ratio(m, at_peak[c])}
    # what is left at the peak once the learner-held categories are taken out, on both sides
    m_rest = total - sum(cats[c]["measured"] for c in PERSISTENT_CATEGORIES)
    a_rest = a_peak - sum(cats[c]["analytic"] for c in PERSISTENT_CATEGORIES)
    cats["rest"] = {"measured": m_rest, "analytic": a_rest, "ratio": _ratio(m_rest, a_rest)}
    ratio = total / a_peak if a_peak else math.inf
    return PointCheck(dict(row), total, a_peak, ratio, cats, abs(ratio - 1.0) > tolerance)


def t_group(row: Mapping[str, Any]) -> str:
    """The points that differ only in T: every key column but the steps (non-default optimiser,
    cadence and aux included, so an SGD run at T = 25 never joins Adam runs at other T). The one
    definition behind the T-invariance and BPTT-linearity checks, here and in the dashboard."""
    return f"{row['net']} B={row['batch']} C={row['classes']} {row['dtype']} {row['device']}{point_variant(row)}"


def _peaks_by_group(rows: Iterable[Mapping[str, Any]],
                    rules: tuple[str, ...]) -> dict[tuple[str, str], tuple[Mapping[str, Any], dict[int, int]]]:
    """{(rule, T-group): (a row of it, {T: measured total})} over the rows of ``rules``."""
    by: dict[tuple[str, str], tuple[Mapping[str, Any], dict[int, int]]] = {}
    for r in rows:
        if r["rule"] in rules:
            by.setdefault((r["rule"], t_group(r)), (r, {}))[1][int(r["steps"])] = measured_total(r)
    return by


def t_invariance(rows: Iterable[Mapping[str, Any]], t_lo: int = 25, t_hi: int = 400,
                 rules: tuple[str, ...] = ("tp", "tess")) -> list[dict[str, Any]]:
    """peak(T = t_hi) / peak(T = t_lo) for each otherwise-equal TP / TESS point pair."""
    out = []
    for r, peaks in _peaks_by_group(rows, rules).values():
        if t_lo in peaks and t_hi in peaks:
            out.append({"rule": r["rule"], "net": r["net"], "batch": r["batch"], "classes": r["classes"],
                        "dtype": r["dtype"], "device": r["device"], f"peak_T{t_lo}": peaks[t_lo], f"peak_T{t_hi}": peaks[t_hi],
                        "ratio": peaks[t_hi] / peaks[t_lo]})
    return out


def linear_fit(ts: list[float], ys: list[float]) -> tuple[float, float, float | None]:
    """Least squares y = a + b t → (a, b, R²); R² is None when y does not vary."""
    n = len(ts)
    mt, my = sum(ts) / n, sum(ys) / n
    stt = sum((t - mt) ** 2 for t in ts)
    b = sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / stt
    a = my - b * mt
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (a + b * t)) ** 2 for t, y in zip(ts, ys))
    return a, b, (1.0 - ss_res / ss_tot) if ss_tot > 0 else None


def bptt_linearity(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fit peak = a + b·T for each BPTT group with ≥ 3 distinct T."""
    out = []
    for r, peaks in _peaks_by_group(rows, ("bptt",)).values():
        if len(peaks) >= 3:
            ts = sorted(peaks)
            a, b, r2 = linear_fit([float(t) for t in ts], [float(peaks[t]) for t in ts])
            out.append({"net": r["net"], "batch": r["batch"], "classes": r["classes"], "dtype": r["dtype"],
                        "device": r["device"],
                        "steps": ts, "intercept_bytes": a, "bytes_per_step": b, "r2": r2})
    return out


def validate_rows(rows: list[Mapping[str, Any]], tolerance: float = 0.05, estimate: Estimator | None = None,
                  bad_rows: list[tuple[str, int, str]] | None = None) -> Validation:
    """Check every ``ok`` row against the analytic model; scaling checks on the same rows."""
    if estimate is None:
        from tpprof.analytic import estimate as estimate_fn

        estimate = estimate_fn
    v = Validation(tolerance=tolerance, bad_rows=list(bad_rows or []))
    merged = merge(rows)
    ok = [r for r in merged if r["status"] == "ok"]
    for r in merged:
        if r["status"] != "ok":
            why = f"status {r['status']}" + (f" on {r['device']}: {r['error']}" if r["status"] == "does-not-fit" else "")
            v.skipped.append((f"{r['rule']} {r['net']} B={r['batch']} T={r['steps']}", why))
    for r in ok:
        try:
            v.points.append(check_point(r, estimate, tolerance))
        except UserError as e:
            v.skipped.append((f"{r['rule']} {r['net']} B={r['batch']} T={r['steps']}", str(e)))
    v.t_invariance = t_invariance(ok)
    v.bptt_linearity = bptt_linearity(ok)
    from tpprof.store import learner_hash

    from tpprof.store import kernel_hash

    torch_code = learner_hash()  # target rows name their C kernel's code instead
    v.stale = sum(1 for r in ok if r.get("learner_hash") and r["learner_hash"] != (
        kernel_hash() if r.get("counter") == TARGET_COUNTER else torch_code))
    return v


def _category_lines(cats: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The --categories rows of one point: learner-held categories, the rest, and its split."""
    from tpprof.units import format_bytes

    out = []
    for c in (*PERSISTENT_CATEGORIES, "rest"):
        e = cats.get(c)
        if e and (e["measured"] or e["analytic"]):
            r = "-" if e["ratio"] is None else f"{e['ratio']:.4f}"
            out.append(f"    {c:<16} measured {format_bytes(e['measured']):>11}  "
                       f"analytic {format_bytes(e['analytic']):>11}  {r:>7}")
    split = [c for c in cats if c not in (*PERSISTENT_CATEGORIES, "rest") and (cats[c]["measured"] or cats[c]["analytic"])]
    if split and cats.get("rest"):
        def side(k: str) -> str:
            parts = [f"{c} {format_bytes(cats[c][k])}" for c in split]
            untagged = cats["rest"][k] - sum(cats[c][k] for c in split)
            return ", ".join(parts + ([f"untagged {format_bytes(untagged)}"] if untagged else []))
        out.append(f"      rest splits as: measured {side('measured')}; analytic {side('analytic')}")
    return out


def render(v: Validation, categories: bool = False) -> str:
    """A plain-text report: per-point table (and per-category ratios), scaling checks, summary."""
    import textwrap

    from tpprof.units import format_bytes

    target = [p for p in v.points if p.row.get("counter") == TARGET_COUNTER]
    lines: list[str] = []
    if len(target) < len(v.points):
        note = ("ratio = measured / analytic peak. rest m/a = the same ratio for the bytes outside the learner-held "
                "categories (" + ", ".join(PERSISTENT_CATEGORIES) + "): loss buffers, saved tensors and "
                "implementation temporaries together, which the harness and the model split differently.")
        if categories:
            note += (" Per category: bytes live at the peak; a learner-held category measured as 0 is held inside "
                     "another (e.g. bptt-compact keeps its neuron state in saved tensors), so a category's ratio "
                     "need not be 1 where the total's is; the rest is compared as a whole, its split beneath it.")
        lines = textwrap.wrap(note, 100) + [""]
        lines.append(f"{'point':<52} {'measured':>11} {'analytic':>11} {'ratio':>7}  rest m/a")
    for p in v.points:
        if p in target:
            continue
        tr = p.categories["rest"]["ratio"]
        flag = "  << out of tolerance" if p.flagged else ""
        lines.append(f"{p.label():<52} {format_bytes(p.measured):>11} {format_bytes(p.analytic_peak):>11} "
                     f"{p.ratio:>7.4f}  {'-' if tr is None else f'{tr:.3f}':>8}{flag}")
        if categories:
            lines += _category_lines(p.categories)
    if target:
        lines += ["", "on the target: the modelled tensors (the kernel's m_* arrays) vs --accounting algorithm peak, "
                  "then the RAM the model does not count, line by line:"]
        for p in target:
            r = p.row
            extra = "  << differs" if p.flagged else ""
            lines.append(f"{p.label()} @{r.get('target_device') or 'machine RAM'}: modelled tensors {p.measured} B, "
                         f"model {p.analytic_peak} B, difference {p.measured - p.analytic_peak} B{extra}")
            named = " · ".join(f"{name} {p.categories[name]['measured']} B" for _, name in TARGET_LINES)
            lines.append(f"    {named} · static+stack {r['peak_bytes']} B")
    if v.t_invariance:
        lines += ["", "T-invariance (peak T=400 / T=25):"]
        lines += [f"  {t['rule']} {t['net']} B={t['batch']} C={t['classes']}: {t['ratio']:.4f}" for t in v.t_invariance]
    if v.bptt_linearity:
        lines.append("BPTT peak linear in T (least squares):")
        for b in v.bptt_linearity:
            r2 = "n/a" if b["r2"] is None else f"{b['r2']:.5f}"
            lines.append(f"  {b['net']} B={b['batch']} C={b['classes']} T={b['steps']}: "
                         f"{format_bytes(b['bytes_per_step'])}/step, R²={r2}")
    lines += [f"skipped {label}: {why}" for label, why in v.skipped]
    lines += [f"bad row {f}:{n}: {m}" for f, n, m in v.bad_rows]
    if v.stale:
        lines.append(f"note: {v.stale} row(s) were measured with learner code other than the installed one "
                     "(learner_hash differs); remeasure them to compare like with like")
    s = v.summary()
    lines.append("")

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f} %"

    lines.append(f"summary: {s['n_points']} points, median |error| {pct(s['median_abs_error'])}, "
                 f"max |error| {pct(s['max_abs_error'])}, {s['out_of_tolerance']} beyond ±{pct(v.tolerance)}"
                 + (f"; target: {s['target_points']} points, max |difference| {s['target_max_abs_difference_bytes']} B "
                    "in the modelled tensors" if s["target_points"] else ""))
    return "\n".join(lines)
