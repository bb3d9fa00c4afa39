"""Where the dashboard keeps uploaded files: a private folder of this server process.

The folder is made by :func:`tempfile.mkdtemp` (mode 0700, a fresh unpredictable name, owned by
this process's user) and checked again before every write: still a real directory (not a link),
still ours, no group / other bits. Files are written under a temporary name opened with
``O_CREAT | O_EXCL | O_NOFOLLOW`` (a planted file or link at that name makes the open fail
instead of writing through it) and renamed onto the final name, which is the content's SHA-256
(one upload, one path, so cached tables are reused). The folder is removed when the process exits.
Streamlit-free, so it can be tested without a server.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from tpprof.errors import UserError

__all__ = ["upload_folder", "save_upload"]

_LOCK = threading.Lock()
_FOLDER: Path | None = None


def _private(folder: Path) -> bool:
    """A real directory (not a symlink), owned by this user, with no group / other access."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def upload_folder() -> Path:
    """This process's private upload folder (made on first use; made afresh if it was removed or
    tampered with)."""
    global _FOLDER
    with _LOCK:
        if _FOLDER is None or not _private(_FOLDER):
            _FOLDER = Path(tempfile.mkdtemp(prefix="tpprof-uploads-"))
            atexit.register(shutil.rmtree, str(_FOLDER), True)
            if not _private(_FOLDER):  # pragma: no cover - mkdtemp guarantees it
                raise UserError("upload", f"the upload folder {_FOLDER} is not private", "a 0700 folder of this user")
        return _FOLDER


def _holds(path: Path, data: bytes) -> bool:
    """``path`` is a regular file of this user (not a link) whose bytes are ``data``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_size == len(data)):
            return False
        got = b""
        while len(got) <= len(data):
            chunk = os.read(fd, len(data) + 1 - len(got))
            if not chunk:
                break
            got += chunk
        return got == data
    finally:
        os.close(fd)


def save_upload(data: bytes, suffix: str, max_bytes: int) -> Path:
    """``data`` as ``<sha256><suffix>`` in :func:`upload_folder`; its path. Refuses more than
    ``max_bytes`` bytes and a suffix other than a plain extension."""
    if len(data) > max_bytes:
        raise UserError("upload", f"{len(data) / 2**20:.1f} MB is too large", f"at most {max_bytes / 2**20:.0f} MB")
    if not (suffix.startswith(".") and suffix[1:].isalnum()):
        raise UserError("upload", f"suffix {suffix!r} is not a file extension", "an extension such as .nir")
    folder = upload_folder()
    final = folder / (hashlib.sha256(data).hexdigest() + suffix)
    if _holds(final, data):  # the same upload again (its name is its hash; the bytes are checked too)
        return final
    tmp = folder / f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as e:
        raise UserError("upload", f"cannot create the upload file ({e.strerror})", "a private upload folder") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, final)  # rename replaces a link at ``final`` itself, never writes through it
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError("upload", f"cannot write the upload ({e.strerror})", "a private upload folder") from None
    return final
