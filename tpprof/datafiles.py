"""Reading the files the views show: measurement CSVs (through :mod:`tpprof.store`'s
validation) and the training results (``accuracy.csv``, ``finetune.csv``, ...).

Bad rows and unusable files are returned as one-line problems, never raised, so a view of
several files still shows the good ones. No torch import here.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from tpprof import resources, store
from tpprof.errors import UserError


RESULT_FILES: dict[str, tuple[str, ...]] = {
    "accuracy": ("rule", "task", "net", "seed", "epochs", "frozen_hidden", "test_final", "test_best",
                 "test_mean_last3", "train_final", "seconds_per_epoch"),
    "finetune": ("speaker", "shots", "accuracy", "seed"),
    "silhouette": ("net", "layer", "silhouette"),
    "memory": ("rule", "task", "net", "batch", "classes", "steps", "peak_bytes"),
}


@dataclass
class Measurements:
    """Validated measurement rows, the rows rejected (file, line, problem) and files read."""

    rows: pd.DataFrame
    bad: list[tuple[str, int, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def load_measurements(paths: Iterable[str | Path]) -> Measurements:
    """Read measurement CSVs (files or folders) through :mod:`tpprof.store`'s validation.

    A file whose header is unusable is reported as one bad entry (line 1), not raised, so a
    view of several files still shows the good ones.
    """

    rows: list[dict[str, Any]] = []
    bad: list[tuple[str, int, str]] = []
    files: list[str] = []
    for p in paths:
        p = Path(p)
        targets = sorted(p.glob("*.csv")) if p.is_dir() else [p]
        for f in targets:
            try:
                res = store.load(f)
            except UserError as e:
                bad.append((str(f), 1, str(e)))
                continue
            rows += [{**r, "_source": f.name} for r in res.rows]
            bad += res.bad
            files += res.files
    return Measurements(pd.DataFrame(rows), bad, files)


def load_uploaded(name: str, data: bytes) -> Measurements:
    """Validate an uploaded measurement CSV (bytes) the same way as a file on disk."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / (Path(name).name or "upload.csv")
        p.write_bytes(data)
        m = load_measurements([p])
    m.bad = [(name, line, prob.replace(str(p), name)) for _, line, prob in m.bad]
    m.files = [name]
    return m


def shipped_measurement_files(folder: str | Path | None = None) -> list[Path]:
    """The ``*.csv`` files shipped in measurements/ (empty when there are none)."""
    d = Path(folder) if folder else resources.measurements_dir()
    return sorted(d.glob("*.csv")) if d.is_dir() else []


def load_results(folder: str | Path | None = None) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Read docs/results/{accuracy,finetune,silhouette,memory}.csv when present.

    Returns the frames that loaded (by name) and one-line problems for files that exist but
    do not have the agreed columns; absent files are simply missing from the dict.
    """
    d = Path(folder) if folder else resources.results_dir()
    frames: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    for name, cols in RESULT_FILES.items():
        p = d / f"{name}.csv"
        if not p.is_file():
            continue
        try:
            df = pd.read_csv(p)
        except Exception as e:  # noqa: BLE001 - any parse failure is the file's problem
            problems.append(f"{p.name}: does not parse ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
            continue
        missing = [c for c in cols if c not in df.columns]
        if missing:
            problems.append(f"{p.name}: lacks column(s) {', '.join(missing)}")
            continue
        if df.empty:
            continue
        frames[name] = df
    return frames, problems


# --------------------------------------------------------------------------------------
