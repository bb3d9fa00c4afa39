"""Crash tests: kill -9 at several moments, and what is left is always usable.

Covered: the measurement child dies with its parent and by its own deadline; a user's kill -9
of a point is ``killed``, an allocation failure ``oom``; concurrent appenders write one
header; an appender killed at any moment leaves a file that resumes with no bad row;
:func:`tpprof.store.atomic_write` killed mid-write leaves the old file; ``train`` killed
mid-run resumes to the same result as an uninterrupted run and leaves no temporary file.
Each test is a few seconds (subprocesses that import torch are the slow part).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tpprof.errors import UserError
from tpprof.store import FIELDNAMES, append_row, atomic_write, clean_stale_tmp, finished_keys, load

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
posix_only = pytest.mark.skipif(os.name != "posix", reason="signals and flock are POSIX")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_store_schema import ok_row  # noqa: E402


def _py(code: str, *args: str, **kw) -> subprocess.Popen:  # noqa: ANN003
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=ENV, cwd=str(ROOT), **kw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its new parent) counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(cond, timeout: float = 20.0) -> bool:  # noqa: ANN001
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


# --- the measurement child -------------------------------------------------------------


@posix_only
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_point_process_dies_with_its_parent(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    parent = _py(f"""
        import subprocess, sys, os, time
        c = subprocess.Popen([sys.executable, "-c",
            "import os, sys, time; from tpprof.measure.protocol import tie_to_parent; "
            "tie_to_parent({{}}, 120); open({str(child_pid)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
            .format(os.getpid())], start_new_session=True)
        time.sleep(120)
    """)
    assert _wait_for(lambda: child_pid.is_file() and child_pid.read_text().strip() != "")
    pid = int(child_pid.read_text())
    parent.kill()  # kill -9 the parent
    parent.wait()
    assert _wait_for(lambda: not _alive(pid), 5.0), "the point's process outlived its parent"


@posix_only
def test_point_process_enforces_its_own_deadline() -> None:
    from tpprof.measure.grid import _classify

    t0 = time.time()
    p = _py("""
        import os, time
        from tpprof.measure.protocol import tie_to_parent
        tie_to_parent(os.getppid(), 1)
        time.sleep(60)
    """)
    rc = p.wait(timeout=30)
    assert rc == -signal.SIGALRM and time.time() - t0 < 15
    assert _classify(rc, "") == "timeout"


def test_failure_classification() -> None:
    from tpprof.measure.grid import EXIT_OOM, _classify

    assert _classify(-9, "", oom_kills=0) == "killed"  # a user's kill -9
    assert _classify(-9, "", oom_kills=None) == "killed"  # unknown: not called oom
    assert _classify(-9, "", oom_kills=1) == "oom"  # the kernel's OOM killer fired meanwhile
    assert _classify(-15, "") == "killed"
    assert _classify(EXIT_OOM, "") == "oom"
    assert _classify(1, "RuntimeError: [enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                        "can't allocate memory: you tried to allocate 68719476736 bytes.") == "oom"
    assert _classify(1, "ValueError: nope") == "error"


@posix_only
def test_user_kill9_of_a_point_is_killed_not_oom(tmp_path: Path) -> None:
    import psutil

    from tpprof.config import make_config
    from tpprof.measure.grid import Point, Protocol, run_subprocess

    point = Point(make_config("shd", "tp", 4, None, 5), "shd")
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(row=run_subprocess(point, Protocol(timeout=60, repeats=1))))
    t.start()
    me = psutil.Process()

    def point_child():  # noqa: ANN202 - the point's process, not another test's leftover
        for c in me.children():
            try:
                if "tpprof.measure.protocol" in " ".join(c.cmdline()):
                    return c
            except psutil.Error:
                continue
        return None

    assert _wait_for(lambda: point_child() is not None, 20)
    kid = point_child()
    time.sleep(0.3)
    os.kill(kid.pid, signal.SIGKILL)
    t.join(120)
    row = box["row"]
    assert row["status"] == "killed" and "SIGKILL" in row["error"], row


def test_out_folder_fails_before_any_point(tmp_path: Path) -> None:
    from tpprof.config import make_config
    from tpprof.measure.grid import Point, Protocol, run_grid

    calls = []
    pts = [Point(make_config("shd", "tp", 4, None, 5), "shd")]
    with pytest.raises(UserError, match="is a folder"):
        run_grid(pts, tmp_path, Protocol(), run_one=lambda p, pr: calls.append(p) or {}, progress=False)
    assert calls == []


# --- appends ----------------------------------------------------------------------------

_APPENDER = """
    import sys, time
    sys.path.insert(0, "tests")
    from test_store_schema import ok_row
    from tpprof.store import append_row
    path, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for i in range(start, start + n):
        append_row(path, ok_row(steps=i + 1, error="x" * 2000))
"""


@posix_only
def test_concurrent_appenders_write_one_header_and_whole_rows(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    procs = [_py(_APPENDER, str(p), str(k * 40), "40") for k in range(3)]
    for q in procs:
        assert q.wait(60) == 0
    lines = p.read_text().splitlines()
    assert sum(ln.startswith("rule,") for ln in lines) == 1 and lines[0].split(",") == list(FIELDNAMES)
    res = load(p)
    assert res.bad == [] and sorted(r["steps"] for r in res.rows) == list(range(1, 121))


@posix_only
@pytest.mark.parametrize("delay", [0.0, 0.35, 0.8])
def test_appender_killed_at_any_moment_resumes_without_bad_rows(tmp_path: Path, delay: float) -> None:
    p = tmp_path / "m.csv"
    append_row(p, ok_row(steps=100000))  # an existing file, as on a rerun
    q = _py(_APPENDER, str(p), "0", "100000")
    time.sleep(0.6 + delay)  # python start-up, then somewhere in the appends
    q.kill()
    q.wait()
    with p.open("ab") as f:  # and the worst case: torn mid-row, as a kill inside write() leaves it
        f.write(b"tp,shd,700-450-20,1,12")
    keys = finished_keys(p)
    res = load(p)
    assert res.bad == [] and len(keys) == len(res.rows) >= 1
    assert (tmp_path / "m.csv.torn").read_text().endswith("tp,shd,700-450-20,1,12\n")
    append_row(p, ok_row(steps=200001))
    assert load(p).bad == []


# --- atomic outputs ---------------------------------------------------------------------


@posix_only
def test_atomic_write_killed_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "sweep.csv"
    target.write_text("old,complete\n")
    started = tmp_path / "started"
    q = _py(f"""
        import time
        from pathlib import Path
        from tpprof.store import atomic_write
        def writer(tmp):
            with open(tmp, "w") as f:
                f.write("new,trunc")
                f.flush()
                Path({str(started)!r}).write_text("1")
                time.sleep(60)
        atomic_write({str(target)!r}, writer)
    """)
    assert _wait_for(started.is_file)
    q.kill()
    q.wait()
    assert target.read_text() == "old,complete\n"
    stale = list(tmp_path.glob(".sweep.csv.*.tmp"))
    assert len(stale) == 1
    assert clean_stale_tmp(tmp_path, "sweep.csv") == stale and not list(tmp_path.glob("*.tmp"))
    # and a failing writer leaves nothing behind
    with pytest.raises(ZeroDivisionError):
        atomic_write(target, lambda tmp: 1 / 0)
    assert target.read_text() == "old,complete\n" and not list(tmp_path.glob(".*.tmp"))


def test_atomic_write_into_a_folder_path_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises((UserError, IsADirectoryError, OSError)):
        atomic_write(tmp_path / "d", lambda tmp: tmp.write_text("x"))


# --- training -----------------------------------------------------------------------------


def _toy(n: int, seed: int):  # noqa: ANN202
    from tpprof.data import from_arrays

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    rate = np.full((n, 1, 12), 0.05)
    for i, k in enumerate(y):
        rate[i, 0, 4 * k:4 * k + 4] = 0.8
    return from_arrays((rng.random((n, 8, 12)) < rate).astype(np.float32), y, 3)


@pytest.mark.parametrize("net,trainable", [("12-16-3", "all"), ("12-16-8-3", "last:1")])  # a frozen layer 1
def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path: Path, net: str, trainable: str) -> None:
    import torch

    from tpprof.config import make_config
    from tpprof.train import fit, load_checkpoint, read_metrics

    torch.set_num_threads(1)
    train, test = _toy(64, 0), _toy(24, 1)
    cfg = make_config(net, "tp", batch=16, steps=8, lr=3e-3, trainable=trainable)
    full = fit(cfg, train, test, epochs=4, seed=3, out_dir=tmp_path / "a", progress=False)

    def stop_after_two(row):  # noqa: ANN001
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, train, test, epochs=4, seed=3, out_dir=tmp_path / "b", progress=False, on_epoch=stop_after_two)
    assert read_metrics(tmp_path / "b")["status"] == "interrupted"
    res = fit(cfg, train, test, epochs=4, seed=3, out_dir=tmp_path / "b", progress=False, resume=True)
    assert res["status"] == "done" and res["resumed_at_epoch"] == 2
    assert [h["test_accuracy"] for h in res["history"]] == [h["test_accuracy"] for h in full["history"]]
    _, sd_a, _ = load_checkpoint(tmp_path / "a" / "model.pt")
    _, sd_b, _ = load_checkpoint(tmp_path / "b" / "model.pt")
    for k in sd_a:
        assert torch.allclose(sd_a[k], sd_b[k], atol=1e-6), k
    with pytest.raises(UserError, match="resume"):
        fit(cfg, train, test, epochs=5, seed=3, out_dir=tmp_path / "b", progress=False, resume=True)
    with pytest.raises(UserError, match="resume"):
        fit(cfg, train, test, epochs=4, seed=3, out_dir=tmp_path / "nothing", progress=False, resume=True)


@posix_only
def test_train_killed_mid_run_reads_interrupted_and_resumes_clean(tmp_path: Path) -> None:
    out = tmp_path / "run"
    x = _toy(64, 0)
    np.savez(tmp_path / "d.npz", x=x.x, y=x.y)
    argv = ["train", "--data", str(tmp_path / "d.npz"), "--net", "12-16-3", "--batch", "8", "--epochs", "40",
            "--threads", "1", "--no-progress", "--out", str(out)]
    q = _py("import sys; from tpprof.cli import main; sys.exit(main(sys.argv[1:]))", *argv,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: (out / "model.pt").is_file(), 60)
    time.sleep(0.3)
    q.kill()  # kill -9 mid-run (mid-epoch or mid-save)
    q.wait()
    from tpprof.train import read_metrics

    m = read_metrics(out)
    assert m is not None and m["status"] in ("interrupted", "done")
    from tpprof.cli import main

    assert main(argv + ["--resume"]) == 0
    m2 = json.loads((out / "metrics.json").read_text())
    assert m2["status"] == "done" and m2["epochs"] == 40
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
