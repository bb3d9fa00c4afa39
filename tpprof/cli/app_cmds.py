"""``tpprof app`` (the Streamlit dashboard) and ``tpprof report`` (paper figures to a folder)."""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tpprof.errors import UserError

MAX_UPLOAD_MB = 20  # == tpprof.app.tpviews.common.MAX_UPLOAD_MB (that module imports streamlit)


def app_file() -> Path:
    """The dashboard's entry file, shipped inside the package (``tpprof/app/streamlit_app.py``)."""
    from tpprof.app import APP_FILE

    if not APP_FILE.is_file():
        raise UserError("app", f"{APP_FILE} does not exist", "a complete tpprof install (pip install .)")
    return APP_FILE


def _port(text: str) -> int:
    try:
        p = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (accepted: 1..65535, e.g. 8501)") from None
    if not 1 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"{p} is out of range (accepted: 1..65535, e.g. 8501)")
    return p


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$", re.ASCII)


def _address(text: str) -> str:
    """An address to bind: an IPv4/IPv6 address or a host name (RFC 1123 labels of letters, digits
    and inner hyphens, at most 253 characters), e.g. 127.0.0.1, ::1, localhost."""
    t = text.strip()
    accepted = "an IP address or host name, e.g. 127.0.0.1, 0.0.0.0, ::1, localhost"
    try:
        ipaddress.ip_address(t)
        return t
    except ValueError:
        pass
    name = t[:-1] if t.endswith(".") else t
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(lab) for lab in name.split(".")) \
            or name.rsplit(".", 1)[-1].isdigit():  # 999.1.1.1 or 1.2.3 is a bad IP, not a name
        shown = repr(t) if len(t) <= 40 else repr(t[:40]) + f"… ({len(t)} characters)"
        raise argparse.ArgumentTypeError(f"{shown} is not an address (accepted: {accepted})")
    return t


def app_command(port: int, address: str, headless: bool = True) -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard."""
    return [sys.executable, "-m", "streamlit", "run", str(app_file()),
            "--server.port", str(port), "--server.address", address,
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
            "--client.toolbarMode", "minimal",
            # no stack trace with server paths in the browser; uploads capped (the app states the cap)
            "--client.showErrorDetails", "none", "--server.maxUploadSize", str(MAX_UPLOAD_MB)]


def check_bind(address: str, port: int) -> None:
    """Fail in one line, before the server starts, when ``address:port`` cannot be served: a name
    that does not resolve, an address not on this machine, a port in use or not permitted (the
    server would print a traceback)."""
    import socket

    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise UserError("address", f"{address!r} does not resolve ({getattr(e, 'strerror', None) or e})",
                        "an address of this machine, e.g. 127.0.0.1 or localhost") from None
    family, kind, proto, _, sockaddr = infos[0]
    try:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(sockaddr)
    except OSError as e:
        raise UserError("address", f"cannot serve on {address}:{port} ({e.strerror or e})",
                        "an address of this machine and a free port, e.g. --address 127.0.0.1 --port 8502") from None


def run_app(args: argparse.Namespace) -> int:
    check_bind(args.address, args.port)
    cmd = app_command(args.port, args.address)
    sys.stderr.write(f"tpprof app: serving the dashboard at http://{args.address}:{args.port} (Ctrl-C stops)\n")
    env = dict(os.environ)
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    sys.stderr.flush()
    if os.name == "posix":  # become the server: Ctrl-C and kill reach it directly, no orphan left
        os.execve(cmd[0], cmd, env)
    try:  # pragma: no cover - non-POSIX
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:  # pragma: no cover
        return 0


class _LazyBar:
    """A progress bar drawn from the first finished figure on, after every input was checked, so
    an error before any work is the command's only line on stderr."""

    def __init__(self) -> None:
        self.bar: Any = None

    def tick(self, stem: str, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="figures", unit="fig", file=sys.stderr, leave=False)
        self.bar.set_postfix_str(stem)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _size_inches(text: str) -> tuple[int, int]:
    """``--size WxH`` in inches (e.g. 7x5, 3.5x2.6) → CSS pixels at 96 per inch."""
    from tpprof.config import parse_real

    parts = str(text).lower().replace("in", "").split("x")
    try:
        w, h = (parse_real(p.strip()) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        w = h = math.nan
    if not (1 <= w <= 40 and 1 <= h <= 40):
        shown = repr(text) if len(text) <= 30 else repr(text[:30]) + f"… ({len(text)} characters)"
        raise argparse.ArgumentTypeError(f"{shown} is not a page size (accepted: WxH in inches, each 1..40, "
                                         "e.g. 7x5 or 3.5x2.6)")
    return round(w * 96), round(h * 96)


def run_report(args: argparse.Namespace) -> int:
    from tpprof import report
    from tpprof.analytic.devices import resolve_budget

    device = resolve_budget(args.device, args.budget)
    # build_report checks this too; here it comes before the progress bar draws, so the error is one line
    if args.measurements and not Path(args.measurements).exists():
        raise UserError("measurements", f"{args.measurements!r} does not exist", "a .csv file or a folder of them")
    if args.results and not Path(args.results).is_dir():
        raise UserError("results", f"{args.results!r} is not a folder", "a folder with accuracy.csv, finetune.csv, ...")
    report.check_user_folders(args.measurements, args.results)
    bar = _LazyBar()
    try:
        items = report.build_report(args.out, measurements=args.measurements, results=args.results, device=device,
                                    progress=bar.tick, net=args.net, titles=not args.no_titles, size=args.size)
    finally:
        bar.close()
    out = Path(args.out)
    for it in items:
        print(f"{it.stem:<22} " + " ".join(p.name for p in it.files))
    print(f"index: {out / 'index.html'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app", help="open the dashboard (Figure 5, device regimes, scaling, measured vs analytic, training)",
        description="Start the Streamlit dashboard on this machine (headless; open the printed URL). "
        "Example: tpprof app --port 8501",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=_port, default=8501, help="TCP port to serve on, e.g. --port 8502 (default 8501)")
    p.add_argument("--address", type=_address, default="127.0.0.1",
                   help="address to bind, e.g. --address 127.0.0.1 (default: localhost only; 0.0.0.0 exposes it)")
    p.set_defaults(func=run_app)

    r = sub.add_parser(
        "report", help="export the paper figures (PDF, SVG, PNG + JSON provenance) and an index page",
        description="Write DIR/<figure>.{pdf,svg,png,json} and DIR/index.html for: figure5 (Figure-5 "
        "reproduction), figure5_full, regime_map, scaling, measured_vs_analytic and t_invariance (when "
        "measurements exist), accuracy, finetune, silhouette (when docs/results/ has them). Needs a Chromium "
        "browser for static export (apt-get install chromium). Example: tpprof report --out figures/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--out", required=True, help="output folder, created if absent, e.g. --out figures/")
    r.add_argument("--net", default="shd",
                   help="the net of figure5, figure5_full, regime_map and scaling: a preset or net string "
                        "(scaling needs a dense net, else it shows the SHD net's), e.g. --net nmnist (default shd)")
    r.add_argument("--no-titles", action="store_true",
                   help="draw no title in the figures (a paper's caption says it), e.g. --no-titles")
    r.add_argument("--size", type=_size_inches, default=None, metavar="WxH",
                   help="page size in inches, e.g. --size 3.5x2.6 for one column (default 7x5)")
    r.add_argument("--measurements", default=None,
                   help="measurement CSV or folder of them, e.g. --measurements measurements/ "
                   "(default: the shipped measurements/ folder)")
    r.add_argument("--results", default=None,
                   help="training results folder, e.g. --results docs/results (default: docs/results)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--device", default=None, help="catalogue device for the regime map, e.g. --device jetson-nano "
                   "(names: tpprof devices; default: one whose budget cuts through the SHD map)")
    g.add_argument("--budget", default=None, help="memory budget for the regime map instead, e.g. --budget 8MiB")
    r.set_defaults(func=run_report)
