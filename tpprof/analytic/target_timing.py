"""Time per step on a microcontroller: instructions per MAC, per core and rule, learned from the
target rows (``tpprof measure --backend qemu:<core>``; torch-free).

    insns_step  = i_0 + k · MACs_step        (per core and rule, fitted on target rows)
    cycles_step ≈ CPI · insns_step            (an estimate at a stated CPI)

``MACs_step`` is the analytic model's multiply-accumulates per step (the same as the host time
model of :mod:`tpprof.analytic.timing`, whose relative least-squares fit is reused: instructions
play the part of seconds, i_0 of t_0 and k of 1/R). The instruction counts are exact (QEMU's
TCG plugin, ``insns_per_step`` = the mini-batch's instructions / T); cycles are not: QEMU has no
timing model, so the cycle figure is instructions × an assumed CPI (:data:`DEFAULT_CPI`) until a
board's ``DWT->CYCCNT`` replaces it. Not modelled: wait states of flash and SRAM, caches (M7),
the FPU's multi-cycle operations, and the dependence of the count on the spikes (branches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

#: Catalogue device → the core of its CPU (QEMU has a machine for each).
DEVICE_CORES: dict[str, str] = {"stm32h743": "cortex-m7", "stm32f767": "cortex-m7", "nrf52840": "cortex-m4f",
                                "rp2040": "cortex-m0plus", "rp2350": "cortex-m33", "apollo3-blue": "cortex-m4f",
                                "apollo4-plus": "cortex-m4f"}
#: The stated cycles per instruction of the estimate (single-issue in-order cores at zero wait
#: states execute most instructions in one cycle; a board's DWT->CYCCNT gives the real figure).
DEFAULT_CPI = 1.0
#: The M0+ runs the M0's instructions (QEMU has no M0+ machine: the same ARMv6-M code).
CORE_ALIASES = {"cortex-m0plus": "cortex-m0"}


@dataclass(frozen=True)
class InsnModel:
    """insns = base_insns + insns_per_mac · MACs, fitted on ``n_points`` target rows of one core."""

    core: str
    rule: str  # a rule, or "*" (all rules of the core pooled)
    base_insns: float
    insns_per_mac: float
    n_points: int
    median_error: float
    max_error: float
    source: str

    def insns(self, macs: Any) -> Any:
        return self.base_insns + self.insns_per_mac * np.asarray(macs, dtype=float)

    def cycles(self, macs: Any, cpi: float = DEFAULT_CPI) -> Any:
        return cpi * self.insns(macs)

    def describe(self, cpi: float = DEFAULT_CPI) -> str:
        who = "every rule" if self.rule == "*" else self.rule
        return (f"cycles/step ≈ {cpi:g} CPI × ({self.base_insns:.0f} + {self.insns_per_mac:.2f} instructions/MAC × "
                f"MACs) on {self.core} ({who}; estimate at a stated CPI: instructions counted under QEMU on "
                f"{self.n_points} target rows from {self.source}, fit error median {self.median_error:.1%}, "
                f"max {self.max_error:.1%})")


def fit_insn_model(macs: Iterable[float], insns: Iterable[float], core: str, rule: str, source: str = "") -> InsnModel:
    """Relative least squares insns ≈ i_0 + k·MACs (:func:`tpprof.analytic.timing.fit_time_model`)."""
    from tpprof.analytic.timing import fit_time_model

    tm = fit_time_model(list(macs), list(insns), device=core, hardware=rule, source=source)
    return InsnModel(core, rule, tm.overhead_s, 1.0 / tm.macs_per_s, tm.n_points, tm.median_error, tm.max_error,
                     source)


def calibrate_target(rows: Iterable[dict[str, Any]], source: str = "") -> dict[tuple[str, str], InsnModel]:
    """One model per (core, rule) of the ok target rows with instruction counts, and one per core
    over all its rules (key (core, "*"))."""
    from tpprof.store import TARGET_COUNTER

    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("counter") != TARGET_COUNTER:
            continue
        ins, macs = r.get("insns_per_step"), r.get("macs_per_step")
        if not ins or not macs:
            continue
        for key in ((str(r["core"]), str(r["rule"])), (str(r["core"]), "*")):
            m, i = groups.setdefault(key, ([], []))
            m.append(float(macs))
            i.append(float(ins))
    out = {}
    for key, (m, i) in groups.items():
        try:
            out[key] = fit_insn_model(m, i, key[0], key[1], source)
        except ValueError:
            continue
    return out


def shipped_insn_models() -> dict[tuple[str, str], InsnModel]:
    """The models of the shipped target rows (``measurements/target_*.csv``)."""
    from tpprof.analytic.timing import fit_shipped

    return fit_shipped(calibrate_target, "target_*.csv")


def core_of(device: str | None) -> str | None:
    """The core of a catalogue device (None: unknown, or not a Cortex-M)."""
    return DEVICE_CORES.get(str(device).strip().lower()) if device else None


def insn_model(core: str, rule: str, models: dict[tuple[str, str], InsnModel] | None = None) -> InsnModel | None:
    """The (core, rule) model, else the core's pooled one, else None."""
    models = shipped_insn_models() if models is None else models
    core = CORE_ALIASES.get(core, core)
    return models.get((core, rule)) or models.get((core, "*"))


def cycles_per_step(device: str | None, rule: str, macs: Any, cpi: float = DEFAULT_CPI
                    ) -> tuple[Any, InsnModel | None]:
    """(cycles per step at ``cpi``, the model used) for a rule on a catalogue device; (NaN, None)
    when the device has no known core or the core has no target rows."""
    core = core_of(device)
    model = insn_model(core, rule) if core else None
    if model is None:
        return np.full(np.shape(macs), np.nan) if np.ndim(macs) else float("nan"), None
    return model.cycles(macs, cpi), model
