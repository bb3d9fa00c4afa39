"""The timing loop the benches share: CPU time (``time.process_time``) of several runs in
alternating rounds, so every ratio between them comes from the same window of a shared machine."""

from __future__ import annotations

import time
from typing import Callable, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)


def cpu_time(fn: Callable[[], object]) -> float:
    """CPU seconds of one call of ``fn``."""
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def alternate(runs: dict[K, Callable[[], object]], rounds: int, per: float = 1.0) -> dict[K, list[float]]:
    """CPU ms of each run divided by ``per`` (e.g. T for ms per step), one figure per round; inside
    a round every run is called once, in the dict's order."""
    times: dict[K, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            times[k].append(cpu_time(fn) / per * 1e3)
    return times
