"""validate: ratios, summary, T-invariance and the BPTT linear fit, on a stub analytic model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpprof.analytic.terms import Breakdown, MemoryTerm
from tpprof.validate import linear_fit, t_invariance, validate_rows
from tpprof.store import CATEGORIES, append_row, load

from test_store_schema import ok_row  # noqa: E402  (tests/ is on sys.path under pytest)


def _term(name: str, category: str, nbytes: int, persistent: bool, phases: tuple[str, ...] = ()) -> MemoryTerm:
    return MemoryTerm(name, category, nbytes, nbytes, persistent, "test", phases=phases)


def stub_estimate(cfg, accounting="full"):  # noqa: ANN001, ANN201
    """A real Breakdown with hand-set terms: the peak phase is "update" (100 + saved > 99)."""
    assert accounting == "full"
    t = cfg.workload.steps
    saved = 10 * t if cfg.rule.name == "bptt" else 0
    terms = (_term("w", "weights", 400, True), _term("z", "loss_buffers", 100, False, ("update",)),
             _term("s", "saved", saved, False, ("update",)),
             _term("q", "implementation", 99, False, ("other",)))
    return Breakdown(cfg.rule.name, accounting, terms, (), ())


def row(rule: str, steps: int, peak: int, **kw):  # noqa: ANN003, ANN201
    r = ok_row(rule=rule, steps=steps, peak_bytes=peak, inventory_bytes=400, baseline_bytes=400,
               bytes_weights=400, **kw)
    r["bytes_saved"] = 10 * steps if rule == "bptt" else 0
    return r


def test_ratios_summary_and_flags() -> None:
    rows = [row("tp", 25, 500), row("tp", 400, 505), row("tess", 25, 520), row("tess", 400, 520)]
    v = validate_rows(rows, tolerance=0.02, estimate=stub_estimate)
    s = v.summary()
    # analytic peak = 400 + 100 = 500 for every TP/TESS point; errors 0, 1 %, 4 %, 4 %
    assert s["n_points"] == 4
    assert s["median_abs_error"] == pytest.approx(0.025) and s["max_abs_error"] == pytest.approx(0.04)
    assert s["out_of_tolerance"] == 2
    p0 = v.points[0]
    assert p0.categories["weights"] == {"measured": 400, "analytic": 400, "ratio": 1.0}
    assert p0.categories["rest"] == {"measured": 100, "analytic": 100, "ratio": 1.0}
    assert p0.categories["implementation"]["analytic"] == 0  # not live in the peak phase
    tinv = {t["rule"]: t["ratio"] for t in v.t_invariance}
    assert tinv == {"tp": pytest.approx(505 / 500), "tess": 1.0}
    json.dumps(v.to_dict())  # the --json document serialises


def test_bptt_linearity_and_skips() -> None:
    rows = [row("bptt", t, 500 + 10 * t) for t in (25, 100, 400)]
    rows.append(row("bptt", 50, None, status="oom"))
    v = validate_rows(rows, estimate=stub_estimate)
    (fit,) = v.bptt_linearity
    assert fit["steps"] == [25, 100, 400] and fit["r2"] == pytest.approx(1.0)
    assert fit["bytes_per_step"] == pytest.approx(10.0) and fit["intercept_bytes"] == pytest.approx(500.0)
    assert v.summary()["max_abs_error"] == pytest.approx(0.0)
    assert v.skipped == [("bptt shd B=128 T=50", "status oom")]


def test_linear_fit_r2_known_values() -> None:
    a, b, r2 = linear_fit([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0])
    # slope 0.8, intercept 1.3; residuals -0.3, 0.9, -0.9, 0.3 → SS_res = 1.8; SS_tot = 5 → R² = 0.64
    assert (a, b, r2) == (pytest.approx(1.3), pytest.approx(0.8), pytest.approx(0.64))


def test_t_invariance_needs_both_ends() -> None:
    assert t_invariance([row("tp", 25, 500), row("tp", 100, 500)]) == []


def test_cli_validate_json_with_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    import tpprof.validate as val
    from tpprof.cli import main

    p = tmp_path / "m.csv"
    for r in (row("tp", 25, 500), row("tp", 400, 500)):
        append_row(p, r)
    with p.open("a") as f:
        f.write("garbage,row\n")
    assert len(load(p).bad) == 1
    real = val.validate_rows
    monkeypatch.setattr(val, "validate_rows", lambda rows, **kw: real(rows, estimate=stub_estimate, **kw))
    assert main(["validate", "--measurements", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["median_abs_error"] == 0.0 and doc["summary"]["bad_rows"] == 1
    assert doc["bad_rows"][0]["line"] == 4
    assert set(doc["points"][0]["categories"]) == set(CATEGORIES) | {"rest"}
    assert main(["validate", "--measurements", str(p), "--tolerance", "0"]) == 2


def test_validate_text_explains_its_columns_and_categories(capsys) -> None:
    """`rest m/a` and the per-category rows are explained where they are printed, and every
    --categories block ends with how each side splits its rest."""
    from tpprof.cli import main

    assert main(["validate"]) == 0
    plain = " ".join(capsys.readouterr().out.split())
    assert "rest m/a = " in plain and "Per category" not in plain
    assert main(["validate", "--categories"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Per category" in out and "rest splits as: measured" in out
    assert " 1296000 " not in out  # sizes in one human format, not raw byte counts
