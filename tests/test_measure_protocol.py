"""The protocol and the grid runner on a stand-in learner whose allocations are known."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tpprof.config import make_config  # noqa: E402
from tpprof.measure.grid import Point, Protocol, expand, run_grid, run_in_process, run_subprocess  # noqa: E402
from tpprof.measure.protocol import make_batch, measure_point  # noqa: E402
from tpprof.store import load  # noqa: E402

H = 8  # stand-in hidden width


class KnownLearner:
    """Holds w (F, H) and, after its first mini-batch, a moment m (F, H) (lazy, like Adam);
    each mini-batch re-allocates its state (B, H) and, every step, a (B, 100) temporary."""

    def __init__(self, cfg, device="cpu", dtype=torch.float32, seed=0):  # noqa: ANN001
        self.cfg, self.dtype = cfg, dtype
        f, b = cfg.net.input_size, cfg.workload.batch
        self.w = torch.zeros(f, H, dtype=dtype)  # (F, H)
        self.m = None
        self.state = torch.zeros(b, H, dtype=dtype)  # (B, H)

    def train_batch(self, x, y, on_step=None):  # noqa: ANN001
        b = self.cfg.workload.batch
        if self.m is None:
            self.m = torch.zeros_like(self.w)  # (F, H), lazily as Adam's moments
        self.state = torch.zeros(b, H, dtype=self.dtype)  # new state while the old one is alive
        for t in range(self.cfg.workload.steps):
            tmp = torch.empty(b, 100, dtype=self.dtype)  # (B, 100) transient
            del tmp
            if on_step:
                on_step(t)
        return {"loss": 0.0, "correct": 0, "n": b}

    def memory_inventory(self):  # noqa: ANN201
        return [("w", "weights", self.w), ("m", "optimizer", self.m), ("v", "neuron_state", self.state)]


def cfg_small(**kw):  # noqa: ANN001, ANN201
    args = dict(net="20-16-4", rule="tp", batch=4, classes=4, steps=5)
    args.update(kw)
    return make_config(**args)


def test_measure_point_exact_on_known_learner() -> None:
    cfg = cfg_small()
    row = measure_point(cfg, batches=2, repeats=2, rss=False, factory=KnownLearner)
    f, b = 20, 4
    w = m = f * H * 4  # 640 B each
    v = b * H * 4  # 128 B
    assert row["status"] == "ok"
    assert row["inventory_bytes"] == row["baseline_bytes"] == w + m + v
    assert (row["bytes_weights"], row["bytes_optimizer"], row["bytes_neuron_state"]) == (w, m, v)
    # transient: max(new state B*H*4 = 128, temporary B*100*4 = 1600) = 1600
    assert row["peak_bytes"] == w + m + v + b * 100 * 4
    assert row["bytes_other"] == b * 100 * 4 and row["bytes_saved"] == 0
    # x (B, T, 20) fp32 + y (B,) int64
    assert row["input_bytes"] == b * 5 * 20 * 4 + b * 8
    assert row["ms_per_step"] > 0 and row["step_ms_median"] > 0


def test_make_batch_shapes_and_labels() -> None:
    cfg = cfg_small(net="2x6x6-c4-3", batch=7, classes=3, steps=2)
    x, y = make_batch(cfg, "cpu")
    assert tuple(x.shape) == (7, 2, 2, 6, 6) and x.dtype == torch.float32
    assert set(y.tolist()) == {0, 1, 2}


def test_rss_window_reports_numbers() -> None:
    row = measure_point(cfg_small(), batches=1, repeats=1, rss=True, factory=KnownLearner)
    assert row["rss_peak_bytes"] >= row["rss_before_bytes"] > 0


class Exploding(KnownLearner):
    def train_batch(self, x, y, on_step=None):  # noqa: ANN001
        raise MemoryError("no room")


class Broken(KnownLearner):
    def train_batch(self, x, y, on_step=None):  # noqa: ANN001
        raise RuntimeError("boom")


def test_grid_appends_resumes_and_records_failures(tmp_path: Path) -> None:
    out = tmp_path / "m.csv"
    pts = expand([{"rule": ["tp", "bptt"], "net": "20-16-4", "batch": [4], "steps": [3, 5]}])
    assert len(pts) == 4
    proto = Protocol(batches=1, repeats=1, rss=False)
    factories = {"tp": KnownLearner, "bptt": Exploding}

    def run_one(p: Point, pr: Protocol):  # noqa: ANN202
        return run_in_process(p, pr, factory=factories[p.cfg.rule.name])

    res = run_grid(pts, out, proto, run_one=run_one, progress=False)
    assert (res.count("ok"), res.count("oom"), res.skipped) == (2, 2, 0)
    loaded = load(out)
    assert not loaded.bad and len(loaded.rows) == 4
    assert {r["status"] for r in loaded.rows if r["rule"] == "bptt"} == {"oom"}
    # rerun: everything is finished, nothing runs
    again = run_grid(pts, out, proto, run_one=run_one, progress=False)
    assert (len(again.ran), again.skipped) == (0, 4)
    # retry failed: only the two oom points run again, now as errors
    factories["bptt"] = Broken
    retry = run_grid(pts, out, proto, run_one=run_one, retry_failed=True, progress=False)
    assert (retry.count("error"), retry.skipped) == (2, 2)
    assert "RuntimeError: boom" in retry.ran[0]["error"]


def test_subprocess_timeout_is_a_status() -> None:
    p = expand([{"rule": "tp", "net": "20-16-4", "batch": 4, "steps": 3}])[0]
    row = run_subprocess(p, Protocol(timeout=0.2, rss=False))
    assert row["status"] == "timeout" and "0.2 s" in row["error"]


def test_cuda_request_without_gpu_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tpprof.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA device"):
        measure_point(cfg_small(), device="cuda", rss=False, factory=KnownLearner)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_subprocess_failure_becomes_an_error_row_with_one_line() -> None:
    p = expand([{"rule": "tp", "net": "20-16-4", "batch": 4, "steps": 3, "device": "cuda"}])[0]
    row = run_subprocess(p, Protocol(rss=False, repeats=1))
    assert row["status"] == "error" and row["error"].startswith("device: 'cuda' is not available")


def test_explain_peak_lists_the_blocks_live_at_the_peak() -> None:
    from tpprof.measure.attribution import explain_peak

    ex = explain_peak(cfg_small(), factory=KnownLearner, with_analytic=False)
    assert ex.peak_bytes - ex.baseline_bytes == 4 * 100 * 4  # the (B, 100) temporary
    ops = {(op, nb): n for op, nb, n in ex.blocks}
    # live at the peak and allocated in the window: the temporary and the new state (B, H)
    assert any(nb == 1600 and n == 1 for (_op, nb), n in ops.items())
    assert any(nb == 4 * H * 4 and n == 1 for (_op, nb), n in ops.items())
    assert "measured peak" in ex.render()
