"""Few-shot fine-tuning reports TP's analytic peak with the target path per sample and per class."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tpprof.analytic import estimate
from tpprof.cli.train_cmds import finetune_memory_line
from tpprof.config import make_config
from tpprof.data.arrays import ArrayDataset
from tpprof.train import finetune, finetune_memory, save_checkpoint


def _peak(cfg, batch: int, rows: str) -> int:
    c = replace(cfg, workload=replace(cfg.workload, batch=batch), rule=replace(cfg.rule, target_rows=rows))
    return int(estimate(c, "full").peak_bytes)


@pytest.mark.parametrize("batch,classes", [(4, 10), (8, 10), (8, 4), (3, 3)])
def test_finetune_memory_both_layouts(batch, classes):
    cfg = make_config("40-64-64-10", "tp", batch=32, classes=classes, steps=20)
    mem = finetune_memory(cfg, batch)
    assert mem["batch"] == batch and mem["target_rows_classes_k"] == min(batch, classes)
    assert mem["peak_bytes_target_rows_batch"] == _peak(cfg, batch, "batch")
    assert mem["peak_bytes_target_rows_classes"] == _peak(cfg, batch, "classes")
    assert mem["peak_bytes"] == mem["peak_bytes_target_rows_batch"]  # the config's own layout (batch)
    # K = min(B, C): dedup saves only when the batch can repeat a class (C < B)
    if classes < batch:
        assert mem["peak_bytes_target_rows_classes"] < mem["peak_bytes_target_rows_batch"]
    else:  # K = B: the same rows plus the class index (ClassRows), a few hundred bytes
        extra = mem["peak_bytes_target_rows_classes"] - mem["peak_bytes_target_rows_batch"]
        assert 0 <= extra <= 0.01 * mem["peak_bytes_target_rows_batch"]
    assert mem["peak_bytes"] < int(estimate(cfg, "full").peak_bytes)  # the fine-tune batch, not the preset's
    line = finetune_memory_line(mem)
    assert "target_rows=batch" in line and "target_rows=classes" in line and f"K = {min(batch, classes)}" in line
    assert line.endswith(f"this run used target_rows={mem['target_rows']}")  # not "... used batch"


def test_finetune_memory_other_rule():
    mem = finetune_memory(make_config("40-64-10", "bptt", batch=32, steps=20), 8)
    assert "peak_bytes_target_rows_batch" not in mem and mem["target_rows"] is None
    assert "target_rows" not in finetune_memory_line(mem)


def test_finetune_result_has_memory(tmp_path):
    """finetune() on a small synthetic checkpoint: metrics.json carries the peak at its batch (8)."""
    import json

    from tpprof.snn import make_learner

    cfg = make_config("12-16-5", "tp", batch=32, classes=5, steps=6, target_rows="classes")
    save_checkpoint(tmp_path / "model.pt", make_learner(cfg, seed=0), cfg, {})
    rng = np.random.default_rng(0)
    sup = ArrayDataset(rng.random((8, 6, 12), dtype=np.float32), np.arange(8) % 5, 5)
    qry = ArrayDataset(rng.random((10, 6, 12), dtype=np.float32), np.arange(10) % 5, 5)
    m = finetune(tmp_path / "model.pt", sup, qry, epochs=1, progress=False, out_dir=tmp_path / "ft")
    mem = json.loads((tmp_path / "ft" / "metrics.json").read_text())["memory"]
    assert mem == m["memory"] and mem["batch"] == 8 and mem["target_rows"] == "classes"
    assert mem["peak_bytes"] == mem["peak_bytes_target_rows_classes"] == _peak(cfg, 8, "classes")
    assert mem["peak_bytes_target_rows_classes"] < mem["peak_bytes_target_rows_batch"]  # K = 5 < B = 8
