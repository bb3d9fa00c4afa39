"""The term model over a :class:`tpprof.config.Grid`, evaluated on arrays.

A grid is split into groups that share the net's structure and the rule (every axis but
:data:`tpprof.config.VECTOR_AXES`); within a group B, C, T and the element size are int64
arrays over the group's points, and the rule's terms — the same functions :func:`estimate`
calls for one Config — are evaluated once on them. Nothing here loops over points.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from tpprof.config import CATEGORIES, DTYPE_BYTES, VECTOR_AXES, Config, ConfigError, Grid, NetSpec, RuleSpec


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


#: Text columns (stored as pandas categoricals: a code per row into a short list of values).
TEXT_COLUMNS: tuple[str, ...] = ("rule", "net", "dtype", "optimizer", "cadence", "aux", "accounting", "locality")
#: Boolean columns: ``learns`` (the rule learns something at the point:
#: :func:`tpprof.analytic.learnability.learns`), ``eligible`` (the rule is among the alternatives
#: a best_* column may pick: the device runs it and its locality is among those asked).
#: ``device_runs``: the device (when given) can run the rule as configured (its learning capability).
BOOL_COLUMNS: tuple[str, ...] = ("learns", "device_runs", "eligible")
#: A text column of one group: one value, or (values, codes into them per point).
Text = Any


def _group_columns(cfg: Config, wl: ArrayWorkload, axis_codes: dict[str, np.ndarray], dtypes: tuple[str, ...],
                   accounting: str, implementation: bool, at_peak: bool, runs: bool, eligible: bool
                   ) -> dict[str, Any]:
    """Columns of one group over its vector axes, each an array of the group's shape.

    ``wl`` holds B, C, T and the element size as arrays that vary along their own axis only
    (broadcasting), so a term of B alone costs |B| elements and only sums span every point.
    ``axis_codes``: per text-bearing axis (classes, dtype) the position of each point's value.
    """
    from tpprof.analytic.model import breakdown

    _check_int64(cfg, wl, accounting, implementation)
    bd = breakdown(GroupConfig(cfg.net, wl, cfg.rule), accounting, implementation=implementation)
    shape = np.broadcast_shapes(wl.batch.shape, wl.classes.shape, wl.steps.shape, wl.dtype_bytes.shape)

    def full(x: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.int64), shape)

    classes = np.unique(wl.classes)
    nets = [cfg.net.with_readout(int(c)).to_string() for c in classes]
    cols: dict[str, Any] = {
        "rule": bd.rule, "net": (nets, axis_codes["classes"]),
        "batch": full(wl.batch), "classes": full(wl.classes), "steps": full(wl.steps),
        "dtype": (dtypes, axis_codes["dtype"]),
        "optimizer": cfg.rule.optimizer, "cadence": cfg.rule.cadence, "aux": cfg.rule.aux,
        "accounting": bd.accounting, "total_bytes": full(bd.total_bytes), "peak_bytes": full(bd.peak_bytes),
    }
    for cat, b in bd.by_category().items():
        cols[f"{cat}_bytes"] = full(b)
    cols["macs_per_step"] = full(bd.macs_per_step)
    from tpprof.analytic import learnability

    cols["locality"] = learnability.locality(cfg.rule)
    cols["learns"] = np.broadcast_to(learnability.learns(cfg.rule, wl.batch, wl.classes), shape)
    cols["device_runs"] = np.broadcast_to(np.asarray(runs), shape)
    cols["eligible"] = np.broadcast_to(np.asarray(eligible), shape)
    if at_peak:
        for cat, b in bd.at_peak_by_category().items():
            cols[f"at_peak_{cat}_bytes"] = full(b)
    return cols


def _check_int64(cfg: Config, wl: ArrayWorkload, accounting: str, implementation: bool) -> None:
    """Refuse (one line) a group whose sizes could pass 2^63: int64 arrays wrap silently.

    A cheap bound first, B·(T + C + 16)·8·(Σ neurons + Σ weights + inputs + C·n_L)·64, over-counts
    every term (states B·T·n, traces, K×n rows with K <= min(B, C), weights, MACs B·W); only
    above 2^50 is the exact check run: the scalar model (Python ints, overflow raised) at the
    group's largest B, C, T and element size, where every size is largest."""
    from tpprof.analytic.model import INT64_PROBLEM, breakdown

    b, c, t, d = (int(np.max(x)) for x in (wl.batch, wl.classes, wl.steps, wl.dtype_bytes))
    geo = cfg.net.geometry()
    size = cfg.net.input_size + sum(g.n_neurons + g.n_weights + g.n_recurrent for g in geo) + c * geo[-1].n_out
    if b * (t + c + 16) * 8 * size * 64 < 2**50:
        return
    corner = breakdown(GroupConfig(cfg.net, ArrayWorkload(b, c, t, d), cfg.rule), accounting,
                       implementation=implementation)
    if max(corner.total_bytes, corner.macs_per_step, corner.elementwise_per_step) >= 2**63:
        raise ConfigError("net", INT64_PROBLEM, "a smaller net, batch, classes or steps")


class _Columns:
    """The output columns, held in the grid's full shape (one dimension per axis) and filled one
    group at a time through a strided view: group g owns the slice fixing its structural axes."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        self.sizes = sizes
        self.num: dict[str, np.ndarray] = {}
        self.text: dict[str, tuple[dict[str, int], np.ndarray]] = {}

    def put(self, cols: dict[str, Any], where: tuple[Any, ...]) -> None:
        for k, v in cols.items():
            if k in TEXT_COLUMNS:
                cats, codes = self.text.setdefault(k, ({}, np.zeros(self.sizes, dtype=np.int32)))
                if isinstance(v, str):
                    codes[where] = cats.setdefault(v, len(cats))
                else:
                    values, idx = v
                    lut = np.asarray([cats.setdefault(str(u), len(cats)) for u in values], dtype=np.int32)
                    codes[where] = lut[idx]
            else:
                dtype = bool if k in BOOL_COLUMNS else np.int64
                self.num.setdefault(k, np.zeros(self.sizes, dtype=dtype))[where] = v

    def frame(self, order: list[str]) -> Any:
        import pandas as pd

        data: dict[str, Any] = {}
        for k in order:
            if k in self.text:
                cats, codes = self.text[k]
                data[k] = _categorical(codes.reshape(-1), tuple(cats))
            else:
                data[k] = self.num[k].reshape(-1)
        return pd.DataFrame(data, copy=False)


def _categorical(codes: np.ndarray, categories: tuple[str, ...]) -> Any:
    """A pandas categorical of ``codes`` into ``categories``, its dtype built once per list of
    categories: building one checks the categories (~0.1 ms), which a small grid paid per text
    column, a third of its time."""
    import pandas as pd

    return pd.Categorical.from_codes(codes, dtype=_dtype_of(categories))


@functools.lru_cache(maxsize=256)
def _dtype_of(categories: tuple[str, ...]) -> Any:
    import pandas as pd

    return pd.CategoricalDtype(list(categories))


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """Allocate without numpy's transparent-huge-page advice for the duration.

    numpy advises the kernel to back every array of 4 MiB or more with huge pages; where the
    kernel then compacts memory on the first touch (``defrag = madvise``), filling a 10⁶-point
    grid's ~0.5 GB of columns took 1.2–1.4 s instead of 0.45–0.5 s (``bench/bench_sweep.py``).
    The advice is process-wide, so the previous setting is restored on exit; a numpy without
    the (private) switch is left as it is.
    """
    switch = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    previous = switch(False) if switch else None
    try:
        yield
    finally:
        if switch:
            switch(previous)


def estimate_grid(grid: Grid, accounting: str = "full", *, implementation: bool = True,
                  at_peak: bool = False, budget_bytes: int | None = None, device: Any = None,
                  locality: Any = None) -> Any:
    """One row per grid point, in the grid's product order (first axis slowest).

    Columns: rule, net, batch, classes, steps, dtype, optimizer, cadence, aux, accounting
    (text as pandas categoricals), total_bytes, peak_bytes, ``<category>_bytes`` for each of
    :data:`CATEGORIES` (every term), macs_per_step; with ``at_peak`` also
    ``at_peak_<category>_bytes`` (live at the peak, adding up to peak_bytes); with
    ``budget_bytes`` also budget_bytes, fits, headroom_bytes. Each row equals
    :func:`tpprof.analytic.estimate` of the same point of :meth:`Grid.configs` (a test checks).

    Learnability (:mod:`tpprof.analytic.learnability`): ``locality`` (the rule's class as
    configured), ``learns`` (False: it fits or not, it learns nothing there, e.g. TP at B = 1),
    ``eligible`` (the rule is one the best_* columns may pick: ``device`` — or the grid's
    ``base.device`` — can run it, and its class is in ``locality`` when given). With TP and another
    rule on the rule axis: ``best_rule``, ``best_other``, ``best_other_peak_bytes``, ``tp_margin``
    among the eligible rules (NaN where none is eligible); ``attrs['alternatives']`` says which.
    """
    from tpprof.analytic.learnability import alternatives_label, check_localities
    from tpprof.analytic.model import check_accounting

    accounting = check_accounting(accounting)
    device = device if device is not None else grid.base.device
    localities = check_localities(locality)
    with _small_pages():
        df = _estimate_grid(grid, accounting, implementation, at_peak, budget_bytes, device, localities)
    df.attrs["alternatives"] = alternatives_label(device, localities)
    return df


def _estimate_grid(grid: Grid, accounting: str, implementation: bool, at_peak: bool,
                   budget_bytes: int | None, device: Any, localities: Any) -> Any:
    from tpprof.analytic.learnability import device_runs, eligible
    names = [a for a, _ in grid.axes]
    vec_axes = [a for a in names if a in VECTOR_AXES]
    struct_axes = [a for a in names if a not in VECTOR_AXES]
    dims = len(vec_axes)

    def along(a: str, values: Any) -> np.ndarray:
        """``values`` of vector axis ``a``, varying along that axis's own dimension."""
        shape = [1] * dims
        shape[vec_axes.index(a)] = -1
        return np.asarray(values, dtype=np.int64).reshape(shape)

    out = _Columns(tuple(len(v) for _, v in grid.axes))
    columns: list[str] = []
    for combo in itertools.product(*(range(len(grid.values(a))) for a in struct_axes)):
        cfg = grid.point({a: grid.values(a)[i] for a, i in zip(struct_axes, combo)})
        arr, codes = {}, {}
        for a in VECTOR_AXES:
            vals = grid.values(a) if a in vec_axes else (getattr(cfg.workload, a),)
            num = [DTYPE_BYTES[d] for d in vals] if a == "dtype" else vals
            arr[a] = along(a, num) if a in vec_axes else np.full([1] * dims, num[0], dtype=np.int64)
            codes[a] = along(a, range(len(vals))) if a in vec_axes else np.zeros([1] * dims, dtype=np.int64)
        if "classes" in vec_axes:  # net strings are listed per distinct C, in sorted order
            codes["classes"] = np.searchsorted(np.unique(arr["classes"]), arr["classes"])
        wl = ArrayWorkload(arr["batch"], arr["classes"], arr["steps"], arr["dtype"])
        dtypes = tuple(grid.values("dtype")) if "dtype" in vec_axes else (cfg.workload.dtype,)
        cols = _group_columns(cfg, wl, codes, dtypes, accounting, implementation, at_peak,
                              device_runs(device, cfg.rule), eligible(cfg.rule, device, localities))
        columns = columns or list(cols)
        pos = dict(zip(struct_axes, combo))
        out.put(cols, tuple(pos[a] if a in pos else slice(None) for a in names))
    df = out.frame(columns)
    if "rule" in names and "tp" in grid.values("rule") and len(grid.values("rule")) > 1:
        _add_tp_comparison(df, out.sizes, names.index("rule"), [str(r) for r in grid.values("rule")])
    if budget_bytes is not None:
        head = int(budget_bytes) - df["peak_bytes"].to_numpy()
        df["budget_bytes"] = int(budget_bytes)
        df["fits"] = head >= 0
        df["headroom_bytes"] = head
        df["verdict"] = _verdicts(df["fits"].to_numpy(), df["learns"].to_numpy(), df["device_runs"].to_numpy())
    return df


#: The budget verdicts of a grid row: memory fit and learning together.
VERDICT_WORDS: tuple[str, ...] = ("does not fit", "fits", "fits, does not learn", "fits, the device cannot run it")


def verdict_word(fits: bool, learns: bool, runs: bool) -> str:
    """One point's :data:`VERDICT_WORDS` entry (the scalar form of :func:`_verdicts`)."""
    return VERDICT_WORDS[0 if not fits else 3 if not runs else 1 if learns else 2]


def _verdicts(fits: np.ndarray, learns: np.ndarray, runs: np.ndarray) -> Any:
    """"fits" only where the rule also learns and the device can run it (:data:`VERDICT_WORDS`)."""
    codes = np.where(fits, np.where(~runs, 3, np.where(learns, 1, 2)), 0).astype(np.int32)
    return _categorical(codes, VERDICT_WORDS)


def _add_tp_comparison(df: Any, sizes: tuple[int, ...], axis: int, rules: list[str]) -> None:
    """Per point (every axis but the rule), among the *eligible* rules of the point (column
    ``eligible``): ``best_rule`` (least peak, first in rule order on a tie), ``best_other``
    (least peak among the rules other than TP), ``best_other_peak_bytes`` and ``tp_margin`` =
    best_other_peak / TP's peak (> 1: TP needs less than the best alternative). NaN where no
    rule (other) is eligible. Added to every row of the point."""
    peak = df["peak_bytes"].to_numpy().reshape(sizes)
    ok = df["eligible"].to_numpy().reshape(sizes)
    masked = np.where(ok, peak.astype(np.float64), np.inf)  # an ineligible rule is never the least
    others = [i for i, r in enumerate(rules) if r != "tp"]
    best = np.where(np.isfinite(masked).any(axis=axis), np.argmin(masked, axis=axis), -1)
    sub = np.take(masked, others, axis=axis)
    found = np.isfinite(sub).any(axis=axis)
    k = np.where(found, np.argmin(sub, axis=axis), -1)
    best_other_peak = np.take_along_axis(np.take(peak, others, axis=axis), np.expand_dims(np.maximum(k, 0), axis),
                                         axis=axis)
    tp_peak = np.take(peak, [rules.index("tp")], axis=axis)

    def spread(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.expand_dims(x, axis) if x.ndim < peak.ndim else x, sizes).reshape(-1)

    df["best_rule"] = _categorical(spread(best), tuple(rules))
    df["best_other"] = _categorical(spread(k), tuple(rules[i] for i in others))
    if found.all():
        df["best_other_peak_bytes"] = spread(best_other_peak)
        df["tp_margin"] = spread(best_other_peak / tp_peak)
    else:  # some point has no eligible alternative: NaN there (the column becomes float)
        none = ~np.expand_dims(found, axis)
        df["best_other_peak_bytes"] = spread(np.where(none, np.nan, best_other_peak))
        df["tp_margin"] = spread(np.where(none, np.nan, best_other_peak / tp_peak))


__all__ = ["estimate_grid", "ArrayWorkload", "GroupConfig", "CATEGORIES"]
