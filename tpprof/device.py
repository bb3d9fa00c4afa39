"""The :class:`Device` record: a memory budget to fit into and what the device can run.

The catalogue of real devices (with sources) is :mod:`tpprof.analytic.devices`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tpprof.units import choice as _choice, parse_bytes

LEARNING_SUPPORT: tuple[str, ...] = ("yes", "no", "partial", "unknown")


@dataclass(frozen=True)
class Device:
    """A memory budget to fit into, e.g. a microcontroller's SRAM or a GPU's HBM."""

    name: str
    budget_bytes: int
    source: str = "user"
    kind: str = "custom"  # mcu | neuromorphic | sbc | edge-gpu | gpu | custom
    on_chip_bytes: int | None = None
    off_chip_bytes: int | None = None
    notes: str = ""
    #: Can a learning rule run on the device? yes | no (inference only) | partial (e.g. only the
    #: last layer) | unknown (a user's ad-hoc budget).
    on_chip_learning: str = "unknown"
    #: The largest contiguous block of the budget's memory (one buffer can be no larger), when
    #: it is less than the total (STM32H743: 1060 KiB RAM, 512 KiB largest block); None: not known.
    largest_block_bytes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget_bytes", parse_bytes(self.budget_bytes, "budget"))
        object.__setattr__(self, "on_chip_learning", _choice("on_chip_learning", self.on_chip_learning,
                                                             LEARNING_SUPPORT))
        if self.largest_block_bytes is not None:
            object.__setattr__(self, "largest_block_bytes", parse_bytes(self.largest_block_bytes, "largest_block_bytes"))

    @property
    def can_learn(self) -> bool:
        """False only when the device is known to run inference only (``on_chip_learning == "no"``):
        a regime map must then not say that a rule "fits" there."""
        return self.on_chip_learning != "no"


def budget_device(text: str) -> Device:
    """``--budget 512KiB`` → an ad-hoc :class:`Device`."""
    return Device(name=f"budget {text.strip()}", budget_bytes=parse_bytes(text), source="user --budget")
