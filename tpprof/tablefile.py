"""A user's table file (``.toml`` or ``.json``: configs, grids, device catalogues) → a mapping,
with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tpprof.errors import ConfigError
from tpprof.units import short as _short


def toml_module() -> Any:
    """The TOML parser: ``tomllib`` (Python >= 3.11), else its backport ``tomli`` (3.10, a
    dependency there); a one-line error when neither is installed."""
    try:
        import tomllib
    except ModuleNotFoundError:
        try:
            import tomli as tomllib  # same API (tomllib is tomli, vendored into 3.11)
        except ModuleNotFoundError:
            raise ConfigError("config", "reading TOML files on Python < 3.11 needs the tomli package",
                              "pip install tomli (tpprof's dependency there), or a .json file") from None
    return tomllib


def read_table_file(path: str | Path, field_name: str) -> Any:
    """Parse a user's ``.json`` file (JSON) or any other file (TOML); one-line errors."""
    p = Path(path)
    shown = _short(str(path))
    try:
        if not p.is_file():
            raise ConfigError(field_name, f"file {shown} does not exist", "a .toml or .json file")
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:  # permission, I/O error, a name too long
        raise ConfigError(field_name, f"cannot read {shown}: {e.strerror or type(e).__name__}",
                          "a readable .toml or .json file") from None
    loads = json.loads if p.suffix.lower() == ".json" else toml_module().loads
    try:
        return loads(text)
    except Exception as e:  # noqa: BLE001 - any parse failure is the user's file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(field_name, f"{p.name} does not parse ({first})", "valid TOML or JSON") from None
