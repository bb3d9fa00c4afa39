"""Time per step from the compute model, calibrated on measured step times (torch-free).

    t_step = t_0 + MACs_step / R

``MACs_step`` is the analytic model's multiply-accumulates per time step
(:attr:`tpprof.analytic.terms.Breakdown.macs_per_step`: forward, backward, recompute and update
terms of the rule); ``R`` (MAC/s) is the throughput of one host running the torch learners and
``t_0`` (s) a per-step overhead (Python, operator dispatch, elementwise ops and allocation that do
not scale with MACs: a small net at small B runs at well under 1 GMAC/s, a large one at tens).
Both are fitted, per (device, hardware) of the measurement rows, by least squares on the
*relative* error: minimise Σ (t̂_i / t_i − 1)², linear in (t_0, 1/R). The source is the shipped
measurement files (``measurements/*.csv``, column ``ms_per_step`` = median mini-batch seconds / T),
and the model carries its own in-sample error (median and max |t̂/t − 1|) so every figure printed
from it can say how far off it is.

What is not modelled: memory-bandwidth-bound elementwise work beyond what ``t_0`` absorbs, the
different efficiency of convolution and dense kernels, cache effects of large B, and timing noise
of the host (the shipped CPU files come from 2 cores shared with other jobs).

:func:`pareto_table` sets every learner (bptt-ckpt at several segment lengths, tbptt at several
windows) on one config in the memory × time-per-step plane and marks the Pareto front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

SOURCE = "fit of measured ms_per_step to t0 + MACs/R (relative least squares)"


@dataclass(frozen=True)
class TimeModel:
    """t_step = overhead_s + macs / macs_per_s, fitted on ``n_points`` measured points of one host."""

    device: str
    hardware: str
    overhead_s: float
    macs_per_s: float
    n_points: int
    median_error: float  # median |t̂/t − 1| over the fitted points
    max_error: float  # max |t̂/t − 1|
    source: str  # the files the fit came from

    def step_seconds(self, macs_per_step: Any) -> Any:
        """t_0 + MACs/R for a number or an array of MACs per step."""
        return self.overhead_s + np.asarray(macs_per_step, dtype=float) / self.macs_per_s

    def describe(self) -> str:
        """One line: the formula with its constants, its source and its measured error."""
        return (f"time/step = {self.overhead_s * 1e3:.3f} ms + MACs / {self.macs_per_s / 1e9:.1f} GMAC/s "
                f"(model: {SOURCE}, {self.n_points} points on {self.device} '{self.hardware}' from "
                f"{self.source}; error vs measured median {self.median_error:.0%}, max {self.max_error:.0%})")


def fit_time_model(macs: Sequence[float], seconds: Sequence[float], *, device: str = "cpu",
                   hardware: str = "", source: str = "") -> TimeModel:
    """Fit t_0 and R to measured (MACs/step, s/step) pairs: minimise Σ((t_0 + m_i/R)/t_i − 1)².

    With one point, or when the fitted overhead would be negative, the fit falls back to
    t_0 = 0 (pure throughput R = the relative-least-squares MAC rate)."""
    m = np.asarray(macs, dtype=float)
    t = np.asarray(seconds, dtype=float)
    ok = (t > 0) & np.isfinite(t) & (m >= 0)
    m, t = m[ok], t[ok]
    if len(t) == 0:
        raise ValueError("no measured step time to fit")
    t0, inv_r = 0.0, 0.0
    if len(t) >= 2:
        a = np.c_[1.0 / t, m / t]  # (t_0·1 + m/R)/t = 1 in the least-squares sense
        t0, inv_r = np.linalg.lstsq(a, np.ones(len(t)), rcond=None)[0]
    if len(t) < 2 or t0 < 0 or inv_r <= 0:
        t0 = 0.0
        inv_r = float(np.sum(m / t) / np.sum((m / t) ** 2)) if np.any(m > 0) else 0.0
    if inv_r <= 0:
        raise ValueError("the measured points carry no MACs to fit a throughput to")
    err = np.abs((t0 + m * inv_r) / t - 1.0)
    return TimeModel(device, hardware, float(t0), float(1.0 / inv_r), int(len(t)), float(np.median(err)),
                     float(err.max()), source)


def _row_macs(row: dict[str, Any]) -> int:
    from tpprof.analytic.model import estimate
    from tpprof.store import config_of

    return int(estimate(config_of(row)).macs_per_step)


def calibrate(rows: Iterable[dict[str, Any]], source: str = "") -> dict[tuple[str, str], TimeModel]:
    """One :class:`TimeModel` per (device, hardware) of the ``ok`` rows that carry ``ms_per_step``
    (rows of :func:`tpprof.store.load`); MACs/step from each row's Config."""
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for r in rows:
        ms = r.get("ms_per_step")
        if r.get("status") != "ok" or ms is None or not (isinstance(ms, (int, float)) and math.isfinite(ms) and ms > 0):
            continue
        m, t = groups.setdefault((str(r["device"]), str(r.get("hardware") or "")), ([], []))
        m.append(_row_macs(r))
        t.append(float(ms) / 1e3)
    return {k: fit_time_model(m, t, device=k[0], hardware=k[1], source=source) for k, (m, t) in groups.items()}


@lru_cache(maxsize=8)
def _shipped(folder: str, stamp: tuple[tuple[str, float], ...]) -> dict[tuple[str, str], TimeModel]:  # noqa: ARG001
    from tpprof.store import load

    files = sorted(Path(folder).glob("*.csv"))
    rows = [r for f in files for r in load(f).rows]
    return calibrate(rows, source=", ".join(f"measurements/{f.name}" for f in files))


def shipped_time_model(device: str = "cpu") -> TimeModel | None:
    """The time model of the shipped measurements (``$TPPROF_MEASUREMENTS_DIR`` when set) for a
    torch device kind ("cpu", "cuda"): the host with the most points; None without any."""
    from tpprof.resources import measurements_dir

    folder = measurements_dir()
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    stamp = tuple((f.name, f.stat().st_mtime) for f in files)
    kind = device.split(":")[0]
    models = [tm for (dev, _), tm in _shipped(str(folder), stamp).items() if dev.split(":")[0] == kind]
    return max(models, key=lambda tm: tm.n_points) if models else None


# ---- the memory × time Pareto view ---------------------------------------------------------

#: Segment lengths and windows tried beside each rule's default, as fractions of T (1 = T itself).
TRADE_FRACTIONS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0)


def pareto_front(peak: Sequence[float], time: Sequence[float]) -> np.ndarray:
    """Boolean mask of the non-dominated points: no other point has peak ≤ and time ≤ with one
    of them strictly smaller (equal points are all kept)."""
    p = np.asarray(peak, dtype=float)
    t = np.asarray(time, dtype=float)
    order = np.lexsort((t, p))  # by peak, then time
    front = np.zeros(len(p), dtype=bool)
    best_t = math.inf
    best_p = math.nan
    for i in order:
        # strictly faster than every smaller-peak point, or a tie with the last front point
        if t[i] < best_t or (t[i] == best_t and p[i] == best_p):
            front[i] = True
            if t[i] < best_t:
                best_t, best_p = t[i], p[i]
    return front


def _trade_values(steps: int) -> list[int]:
    """Distinct segment lengths / windows 1 ≤ k ≤ T from :data:`TRADE_FRACTIONS` (and 1)."""
    return sorted({1} | {max(1, min(steps, round(f * steps))) for f in TRADE_FRACTIONS})


def pareto_variants(cfg: Any) -> list[tuple[str, Any]]:
    """(label, Config) for every learner on ``cfg``'s net and workload: each trainable rule at its
    defaults, bptt-ckpt (plain and compact) at several segment lengths, tbptt at several windows."""
    from tpprof.config import TRAINABLE_RULES, RuleSpec

    T = int(cfg.workload.steps)
    base = cfg.rule

    def with_rule(name: str, **kw: Any) -> Any:
        keep = {k: getattr(base, k) for k in ("optimizer", "cadence", "aux", "lr")}
        return replace(cfg, rule=RuleSpec(name=name, **keep, **kw))

    out: list[tuple[str, Any]] = []
    for name in TRAINABLE_RULES:
        if name == "bptt-ckpt":
            for compact in (False, True):
                for k in _trade_values(T):
                    out.append((f"bptt-ckpt{' compact' if compact else ''} k={k}",
                                with_rule(name, segment=k, compact=compact)))
        elif name == "tbptt":
            for k in _trade_values(T):
                out.append((f"tbptt K={k}", with_rule(name, window=k)))
        else:
            out.append((name, with_rule(name)))
    out.append(("tess flavour=authors", with_rule("tess", flavour="authors")))
    out.append(("tp target_rows=classes", with_rule("tp", target_rows="classes")))
    return out


def pareto_table(cfg: Any, model: TimeModel | None = None, accounting: str = "full") -> Any:
    """Every learner on one config as a point (peak, modelled time/step), with ``pareto`` marking
    the non-dominated ones. Columns: label, rule, peak_bytes, macs_per_step, time_s_per_step,
    pareto. ``model`` defaults to :func:`shipped_time_model` for the config's device kind
    (``cpu`` without one); without any calibration the time is MACs alone at 1 MAC/s (a ranking,
    not seconds) and the frame's ``attrs['time_model']`` says so."""
    import pandas as pd

    from tpprof.analytic.model import estimate

    model = model if model is not None else shipped_time_model("cpu")
    recs = []
    for label, c in pareto_variants(cfg):
        bd = estimate(c, accounting)
        macs = int(bd.macs_per_step)
        t = float(model.step_seconds(macs)) if model else float(macs)
        recs.append({"label": label, "rule": c.rule.name, "peak_bytes": int(bd.peak_bytes), "macs_per_step": macs,
                     "time_s_per_step": t})
    df = pd.DataFrame.from_records(recs)
    df["pareto"] = pareto_front(df["peak_bytes"], df["time_s_per_step"])
    df.attrs["time_model"] = model.describe() if model else "no calibration: time column = MACs/step"
    return df
