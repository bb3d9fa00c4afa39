"""``tpprof measure --backend qemu:<core>``: one store row per point, from a QEMU run of the
rule's C kernel (:mod:`tpprof.target`).

Row semantics (counter ``static+stack``; ``measurements/README.md`` documents every column):
peak_bytes = .data + .bss + painted stack high-water, i.e. everything in the device's RAM
(the input frame included, unlike the torch rows); baseline_bytes = .data + .bss (held before
the step runs); transient_bytes = the stack; inventory_bytes = Σ the persistent m_* arrays;
bytes_<category> = the m_* arrays by their term's category (the phase union split as its
largest phase's terms); bytes_other = data + C runtime + stack. modelled_bytes (Σ m_*) is what
``tpprof validate`` compares with ``--accounting algorithm`` peak_bytes, to the byte.
A config that does not fit the device's SRAM is a row with status ``does-not-fit`` and the
linker's overflow in ``overflow_bytes``; a crash is ``error``, a hang ``timeout``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from tpprof.analytic import Breakdown, estimate
from tpprof.config import CATEGORIES, Config, Device
from tpprof.errors import UserError
from tpprof.target.account import account
from tpprof.target.build import have_toolchain, toolchain_versions
from tpprof.target.cores import Core
from tpprof.target.generate import Layout, layout
from tpprof.target.run import COUNTER, RUN_TIMEOUT, target_run

PEAK_DEFINITION = ("static+stack: .data + .bss of the linked ELF (arm-none-eabi-size) + the painted stack "
                   "high-water mark, the whole RAM the step uses on the target (input frame included)")


def _provenance(core: Core, rule: str) -> dict[str, Any]:
    import platform

    from tpprof._version import __version__
    from tpprof.measure.counters import hardware_description, now_utc
    from tpprof.store import kernel_hash

    from tpprof.measure.protocol import interpreter

    return dict(**interpreter(), tpprof_version=__version__, torch_version="", python_version=platform.python_version(),
                hardware=f"QEMU {core.machine} ({core.name}) on {hardware_description(gpu=False)}", timestamp=now_utc(),
                learner_hash=kernel_hash(), toolchain=toolchain_versions())


def _categories(bd: Breakdown, lay: Layout, arrays: dict[str, int]) -> dict[str, int]:
    """Measured m_* bytes per analytic category (``bd``: the algorithmic breakdown the kernel's
    ``lay`` was generated from): persistent arrays by their term's category, the phase union
    (m_phase) split as the terms of its largest phase."""
    cat_of = {t.name: t.category for t in bd.terms}
    out = {c: 0 for c in CATEGORIES}
    for a in lay.persistent:
        out[cat_of[a.term]] += arrays.get(a.symbol, 0)
    phases = lay.phases()
    if phases:
        big = max(phases, key=lambda p: sum(a.bytes for a in phases[p]))
        for a in phases[big]:
            out[cat_of[a.term]] += a.bytes
    return out


def target_row(cfg: Config, core: Core, device: Device | None, *, net_label: str | None = None,
               timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    """Build, run and account one point; always a row (status ok / does-not-fit / timeout / error)."""
    from tpprof.measure.protocol import config_columns

    t0 = time.perf_counter()
    row = config_columns(cfg, f"qemu:{core.name}", net_label)
    row.update(counter=COUNTER, peak_definition=PEAK_DEFINITION, warmup_batches=0, batches=1, repeats=1, seed=0,
               threads=1, core=core.name, target_device=device.name if device else "")
    row.update(_provenance(core, cfg.rule.name))
    try:
        built, run = target_run(cfg, core, device, count=True, timeout=timeout)
    except (RuntimeError, OSError) as e:
        row.update(status="error", error=" ".join(str(e).split())[:300], wall_s=time.perf_counter() - t0)
        return row
    row["ram_limit_bytes"] = built.ram_bytes
    row["build_s"] = built.seconds
    bd = estimate(cfg, "algorithm")
    row["macs_per_step"] = int(bd.macs_per_step)
    if not built.fits:
        row.update(status="does-not-fit", overflow_bytes=built.overflow_bytes,
                   error=f"RAM overflowed by {built.overflow_bytes} bytes ({built.ram_what}; {built.ram_bytes} B, "
                         f"stack reserve included)", wall_s=time.perf_counter() - t0)
        return row
    if run.status != "ok":
        row.update(status="timeout" if run.status == "timeout" else "error", error=run.message[:300],
                   wall_s=time.perf_counter() - t0)
        return row
    acc = account(built, run)
    cats = _categories(bd, built.layout, acc.arrays)
    peak = acc.static_stack_bytes
    inv = sum(b for s, b in acc.arrays.items() if s != "m_phase")
    row.update({f"bytes_{c}": v for c, v in cats.items()})
    row.update(status="ok", input_bytes=acc.data_bytes, input_saved_bytes=0, inventory_bytes=inv,
               baseline_bytes=acc.static_bytes, peak_bytes=peak, transient_bytes=acc.stack_bytes,
               untracked_bytes=acc.static_bytes - inv, bytes_other=peak - sum(cats.values()),
               static_bytes=acc.static_bytes, stack_bytes=acc.stack_bytes, modelled_bytes=acc.modelled_bytes,
               data_bytes=acc.data_bytes, runtime_data_bytes=acc.runtime_data_bytes,
               runtime_bss_bytes=acc.runtime_bss_bytes, weight_checksum=run.checksum,
               wall_s=time.perf_counter() - t0)
    if run.insns_per_step:  # the mean: BPTT's whole backward runs inside its last step
        row["insns_per_step"] = float(statistics.fmean(run.insns_per_step))
        row["insns_per_step_max"] = max(run.insns_per_step)
    return row


def measure_target(points: list[tuple[Config, str]], core: Core, device: Device | None, out: str, *,
                   timeout: float = RUN_TIMEOUT, retry_failed: bool = False,
                   log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run every (config, net label) not yet in ``out`` on ``core``; append one row each."""
    from tpprof.store import append_row, check_out_file, finished_keys, point_key

    if not have_toolchain():
        from tpprof.target.build import APT_LINE

        raise UserError("backend", f"qemu:{core.name} needs arm-none-eabi-gcc, arm-none-eabi-binutils and "
                        "qemu-system-arm", f"the Debian packages: {APT_LINE}")
    for cfg, _ in points:
        layout(cfg)  # every point is supported before any runs: one-line error up front
    check_out_file(out)
    done = finished_keys(out, retry_failed)
    rows = []
    for cfg, label in points:
        from tpprof.measure.protocol import config_columns

        key_row = config_columns(cfg, f"qemu:{core.name}", label)
        key_row["target_device"] = device.name if device else ""
        if point_key(key_row) in done:
            continue
        row = target_row(cfg, core, device, net_label=label, timeout=timeout)
        append_row(out, row)
        rows.append(row)
        if log:
            log(f"{row['status']}: {row['rule']} {row['net']} B={row['batch']} T={row['steps']} "
                + (f"{row['modelled_bytes']} B modelled, {row['peak_bytes']} B static+stack" if row["status"] == "ok"
                   else row.get("error", "")))
    return rows
