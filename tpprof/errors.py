"""User-facing errors: one line that names the bad field and what is accepted.

The CLI prints ``tpprof: error: <message>`` and exits with code 2 for these; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from a user (flag, size, net string, config or data file)."""

    def __init__(self, field: str, problem: str, accepted: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.accepted = accepted
        msg = f"{field}: {problem}"
        if accepted:
            msg += f" (accepted: {accepted})"
        super().__init__(msg)


class ConfigError(UserError):
    """A malformed configuration value."""
