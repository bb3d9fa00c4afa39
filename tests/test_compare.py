"""tpprof compare: the ranking against a brute-force recomputation from its own results file, and an
interrupted-then-resumed comparison against an uninterrupted one (tiny synthetic task, 2 learners x 2 seeds)."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tpprof import compare as cmp  # noqa: E402
from tpprof.cli import main  # noqa: E402
from tpprof.config import Device  # noqa: E402

FLAGS = ["--net", "12-16-4", "--batch", "8", "--rule", "tp,bptt", "--seeds", "2", "--epochs", "3", "--jobs", "1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A learnable 4-class task: x (64, T=6, F=12) spikes whose rate marks the class's features."""
    rng = np.random.default_rng(0)
    n, t, f, c = 64, 6, 12, 4
    y = rng.integers(0, c, n)
    p = 0.05 + 0.4 * (np.arange(f)[None, None, :] % c == y[:, None, None])
    x = (rng.random((n, t, f)) < p).astype("float32")
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="module")
def uninterrupted(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cmp") / "a"
    assert main(["compare", "--data", str(tiny), *FLAGS, "--out", str(out)]) == 0
    return out / cmp.RESULTS_FILE


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in cmp.TIMING_COLUMNS} for r in rows]


def test_results_file_has_one_row_per_run_with_final_accuracy(uninterrupted) -> None:
    rows = _rows(uninterrupted)
    assert [(r["label"], r["seed"]) for r in rows] == [("tp", "0"), ("tp", "1"), ("bptt", "0"), ("bptt", "1")]
    assert list(rows[0]) == list(cmp.COLUMNS)
    for r in rows:
        metrics = __import__("json").loads((uninterrupted.parent / "runs" / f"{r['label']}-s{r['seed']}" /
                                            "metrics.json").read_text())
        assert float(r["test_final"]) == metrics["history"][-1]["test_accuracy"]  # the last epoch, not the best
        assert int(r["peak_bytes_full"]) > int(r["peak_bytes_algorithm"]) > 0 and int(r["macs_per_step"]) > 0
        assert float(r["ms_per_step"]) > 0 and r["torch_version"] and r["config_json"]


def _brute_force(path: Path, device: Device, accounting: str) -> tuple[list[str], str | None, list[str]]:
    """Order of the ranked learners, the best, and the Pareto front, recomputed with plain loops."""
    acc: dict[str, list[float]] = {}
    peak: dict[str, int] = {}
    rule: dict[str, str] = {}
    batch: dict[str, int] = {}
    for r in _rows(path):
        acc.setdefault(r["label"], []).append(float(r["test_final"]))
        peak[r["label"]] = int(r[f"peak_bytes_{accounting}"])
        rule[r["label"]], batch[r["label"]] = r["rule"], int(r["batch"])
    mean = {k: round(sum(v) / len(v), 9) for k, v in acc.items()}  # equal to 9 decimals: a tie
    local_only = device.learning_capability == "local"  # fully local rules: tp and tess (their papers)
    ok = [k for k in acc if peak[k] <= device.budget_bytes and device.on_chip_learning != "no"
          and not (rule[k] == "tp" and batch[k] < 2) and not (local_only and rule[k] not in ("tp", "tess"))]
    order = sorted(ok, key=lambda k: (-mean[k], peak[k], k))
    front = [k for k in acc if not any(peak[j] <= peak[k] and mean[j] >= mean[k] and (peak[j] < peak[k] or
                                                                                     mean[j] > mean[k]) for j in acc)]
    return order, (order[0] if order else None), sorted(front, key=lambda k: (peak[k], -mean[k]))


def _synthetic_results(path: Path) -> None:
    """A results file with ties, a learner that does not fit and one at B = 1."""
    rows = []
    spec = [("tp", "tp", [0.9, 0.8, 0.85], 500, 8), ("tess", "tess", [0.85, 0.85, 0.85], 400, 8),
            ("bptt", "bptt", [0.95, 0.97, 0.96], 5000, 8), ("ottt", "ottt", [0.85, 0.85, 0.85], 450, 8),
            ("tp-classes", "tp", [0.9, 0.8, 0.85], 480, 8), ("tp-b1", "tp", [0.99, 0.99, 0.99], 100, 1)]
    for label, rule, accs, peak, b in spec:
        for s, a in enumerate(accs):
            rows.append({"label": label, "rule": rule, "mode": "default", "seed": s, "test_final": a, "batch": b,
                         "peak_bytes_full": peak * 2, "peak_bytes_algorithm": peak, "epochs": 3})
    cmp.write_results(path, rows)


@pytest.mark.parametrize("budget,capability", [(10**9, "any"), (1000, "any"), (470, "any"), (50, "any"),
                                               (10**9, "local"), (470, "local")])
def test_ranking_equals_brute_force_on_synthetic_results(tmp_path, budget, capability) -> None:
    path = tmp_path / "r.csv"
    _synthetic_results(path)
    dev = Device("chip", budget, kind="mcu", learning_capability=capability)
    ranked = cmp.rank(cmp.summarise(cmp.load_results(path)), dev)
    order, top, front = _brute_force(path, dev, "algorithm")
    assert [r["label"] for r in ranked if r["rank"]] == order
    assert (cmp.best(ranked) or {}).get("label") == top
    assert cmp.pareto(cmp.summarise(cmp.load_results(path)), "algorithm") == front
    assert all(r["accounting"] == "algorithm" for r in ranked)  # a microcontroller: the lean implementation's peak
    assert next(r for r in ranked if r["label"] == "tp-b1")["rank"] is None  # B = 1: TP learns nothing
    tp = cmp.tp_place(ranked)
    if "tp" in order:  # TP's place and margin against the first (or, when first, the second) learner
        assert tp["rank"] == order.index("tp") + 1 and tp["of"] == len(order)
        other = (order[1] if len(order) > 1 else None) if order[0] == "tp" else order[0]
        assert tp["versus"] == other
    else:
        assert tp["rank"] is None


def test_ranking_equals_brute_force_on_its_own_results_file(uninterrupted) -> None:
    rows = cmp.load_results(uninterrupted)
    summary = cmp.summarise(rows)
    for dev in (Device("host", 10**12, kind="gpu", learning_capability="any"),
                Device("small", max(s["peak_bytes_full"] for s in summary) - 1, kind="sbc")):
        ranked = cmp.rank(summary, dev)
        order, top, front = _brute_force(uninterrupted, dev, "full")
        assert [r["label"] for r in ranked if r["rank"]] == order
        assert (cmp.best(ranked) or {}).get("label") == top
        assert cmp.pareto(summary, "full") == front
        for r in ranked:  # mean ± sample sd over the seeds of the file
            accs = [x["test_final"] for x in rows if x["label"] == r["label"]]
            assert r["acc_mean"] == pytest.approx(statistics.mean(accs))
            assert r["acc_sd"] == pytest.approx(statistics.stdev(accs)) or math.isnan(r["acc_sd"])


def test_interrupted_and_resumed_equals_uninterrupted(tiny, uninterrupted, tmp_path, monkeypatch) -> None:
    import tpprof.train as train

    real = train.train_epoch
    calls = {"n": 0}

    def dying(*a, **k):  # the 5th epoch overall: the second run (bptt, seed 0) dies after its first epoch
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    out = tmp_path / "b"
    monkeypatch.setattr(train, "train_epoch", dying)
    assert main(["compare", "--data", str(tiny), *FLAGS, "--out", str(out)]) == 130
    partial = out / cmp.RESULTS_FILE
    assert partial.is_file() and len(_rows(partial)) < 4  # some runs finished, one was cut mid-run
    assert (train.read_metrics(next(p for p in (out / "runs").iterdir()
                                    if (train.read_metrics(p) or {}).get("status") == "interrupted")))
    monkeypatch.setattr(train, "train_epoch", real)
    assert main(["compare", "--data", str(tiny), *FLAGS, "--out", str(out)]) == 0
    assert _without_timing(_rows(partial)) == _without_timing(_rows(uninterrupted))


def test_rank_an_existing_results_file_for_another_device(uninterrupted, capsys) -> None:
    assert main(["compare", "--results", str(uninterrupted), "--device", "stm32h743"]) == 0
    out = capsys.readouterr().out
    assert "accounting algorithm" in out and "the most accurate rule that fits stm32h743" in out
    assert "Pareto front" in out


def test_bad_flags_are_one_line_errors(tiny, tmp_path, capsys) -> None:
    assert main(["compare", "--data", str(tiny), "--net", "12-16-4", "--rule", "tp,nope", "--epochs", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "rules" in capsys.readouterr().err
    assert main(["compare", "--data", str(tiny), "--epochs", "1"]) == 2
    assert "out" in capsys.readouterr().err
    assert main(["compare", "--results", str(tmp_path / "none.csv")]) == 2
    assert "results" in capsys.readouterr().err


def test_killed_with_sigkill_and_resumed_equals_uninterrupted(tiny, tmp_path) -> None:
    """The comparison process killed (SIGKILL: no cleanup) once its first run has saved an epoch,
    then started again: the same results file as an uninterrupted run with the same flags."""
    import os
    import signal
    import subprocess
    import sys
    import time

    flags = ["--data", str(tiny), "--net", "12-16-4", "--batch", "8", "--rule", "tp,bptt", "--seeds", "2",
             "--epochs", "6", "--jobs", "1"]
    env = dict(os.environ, PYTHONPATH=str(Path(cmp.__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "tpprof", "compare", *flags, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "runs" / "tp-s0" / "model.pt"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cut = __import__("tpprof.train", fromlist=["read_metrics"]).read_metrics(out / "runs" / "tp-s0")
    assert cut["status"] == "interrupted" and len(cut["history"]) < 6  # killed mid-run
    assert main(["compare", *flags, "--out", str(out)]) == 0
    ref = tmp_path / "ref"
    assert main(["compare", *flags, "--out", str(ref)]) == 0
    assert _without_timing(_rows(out / cmp.RESULTS_FILE)) == _without_timing(_rows(ref / cmp.RESULTS_FILE))


@pytest.mark.parametrize("task,classes", [("digit", 10), ("digit-speaker", 60)])
def test_shipped_comparisons_are_complete_and_rank_as_brute_force(task, classes) -> None:
    from tpprof.resources import shipped_path

    path = shipped_path("results", f"compare_fsdd_{task}.csv")
    rows = _rows(path)
    assert sorted((r["label"], r["seed"]) for r in rows) == sorted((lab, str(s)) for lab in cmp.LEARNER_LABELS
                                                                    for s in range(3))
    assert {r["task"] for r in rows} == {task} and {r["classes"] for r in rows} == {str(classes)}
    assert all(0 <= float(r["test_final"]) <= 1 and int(r["measured_peak_bytes"]) > 0 for r in rows)
    summary = cmp.summarise(cmp.load_results(path))
    for dev in (Device("host", 10**12, kind="gpu"), Device("chip", 3 * 2**20, kind="mcu"),
                Device("plastic", 10**9, kind="neuromorphic", learning_capability="local")):
        acc = "algorithm" if dev.kind in ("mcu", "neuromorphic") else "full"
        ranked = cmp.rank(summary, dev)
        order, top, front = _brute_force(path, dev, acc)
        if dev.learning_capability == "local":  # the registry's fully local rules: TP (all modes) and TESS
            order = [k for k in order if k in ("tp", "tp-classes", "tp-authors", "tess")]
        assert [r["label"] for r in ranked if r["rank"]] == order
        assert cmp.pareto(summary, acc) == front


def test_ray_executor_gives_the_same_results_file(tiny, uninterrupted, tmp_path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    assert main(["compare", "--data", str(tiny), *FLAGS, "--executor", "ray", "--out", str(out)]) == 0
    assert _without_timing(_rows(out / cmp.RESULTS_FILE)) == _without_timing(_rows(uninterrupted))
