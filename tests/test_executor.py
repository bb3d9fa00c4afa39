"""Executors for measurement grids: the local one (default, no Ray import) and Ray (a local
instance, one fresh worker per point) give the same rows, time columns aside; resume works."""

from __future__ import annotations

import sys

import pytest

from tpprof.config import make_config
from tpprof.executor import LocalExecutor, make_executor, worker_pid
from tpprof.measure.grid import Point, Protocol, run_grid, run_in_process
from tpprof.store import load

TIME_KEYS = {"batch_s_median", "batch_s_min", "build_s", "ms_per_step", "step_ms_median", "wall_s", "timestamp",
             "cpu_s_median"}


def _points() -> list[Point]:
    return [Point(make_config("12-16-3", r, batch=2, steps=3), "12-16-3") for r in ("tp", "tess", "bptt")]


def _rows(path) -> dict:
    return {(r["rule"], r["net"]): {k: v for k, v in r.items() if k not in TIME_KEYS} for r in load(path).rows}


def test_local_executor_is_the_default_and_imports_no_ray(tmp_path):
    assert isinstance(make_executor(None), LocalExecutor) and isinstance(make_executor("local"), LocalExecutor)
    proto = Protocol(repeats=1, rss=False)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    run_grid(_points()[:1], a, proto, run_one=run_in_process, progress=False)
    run_grid(_points()[:1], b, proto, run_one=run_in_process, progress=False, executor=LocalExecutor())
    assert _rows(a) == _rows(b)
    import subprocess  # importing the executor module and the grid does not import ray

    r = subprocess.run([sys.executable, "-c", "import sys, tpprof.executor, tpprof.measure.grid; "
                        "print('ray' in sys.modules)"], capture_output=True, text=True)
    assert r.stdout.strip() == "False"


def test_local_pool_executor_runs_every_point():
    rows = list(LocalExecutor(jobs=2).imap(worker_pid, [1, 2, 3], None))
    assert sorted(r["point"] for r in rows) == [1, 2, 3]
    with pytest.raises(Exception, match="jobs"):
        LocalExecutor(jobs=0)


def test_ray_executor_matches_local(tmp_path):
    pytest.importorskip("ray")
    from tpprof.executor import RayExecutor

    proto = Protocol(repeats=1, rss=False)
    local, remote = tmp_path / "local.csv", tmp_path / "ray.csv"
    run_grid(_points(), local, proto, run_one=run_in_process, progress=False)
    ex = RayExecutor("local", init_kwargs={"num_cpus": 2})
    try:
        res = run_grid(_points()[:2], remote, proto, run_one=run_in_process, progress=False, executor=ex)
        assert len(res.ran) == 2
        res = run_grid(_points(), remote, proto, run_one=run_in_process, progress=False, executor=ex)  # resume
        assert res.skipped == 2 and len(res.ran) == 1
        pids = [r["pid"] for r in ex.imap(worker_pid, [1, 2, 3, 4], None)]
        assert len(set(pids)) == 4  # max_calls=1: a fresh worker process per point
    finally:
        ex.shutdown()
    a, b = _rows(local), _rows(remote)
    assert a.keys() == b.keys() and all(r["status"] == "ok" for r in b.values())
    for k in a:
        assert a[k] == b[k], k
