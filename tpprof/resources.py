"""Files shipped inside the package, found with :mod:`importlib.resources` (never the cwd).

``tpprof/shipped/measurements/`` holds the reference measurements (``cpu_reference.csv``), the
default grid and their README; ``tpprof/shipped/results/`` the training results behind the
README's accuracy figures. Both are package data, so ``tpprof report``, ``tpprof validate`` and
``tpprof app`` find them after a plain ``pip install .`` from any folder. In a checkout the
top-level ``measurements`` and ``docs/results`` are symbolic links to these folders.
``$TPPROF_MEASUREMENTS_DIR`` / ``$TPPROF_RESULTS_DIR`` point at other folders instead.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from tpprof.errors import UserError


def shipped_path(*parts: str) -> Path:
    """A path inside ``tpprof/shipped/`` as a real file-system path."""
    t = resources.files("tpprof").joinpath("shipped", *parts)
    p = Path(str(t))
    if not isinstance(t, Path) and not p.exists():  # pragma: no cover - zipped installs only
        raise UserError("install", f"the shipped file {'/'.join(parts)!r} is not on the file system",
                        "a tpprof installed as a folder (pip install .), not run from a zip")
    return p


def measurements_dir() -> Path:
    """The shipped measurements folder, or ``$TPPROF_MEASUREMENTS_DIR`` when set (non-empty)."""
    env = os.environ.get("TPPROF_MEASUREMENTS_DIR")
    return Path(env) if env else shipped_path("measurements")


def results_dir() -> Path:
    """The shipped training-results folder, or ``$TPPROF_RESULTS_DIR`` when set (non-empty)."""
    env = os.environ.get("TPPROF_RESULTS_DIR")
    return Path(env) if env else shipped_path("results")


def default_grid() -> Path:
    """The shipped measurement grid (``tpprof measure --grid``'s example)."""
    return shipped_path("measurements", "default_grid.toml")
