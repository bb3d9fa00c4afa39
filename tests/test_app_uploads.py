"""The dashboard's files (issue 23, S3/S4): a typed (URL-bound) net naming a ``.nir`` path is never
opened on the server; uploads go into a private per-process folder (mkdtemp, 0700, owner checked)
and are written without following links."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from tpprof.app import uploads
from tpprof.errors import UserError


@pytest.fixture(autouse=True)
def _fresh_folder(monkeypatch):
    monkeypatch.setattr(uploads, "_FOLDER", None)


def test_folder_is_private_and_per_process(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shared = tmp_path / "tpprof-uploads"  # the old shared, predictable folder, planted by someone else
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    p = uploads.save_upload(b"abc", ".nir", 100)
    folder = p.parent
    st = os.lstat(folder)
    assert folder != shared and folder.parent == tmp_path and folder.name.startswith("tpprof-uploads-")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
    assert p.read_bytes() == b"abc" and not any(shared.iterdir())


def test_tampered_folder_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = uploads.upload_folder()
    os.chmod(first, 0o777)  # opened up to others: not used again
    second = uploads.save_upload(b"x", ".nir", 100).parent
    assert second != first and stat.S_IMODE(os.lstat(second).st_mode) == 0o700


def test_planted_link_at_the_final_name_is_not_written_through(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    data = b"uploaded bytes"
    final = uploads.upload_folder() / (hashlib.sha256(data).hexdigest() + ".nir")
    final.symlink_to(victim)
    p = uploads.save_upload(data, ".nir", 100)
    assert victim.read_bytes() == b"keep me"
    assert p == final and not p.is_symlink() and p.read_bytes() == data


def test_planted_file_of_the_same_size_at_the_final_name_is_replaced(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = b"uploaded"
    final = uploads.upload_folder() / (hashlib.sha256(data).hexdigest() + ".nir")
    final.write_bytes(b"planted!")  # same length, other bytes: not the cached upload
    assert uploads.save_upload(data, ".nir", 100).read_bytes() == data


def test_planted_link_at_the_temporary_name_is_refused(tmp_path, monkeypatch):
    import hashlib
    import threading

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    data = b"uploaded bytes"
    name = hashlib.sha256(data).hexdigest() + ".nir"
    tmp = uploads.upload_folder() / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.symlink_to(victim)
    with pytest.raises(UserError) as ei:
        uploads.save_upload(data, ".nir", 100)
    assert "\n" not in str(ei.value)
    assert victim.read_bytes() == b"keep me"


def test_size_and_suffix_are_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(UserError, match="too large"):
        uploads.save_upload(b"x" * 101, ".nir", 100)
    with pytest.raises(UserError, match="extension"):
        uploads.save_upload(b"x", "/../../x.nir", 100)


# --- the net box under Streamlit's AppTest ---------------------------------------------------

def _figure5(net: str):
    pytest.importorskip("streamlit")
    from test_app_pages import _app, _charts

    at = _app("Relative memory cost", f5_acc="full", f5_net=net)
    return at, _charts(at)


def test_typed_nir_path_is_not_opened_on_the_server(tmp_path):
    """A link ``?f5_net=/some/file.nir`` no longer opens that file, and an existing path reads
    the same as a missing one (no probing of the server's files)."""
    nir = pytest.importorskip("nir")
    from test_nir_io import _rec_graph

    path = tmp_path / "server.nir"
    nir.write(path, _rec_graph())
    at, charts = _figure5(str(path))
    _, missing_charts = _figure5(str(tmp_path / "missing.nir"))
    _, default_charts = _figure5("shd")
    assert not at.exception
    (err,) = [e.value for e in at.error]
    assert "\n" not in err and "not opened on the server" in err
    z = charts[0]["data"][0]["z"]
    assert str(z) == str(missing_charts[0]["data"][0]["z"]) == str(default_charts[0]["data"][0]["z"])
