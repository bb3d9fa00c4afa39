"""What the measured peak is made of: every block live at the peak, by the op that allocated it.

``explain_peak(cfg)`` runs one point in this process under the profiler counter (construction,
warm-up, one measured mini-batch) and returns the blocks allocated inside the measured window
that are live at its peak, grouped by (op path, bytes), next to the analytic terms live at
the analytic peak. This is how the implementation terms of
:mod:`tpprof.analytic.implementation` are derived: each measured block is matched to a line of
the learner's code and given a formula; nothing is fitted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from tpprof.config import Config


@dataclass
class PeakExplanation:
    """Measured peak, its baseline, and the blocks live at the peak (allocated in the window)."""

    baseline_bytes: int
    peak_bytes: int
    inventory_by_category: dict[str, int]
    blocks: list[tuple[str, int, int]]  # (op path, bytes per block, count), largest total first
    analytic_peak: int | None
    analytic_terms: list[tuple[str, str, int]]  # (name, category, bytes) live at the analytic peak

    def render(self) -> str:
        from tpprof.units import format_bytes

        out = [f"measured peak {format_bytes(self.peak_bytes)} ({self.peak_bytes} B), baseline "
               f"{format_bytes(self.baseline_bytes)}, transient {self.peak_bytes - self.baseline_bytes} B"]
        out.append("held by the learner (inventory): " + ", ".join(
            f"{k} {v}" for k, v in sorted(self.inventory_by_category.items())))
        out.append("blocks allocated in the window and live at the peak (bytes x count  op < caller):")
        for op, nb, n in self.blocks:
            out.append(f"  {nb:>12} x {n:<4} {op}")
        if self.analytic_peak is not None:
            out.append(f"analytic peak {self.analytic_peak} B; terms live at it:")
            for name, cat, nb in self.analytic_terms:
                out.append(f"  {nb:>12}  {cat:<14} {name}")
        return "\n".join(out)


def explain_peak(cfg: Config, seed: int = 0, factory: Any = None, with_analytic: bool = True) -> PeakExplanation:
    """Profile one point in this process and list what is live at its peak (CPU only)."""
    import torch

    from tpprof.measure.counters import ProfilerCounter
    from tpprof.measure.protocol import _inventory, default_factory, make_batch, torch_dtype

    torch.set_num_threads(1)
    factory = factory or default_factory()
    x, y = make_batch(cfg, "cpu", seed)
    with ProfilerCounter(keep_ops=True) as pc:
        with pc.phase("build"):
            learner = factory(cfg, device="cpu", dtype=torch_dtype(cfg.workload.dtype), seed=seed)
        with pc.phase("warmup"):
            learner.train_batch(x, y)
        by_cat, _ptrs, _total = _inventory(learner)
        with pc.phase("measure"):
            learner.train_batch(x, y)
    st = pc.stats("measure")
    counts = Counter(pc.live_at_peak("measure"))
    blocks = sorted(((op, nb, n) for (nb, op), n in counts.items()), key=lambda b: -b[1] * b[2])
    a_peak, a_terms = None, []
    if with_analytic:
        from tpprof.analytic import estimate

        bd = estimate(cfg, accounting="full")
        a_peak = int(bd.peak_bytes)
        phase = bd.peak_phase
        a_terms = [(t.name, t.category, int(t.bytes)) for t in bd.terms
                   if t.persistent or (phase is not None and phase in t.phases)]
    return PeakExplanation(st.start_bytes, st.peak_bytes, by_cat, blocks, a_peak, a_terms)


def explain_peak_guarded(cfg: Config, seed: int = 0) -> PeakExplanation:
    """:func:`explain_peak` for the CLI (``measure --explain`` runs in this process): refuse a
    point whose analytic peak (full accounting) exceeds half the memory available now, with
    the figures, and turn an allocation failure that still happens into a one-line error."""
    import psutil

    from tpprof.analytic import estimate
    from tpprof.errors import UserError
    from tpprof.units import format_bytes

    need = int(estimate(cfg, accounting="full").peak_bytes)
    avail = int(psutil.virtual_memory().available)
    if need > avail // 2:  # the profiler keeps a record per allocation too: leave room
        raise UserError("explain", f"this point needs about {format_bytes(need)} at its peak and "
                        f"{format_bytes(avail)} is available", "a smaller --batch/--steps/--net, "
                        "or tpprof measure --out (its own process, a failed point becomes an oom row)")
    try:
        return explain_peak(cfg, seed=seed)
    except (MemoryError, RuntimeError) as e:
        markers = ("out of memory", "can't allocate memory", "bad_alloc")
        if isinstance(e, RuntimeError) and not any(m in str(e).lower() for m in markers):
            raise
        raise UserError("explain", f"ran out of memory (analytic peak {format_bytes(need)})",
                        "a smaller point, or tpprof measure --out") from None
