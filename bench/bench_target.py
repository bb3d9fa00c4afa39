"""One target point, built and run: TP on the FSDD net 40-256-256-10, B = 1, T = 50, SGD,
Cortex-M7 (QEMU mps2-an500) with the STM32H743's SRAM imposed by the linker script.

    python bench/bench_target.py            # goal: build + run ≤ 5 s

Prints the build (arm-none-eabi-gcc + nm/size), the QEMU run (instruction counting on) and
their sum, with the point's RAM lines and instructions per step. Needs the Debian packages
gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tpprof.analytic import estimate  # noqa: E402
from tpprof.analytic.devices import get_device  # noqa: E402
from tpprof.config import make_config  # noqa: E402
from tpprof.target import get_core, target_run  # noqa: E402
from tpprof.target.account import account  # noqa: E402
from tpprof.target.build import have_toolchain  # noqa: E402
from tpprof.target.run import plugin_path  # noqa: E402


def main() -> int:
    if not have_toolchain():
        print("skipped: the ARM toolchain / qemu-system-arm is not installed")
        return 0
    plugin_path()  # built once and cached: not part of a point's time
    cfg = make_config("fsdd", "tp", batch=1, steps=50, optimizer="sgd")
    t0 = time.perf_counter()
    built, run = target_run(cfg, get_core("cortex-m7"), get_device("stm32h743"))
    total = time.perf_counter() - t0
    acc = account(built, run)
    print(f"tp 40-256-256-10 B=1 T=50 sgd on qemu:cortex-m7 @stm32h743: {run.status}")
    print(f"  build {built.seconds:.2f} s + run {run.seconds:.2f} s = {total:.2f} s (goal ≤ 5 s)")
    print(f"  modelled tensors {acc.modelled_bytes} B (model {estimate(cfg, 'algorithm').peak_bytes} B), "
          f"static+stack {acc.static_stack_bytes} B, stack {acc.stack_bytes} B")
    print(f"  instructions per step {run.insns_per_step[0] if run.insns_per_step else 'n/a'}")
    return 0 if run.status == "ok" and total <= 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
