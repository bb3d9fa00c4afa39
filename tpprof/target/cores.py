"""The Cortex-M cores tpprof runs a training step on, and the QEMU machine that emulates each.

Each QEMU machine has more RAM than a microcontroller, so the SRAM of a catalogue device is
imposed by the linker script (:mod:`tpprof.target.generate`); the machine's own RAM is the upper
limit of what can be emulated.
"""

from __future__ import annotations

from dataclasses import dataclass

from tpprof.errors import UserError

KiB, MiB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Core:
    """One core: compiler flags, the QEMU machine, its code and data memories."""

    name: str
    machine: str  # qemu-system-arm -M
    cflags: tuple[str, ...]
    flash_origin: int
    flash_bytes: int
    ram_origin: int
    ram_bytes: int  # the most RAM the machine gives (an upper limit on an imposed SRAM)
    float_abi: str  # "hard" (single-precision FPU) | "soft" (float emulated in software)
    note: str = ""


CORES: dict[str, Core] = {c.name: c for c in (
    Core("cortex-m0", "microbit", ("-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"),
         0x0, 256 * KiB, 0x20000000, 16 * KiB, "soft", "nRF51 (BBC micro:bit) map: 16 KiB RAM"),
    Core("cortex-m0plus", "microbit", ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"),
         0x0, 256 * KiB, 0x20000000, 16 * KiB, "soft",
         "QEMU has no Cortex-M0+ machine: ARMv6-M code runs on the micro:bit's M0 (same instruction set)"),
    Core("cortex-m3", "mps2-an385", ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"),
         0x0, 4 * MiB, 0x20000000, 4 * MiB, "soft"),
    Core("cortex-m4f", "mps2-an386", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
         0x0, 4 * MiB, 0x20000000, 4 * MiB, "hard"),
    Core("cortex-m7", "mps2-an500", ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
         0x0, 4 * MiB, 0x20000000, 4 * MiB, "hard"),
    Core("cortex-m33", "mps2-an505", ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
         0x10000000, 4 * MiB, 0x38000000, 2 * MiB, "hard", "secure alias of the IoTKit SSRAMs"),
)}


def get_core(name: str) -> Core:
    """The core called ``name`` (case-insensitive), or a one-line error listing the known ones."""
    key = str(name).strip().lower()
    if key not in CORES:
        raise UserError("backend", f"core {name!r} is not known", "qemu:" + ", qemu:".join(CORES))
    return CORES[key]


def parse_backend(spec: str) -> Core | None:
    """``qemu:<core>`` → the Core; ``cpu`` / ``cuda[:N]`` → None (a torch backend)."""
    s = str(spec).strip().lower()
    if s.startswith("qemu:"):
        return get_core(s.split(":", 1)[1])
    if s == "qemu":
        raise UserError("backend", "'qemu' needs a core", "qemu:" + ", qemu:".join(CORES))
    return None
