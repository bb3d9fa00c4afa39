"""Numbers and sizes users type: ASCII integers and reals, bounded counts, choices, and memory
sizes (``256KiB``, ``1.5 MB``) in and out; every refusal a one-line :class:`ConfigError` naming
the field.

Plain Python (no numpy): the vocabulary (:mod:`tpprof.config`) and every room above it use these.
"""

from __future__ import annotations

import math
import re
from typing import Any

from tpprof.errors import ConfigError


def choice(field_name: str, value: Any, accepted: tuple[str, ...]) -> str:
    """``value`` stripped and lower-cased when it is one of ``accepted``; else a one-line error."""
    v = str(value).strip().lower()
    if v not in accepted:
        raise ConfigError(field_name, f"{value!r} is not known", ", ".join(accepted))
    return v


#: Upper bound of every count a user gives (batch, steps, classes, widths): 10^9. Above it no
#: workload of this tool fits a machine, and the bound keeps int/float conversions exact and
#: far from Python's 4,300-digit int-string limit.
MAX_COUNT = 10**9

_ASCII_INT_RE = re.compile(r"^(-\s*\+?|\+)?([0-9]{1,30})\s*$", re.ASCII)


def parse_ascii_int(text: str, max_digits: int = 18) -> int | None:
    """``text`` as an int when it is ASCII digits (an optional ``+`` or ``-``, surrounding spaces)
    of at most ``max_digits`` digits, else None. Unicode digits ('²', '٣') and underscores, which
    ``str.isdigit`` / ``int`` would accept or crash on, are refused; a negative count is then
    named by the caller's range check, not called "not an integer"."""
    m = _ASCII_INT_RE.match(text.strip()) if isinstance(text, str) else None
    if not m or len(m.group(2).lstrip("0") or "0") > max_digits:
        return None
    return -int(m.group(2)) if m.group(1) and m.group(1)[0] == "-" else int(m.group(2))


def short(v: Any) -> str:
    """A value for a one-line message: huge ints by their size (``str`` of a 5,000-digit int
    raises), long texts cut."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
        return f"an integer of about {int(v.bit_length() * 0.30103) + 1} digits"
    t = repr(v) if isinstance(v, str) else str(v)
    return t if len(t) <= 40 else t[:20] + f"… ({len(t)} characters)"


def pos_int(field_name: str, value: Any, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """An integer in [minimum, maximum] from an int, an integral float or ASCII digits; a bool,
    an empty string, Unicode digits or a 5,000-digit number are a one-line ConfigError."""
    top = f"10^{len(str(maximum)) - 1}" if maximum >= 1000 and str(maximum).strip("0") == "1" else str(maximum)
    accepted = f"an integer {minimum}..{top}"
    iv: int | None = None
    if isinstance(value, str):
        iv = parse_ascii_int(value)
    elif isinstance(value, float):
        iv = int(value) if math.isfinite(value) and value.is_integer() and abs(value) < 2**63 else None
    elif not isinstance(value, bool) and (isinstance(value, int) or type(value).__name__.startswith(("int", "uint"))
                                          and hasattr(value, "__index__")):
        iv = int(value)
    if iv is None:
        empty = isinstance(value, str) and not value.strip()
        raise ConfigError(field_name, "is empty" if empty else f"{short(value)} is not an integer", accepted)
    if iv < minimum:
        raise ConfigError(field_name, f"{short(iv)} is too small", accepted)
    if iv > maximum:
        raise ConfigError(field_name, f"{short(iv)} is too large", accepted)
    return iv


def parse_real(value: Any) -> float:
    """``float(value)``, but text must be plain ASCII without ``_`` (``float()`` also takes ``'٣'``
    and ``'1_0'``): ValueError otherwise."""
    if isinstance(value, str) and (not value.isascii() or "_" in value):
        raise ValueError(value)
    return float(value)


def unit_float(field_name: str, value: Any, lo: float = 0.0, hi: float = 1.0) -> float:
    try:
        f = parse_real(value)
    except (TypeError, ValueError):
        raise ConfigError(field_name, f"{value!r} is not a number", f"a number in [{lo}, {hi}]") from None
    if not lo <= f <= hi:  # also rejects NaN
        raise ConfigError(field_name, f"{value!r} is out of range", f"a number in [{lo}, {hi}]")
    return f


# --------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------

_UNITS: dict[str, int] = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 2**10, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "m": 2**20, "g": 2**30,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?\s*([A-Za-z]*)\s*$")


def parse_bytes(text: str | int | float, field_name: str = "budget") -> int:
    """Parse a memory size: ``'256KiB'`` → 262144, ``'1.5 MB'`` → 1500000, ``'8GiB'``.

    KB/MB/GB/TB are decimal (10^3k); KiB/MiB/GiB/TiB (and bare K/M/G) are binary (2^10k).
    A bare number is bytes. The result is rounded down to whole bytes and must be > 0.
    """
    if isinstance(text, bool):
        raise ConfigError(field_name, f"{text!r} is not a size", "e.g. 4096, 256KiB, 1.5 MB, 8GiB")
    if isinstance(text, (int, float)):
        if (isinstance(text, float) and not math.isfinite(text)) or text < 1 or text > 2**62:
            raise ConfigError(field_name, f"{short(text)} is not a size between 1 byte and 4 EiB",
                              "e.g. 4096, 256KiB, 1.5 MB, 8GiB")
        return int(text)
    m = _SIZE_RE.match(str(text))
    accepted = "a positive number with an optional unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 256KiB, 1.5 MB)"
    if not m:
        raise ConfigError(field_name, f"{text!r} is not a size", accepted)
    num, exp, unit = m.groups()
    if len(num) > 40 or (exp and len(exp.lstrip("+-").lstrip("0")) > 4):  # beyond 4 EiB whatever follows
        raise ConfigError(field_name, f"{short(str(text))} is out of range", "between 1 byte and 4 EiB")
    unit_l = unit.lower()
    if unit_l not in _UNITS:
        raise ConfigError(field_name, f"unit {unit!r} is not known", accepted)
    try:
        value = float(num) * (10.0 ** int(exp) if exp else 1.0) * _UNITS[unit_l]
    except OverflowError:
        raise ConfigError(field_name, f"{text!r} is too large", accepted) from None
    if not math.isfinite(value) or value < 1 or value > 2**62:
        raise ConfigError(field_name, f"{text!r} is out of range", "between 1 byte and 4 EiB")
    return int(value)


def format_bytes(n: float) -> str:
    """Human-readable binary size, the one size format of every table, caption and figure:
    262144 → ``'256.0 KiB'``, 1085440 → ``'1.04 MiB'`` (≥ 3 significant digits); up to EiB, then ``'3.2e+21 EiB'``.
    Never raises on a number: ints too large for a float (> 1.8e308) are scaled as ints, NaN
    and ±inf print as such."""
    if isinstance(n, int) and not isinstance(n, bool) and abs(n) >= 2**1000:
        lg = math.log10(abs(n)) - 6 * math.log10(1024)  # in EiB; log10 works on any int
        e = math.floor(lg)
        mant = round(10 ** (lg - e), 1)
        if mant >= 10:
            mant, e = mant / 10, e + 1
        return f"{'-' if n < 0 else ''}{mant:.1f}e+{e} EiB"
    try:
        n = float(n)
    except (TypeError, ValueError, OverflowError):
        return str(n)[:40]
    if not math.isfinite(n):
        return f"{n} B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024 or unit == "EiB":
            if unit == "B":
                return f"{n:.0f} B"
            # at least 3 significant digits: STM32H743's 1060 KiB is 1.04 MiB, not "1.0 MiB"
            return f"{n:.2f} {unit}" if abs(n) < 10 else f"{n:.1f} {unit}" if abs(n) < 1e6 else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover
