"""Property-based fuzz of ``tpprof finetune`` and ``tpprof report`` (hypothesis): whatever a user
types, exit 0, 1 or 2 with at most one error line, never a traceback; and a value no flag accepts
(empty, flag-like, NUL, Unicode digits, a 5,000-digit number) is never exit 0.

finetune runs on a tiny checkpoint trained in the fixture (the real FSDD recordings, skipped when
absent). report builds every table and figure but the static export (and its browser) is replaced by a stub:
the fuzz is about input handling, runs without Chromium, and a real export costs ~25 s per example
(test_report_cli.py runs it where Chromium is installed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_fuzz import HOSTILE, _check, _run
from test_fuzz_analytic import NEVER_OK, _with

from tpprof.data import fsdd
from tpprof.errors import UserError


def _fsdd_or_skip() -> Path:
    try:
        return fsdd.find_fsdd()
    except UserError:
        pytest.skip("FSDD recordings not found (shared/data/fsdd or $TPPROF_FSDD)")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = _fsdd_or_skip()
    out = tmp_path_factory.mktemp("ck")
    rc, err = _run(["train", "--data", "fsdd", "--data-dir", str(root), "--net", "40-16-10", "--epochs", "1",
                    "--limit", "100", "--holdout-speaker", "theo", "--threads", "1", "--no-progress", "--out", str(out)], out)
    assert rc == 0, err
    return out / "model.pt"


def _finetune_argv(ck: Path, out: Path) -> list[str]:
    return ["finetune", "--checkpoint", str(ck), "--data", "fsdd", "--data-dir", str(fsdd.find_fsdd()),
            "--speaker", "theo", "--shots", "1", "--epochs", "1", "--threads", "1", "--no-progress",
            "--out", str(out)]


# --epochs is left out: a valid large count fine-tunes for minutes (its bound: the test below)
FINETUNE_FLAGS = ["--checkpoint", "--data", "--task", "--data-dir", "--speaker", "--shots", "--lr",
                  "--seed", "--out", "--threads", "--backend"]
REPORT_FLAGS = ["--measurements", "--results", "--device", "--budget", "--out", "--net", "--size"]
#: Flags naming a file or folder: a Unicode or numeric name is a valid path there.
PATH_FLAGS = {"--checkpoint", "--data", "--data-dir", "--out", "--measurements", "--results"}
NEVER_OK_PATH = st.sampled_from(["", " ", "--", "-x", "--net", "\x00"])


def _never_ok(flag: str) -> st.SearchStrategy[str]:
    return NEVER_OK_PATH if flag in PATH_FLAGS else NEVER_OK


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_finetune_hostile_value_never_crashes(checkpoint, tmp_path_factory, data) -> None:
    base = Path(tmp_path_factory.getbasetemp())
    flag = data.draw(st.sampled_from(FINETUNE_FLAGS), label="flag")
    value = data.draw(HOSTILE, label="value")
    _check(_with(_finetune_argv(checkpoint, base / "ft"), flag, value), base)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_finetune_value_no_flag_accepts_is_never_exit_0(checkpoint, tmp_path_factory, data) -> None:
    base = Path(tmp_path_factory.getbasetemp())
    flag = data.draw(st.sampled_from(FINETUNE_FLAGS), label="flag")
    value = data.draw(_never_ok(flag), label="value")
    rc, err = _run(_with(_finetune_argv(checkpoint, base / "ft"), flag, value), base)
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (flag, value, err[-400:])


@pytest.fixture()
def no_export(monkeypatch):
    from tpprof import plots

    monkeypatch.setattr(plots, "figure_bytes", lambda fig, fmt, *size: b"stub")
    monkeypatch.setattr(plots, "find_browser", lambda: "/no/browser/needed")  # runs without Chromium too


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_report_hostile_value_never_crashes(no_export, tmp_path_factory, data) -> None:
    base = Path(tmp_path_factory.getbasetemp())
    flag = data.draw(st.sampled_from(REPORT_FLAGS), label="flag")
    value = data.draw(HOSTILE, label="value")
    argv = ["report", "--out", str(base / "rep")]
    if flag in ("--device", "--budget"):  # the two are exclusive: the fuzzed one alone
        argv += [flag, value]
    else:
        argv = _with(argv + ["--budget", "8MiB"], flag, value)
    _check(argv, base)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_report_value_no_flag_accepts_is_never_exit_0(no_export, tmp_path_factory, data) -> None:
    base = Path(tmp_path_factory.getbasetemp())
    flag = data.draw(st.sampled_from(REPORT_FLAGS), label="flag")
    value = data.draw(_never_ok(flag), label="value")
    rc, err = _run(["report", "--out", str(base / "rep"), flag, value], base)
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (flag, value, err[-400:])


@pytest.mark.parametrize("epochs", ["0", "10001", "9" * 25])
def test_finetune_epochs_out_of_range_is_one_line(checkpoint, tmp_path, epochs: str) -> None:
    rc, err = _run(_with(_finetune_argv(checkpoint, tmp_path / "ft"), "--epochs", epochs), tmp_path)
    assert rc == 2 and "epochs" in err and len(err.strip().splitlines()) == 1, err


def test_finetune_calls_its_evaluation_set_the_query_set(checkpoint, tmp_path) -> None:
    argv = [a for a in _finetune_argv(checkpoint, tmp_path / "ft") if a != "--no-progress"]
    rc, err = _run(argv, tmp_path)
    epoch_line = next(ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("epoch 1/1: loss"))
    assert rc == 0 and " query " in epoch_line and " test " not in epoch_line, epoch_line
