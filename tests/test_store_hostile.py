"""Results files under hostile conditions (issue 23: L1 and the smaller items): append refuses a
file whose last record does not parse; atomic writes give the mode a plain write gives; a killed
sweep's temporary file is removed by the next write; two concurrent ``measure`` runs on one file
measure each point once."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
import time
from pathlib import Path

import pytest

from test_store_schema import measurement_row
from tpprof import store
from tpprof.cli import main
from tpprof.errors import UserError


def _good(p: Path) -> None:
    store.append_row(p, measurement_row("tp", 10, 1000))


@pytest.mark.parametrize("tail", ['tp,"unclosed\n', 'tp,"' + "x" * 200_000 + '"\n'])
def test_l1_append_refuses_a_file_whose_last_record_does_not_parse(tmp_path, tail):
    p = tmp_path / "m.csv"
    _good(p)
    with p.open("a") as f:
        f.write(tail)
    before = p.read_bytes()
    with pytest.raises(UserError) as ei:
        store.append_row(p, measurement_row("tess", 10, 1000))
    assert "\n" not in str(ei.value) and "could not be read back" in str(ei.value)
    assert p.read_bytes() == before
    with pytest.raises(UserError):
        store.check_out_file(p)  # measure refuses it before measuring anything


def test_l1_measure_cli_refuses_before_measuring(tmp_path, capsys):
    p = tmp_path / "m.csv"
    _good(p)
    with p.open("a") as f:
        f.write('tp,"unclosed\n')
    rc = main(["measure", "--net", "12-16-3", "--rule", "tp", "--batch", "2", "--steps", "2", "--out", str(p),
               "--quiet"])
    out = capsys.readouterr()
    assert rc == 2 and "measured" not in out.out and "unclosed" in out.err


def test_appends_to_a_clean_file_still_work_and_are_cheap(tmp_path):
    p = tmp_path / "m.csv"
    for t in range(1, 40):
        store.append_row(p, measurement_row("tp", t, 1000))
    assert len(store.load(p).rows) == 39


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_atomic_write_gives_a_plain_writes_mode(tmp_path, mask):
    old = os.umask(mask)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        atom = store.atomic_write(tmp_path / "atom.txt", lambda t: t.write_text("x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(atom.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask


def test_atomic_write_keeps_an_existing_files_mode(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")
    os.chmod(p, 0o640)
    store.atomic_write(p, lambda t: t.write_text("new"))
    assert stat.S_IMODE(p.stat().st_mode) == 0o640 and p.read_text() == "new"


def test_a_killed_sweeps_tmp_file_is_removed_by_the_next_sweep(tmp_path, capsys):
    out = tmp_path / "grid.parquet"
    pytest.importorskip("pyarrow")
    dead = mp.get_context("fork").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    stale = tmp_path / f".grid.parquet.{dead.pid}.abc123.tmp"
    stale.write_bytes(b"\0" * 4096)  # what a SIGKILLed sweep left
    assert main(["sweep", "--net", "12-16-3", "--rule", "tp", "--batch", "2,4", "--out", str(out)]) == 0
    assert out.is_file() and not stale.exists()
    assert not list(tmp_path.glob(".*.tmp"))


# --- two concurrent measure runs ----------------------------------------------------------

def _fake_run_one(point, protocol):
    """A measured row for ``point`` (after a pause, so the two runs overlap) naming this process."""
    time.sleep(0.15)
    row = measurement_row("tp", 10, 1000)
    row.update(point.key_row())
    row["error"] = f"pid {os.getpid()}"
    return row


def _run(out: str, conn) -> None:
    from tpprof.measure.grid import Protocol, run_grid
    pts = _points()
    res = run_grid(pts, out, Protocol(repeats=1, rss=False), run_one=_fake_run_one, progress=False)
    conn.send((len(res.ran), res.busy, res.skipped))


def _points():
    from tpprof.config import make_config
    from tpprof.measure.grid import Point

    return [Point(make_config("12-16-3", "tp", batch=b, steps=2), "12-16-3") for b in range(1, 13)]


def test_two_concurrent_runs_measure_each_point_once(tmp_path):
    out = str(tmp_path / "m.csv")
    ctx = mp.get_context("fork")
    pipes = [ctx.Pipe() for _ in range(2)]
    procs = [ctx.Process(target=_run, args=(out, w)) for _, w in pipes]
    for p in procs:
        p.start()
    results = [r.recv() for r, _ in pipes]
    for p in procs:
        p.join(60)
    rows = store.load(out).rows
    keys = [store.point_key(r) for r in rows]
    assert len(keys) == len(set(keys)) == 12, results  # each point once
    assert sum(n for n, _, _ in results) == 12
    assert all(n + busy + skipped == 12 for n, busy, skipped in results), results
    assert len({r["error"] for r in rows}) == 2  # both runs did part of the work
    assert not (tmp_path / ".m.csv.lock").exists()  # the last run removed the claims file
