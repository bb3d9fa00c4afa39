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


def test_rows_record_the_interpreter_and_tpprof_that_measured_them(tmp_path):
    from pathlib import Path

    import tpprof

    out = tmp_path / "a.csv"
    run_grid(_points()[:1], out, Protocol(repeats=1, rss=False), run_one=run_in_process, progress=False)
    row = load(out).rows[0]
    assert row["python_executable"] == sys.executable
    assert row["tpprof_path"] == str(Path(tpprof.__file__).resolve().parent)
    assert row["tpprof_version"] == tpprof.__version__ and row["python_version"]


def test_workers_with_another_tpprof_are_refused_in_one_line():
    from tpprof.errors import UserError
    from tpprof.executor import check_same_tpprof, tpprof_identity

    me = tpprof_identity()
    check_same_tpprof(me, dict(me))  # the same: accepted
    for key, other in (("source", "0123456789ab"), ("tpprof", "0.0.9"), ("python", "3.9.1"), ("torch", "2.0.0")):
        with pytest.raises(UserError) as e:
            check_same_tpprof(me, dict(me, **{key: other}, path="/other/env/tpprof"))
        msg = str(e.value)
        assert "\n" not in msg and other in msg and "/other/env/tpprof" in msg and me["path"] in msg


def test_ray_failure_shows_the_authentication_cause():
    """The chain Ray 2.60 raises when a token-authenticated cluster refuses the driver (as seen
    against `RAY_AUTH_MODE=token ray start --head`): a ConnectionError that names only the
    address, caused by a RuntimeError holding a traceback as text."""
    from tpprof.executor import ray_failure_cause

    inner = RuntimeError(
        "Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
        '  File "python/ray/includes/common.pxi", line 119, in ray._raylet.check_status\n'
        "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token is missing or "
        "incorrect. Note: RAY_AUTH_MODE is currently 'disabled' (not 'token'). Ensure that the token ...\n")
    try:
        try:
            raise inner
        except RuntimeError as err:
            raise ConnectionError("Failed to connect to Ray cluster at 127.0.0.1:64123") from err
    except ConnectionError as e:
        cause = ray_failure_cause(e)
    assert cause == ("authentication failed: ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: "
                     "Authentication token is missing or incorrect.")
    assert ray_failure_cause(ValueError("no cluster\nat all")) == "ValueError: no cluster"


@pytest.mark.slow
def test_no_ray_process_outlives_a_killed_driver(tmp_path):
    """kill -9 of a driver that started a private Ray: the watchdog ends Ray's head processes
    (gcs_server, raylet, agents) and their workers within seconds."""
    pytest.importorskip("ray")
    import json
    import os
    import signal
    import subprocess
    import time

    import psutil

    script = (
        "import json, os, sys, time, psutil\n"
        "from tpprof.executor import RayExecutor\n"
        "ex = RayExecutor('local', init_kwargs={'num_cpus': 1})\n"
        "kids = [[p.pid, p.create_time()] for p in psutil.Process().children(recursive=True)\n"
        "        if p.pid != ex.watchdog.pid]\n"
        "print(json.dumps(kids), flush=True)\n"
        "time.sleep(600)\n")
    drv = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                           env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        line = drv.stdout.readline()
        kids = json.loads(line)
        assert kids, "Ray started no processes?"
    finally:
        os.kill(drv.pid, signal.SIGKILL)
        drv.wait()

    def alive(pid, t):
        try:
            p = psutil.Process(pid)
            return p.create_time() == t and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.time() + 30
    while time.time() < deadline and any(alive(p, t) for p, t in kids):
        time.sleep(0.5)
    left = [p for p, t in kids if alive(p, t)]
    for p in left:  # leave nothing behind even when the check fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"{len(left)} of {len(kids)} Ray processes outlived the driver"
