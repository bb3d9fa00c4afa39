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
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

_T = TypeVar("_T")

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


@lru_cache(maxsize=16)
def _fit_files(fit: Callable[..., _T], folder: str, pattern: str,
               stamp: tuple[tuple[str, float], ...]) -> _T:  # noqa: ARG001 - the cache key
    from tpprof.store import load

    files = sorted(Path(folder).glob(pattern))
    rows = [r for f in files for r in load(f).rows]
    return fit(rows, source=", ".join(f"measurements/{f.name}" for f in files))


def fit_shipped(fit: Callable[..., _T], pattern: str = "*.csv") -> _T:
    """``fit(rows, source=...)`` of the shipped measurement files matching ``pattern``
    (``$TPPROF_MEASUREMENTS_DIR`` when set), cached until a file's name or mtime changes."""
    from tpprof.resources import measurements_dir

    folder = measurements_dir()
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    return _fit_files(fit, str(folder), pattern, tuple((f.name, f.stat().st_mtime) for f in files))


def shipped_time_model(device: str = "cpu") -> TimeModel | None:
    """The time model of the shipped measurements (``$TPPROF_MEASUREMENTS_DIR`` when set) for a
    torch device kind ("cpu", "cuda"): the host with the most points; None without any."""
    kind = device.split(":")[0]
    models = [tm for (dev, _), tm in fit_shipped(calibrate).items() if dev.split(":")[0] == kind]
    return max(models, key=lambda tm: tm.n_points) if models else None


# ---- the per-learner model, scored held out --------------------------------------------------
#
#   t_step = c_0 + c_d · MACs_dense + c_c · MACs_conv + c_e · elementwise + c_L · L + c_LB · L·B
#                                                                                 (per learner)
#
# from the analytic model's compute terms of the config (Breakdown.compute: MACs of dense and
# recurrent layers and of the readout, MACs of convolution layers, elementwise operations — the
# optimiser step's included) and the net's shape: L layers cost a fixed dispatch overhead each
# (tens of operator calls per layer and step: c_L) and per-sample work that the MAC and
# elementwise counts do not capture (small-batch products run far below peak: c_LB). The
# coefficients are fitted per learner (group key :func:`learner_key`, and per host) by
# non-negative least squares on the relative error, and a feature no training row of the learner
# exercises (e.g. conv MACs when its only conv point is held out) takes the coefficient fitted on
# every learner's rows of that host. The score is held out: leave one config out, fit on the rest,
# predict it.
#
# The time (:data:`CLOCKS`, the first the host's rows carry): "min", the fastest timed mini-batch
# (``batch_s_min`` / T, wall); else "cpu", the median CPU seconds (``cpu_s_median`` / T); else
# "wall", the median (``ms_per_step``). On a machine shared with other jobs the median moves with
# their load: two runs of 28 points (15 timed batches each) differed per point by 7 % (median over
# points) and up to 59 % in median CPU time, by 6 % and up to 16 % in the fastest batch; three runs
# of the whole grid, one after another, by 7–11 % and up to 37 % in the fastest batch. A config
# measured more than once (several runs of the grid, one file each) counts with its fastest run.

FEATURES: tuple[str, ...] = ("overhead", "dense_macs", "conv_macs", "elementwise", "layers", "layer_samples")
#: The clocks a host's rows may carry, in order of preference (see above), and their names in text.
CLOCKS: tuple[str, ...] = ("min", "cpu", "wall")
CLOCK_NAMES = {"min": "fastest timed mini-batch", "cpu": "median CPU time", "wall": "median wall time"}
HELD_OUT_SOURCE = ("per-learner fit of t = c0 + c_d·MACs_dense + c_c·MACs_conv + c_e·elementwise + c_L·L + c_LB·L·B "
                   "(relative non-negative least squares), scored leave-one-config-out")


def features(cfg: Any) -> np.ndarray:
    """The model's features of one config: [1, dense MACs, conv MACs, elementwise, L, L·B] per step."""
    from tpprof.analytic.model import estimate

    bd = estimate(cfg)
    geo = cfg.net.geometry()

    def conv(layer: int | None) -> bool:
        return layer is not None and 1 <= layer <= len(geo) and geo[layer - 1].kind == "conv"

    dense = sum(int(c.macs) for c in bd.compute if not conv(c.layer))
    cmacs = sum(int(c.macs) for c in bd.compute if conv(c.layer))
    elem = sum(int(c.elementwise) for c in bd.compute)
    depth = len(geo)
    return np.array([1.0, float(dense), float(cmacs), float(elem), float(depth), float(depth * cfg.workload.batch)])


def learner_key(rule: Any) -> str:
    """The learner a :class:`tpprof.config.RuleSpec` runs: the rule, plus ``classes`` for TP's
    class-deduplicated target path and ``authors`` for an authors' flavour."""
    key = str(rule.name)
    if getattr(rule, "target_rows", None) == "classes":
        key += " classes"
    if getattr(rule, "flavour", None) == "authors":
        key += " authors"
    return key


def fit_linear(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Non-negative c minimising Σ (x_i·c / t_i − 1)² (columns of x that are all zero get 0)."""
    from scipy.optimize import nnls

    c = np.zeros(x.shape[1])
    used = np.any(x != 0, axis=0)
    if used.any():
        c[used] = nnls(x[:, used] / t[:, None], np.ones(len(t)))[0]
    return c


def _fit_with_fallback(x: np.ndarray, t: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    c = fit_linear(x, t)
    unused = ~np.any(x != 0, axis=0)
    c[unused] = pooled[unused]
    return c


@dataclass(frozen=True)
class LearnerTimeModel:
    """One learner's t_step = x · coef on one host, with its held-out error."""

    group: str
    device: str
    hardware: str
    coef: tuple[float, ...]
    n_points: int
    n_configs: int
    median_error: float  # held out: leave one config out
    max_error: float
    clock: str  # one of CLOCKS: "min" (fastest mini-batch), "cpu" (median CPU seconds) or "wall" (median)

    def predict(self, x: np.ndarray) -> float:
        return float(np.asarray(x, dtype=float) @ np.asarray(self.coef))

    def error_text(self) -> str:
        return f"held-out error median {self.median_error:.0%}, max {self.max_error:.0%} ({self.n_configs} configs)"


@dataclass(frozen=True)
class TimeModels:
    """Per-learner time models of one host (:data:`HELD_OUT_SOURCE`) and the pooled fit used for a
    learner without rows of its own."""

    device: str
    hardware: str
    clock: str
    learners: dict[str, LearnerTimeModel]
    pooled: tuple[float, ...]
    source: str

    def model_for(self, cfg: Any) -> LearnerTimeModel | None:
        return self.learners.get(learner_key(cfg.rule))

    def predict(self, cfg: Any) -> tuple[float, LearnerTimeModel | None]:
        """(seconds per step, the learner's model or None when the pooled fit stood in)."""
        x = features(cfg)
        m = self.model_for(cfg)
        return (m.predict(x) if m else float(x @ np.asarray(self.pooled))), m

    def held_out(self) -> tuple[float, float]:
        """Median and max held-out error over every learner's configs (all points pooled)."""
        meds = [m.median_error for m in self.learners.values()]
        return (float(np.median(meds)) if meds else math.nan,
                max((m.max_error for m in self.learners.values()), default=math.nan))

    def describe(self) -> str:
        per = "; ".join(f"{k} {m.median_error:.0%}/{m.max_error:.0%}" for k, m in sorted(self.learners.items()))
        return (f"time/step: {HELD_OUT_SOURCE}, {CLOCK_NAMES[self.clock]} on {self.device} '{self.hardware}' from "
                f"{self.source}; held-out error median/max per learner: {per}")


def _row_time(r: dict[str, Any], clock: str) -> float | None:
    """Seconds per step of a row on ``clock`` (:data:`CLOCKS`), None when the row lacks it."""
    column, per = {"min": ("batch_s_min", "steps"), "cpu": ("cpu_s_median", "steps"),
                   "wall": ("ms_per_step", None)}[clock]
    v = r.get(column)
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        return None
    return float(v) / int(r[per]) if per else float(v) / 1e3


def calibrate_learners(rows: Iterable[dict[str, Any]], source: str = "",
                       key: Any = None) -> dict[tuple[str, str], TimeModels]:
    """Per (device, hardware): a :class:`TimeModels` fitted on the ``ok`` rows, grouped by
    ``key(row)`` (default :func:`learner_key`; any function of a row, e.g. one adding the core of
    a target row). The time is the first of :data:`CLOCKS` the host's rows carry; a config
    measured in several rows counts with its fastest."""
    from tpprof.store import config_of

    hosts: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("status") == "ok":
            hosts.setdefault((str(r["device"]), str(r.get("hardware") or "")), []).append(r)
    out = {}
    for host, rs in hosts.items():
        clock = next((c for c in CLOCKS if any(_row_time(r, c) for r in rs)), None)
        if clock is None:
            continue
        fastest: dict[tuple[str, str], tuple[Any, float]] = {}  # (group, config) → (config, fastest time)
        for r in rs:
            t = _row_time(r, clock)
            if t is None:
                continue
            cfg = config_of(r)  # the rule's options live in config_json
            k = (str(key(r)) if key else learner_key(cfg.rule), str(cfg))
            if k not in fastest or t < fastest[k][1]:
                fastest[k] = (cfg, t)
        x = np.array([features(c) for c, _ in fastest.values()])
        t = np.array([tt for _, tt in fastest.values()])
        groups = np.array([g for g, _ in fastest])
        cfgs = [c for _, c in fastest]
        pooled = fit_linear(x, t)
        learners = {}
        for g in sorted(set(groups)):
            idx = np.flatnonzero(groups == g)
            errs = []
            for held in sorted({cfgs[i] for i in idx}):
                tr = np.array([i for i in idx if cfgs[i] != held])
                te = np.array([i for i in idx if cfgs[i] == held])
                if len(tr) == 0:
                    continue
                rest = np.array([i for i in range(len(t)) if cfgs[i] != held])
                c = _fit_with_fallback(x[tr], t[tr], fit_linear(x[rest], t[rest]))
                errs += list(np.abs(x[te] @ c / t[te] - 1.0))
            coef = _fit_with_fallback(x[idx], t[idx], pooled)
            learners[g] = LearnerTimeModel(g, host[0], host[1], tuple(float(v) for v in coef), len(idx),
                                           len({cfgs[i] for i in idx}),
                                           float(np.median(errs)) if errs else math.nan,
                                           float(np.max(errs)) if errs else math.nan, clock)
        out[host] = TimeModels(host[0], host[1], clock, learners, tuple(float(v) for v in pooled), source)
    return out


def shipped_time_models(device: str = "cpu") -> TimeModels | None:
    """The per-learner time models of the shipped measurements for a torch device kind: the host
    with the most points; None without any."""
    kind = device.split(":")[0]
    models = [tm for (dev, _), tm in fit_shipped(calibrate_learners).items() if dev.split(":")[0] == kind]
    # the steadier clock first (CLOCKS: fastest batch, then median CPU time, then median wall time),
    # then the host with the most points
    return max(models, key=lambda tm: (-CLOCKS.index(tm.clock), sum(m.n_points for m in tm.learners.values()))) \
        if models else None


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


def pareto_table(cfg: Any, model: TimeModels | None = None, accounting: str = "full") -> Any:
    """Every learner on one config as a point (peak, modelled time/step), with ``pareto`` marking
    the non-dominated ones. Columns: label, rule, peak_bytes, macs_per_step, time_s_per_step,
    time_error_held_out (the learner's held-out median error; NaN where the pooled fit stood in),
    pareto. ``model`` defaults to :func:`shipped_time_models` (``cpu``); without any calibration the
    time is MACs alone at 1 MAC/s (a ranking, not seconds) and ``attrs['time_model']`` says so."""
    import pandas as pd

    from tpprof.analytic.model import estimate

    model = model if model is not None else shipped_time_models("cpu")
    recs = []
    for label, c in pareto_variants(cfg):
        bd = estimate(c, accounting)
        macs = int(bd.macs_per_step)
        t, m = model.predict(c) if model else (float(macs), None)
        recs.append({"label": label, "rule": c.rule.name, "peak_bytes": int(bd.peak_bytes), "macs_per_step": macs,
                     "time_s_per_step": t, "time_error_held_out": m.median_error if m else math.nan})
    df = pd.DataFrame.from_records(recs)
    df["pareto"] = pareto_front(df["peak_bytes"], df["time_s_per_step"])
    df.attrs["time_model"] = model.describe() if model else "no calibration: time column = MACs/step"
    return df
