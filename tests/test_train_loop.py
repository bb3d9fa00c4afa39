"""The train / evaluate / finetune loop and CLI: learning on real speech, files, Ctrl-C safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tpprof.cli import main
from tpprof.config import make_config
from tpprof.data import from_arrays, synthetic_spikes
from tpprof.data.fsdd import find_fsdd
from tpprof.errors import UserError
from tpprof.train import cosine_lr, fit, load_checkpoint

torch.set_num_threads(1)


def _has_fsdd() -> bool:
    try:
        find_fsdd()
        return True
    except UserError:
        return False


needs_fsdd = pytest.mark.skipif(not _has_fsdd(), reason="the FSDD recordings are not present")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TPPROF_CACHE", str(tmp_path_factory.getbasetemp() / "tpprof-cache"))


def _toy(n: int = 48, steps: int = 8, features: int = 12, classes: int = 3, seed: int = 0):
    """Class k fires on features [4k, 4k+4) at a high rate: linearly separable spike data."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rate = np.full((n, 1, features), 0.05)
    for i, k in enumerate(y):
        rate[i, 0, 4 * k:4 * k + 4] = 0.8
    x = (rng.random((n, steps, features)) < rate).astype(np.float32)  # (n, T, F)
    return from_arrays(x, y, classes)


def test_cosine_schedule_matches_the_reference():
    assert cosine_lr(1e-3, 0, 10) == pytest.approx(1e-3)
    assert cosine_lr(1e-3, 5, 10) == pytest.approx(0.625e-3)  # η_min + (η − η_min)/2
    assert cosine_lr(1e-3, 10, 10) == pytest.approx(0.25e-3)
    lrs = [cosine_lr(1.0, e, 7) for e in range(7)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


@pytest.mark.parametrize("rule", ["tp", "tess", "bptt"])
def test_every_rule_learns_separable_spikes(rule, tmp_path):
    train, test = _toy(96, seed=0), _toy(48, seed=1)
    cfg = make_config("12-16-3", rule, batch=16, steps=8, lr=3e-3)
    m = fit(cfg, train, test, epochs=4, seed=0, out_dir=tmp_path, progress=False)
    assert m["test_final"] >= 0.8, m["history"]
    assert m["history"][0]["n"] == 96  # 6 full batches, nothing dropped
    # the schedule reached every layer optimiser: the last epoch ran at η_3 of the cosine
    assert [o.lr for o in m["learner"]._optims] == [cosine_lr(3e-3, 3, 4)] * 2


def test_short_last_batch_is_dropped_and_freeze_keeps_hidden_weights(tmp_path):
    train, test = _toy(50), _toy(12, seed=1)  # 50 = 3 × 16 + 2: the last 2 are dropped
    cfg = make_config("12-16-3", "tp", batch=16, steps=8, lr=1e-2)
    from tpprof.snn import make_learner

    learner = make_learner(cfg.with_(trainable="readout"), seed=0)
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    m = fit(cfg, train, test, epochs=1, seed=0, progress=False, learner=learner, freeze_hidden=True)
    assert m["history"][0]["n"] == 48 and m["history"][0]["dropped"] == 2
    after = learner.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("out" in k for k in changed), changed  # only the readout moved


def test_keyboard_interrupt_leaves_last_epoch_intact(tmp_path):
    train, test = _toy(64), _toy(16, seed=1)
    cfg = make_config("12-16-3", "tp", batch=16, steps=8, lr=3e-3)
    from tpprof.snn import make_learner

    learner = make_learner(cfg, seed=0)
    real, calls = learner.train_batch, []

    def flaky(x, y, **kw):
        calls.append(1)
        if len(calls) == 6:  # mid-way through epoch 2 (4 batches per epoch)
            raise KeyboardInterrupt
        return real(x, y, **kw)

    learner.train_batch = flaky
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, train, test, epochs=3, seed=0, out_dir=tmp_path, progress=False, learner=learner)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs"] == 1 and len(metrics["history"]) == 1
    cfg2, sd, meta = load_checkpoint(tmp_path / "model.pt")
    assert meta["epoch"] == 1 and cfg2 == cfg
    assert not list(tmp_path.glob(".*tmp"))  # no half-written file left behind


def test_train_cli_on_npz_and_checkpoint_roundtrip(tmp_path, capsys):
    train = _toy(96)
    np.savez(tmp_path / "toy.npz", x=train.x, y=train.y, x_test=_toy(48, seed=1).x, y_test=_toy(48, seed=1).y)
    out = tmp_path / "run"
    rc = main(["train", "--rule", "tp", "--net", "12-16-3", "--data", str(tmp_path / "toy.npz"), "--epochs", "2",
               "--lr", "3e-3", "--batch", "16", "--seed", "1", "--no-progress", "--out", str(out)])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "train_accuracy", "epochs", "seconds", "history", "test_best", "test_final",
                "test_mean_last3", "seconds_per_epoch"):
        assert key in m
    assert m["epochs"] == 2 and m["status"] == "done"
    ck = torch.load(out / "model.pt", weights_only=True)
    # the model, plus what `train --resume` needs (optimiser tensors, RNG state, history)
    assert set(ck) == {"state_dict", "config_json", "meta_json", "optimizer_state", "torch_rng_state", "resume_json"}
    capsys.readouterr()
    # a shared checkpoint does not decide which local file is read: --data is required for a file
    assert main(["evaluate", "--checkpoint", str(out / "model.pt"), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tpprof evaluate: error: data:") and "--data FILE" in err
    assert main(["evaluate", "--checkpoint", str(out / "model.pt"), "--data", str(tmp_path / "toy.npz"), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["accuracy"] == pytest.approx(m["test_accuracy"]) and ev["n"] == 48


def test_train_cli_passes_tp_options_into_the_checkpoint_config(tmp_path):
    np.savez(tmp_path / "toy.npz", x=_toy(32).x, y=_toy(32).y, x_test=_toy(16, seed=1).x, y_test=_toy(16, seed=1).y)
    out = tmp_path / "run"
    rc = main(["train", "--rule", "tp", "--net", "12-8-3", "--data", str(tmp_path / "toy.npz"), "--epochs", "1",
               "--batch", "16", "--no-progress", "--train-s", "--similarity", "dot", "--out", str(out)])
    assert rc == 0
    cfg = json.loads(torch.load(out / "model.pt", weights_only=True)["config_json"])
    assert cfg["rule"]["train_s"] is True and cfg["rule"]["similarity"] == "dot"


@pytest.mark.parametrize("argv, match", [
    (["train", "--net", "40-8-3", "--epochs", "1", "--out", "{tmp}/o", "--data", "{tmp}/toy.npz"], "does not match"),
    (["train", "--epochs", "1", "--out", "{tmp}/o", "--data", "{tmp}/missing.npz"], "does not exist"),
    (["train", "--epochs", "0", "--out", "{tmp}/o", "--data", "{tmp}/toy.npz"], "epochs"),
    (["train", "--epochs", "1", "--out", "{tmp}/o", "--data", "{tmp}/toy.npz", "--net", "12-8-3",
      "--holdout-speaker", "theo"], "holdout-speaker"),
    (["evaluate", "--checkpoint", "{tmp}/toy.npz"], "not a tpprof checkpoint"),
    (["finetune", "--checkpoint", "{tmp}/none.pt", "--speaker", "theo", "--out", "{tmp}/f"], "does not exist"),
    (["finetune", "--checkpoint", "{tmp}/none.pt", "--speaker", "theo", "--shots", "many", "--out", "{tmp}/f"],
     "shots"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, match):
    t = _toy(20)
    np.savez(tmp_path / "toy.npz", x=t.x, y=t.y)
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and err.count("\n") == 1, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_request_without_cuda_is_a_user_error(tmp_path, capsys):
    t = _toy(20)
    np.savez(tmp_path / "toy.npz", x=t.x, y=t.y)
    rc = main(["train", "--net", "12-8-3", "--data", str(tmp_path / "toy.npz"), "--epochs", "1", "--backend", "cuda",
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "CUDA is not available" in capsys.readouterr().err


@needs_fsdd
def test_tp_learns_spoken_digits_then_finetunes(tmp_path, capsys):
    """A tiny end-to-end run on real speech: TP must beat chance (10 %) by a wide margin."""
    pre = tmp_path / "pre"
    rc = main(["train", "--rule", "tp", "--data", "fsdd", "--holdout-speaker", "theo", "--limit", "1280",
               "--epochs", "4", "--lr", "1e-4", "--seed", "0", "--threads", "1", "--no-progress", "--out", str(pre)])
    assert rc == 0
    m = json.loads((pre / "metrics.json").read_text())
    assert m["n_train"] == 1280 and m["data"]["holdout_speaker"] == "theo"
    assert m["test_accuracy"] >= 0.5, m["history"]
    capsys.readouterr()
    ft = tmp_path / "ft"
    rc = main(["finetune", "--checkpoint", str(pre / "model.pt"), "--data", "fsdd", "--speaker", "theo",
               "--shots", "1", "--epochs", "1", "--no-progress", "--out", str(ft)])
    assert rc == 0
    f = json.loads((ft / "metrics.json").read_text())
    assert f["support_size"] == 10 and f["query_size"] == 200 and f["batch"] == 10
    assert 0.0 <= f["before_accuracy"] <= 1.0 and 0.0 <= f["after_accuracy"] <= 1.0
    assert f["speaker"] == "theo" and f["shots"] == "1"
    assert "warning" not in capsys.readouterr().err  # pretrained without theo: a true new user
    _, _, meta = load_checkpoint(ft / "model.pt")
    assert meta["finetuned"]["speaker"] == "theo"


def test_default_threads_rule():
    from tpprof.train import THREADS_MIN_MACS, default_threads

    small = make_config("40-256-256-10", "tp", batch=32, steps=50)  # 2.5e6 MACs per step
    big = make_config("700-2048-2048-20", "tp", batch=256, steps=5)  # 1.5e9
    assert 256 * big.net.n_params() >= THREADS_MIN_MACS > 32 * small.net.n_params()
    import os

    env = os.environ.pop("OMP_NUM_THREADS", None)
    try:
        assert default_threads(small, cores=16, load=0.0) == 1  # small work: never more than one
        assert default_threads(big, cores=16, load=0.0) == 4  # large work on idle cores
        assert default_threads(big, cores=2, load=2.5) == 1  # a busy machine: one
        assert default_threads(big, cores=4, load=1.2) == 2
        os.environ["OMP_NUM_THREADS"] = "3"
        assert default_threads(small) == 3  # the user's environment wins
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)
        if env is not None:
            os.environ["OMP_NUM_THREADS"] = env


def test_train_out_refuses_another_runs_files(tmp_path, capsys):
    """--out holding another run (another seed here) is refused in one line unless --force; the
    same run again writes over its own files; 'mean of last 3' appears only after 3 epochs."""
    t = _toy(40)
    np.savez(tmp_path / "toy.npz", x=t.x, y=t.y)
    argv = ["train", "--net", "12-8-3", "--data", str(tmp_path / "toy.npz"), "--epochs", "1", "--batch", "8",
            "--no-progress", "--threads", "1", "--out", str(tmp_path / "o")]
    assert main(argv + ["--seed", "1"]) == 0
    assert "mean of last 3" not in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["test_mean_last3"] is None
    assert main(argv + ["--seed", "1"]) == 0  # the same run again
    capsys.readouterr()
    assert main(argv + ["--seed", "2"]) == 2
    err = capsys.readouterr().err
    assert "seed 1" in err and "--force" in err and err.count("\n") == 1
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["seed"] == 1  # untouched
    assert main(argv + ["--seed", "2", "--force"]) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["seed"] == 2
