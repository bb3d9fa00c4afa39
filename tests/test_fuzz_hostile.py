"""Property-based fuzz of hostile *structure* (issue 23), beyond hostile values:

* the NIR reader on HDF5 files edited by a random plan (nesting, many objects, huge declared
  shapes, external storage, virtual datasets, external / soft / cyclic links, aliases, odd
  dtypes): it maps or refuses in one line, in bounded time, and never opens the other file
  (a FIFO watched as in test_nir_hostile.py);
* ``train --resume`` on a run folder whose checkpoint fields are replaced by random JSON, random
  tensors or random bytes: exit 0 or a one-line exit 2, never a traceback;
* the dashboard's upload folder with planted links, folders and files at the names it writes: it
  writes the upload inside its folder or refuses in one line, and never writes through a link;
  and the page with a hostile ``.nir`` upload shows at most one one-line error.

Examples are few and the deadline is set: this file stays under a minute on two cores.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")

from test_nir_hostile import FifoWatch  # noqa: E402
from test_nir_io import _rec_graph  # noqa: E402

from tpprof.config import ConfigError, NetSpec, parse_net  # noqa: E402
from tpprof.errors import UserError  # noqa: E402

FAST = settings(max_examples=12, deadline=20_000, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])
DATASETS = ("tau", "r", "v_leak", "v_threshold", "v_reset")

# --- the NIR reader on hostile HDF5 structure -------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("nest"), st.integers(1, 60)),
    st.tuples(st.just("many"), st.sampled_from([3, 300, 20_001])),
    st.tuples(st.just("huge"), st.sampled_from(DATASETS), st.sampled_from([(10**8,), (10**5, 10**4), (4, 3 * 10**7),
                                                                          (0,), (1, 1, 1, 1, 1, 1)])),
    st.tuples(st.just("external"), st.sampled_from(DATASETS)),
    st.tuples(st.just("virtual"), st.sampled_from(DATASETS)),
    st.tuples(st.just("elink"), st.sampled_from(["/", "/data", "/node"])),
    st.tuples(st.just("soft"), st.sampled_from(["/", "/node", "/node/nodes", "/nope", "x/y"])),
    st.tuples(st.just("alias"), st.integers(1, 5)),
    st.tuples(st.just("cycle"), st.sampled_from(["/node", "/node/nodes", "/node/nodes/lif1"])),
    st.tuples(st.just("dtype"), st.sampled_from(DATASETS), st.sampled_from(["S3", "c16", "bool", "compound", "vlen"])),
    st.tuples(st.just("empty_group"), st.sampled_from(DATASETS)),
)


def _apply(f: "h5py.File", step: tuple, target: str, i: int) -> None:
    g = f["node/nodes/lif1"]
    kind = step[0]
    if kind == "nest":
        h = g.require_group(f"deep{i}")
        for _ in range(step[1]):
            h = h.create_group("g")
    elif kind == "many":
        h = g.require_group(f"many{i}")
        d = h.create_dataset("x", data=np.zeros(1))
        for i in range(step[1]):
            h[f"a{i}"] = d
    elif kind in ("huge", "external", "virtual", "dtype", "empty_group"):
        name = step[1]
        if name in g:
            del g[name]
        if kind == "huge":
            shape = step[2]
            g.create_dataset(name, shape=shape, dtype="f4", chunks=tuple(min(s, 64) or 1 for s in shape) if all(shape) else None)
        elif kind == "external":
            g.create_dataset(name, shape=(128,), dtype="u1", external=[(target, 0, 128)])
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=(128,), dtype="f8")
            layout[:] = h5py.VirtualSource(target, "data", shape=(128,))
            g.create_virtual_dataset(name, layout, fillvalue=0.5)
        elif kind == "empty_group":
            g.create_group(name)
        else:
            dt = step[2]
            if dt == "compound":
                g.create_dataset(name, data=np.zeros(128, dtype=[("a", "f4"), ("b", "i2")]))
            elif dt == "vlen":
                d = g.create_dataset(name, (128,), dtype=h5py.vlen_dtype(np.float32))
                d[0] = np.ones(3, np.float32)
            else:
                g.create_dataset(name, data=np.ones(128).astype(dt))
    elif kind == "elink":
        g[f"elink{i}"] = h5py.ExternalLink(target, step[1])
    elif kind == "soft":
        g[f"soft{i}"] = h5py.SoftLink(step[1])
    elif kind == "alias":
        for j in range(step[1]):
            g[f"alias{i}_{j}"] = g["tau"] if "tau" in g and isinstance(g.get("tau", getlink=True), h5py.HardLink) \
                and isinstance(g["tau"], h5py.Dataset) else g.create_dataset(f"ds{i}_{j}", data=np.ones(2))
    elif kind == "cycle":
        g[f"up{i}"] = f[step[1]]


def _hostile_nir(folder: Path, plan: list[tuple], target: str) -> Path:
    p = folder / "h.nir"
    nir.write(p, _rec_graph())
    with h5py.File(p, "a") as f:
        for i, step in enumerate(plan):
            try:
                _apply(f, step, target, i)
            except (ValueError, KeyError, TypeError, OSError, RuntimeError):  # a step h5py refuses to write
                pass
    return p


@FAST
@given(plan=st.lists(STEP, min_size=1, max_size=4))
def test_nir_reader_on_hostile_structure(plan):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = _hostile_nir(folder, plan, str(folder / "other"))  # the other file does not exist yet
        watch = FifoWatch(folder / "other")  # now it does: only the reader could open it
        t0 = time.perf_counter()
        try:
            net = parse_net(str(path))
            assert isinstance(net, NetSpec)
        except ConfigError as e:
            assert "\n" not in str(e)
        assert time.perf_counter() - t0 < 10, plan
        assert not watch.opened(), f"the reader opened the other file: {plan}"
        if any(s[0] in ("external", "virtual", "elink", "soft", "cycle") for s in plan):
            with pytest.raises(ConfigError):  # these are refused whatever else the plan did
                parse_net(str(path))


# --- resume folders -----------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=8)
TENSOR = st.builds(lambda n, k: __import__("torch").zeros(n, dtype=k),
                   st.integers(0, 6000), st.sampled_from(["uint8", "float32", "int64"]).map(
                       lambda k: getattr(__import__("torch"), k)))
EDIT = st.one_of(
    st.tuples(st.just("resume_json"), st.sampled_from(["history", "rng_state", "seed", "epochs_planned",
                                                       "data_identity"]), JSON),
    st.tuples(st.just("field"), st.sampled_from(["resume_json", "meta_json", "config_json"]), JSON.map(json.dumps)),
    st.tuples(st.just("tensor"), st.sampled_from(["torch_rng_state"]), TENSOR),
    st.tuples(st.just("state"), st.sampled_from(["state_dict", "optimizer_state"]),
              st.dictionaries(st.sampled_from(["W_out", "layers.0.W", "x"]), TENSOR, max_size=2)),
    st.tuples(st.just("bytes"), st.sampled_from(["model.pt", "metrics.json"]), st.binary(max_size=64)),
    st.tuples(st.just("truncate"), st.just("model.pt"), st.floats(0.0, 0.99)),
)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    pytest.importorskip("torch")
    from test_resume_hostile import _npz  # the same data as the interrupted 1-of-2-epoch run there

    from tpprof.config import make_config
    from tpprof.data.select import load_train_test
    from tpprof.train import fit

    d = tmp_path_factory.mktemp("fz")
    data = _npz(d / "d.npz")
    train, test, spec = load_train_test(str(data), "digit", seed=0)
    spec["limit"] = None
    cfg = make_config("12-16-3", "tp", batch=8, classes=train.classes, steps=train.steps)

    def stop(row):  # noqa: ANN001
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, train, test, epochs=2, seed=0, out_dir=d / "run", progress=False, meta=spec, on_epoch=stop)
    return data, d / "run"


def _edited(run_dir: Path, dest: Path, edit: tuple) -> None:
    import shutil

    import torch

    shutil.copytree(run_dir, dest)
    kind, name, value = edit
    if kind == "bytes":
        (dest / name).write_bytes(value)
        return
    if kind == "truncate":
        data = (dest / name).read_bytes()
        (dest / name).write_bytes(data[: int(len(data) * value)])
        return
    ck = torch.load(dest / "model.pt", weights_only=True)
    if kind == "resume_json":
        info = json.loads(ck["resume_json"])
        info[name] = value
        ck["resume_json"] = json.dumps(info)
    else:
        ck[name] = value
    torch.save(ck, dest / "model.pt")


@settings(max_examples=10, deadline=30_000, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(edit=EDIT)
def test_resume_folder_fuzz(run_folder, capsys, edit):
    from tpprof.cli import main

    data, run_dir = run_folder
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run"
        _edited(run_dir, out, edit)
        capsys.readouterr()
        rc = main(["train", "--data", str(data), "--net", "12-16-3", "--batch", "8", "--threads", "1",
                   "--no-progress", "--epochs", "2", "--out", str(out), "--resume"])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert rc in (0, 2), (rc, err)
        if rc == 2:
            lines = [ln for ln in err.splitlines() if "error" in ln]
            assert len(lines) == 1, err


# --- the dashboard's upload folder ------------------------------------------------------------

PLANT = st.lists(st.tuples(st.sampled_from(["final", "tmp", "other"]), st.sampled_from(["link", "dir", "file"])),
                 max_size=3)


@settings(max_examples=25, deadline=5_000)
@given(data=st.binary(max_size=256), plants=PLANT, mode=st.sampled_from([0o700, 0o755, 0o777]))
def test_upload_folder_fuzz(data, plants, mode):
    import hashlib
    import threading

    from tpprof.app import uploads

    with tempfile.TemporaryDirectory() as d:
        old = tempfile.tempdir
        tempfile.tempdir = d
        uploads._FOLDER = None
        try:
            victim = Path(d) / "victim"
            victim.write_bytes(b"keep")
            folder = uploads.upload_folder()
            final = folder / (hashlib.sha256(data).hexdigest() + ".nir")
            names = {"final": final, "tmp": folder / f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp",
                     "other": folder / "other"}
            for where, kind in plants:
                p = names[where]
                if p.exists() or p.is_symlink():
                    continue
                if kind == "link":
                    p.symlink_to(victim)
                elif kind == "dir":
                    p.mkdir()
                else:
                    p.write_bytes(b"planted")
            os.chmod(folder, mode)
            try:
                got = uploads.save_upload(data, ".nir", 1000)
            except UserError as e:
                assert "\n" not in str(e)
            else:
                assert got.read_bytes() == data and not got.is_symlink()
                assert got.parent.parent == Path(d)
                assert os.lstat(got.parent).st_mode & 0o077 == 0
            assert victim.read_bytes() == b"keep"
        finally:
            tempfile.tempdir = old
            uploads._FOLDER = None


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(plan=st.lists(STEP, min_size=1, max_size=3))
def test_app_upload_of_hostile_nir(plan):
    pytest.importorskip("streamlit")
    from test_app_pages import _app

    with tempfile.TemporaryDirectory() as d:
        path = _hostile_nir(Path(d), plan, str(Path(d) / "other"))
        watch = FifoWatch(Path(d) / "other")
        at = _app("Relative memory cost")
        at.get("file_uploader")[0].set_value(("h.nir", path.read_bytes(), "application/octet-stream")).run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.error) <= 1 and all("\n" not in e.value.strip() for e in at.error), [e.value for e in at.error]
        assert not watch.opened()
