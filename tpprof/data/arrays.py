"""In-memory labelled sequence data and a user's ``.npz`` files.

:class:`ArrayDataset` is the one container every loader returns: ``x`` of shape
``(N, T, *input_shape)`` (spikes or currents; any numeric dtype, converted to float32 per
mini-batch so large spike files can stay as uint8) and integer labels ``y`` of shape ``(N,)``.

A user's ``.npz`` holds ``x`` (N, T, F) — or (N, T, C, H, W) for event frames — and ``y`` (N,)
with labels 0..C−1. Optional ``x_test`` / ``y_test`` give a held-out test set; without them
:func:`load_npz_split` holds out a seeded 20 % of the samples (stratification is not attempted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tpprof.errors import UserError

_NPZ_ACCEPTED = "an .npz with x: [N, T, F] (or [N, T, C, H, W]) numbers and y: [N] integer labels >= 0"


@dataclass
class ArrayDataset:
    """Labelled sequences: ``x`` (N, T, *input_shape), ``y`` (N,) int64 in 0..classes−1."""

    x: np.ndarray
    y: np.ndarray
    classes: int
    name: str = "arrays"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.x.shape[0] != self.y.shape[0]:
            raise UserError(f"{self.name} y", f"has {self.y.shape[0]} labels for {self.x.shape[0]} samples",
                            "one label per sample")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def steps(self) -> int:
        """T, the number of time steps per sample."""
        return int(self.x.shape[1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-step input shape: (F,) or (C, H, W)."""
        return tuple(int(d) for d in self.x.shape[2:])

    def subset(self, index: np.ndarray | slice, name: str | None = None) -> "ArrayDataset":
        """Rows ``index`` (an index array, boolean mask or slice) as a new dataset."""
        return ArrayDataset(self.x[index], self.y[index], self.classes, name or self.name, dict(self.meta))

    def head(self, n: int | None) -> "ArrayDataset":
        """The first ``n`` samples (all when ``n`` is None)."""
        return self if n is None else self.subset(slice(0, int(n)))

    def batches(self, batch: int, shuffle: bool = False, rng: np.random.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(x_b, y_b)`` numpy mini-batches: x_b (b, T, *input_shape) float32, y_b (b,).

        ``drop_last`` drops a final batch shorter than ``batch`` (training: a short batch would
        still receive T optimiser steps and skew the weights).
        """
        n = len(self)
        order = (rng or np.random.default_rng()).permutation(n) if shuffle else np.arange(n)
        stop = n - n % batch if drop_last else n
        for start in range(0, stop, batch):
            idx = np.sort(order[start:start + batch]) if shuffle else order[start:start + batch]
            yield self.x[idx].astype(np.float32, copy=False), self.y[idx]

    def n_batches(self, batch: int, drop_last: bool = False) -> int:
        return len(self) // batch if drop_last else -(-len(self) // batch)


def _validate(x: Any, y: Any, where: str, x_key: str = "x", y_key: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Check shapes/dtypes/values of one (x, y) pair; one-line :class:`UserError` otherwise."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise UserError(f"{where} {x_key}", f"has dtype {x.dtype}", "numbers (spike counts or currents)")
    if x.ndim not in (3, 5):
        raise UserError(f"{where} {x_key}", f"has shape {x.shape}", "[N, T, F] or [N, T, C, H, W]")
    if min(x.shape) < 1:
        raise UserError(f"{where} {x_key}", f"has an empty dimension {x.shape}", "N, T, F >= 1")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise UserError(f"{where} {x_key}", "contains NaN or infinity", "finite numbers")
    if y.ndim != 1:
        raise UserError(f"{where} {y_key}", f"has shape {y.shape}", "[N] integer labels")
    if y.shape[0] != x.shape[0]:
        raise UserError(f"{where} {y_key}", f"has {y.shape[0]} labels but {x_key} has {x.shape[0]} samples",
                        "one label per sample")
    if np.issubdtype(y.dtype, np.floating):
        if not (np.isfinite(y).all() and np.all(y == np.round(y))):
            raise UserError(f"{where} {y_key}", "has non-integer labels", "integer labels 0..C-1")
    elif not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{where} {y_key}", f"has dtype {y.dtype}", "integer labels 0..C-1")
    if y.size and y.min() < 0:
        raise UserError(f"{where} {y_key}", f"has a negative label {int(y.min())}", "integer labels 0..C-1")
    return x, y.astype(np.int64)


def from_arrays(x: Any, y: Any, classes: int | None = None, name: str = "arrays") -> ArrayDataset:
    """Validate ``x`` (N, T, F | C, H, W) and ``y`` (N,) and wrap them; C = max(y) + 1 by default."""
    x, y = _validate(x, y, name)
    c = int(y.max()) + 1 if classes is None else int(classes)
    if y.size and y.max() >= c:
        raise UserError(f"{name} y", f"has label {int(y.max())} but only {c} classes", "labels 0..C-1")
    return ArrayDataset(x, y, c, name)


def load_npz(path: str | Path, x_key: str = "x", y_key: str = "y") -> ArrayDataset:
    """Read ``x_key`` / ``y_key`` from a user's ``.npz`` (see module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise UserError("data", f"file {str(path)!r} does not exist", _NPZ_ACCEPTED)
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            for k in (x_key, y_key):
                if k not in keys:
                    raise UserError("data", f"{p.name} has no array {k!r} (it has {sorted(keys)})", _NPZ_ACCEPTED)
            x, y = z[x_key], z[y_key]
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a file that numpy cannot read is the user's file
        raise UserError("data", f"{p.name} is not a readable .npz ({type(e).__name__})", _NPZ_ACCEPTED) from None
    x, y = _validate(x, y, p.name, x_key, y_key)
    return ArrayDataset(x, y, int(y.max()) + 1, p.stem, {"path": str(p)})


def holdout_split(ds: ArrayDataset, seed: int = 0, test_fraction: float = 0.2) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test): a seeded random ``test_fraction`` of the rows (at least one) held out,
    both kept in their original order and named ``{name}-train`` / ``{name}-test``."""
    order = np.random.default_rng(seed).permutation(len(ds))
    n_test = max(1, int(round(test_fraction * len(ds))))
    test = ds.subset(np.sort(order[:n_test]), f"{ds.name}-test")
    return ds.subset(np.sort(order[n_test:]), f"{ds.name}-train"), test


def load_npz_split(path: str | Path, seed: int = 0, test_fraction: float = 0.2) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test) from a user's ``.npz``: its ``x_test``/``y_test`` if present, else a seeded hold-out."""
    p = Path(path)
    train = load_npz(p)
    with np.load(p, allow_pickle=False) as z:
        has_test = "x_test" in z.files and "y_test" in z.files
    if has_test:
        test = load_npz(p, "x_test", "y_test")
        if test.input_shape != train.input_shape or test.steps != train.steps:
            raise UserError("data", f"{p.name}: x_test is [N, {test.steps}, {test.input_shape}] but x is "
                            f"[N, {train.steps}, {train.input_shape}]", "the same T and features")
        classes = max(train.classes, test.classes)
    else:
        if len(train) < 2:
            raise UserError("data", f"{p.name} has {len(train)} sample(s)", "at least 2 samples, or x_test/y_test")
        train, test = holdout_split(train, seed, test_fraction)
        classes = train.classes
    train.classes = test.classes = classes
    train.meta["split"] = test.meta["split"] = "x_test/y_test" if has_test else f"seeded {test_fraction:.0%} hold-out"
    return train, test
