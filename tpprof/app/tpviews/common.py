"""Shared pieces of the dashboard: cached table functions, bound widgets, figure + downloads."""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import streamlit as st

from tpprof import datafiles, plots, resources, views
from tpprof.analytic.devices import load_catalogue
from tpprof.cli.config_flags import config_from_values
from tpprof.config import DTYPE_BYTES, OPTIMIZERS, PRESETS, RULES, Config
from tpprof.errors import UserError

DTYPES: tuple[str, ...] = tuple(k for k in DTYPE_BYTES if k != "int8")
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)
NET_HELP = ("A preset (" + ", ".join(PRESET_NAMES) + ") or a net string: 700-450-20 (dense), 700-450r-20 "
            "(recurrent), 2x32x32-c64-c128p-10 (conv), vgg9:2x32x32. The readout is resized to C.")
#: Slider stops: a 1-2-5 series plus 1024, the gsc preset's batch (reachable as an end of a range).
RANGE_STEPS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 1024, 2000, 5000, 10000)
_BIND = {"bind": "query-params", "persist_state": "session"}
MAX_UPLOAD_MB: int = 20  # uploads above this are refused (also --server.maxUploadSize in `tpprof app`)

# --- cached doors into tpprof (pure in their arguments, so safe to cache) -----------------
figure5_frame = st.cache_data(max_entries=64, show_spinner="Computing G(C, B)…")(views.figure5_frame)
regime_frame = st.cache_data(max_entries=64, show_spinner="Computing the regime map…")(views.regime_frame)
breakdown_frame = st.cache_data(max_entries=256, show_spinner=False)(views.breakdown_frame)
inverse_frame = st.cache_data(max_entries=256, show_spinner=False)(views.inverse_frame)
scaling_frame = st.cache_data(max_entries=64, show_spinner="Computing the scaling sweep…")(views.scaling_frame)


def config(**values: Any) -> Config:
    """The page's Config from its widgets' values, built once through the CLI's own path
    (:func:`tpprof.cli.config_flags.config_from_values`: the same parsing, defaults and one-line errors)."""
    return config_from_values(**values)


def shipped_measurements() -> tuple[pd.DataFrame, list[tuple[str, int, str]], list[str]]:
    """Rows of the shipped measurements/ files (cached on the files' names, sizes and times)."""
    files = datafiles.shipped_measurement_files()
    return _load_measurements(tuple((str(f), f.stat().st_size, f.stat().st_mtime) for f in files))


@st.cache_data(max_entries=16, show_spinner=False)
def _load_measurements(files: tuple[tuple[str, int, float], ...]) -> tuple[pd.DataFrame, list, list[str]]:
    m = datafiles.load_measurements([f for f, _, _ in files])
    return m.rows, m.bad, m.files


@st.cache_data(max_entries=16, show_spinner=False)
def uploaded_measurements(name: str, data: bytes) -> tuple[pd.DataFrame, list[tuple[str, int, str]], list[str]]:
    m = datafiles.load_uploaded(name, data)
    return m.rows, m.bad, m.files


_compare_frame = st.cache_data(max_entries=32, show_spinner="Joining with the analytic model…")(views.compare_frame)


def compare_frame(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Measured rows of ``frames`` (shipped, uploaded) joined with the analytic model (cached)."""
    return _compare_frame(pd.concat(frames, ignore_index=True))


@st.cache_resource(show_spinner=False)
def prefetch() -> bool:
    """Join the shipped measurements with the model once per server process, after the first page
    is drawn (its elements have reached the browser by then): the join is the same for every
    session, and it would otherwise cost the first visit of the measured page ~0.1 s. Only a
    cache warm: a failure is left for that page to report."""
    try:
        rows, _, _ = shipped_measurements()
        if not rows.empty:
            compare_frame([rows])
    except Exception:  # noqa: BLE001 - the measured page shows whatever went wrong
        return False
    return True


def results() -> tuple[dict[str, pd.DataFrame], list[str]]:
    """docs/results/*.csv (cached on the folder and its files' sizes and times)."""
    folder = resources.results_dir()
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime) for f in sorted(folder.glob("*.csv"))) \
        if folder.is_dir() else ()
    return _load_results(str(folder), stamp)


@st.cache_data(max_entries=8, show_spinner=False)
def _load_results(folder: str, stamp: tuple) -> tuple[dict[str, pd.DataFrame], list[str]]:  # noqa: ARG001
    return datafiles.load_results(folder)


@st.cache_resource(show_spinner=False)
def catalogue() -> tuple[Any, ...]:
    try:
        return load_catalogue()
    except Exception as e:  # noqa: BLE001 - a broken catalogue must not take the app down
        st.warning(f"Device catalogue unavailable ({e}); type a budget instead.")
        return ()


@st.cache_resource(show_spinner=False)
def warm_up() -> bool:
    """Once per server process: build one tiny figure of every trace type (plotly creates its
    validators lazily on first use, ~100 ms per type, which would otherwise land on the first
    interaction that shows that type), then freeze the objects alive so far for the garbage
    collector."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2)
    fig.add_traces([go.Heatmap(z=[[0.0]]), go.Contour(z=[[0.0, 1.0], [1.0, 0.0]]), go.Bar(y=[1]),
                    go.Scatter(y=[1], error_y={"array": [0.1]})], rows=[1] * 4, cols=[1, 1, 2, 2])
    fig.add_hline(y=1)
    fig.to_json()
    # Move what exists now (the imported modules of Streamlit, pandas, plotly and tpprof: ~10⁵
    # objects) out of the collector's reach: a full collection scanned them all, ~80 ms landing
    # on whichever interaction happened to trigger it.
    gc.freeze()
    return True


@st.cache_resource(max_entries=64, show_spinner=False)
def figure(name: str, *args: Any, **kwargs: Any) -> Any:
    """``tpprof.plots.<name>(*args, **kwargs)``, built once per distinct table and options
    (building a plotly figure costs tens of ms; a rerun that changes nothing in it reuses it)."""
    return getattr(plots, name)(*args, **kwargs)


@st.cache_resource(show_spinner=False)
def default_device_name() -> str | None:
    """The catalogue device preselected on the regimes page: one whose budget cuts through the
    SHD net's (C, B) map (tpprof.views.informative_device)."""
    try:
        return views.informative_device().name
    except Exception:  # noqa: BLE001 - only a default; the first entry will do
        return None


@st.cache_resource(show_spinner=False)
def can_export() -> str | None:
    """None when static export works here, else the one-line reason."""
    try:
        plots.find_browser()
        return None
    except UserError as e:
        return str(e)


# --- widgets bound to the URL query --------------------------------------------------------


def select(label: str, options: Sequence[Any], key: str, default: Any = None, **kw: Any) -> Any:
    """A URL-bound select box. With a ``format_func`` the URL holds the shown label; a URL that
    names the option itself (``?f5_rows=classes``, as a user or a script writes it) is accepted
    too: on the first load it becomes the widget's value."""
    opts = list(options)
    index = opts.index(default) if default in opts else 0
    fmt = kw.get("format_func")
    if fmt is not None and key in st.query_params and key not in st.session_state:  # first load only
        by_key = {str(o): o for o in opts}
        if (given := st.query_params[key]) in by_key and given not in {fmt(o) for o in opts}:
            st.session_state[key] = by_key[given]  # the URL's seed (labels only) would drop it
    return st.selectbox(label, opts, index=index, key=key, **_BIND, **kw)


def net_input(key: str, default: str = "shd", label: str = "Net", upload_folded: bool = False) -> str:
    """The typed net, or the path of an uploaded ``.nir`` file (saved under its SHA-256, so an
    upload maps to one path and the cached tables are reused). A typed (URL-bound) text naming a
    ``.nir`` file is refused: the server opens only files that came through the uploader."""
    text = st.text_input(label, value=default, key=key, help=NET_HELP, **_BIND).strip()
    # folded: the uploader (~90 px tall) waits in an expander, so the page's chart starts higher
    with (st.expander("…or upload a .nir net") if upload_folded else contextlib.nullcontext()):
        up = st.file_uploader(f"…or upload a .nir file (at most {MAX_UPLOAD_MB} MB)", type=["nir"], key=f"{key}_nir",
                              max_upload_size=MAX_UPLOAD_MB,
                              help="A NIR graph exported by snnTorch, Norse, SpikingJelly, Lava-dl, Rockpool or "
                                   "Sinabs (tpprof export writes one too); it replaces the typed net")
    if up is not None:
        path = saved_upload(up.getvalue(), ".nir")
        _UPLOAD_NAMES[path] = str(up.name)[:120]
        return path
    return typed_net(text, default)


#: Saved upload path → the file name the user chose: titles and errors show the latter, never a
#: server folder or a hash (a figure title travels into every downloaded PNG/PDF).
_UPLOAD_NAMES: dict[str, str] = {}


def net_label(net: str) -> str:
    """How a net reads in a title: an uploaded file by the user's file name, else as typed."""
    return _UPLOAD_NAMES.get(net, net)


def user_words(text: str) -> str:
    """``text`` with every saved upload's path (or its hash name) replaced by the user's file name."""
    for path, name in _UPLOAD_NAMES.items():
        text = text.replace(path, name).replace(Path(path).name, name)
    return text


def typed_net(text: str, default: str) -> str:
    """``text`` unless it names a file (``*.nir``): then a one-line error and ``default``."""
    if text.lower().endswith(".nir"):
        st.error("net: a typed .nir path is not opened on the server (accepted: upload the .nir file "
                 "with the uploader below the box)")
        return default
    return text


def saved_upload(data: bytes, suffix: str) -> str:
    """``data`` as a file named by its SHA-256 in this process's private upload folder; its path
    (:mod:`tpprof.app.uploads`: mkdtemp 0700, owner checked, written without following links)."""
    from tpprof.app.uploads import save_upload

    return str(save_upload(data, suffix, MAX_UPLOAD_MB * 2**20))


def dtype_optimizer(prefix: str, unused: str | None = None, cols: Sequence[Any] | None = None) -> tuple[str, str]:
    """dtype and optimiser selects; ``unused`` (a reason) disables both and says why beside them
    (in their help only when ``cols``, two columns of the caller's row, are given)."""
    c1, c2 = cols if cols is not None else st.columns(2)
    with c1:
        dtype = select("dtype", DTYPES, f"{prefix}_dtype", "fp32", help=unused or "Element type of every tensor, e.g. fp32",
                       disabled=unused is not None)
    with c2:
        opt = select("Optimiser", OPTIMIZERS, f"{prefix}_opt", "adam", disabled=unused is not None,
                     help=unused or "Optimiser state per parameter: sgd 0, momentum 1, adam 2")
    if unused and cols is None:
        st.caption(unused)
    return dtype, opt


def range_slider(label: str, key: str, default: tuple[int, int], help: str) -> tuple[int, int]:
    lo, hi = st.select_slider(label, options=list(RANGE_STEPS), value=default, key=key, help=help, **_BIND)
    if lo == hi:
        hi = RANGE_STEPS[min(RANGE_STEPS.index(hi) + 1, len(RANGE_STEPS) - 1)]
    return int(lo), int(hi)


def rules_select(key: str, default: Sequence[str] = ("tp", "tess", "bptt"), label: str = "Rules") -> list[str]:
    chosen = st.multiselect(label, list(RULES), default=list(default), key=key,
                            format_func=lambda r: plots.RULE_LABELS.get(r, r), **_BIND,
                            help="Learning rules to compare (tpprof's full accounting)")
    return chosen or list(default)


# --- output --------------------------------------------------------------------------------


def show_figure(fig: Any, data: pd.DataFrame, stem: str) -> None:
    """The figure, then PNG / SVG / PDF (rendered on click) and CSV download buttons."""
    st.plotly_chart(fig, key=f"chart_{stem}", width="stretch", config={"displaylogo": False})
    cols = st.columns([1, 1, 1, 1, 4])
    reason = can_export()
    for col, fmt in zip(cols, plots.EXPORT_FORMATS):
        with col:
            st.download_button(fmt.upper(), data=_renderer(fig, fmt), file_name=f"{stem}.{fmt}",
                               mime={"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}[fmt],
                               key=f"dl_{stem}_{fmt}", disabled=reason is not None, help=reason or f"{stem}.{fmt}",
                               on_click="ignore")
    with cols[3]:
        st.download_button("CSV", data=lambda: data.to_csv(index=False), file_name=f"{stem}.csv", mime="text/csv",
                           key=f"dl_{stem}_csv", help=f"the data behind this figure ({len(data)} rows)",
                           on_click="ignore")


def _renderer(fig: Any, fmt: str) -> Callable[[], bytes]:
    return lambda: plots.figure_bytes(fig, fmt)


def guard(fn: Callable[[], None]) -> None:
    """Run a view; bad user input shows its one-line message instead of a traceback.

    Anything else (a bug, a too-large request, RecursionError, MemoryError) is caught too and shown
    as its type and message only: no stack trace or server path reaches the browser. Streamlit's
    control-flow exceptions (st.rerun / st.stop) derive from BaseException and pass through.
    """
    try:
        fn()
    except UserError as e:
        st.error(user_words(str(e)))
    except Exception as e:  # noqa: BLE001 - the guard must catch everything a view can raise
        msg = user_words(str(e).splitlines()[0][:300]) if str(e) else ""
        st.error(f"This view failed: {type(e).__name__}" + (f": {msg}" if msg else "")
                 + ". Change the settings, or report it with the URL of this page.")
