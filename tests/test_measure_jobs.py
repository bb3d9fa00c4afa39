"""``tpprof measure --jobs N``: every point in its own process forked from a zygote that imported
torch once; the rows equal the in-process ones (time columns aside); failures become rows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tpprof.config import make_config
from tpprof.measure.grid import Point, Protocol, run_forked, run_in_process
from tpprof.store import load

pytest.importorskip("torch")

TIME_KEYS = {"batch_s_median", "batch_s_min", "build_s", "ms_per_step", "step_ms_median", "wall_s", "timestamp",
             "rss_before_bytes", "rss_peak_bytes", "rss_delta_bytes", "cpu_s_median"}


def _point(rule: str = "tp") -> Point:
    return Point(make_config("12-16-3", rule, batch=2, steps=3), "12-16-3")


def test_forked_point_equals_in_process() -> None:
    proto = Protocol(repeats=1, rss=False)
    for rule in ("tp", "bptt"):
        a = run_forked(_point(rule), proto)
        b = run_in_process(_point(rule), proto)
        assert a["status"] == "ok", a.get("error")
        assert {k: v for k, v in a.items() if k not in TIME_KEYS} == {k: v for k, v in b.items() if k not in TIME_KEYS}


def test_forked_point_failures_are_rows() -> None:
    bad = Point(make_config("12-16-3", "tp", batch=2, steps=3), "12-16-3", device="cuda:7")
    row = run_forked(bad, Protocol(repeats=1, rss=False))
    assert row["status"] == "error" and "device" in row["error"]


def test_cli_jobs_runs_every_point_in_its_own_process(tmp_path) -> None:
    out = tmp_path / "m.csv"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "tpprof", "measure", "--net", "12-16-3", "--rule", "tp,tess,bptt", "--batch", "2",
           "--steps", "3", "--repeats", "1", "--no-rss", "--quiet", "--jobs", "2", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = load(out).rows
    assert sorted(x["rule"] for x in rows) == ["bptt", "tess", "tp"] and all(x["status"] == "ok" for x in rows)
    bad = subprocess.run(cmd[:-2] + ["--jobs", "0", "--out", str(out)], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "jobs" in bad.stderr and "Traceback" not in bad.stderr
