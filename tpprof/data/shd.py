"""Spiking Heidelberg Digits (SHD) files: the ``.h5`` layout, binned into T frames.

Dataset: B. Cramer, Y. Stradmann, J. Schemmel, F. Zenke, *The Heidelberg Spiking Data Sets for
the Systematic Evaluation of Spiking Neural Networks* (2020). tpprof never downloads it; users
who have ``shd_train.h5`` / ``shd_test.h5`` pass their path.

Layout read: ``spikes/times`` and ``spikes/units`` — one variable-length array per sample
(spike times in seconds, input channel 0..699) — and ``labels`` (N,) integers.

Binning: T equal bins over [0, max_time) (default 1.4 s, beyond SHD's longest recording, so
the train and test files bin alike); x[n, t, u] = number of spikes of channel u in bin t,
stored as uint8 (saturating at 255) and converted to float32 per mini-batch. Spikes at or after
max_time are dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tpprof.data.arrays import ArrayDataset
from tpprof.errors import UserError

SHD_CHANNELS = 700
_ACCEPTED = "an HDF5 file with spikes/times, spikes/units (one array per sample) and labels (N,)"


MAX_STEPS = 100_000  # 1.4 s at 14 µs bins; far beyond any published SHD setting (100–1000)


def _check_bytes(need: int, name: str) -> None:
    """Refuse, with the figure, an input array larger than the memory available now."""
    import psutil

    avail = int(psutil.virtual_memory().available)
    if need > avail:
        from tpprof.units import format_bytes

        raise UserError("steps", f"{name} would need {format_bytes(need)} of input spikes and "
                        f"{format_bytes(avail)} is available", "fewer --steps or --limit N samples")


def bin_spikes(times: np.ndarray, units: np.ndarray, steps: int, n_units: int, max_time: float) -> np.ndarray:
    """One sample's spike list → (steps, n_units) uint8 counts per bin (see module docstring)."""
    t = np.asarray(times, dtype=np.float64)
    u = np.asarray(units, dtype=np.int64)
    keep = (t >= 0) & (t < max_time) & (u >= 0) & (u < n_units)
    b = np.minimum((t[keep] / max_time * steps).astype(np.int64), steps - 1)  # (n_spikes,) bin index
    counts = np.zeros(steps * n_units, dtype=np.int64)
    np.add.at(counts, b * n_units + u[keep], 1)
    return np.minimum(counts, 255).astype(np.uint8).reshape(steps, n_units)  # (steps, n_units)


def load_shd(path: str | os.PathLike, steps: int = 100, n_units: int = SHD_CHANNELS, max_time: float = 1.4,
             limit: int | None = None) -> ArrayDataset:
    """Read an SHD-layout ``.h5`` file into an :class:`ArrayDataset` x (N, steps, n_units) uint8."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise UserError("data", f"file {str(path)!r} does not exist", _ACCEPTED)
    if steps > MAX_STEPS:  # checked before allocating N x steps x units
        raise UserError("steps", f"{steps} is too large for an SHD file", f"1..{MAX_STEPS} time bins")
    if steps < 1 or n_units < 1 or not max_time > 0:
        raise UserError("shd", f"steps={steps}, n_units={n_units}, max_time={max_time}",
                        "steps >= 1, n_units >= 1, max_time > 0")
    try:
        f = h5py.File(p, "r")
    except OSError:
        raise UserError("data", f"{p.name} is not an HDF5 file", _ACCEPTED) from None
    with f:
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in f:
                raise UserError("data", f"{p.name} has no dataset {key!r}", _ACCEPTED)
        times, units, labels = f["spikes/times"], f["spikes/units"], np.asarray(f["labels"])
        n = labels.shape[0] if limit is None else min(int(limit), labels.shape[0])
        if labels.ndim != 1 or times.shape[0] != labels.shape[0] or units.shape[0] != labels.shape[0]:
            raise UserError("data", f"{p.name}: {times.shape[0]} times, {units.shape[0]} units, "
                            f"{labels.shape[0]} labels", "one spike list per label")
        if not np.issubdtype(labels.dtype, np.integer):  # string or float labels: say so, do not guess
            raise UserError("data", f"{p.name} has labels of type {labels.dtype}", "integer labels 0..C-1")
        need = int(n) * int(steps) * int(n_units)
        _check_bytes(need, p.name)
        x = np.zeros((n, steps, n_units), dtype=np.uint8)  # (N, T, units)
        for i in range(n):
            x[i] = bin_spikes(times[i], units[i], steps, n_units, max_time)
    y = labels[:n].astype(np.int64)
    if y.size and y.min() < 0:
        raise UserError("data", f"{p.name} has a negative label", "labels 0..C-1")
    classes = int(y.max()) + 1 if y.size else 1
    return ArrayDataset(x, y, classes, p.stem, {"dataset": "shd", "path": str(p), "steps": steps,
                                                "max_time": max_time})
