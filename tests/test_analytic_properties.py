"""Properties of the analytic model: monotonicity, T-(in)dependence, sign changes, parameter
counts, the rule registry, torch-freedom, and estimate_grid (arrays) against estimate()."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpprof.analytic import CATEGORIES, estimate, estimate_grid
from tpprof.analytic import regimes
from tpprof.analytic.rules import REGISTRY, RuleModel, register
from tpprof.config import PRESETS, RULES, Grid, make_config
from tpprof.errors import UserError

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


@pytest.mark.parametrize("rule,net", [(r, n) for r, n in itertools.product(RULES, ("700-450-20", "2x8x8-c4p-c8-5", "30-20r-7"))
                                      if not (r == "tess-authors-schedule" and "r-" in n)])  # authors' TESS: no recurrent
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
    if rule == "tess-authors-schedule" and "r-" in net:
        pytest.skip("the authors' TESS has no recurrent layers")
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
    c_star = float(regimes.tp_tess_crossover(make_config("700-450-450-20"), [128])[0])
    assert 128 < c_star < np.inf  # later than the paper's C* = B: TP's extra state (v, s per path) counts
    below = make_config("700-450-450-20", "tp", batch=128, classes=int(c_star) - 1)
    at = make_config("700-450-450-20", "tp", batch=128, classes=int(c_star))
    assert estimate(below, implementation=False).peak_bytes >= estimate(below.with_(name="tess"),
                                                                        implementation=False).peak_bytes
    assert estimate(at, implementation=False).peak_bytes < estimate(at.with_(name="tess"),
                                                                    implementation=False).peak_bytes


# ---------------------------------------------------------------------------------------
# estimate_grid (arrays) vs estimate (one point)
# ---------------------------------------------------------------------------------------

GRID_NETS = ("700-450-20", "40-64-32-10", "30-20r-7", "2x8x8-c4p-c8a2-5", "2x16x16-c8v-c4-12r-10", "vgg9:2x32x32-11")


def _row_matches(row, bd, at_peak: bool = True) -> None:
    assert row.total_bytes == bd.total_bytes and row.peak_bytes == bd.peak_bytes
    assert row.macs_per_step == bd.macs_per_step
    for cat, v in bd.by_category().items():
        assert row[f"{cat}_bytes"] == v, cat
    if at_peak:
        for cat, v in bd.at_peak_by_category().items():
            assert row[f"at_peak_{cat}_bytes"] == v, cat


@settings(max_examples=40, deadline=None)
@given(net=st.sampled_from(GRID_NETS), rules=st.lists(st.sampled_from(RULES), min_size=1, max_size=3, unique=True),
       B=st.lists(st.integers(1, 300), min_size=1, max_size=3, unique=True),
       C=st.lists(st.integers(1, 2000), min_size=1, max_size=3, unique=True),
       T=st.lists(st.integers(1, 400), min_size=1, max_size=2, unique=True),
       dtypes=st.lists(st.sampled_from(["fp32", "fp16", "fp64", "int8"]), min_size=1, max_size=2, unique=True),
       opt=st.sampled_from(["sgd", "momentum", "adam"]), cadence=st.sampled_from(["step", "sequence"]),
       aux=st.sampled_from(["stored", "regenerated"]), train_s=st.booleans(),
       accounting=st.sampled_from(["full", "full-algorithmic", "paper", "paper+s"]))
def test_estimate_grid_equals_estimate(net, rules, B, C, T, dtypes, opt, cadence, aux, train_s, accounting) -> None:
    from hypothesis import assume

    from tpprof.analytic.paper import PAPER_STATE
    from tpprof.config import rules_accepting

    impl = accounting != "full-algorithmic"
    acc = "full" if accounting == "full-algorithmic" else accounting
    rules = [r for r in rules_accepting(make_config(net), rules) if acc == "full" or r in PAPER_STATE]
    assume(rules)
    base = make_config(net, rules[0], optimizer=opt, cadence=cadence, aux=aux, train_s=train_s)
    grid = Grid(base, (("rule", tuple(rules)), ("classes", tuple(C)), ("batch", tuple(B)), ("steps", tuple(T)),
                       ("dtype", tuple(dtypes))))
    df = estimate_grid(grid, acc, implementation=impl, at_peak=True)
    assert len(df) == len(grid)
    for (_, row), cfg in zip(df.iterrows(), grid.configs()):
        assert (row["rule"], row["net"], row["batch"], row["classes"], row["steps"], row["dtype"]) == (
            cfg.rule.name, cfg.net.to_string(), cfg.workload.batch, cfg.workload.classes, cfg.workload.steps,
            cfg.workload.dtype)
        _row_matches(row, estimate(cfg, acc, implementation=impl))


def test_estimate_grid_on_a_large_random_sample() -> None:
    """The sweep's shape (10⁴ points per rule here), checked on a random sample of 300 points."""
    rng = np.random.default_rng(0)
    base = make_config("shd")
    axes = (("batch", tuple(range(1, 23))), ("classes", tuple(range(2, 24))), ("steps", tuple(range(5, 105, 5))),
            ("rule", ("tp", "tess", "bptt")))
    grid = Grid(base, axes)
    df = estimate_grid(grid)
    assert len(df) == 22 * 22 * 20 * 3
    shape = [len(v) for _, v in axes]
    for i in rng.choice(len(df), 300, replace=False):
        b, c, t, r = (vals[k] for (_, vals), k in zip(axes, np.unravel_index(i, shape)))
        _row_matches(df.iloc[i], estimate(make_config("shd", r, batch=b, classes=c, steps=t)), at_peak=False)


def test_grid_rejects_bad_axes_and_caps_its_size() -> None:
    base = make_config("shd")
    with pytest.raises(UserError, match="unknown axis"):
        Grid(base, (("colour", (1,)),))
    with pytest.raises(UserError, match="too many"):
        Grid(base, (("batch", tuple(range(1, 10_001))), ("classes", tuple(range(1, 10_001)))))
    with pytest.raises(UserError, match="batch"):
        Grid(base, (("batch", (8, 0)),))
    with pytest.raises(UserError, match="rule"):
        Grid(base, (("rule", ("tp", "nope")),))


def test_depth_is_capped_and_linear() -> None:
    with pytest.raises(UserError, match="at most 1024"):
        make_config("-".join(["10"] + ["4"] * 1025 + ["2"]))
    import time

    def secs(depth: int) -> float:
        """The best of three (one run can catch a garbage collection or a busy neighbour)."""
        cfg = make_config("-".join(["10"] + ["8"] * depth + ["2"]), "bptt")
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            estimate(cfg)
            best = min(best, time.perf_counter() - t0)
        return best

    secs(8)
    # linear in depth: 8x the layers takes nowhere near 64x the time (a loose bound for a noisy machine)
    assert secs(800) < 30 * secs(100) + 0.05


def test_local_vs_bptt_crossover_in_t() -> None:
    cfg = make_config("shd", "tp")
    t_star = int(regimes.local_vs_bptt_crossover(cfg, "tp"))
    bptt = lambda t: estimate(make_config("shd", "bptt", steps=t)).peak_bytes  # noqa: E731
    tp = estimate(cfg).peak_bytes
    assert bptt(t_star) > tp
    if t_star > 1:
        assert bptt(t_star - 1) <= tp


def test_full_crossover_single_layer_never_for_large_batch() -> None:
    # one hidden layer: S (C·H) and B_1 (C·H) grow alike, so the peak never crosses at B = 128
    assert np.isinf(regimes.tp_tess_crossover(make_config("700-450-20"), [128])[0])


def test_paper_crossover_closed_form() -> None:
    # the paper's accountings, searched on the model, meet their closed forms C* = B + 1 and BL/(L − 1)
    assert regimes.tp_tess_crossover(make_config("700-450-20"), [64], accounting="paper", metric="total")[0] == 65
    assert regimes.tp_tess_crossover(make_config("700-450-450-20"), [16], accounting="paper+s",
                                     metric="total")[0] == 33
    assert np.isinf(regimes.tp_tess_crossover(make_config("700-450-20"), [16], accounting="paper+s",
                                              metric="total", c_max=10**6)[0])


@pytest.mark.parametrize("param", regimes.DESIGN_PARAMS)
def test_inverse_design_is_the_boundary(param: str) -> None:
    budget = 2 * 2 ** 20
    cfg = make_config("100-64-10", "tp", batch=16, classes=10, steps=50)
    for impl in (True, False):
        v = regimes.largest_fitting(cfg, budget, param, implementation=impl)
        assert v >= 1
        assert estimate(regimes.resize(cfg, param, v), implementation=impl).peak_bytes <= budget
        assert estimate(regimes.resize(cfg, param, v + 1), implementation=impl).peak_bytes > budget


def test_inverse_design_none_fits() -> None:
    assert regimes.largest_fitting(make_config("shd", "bptt"), 1000, "batch") == 0


def test_best_other_rule_equals_a_brute_force_min() -> None:
    rules = ("bptt", "tp", "tess", "eprop", "ottt")
    grid = Grid(make_config("700-128-128-20"), (("classes", (5, 50, 2000)), ("rule", rules), ("batch", (1, 16, 256))))
    df = estimate_grid(grid)
    for r in df.to_dict("records"):
        peaks = {x: estimate(make_config("700-128-128-20", x, batch=r["batch"], classes=r["classes"])).peak_bytes
                 for x in rules}
        other = min((x for x in rules if x != "tp"), key=lambda x: (peaks[x], rules.index(x)))
        assert r["best_other"] == other and r["best_other_peak_bytes"] == peaks[other]
        assert r["best_rule"] == min(rules, key=lambda x: (peaks[x], rules.index(x)))
        assert r["tp_margin"] == pytest.approx(peaks[other] / peaks["tp"])


@pytest.mark.parametrize("param", ["batch", "classes"])
def test_joint_search_equals_one_search_per_rule(param: str) -> None:
    for net in ("shd", "40-256-256-10", "2x8x8-c4p-10"):
        cfg = make_config(net)
        for budget in (1000, 3 * 2 ** 20 + 7, 2 ** 24, 2 ** 40):
            joint = regimes.largest_fitting_rules(cfg, ("tp", "tess", "bptt"), budget, param)
            assert joint == {r: regimes.largest_fitting(cfg.with_(name=r), budget, param)
                             for r in ("tp", "tess", "bptt")}


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


@pytest.mark.parametrize("size", [-1, np.array([4, -1, 0], dtype=np.int64)])
def test_negative_term_size_is_refused_for_scalars_and_arrays(size):
    from tpprof.analytic.terms import MemoryTerm

    with pytest.raises(ValueError, match="negative size"):
        MemoryTerm("x", "weights", size, size, True, "test")
    MemoryTerm("x", "weights", np.abs(size), np.abs(size), True, "test")  # the same sizes, non-negative: accepted


@pytest.mark.parametrize("size,zero", [(0, True), (3, False), (np.zeros(3, np.int64), True),
                                        (np.array([0, 2], np.int64), False)])
def test_is_zero_on_scalars_and_arrays(size, zero):
    from tpprof.analytic.terms import is_zero

    assert is_zero(size) is zero
