"""Resume folders and checkpoints under hostile edits (issue 23: T3, T4, W4): a tampered or
foreign resume state, metadata of the wrong type, or a resume on other data are one-line errors
(exit 2), never a traceback or a silent continue on a different training set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tpprof.cli import main  # noqa: E402

NET = ["--net", "12-16-3", "--batch", "8", "--threads", "1", "--no-progress"]


def _npz(path: Path, n: int = 48, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = (rng.random((n, 6, 12)) < 0.2).astype(np.float32)
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    """(data file, a finished 1-of-2-epoch run folder) to tamper copies of."""
    d = tmp_path_factory.mktemp("resume")
    data = _npz(d / "d.npz")

    def stop(row):  # noqa: ANN001
        raise KeyboardInterrupt

    from tpprof.config import make_config
    from tpprof.data.select import load_train_test
    from tpprof.train import fit

    train, test, spec = load_train_test(str(data), "digit", seed=0)
    spec["limit"] = None
    cfg = make_config("12-16-3", "tp", batch=8, classes=train.classes, steps=train.steps)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, train, test, epochs=2, seed=0, out_dir=d / "run", progress=False, meta=spec, on_epoch=stop)
    return data, d / "run"


def _argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), *NET, "--epochs", "2", "--out", str(out), "--resume", *extra]


def _copy_with(run_dir: Path, dest: Path, **changes) -> Path:
    import shutil

    shutil.copytree(run_dir, dest)
    ck = torch.load(dest / "model.pt", weights_only=True)
    info = json.loads(ck["resume_json"])
    for k, v in changes.items():
        if k in ("torch_rng_state", "state_dict", "optimizer_state", "meta_json"):
            ck[k] = v
        else:
            info[k] = v
    ck["resume_json"] = json.dumps(info)
    torch.save(ck, dest / "model.pt")
    return dest


def _exit_2_one_line(argv, capsys, fragment: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and fragment in err and "Traceback" not in err, err


def test_untampered_resume_finishes(run, tmp_path, capsys):
    data, run_dir = run
    out = _copy_with(run_dir, tmp_path / "ok")
    assert main(_argv(data, out)) == 0
    assert json.loads((out / "metrics.json").read_text())["status"] == "done"


@pytest.mark.parametrize("field,value,fragment", [
    ("history", "many", "history"),
    ("history", [{"epoch": "one"}], "history"),
    ("history", [{"epoch": 1, "test_accuracy": 0.5, "train_accuracy": 0.5, "train_seconds": 1.0}] * 2, "epochs 1, 2"),
    ("history", [{}] * 9, "history"),
    ("rng_state", "junk", "shuffling state"),
    ("rng_state", {"bit_generator": "MT19937", "state": 3}, "shuffling state"),
    ("torch_rng_state", torch.zeros(3, dtype=torch.uint8), "torch RNG state"),
    ("torch_rng_state", torch.zeros(5056, dtype=torch.float32), "torch RNG state"),
    ("state_dict", {"W_out": torch.zeros(2, 2)}, "weights"),
    ("optimizer_state", {}, "optimiser state"),
])
def test_t4_tampered_resume_state(run, tmp_path, capsys, field, value, fragment):
    data, run_dir = run
    out = _copy_with(run_dir, tmp_path / "bad", **{field: value})
    _exit_2_one_line(_argv(data, out), capsys, fragment)


def test_w4_resume_on_other_data_is_refused(run, tmp_path, capsys):
    data, run_dir = run
    _exit_2_one_line(_argv(data, _copy_with(run_dir, tmp_path / "a"), "--limit", "30"), capsys, "other data")
    other = _npz(tmp_path / "other.npz", seed=1)
    _exit_2_one_line(_argv(other, _copy_with(run_dir, tmp_path / "b")), capsys, "other data")
    moved = tmp_path / "moved.npz"  # the same data under another name still resumes
    moved.write_bytes(data.read_bytes())
    assert main(_argv(moved, _copy_with(run_dir, tmp_path / "c"))) == 0


def test_w4_checkpoint_without_data_identity_is_refused(run, tmp_path, capsys):
    data, run_dir = run
    out = _copy_with(run_dir, tmp_path / "old")
    ck = torch.load(out / "model.pt", weights_only=True)
    info = json.loads(ck["resume_json"])
    del info["data_identity"]
    ck["resume_json"] = json.dumps(info)
    torch.save(ck, out / "model.pt")
    _exit_2_one_line(_argv(data, out), capsys, "does not record which data")


@pytest.mark.parametrize("meta", [{"data": {"features": "x"}}, {"data": {"features": {"steps": "many"}}},
                                  {"data": {"steps": "many"}}, {"data": {"features": {"n_mels": 10**9}}},
                                  {"data": {"kind": ["fsdd"]}}, {"data": {"task": 3}}])
def test_t3_checkpoint_metadata_of_the_wrong_type(run, tmp_path, capsys, meta):
    data, run_dir = run
    out = _copy_with(run_dir, tmp_path / "m", meta_json=json.dumps(meta))
    _exit_2_one_line(["evaluate", "--checkpoint", str(out / "model.pt"), "--data", str(data)], capsys,
                     "is not a tpprof checkpoint")
    _exit_2_one_line(["finetune", "--checkpoint", str(out / "model.pt"), "--data", "fsdd", "--speaker", "theo",
                      "--out", str(tmp_path / "ft")], capsys, "is not a tpprof checkpoint")
