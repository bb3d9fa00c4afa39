"""Compile a config's kernel: for the host (``cc``, numerical checks) or a Cortex-M core
(``arm-none-eabi-gcc``, linked into the device's SRAM), and read the ELF back (section and
symbol sizes)."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tpprof.config import Config, Device
from tpprof.errors import UserError
from tpprof.target.cores import Core
from tpprof.target.generate import Layout, csrc_dir, ram_limit, sources, write_sources

APT_LINE = "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
CFLAGS = ("-O2", "-std=c11", "-Wall", "-Wno-unused-function", "-fno-common", "-fno-math-errno")
TOOL_TIMEOUT = 120
_OVERFLOW = re.compile(r"region [`']?RAM'? overflowed by (\d+) bytes")


def need_tool(name: str) -> str:
    """The path of a toolchain program, or a one-line error naming the Debian packages."""
    path = shutil.which(name)
    if path is None:
        raise UserError("backend", f"{name} is not installed", f"the Debian packages: {APT_LINE}")
    return path


def have_toolchain() -> bool:
    return all(shutil.which(t) for t in ("arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm"))


@dataclass
class Built:
    """A linked kernel, or the linker's verdict that it does not fit."""

    elf: Path | None
    layout: Layout
    ram_bytes: int  # the RAM the linker script gives
    ram_what: str
    overflow_bytes: int | None = None  # set: does not fit
    sections: dict[str, int] = field(default_factory=dict)  # .data, .bss, .stack, .text
    symbols: dict[str, tuple[int, str]] = field(default_factory=dict)  # RAM symbol → (bytes, nm type)
    seconds: float = 0.0

    @property
    def fits(self) -> bool:
        return self.overflow_bytes is None


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise UserError("backend", f"{what} did not finish in {TOOL_TIMEOUT} s", "a smaller config") from None


def build_host(cfg: Config, workdir: Path, *, dump: bool = False) -> Path:
    """The kernel as a host program (``cc``), printing what the target prints."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise UserError("backend", "no host C compiler (cc) is installed", "a C compiler on PATH")
    write_sources(cfg, workdir)
    exe = workdir / "step_host"
    cmd = [cc, *CFLAGS, f"-DTPT_DUMP={int(dump)}", "-ffp-contract=off", "-I", str(workdir), "-I", str(csrc_dir()),
           *map(str, sources(cfg)), str(workdir / "model.c"), str(csrc_dir() / "host.c"), "-lm", "-o", str(exe)]
    r = _run(cmd, "cc")
    if r.returncode:
        raise RuntimeError(f"host build failed: {r.stderr.strip()[:2000]}")
    return exe


def build_target(cfg: Config, core: Core, device: Device | None, workdir: Path, *, dump: bool = False,
                 extra_cflags: tuple[str, ...] = ()) -> Built:
    """Cross-compile and link for ``core`` with the device's SRAM; a RAM overflow is a result.

    ``extra_cflags``: e.g. ``-DTPT_FAULT_TEST=1`` (the tests' crashing kernel)."""
    import time

    t0 = time.perf_counter()
    gcc = need_tool("arm-none-eabi-gcc")
    lay = write_sources(cfg, workdir, core, device)
    ram, what = ram_limit(core, device)
    elf = workdir / "step.elf"
    cmd = [gcc, *core.cflags, *CFLAGS, *extra_cflags, f"-DTPT_DUMP={int(dump)}", "-ffunction-sections", "-fdata-sections",
           "-nostartfiles", "--specs=nano.specs", "-T", str(workdir / "link.ld"), "-Wl,--gc-sections",
           "-I", str(workdir), "-I", str(csrc_dir()), str(csrc_dir() / "startup_arm.c"), *map(str, sources(cfg)),
           str(workdir / "model.c"), "-lm", "-o", str(elf)]
    r = _run(cmd, "arm-none-eabi-gcc")
    if r.returncode:
        m = _OVERFLOW.search(r.stderr)
        if m:
            return Built(None, lay, ram, what, overflow_bytes=int(m.group(1)), seconds=time.perf_counter() - t0)
        raise RuntimeError(f"target build failed: {r.stderr.strip()[:2000]}")
    built = Built(elf, lay, ram, what)
    built.sections = section_sizes(elf)
    built.symbols = ram_symbols(elf)
    built.seconds = time.perf_counter() - t0
    too_big = largest_buffer_check(built, device)
    if too_big:
        name, size, block = too_big
        built.elf, built.overflow_bytes = None, size - block
        built.ram_what += f"; {name} ({size} B) is larger than its largest contiguous block ({block} B)"
    return built


def largest_buffer_check(built: Built, device: Device | None) -> tuple[str, int, int] | None:
    """The largest RAM object of the ELF when it exceeds the device's largest contiguous block
    (one buffer cannot span two SRAM banks), else None."""
    block = device.largest_block_bytes if device is not None else None
    if not block or not built.symbols:
        return None
    name, (size, _) = max(built.symbols.items(), key=lambda kv: kv[1][0])
    return (name, size, block) if size > block else None


def section_sizes(elf: Path) -> dict[str, int]:
    """Section → bytes (``arm-none-eabi-size -A``)."""
    r = _run([need_tool("arm-none-eabi-size"), "-A", str(elf)], "arm-none-eabi-size")
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def ram_symbols(elf: Path) -> dict[str, tuple[int, str]]:
    """Every sized .data/.bss symbol → (bytes, nm type letter) (``arm-none-eabi-nm -S``)."""
    r = _run([need_tool("arm-none-eabi-nm"), "-S", str(elf)], "arm-none-eabi-nm")
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "bBdD":
            out[parts[3]] = (int(parts[1], 16), parts[2])
    return out


@functools.cache
def toolchain_versions() -> str:
    """``arm-none-eabi-gcc X; newlib Y; qemu Z`` (first lines of --version), or what is missing."""
    parts = []
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        path = shutil.which(tool)
        if path is None:
            parts.append(f"{tool} missing")
            continue
        r = _run([path, "--version"], tool)
        first = r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
        m = re.search(r"(\d+\.\d+(\.\d+)?)", first)
        parts.append(f"{tool} {m.group(1) if m else first}")
    return "; ".join(parts)
