"""Printed tables read as tables: columns aligned to their longest entry, no Python ``None``."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_neurobench_table_is_aligned_and_says_not_measured(monkeypatch, capsys) -> None:
    from tpprof import nb_metrics
    from tpprof.cli.export_cmds import neurobench_output

    same = {"Footprint": 480, "ConnectionSparsity": 0.0, "ActivationSparsity": 0.95,
            "SynapticOperations": {"Dense": 960.0, "Effective_ACs": 238.75, "Effective_MACs": 0.0}}
    agree = {k: True for k in ("Footprint", "ConnectionSparsity", "ActivationSparsity", "SynapticOperations.Dense",
                               "SynapticOperations.Effective_ACs", "SynapticOperations.Effective_MACs")}
    rep = {"neurobench": same, "tpprof_closed_form": same, "agree": agree,
           "neuron_semantics": {"tpprof": "soft reset", "closest_snntorch": {"setting": "Leaky", "exact": True}},
           "tpprof_train_workload": {"batch": 8, "steps": 8, "dtype": "fp32", "optimizer": "adam"},
           "tpprof_train_peak_analytic_bytes": {"tp": 6560, "tess-authors-schedule": 4700, "bptt": 11400},
           "tpprof_train_peak_measured_bytes": {"tp": 6580, "bptt": 8330}}
    monkeypatch.setattr(nb_metrics, "report", lambda *a, **k: rep)
    ds = type("DS", (), {"x": np.zeros((2, 3, 4), np.float32), "y": np.zeros(2, np.int64)})()
    assert neurobench_output(None, ds, {"accuracy": 1.0}, "accuracy 1.0", False) == 0
    out = capsys.readouterr().out
    assert "None" not in out and "not measured" in out
    peak_rows = out.split("adam:\n", 1)[1].splitlines()
    ends = {len(r.rstrip()) for r in peak_rows}
    assert len(ends) == 1, peak_rows  # right-aligned columns: every row ends in the same column
