"""Dashboard server time: first render and per-interaction, measured with Streamlit's AppTest.

AppTest runs the app script in this process exactly as the server does for a browser session
(widgets, cached table functions, figure serialisation into the page's messages), without the
network and the browser's own drawing. Goals on the 2-core machine: first render ≤ 2 s, interaction
median ≤ 100 ms, max ≤ 200 ms.

    python bench/bench_app.py            # 3 fresh processes; median per step, then a summary
    python bench/bench_app.py --once     # one process, one line per step

"First render" is a fresh session in a fresh process (cold caches, imports included: the
analytic model, pandas, plotly). Each interaction changes one widget to a value not seen
before in this process, so its cached tables are computed, not replayed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "tpprof" / "app" / "streamlit_app.py")


def once() -> dict[str, float]:
    """One fresh session: first render, then each interaction; seconds per step."""
    os.environ.setdefault("TPPROF_RESULTS_DIR", tempfile.mkdtemp())  # the shipped folder, or none
    t0, c0 = time.perf_counter(), time.process_time()
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    first = time.perf_counter() - t0
    first_cpu = time.process_time() - c0
    assert not at.exception, at.exception
    out = {"first render (cold process, imports included)": first}

    times: list[float] = []
    cpu: dict[str, float] = {}
    steps = [
        ("Figure 5: accounting -> full", lambda: at.selectbox(key="f5_acc").set_value("full")),
        ("Figure 5: net -> 700-256-256-20", lambda: at.text_input(key="f5_net").set_value("700-256-256-20")),
        ("Figure 5: dtype -> fp16", lambda: at.selectbox(key="f5_dtype").set_value("fp16")),
        ("Figure 5: accounting -> paper+s", lambda: at.selectbox(key="f5_acc").set_value("paper+s")),
        ("Figure 5: classes range -> 10..10000", lambda: at.select_slider(key="f5_c").set_value((10, 10000))),
        ("tab -> Device regimes", lambda: at.session_state.__setitem__("page", "Device regimes")),
        ("Regimes: optimiser -> sgd", lambda: at.selectbox(key="rg_opt").set_value("sgd")),
        ("Regimes: net -> shd-rec", lambda: at.selectbox(key="rg_preset").set_value("shd-rec")),
        ("Regimes: C -> 300", lambda: at.number_input(key="rg_pc").set_value(300)),
        ("Regimes: budget -> typed (8MiB)", lambda: at.radio(key="rg_src").set_value("typed budget")),
        ("tab -> Scaling", lambda: at.session_state.__setitem__("page", "Scaling")),
        ("Scaling: sweep -> width", lambda: at.radio(key="sc_var").set_value("width")),
        ("Scaling: sweep -> steps", lambda: at.radio(key="sc_var").set_value("steps")),
        ("Scaling: batch -> 32", lambda: at.number_input(key="sc_bs").set_value(32)),
        ("tab -> Measured vs analytic", lambda: at.session_state.__setitem__("page", "Measured vs analytic")),
        ("tab -> Training", lambda: at.session_state.__setitem__("page", "Training")),
        ("tab -> Relative memory cost (cached)", lambda: at.session_state.__setitem__("page", "Relative memory cost")),
    ]
    for name, act in steps:
        act()
        t, c = time.perf_counter(), time.process_time()
        at.run()
        dt = time.perf_counter() - t
        cpu[name] = time.process_time() - c
        times.append(dt)
        bad = [e.value for e in at.exception] + [e.value for e in at.error]
        if bad:
            raise SystemExit(f"{name}: {bad}")
        out[name] = dt
    cpu = {"first render (cold process, imports included)": first_cpu, **cpu}
    return {"wall": out, "cpu": cpu}


def main() -> int:
    if "--once" in sys.argv:
        print(json.dumps(once()))
        return 0
    runs = []
    for _ in range(3):  # fresh processes: every run starts with cold caches
        r = subprocess.run([sys.executable, __file__, "--once"], capture_output=True, text=True, check=True)
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of {len(runs)} fresh processes (1-min load average now {load:.1f} on {os.cpu_count()} cores); "
          "wall = elapsed, cpu = this process's CPU time (what the server did, whatever else runs)")
    keys = list(runs[0]["wall"])
    wall = {k: statistics.median(r["wall"][k] for r in runs) for k in keys}
    cpu = {k: statistics.median(r["cpu"][k] for r in runs) for k in keys}
    print(f"{'step':<48} {'wall ms':>8} {'cpu ms':>8}")
    for k in keys:
        print(f"{k:<48} {wall[k] * 1000:8.0f} {cpu[k] * 1000:8.0f}")
    first = keys[0]
    inter = keys[1:]
    for label, d in (("wall", wall), ("cpu", cpu)):
        v = [d[k] for k in inter]
        print(f"{label:>4}: first render {d[first]:.2f} s (goal <= 2 s); interactions n={len(v)} median "
              f"{statistics.median(v) * 1000:.0f} ms (goal <= 100 ms), max {max(v) * 1000:.0f} ms (goal <= 200 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
