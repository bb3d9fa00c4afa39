"""tpprof.target: one rule's training step as C on a Cortex-M, run under QEMU, RAM counted to the byte.

    from tpprof.target import get_core, target_run, host_run
    built, run = target_run(make_config("40-64-10", "tp", batch=8, steps=5, optimizer="sgd"),
                            get_core("cortex-m4f"), get_device("stm32h743"))
    built.symbols, built.sections, run.stack_bytes, run.insns_per_step, run.checksum

Modules: ``cores`` (core → QEMU machine, flags, memory), ``generate`` (sizes header, the model's
arrays with the transients overlaid per phase, linker script), ``build`` (cc / arm-none-eabi-gcc,
ELF sizes), ``run`` (host and QEMU runs, the instruction-count plugin, output parsing),
``account`` (the ELF's RAM against the algorithmic model). The C sources are in ``csrc/``.
The store rows (``tpprof measure --backend qemu:<core>``) are built one floor up, in
:mod:`tpprof.measure.target`; the oracle against the torch learners in
:mod:`tpprof.measure.target_reference`.
Importing this package does not import torch.
"""

from __future__ import annotations

from tpprof.target.cores import CORES, Core, get_core, parse_backend
from tpprof.target.run import COUNTER, TargetRun, host_run, target_run

__all__ = ["CORES", "Core", "get_core", "parse_backend", "COUNTER", "TargetRun", "host_run", "target_run"]
