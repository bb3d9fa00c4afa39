"""Native kernels of the sparse input path: ``csrc/sparse.c``, compiled on first use with the host's
C compiler and loaded with ctypes (no torch headers, no build step at install).

What they do (tpprof/snn/sparse.py): layer 1's weight gradient ∂W_1 ← β ∂W_1 + δᵀ x^t as a loop
over the spikes' index lists that adds δ's rows straight into the column-major gradient (torch's
path gathers into an (n_in, H) temporary and adds that), and the building of the lists in two
scans of the batch (numpy's makes one pass per sample and places the entries with fancy indexing).
The forward product stays on ``embedding_bag`` (fbgemm's gather), which a plain C loop did not beat
when tried. Same sums up to summation order; the lists are identical (tests/test_snn_native.py).

Compiled once per source, compiler and machine into ``$XDG_CACHE_HOME/tpprof`` (default
``~/.cache/tpprof``; a private temporary folder when that is not writable, and a cached library
is loaded only if this user owns it and nobody else may write it), with ``cc -O3``; with GCC on
x86-64 the vector loop is cloned for AVX-512, AVX2 and plain x86-64 and the loader picks one at run
time, so a cached library runs on any machine of the same architecture. Without a compiler, when
compiling fails, or with ``TPPROF_NATIVE=0`` in the environment, :func:`library` returns None and
the sparse path runs torch's ``embedding_bag`` and numpy, with the same results; :func:`status`
says which and why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

__all__ = ["library", "status", "enabled", "wgrad", "count", "fill", "SOURCE", "ENV"]

SOURCE = Path(__file__).with_name("csrc") / "sparse.c"
#: set to 0 to run the sparse path on torch and numpy only
ENV = "TPPROF_NATIVE"
COMPILE_TIMEOUT_S = 120
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}

_lib: ctypes.CDLL | None = None
_status = "not loaded yet"
_tried = False


def _cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tpprof`` (default ``~/.cache/tpprof``) when it can be written, else a new
    private temporary folder (never a shared, predictable one: a library loaded from there could
    have been put there by another user)."""
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tpprof"
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=base):
            pass
        return base
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return Path(tempfile.mkdtemp(prefix="tpprof-native-"))


def _trusted(path: Path) -> bool:
    """A cached library is loaded only if this user owns it and nobody else may write it."""
    st = path.stat()
    return (not hasattr(os, "getuid") or st.st_uid == os.getuid()) and not st.st_mode & 0o022


def _compile(cc: str, out: Path) -> None:
    """cc -O3 the source into ``out`` (written under a temporary name, then moved: another process
    compiling at the same time never loads a half-written file). Falls back to no function clones
    for a compiler that does not take them."""
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    base = [cc, "-O3", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE)]
    try:
        for extra in ([], ["-DTPPROF_NO_CLONES"]):
            done = subprocess.run(base[:1] + extra + base[1:], capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
            if done.returncode == 0:
                os.replace(tmp, out)
                return
        raise RuntimeError(f"{cc} failed: {done.stderr.strip()[-500:]}")
    finally:
        tmp.unlink(missing_ok=True)


def _declare(lib: ctypes.CDLL) -> None:
    P, I = ctypes.c_void_p, ctypes.c_int64
    for suf in _SUFFIX.values():
        getattr(lib, f"wgrad_{suf}").argtypes = [P, I, P, P, P, I, I, P, ctypes.c_double]
        getattr(lib, f"count_{suf}").argtypes = [P, I, I, I, P, P, P]
        getattr(lib, f"count_{suf}").restype = I
        getattr(lib, f"fill_{suf}").argtypes = [P, I, I, I, P, P, P, P, P, P]
        getattr(lib, f"fill_{suf}").restype = ctypes.c_int


def library() -> ctypes.CDLL | None:
    """The loaded kernels, compiling them on the first call of the process; None when off or
    unavailable (see :func:`status`)."""
    global _lib, _status, _tried
    if _off():
        return None
    if _tried:
        return _lib
    _tried = True
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        _status = "unavailable: no C compiler (cc) on PATH"
        return None
    try:
        key = hashlib.sha256(SOURCE.read_bytes() + f"|{cc}|{platform.machine()}|{platform.system()}".encode())
        out = _cache_dir() / f"sparse-{key.hexdigest()[:16]}.so"
        if out.is_file() and not _trusted(out):
            out = Path(tempfile.mkdtemp(prefix="tpprof-native-")) / out.name
        if not out.is_file():
            _compile(cc, out)
        lib = ctypes.CDLL(str(out))
        _declare(lib)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        _status = f"unavailable: {e}"
        return None
    _lib, _status = lib, f"loaded from {out}"
    return _lib


def _off() -> bool:
    return os.environ.get(ENV, "1") == "0"


def status() -> str:
    """Whether the kernels are in use, and why not."""
    if _off():
        return f"off ({ENV}=0)"
    library()
    return _status


def enabled(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the kernels can run on tensors of this dtype and device (float32/64, CPU)."""
    return device.type == "cpu" and dtype in _SUFFIX and library() is not None


def _kernel(name: str, dtype: torch.dtype) -> ctypes._CFuncPtr:
    lib = _lib if _lib is not None else library()
    if lib is None:
        raise RuntimeError(f"tpprof native kernels: {_status}")
    return getattr(lib, f"{name}_{_SUFFIX[dtype]}")


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def wgrad(gt: torch.Tensor, rows: torch.Tensor, vals: torch.Tensor | None, offs: torch.Tensor,
          delta: torch.Tensor, beta: float) -> None:
    """gt[j] ← β gt[j] + Σ_{e ∈ bag j} v_e δ[rows[e]]: gt (n_in, H), δ (B, H) contiguous; rows/vals
    one step's entries, offs (n_in,) bag starts relative to them."""
    n_in, H = gt.shape
    _kernel("wgrad", gt.dtype)(gt.data_ptr(), H, rows.data_ptr(), _ptr(vals), offs.data_ptr(), n_in, rows.numel(),
                               delta.data_ptr(), float(beta))


def count(x: torch.Tensor, grad: bool) -> tuple[int, torch.Tensor, torch.Tensor | None, bool]:
    """Entries of x (B, T, n) contiguous: (nnz, per bag (t, b) (T·B,), per bag (t, j) (T·n,) or
    None without ``grad``, every entry 1)."""
    B, T, n = x.shape
    fcount = torch.empty(T * B, dtype=torch.int64)
    gcount = torch.empty(T * n, dtype=torch.int64) if grad else None
    binary = ctypes.c_int32(1)
    nnz = _kernel("count", x.dtype)(x.data_ptr(), B, T, n, fcount.data_ptr(), _ptr(gcount), ctypes.byref(binary))
    return nnz, fcount, gcount, bool(binary.value)


def fill(x: torch.Tensor, fcount: torch.Tensor, gcount: torch.Tensor | None, nnz: int, binary: bool
         ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """The lists of x (B, T, n) from :func:`count`'s counts: (cols, vals, grows, gvals), values
    None for binary x, the (t, j) lists None without gcount."""
    B, T, n = x.shape
    cols = torch.empty(nnz, dtype=torch.int64)
    grows = None if gcount is None else torch.empty(nnz, dtype=torch.int64)
    vals = None if binary else torch.empty(nnz, dtype=x.dtype)
    gvals = None if binary or gcount is None else torch.empty(nnz, dtype=x.dtype)
    if _kernel("fill", x.dtype)(x.data_ptr(), B, T, n, fcount.data_ptr(), _ptr(gcount), cols.data_ptr(), _ptr(vals),
                                _ptr(grows), _ptr(gvals)):
        raise MemoryError("tpprof native fill: out of memory for the index lists' counters")
    return cols, vals, grows, gvals
