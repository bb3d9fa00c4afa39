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


#: Text columns (stored as pandas categoricals: a code per row into a short list of values).
TEXT_COLUMNS: tuple[str, ...] = ("rule", "net", "dtype", "optimizer", "cadence", "aux", "accounting")


def _group_columns(cfg: Config, vec: dict[str, np.ndarray], dtypes: tuple[str, ...], accounting: str,
                   implementation: bool, at_peak: bool) -> dict[str, Any]:
    """Columns for the points of one group. ``vec``: batch, classes, steps as int64 arrays and
    ``dtype`` as codes into ``dtypes``. Text columns are a scalar or (values, codes); numbers
    int64 arrays."""
    from tpprof.analytic import breakdown

    n = len(vec["batch"])
    dbytes = np.asarray([DTYPE_BYTES[d] for d in dtypes], dtype=np.int64)[vec["dtype"]]
    wl = ArrayWorkload(vec["batch"], vec["classes"], vec["steps"], dbytes)
    bd = breakdown(GroupConfig(cfg.net, wl, cfg.rule), accounting, implementation=implementation)
    cols: dict[str, Any] = {
        "rule": bd.rule, "net": _net_column(cfg.net, vec["classes"]),
        "batch": vec["batch"], "classes": vec["classes"], "steps": vec["steps"], "dtype": (dtypes, vec["dtype"]),
        "optimizer": cfg.rule.optimizer, "cadence": cfg.rule.cadence, "aux": cfg.rule.aux,
        "accounting": bd.accounting,
        "total_bytes": _column(bd.total_bytes, n), "peak_bytes": _column(bd.peak_bytes, n),
    }
    for cat, b in bd.by_category().items():
        cols[f"{cat}_bytes"] = _column(b, n)
    cols["macs_per_step"] = _column(bd.macs_per_step, n)
    if at_peak:
        for cat, b in bd.at_peak_by_category().items():
            cols[f"at_peak_{cat}_bytes"] = _column(b, n)
    return cols


def _net_column(net: NetSpec, classes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The net string of every point (its readout is C), as (values, codes)."""
    if len(classes) and classes.min() == classes.max():
        return [net.with_readout(int(classes[0])).to_string()], np.zeros(len(classes), dtype=np.int64)
    uc, inv = np.unique(classes, return_inverse=True)
    return [net.with_readout(int(c)).to_string() for c in uc], inv


class _Scatter:
    """The output columns, filled group by group at the rows the grid's order gives them."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.num: dict[str, np.ndarray] = {}
        self.text: dict[str, tuple[dict[str, int], np.ndarray]] = {}

    def put(self, cols: dict[str, Any], rows: np.ndarray) -> None:
        for k, v in cols.items():
            if k in TEXT_COLUMNS:
                cats, codes = self.text.setdefault(k, ({}, np.zeros(self.n, dtype=np.int32)))
                if isinstance(v, str):
                    codes[rows] = cats.setdefault(v, len(cats))
                else:
                    values, idx = v
                    lut = np.asarray([cats.setdefault(str(u), len(cats)) for u in values], dtype=np.int32)
                    codes[rows] = lut[idx]
            else:
                self.num.setdefault(k, np.zeros(self.n, dtype=np.int64))[rows] = v

    def frame(self, order: list[str]) -> Any:
        import pandas as pd

        data: dict[str, Any] = {}
        for k in order:
            if k in self.text:
                cats, codes = self.text[k]
                data[k] = pd.Categorical.from_codes(codes, categories=list(cats))
            else:
                data[k] = self.num[k]
        return pd.DataFrame(data, copy=False)


def estimate_grid(grid: Grid, accounting: str = "full", *, implementation: bool = True,
                  at_peak: bool = False, budget_bytes: int | None = None) -> Any:
    """One row per grid point, in the grid's product order (first axis slowest).

    Columns: rule, net, batch, classes, steps, dtype, optimizer, cadence, aux, accounting
    (text as pandas categoricals), total_bytes, peak_bytes, ``<category>_bytes`` for each of
    :data:`CATEGORIES` (every term), macs_per_step; with ``at_peak`` also
    ``at_peak_<category>_bytes`` (live at the peak, adding up to peak_bytes); with
    ``budget_bytes`` also budget_bytes, fits, headroom_bytes. Each row equals
    :func:`tpprof.analytic.estimate` of the same point of :meth:`Grid.configs` (a test checks).
    """
    from tpprof.analytic import check_accounting

    accounting = check_accounting(accounting)
    names = [a for a, _ in grid.axes]
    sizes = [len(v) for _, v in grid.axes]
    vec_axes = [a for a in names if a in VECTOR_AXES]
    struct_axes = [a for a in names if a not in VECTOR_AXES]
    mesh = [m.ravel() for m in np.meshgrid(*(np.arange(len(grid.values(a))) for a in vec_axes),
                                            indexing="ij")] if vec_axes else []
    nv = len(mesh[0]) if mesh else 1
    out = _Scatter(grid.size)
    columns: list[str] = []
    for combo in itertools.product(*(range(len(grid.values(a))) for a in struct_axes)):
        cfg = grid.point({a: grid.values(a)[i] for a, i in zip(struct_axes, combo)})
        vec: dict[str, np.ndarray] = {}
        for a in ("batch", "classes", "steps"):
            if a in vec_axes:
                vec[a] = np.asarray(grid.values(a), dtype=np.int64)[mesh[vec_axes.index(a)]]
            else:
                vec[a] = np.full(nv, getattr(cfg.workload, a), dtype=np.int64)
        dtypes = grid.values("dtype") if "dtype" in vec_axes else (cfg.workload.dtype,)
        vec["dtype"] = mesh[vec_axes.index("dtype")] if "dtype" in vec_axes else np.zeros(nv, dtype=np.int64)
        cols = _group_columns(cfg, vec, tuple(dtypes), accounting, implementation, at_peak)
        columns = columns or list(cols)
        pos = {a: np.full(nv, i) for a, i in zip(struct_axes, combo)}
        pos.update({a: mesh[k] for k, a in enumerate(vec_axes)})
        rows = np.ravel_multi_index([pos[a] for a in names], sizes) if names else np.zeros(1, np.int64)
        out.put(cols, rows)
    df = out.frame(columns)
    if budget_bytes is not None:
        head = int(budget_bytes) - df["peak_bytes"].to_numpy()
        df["budget_bytes"] = int(budget_bytes)
        df["fits"] = head >= 0
        df["headroom_bytes"] = head
    return df


__all__ = ["estimate_grid", "ArrayWorkload", "GroupConfig", "CATEGORIES"]
