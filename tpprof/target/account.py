"""The RAM of a linked kernel, line by line, against the algorithmic model.

From the ELF (``arm-none-eabi-nm -S`` / ``size -A``) and the run's painted stack:

* ``modelled``: Σ sizes of the ``m_*`` symbols — the persistent terms' arrays and ``m_phase``,
  the union of the per-phase transients; equals ``peak_bytes`` of ``--accounting algorithm``
  when the kernel holds exactly the model's tensors;
* ``data``: the ``d_*`` symbols (input frame, labels and what TP derives from them), which the
  model lists as not modelled;
* ``runtime .data`` / ``runtime .bss``: the rest of the sections (newlib's reentrancy data,
  the output line buffer, a few scalars, alignment padding);
* ``stack``: the painted high-water mark (the linker reserves ``STACK_RESERVE``).

The store's counter ``static+stack`` is .data + .bss + stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tpprof.target.build import Built
from tpprof.target.run import TargetRun


@dataclass(frozen=True)
class RamAccount:
    modelled_bytes: int
    data_bytes: int
    runtime_data_bytes: int
    runtime_bss_bytes: int
    stack_bytes: int | None
    section_data: int
    section_bss: int
    arrays: dict[str, int] = field(default_factory=dict)  # m_* symbol → bytes

    @property
    def static_bytes(self) -> int:
        return self.section_data + self.section_bss

    @property
    def static_stack_bytes(self) -> int | None:
        return None if self.stack_bytes is None else self.static_bytes + self.stack_bytes

    def lines(self) -> dict[str, int | None]:
        """The named lines (validate prints them): they add up to static+stack."""
        return {"modelled tensors": self.modelled_bytes, "data (input frame, labels)": self.data_bytes,
                "C runtime .data": self.runtime_data_bytes, "C runtime .bss": self.runtime_bss_bytes,
                "stack (painted high-water)": self.stack_bytes}


def account(built: Built, run: TargetRun | None = None) -> RamAccount:
    """Split the ELF's RAM into the named lines (module docstring)."""
    syms = built.symbols
    arrays = {n: b for n, (b, _) in syms.items() if n.startswith("m_")}
    modelled = sum(arrays.values())
    data = sum(b for n, (b, _) in syms.items() if n.startswith("d_"))
    in_data = sum(b for n, (b, k) in syms.items() if k in "dD" and (n.startswith("m_") or n.startswith("d_")))
    in_bss = sum(b for n, (b, k) in syms.items() if k in "bB" and (n.startswith("m_") or n.startswith("d_")))
    sec_data, sec_bss = built.sections.get(".data", 0), built.sections.get(".bss", 0)
    return RamAccount(modelled, data, sec_data - in_data, sec_bss - in_bss,
                      None if run is None else run.stack_bytes, sec_data, sec_bss, arrays)
