"""The dashboard in a real browser: `tpprof app` (streamlit run) on loopback, headless Chromium, screenshot."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "tpprof" / "app" / "streamlit_app.py"


def _browser() -> str | None:
    """The browser the dashboard's own export would use (``BROWSER_PATH``, then ``PATH``): the
    test runs only where the server it starts can export too."""
    from tpprof.errors import UserError
    from tpprof.plots import find_browser

    try:
        return find_browser()
    except UserError:
        return None


CHROMIUM = _browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium browser on PATH (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    pytest.importorskip("tpprof.analytic.paper")
    port = _free_port()
    log = (tmp_path / "streamlit.log").open("w")
    # `tpprof app` replaces itself with `streamlit run tpprof/app/streamlit_app.py --server.headless true ...`,
    # so this covers the CLI command and the server in one process (terminate() reaches streamlit).
    proc = subprocess.Popen([sys.executable, "-m", "tpprof", "app", "--port", str(port), "--address", "127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=str(APP.parents[2]))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 40
    while time.time() < deadline:  # wait until the server accepts connections
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited: {(tmp_path / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_figure5_chart_renders_in_chromium(server, tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    artifacts = Path(os.environ.get("TPPROF_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "dashboard_figure5.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(server, timeout=30_000)
            # Streamlit renders client-side: wait for the plotly heatmap itself, not the page skeleton.
            page.wait_for_selector(".js-plotly-plot .heatmaplayer", timeout=60_000)
            page.wait_for_timeout(500)
            box = page.locator(".js-plotly-plot").first.bounding_box()
            assert box is not None and box["y"] < 1000 - 250, box  # the first screen shows the chart, not only controls
            title = page.locator(".js-plotly-plot .gtitle").first.text_content() or ""
            assert "G(C, B)" in title and "reconstructed" in title
            assert page.locator(".js-plotly-plot .contourlayer path").count() > 0  # the G = 1 line and contours
            assert page.get_by_text("Traceback").count() == 0
            page.screenshot(path=str(shot), full_page=True)
            # The figure's downloads: PNG rendered on click by the server, and the data as CSV.
            for label, head in (("PNG", b"\x89PNG"), ("CSV", b"classes,batch")):
                with page.expect_download(timeout=60_000) as dl:
                    page.get_by_role("button", name=label, exact=True).first.click()
                assert Path(dl.value.path()).read_bytes().startswith(head), label
        finally:
            browser.close()
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
