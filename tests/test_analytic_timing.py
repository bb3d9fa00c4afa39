"""The compute-model time per step (tpprof.analytic.timing) and the memory × time Pareto view."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tpprof.analytic.timing import (calibrate, calibrate_learners, fit_linear, fit_time_model, pareto_front,
                                    pareto_table, pareto_variants, shipped_time_model, shipped_time_models)
from tpprof.config import TRAINABLE_RULES, make_config


def _brute_front(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    n = len(p)
    return np.array([not any(p[j] <= p[i] and t[j] <= t[i] and (p[j] < p[i] or t[j] < t[i]) for j in range(n))
                     for i in range(n)])


def test_fit_recovers_overhead_and_throughput() -> None:
    m = np.array([1e6, 5e6, 2e7, 1e8, 4e8])
    t = 3e-4 + m / 2e10
    tm = fit_time_model(m, t, source="synthetic")
    assert tm.overhead_s == pytest.approx(3e-4, rel=1e-9)
    assert tm.macs_per_s == pytest.approx(2e10, rel=1e-9)
    assert tm.max_error < 1e-9 and tm.n_points == 5
    assert float(tm.step_seconds(1e8)) == pytest.approx(3e-4 + 1e8 / 2e10)


def test_fit_error_is_the_relative_error_of_its_own_prediction() -> None:
    rng = np.random.default_rng(0)
    m = rng.uniform(1e6, 1e9, 40)
    t = (2e-4 + m / 1e10) * rng.uniform(0.7, 1.3, 40)
    tm = fit_time_model(m, t)
    err = np.abs(tm.step_seconds(m) / t - 1)
    assert tm.median_error == pytest.approx(float(np.median(err)))
    assert tm.max_error == pytest.approx(float(err.max()))
    # the relative least-squares optimum: moving either constant makes Σ(rel. error)² larger
    sse = float(np.sum((tm.step_seconds(m) / t - 1) ** 2))
    for t0, r in ((tm.overhead_s * 1.05, tm.macs_per_s), (tm.overhead_s, tm.macs_per_s * 1.05),
                  (tm.overhead_s * 0.95, tm.macs_per_s * 0.95)):
        assert np.sum(((t0 + m / r) / t - 1) ** 2) > sse


def test_fit_needs_a_time_and_macs() -> None:
    with pytest.raises(ValueError):
        fit_time_model([], [])
    with pytest.raises(ValueError):
        fit_time_model([0, 0], [1e-3, 2e-3])


@pytest.mark.parametrize("seed", range(20))
def test_pareto_front_is_the_non_dominated_set(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    # small integer grids make ties in peak, in time and in both
    p = rng.integers(0, 8, n).astype(float)
    t = rng.integers(0, 8, n).astype(float)
    assert (pareto_front(p, t) == _brute_front(p, t)).all()


def test_pareto_table_marks_the_brute_force_front_and_trades_memory_for_time() -> None:
    cfg = make_config("shd", "tp", batch=32, steps=40)
    df = pareto_table(cfg)
    assert (df["pareto"].to_numpy() == _brute_front(df["peak_bytes"].to_numpy(), df["time_s_per_step"].to_numpy())
            ).all()
    assert set(TRAINABLE_RULES) <= set(df["rule"])
    ckpt = df[df["label"].str.startswith("bptt-ckpt k=")]
    tb = df[df["label"].str.startswith("tbptt K=")]
    assert len(ckpt) >= 3 and len(tb) >= 3
    # checkpointing: the segment k = T keeps everything and recomputes nothing (= bptt's MACs);
    # a shorter segment recomputes, so it costs MACs
    bptt_macs = int(df.loc[df["label"] == "bptt", "macs_per_step"].iloc[0])
    assert int(ckpt.loc[ckpt["label"] == "bptt-ckpt k=40", "macs_per_step"].iloc[0]) == bptt_macs
    assert (ckpt["macs_per_step"] >= bptt_macs).all() and ckpt["macs_per_step"].max() > bptt_macs
    # tbptt: the window bounds the memory
    assert tb.sort_values("label", key=lambda s: s.str.extract(r"(\d+)")[0].astype(int))["peak_bytes"
                                                                                    ].is_monotonic_increasing
    assert "held-out error" in df.attrs["time_model"] or "no calibration" in df.attrs["time_model"]


def test_variants_keep_the_workload_and_optimiser() -> None:
    cfg = make_config("700-100-10", "bptt", batch=4, steps=9, optimizer="sgd")
    for _, c in pareto_variants(cfg):
        assert c.workload == cfg.workload and c.net == cfg.net and c.rule.optimizer == "sgd"


def test_shipped_calibration_is_a_fit_of_the_shipped_rows() -> None:
    from tpprof.resources import measurements_dir
    from tpprof.store import load

    tm = shipped_time_model("cpu")
    assert tm is not None, "the shipped measurements carry step times"
    rows = [r for f in sorted(measurements_dir().glob("*.csv")) for r in load(f).rows]
    again = calibrate(rows)[(tm.device, tm.hardware)]
    assert (again.overhead_s, again.macs_per_s, again.n_points) == (tm.overhead_s, tm.macs_per_s, tm.n_points)
    assert tm.n_points == sum(1 for r in rows if r["status"] == "ok" and r["device"] == "cpu"
                              and r.get("hardware") == tm.hardware)
    assert shipped_time_model("cuda") is None or shipped_time_model("cuda").device.startswith("cuda")


def test_ranking_has_the_modelled_time(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tpprof.cli import main

    assert main(["estimate", "--net", "shd", "--rule", "all", "--batch", "16", "--steps", "25", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    tm = shipped_time_models("cpu")
    for r in recs:
        t, m = tm.predict(make_config("shd", r["rule"], 16, None, 25))
        assert r["time_s_per_step"] == pytest.approx(t)
        e = r["time_error_held_out"]
        assert e == pytest.approx(m.median_error) if m else (e is None or e != e)  # no learner: the pooled fit
    assert main(["estimate", "--net", "shd", "--rule", "all", "--batch", "16", "--steps", "25"]) == 0
    out = capsys.readouterr().out
    assert "time/step*" in out and "held-out error" in out and "±" in out


def test_time_model_and_pareto_stay_torch_free() -> None:
    code = ("import sys; from tpprof.analytic.timing import pareto_table; from tpprof.config import make_config; "
            "pareto_table(make_config('shd', 'tp', batch=4, steps=5)); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_linear_fit_recovers_coefficients_and_held_out_scores_left_out_configs() -> None:
    rng = np.random.default_rng(1)
    x = np.c_[np.ones(12), rng.uniform(1e6, 1e8, 12), np.zeros(12), rng.uniform(1e4, 1e6, 12)]
    c = np.array([2e-4, 1 / 3e10, 0.0, 1 / 1e9])
    assert np.allclose(fit_linear(x, x @ c), c, rtol=1e-6, atol=1e-15)


def _rows(rule: str, noise: float, seed: int = 0) -> list[dict]:
    """Measurement-like rows whose CPU time is an exact linear function of the features (+ noise)."""
    from tpprof.analytic.timing import features

    rng = np.random.default_rng(seed)
    out = []
    for net, b in (("700-128-20", 16), ("700-450-20", 32), ("700-450-20", 128), ("700-256-256-20", 64),
                   ("700-300r-20", 32), ("700-64-20", 64), ("700-128-128-20", 16), ("700-450-450-20", 32),
                   ("700-256r-20", 128)):  # enough configs that each left-out one is determined by the rest
        cfg = make_config(net, rule, b, None, 20)
        t = float(features(cfg) @ np.array([3e-4, 1 / 2e10, 0.0, 1 / 5e8, 5e-5, 4e-7])) * (1 + noise * rng.uniform(-1, 1))
        out.append({"status": "ok", "device": "cpu", "hardware": "h", "rule": rule, "net": net, "batch": b,
                    "classes": 20, "steps": 20, "dtype": "fp32", "optimizer": "adam", "cadence": "step",
                    "aux": "stored", "cpu_s_median": t * 20, "ms_per_step": 99.0,
                    "config_json": cfg.to_json()})
    return out


def test_learner_models_are_scored_held_out() -> None:
    exact = calibrate_learners(_rows("tp", 0.0) + _rows("bptt", 0.0))[("cpu", "h")]
    assert exact.clock == "cpu" and set(exact.learners) == {"tp", "bptt"}
    assert all(m.max_error < 1e-6 and m.n_configs == 9 for m in exact.learners.values())
    noisy = calibrate_learners(_rows("tp", 0.2, seed=3))[("cpu", "h")].learners["tp"]
    assert 0 < noisy.median_error <= noisy.max_error  # noise: a held-out fit cannot be exact
    grouped = calibrate_learners(_rows("tp", 0.0), key=lambda r: "all")[("cpu", "h")]
    assert set(grouped.learners) == {"all"}  # any grouping of the rows


def test_shipped_learner_models_prefer_cpu_time() -> None:
    tm = shipped_time_models("cpu")
    assert tm is not None
    t, m = tm.predict(make_config("shd", "tp", 16, None, 25))
    assert t > 0 and m is not None and m.n_configs >= 2
