"""User-facing errors: one line that names the bad field and what is accepted.

The CLI prints ``tpprof: error: <message>`` and exits with code 2 for these; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import re

#: Control characters (line breaks included) that a user's text may carry into a message.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


def one_line(text: str) -> str:
    """``text`` with every control character escaped (``\\r``, ``\\x1b``...), so an echoed value
    can never break the one-line error or drive the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class UserError(ValueError):
    """Bad input from a user (flag, size, net string, config or data file)."""

    def __init__(self, field: str, problem: str, accepted: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.accepted = accepted
        super().__init__(one_line(f"{field}: {problem}" + (f" (accepted: {accepted})" if accepted else "")))


class ConfigError(UserError):
    """A malformed configuration value."""
