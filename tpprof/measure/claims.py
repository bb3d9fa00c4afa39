"""Per-point claims, so that two ``tpprof measure`` runs on one ``--out`` measure each point once.

A run claims a point before measuring it with a POSIX record lock (``fcntl.lockf``) on one byte of
the hidden file ``.<out name>.lock`` beside the results, at an offset given by the point's key
(48 bits of its SHA-256, so distinct points never share a byte in practice). A claim is held by
the process, not written down: a killed run's claims vanish with it, and nothing stale is left to
clean. A point another run holds is skipped and counted; a point claimed here is re-checked
against the results file (the other run may have finished it in between).

The lock file is removed when the last run ends (a whole-file lock proves no claim is held); a run
that opened it just before then sees its inode gone and opens the new one. No-op without fcntl.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["PointClaims"]


def _offset(key: tuple[str, ...]) -> int:
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:6], "big")


class PointClaims:
    """Claims on the points of one results file (see the module docstring)."""

    def __init__(self, out: str | Path) -> None:
        p = Path(out)
        self.path = p.parent / f".{p.name}.lock"
        self.fd: int | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: no claims, as before
            self.fcntl: Any = None
        else:
            self.fcntl = fcntl

    def _open(self) -> int:
        if self.fd is None:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
            self.fd = os.open(self.path, flags, 0o666)  # the umask decides, as for the results file
        return self.fd

    def _current(self) -> bool:
        """The open lock file is still the one at ``path`` (not removed by a finishing run)."""
        try:
            return os.stat(self.path).st_ino == os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return False

    def claim(self, key: tuple[str, ...]) -> bool:
        """True when this process now holds ``key``; False when another process does."""
        if self.fcntl is None:
            return True
        for _ in range(10):
            fd = self._open()
            try:
                self.fcntl.lockf(fd, self.fcntl.LOCK_EX | self.fcntl.LOCK_NB, 1, _offset(key))
            except OSError:  # EAGAIN / EACCES: held by another run
                return False
            if self._current():
                return True
            os.close(fd)  # the file was removed under us: every lock on it is gone; use the new one
            self.fd = None
        return True  # pragma: no cover - ten removals in a row: measure rather than skip

    def release(self, key: tuple[str, ...]) -> None:
        if self.fcntl is not None and self.fd is not None:
            self.fcntl.lockf(self.fd, self.fcntl.LOCK_UN, 1, _offset(key))

    def close(self) -> None:
        """Release every claim; remove the lock file when no other run holds one."""
        if self.fcntl is None or self.fd is None:
            return
        try:
            self.fcntl.lockf(self.fd, self.fcntl.LOCK_EX | self.fcntl.LOCK_NB, 0, 0)
            if self._current():
                self.path.unlink()
        except OSError:
            pass  # another run still holds claims: it removes the file when it ends
        finally:
            os.close(self.fd)
            self.fd = None
