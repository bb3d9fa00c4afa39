"""Locality classes, minimum batch, device capability and the best alternative under a filter
(issue 24, deliverable 1): registry data, grid columns against brute force, and the learners
themselves for "does not learn"."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tpprof.analytic import estimate, estimate_grid
from tpprof.analytic.devices import device_accounting, get_device, load_catalogue
from tpprof.analytic.learnability import (CAPABILITY_RUNS, device_runs, eligible, learns, locality, min_batch,
                                          why_not)
from tpprof.analytic.rules import LOCALITIES, REGISTRY
from tpprof.config import RULES, Grid, RuleSpec, make_config

CLASSES = {
    "local": {"tp", "tess", "etlp", "osttp", "eprop-rfb"},
    "time-local": {"ottt", "eprop", "ostl", "tess-authors-schedule"},
    "through-time": {"bptt", "bptt-compact", "bptt-ckpt", "tbptt"},
}


def test_every_rule_has_a_sourced_locality_class() -> None:
    assert set().union(*CLASSES.values()) == set(RULES)
    for cls, names in CLASSES.items():
        for r in names:
            assert REGISTRY[r].locality == cls, r
            assert len(REGISTRY[r].locality_source) > 40, r


def test_locality_follows_the_rule_options() -> None:
    assert locality(RuleSpec("tess-authors-schedule", delay_ls=0)) == "local"
    assert locality(RuleSpec("bptt", trainable="readout")) == "local"  # only the readout's delta rule
    assert locality(RuleSpec("bptt", trainable="last:1")) == "through-time"


def test_minimum_batch_and_other_conditions() -> None:
    tp = RuleSpec("tp")
    assert min_batch(tp) == 2 and min_batch(RuleSpec("tp", target_rows="classes")) == 2
    assert min_batch(RuleSpec("tp", trainable="readout")) == 1
    assert [r for r in RULES if min_batch(RuleSpec(r)) > 1] == ["tp"]
    assert not learns(tp, 1, 10) and learns(tp, 2, 10)
    assert not learns(RuleSpec("bptt"), 32, 1)  # one class: the cross-entropy is identically zero
    assert not learns(RuleSpec("tess-authors-schedule", delay_ls=0), 8, 10)
    assert "1×1 softmax" in why_not(tp, 1, 10)[0] and why_not(tp, 2, 10) == []


def test_shipped_devices_state_a_sourced_capability() -> None:
    want = {"loihi2": "local", "loihi": "local", "xylo-audio2": "none", "akd1000": "readout", "stm32h743": "any",
            "spinnaker2": "any", "rp2040": "any"}
    for d in load_catalogue():
        assert d.learning_capability in ("none", "readout", "local", "any"), d.name
        if d.kind == "mcu":
            assert d.learning_capability == "any", d.name  # a CPU runs any rule in software
        assert "learning:" in d.source, d.name  # the capability's source is the learning figure's
    for name, cap in want.items():
        assert get_device(name).learning_capability == cap
    assert not device_runs(get_device("loihi2"), RuleSpec("ottt"))
    assert device_runs(get_device("loihi2"), RuleSpec("tp"))
    assert not device_runs(get_device("akd1000"), RuleSpec("tp"))
    assert device_runs(get_device("akd1000"), RuleSpec("tp", trainable="readout"))
    assert not device_runs(get_device("xylo-audio2"), RuleSpec("tp", trainable="readout"))


def test_accounting_follows_the_device() -> None:
    assert device_accounting(get_device("stm32h743"))[0] == "algorithm"
    assert device_accounting(get_device("loihi2"))[0] == "algorithm"
    assert device_accounting(get_device("jetson-nano"))[0] == "full"
    assert device_accounting(None)[0] == "full"


def test_tp_at_batch_one_fits_but_does_not_learn() -> None:
    cfg = make_config("fsdd", "tp", batch=1, optimizer="sgd")
    df = estimate_grid(Grid(cfg, (("rule", ("tp", "ottt")), ("batch", (1, 2)))), budget_bytes=2 ** 20,
                       device=get_device("stm32h743"))
    v = {(r["rule"], r["batch"]): r["verdict"] for r in df.to_dict("records")}
    assert v[("tp", 1)] == "fits, does not learn" and v[("tp", 2)] == "fits" and v[("ottt", 1)] == "fits"
    loihi = estimate_grid(Grid(cfg, (("rule", ("tp", "ottt")),)), budget_bytes=2 ** 30, device=get_device("loihi2"))
    assert list(loihi["verdict"].astype(str)) == ["fits, does not learn", "fits, the device cannot run it"]


_RULE_SETS = st.lists(st.sampled_from([r for r in RULES if r != "tp"]), min_size=1, max_size=6, unique=True)
_FILTERS = st.sampled_from([None, ("local",), ("time-local",), ("through-time",), ("local", "time-local"),
                            ("time-local", "through-time")])
_DEVICES = st.sampled_from([None, "stm32h743", "loihi2", "akd1000", "xylo-audio2"])


@settings(max_examples=25, deadline=None)
@given(others=_RULE_SETS, filt=_FILTERS, dev=_DEVICES, net=st.sampled_from(["40-64-32-10", "30-20r-7"]),
       batches=st.lists(st.integers(1, 300), min_size=1, max_size=3, unique=True),
       classes=st.lists(st.integers(2, 500), min_size=1, max_size=2, unique=True))
def test_best_other_under_a_filter_is_the_brute_force_min(others, filt, dev, net, batches, classes) -> None:
    rules = ("tp", *others)
    base = make_config(net, "tp", optimizer="sgd")
    device = get_device(dev) if dev else None
    rules = tuple(r for r in rules if not (r.startswith("tess-authors") and "r-" in net))
    assume(len(rules) > 1)  # the authors' TESS refuses recurrent nets: TP alone has no comparison
    grid = Grid(base, (("classes", tuple(classes)), ("rule", rules), ("batch", tuple(batches))))
    df = estimate_grid(grid, device=device, locality=filt)
    for r in df.to_dict("records"):
        peaks = {x: estimate(make_config(net, x, batch=r["batch"], classes=r["classes"], optimizer="sgd")).peak_bytes
                 for x in rules}
        allowed = [x for x in rules if eligible(RuleSpec(x), device, filt)]
        allowed_others = [x for x in allowed if x != "tp"]
        if not allowed_others:
            assert r["best_other"] != r["best_other"]  # NaN: no alternative to name
            assert r["tp_margin"] != r["tp_margin"]
            continue
        other = min(allowed_others, key=lambda x: (peaks[x], rules.index(x)))
        assert r["best_other"] == other and r["best_other_peak_bytes"] == peaks[other]
        assert r["tp_margin"] == pytest.approx(peaks[other] / peaks["tp"])
        assert r["best_rule"] == min(allowed, key=lambda x: (peaks[x], rules.index(x)))
        assert r["eligible"] == (r["rule"] in allowed)


def test_capability_table_is_ordered_by_locality() -> None:
    assert CAPABILITY_RUNS["any"] == LOCALITIES and CAPABILITY_RUNS["none"] == ()


# ---- the learners themselves ------------------------------------------------------------


def _hidden_moves(rule: str, batch: int, labels: list[int], classes: int = 5, prefix: str = "layer", **opts) -> bool:
    torch = pytest.importorskip("torch")
    from tpprof.snn import make_learner

    cfg = make_config("20-16-16-5", rule, batch=batch, classes=classes, steps=8, optimizer="sgd", lr=0.05, **opts)
    learner = make_learner(cfg, dtype=torch.float64, seed=1)
    before = {k: p.detach().clone() for k, p in learner.named_parameters()}
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        x = (torch.rand((batch, 8, 20), generator=gen) < 0.4).to(torch.float64)
        learner.train_batch(x, torch.tensor(labels))
    return any(not torch.equal(p.detach(), before[k]) for k, p in learner.named_parameters() if k.startswith(prefix))


@pytest.mark.parametrize("rows", ["batch", "classes"])
def test_tp_learner_at_batch_one_leaves_hidden_weights_unchanged(rows: str) -> None:
    assert not _hidden_moves("tp", 1, [3], target_rows=rows)  # 1×1 softmax: identically zero
    assert not _hidden_moves("tp", 2, [3, 3], target_rows=rows)  # one class: equal target rows, K = 1
    assert _hidden_moves("tp", 2, [1, 3], target_rows=rows)


@pytest.mark.parametrize("rule", ["tess", "bptt", "ottt"])
def test_other_learners_learn_at_batch_one(rule: str) -> None:
    assert _hidden_moves(rule, 1, [3])


@pytest.mark.parametrize("rule", ["tp", "tess", "bptt", "ottt"])
def test_one_class_learns_nothing(rule: str) -> None:
    assert not _hidden_moves(rule, 4, [0, 0, 0, 0], classes=1, prefix="")  # no weight at all moves


def test_views_say_fits_does_not_learn_and_filter_the_best() -> None:
    from tpprof import views

    net = make_config("40-64-10")
    reg = views.regime_frame(net, 2 ** 30, batch=(1, 64), classes=(2, 50), points=4)
    b1 = reg[(reg["batch"] == 1)]
    assert set(b1["verdict"]) == {views.TP_NO_LEARNING}
    assert set(b1.loc[b1["rule"] == "tp", "status"]) == {"fits, does not learn"}
    assert "TP fits, does not learn" not in set(reg.loc[reg["batch"] > 1, "verdict"])
    best = views.figure5_frame(net, "full", points=3, versus="best", locality=("local",))
    assert set(best["other"]) <= CLASSES["local"] and "locality local" in best.attrs["alternatives"]
    on_loihi = make_config("40-64-10", device=get_device("loihi2"))  # the default: what the device can run
    loihi = views.figure5_frame(on_loihi, "full", points=3, versus="best")
    assert set(loihi["other"]) == {"tess"}  # the only other local rule with a learner
    inv = views.inverse_frame(make_config("fsdd", optimizer="sgd"), ("tp", "tess"), 670_000).set_index("rule")
    assert inv.loc["tp", "max_batch"] == 1 and not inv.loc["tp", "learns"] and inv.loc["tess", "learns"]
    alg = views.regime_frame(net, 2 ** 20, points=3, accounting="algorithm")["peak_bytes"].to_numpy()
    full = views.regime_frame(net, 2 ** 20, points=3)["peak_bytes"].to_numpy()
    assert (alg < full).all()  # a lean implementation holds no PyTorch temporaries


# ---- train only what fits (RuleSpec.trainable) -------------------------------------------


@pytest.mark.parametrize("rule", ["tp", "tess", "ottt", "bptt", "tbptt", "tess-authors-schedule"])
def test_frozen_layers_get_no_update_and_trained_ones_the_full_update(rule: str) -> None:
    """Oracle: with one update per mini-batch (cadence sequence), the trained layers' new weights
    under trainable = last:1 equal those of the same learner training every layer."""
    torch = pytest.importorskip("torch")
    from tpprof.snn import make_learner

    gen = torch.Generator().manual_seed(3)
    x = (torch.rand((4, 12, 20), generator=gen) < 0.5).to(torch.float64) * 3  # (B, T, F)
    y = torch.tensor([0, 1, 2, 3])
    after = {}
    for trainable in ("all", "last:1"):
        cfg = make_config("20-16-16-12-5", rule, batch=4, steps=12, optimizer="sgd", lr=0.05, cadence="sequence",
                          trainable=trainable)
        learner = make_learner(cfg, dtype=torch.float64, seed=1)
        before = {k: p.detach().clone() for k, p in learner.named_parameters()}
        learner.train_batch(x, y)
        after[trainable] = {k: p.detach().clone() for k, p in learner.named_parameters()}
        moved = {k for k, p in after[trainable].items() if not torch.equal(p, before[k])}
        if trainable == "last:1":
            assert moved >= {"layer3.W", "readout.W"} and not moved & {"layer1.W", "layer2.W"}, moved
    for k in ("layer3.W", "readout.W"):
        assert torch.allclose(after["all"][k], after["last:1"][k], rtol=0, atol=1e-12), k


def test_trainable_memory_shrinks_and_is_sourced() -> None:
    cfg = make_config("fsdd", "tp", batch=16, optimizer="adam")
    full = estimate(cfg, "algorithm")
    last1 = estimate(cfg.with_(trainable="last:1"), "algorithm")
    ro = estimate(cfg.with_(trainable="readout"), "algorithm")
    assert ro.peak_bytes < last1.peak_bytes < full.peak_bytes
    n1 = cfg.net.geometry()[0].n_weights
    # layer 1 frozen under last:1: its W_1 gradient and Adam's two moments are gone
    assert full.by_category()["optimizer"] - last1.by_category()["optimizer"] == 2 * n1 * 4
    assert not any("target" in t.name for t in ro.terms if t.category in ("neuron_state", "traces"))
    assert any("trainable = readout" in x for x in ro.not_modelled)
    with pytest.raises(Exception, match="trainable"):
        cfg.with_(trainable="last:3")  # the net has 2 hidden layers
    with pytest.raises(Exception, match="trainable"):
        RuleSpec(trainable="first:1")


# ---- tpprof fit (inverse design) ----------------------------------------------------------


def _fit(*argv: str) -> dict:
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tpprof", "fit", *argv, "--json"], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def test_fit_largest_batch_and_classes_are_the_boundary() -> None:
    from tpprof.analytic.devices import get_device

    budget = get_device("stm32h743").budget_bytes
    for what in ("batch", "classes"):
        doc = _fit("--device", "stm32h743", "--net", "fsdd", "--rule", "tp,tess,ottt,bptt", "--largest", what,
                   "--optimizer", "sgd", "--batch", "4")
        assert "microcontroller" in doc["accounting_why"]
        for r in doc["rows"]:
            v = r["value"]
            base = make_config("fsdd", r["rule"], batch=4, optimizer="sgd")
            if v is None:
                assert estimate(base.with_(**{what: 1}), "algorithm").peak_bytes > budget
                continue
            assert estimate(base.with_(**{what: v}), "algorithm").peak_bytes <= budget
            assert estimate(base.with_(**{what: v + 1}), "algorithm").peak_bytes > budget
        values = [r["value"] or 0 for r in doc["rows"]]
        assert values == sorted(values, reverse=True)  # ranked, largest first


def test_fit_trained_layers_is_a_brute_force_max() -> None:
    from tpprof.analytic.regimes import trainable_for

    doc = _fit("--budget", "1.8MiB", "--net", "40-256-256-256-10", "--rule", "tp,bptt", "--largest",
               "trained-layers", "--batch", "8", "--optimizer", "adam", "--accounting", "algorithm")
    for r in doc["rows"]:
        base = make_config("40-256-256-256-10", r["rule"], batch=8, optimizer="adam")
        fits = [k for k in range(4)
                if estimate(base.with_(trainable=trainable_for(k, 3)), "algorithm").peak_bytes <= int(1.8 * 2 ** 20)]
        assert r["value"] == (max(fits) if fits else None), (r, fits)
    assert any(0 < (r["value"] or 0) < 3 for r in doc["rows"]), doc["rows"]  # the budget cuts between layers


def test_fit_says_when_the_largest_point_does_not_learn() -> None:
    doc = _fit("--budget", "665000", "--net", "fsdd", "--rule", "tp", "--largest", "batch", "--optimizer", "sgd",
               "--accounting", "full")
    (row,) = doc["rows"]
    assert row["value"] == 1 and row["verdict"] == "fits, does not learn" and "1×1 softmax" in row["why_not_learning"]


def test_fit_table_names_the_device_accounting_and_ranking() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tpprof", "fit", "--device", "loihi2", "--net", "40-64-10", "--rule",
                          "tp,ottt", "--largest", "trained-layers"], capture_output=True, text=True, check=True).stdout
    assert "neuromorphic chip" in out and "ranked among the rules loihi2 can run" in out
    assert "fits, the device cannot run it" in out and "time-local (excluded)" in out
