"""Hostile HDF5 *structure* in a ``.nir`` file (issue 23, S1/S5/H1): external raw storage, virtual
datasets, external and soft links, deep nesting, many objects, huge declared shapes. Each is refused
in one line before any data is read, and the other file is never opened: it is a FIFO the test owns,
watched by a thread blocked in ``open(O_WRONLY)``, which returns the moment anything opens the FIFO
for reading. The positive controls read the same files with ``nir.read`` (no pre-check) and see the
FIFO opened, so the watch can fail."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")

from test_nir_io import _rec_graph  # noqa: E402

from tpprof.cli import main  # noqa: E402
from tpprof.config import ConfigError, parse_net  # noqa: E402
from tpprof.hdf5_guard import HostileHDF5, Limits, check_hdf5_tree  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


class FifoWatch:
    """A FIFO at ``path`` and a thread that records whether anyone opened it for reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._t = threading.Thread(target=self._wait, daemon=True)
        self._t.start()

    def _wait(self) -> None:
        fd = os.open(self.path, os.O_WRONLY)  # blocks until a reader opens the FIFO
        os.close(fd)  # the reader then sees end of file

    def opened(self) -> bool:
        """Was the FIFO opened by a reader? Releases the watcher either way."""
        self._t.join(0.3)
        was = not self._t.is_alive()
        if not was:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            self._t.join(5)
            os.close(fd)
        return was


def _good(tmp: Path, name: str = "g.nir") -> Path:
    p = tmp / name
    nir.write(p, _rec_graph())
    return p


def _tau_remade(tmp: Path, name: str, make: Callable[[h5py.Group, tuple[int, ...]], object]) -> Path:
    """A good graph whose ``lif1/tau`` dataset is deleted and remade by ``make(group, shape)``."""
    p = _good(tmp, name)
    with h5py.File(p, "a") as f:
        g = f["node/nodes/lif1"]
        n = g["tau"].shape
        del g["tau"]
        make(g, n)
    return p


def _external_storage(tmp: Path, target: Path) -> Path:
    return _tau_remade(tmp, "ext.nir", lambda g, n: g.create_dataset("tau", shape=n, dtype="u1",
                                                                      external=[(str(target), 0, n[0])]))


def _virtual(tmp: Path, target: Path) -> Path:
    def make(g: h5py.Group, n: tuple[int, ...]) -> None:
        layout = h5py.VirtualLayout(shape=n, dtype="f8")
        layout[:] = h5py.VirtualSource(str(target), "data", shape=n)
        g.create_virtual_dataset("tau", layout, fillvalue=0.5)
    return _tau_remade(tmp, "vds.nir", make)


def _external_link(tmp: Path, target: Path) -> Path:
    p = _good(tmp, "elink.nir")
    with h5py.File(p, "a") as f:
        f["node/nodes/lif1/extra"] = h5py.ExternalLink(str(target), "/data")
    return p


HOSTILE = {"external storage": (_external_storage, "keeps its data in an external file"),
           "virtual dataset": (_virtual, "is a virtual dataset"),
           "external link": (_external_link, "is an external link to another file")}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_other_file_refused_in_one_line_and_never_opened(tmp_path, kind):
    make, fragment = HOSTILE[kind]
    (tmp_path / "owned").mkdir()
    watch = FifoWatch(tmp_path / "owned" / "target")
    path = make(tmp_path, watch.path)
    with pytest.raises(ConfigError) as ei:
        parse_net(str(path))
    opened = watch.opened()
    msg = str(ei.value)
    assert "\n" not in msg and fragment in msg, msg
    assert not opened, f"{kind}: the pre-check opened the other file"


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_control_unchecked_read_opens_the_other_file(tmp_path, kind):
    """Without the pre-check, ``nir.read`` does open the FIFO: the watch above can fail."""
    make, _ = HOSTILE[kind]
    watch = FifoWatch(tmp_path / "target")
    path = make(tmp_path, watch.path)
    try:
        nir.read(path, type_check=False)
    except Exception:  # noqa: BLE001 - the FIFO is empty: reading it may fail, opening it is the point
        pass
    assert watch.opened(), kind


def test_external_storage_of_a_readable_file_is_refused_by_the_cli(tmp_path, capsys):
    """The reported attack: τ read from a server file's bytes. Now exit 2, one line, no byte shown."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"v" * 4096)
    path = _external_storage(tmp_path, secret)
    assert main(["estimate", "--net", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "external file" in err and "118" not in err


def test_soft_links_refused(tmp_path):
    p = _good(tmp_path)
    with h5py.File(p, "a") as f:
        f["node/nodes/lif1/loop"] = h5py.SoftLink("/node")
    with pytest.raises(ConfigError, match="soft or user-defined link"):
        parse_net(str(p))


def _deep(path: Path, depth: int) -> None:
    with h5py.File(path, "w") as f:
        g = f.create_group("node")
        for i in range(depth):
            g = g.create_group("g")


def test_deep_nesting_refused_fast(tmp_path):
    """H1: depth 1,200 (117 s CPU before) is refused at the depth cap, in well under a second."""
    p = tmp_path / "deep.nir"
    _deep(p, 1200)
    t0 = time.process_time()
    with pytest.raises(ConfigError, match="nest deeper than"):
        parse_net(str(p))
    assert time.process_time() - t0 < 1.0


def test_walk_is_linear_in_depth(tmp_path):
    """The walk's time per level does not grow with depth (visititems re-resolved each full path)."""
    times = {}
    for d in (300, 1200):
        p = tmp_path / f"d{d}.h5"
        _deep(p, d)
        with h5py.File(p, "r") as f:
            t0 = time.perf_counter()
            check_hdf5_tree(f, "node", Limits(max_depth=10**6))
            times[d] = time.perf_counter() - t0
    # linear: ×4 depth ≈ ×4 time (2× slack, + 0.5 s for a busy machine; the quadratic walk took 117 s)
    assert times[1200] < 4 * times[300] * 2 + 0.5, times


def test_hard_link_cycle_is_bounded(tmp_path):
    p = _good(tmp_path)
    with h5py.File(p, "a") as f:
        f["node/nodes/lif1/up"] = f["node"]  # a hard link back to an ancestor: an infinite tree
    with pytest.raises(ConfigError, match="nest deeper than|more than"):
        parse_net(str(p))


def test_many_objects_refused(tmp_path):
    p = tmp_path / "many.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("node")
        d = g.create_dataset("x", data=np.zeros(1))
        for i in range(60):
            g[f"alias{i}"] = d  # hard links: each visit counts
    with h5py.File(p, "r") as f:
        check_hdf5_tree(f, "node", Limits(max_objects=61))
        with pytest.raises(HostileHDF5, match="more than 50 objects"):
            check_hdf5_tree(f, "node", Limits(max_objects=50))


def test_total_elements_capped_over_all_arrays(tmp_path):
    """S5: four unwritten 3·10^7-element arrays (each under the old per-array cap, 1.2·10^8 in all)
    in a file of a few KB are refused before anything is allocated."""
    p = _good(tmp_path)
    with h5py.File(p, "a") as f:
        g = f["node/nodes/lif1"]
        for name in ("tau", "r", "v_leak", "v_threshold"):
            del g[name]
            g.create_dataset(name, shape=(3 * 10**7,), dtype="f4", chunks=(4096,))
    assert p.stat().st_size < 1_000_000  # vs 480 MB declared
    with pytest.raises(ConfigError, match="elements"):
        parse_net(str(p))


def test_hard_link_aliases_count_each_visit(tmp_path):
    """One 4·10^7-element array linked three times is read three times by nir.read: refused."""
    p = _good(tmp_path)
    with h5py.File(p, "a") as f:
        g = f["node/nodes/lif1"]
        del g["tau"]
        g.create_dataset("tau", shape=(4 * 10**7,), dtype="f4", chunks=(4096,))
        g["r2"] = g["tau"]
        f["node/nodes/fc1/copy"] = g["tau"]
    with pytest.raises(ConfigError, match="elements"):
        parse_net(str(p))


def test_a_plain_nir_file_still_reads(tmp_path):
    net = parse_net(str(_good(tmp_path)))
    assert [layer.width for layer in net.layers] == [128]


# --- W2: graph values the chain walk did not check -------------------------------------------

def _w2_graphs() -> dict[str, tuple["nir.NIRGraph", str]]:
    from test_nir_io import _lif

    out = {}
    g = _rec_graph()
    g.edges.append(("out", "in"))
    out["output → input edge"] = (g, "a cycle")
    g = _rec_graph()
    g.nodes["lif1"] = _lif(128, r=np.full(128, -5.0))
    out["LIF r < 0"] = (g, "not positive")
    g = _rec_graph()
    g.nodes["lif1"] = _lif(128, r=np.zeros(128))
    out["LIF r = 0"] = (g, "not positive")
    g = _rec_graph()
    g.nodes["fc1"] = nir.Linear(weight=np.ones((128, 64)) * (1 + 2j))
    out["complex weights"] = (g, "is complex")
    g = _rec_graph()
    g.nodes["out"] = nir.Output(output_type=np.array([10**9]))
    out["Output of 10^9 over a 10-wide readout"] = (g, "declares 1000000000 outputs")
    g = _rec_graph()
    g.nodes["li"] = nir.I(r=np.full(10, np.nan))
    out["integrator r = NaN"] = (g, "NaN")
    g = _rec_graph()
    g.nodes["in"] = nir.Input(input_type=np.array([64.7]))
    out["input shape 64.7"] = (g, "not whole numbers")
    return out


@pytest.mark.parametrize("case", sorted(_w2_graphs()))
def test_w2_graph_values_are_refused(tmp_path, case, capsys):
    graph, fragment = _w2_graphs()[case]
    path = tmp_path / "g.nir"
    nir.write(path, graph)
    assert main(["estimate", "--net", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and fragment in err and "Traceback" not in err, err


def test_w2_lif_without_v_reset_reads_with_a_note(tmp_path):
    """NIR defines a missing v_reset as 0 (nir fills it in): mapped, but said, not silent."""
    from tpprof.nir_io import read_nir_net

    p = _good(tmp_path)
    with h5py.File(p, "a") as f:
        del f["node/nodes/lif1/v_reset"]
    net, notes = read_nir_net(p)
    assert [layer.width for layer in net.layers] == [128]
    assert any("lif1: no v_reset" in n for n in notes), notes
    _, plain = read_nir_net(_good(tmp_path, "plain.nir"))
    assert not any("v_reset" in n for n in plain)
