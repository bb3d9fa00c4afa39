"""train / evaluate inputs a user can get wrong: seeds, checkpoints with odd field types,
oversized models (refused with the figure before anything is allocated), --out paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tpprof.cli import main
from tpprof.config import make_config
from tpprof.errors import UserError
from tpprof.train import check_memory, check_seed


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TPPROF_CACHE", str(tmp_path_factory.getbasetemp() / "tpprof-cache"))


def _npz(path: Path, top_label: int = 2) -> Path:
    rng = np.random.default_rng(0)
    x = (rng.random((24, 5, 12)) < 0.2).astype(np.float32)  # (N, T, F)
    y = np.arange(24) % 3
    y[0] = top_label
    np.savez(path, x=x, y=y)
    return path


@pytest.mark.parametrize("seed", [-1, 2**32, 10**23, True, "1"])
def test_seed_bounds(seed) -> None:  # noqa: ANN001
    with pytest.raises(UserError, match="seed"):
        check_seed(seed)


def test_seed_cli_is_one_line(tmp_path, capsys) -> None:
    d = _npz(tmp_path / "d.npz")
    assert main(["train", "--data", str(d), "--net", "12-16-3", "--epochs", "1", "--seed", "-1",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tpprof train: error: seed:") and "\n" not in err


def test_oversized_model_is_refused_with_the_figure() -> None:
    cfg = make_config("12-4096-10", "tp", batch=1024, classes=2_000_000, steps=5)
    with pytest.raises(UserError, match=r"needs about .* is available"):
        check_memory(cfg, "data", available=1 << 30)
    check_memory(make_config("12-16-3", "tp", batch=8, classes=3, steps=5), available=1 << 30)  # fits


def test_label_beyond_the_class_cap_is_one_line(tmp_path, capsys) -> None:
    d = _npz(tmp_path / "d.npz", top_label=10**9)
    assert main(["train", "--data", str(d), "--net", "12-16-3", "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "classes" in err and "10^7" in err and "\n" not in err


@pytest.mark.parametrize("out", ["", "afile"])
def test_train_out_empty_or_a_file(tmp_path, capsys, monkeypatch, out) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    d = _npz(tmp_path / "d.npz")
    assert main(["train", "--data", str(d), "--net", "12-16-3", "--epochs", "1", "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert "out:" in err and "\n" not in err
    assert not (tmp_path / "metrics.json").exists()  # '' never means the current folder


@pytest.mark.parametrize("field,value", [("meta_json", json.dumps([1, 2])), ("meta_json", json.dumps({"seed": "abc"})),
                                         ("meta_json", json.dumps({"data": [1]})), ("state_dict", [1, 2]),
                                         ("config_json", 7)])
def test_checkpoints_with_odd_field_types(tmp_path, capsys, field, value) -> None:
    import torch

    d = _npz(tmp_path / "d.npz")
    assert main(["train", "--data", str(d), "--net", "12-16-3", "--batch", "8", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "r")]) == 0
    ck = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    ck[field] = value
    bad = tmp_path / "bad.pt"
    torch.save(ck, bad)
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(bad), "--data", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tpprof evaluate: error: checkpoint:") and "\n" not in err


def test_shd_string_labels_and_huge_steps_are_one_line(tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    from tpprof.data.shd import load_shd

    p = tmp_path / "s.h5"
    with h5py.File(p, "w") as f:
        t = f.create_dataset("spikes/times", (4,), dtype=h5py.vlen_dtype(np.float32))
        u = f.create_dataset("spikes/units", (4,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(4):
            t[i] = np.array([0.1, 0.5], np.float32)
            u[i] = np.array([1, 2], np.uint16)
        f.create_dataset("labels", data=np.array([b"a", b"b", b"a", b"b"]))
    with pytest.raises(UserError, match="labels of type"):
        load_shd(p)
    with pytest.raises(UserError, match="steps"):
        load_shd(p, steps=10**9)
