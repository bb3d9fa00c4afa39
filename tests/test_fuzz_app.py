"""Property-based fuzz of the dashboard's free inputs under Streamlit's AppTest (hypothesis): the
Figure-5 net box, the device tab's budget box and the Measured tab's CSV upload. Whatever is typed or
uploaded, the page raises nothing (no traceback reaches the browser) and shows at most one error,
one line long."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_app_pages import _app, _no_shipped_data  # noqa: E402,F401  (the fixture: no shipped files)
from test_cli_fuzz import HOSTILE  # noqa: E402

SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


def _one_line_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) <= 1, [e.value for e in at.error]
    assert all("\n" not in e.value.strip() for e in at.error), [e.value for e in at.error]


@SETTINGS
@given(text=HOSTILE)
def test_figure5_net_box(text: str) -> None:
    at = _app()
    at.text_input(key="f5_net").set_value(text).run()
    _one_line_errors(at)


@SETTINGS
@given(text=HOSTILE)
def test_regimes_budget_box(text: str) -> None:
    at = _app("Device regimes")
    if at.radio(key="rg_src").options[0] != "typed budget":
        at.radio(key="rg_src").set_value("typed budget").run()
    at.text_input(key="rg_budget").set_value(text).run()
    _one_line_errors(at)


CSV_TEXT = st.one_of(
    st.sampled_from(["", "rule,net\n", 'rule,net\n"unclosed,' + "x" * 200_000 + "\n", "\x00\x01\x02",
                     "rule,net,batch\ntp,shd," + "9" * 5000 + "\n", "a,b\n1,2\n" * 50]),
    st.text(max_size=300))


@SETTINGS
@given(body=CSV_TEXT)
def test_measured_upload(body: str) -> None:
    at = _app("Measured vs analytic")
    at.get("file_uploader")[0].set_value(("x.csv", body.encode("utf-8", "surrogatepass"), "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert all("\n" not in e.value.strip() for e in at.error), [e.value for e in at.error]
