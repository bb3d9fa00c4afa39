"""Run a config's training step: on a host build (numerical checks) or on a Cortex-M under QEMU.

The QEMU run is always under a timeout (``subprocess.run`` kills QEMU when it expires, so nothing
is left running); the guest prints through ARM semihosting into a file, which is parsed into a
:class:`TargetRun`: per-step losses, a weight checksum, the painted stack high-water, the phase
sizes and, with the instruction-count plugin, the instructions executed by every step.

Counter (the store's ``counter`` column): ``static+stack`` = .data + .bss of the ELF + the
painted stack high-water mark.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tpprof.config import Config, Device
from tpprof.errors import UserError
from tpprof.target.build import TOOL_TIMEOUT, Built, build_host, build_target, need_tool
from tpprof.target.cores import Core
from tpprof.target.generate import DATA_SEED, DENSITY, csrc_dir

from tpprof.store import TARGET_COUNTER as COUNTER  # noqa: E402
RUN_TIMEOUT = 60.0


@dataclass
class TargetRun:
    """What one run printed, parsed."""

    status: str  # ok | crash | timeout | does-not-fit
    local_loss: list[float] = field(default_factory=list)
    readout_ce: list[float] = field(default_factory=list)
    params: list[dict[str, list[float]]] = field(default_factory=list)  # dumps: initial, then per step
    checksum: str = ""
    param_sum: float = float("nan")
    stack_bytes: int | None = None
    phases: dict[str, int] = field(default_factory=dict)
    insns_per_step: list[int] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""


def _bits(h: str) -> float:
    return struct.unpack("<f", struct.pack("<I", int(h, 16)))[0]


def parse_output(text: str) -> TargetRun:
    run = TargetRun(status="ok" if "\nEND" in "\n" + text else "crash")
    cur: dict[str, list[float]] | None = None
    last: list[float] | None = None
    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "L":
            _, loc, ce = rest.split()
            run.local_loss.append(_bits(loc))
            run.readout_ce.append(_bits(ce))
            cur = None
        elif tag == "W":
            if cur is None:
                cur = {}
                run.params.append(cur)
            name, *vals = rest.split()
            last = cur.setdefault(name, [])
            last.extend(_bits(v) for v in vals)
        elif tag == "W+" and last is not None:
            last.extend(_bits(v) for v in rest.split())
        elif tag == "CK":
            h, s = rest.split()
            run.checksum, run.param_sum = h, _bits(s)
        elif tag == "STACK":
            run.stack_bytes = None if rest.strip() == "-1" else int(rest)
        elif tag == "PH":
            ph, n = rest.rsplit(" ", 1)
            run.phases[ph] = int(n)
        elif tag == "FAULT":
            run.status, run.message = "crash", "the kernel faulted (HardFault or other exception)"
    if run.status == "crash" and not run.message:
        run.message = "the kernel stopped before END"
    return run


def host_run(cfg: Config, *, dump: bool = True, workdir: Path | None = None, timeout: float = RUN_TIMEOUT) -> TargetRun:
    """Build with ``cc`` and run on this machine (the same C, stdout instead of semihosting)."""
    with _workdir(workdir) as wd:
        exe = build_host(cfg, wd, dump=dump)
        t0 = time.perf_counter()
        try:
            r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return TargetRun(status="timeout", message=f"the host kernel ran past {timeout:g} s")
        run = parse_output(r.stdout)
        run.seconds = time.perf_counter() - t0
        if r.returncode and run.status == "ok":
            run.status, run.message = "crash", f"exit status {r.returncode}"
        return run


class _workdir:
    def __init__(self, path: Path | None) -> None:
        self.path, self._tmp = path, None

    def __enter__(self) -> Path:
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            return self.path
        self._tmp = tempfile.TemporaryDirectory(prefix="tpprof-target-")
        return Path(self._tmp.name)

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


# ---- the instruction-count plugin ---------------------------------------------------------------

def cache_dir() -> Path:
    """tpprof's user cache folder ($XDG_CACHE_HOME/tpprof, else ~/.cache/tpprof)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tpprof"


def plugin_path() -> Path:
    """The counting plugin, built with the host compiler on first use and cached (keyed by its source)."""
    src = csrc_dir() / "insn_count.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    so = cache_dir() / f"insn_count-{digest}.so"
    if so.is_file():
        return so
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise UserError("backend", "the instruction counter needs a host C compiler (cc)", "a C compiler on PATH")
    so.parent.mkdir(parents=True, exist_ok=True)
    tmp = so.with_suffix(f".{os.getpid()}.tmp")
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", str(src), "-o", str(tmp)], capture_output=True, text=True,
                       timeout=TOOL_TIMEOUT)
    if r.returncode:
        raise RuntimeError(f"building the QEMU plugin failed: {r.stderr.strip()[:1000]}")
    os.replace(tmp, so)  # atomic: concurrent first uses do not see a half-written file
    return so


def _marker_address(elf: Path) -> int:
    r = subprocess.run([need_tool("arm-none-eabi-nm"), str(elf)], capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "tpt_marker":
            return int(parts[0], 16)
    raise RuntimeError("tpt_marker not found in the ELF")


def qemu_run(built: Built, core: Core, *, count: bool = True, timeout: float = RUN_TIMEOUT) -> TargetRun:
    """Run a linked kernel on ``core``'s QEMU machine under ``timeout`` seconds."""
    if not built.fits or built.elf is None:
        return TargetRun(status="does-not-fit", message=f"RAM overflowed by {built.overflow_bytes} bytes")
    qemu = need_tool("qemu-system-arm")
    wd = built.elf.parent
    out, counts = wd / "semihost.txt", wd / "insns.txt"
    for p in (out, counts):
        p.unlink(missing_ok=True)
    cmd = [qemu, "-M", core.machine, "-display", "none", "-monitor", "none", "-serial", "none", "-nodefaults",
           "-semihosting-config", "enable=on,target=native,chardev=semi", "-chardev", f"file,id=semi,path={out}",
           "-kernel", str(built.elf)]
    if count:
        cmd += ["-plugin", f"{plugin_path()},marker={_marker_address(built.elf):#x},out={counts}"]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:  # subprocess.run has killed and reaped QEMU
        return TargetRun(status="timeout", seconds=time.perf_counter() - t0,
                         message=f"the kernel did not exit within {timeout:g} s (QEMU killed)")
    text = out.read_text(encoding="utf-8", errors="replace") if out.is_file() else ""
    run = parse_output(text)
    run.seconds = time.perf_counter() - t0
    if r.returncode and run.status == "ok":
        run.status, run.message = "crash", f"QEMU exit status {r.returncode}: {r.stderr.strip()[:200]}"
    elif run.status != "ok" and r.stderr.strip():
        run.message += f"; QEMU: {r.stderr.strip().splitlines()[-1][:200]}"
    if count and counts.is_file():
        marks = [int(line.split()[1]) for line in counts.read_text().splitlines() if line.startswith("M ")]
        run.insns_per_step = [b - a for a, b in zip(marks[0::2], marks[1::2])]
    return run


def target_run(cfg: Config, core: Core, device: Device | None = None, *, dump: bool = False, count: bool = True,
               timeout: float = RUN_TIMEOUT, workdir: Path | None = None, extra_cflags: tuple[str, ...] = ()
               ) -> tuple[Built, TargetRun]:
    """Build for ``core`` (RAM from ``device``) and run under QEMU."""
    with _workdir(workdir) as wd:
        built = build_target(cfg, core, device, wd, dump=dump, extra_cflags=extra_cflags)
        return built, qemu_run(built, core, count=count, timeout=timeout)


# ---- the same data stream as main.c ----------------------------------------------------------

def xorshift32(state: int) -> int:
    state ^= (state << 13) & 0xFFFFFFFF
    state ^= state >> 17
    state ^= (state << 5) & 0xFFFFFFFF
    return state & 0xFFFFFFFF


def synthetic_batch(cfg: Config) -> tuple[list[int], list[list[list[float]]]]:
    """The labels (B,) and input spikes (B, T, n_in) that main.c draws, as nested lists."""
    B, T, C = cfg.workload.batch, cfg.workload.steps, cfg.workload.classes
    n_in = cfg.net.geometry()[0].n_in
    thresh = int(round(DENSITY * (1 << 24)))
    st = DATA_SEED
    labels = []
    for _ in range(B):
        st = xorshift32(st)
        labels.append(st % C)
    x = [[[0.0] * n_in for _ in range(T)] for _ in range(B)]
    for t in range(T):
        for b in range(B):
            row = x[b][t]
            for i in range(n_in):
                st = xorshift32(st)
                row[i] = 1.0 if (st >> 8) < thresh else 0.0
    return labels, x
