"""Named memory and compute terms, and the :class:`Breakdown` that holds one estimate.

A memory term counts one buffer (or one family of equal buffers): its element ``count``, its
``bytes`` (count × element size), whether it is ``persistent`` (held from one time step to the
next, or for the whole mini-batch) or transient (alive only during some ``phases`` of a step),
and the ``source`` that justifies it (a paper equation, or ``"implementation: why"``).

Peak memory of one step::

    peak_bytes = Σ persistent bytes + max over phases p of Σ_{transient terms live in p} bytes

``total_bytes`` is the plain sum of every term (what a naive "add everything" estimate gives).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

import numpy as np

from tpprof.config import CATEGORIES  # the one vocabulary, re-exported

#: A size: an ``int`` for one configuration, or an int64 array over the points of a grid
#: (B, C, T and the element size broadcast; the net's structure is fixed within one evaluation).
Size = Union[int, np.ndarray]


def as_size(x: Any) -> Size:
    """An exact integer size: Python ``int`` for scalars, int64 ``ndarray`` otherwise."""
    if isinstance(x, np.ndarray) and x.ndim > 0:
        return x.astype(np.int64, copy=False)
    return int(x)


def vmax(values: Iterable[Size]) -> Size:
    """Element-wise maximum of sizes (the built-in ``max`` for scalars)."""
    vals = list(values)
    if not any(isinstance(v, np.ndarray) for v in vals):
        return max(vals)
    return np.maximum.reduce(np.broadcast_arrays(*[np.asarray(v, dtype=np.int64) for v in vals]))


def is_zero(x: Size) -> bool:
    """True where a size is zero at every point."""
    return not np.any(x) if isinstance(x, np.ndarray) else not x


def _negative(x: Size) -> bool:
    """True where a size is negative at some point (plain comparison for scalars: breakdowns of
    one config are built thousands of times a second)."""
    return bool(np.any(x < 0)) if isinstance(x, np.ndarray) else x < 0


#: Optimiser state per trainable element: SGD keeps none, momentum one buffer, Adam two
#: (first and second moment; Kingma & Ba 2015).
OPTIMIZER_FACTOR: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass(frozen=True)
class MemoryTerm:
    """One buffer family. ``name`` is unique within a breakdown (``layer2/v (input path)``)."""

    name: str
    category: str
    count: Size  # elements
    bytes: Size  # count × bytes per element
    persistent: bool
    source: str
    layer: int | None = None  # 1-based hidden layer, 0 = input, None = readout / global
    phases: tuple[str, ...] = ()  # transient terms: the phases of a step in which they are live

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; expected one of {CATEGORIES}")
        if _negative(self.count) or _negative(self.bytes):
            raise ValueError(f"term {self.name!r} has a negative size")
        if not self.persistent and not self.phases:
            raise ValueError(f"transient term {self.name!r} needs the phases in which it is live")

    @property
    def key(self) -> str:
        """The name without its ``layerN/`` prefix (to aggregate a family over layers)."""
        return self.name.split("/", 1)[1] if self.name.startswith("layer") and "/" in self.name else self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "category": self.category, "count": int(self.count),
            "bytes": int(self.bytes), "persistent": self.persistent, "source": self.source,
            "layer": self.layer, "phases": list(self.phases),
        }


@dataclass(frozen=True)
class ComputeTerm:
    """Work per time step for one mini-batch: multiply-accumulates and elementwise operations."""

    name: str
    macs: Size
    elementwise: Size
    source: str
    layer: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "macs": int(self.macs), "elementwise": int(self.elementwise),
                "source": self.source, "layer": self.layer}


@dataclass(frozen=True)
class Breakdown:
    """The result of :func:`tpprof.analytic.estimate`: terms first, tables later."""

    rule: str
    accounting: str
    terms: tuple[MemoryTerm, ...]
    compute: tuple[ComputeTerm, ...]
    not_modelled: tuple[str, ...]
    steps: int = 1
    config: Any = field(default=None, compare=False, repr=False)  # tpprof.config.Config

    def __post_init__(self) -> None:
        dup = {n for n, k in Counter(t.name for t in self.terms).items() if k > 1}
        if dup:
            raise ValueError(f"duplicate term names {sorted(dup)}")

    # ---- memory -----------------------------------------------------------------------
    @property
    def total_bytes(self) -> int:
        """Σ bytes of every term."""
        return sum(t.bytes for t in self.terms)

    @property
    def persistent_bytes(self) -> int:
        return sum(t.bytes for t in self.terms if t.persistent)

    def phase_bytes(self) -> dict[str, int]:
        """Transient bytes live in each phase of a step."""
        out: dict[str, int] = {}
        for t in self.terms:
            if not t.persistent:
                for p in t.phases:
                    out[p] = out.get(p, 0) + t.bytes
        return out

    @property
    def peak_phase(self) -> Any:
        """The phase whose live transients are largest (None when there are none; on a grid an
        array of phase names, the first largest as for one point)."""
        pb = self.phase_bytes()
        if not pb:
            return None
        names = list(pb)
        idx = np.argmax(np.stack(np.broadcast_arrays(*[np.asarray(v) for v in pb.values()])), axis=0)
        return names[int(idx)] if np.ndim(idx) == 0 else np.asarray(names, dtype=object)[idx]

    @property
    def peak_bytes(self) -> Size:
        """Persistent bytes + the largest set of transients live at once in a step."""
        pb = self.phase_bytes()
        return self.persistent_bytes + (vmax(pb.values()) if pb else 0)

    def by_category(self) -> dict[str, int]:
        """Total bytes per category, every category present (0 where none)."""
        out = {c: 0 for c in CATEGORIES}
        for t in self.terms:
            out[t.category] = out[t.category] + t.bytes
        return out

    def at_peak_by_category(self) -> dict[str, int]:
        """Bytes live at the step's peak, per category: every persistent term plus the
        transients of the peak phase (so the categories add up to ``peak_bytes``)."""
        phase = self.peak_phase
        out: dict[str, Size] = {c: 0 for c in CATEGORIES}
        for t in self.terms:
            if t.persistent:
                out[t.category] = out[t.category] + t.bytes
            elif isinstance(phase, np.ndarray):
                out[t.category] = out[t.category] + t.bytes * np.isin(phase, t.phases)
            elif phase is not None and phase in t.phases:
                out[t.category] = out[t.category] + t.bytes
        return out

    # ---- compute ----------------------------------------------------------------------
    @property
    def macs_per_step(self) -> int:
        return sum(c.macs for c in self.compute)

    @property
    def elementwise_per_step(self) -> int:
        return sum(c.elementwise for c in self.compute)

    # ---- budget -----------------------------------------------------------------------
    def fit(self, budget_bytes: int) -> dict[str, Any]:
        """Whether the peak fits a budget, and the headroom (bytes and fraction of the budget)."""
        head = int(budget_bytes) - self.peak_bytes
        return {"budget_bytes": int(budget_bytes), "fits": head >= 0, "headroom_bytes": head,
                "headroom_fraction": head / budget_bytes if budget_bytes else float("-inf")}

    def to_dict(self) -> dict[str, Any]:
        """The ``tpprof estimate --json`` document."""
        d: dict[str, Any] = {
            "rule": self.rule,
            "accounting": self.accounting,
            "total_bytes": self.total_bytes,
            "peak_bytes": self.peak_bytes,
            "persistent_bytes": self.persistent_bytes,
            "peak_phase": self.peak_phase,
            "by_category": self.by_category(),
            "terms": [t.to_dict() for t in self.terms],
            "macs_per_step": self.macs_per_step,
            "elementwise_per_step": self.elementwise_per_step,
            "steps": self.steps,
            "macs_per_batch": self.macs_per_step * self.steps,
            "compute": [c.to_dict() for c in self.compute],
            "not_modelled": list(self.not_modelled),
        }
        if self.config is not None:
            d["config"] = self.config.to_dict()
        return d


class TermList:
    """Helper that builds terms at one element size, rejecting duplicate names."""

    def __init__(self, dtype_bytes: int) -> None:
        self.dtype_bytes = dtype_bytes
        self.terms: list[MemoryTerm] = []
        self.compute: list[ComputeTerm] = []
        self._names: set[str] = set()

    def mem(self, name: str, category: str, count: int, source: str, *, layer: int | None = None,
            phases: Iterable[str] | None = None, elem_bytes: int | None = None) -> None:
        """Add a term; ``phases=None`` means persistent. Zero-sized terms are dropped."""
        count = as_size(count)
        eb = self.dtype_bytes if elem_bytes is None else elem_bytes
        if is_zero(count):
            return
        if layer is not None and layer >= 1:
            name = f"layer{layer}/{name}"
        if name in self._names:
            raise ValueError(f"duplicate term {name!r}")
        self._names.add(name)
        ph = tuple(phases) if phases is not None else ()
        self.terms.append(MemoryTerm(name, category, count, as_size(count * eb), not ph, source, layer, ph))

    def ops(self, name: str, macs: int, elementwise: int, source: str, *, layer: int | None = None) -> None:
        if layer is not None and layer >= 1:
            name = f"layer{layer}/{name}"
        self.compute.append(ComputeTerm(name, as_size(macs), as_size(elementwise), source, layer))
