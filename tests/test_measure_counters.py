"""Counters checked on allocations whose sizes are known by construction."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tpprof.measure.counters import ProfilerCounter, SavedTensorTracker  # noqa: E402


def test_profiler_counter_exact_on_known_allocations() -> None:
    torch.set_num_threads(1)
    with ProfilerCounter() as pc:
        with pc.phase("a"):
            keep = torch.empty(1000, dtype=torch.float32)  # 4000 B, stays alive
        with pc.phase("b"):
            tmp = torch.empty(2500, dtype=torch.float64)  # 20000 B, freed inside the phase
            del tmp
            small = torch.empty(10, dtype=torch.int8)  # 10 B
            del small
    a, b = pc.stats("a"), pc.stats("b")
    assert (a.start_bytes, a.end_bytes, a.peak_bytes) == (0, 4000, 4000)
    # 4000 live + 20000 transient = 24000 at the peak; back to 4000 at the end
    assert (b.start_bytes, b.peak_bytes, b.end_bytes) == (4000, 24000, 4000)
    assert keep.numel() == 1000


def test_profiler_counter_ignores_frees_of_blocks_allocated_before() -> None:
    before = torch.empty(5000)  # allocated before the counter: not its business
    with ProfilerCounter() as pc:
        with pc.phase("p"):
            del before
            x = torch.empty(100)  # 400 B
    s = pc.stats("p")
    assert (s.start_bytes, s.peak_bytes, s.end_bytes) == (0, 400, 400)
    assert x.numel() == 100


def test_profiler_counter_unknown_phase() -> None:
    with ProfilerCounter() as pc:
        pass
    with pytest.raises(KeyError):
        pc.stats("nope")


def test_saved_tensor_tracker_counts_distinct_saved_storages() -> None:
    w = torch.ones(100, requires_grad=True)  # excluded: the learner's own parameter
    x = torch.ones(100)
    tr = SavedTensorTracker(exclude={w.untyped_storage().data_ptr()})
    with tr.active():
        h = w * x  # saves x (400 B) and w (excluded)
        z = h * h  # saves h twice: one storage (400 B)
        loss = z.sum()
    assert tr.live == 800 and tr.peak == 800
    loss.backward()
    del h, z, loss
    assert tr.live == 0 and tr.peak == 800


def test_a_point_needs_no_dynamo_and_its_row_no_torch() -> None:
    """A point's process measures without importing torch._dynamo (torch.profiler.profile's start
    does: ~1.2 s per point), and its row holds plain Python values only, so the grid's parent
    unpickles it without importing torch (a TorchVersion in the row cost the parent ~1 s)."""
    import subprocess
    import sys

    code = ("import sys, pickle, builtins; "
            "from tpprof.config import make_config; from tpprof.measure.protocol import measure_point; "
            "row = measure_point(make_config('20-8-4', 'tp', 2, None, 3), device='cpu', batches=1, repeats=1, "
            "warmup=1, rss=False, seed=0, threads=1); "
            "assert 'torch._dynamo' not in sys.modules, 'the memory window imported torch._dynamo'; "
            "bad = [k for k, v in row.items() if type(v).__module__ not in ('builtins',)]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
