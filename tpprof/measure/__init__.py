"""tpprof.measure: real peak memory and step time of the torch learners.

    from tpprof.measure import measure_point, expand, run_grid, Protocol
    row = measure_point(make_config("shd", "tp", batch=16, steps=25))   # one point, this process
    pts = expand([{"rule": ["tp", "bptt"], "net": "shd", "batch": [16], "steps": [25, 400]}])
    run_grid(pts, "m.csv", Protocol())                                  # fresh subprocess per point
    # measured vs analytic: tpprof.validate.validate_rows (torch-free, shared with the app and report)

Modules: ``counters`` (profiler / CUDA / RSS counters, saved-tensor tracking), ``protocol``
(one point: warm-up, baseline, windows, attribution), ``grid`` (expansion, TOML, runner with
resume), ``attribution`` (what the peak is made of).
Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["measure_point", "expand", "run_grid", "Protocol", "Point", "explain_peak"]


#: Where each public name lives (imported on first use).
_HOME = {"measure_point": "protocol", "expand": "grid", "run_grid": "grid", "Protocol": "grid", "Point": "grid",
         "explain_peak": "attribution"}


def __getattr__(name: str) -> Any:  # lazy: keep `import tpprof.measure` torch-free
    if name not in _HOME:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"tpprof.measure.{_HOME[name]}"), name)
