"""The :class:`Device` record: a memory budget to fit into and what the device can run.

The catalogue of real devices (with sources) is :mod:`tpprof.analytic.devices`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tpprof.units import choice as _choice, parse_bytes

#: What learning a device can run (``Device.learning_capability``): none (inference only),
#: readout (only the last layer learns on chip), local (on-chip plasticity: rules whose update
#: needs no error carried back through layers or time), any (a CPU running any rule in
#: software), unknown (not said: treated as any, and the output says so).
LEARNING_CAPABILITIES: tuple[str, ...] = ("none", "readout", "local", "any", "unknown")


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
    #: The largest contiguous block of the budget's memory (one buffer can be no larger), when
    #: it is less than the total (STM32H743: 1060 KiB RAM, 512 KiB largest block); None: not known.
    largest_block_bytes: int | None = None
    #: What learning the device can run: one of :data:`LEARNING_CAPABILITIES` (the catalogue
    #: gives it with a source; an ad-hoc budget is "unknown").
    learning_capability: str = "unknown"

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget_bytes", parse_bytes(self.budget_bytes, "budget"))
        object.__setattr__(self, "learning_capability", _choice("learning_capability", self.learning_capability,
                                                                LEARNING_CAPABILITIES))
        if self.largest_block_bytes is not None:
            object.__setattr__(self, "largest_block_bytes", parse_bytes(self.largest_block_bytes, "largest_block_bytes"))

    @property
    def on_chip_learning(self) -> str:
        """Can a learning rule run on the device? yes (local or any) | no (inference only) | partial
        (only the readout) | unknown: :attr:`learning_capability`, read coarsely."""
        return _SUPPORT_OF_CAPABILITY[self.learning_capability]

    @property
    def can_learn(self) -> bool:
        """False only when the device is known to run inference only (capability ``none``): a
        regime map must then not say that a rule "fits" there."""
        return self.learning_capability != "none"


_SUPPORT_OF_CAPABILITY: dict[str, str] = {"none": "no", "readout": "partial", "local": "yes", "any": "yes",
                                          "unknown": "unknown"}
#: A catalogue entry that gives only the older ``on_chip_learning`` field: the capability it implies
#: (``yes`` does not say whether back-propagation runs, so it stays unknown).
CAPABILITY_OF_SUPPORT: dict[str, str] = {"no": "none", "partial": "readout", "yes": "unknown", "unknown": "unknown"}


def budget_device(text: str) -> Device:
    """``--budget 512KiB`` → an ad-hoc :class:`Device`."""
    return Device(name=f"budget {text.strip()}", budget_bytes=parse_bytes(text), source="user --budget")
