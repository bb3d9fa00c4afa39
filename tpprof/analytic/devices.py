"""Device catalogue: real targets with on-chip and off-chip memory and a source per figure.

The shipped catalogue is ``devices.json`` beside this file. Users add their own with a JSON or
TOML file (``--devices FILE``) of the same form::

    [[devices]]
    name = "my-board"
    on_chip_bytes = "512KiB"      # sizes as integers or strings ("1.5 MB", "8GiB")
    off_chip_bytes = "8MiB"
    budget = "off_chip"           # which figure a run must fit in: on_chip | off_chip | a size
    source = "my measurements"
    learning_capability = "any"   # none | readout | local (on-chip plasticity only) | any (a CPU)
                                  # (an older on_chip_learning = no | partial is read as none | readout)
    largest_block_bytes = "256KiB"  # optional: the largest contiguous block, when less than the total

A shipped entry gives, per figure (``on_chip``, ``off_chip``, ``learning``), a table
``{text, url, confidence}``: ``confidence`` is ``checked`` (confirmed by a second source),
``secondary`` (from a secondary summary, not the vendor's document) or ``unverified``
(recalled from the named document, not re-read here). A plain string is accepted too.

or give an ad-hoc budget with ``--budget 512KiB``. Entries become :class:`tpprof.device.Device`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from tpprof.device import CAPABILITY_OF_SUPPORT, Device, budget_device
from tpprof.errors import UserError
from tpprof.tablefile import read_table_file
from tpprof.units import parse_bytes

KINDS: tuple[str, ...] = ("mcu", "neuromorphic", "sbc", "edge-gpu", "gpu", "custom")


def _size(value: Any, field: str) -> int | None:
    return None if value is None else parse_bytes(value, field)


def device_from_mapping(entry: Mapping[str, Any], origin: str = "catalogue") -> Device:
    """One catalogue entry → :class:`Device` (one-line :class:`UserError` when malformed)."""
    if not isinstance(entry, Mapping):
        raise UserError("devices", f"{origin}: an entry is not a table", "tables with name, on_chip_bytes / off_chip_bytes")
    name = str(entry.get("name", "")).strip()
    if not name:
        raise UserError("devices", f"{origin}: an entry has no name", "name = \"my-board\"")
    on = _size(entry.get("on_chip_bytes"), f"{name}.on_chip_bytes")
    off = _size(entry.get("off_chip_bytes"), f"{name}.off_chip_bytes")
    budget = entry.get("budget", "off_chip" if off else "on_chip")
    b = on if budget == "on_chip" else off if budget == "off_chip" else _size(budget, f"{name}.budget")
    if b is None:
        raise UserError("devices", f"{origin}: {name} has no memory figure for its budget {budget!r}",
                        "on_chip_bytes or off_chip_bytes, or budget = a size")
    kind = str(entry.get("kind", "custom"))
    if kind not in KINDS:
        raise UserError("devices", f"{origin}: {name} has kind {kind!r}", ", ".join(KINDS))
    sources = entry.get("sources")
    if isinstance(sources, Mapping):
        source = "; ".join(f"{k}: {_source_text(v)}" for k, v in sources.items())
    else:
        source = str(entry.get("source", origin))
    learning = entry.get("on_chip_learning", "unknown")  # the older, coarser field: read when no capability
    if not isinstance(learning, str) or learning not in CAPABILITY_OF_SUPPORT:
        raise UserError("devices", f"{origin}: {name} has on_chip_learning {learning!r}", "yes, no, partial or unknown")
    capability = entry.get("learning_capability", CAPABILITY_OF_SUPPORT[learning])
    if not isinstance(capability, str):
        raise UserError("devices", f"{origin}: {name} has learning_capability {capability!r}",
                        "none, readout, local, any or unknown")
    block = _size(entry.get("largest_block_bytes"), f"{name}.largest_block_bytes")
    if block is not None and b is not None and block > max(x for x in (on, off, b) if x is not None):
        raise UserError("devices", f"{origin}: {name}'s largest_block_bytes exceeds its memory", "at most the total")
    notes = str(entry.get("notes", entry.get("title", "")))
    if entry.get("title") and entry.get("notes"):
        notes = f"{entry['title']}. {entry['notes']}"
    try:
        return Device(name=name, budget_bytes=b, source=source, kind=kind, on_chip_bytes=on, off_chip_bytes=off,
                      notes=notes, largest_block_bytes=block,
                      learning_capability=capability)
    except UserError as e:
        raise UserError("devices", f"{origin}: {name}: {e.problem}", e.accepted) from None


def _source_text(v: Any) -> str:
    """A figure's source as one line: ``text (confidence; url)`` for a table, else the string."""
    if isinstance(v, Mapping):
        extra = ", ".join(str(v[k]) for k in ("confidence", "url") if v.get(k))
        return f"{v.get('text', '')}" + (f" ({extra})" if extra else "")
    return str(v)


def figure_sources(name: str) -> dict[str, dict[str, Any]]:
    """The shipped entry's per-figure sources as ``{figure: {text, url, confidence}}``."""
    for e in _entries(json.loads(_catalogue_text()), "devices.json"):
        if str(e.get("name", "")).lower() == str(name).strip().lower():
            return {k: dict(v) if isinstance(v, Mapping) else {"text": str(v), "url": None, "confidence": "unverified"}
                    for k, v in (e.get("sources") or {}).items()}
    raise UserError("device", f"{name!r} is not in the shipped catalogue", "a name from tpprof devices")


def _catalogue_text() -> str:
    return resources.files("tpprof.analytic").joinpath("devices.json").read_text(encoding="utf-8")


def _entries(data: Any, origin: str) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and "devices" in data:
        data = data["devices"]
    if not isinstance(data, list):
        raise UserError("devices", f"{origin} has no device list", "a 'devices' array of tables ([[devices]] in TOML)")
    return data


def read_device_file(path: str | Path) -> tuple[Device, ...]:
    """A user's JSON or TOML device file → devices."""
    p = Path(path)
    data = read_table_file(p, "devices")
    return tuple(device_from_mapping(e, p.name) for e in _entries(data, p.name))


@lru_cache(maxsize=1)
def _shipped() -> tuple[Device, ...]:
    text = _catalogue_text()
    return tuple(device_from_mapping(e, "devices.json") for e in _entries(json.loads(text), "devices.json"))


def load_catalogue(extra: str | Path | Iterable[str | Path] | None = None) -> tuple[Device, ...]:
    """The shipped devices, then those of ``extra`` file(s); a later entry replaces an earlier one
    of the same name (case-insensitive)."""
    out: dict[str, Device] = {d.name.lower(): d for d in _shipped()}
    files = [] if extra is None else ([extra] if isinstance(extra, (str, Path)) else list(extra))
    for f in files:
        for d in read_device_file(f):
            out[d.name.lower()] = d
    return tuple(out.values())


def get_device(name: str, extra: str | Path | Iterable[str | Path] | None = None) -> Device:
    """Look a device up by name (case-insensitive)."""
    key = str(name).strip().lower()
    for d in load_catalogue(extra):
        if d.name.lower() == key:
            return d
    names = ", ".join(d.name for d in load_catalogue(extra))
    raise UserError("device", f"{name!r} is not in the catalogue", names + " (or --budget SIZE, or --devices FILE)")


def resolve_budget(device: str | None = None, budget: str | None = None,
                   extra: str | Path | None = None, required: bool = False) -> Device | None:
    """``--device NAME`` or ``--budget SIZE`` → a :class:`Device`: a catalogue entry (``extra``
    files included) or an ad-hoc device of that budget. Blank values count as not given; with
    neither given, None, or a one-line :class:`UserError` when ``required``."""
    device = device.strip() if device else None
    budget = str(budget).strip() if budget is not None else None
    if device and budget:
        raise UserError("budget", "both --device and --budget were given", "one of them")
    if budget:
        return budget_device(budget)
    if device:
        return get_device(device, extra)
    if required:
        raise UserError("device", "none given", "a catalogue device name or a budget such as 512KiB")
    return None


def device_to_dict(d: Device) -> dict[str, Any]:
    return {"name": d.name, "kind": d.kind, "budget_bytes": d.budget_bytes, "on_chip_bytes": d.on_chip_bytes,
            "off_chip_bytes": d.off_chip_bytes, "largest_block_bytes": d.largest_block_bytes,
            "on_chip_learning": d.on_chip_learning, "learning_capability": d.learning_capability,
            "accounting": device_accounting(d)[0], "source": d.source, "notes": d.notes}


#: Device kinds on which no PyTorch learner runs: a lean implementation on the chip holds the
#: algorithm's terms only (the on-target C kernels, tpprof/target, are checked against them).
LEAN_KINDS: tuple[str, ...] = ("mcu", "neuromorphic")


def device_accounting(d: Device | None) -> tuple[str, str]:
    """The accounting a device's verdict uses, and why: a microcontroller or neuromorphic chip
    runs a lean implementation (``algorithm``: the rule's terms, no framework temporaries); a
    host, GPU or board with an OS runs the PyTorch learner (``full``). No device: ``full``."""
    if d is not None and d.kind in LEAN_KINDS:
        return "algorithm", (f"{d.name} is a {'microcontroller' if d.kind == 'mcu' else 'neuromorphic chip'}: "
                             "a lean on-chip implementation holds the algorithm's terms, no PyTorch temporaries")
    if d is None:
        return "full", "no device: the PyTorch learner's memory"
    return "full", f"{d.name} ({d.kind}) runs the PyTorch learner: its temporaries count"
