"""The term model over a :class:`tpprof.config.Grid`, evaluated on arrays.

A grid is split into groups that share the net's structure and the rule (every axis but
:data:`tpprof.config.VECTOR_AXES`); within a group B, C, T and the element size are int64
arrays over the group's points, and the rule's terms — the same functions :func:`estimate`
calls for one Config — are evaluated once on them. Nothing here loops over points.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from tpprof.config import CATEGORIES, DTYPE_BYTES, VECTOR_AXES, Config, Grid, NetSpec, RuleSpec


@dataclass(frozen=True)
class ArrayWorkload:
    """A workload whose fields are int64 arrays of one shape (one entry per grid point)."""

    batch: np.ndarray
    classes: np.ndarray
    steps: np.ndarray
    dtype_bytes: np.ndarray


@dataclass(frozen=True)
class GroupConfig:
    """What the term functions read of a Config, with an :class:`ArrayWorkload`."""

    net: NetSpec
    workload: ArrayWorkload
    rule: RuleSpec
    device: Any = None


def _column(x: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=np.int64), (n,))


def _group_frame(cfg: Config, vec: dict[str, np.ndarray], accounting: str, implementation: bool,
                 at_peak: bool) -> dict[str, Any]:
    """Columns for the points of one group (``vec``: axis → int64 array of their values)."""
    from tpprof.analytic import breakdown

    n = len(vec["batch"])
    dbytes = np.vectorize(DTYPE_BYTES.__getitem__, otypes=[np.int64])(vec["dtype"]) if n else vec["batch"]
    wl = ArrayWorkload(vec["batch"], vec["classes"], vec["steps"], dbytes)
    bd = breakdown(GroupConfig(cfg.net, wl, cfg.rule), accounting, implementation=implementation)
    nets = {c: cfg.net.with_readout(int(c)).to_string() for c in np.unique(vec["classes"])}
    cols: dict[str, Any] = {
        "rule": np.full(n, bd.rule, dtype=object),
        "net": np.vectorize(nets.__getitem__, otypes=[object])(vec["classes"]) if n else np.empty(0, object),
        "batch": vec["batch"], "classes": vec["classes"], "steps": vec["steps"], "dtype": vec["dtype"],
        "optimizer": np.full(n, cfg.rule.optimizer, dtype=object),
        "cadence": np.full(n, cfg.rule.cadence, dtype=object),
        "aux": np.full(n, cfg.rule.aux, dtype=object),
        "accounting": np.full(n, bd.accounting, dtype=object),
        "total_bytes": _column(bd.total_bytes, n), "peak_bytes": _column(bd.peak_bytes, n),
    }
    for cat, b in bd.by_category().items():
        cols[f"{cat}_bytes"] = _column(b, n)
    cols["macs_per_step"] = _column(bd.macs_per_step, n)
    if at_peak:
        for cat, b in bd.at_peak_by_category().items():
            cols[f"at_peak_{cat}_bytes"] = _column(b, n)
    return cols


def estimate_grid(grid: Grid, accounting: str = "full", *, implementation: bool = True,
                  at_peak: bool = False, budget_bytes: int | None = None) -> Any:
    """One row per grid point, in the grid's product order (first axis slowest).

    Columns: rule, net, batch, classes, steps, dtype, optimizer, cadence, aux, accounting,
    total_bytes, peak_bytes, ``<category>_bytes`` for each of :data:`CATEGORIES` (every term),
    macs_per_step; with ``at_peak`` also ``at_peak_<category>_bytes`` (live at the peak, adding
    up to peak_bytes); with ``budget_bytes`` also budget_bytes, fits, headroom_bytes.
    Each row equals :func:`tpprof.analytic.estimate` of :meth:`Grid.configs`' config (a test checks).
    """
    import pandas as pd

    from tpprof.analytic import check_accounting

    accounting = check_accounting(accounting)
    names = [a for a, _ in grid.axes]
    sizes = [len(v) for _, v in grid.axes]
    vec_axes = [a for a in names if a in VECTOR_AXES]
    struct_axes = [a for a in names if a not in VECTOR_AXES]
    vec_pos = [np.arange(len(grid.values(a))) for a in vec_axes]
    mesh = [m.ravel() for m in np.meshgrid(*vec_pos, indexing="ij")] if vec_axes else []
    nv = len(mesh[0]) if mesh else 1
    frames, order = [], []
    for combo in itertools.product(*(range(len(grid.values(a))) for a in struct_axes)):
        cfg = grid.point({a: grid.values(a)[i] for a, i in zip(struct_axes, combo)})
        vec: dict[str, np.ndarray] = {}
        for a in VECTOR_AXES:
            if a in vec_axes:
                vals = np.asarray(grid.values(a), dtype=object if a == "dtype" else np.int64)
                vec[a] = vals[mesh[vec_axes.index(a)]]
            else:
                one = getattr(cfg.workload, a)
                vec[a] = np.full(nv, one, dtype=object if a == "dtype" else np.int64)
        frames.append(pd.DataFrame(_group_frame(cfg, vec, accounting, implementation, at_peak)))
        pos = {a: np.full(nv, i) for a, i in zip(struct_axes, combo)}
        pos.update({a: mesh[k] for k, a in enumerate(vec_axes)})
        order.append(np.ravel_multi_index([pos[a] for a in names], sizes) if names else np.zeros(1, np.int64))
    df = pd.concat(frames, ignore_index=True)
    idx = np.concatenate(order)
    df = df.iloc[np.argsort(idx, kind="stable")].reset_index(drop=True)
    if budget_bytes is not None:
        head = int(budget_bytes) - df["peak_bytes"].to_numpy()
        df["budget_bytes"] = int(budget_bytes)
        df["fits"] = head >= 0
        df["headroom_bytes"] = head
    return df


__all__ = ["estimate_grid", "ArrayWorkload", "GroupConfig", "CATEGORIES"]
