"""Property-based fuzz of ``tpprof estimate`` and ``tpprof sweep`` flags (hypothesis): 0 tracebacks,
at most one error line, exit 0 or 2; and never a wrong exit 0 for a value no flag accepts (empty,
flag-like, NUL, non-ASCII digits in a count)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_fuzz import HOSTILE, _check, _run

FLAGS = {
    "estimate": (["estimate", "--net", "shd"], ["--net", "--rule", "--batch", "--classes", "--steps", "--dtype",
                                                "--optimizer", "--budget", "--device", "--accounting", "--config",
                                                "--target-rows", "--lr", "--tess-factors", "--train-s"]),
    "sweep": (["sweep", "--net", "shd", "--rule", "tp,tess"], ["--net", "--rule", "--batch", "--classes", "--steps",
                                                              "--dtype", "--budget", "--accounting", "--out"]),
}
NEVER_OK = st.sampled_from(["", " ", "--", "-x", "--net", "²", "٣", "1,,2", "\x00", "9" * 5000])


def _with(argv: list[str], flag: str, value: str) -> list[str]:
    argv = list(argv)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    return argv


@pytest.mark.parametrize("name", list(FLAGS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_value_never_crashes(tmp_path_factory, name, data) -> None:
    argv, flags = FLAGS[name]
    flag = data.draw(st.sampled_from(flags), label="flag")
    value = data.draw(HOSTILE, label="value")
    _check(_with(argv, flag, value), Path(tmp_path_factory.getbasetemp()))


@pytest.mark.parametrize("name", list(FLAGS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_value_no_flag_accepts_is_never_exit_0(tmp_path_factory, name, data) -> None:
    argv, flags = FLAGS[name]
    flag = data.draw(st.sampled_from([f for f in flags if f != "--train-s"]), label="flag")
    value = data.draw(NEVER_OK, label="value")
    rc, err = _run(_with(argv, flag, value), Path(tmp_path_factory.getbasetemp()))
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (flag, value, err[-400:])
