"""Properties of the analytic model: monotonicity, T-(in)dependence, sign changes, parameter
counts, the rule registry, torch-freedom, and the vectorised closed forms against estimate()."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpprof.analytic import CATEGORIES, estimate
from tpprof.analytic import regimes
from tpprof.analytic.rules import REGISTRY, RuleModel, register
from tpprof.config import PRESETS, RULES, make_config

NETS = ("700-450-20", "40-64-32-10", "2x8x8-c4p-c8-5", "30-20r-7", "vgg9:2x32x32-11")


def test_registry_covers_exactly_the_config_rules() -> None:
    assert set(REGISTRY) == set(RULES)


def test_registry_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(RuleModel("tp", "again", lambda cfg, tl: None))


def test_importing_analytic_does_not_import_torch() -> None:
    code = ("import tpprof.analytic, tpprof.analytic.regimes, tpprof.analytic.devices, tpprof.cli.analytic_cmds, sys; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("net", list(NETS) + list(PRESETS))
def test_weight_terms_equal_netspec_params(net: str) -> None:
    cfg = make_config(net, "tp", batch=2, steps=3)
    bd = estimate(cfg)
    assert bd.by_category()["weights"] == cfg.net.n_params() * 4
    grads = sum(t.count for t in bd.terms if t.category == "gradients")
    assert grads == cfg.net.n_params()
    assert bd.by_category()["optimizer"] == 2 * cfg.net.n_params() * 4  # Adam


@pytest.mark.parametrize("rule", RULES)
def test_categories_are_known_and_totals_consistent(rule: str) -> None:
    bd = estimate(make_config("40-64-32-10", rule, batch=8, steps=10))
    assert set(bd.by_category()) == set(CATEGORIES)
    assert sum(bd.by_category().values()) == bd.total_bytes
    assert bd.persistent_bytes <= bd.peak_bytes <= bd.total_bytes
    assert bd.not_modelled and bd.macs_per_step > 0


@pytest.mark.parametrize("rule,net", list(itertools.product(RULES, ("700-450-20", "2x8x8-c4p-c8-5", "30-20r-7"))))
@pytest.mark.parametrize("dim", ["batch", "classes"])
def test_memory_non_decreasing_in_b_and_c(rule: str, net: str, dim: str) -> None:
    prev_peak = prev_total = -1
    for v in (1, 2, 3, 8, 33, 200):
        bd = estimate(make_config(net, rule, steps=5, **{dim: v}))
        assert bd.peak_bytes >= prev_peak and bd.total_bytes >= prev_total
        prev_peak, prev_total = bd.peak_bytes, bd.total_bytes


@pytest.mark.parametrize("rule", RULES)
def test_memory_non_decreasing_in_h(rule: str) -> None:
    prev = -1
    for h in (1, 2, 5, 16, 100):
        peak = estimate(make_config(f"20-{h}-{h}-5", rule, batch=4, steps=5)).peak_bytes
        assert peak >= prev
        prev = peak


BPTT_FAMILY = ("bptt", "bptt-compact", "bptt-ckpt", "tbptt")


@pytest.mark.parametrize("rule", [r for r in RULES if r not in BPTT_FAMILY])
@pytest.mark.parametrize("net", NETS)
def test_local_rules_flat_in_t(rule: str, net: str) -> None:
    peaks = {estimate(make_config(net, rule, batch=4, steps=t)).peak_bytes for t in (1, 25, 400)}
    totals = {estimate(make_config(net, rule, batch=4, steps=t)).total_bytes for t in (1, 25, 400)}
    assert len(peaks) == 1 and len(totals) == 1


def _affine(ts: np.ndarray, ys: np.ndarray) -> bool:
    slope = (ys[1] - ys[0]) / (ts[1] - ts[0])
    return bool(slope > 0 and np.array_equal(ys, ys[0] + slope * (ts - ts[0])))


@pytest.mark.parametrize("net", NETS)
def test_bptt_linear_in_t(net: str) -> None:
    # algorithmic model: every term is constant or ∝ T, and all transients live in one phase
    ts = np.array([1, 2, 10, 100, 400])
    alg = [estimate(make_config(net, "bptt", batch=4, steps=int(t)), implementation=False) for t in ts]
    assert _affine(ts, np.array([b.total_bytes for b in alg]))
    assert _affine(ts, np.array([b.peak_bytes for b in alg]))
    # full model: implementation terms may differ at tiny T and the peak is a max over phases,
    # so it is affine once the T-proportional backward phase dominates
    late = np.array([400, 500, 800])
    full = [estimate(make_config(net, "bptt", batch=4, steps=int(t))) for t in late]
    assert _affine(late, np.array([b.peak_bytes for b in full]))
    assert _affine(late, np.array([b.total_bytes for b in full]))


def _state(rule: str, B: int, C: int, accounting: str = "paper") -> int:
    return estimate(make_config("700-450-450-20", rule, batch=B, classes=C), accounting).total_bytes


@pytest.mark.parametrize("B", [4, 16, 64, 128])
def test_tess_minus_tp_state_changes_sign_at_c_equals_b(B: int) -> None:
    # paper §9: TP cheaper ⇔ C > B (base accounting)
    assert _state("tess", B, B - 1 if B > 1 else 1) < _state("tp", B, B - 1 if B > 1 else 1)
    assert _state("tess", B, B) == _state("tp", B, B)
    assert _state("tess", B, B + 1) > _state("tp", B, B + 1)


def test_tess_minus_tp_sign_with_s_for_two_layers() -> None:
    # paper+s, L = 2: TP cheaper ⇔ C(L − 1) > BL ⇔ C > 2B
    B = 16
    assert _state("tess", B, 31, "paper+s") < _state("tp", B, 31, "paper+s")
    assert _state("tess", B, 33, "paper+s") > _state("tp", B, 33, "paper+s")


def test_full_model_crossover_exists_and_is_reported() -> None:
    # full model, two 450-wide layers, B = 128: TESS cheaper at SHD's C = 20, TP for many classes
    c_star = float(regimes.tp_tess_crossover(128, 2, 450, 700, 100, accounting="full"))
    assert 128 < c_star < np.inf  # later than the paper's C* = B: TP's extra state (v, s per path) counts
    below = make_config("700-450-450-20", "tp", batch=128, classes=int(c_star) - 1)
    at = make_config("700-450-450-20", "tp", batch=128, classes=int(c_star))
    assert estimate(below, implementation=False).peak_bytes >= estimate(below.with_(name="tess"),
                                                                        implementation=False).peak_bytes
    assert estimate(at, implementation=False).peak_bytes < estimate(at.with_(name="tess"),
                                                                    implementation=False).peak_bytes


# ---------------------------------------------------------------------------------------
# Closed forms vs estimate()
# ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(rule=st.sampled_from(RULES), B=st.integers(1, 300), C=st.integers(1, 500), L=st.integers(1, 4),
       H=st.integers(1, 300), T=st.integers(1, 300), F=st.integers(1, 800),
       dtype=st.sampled_from(["fp32", "fp16", "fp64", "int8"]), opt=st.sampled_from(["sgd", "momentum", "adam"]),
       cadence=st.sampled_from(["step", "sequence"]), aux=st.sampled_from(["stored", "regenerated"]))
def test_closed_forms_equal_estimate(rule, B, C, L, H, T, F, dtype, opt, cadence, aux) -> None:
    net = "-".join([str(F)] + [str(H)] * L + [str(C)])
    cfg = make_config(net, rule, batch=B, classes=C, steps=T, dtype=dtype, optimizer=opt, cadence=cadence, aux=aux)
    bd = estimate(cfg, implementation=False)
    m = regimes.memory_dense(rule, **regimes.dense_args_from_config(cfg))
    assert m["total_bytes"] == bd.total_bytes
    assert m["peak_bytes"] == bd.peak_bytes
    assert m["persistent_bytes"] == bd.persistent_bytes
    for cat, v in bd.by_category().items():
        assert m[cat] == v


def test_closed_forms_vectorise() -> None:
    B = np.arange(1, 1001)
    out = regimes.memory_dense("tp", B, 20, 2, 450, 100, 700)
    assert out["peak_bytes"].shape == (1000,)
    assert np.all(np.diff(out["peak_bytes"]) > 0)


def test_sweep_dataframe_and_feasibility() -> None:
    df = regimes.sweep(("tp", "tess", "bptt"), B=[1, 8, 64], C=[10, 100, 1000], T=[100],
                       optimizer=("sgd", "adam"), budget_bytes=8 * 2 ** 20)
    assert len(df) == 3 * 3 * 3 * 2
    for col in ("rule", "B", "C", "total_bytes", "peak_bytes", "fits", "headroom_bytes") + tuple(
            f"{c}_bytes" for c in CATEGORIES):
        assert col in df.columns
    assert (df["fits"] == (df["peak_bytes"] <= 8 * 2 ** 20)).all()
    row = df[(df.rule == "tp") & (df.B == 8) & (df.C == 100) & (df.optimizer == "adam")].iloc[0]
    assert row.peak_bytes == estimate(make_config("shd", "tp", batch=8, classes=100), implementation=False).peak_bytes


def test_local_vs_bptt_crossover_in_t() -> None:
    t_star = int(regimes.local_vs_bptt_crossover("tp", 128, 20, 1, 450, 700))
    bptt = lambda t: estimate(make_config("shd", "bptt", steps=t), implementation=False).peak_bytes  # noqa: E731
    tp = estimate(make_config("shd", "tp"), implementation=False).peak_bytes
    assert bptt(t_star) > tp
    if t_star > 1:
        assert bptt(t_star - 1) <= tp


def test_crossover_surface_columns() -> None:
    df = regimes.crossover_surface([16, 64], [10, 100, 1000])
    assert list(df.columns) == ["B", "C", "G_paper", "G_paper_s", "G_full_peak", "G_full_total"]
    assert df.loc[(df.B == 64) & (df.C == 100), "G_paper"].item() == pytest.approx(1.28125)


def test_full_crossover_single_layer_never_for_large_batch() -> None:
    # one hidden layer: S (C·H) and B_1 (C·H) grow alike, so the peak never crosses at B = 128
    assert np.isinf(regimes.tp_tess_crossover(128, 1, 450, 700, 100, accounting="full"))


def test_paper_crossover_closed_form() -> None:
    assert regimes.tp_tess_crossover(64, accounting="paper") == 65
    assert regimes.tp_tess_crossover(16, L=2, accounting="paper+s") == 33
    assert np.isinf(regimes.tp_tess_crossover(16, L=1, accounting="paper+s"))


@pytest.mark.parametrize("param", regimes.DESIGN_PARAMS)
def test_inverse_design_dense_vs_general(param: str) -> None:
    budget = 2 * 2 ** 20
    cfg = make_config("100-64-10", "tp", batch=16, classes=10, steps=50)
    v = regimes.largest_fitting(cfg, budget, param)
    assert v >= 1
    assert estimate(regimes._resize(cfg, param, v)).peak_bytes <= budget
    assert estimate(regimes._resize(cfg, param, v + 1)).peak_bytes > budget
    # the vectorised closed form agrees exactly with the search over the algorithmic terms
    v_dense = int(regimes.largest_dense("tp", param, budget, B=16, C=10, L=1, H=64, T=50, F=100))
    assert v_dense == regimes.largest_fitting(cfg, budget, param, implementation=False)
    assert v_dense >= v  # implementation terms only add memory


def test_inverse_design_none_fits() -> None:
    assert regimes.largest_fitting(make_config("shd", "bptt"), 1000, "batch") == 0


@pytest.mark.parametrize("net", NETS)
def test_bptt_family_t_scaling(net: str) -> None:
    """compact: affine in T with a smaller slope than bptt; ckpt: ~√T; tbptt: flat once T ≥ its window."""
    def peaks(rule: str, ts) -> np.ndarray:
        return np.array([estimate(make_config(net, rule, batch=4, steps=int(t)), implementation=False).peak_bytes
                         for t in ts])
    ts = np.array([1, 2, 10, 100, 400])
    comp, full = peaks("bptt-compact", ts), peaks("bptt", ts)
    assert _affine(ts, comp)
    assert comp[-1] - comp[-2] < full[-1] - full[-2]
    assert len(set(peaks("tbptt", (25, 100, 400)).tolist())) == 1
    sq = peaks("bptt-ckpt", (100, 400, 1600))  # k = 10, 20, 40: the T-dependent part doubles
    assert 1.5 < (sq[2] - sq[1]) / (sq[1] - sq[0]) < 2.5 and sq[2] < peaks("bptt", (1600,))[0]
