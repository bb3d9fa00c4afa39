"""Hostile executor specs (issue 23, T6/H2, --dry-run): a malformed Ray address is a one-line error
before Ray is imported; an address nothing answers at is refused in seconds; while Ray's own
connect blocks (minutes, in native code), SIGTERM and SIGINT still end the run in one line with no
child left behind; ``measure --dry-run`` checks the executor too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpprof.cli import main
from tpprof.errors import UserError
from tpprof.executor import parse_executor

ROOT = Path(__file__).resolve().parents[1]
MEASURE = ["measure", "--net", "12-16-3", "--rule", "tp", "--batch", "2", "--steps", "2"]


@pytest.mark.parametrize("spec", ["ray::", "ray:", "ray:h:99999", "ray:-x:1", "ray:h:", "ray:[zz]:1", "rayx",
                                  "ray:ray://", "ray:a b:1"])
def test_malformed_specs_are_one_line_errors(spec, capsys, tmp_path):
    if spec == "ray:":
        assert parse_executor(spec) == ("ray", "local")  # "ray:" is plain "ray"
        return
    with pytest.raises(UserError) as ei:
        parse_executor(spec)
    assert "\n" not in str(ei.value)
    assert main([*MEASURE, "--executor", spec, "--out", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "m.csv").exists()


def test_dry_run_checks_the_executor(capsys):
    assert main([*MEASURE, "--dry-run", "--executor", "ray::"]) == 2
    assert "not HOST:PORT" in capsys.readouterr().err
    assert main([*MEASURE, "--dry-run", "--executor", "local"]) == 0
    assert "local executor" in capsys.readouterr().err


def test_unreachable_cluster_is_refused_in_seconds(capsys, tmp_path):
    pytest.importorskip("ray")
    t0 = time.perf_counter()
    assert main([*MEASURE, "--executor", "ray:127.0.0.1:1", "--out", str(tmp_path / "m.csv")]) == 2
    assert time.perf_counter() - t0 < 30
    err = capsys.readouterr().err
    assert "nothing answers at 127.0.0.1:1" in err and "Traceback" not in err


_BLOCKED = """
import sys, tpprof.executor as e
e._reachable = lambda address, timeout_s=5: None  # reachable by TCP, but Ray's connect never succeeds
from tpprof.cli import main
print("started", flush=True)
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_a_blocked_ray_connect(tmp_path, sig):
    """H2: before, SIGTERM and SIGINT were ignored for minutes (SIGKILL needed)."""
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    argv = [*MEASURE, "--executor", "ray:127.0.0.1:9", "--out", str(tmp_path / "m.csv")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _BLOCKED.format(argv=argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(8)  # into Ray's connect loop (it reports a failed connect every 5 s)
        assert proc.poll() is None, proc.stderr.read()
        kids = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(sig)
        rc = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = [ln for ln in proc.stderr.read().splitlines() if "tpprof" in ln]
    assert rc == 128 + sig, (rc, err)
    assert err == [f"tpprof: error: ray: interrupted while joining the Ray cluster at 127.0.0.1:9"], err
    time.sleep(0.5)
    assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]


def test_sigterm_while_ray_points_run_exits_in_one_line_without_orphans(tmp_path):
    """H2: a local Ray grid stopped by SIGTERM exits 143 with one line (not Ray's native stack
    dump and SIGABRT), and every process it started is gone. While it runs, every port of its
    process tree listens on loopback only (S2, seen from ``tpprof measure --executor ray``)."""
    from test_executor_ports import _loopback
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "m.csv"
    argv = ["measure", "--net", "12-16-3", "--rule", "tp,tess,bptt", "--batch", "2,4,8,16", "--steps", "2",
            "--executor", "ray", "--out", str(out), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "tpprof", *argv], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the first row is in: Ray and its workers run
        assert proc.poll() is None, proc.stderr.read()
        kids = psutil.Process(proc.pid).children(recursive=True)
        pids = {proc.pid} | {k.pid for k in kids}
        listening = [(c.laddr.ip, c.pid) for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in pids]
        assert listening and all(_loopback(ip) for ip, _ in listening), listening  # S2, from the CLI itself
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert rc == 128 + signal.SIGTERM, (rc, err[-500:])
    assert "SIGTERM received" not in err and [ln for ln in err.splitlines() if ln.strip()][-1].startswith("tpprof"), \
        err[-800:]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in kids):
        time.sleep(0.2)
    assert not [k.name() for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
