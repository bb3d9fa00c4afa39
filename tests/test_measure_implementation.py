"""Implementation terms: a golden hand derivation, and the allocator as the oracle.

The oracle test runs small learners under the profiler counter and compares the measured
peak (+ input frames kept for backward) with ``estimate(cfg, accounting="full")``.
"""

from __future__ import annotations

import pytest

from tpprof.analytic.implementation import implementation_terms
from tpprof.config import make_config


def test_tp_terms_golden_hand_derivation() -> None:
    # net 20-8-4, B=4, C=4, T=3, fp32, Adam; W_1 8×20 = 160 elements, W_out 4×8 = 32.
    terms = {t.name: (t.count, t.bytes, t.phases) for t in implementation_terms(make_config("20-8-4", "tp", 4, 4, 3))}
    # p.grad held all the time; the algorithm holds grad W_1 in loss:1 (so W_out's 32 extra)
    # and grad W_out in the readout phase (so W_1's 160 extra)
    assert terms["p.grad buffers outside their update (loss:1)"] == (32, 128, ("loss:1",))
    assert terms["p.grad buffers outside their update (readout)"] == (160, 640, ("readout",))
    assert terms["Adam step counters"] == (2, 8, ())  # 2 parameter tensors × 4 B
    assert terms["one-hot labels c (B × C)"] == (16, 64, ())
    # layer 1: base 6·B·n·d = 6·4·8·4 = 768 B; sim = c cᵀ, B²·d = 64; loss moment: sim + z, y,
    # G (3·64) + dε (B·n·d = 128) = 384 (> sim, Θ′ moment 64 + 128 + 128 = 320) → peak 1152 B;
    # minus the algorithmic z, y, softmax (3·16·4 = 192) and δ (128) → 832 B = 208 elements
    assert terms["layer1/step temporaries beyond Eqs. 13–18"] == (208, 832, ("loss:1",))
    # readout: the last layer's leftovers, base 768 + δ 128 + sim 64 = 960 B (on top of the
    # algorithm's softmax(m) − c)
    assert terms["readout-phase leftovers"] == (240, 960, ("readout",))


def test_bptt_accumulation_golden() -> None:
    # 20-8-4, T=3: weights 160 and 32: running sums 192 + 2·160 for the largest weight's
    # out-of-place accumulation = 512 elements
    terms = {t.name: t.count for t in implementation_terms(make_config("20-8-4", "bptt", 4, 4, 3))}
    assert terms["autograd gradient accumulation over T"] == 512
    assert terms["last input current (B × n_nrn_L)"] == 4 * 8
    # cross_entropy keeps log_softmax(m^T) (B·C); its gradient is the algorithmic ∂E/∂m
    assert terms["log-softmax output (B × C)"] == 4 * 4
    assert terms["loss scalars (3)"] == 3
    assert not any("ws" in n or "standardisation" in n for n in terms)  # dense: one backward moment
    # 20-8-40: W_out (40·8 = 320) is the largest weight; its backward node also returns the spike
    # adjoint ∂E/∂s_L (B·8 = 32): running sums 160 + 320, plus 2·320 + 32 = 672 → 1152
    wide = {t.name: t.count for t in implementation_terms(make_config("20-8-40", "bptt", 4, 40, 3))}
    assert wide["autograd gradient accumulation over T"] == 1152
    one_step = {t.name: t.count for t in implementation_terms(make_config("20-8-4", "bptt", 4, 4, 1))}
    assert one_step["autograd gradient accumulation over T"] == 192  # T = 1: nothing summed


def test_bptt_standardisation_moment_golden() -> None:
    # vgg9 on 2x32x32, B=2, C=11, T=2: after the time loop the standardisation backward runs with
    # every saved tensor still in the learner's record and no adjoint live (snn/bptt.py)
    cfg = make_config("vgg9:2x32x32", "bptt", 2, 11, 2)
    terms = {t.name: t for t in implementation_terms(cfg)}
    from tpprof.analytic import estimate
    algo = estimate(cfg, implementation=False).terms
    ws = [g.n_weights for g in cfg.net.geometry() if g.kind == "conv"]  # all vgg9 conv layers standardise
    assert terms["saved tensors still held by the learner's record"].bytes == sum(
        t.bytes for t in algo if t.category == "saved")
    assert terms["standardisation backward: dŴ sums and the division's backward"].count == sum(ws) + 4 * max(ws)
    assert terms["saved tensors still held by the learner's record"].phases == ("backward:ws-end",)
    # p.grad of every parameter is live there (no algorithmic gradient term lists that moment)
    n_params = sum(ws) + cfg.net.geometry()[-1].n_out * 11
    assert terms["p.grad buffers outside their update (backward:ws-end)"].count == n_params


def test_sequence_cadence_has_no_grad_complement() -> None:
    names = [t.name for t in implementation_terms(make_config("20-8-4", "tp", 4, 4, 3, cadence="sequence"))]
    assert not any(n.startswith("p.grad") for n in names)


def test_every_term_names_its_source() -> None:
    for rule in ("tp", "tess", "bptt"):
        for t in implementation_terms(make_config("vgg9:2x32x32", rule, 2, None, 2)):
            assert t.category == "implementation" and t.source.startswith("implementation: ")


torch = pytest.importorskip("torch")

# (rule, net, B, T, tolerance on |measured / analytic − 1|). The residue is a few scalar
# tensors (4–8 B each) and, with a recurrent layer before a dense one, which of layer l−1's
# leftovers are still referenced at layer l's peak (modelled for the common moments only).
# BPTT: exact up to a few scalars since the algorithmic terms count s_l^T once and one carried
# adjoint per layer (checked block by block with `tpprof measure --explain`).
ORACLE = [
    ("tp", "64-48-10", 8, 3, 0.002),
    ("tess", "64-48-10", 8, 3, 0.002),
    ("tp", "64-48r-32-10", 8, 3, 0.005),
    ("tess", "64-48r-32-10", 8, 3, 0.01),
    ("bptt", "64-48-10", 8, 3, 0.002),
    ("bptt", "64-48r-32-10", 8, 3, 0.002),
    ("bptt", "64-48-100", 8, 3, 0.002),  # W_out is the largest weight: the readout's accumulation moment
]


@pytest.mark.parametrize("rule,net,batch,steps,tol", ORACLE)
def test_full_model_matches_the_allocator(rule: str, net: str, batch: int, steps: int, tol: float) -> None:
    from tpprof.analytic import estimate
    from tpprof.measure.protocol import measure_point
    from tpprof.validate import measured_total

    cfg = make_config(net, rule, batch, None, steps)
    row = measure_point(cfg, batches=1, repeats=1, rss=False)
    ratio = measured_total(row) / estimate(cfg, accounting="full").peak_bytes
    assert abs(ratio - 1) <= tol, f"{rule} {net}: measured/analytic = {ratio:.4f}"


# RuleSpec.trainable: frozen layers hold no gradient or optimiser state (TP readout-only no target
# path; TESS no traces; OTTT / BPTT no backward through them); a frozen layer's forward (inside
# lif_step: current, potential, new v and s) is its peak moment when it is the largest layer.
ORACLE_FROZEN = [
    ("tp", "64-48-32-10", "readout"), ("tp", "64-48-32-10", "last:1"), ("tp", "64-48r-32-10", "last:1"),
    ("tess", "64-48-32-10", "readout"), ("tess", "64-48-32-10", "last:1"),
    ("ottt", "64-48-32-10", "readout"), ("ottt", "64-48-32-10", "last:1"),
    ("bptt", "64-48-32-10", "last:1"),
]


@pytest.mark.parametrize("rule,net,trainable", ORACLE_FROZEN)
def test_frozen_layers_match_the_allocator(rule: str, net: str, trainable: str) -> None:
    from tpprof.analytic import estimate
    from tpprof.measure.protocol import measure_point
    from tpprof.validate import measured_total

    cfg = make_config(net, rule, 8, None, 4, trainable=trainable)
    row = measure_point(cfg, batches=1, repeats=1, rss=False)
    ratio = measured_total(row) / estimate(cfg, accounting="full").peak_bytes
    assert abs(ratio - 1) <= 0.005, f"{rule} {net} {trainable}: measured/analytic = {ratio:.4f}"
