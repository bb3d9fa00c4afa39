"""Measurement files: schema validation by line number, crash-safe append, resume, merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpprof import store
from tpprof.errors import UserError
from tpprof.store import (
    CATEGORIES,
    FIELDNAMES,
    append_row,
    finished_keys,
    load,
    load_many,
    merge,
    point_key,
    validate_row,
    write_rows,
)


def ok_row(**kw):  # noqa: ANN001, ANN201
    r = dict(rule="tp", net="shd", net_string="700-450-20", depth=1, batch=128, classes=20, steps=100,
             dtype="fp32", optimizer="adam", cadence="step", aux="stored", device="cpu",
             counter="torch-profiler-cpu", peak_definition="max live", warmup_batches=1, batches=1,
             repeats=3, seed=0, threads=1, input_bytes=1000, input_saved_bytes=0, inventory_bytes=500, baseline_bytes=500,
             peak_bytes=900, transient_bytes=400, untracked_bytes=0, bytes_other=-4,
             batch_s_median=1.5, batch_s_min=1.4, ms_per_step=15.0, status="ok", error="",
             tpprof_version="0.1.0", torch_version="2.13.0", python_version="3.11", hardware="cpu",
             timestamp="2026-11-29T19:00:00Z")
    r.update({f"bytes_{c}": 0 for c in CATEGORIES})
    r.update(kw)
    return r


def test_roundtrip_types(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    append_row(p, ok_row())
    append_row(p, ok_row(steps=25, status="oom", peak_bytes=None, error="killed\nby signal 9"))
    res = load(p)
    assert res.bad == [] and len(res.rows) == 2
    r0, r1 = res.rows
    assert r0["peak_bytes"] == 900 and isinstance(r0["peak_bytes"], int)
    assert r0["batch_s_median"] == 1.5 and r0["bytes_other"] == -4  # bytes_other is signed
    assert r1["peak_bytes"] is None and r1["error"] == "killed by signal 9"  # one line per row
    assert p.read_text().splitlines()[0].split(",") == list(FIELDNAMES)


def test_bad_rows_reported_by_line_number(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    append_row(p, ok_row())
    append_row(p, ok_row(steps=50))
    lines = p.read_text().splitlines()
    bad_peak = lines[1].replace(",900,", ",lots,", 1)
    lines.insert(2, bad_peak)  # line 3: peak not an integer
    lines.append(lines[1].replace("torch-profiler-cpu", "x").replace(",ok,", ",maybe,"))  # line 5: status
    p.write_text("\n".join(lines) + "\n")
    res = load(p)
    assert len(res.rows) == 2
    assert [(line, prob.split(":")[0]) for _f, line, prob in res.bad] == [(3, "column peak_bytes"), (5, "status 'maybe' is not one of ok, oom, timeout, error, killed, does-not-fit")]
    with pytest.raises(UserError, match="line 3"):
        load(p, strict=True)


def test_torn_last_line_is_quarantined_and_append_continues(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    append_row(p, ok_row())
    full = p.read_text()
    torn = full.splitlines()[1][:40]
    p.write_text(full + torn)  # a crash mid-write: no final newline
    assert len(load(p).bad) == 1  # a loader that meets it reports it by line
    append_row(p, ok_row(steps=400))
    res = load(p)
    assert [r["steps"] for r in res.rows] == [100, 400] and res.bad == []
    assert (tmp_path / "c.csv.torn").read_text() == torn + "\n"  # kept aside, not lost


def test_validate_row_rules() -> None:
    with pytest.raises(ValueError, match="peak_bytes is below baseline_bytes"):
        validate_row(ok_row(peak_bytes=1), 7)
    with pytest.raises(ValueError, match="line 7: column peak_bytes is empty"):
        validate_row(ok_row(peak_bytes=None), 7)
    with pytest.raises(ValueError, match="rule 'sgd' is not known"):
        validate_row(ok_row(rule="sgd"), 7)
    with pytest.raises(ValueError, match="input_bytes: -1 is negative"):
        validate_row(ok_row(input_bytes=-1), 7)
    assert validate_row(ok_row(status="timeout", peak_bytes=None, baseline_bytes=None), 2)["status"] == "timeout"


def test_header_mismatch_and_missing_columns(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="different header"):
        append_row(p, ok_row())
    with pytest.raises(UserError, match="header lacks column"):
        load(p)


def test_resume_keys_and_merge(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    append_row(p, ok_row())
    append_row(p, ok_row(steps=25, status="error", peak_bytes=None, timestamp="2026-11-29T19:00:01Z"))
    assert finished_keys(p) == {point_key(ok_row()), point_key(ok_row(steps=25))}
    assert finished_keys(p, retry_failed=True) == {point_key(ok_row())}
    later_fail = ok_row(status="timeout", peak_bytes=None, timestamp="2026-11-29T20:00:00Z")
    newer_ok = ok_row(steps=25, peak_bytes=950, timestamp="2026-11-29T20:00:00Z")
    merged = merge(load(p).rows + [validate_row(later_fail, 0), validate_row(newer_ok, 0)])
    by_t = {r["steps"]: r for r in merged}
    assert by_t[100]["status"] == "ok" and by_t[25]["peak_bytes"] == 950
    q = tmp_path / "dir"
    write_rows(q / "merged.csv", merged)
    assert len(load_many(q).rows) == 2
    with pytest.raises(UserError, match="exists"):
        write_rows(q / "merged.csv", merged)


def test_readme_documents_every_column() -> None:
    readme = (Path(__file__).resolve().parents[1] / "measurements" / "README.md").read_text(encoding="utf-8")
    missing = [c for c in FIELDNAMES if f"`{c}`" not in readme]
    assert not missing


def measurement_row(rule: str, steps: int, peak: int) -> dict:
    """A valid ``ok`` measurement row of 700-32-10 (B=4, C=10) whatever columns the schema adds:
    every required column gets a neutral value of its kind, then the point's own values."""
    row = {c.name: ({"int": 0, "float": 0.0}.get(c.kind, "x") if c.required or c.ok_required else None)
           for c in store.COLUMNS}
    row.update(rule=rule, net="700-32-10", net_string="700-32-10", depth=1, batch=4, classes=10, steps=steps,
               dtype="fp32", optimizer="adam", cadence="step", aux="stored", device="cpu", status="ok",
               baseline_bytes=peak // 2, peak_bytes=peak, timestamp="2026-01-01T00:00:00Z")
    return {k: v for k, v in row.items() if k in store.FIELDNAMES}


def test_oversized_field_or_unclosed_quote_is_a_bad_row_not_a_crash(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    append_row(p, ok_row())
    with p.open("a") as f:
        f.write('tp,"' + "x" * 200_000 + "\n")
    res = load(p)
    assert len(res.rows) == 1 and len(res.bad) == 1 and "unreadable" in res.bad[0][2]
    with pytest.raises(UserError, match="unreadable"):
        load(p, strict=True)
