"""Golden numbers for every term of TP, TESS and BPTT on tiny configs, derived by hand.

Net 4-3-5-2: F = 4 inputs, hidden widths H1 = 3, H2 = 5, readout C = 2; B = 2, T = 5, fp32
(4 bytes), Adam (2 buffers per parameter), update every step, aux stored.
Parameters: W_1 = 3·4 = 12, W_2 = 5·3 = 15, W_out = 2·5 = 10 → 37 elements.
"""

from __future__ import annotations

import pytest

from tpprof.analytic import estimate
from tpprof.config import make_config


def _cfg(rule: str, **kw):
    return make_config("4-3-5-2", rule, batch=2, classes=2, steps=5, dtype="fp32", optimizer="adam", **kw)


def _algorithmic(rule: str, **kw):
    bd = estimate(_cfg(rule, **kw), implementation=False)
    return bd, {t.name: (t.count, t.persistent, t.phases) for t in bd.terms}


P = ()  # persistent: no phases

TP_TERMS = {
    # parameters: W_l is n_out × n_in; gradient lives while layer l's loss is processed; Adam 2×
    "layer1/W": (12, True, P),                      # 3·4
    "layer1/grad W": (12, False, ("loss:1",)),
    "layer1/adam state W": (24, True, P),           # 2·12
    "layer2/W": (15, True, P),                      # 5·3
    "layer2/grad W": (15, False, ("loss:2",)),
    "layer2/adam state W": (30, True, P),           # 2·15
    "W_out": (10, True, P),                         # 2·5
    "grad W_out": (10, False, ("readout",)),
    "adam state W_out": (20, True, P),
    "layer1/S (label projection)": (6, True, P),    # C·H1 = 2·3
    # no ε̃_0 term: ε̃_0 = κ_t c (constant label within the mini-batch), κ_t a scalar
    # layer 1: v and s per path at B·H1 = 6, traces at B·H1 = 6
    "layer1/v (input path)": (6, True, P), "layer1/s (input path)": (6, True, P),
    "layer1/v (target path)": (6, True, P), "layer1/s (target path)": (6, True, P),
    "layer1/ε (input trace)": (6, True, P), "layer1/ε̃ (target trace)": (6, True, P),
    # layer 2: B·H2 = 10 each
    "layer2/v (input path)": (10, True, P), "layer2/s (input path)": (10, True, P),
    "layer2/v (target path)": (10, True, P), "layer2/s (target path)": (10, True, P),
    "layer2/ε (input trace)": (10, True, P), "layer2/ε̃ (target trace)": (10, True, P),
    # B×B loss buffers (B² = 4) per layer, live only during that layer's loss
    "layer1/z (similarity)": (4, False, ("loss:1",)), "layer1/y (soft targets)": (4, False, ("loss:1",)),
    "layer1/softmax(z)": (4, False, ("loss:1",)),
    "layer1/δ (input-path signal)": (6, False, ("loss:1",)),   # B·H1; no δ̃ at l = 1 (target via S)
    "layer2/z (similarity)": (4, False, ("loss:2",)), "layer2/y (soft targets)": (4, False, ("loss:2",)),
    "layer2/softmax(z)": (4, False, ("loss:2",)),
    "layer2/δ (input-path signal)": (10, False, ("loss:2",)),  # B·H2
    "layer2/δ̃ (target-path signal)": (10, False, ("loss:2",)),  # B·H2 (W_2 shared by the target path)
    "m (readout potential)": (4, True, P),          # B·C
    "softmax(m) − c": (4, False, ("readout",)),     # B·C
}


def test_tp_every_term() -> None:
    bd, terms = _algorithmic("tp")
    assert terms == TP_TERMS
    # persistent: weights 37 + Adam 74 + S 6 + layer 1 (4·6 + 2·6) + layer 2 (4·10 + 2·10) + m 4 = 217
    # phases: loss:1 = 12 + 3·4 + 6 = 30; loss:2 = 15 + 3·4 + 10 + 10 = 47; readout = 10 + 4 = 14
    assert bd.persistent_bytes == 217 * 4
    assert bd.phase_bytes() == {"loss:1": 30 * 4, "loss:2": 47 * 4, "readout": 14 * 4}
    assert bd.peak_bytes == (217 + 47) * 4 == 1056
    assert bd.peak_phase == "loss:2"
    assert bd.total_bytes == (217 + 30 + 47 + 14) * 4 == 1232


def test_tp_sequence_cadence_makes_gradients_persistent_accumulators() -> None:
    bd, terms = _algorithmic("tp", cadence="sequence")
    assert terms["layer1/grad W"] == (12, True, P)
    assert terms["grad W_out"] == (10, True, P)
    # persistent 217 + 37 grads; loss:2 = 3·4 + 20 = 32 (largest phase)
    assert bd.peak_bytes == (217 + 37 + 32) * 4


def test_tp_regenerated_s_moves_s_to_compute() -> None:
    bd, terms = _algorithmic("tp", aux="regenerated")
    assert "layer1/S (label projection)" not in terms
    assert any(c.name == "layer1/regenerate S rows" and c.elementwise == 2 * 3 for c in bd.compute)  # min(B,C)·H1


def test_tp_train_s_adds_parameter_and_delta_tilde_at_layer1() -> None:
    _, terms = _algorithmic("tp", train_s=True)
    assert terms["layer1/S"] == (6, True, P)
    assert terms["layer1/grad S"] == (6, False, ("loss:1",))
    assert terms["layer1/adam state S"] == (12, True, P)
    assert terms["layer1/δ̃ (target-path signal)"] == (6, False, ("loss:1",))


TESS_TERMS = {
    "layer1/W": (12, True, P), "layer1/grad W": (12, False, ("loss:1",)), "layer1/adam state W": (24, True, P),
    "layer2/W": (15, True, P), "layer2/grad W": (15, False, ("loss:2",)), "layer2/adam state W": (30, True, P),
    "W_out": (10, True, P), "grad W_out": (10, False, ("readout",)), "adam state W_out": (20, True, P),
    # layer 1: v, s at B·H1 = 6; trace_in at B·F = 8; trace_out at B·H1 = 6; B_1 at C·H1 = 6
    "layer1/v": (6, True, P), "layer1/s": (6, True, P), "layer1/trace_in": (8, True, P),
    "layer1/trace_out": (6, True, P), "layer1/B_l (LSG matrix)": (6, True, P),
    # layer 2: v, s at 10; trace_in at B·H1 = 6; trace_out at 10; B_2 at C·H2 = 10
    "layer2/v": (10, True, P), "layer2/s": (10, True, P), "layer2/trace_in": (6, True, P),
    "layer2/trace_out": (10, True, P), "layer2/B_l (LSG matrix)": (10, True, P),
    # learning signals, layer by layer: p − t* at B·C = 4, δ causal and non-causal at B·H_l
    "layer1/p − t* (LSG error)": (4, False, ("loss:1",)), "layer1/δ causal": (6, False, ("loss:1",)),
    "layer1/δ non-causal": (6, False, ("loss:1",)),
    "layer2/p − t* (LSG error)": (4, False, ("loss:2",)), "layer2/δ causal": (10, False, ("loss:2",)),
    "layer2/δ non-causal": (10, False, ("loss:2",)),
    "m (readout potential)": (4, True, P), "ε_L (readout input trace)": (10, True, P),  # B·C, B·H2
    "softmax(m) − c": (4, False, ("readout",)),
}


def test_tess_every_term() -> None:
    bd, terms = _algorithmic("tess")
    assert terms == TESS_TERMS
    # persistent: 37 + 74 + layer 1 (6+6+8+6+6 = 32) + layer 2 (10+10+6+10+10 = 46) + m 4 + ε_L 10 = 203
    # loss:1 = 12 + 4 + 6 + 6 = 28; loss:2 = 15 + 4 + 10 + 10 = 39; readout = 10 + 4 = 14
    assert bd.persistent_bytes == 203 * 4
    assert bd.peak_bytes == (203 + 39) * 4 == 968
    assert bd.total_bytes == (203 + 28 + 39 + 14) * 4 == 1136


def test_tess_zero_factor_drops_the_unused_trace() -> None:
    # DVS factors (λ_post, λ_pre, α_post, α_pre) = (0.2, 0.5, 0, 1): no non-causal term
    _, terms = _algorithmic("tess", tess_factors=(0.2, 0.5, 0.0, 1.0))
    assert "layer1/trace_out" not in terms and "layer1/δ non-causal" not in terms
    assert terms["layer1/trace_in"] == (8, True, P)


BW = ("backward",)
BPTT_TERMS = {
    "layer1/W": (12, True, P), "layer1/grad W": (12, False, ("backward", "update")),
    "layer1/adam state W": (24, True, P),
    "layer2/W": (15, True, P), "layer2/grad W": (15, False, ("backward", "update")),
    "layer2/adam state W": (30, True, P),
    "W_out": (10, True, P), "grad W_out": (10, False, ("backward", "update")), "adam state W_out": (20, True, P),
    "layer1/v": (6, True, P), "layer1/s": (6, True, P), "layer2/v": (10, True, P), "layer2/s": (10, True, P),
    "layer1/saved input x^t × T": (40, False, BW),           # T·B·F = 5·2·4
    "layer1/saved u × T": (30, False, BW),                   # T·B·H1 = 5·2·3
    "layer1/adjoint δ = ∂E/∂u (carried)": (6, False, BW),    # B·H1; ∂E/∂s is consumed as formed
    # s_1^1 … s_1^4 only: s_1^5 is the state layer1/s
    "layer2/saved input s_{l−1}^t × (T−1)": (24, False, BW),  # (T−1)·B·H1 = 4·2·3
    "layer2/saved u × T": (50, False, BW),                   # T·B·H2
    "layer2/adjoint δ = ∂E/∂u (carried)": (10, False, BW),   # B·H2
    "saved s_L × (T−1)": (40, False, BW),                    # (T−1)·B·H2 = 4·2·5 (s_2^5 is layer2/s)
    "∂E/∂m": (4, False, BW),                                 # B·C
    "m (readout potential)": (4, True, P),
}


def test_bptt_every_term() -> None:
    bd, terms = _algorithmic("bptt")
    assert terms == BPTT_TERMS
    # persistent 37 + 74 + 6 + 6 + 10 + 10 + 4 = 147; backward = 37 + 40 + 30 + 6 + 24 + 50 + 10 + 40 + 4 = 241
    assert bd.persistent_bytes == 147 * 4
    assert bd.peak_bytes == (147 + 241) * 4 == 1552
    assert bd.total_bytes == 1552  # every transient is live in the backward phase


def test_bptt_ignores_cadence() -> None:
    assert estimate(_cfg("bptt", cadence="sequence")).peak_bytes == estimate(_cfg("bptt")).peak_bytes


def test_tp_conv_layer_uses_pooled_trace_shape() -> None:
    # 2x4x4 input, conv 3 channels 3x3 + max-pool 2: neurons 3·4·4 = 48, output 3·2·2 = 12, W = 9·2·3 = 54
    cfg = make_config("2x4x4-c3p-2", "tp", batch=2, classes=2, steps=5, optimizer="adam")
    bd = estimate(cfg, implementation=False)
    terms = {t.name: (t.count, t.persistent, t.phases) for t in bd.terms}
    assert terms["layer1/W"] == (54, True, P)
    assert terms["layer1/v (input path)"] == (2 * 48, True, P) and terms["layer1/s (target path)"] == (2 * 48, True, P)
    # pooled spikes are a transient of the step: formed at layer 1, read by the readout (last layer)
    assert terms["layer1/pooled s (input path)"] == (2 * 12, False, ("loss:1", "readout"))
    assert terms["layer1/pooled s (target path)"] == (2 * 12, False, ("loss:1", "readout"))
    assert terms["layer1/ε (input trace)"][0] == 2 * 12 and terms["layer1/ε̃ (target trace)"][0] == 2 * 12
    assert terms["layer1/S (label projection)"][0] == 2 * 48  # C → C_1·H·W
    assert terms["W_out"][0] == 12 * 2
    assert terms["layer1/δ (input-path signal)"][0] == 2 * 48  # un-pooled
    # persistent: W 54 + Adam 108 + W_out 24 + Adam 48 + S 96 + v, s per path 4·96 + ε, ε̃ 2·24 + m 4 = 766
    # loss:1 = grad W 54 + z, y, softmax 3·4 + δ 96 + pooled s 2·24 = 210; readout = 24 + 4 + 48 = 76
    assert bd.persistent_bytes == 766 * 4
    assert bd.phase_bytes() == {"loss:1": 210 * 4, "readout": 76 * 4}


def test_pooled_spikes_live_in_the_next_layers_phase() -> None:
    # 2x4x4-c3p-c2-2: layer 1 pools 48 → 12 neurons' spikes; its pooled output is layer 2's input
    for rule in ("tp", "tess", "eprop", "ostl", "osttp", "etlp"):
        terms = {t.name: t for t in estimate(make_config("2x4x4-c3p-c2-2", rule, batch=2, classes=2, steps=5),
                                             implementation=False).terms}
        pooled = [t for n, t in terms.items() if "pooled s" in n]
        assert pooled and all(not t.persistent and t.phases == ("loss:1", "loss:2") for t in pooled), rule
        assert not any("pooled" in n for n in terms if n.startswith("layer2/")), rule  # layer 2 is unpooled
    for rule in ("bptt", "ottt"):  # the pooled output is saved as layer 2's input / used in the forward only
        names = [t.name for t in estimate(make_config("2x4x4-c3p-c2-2", rule, batch=2, classes=2, steps=5),
                                          implementation=False).terms]
        assert not any("pooled s" in n for n in names), rule


def test_tp_label_trace_is_a_scalar() -> None:
    # ε̃_0 = κ_t c with κ_t = β κ_{t−1} + 1: no B × C tensor, one scalar multiply-add per step
    bd = estimate(_cfg("tp"), implementation=False)
    assert not any("ε̃_0" in t.name for t in bd.terms)
    assert {c.name: (c.macs, c.elementwise) for c in bd.compute}["label-trace scale κ_t"] == (0, 2)


def test_tp_recurrent_layer1_needs_the_target_path_term() -> None:
    # 4-3r-2, B = C = 2: W_1 = 3·4 = 12, R_1 = 3·3 = 9. R_1 s̃_1^{t−1} drives the target path, so
    # Eq. 18 gives dR_1 = δ_1ᵀ s_1^{t−1} + δ̃_1ᵀ s̃_1^{t−1}: δ̃_1 (B·H1 = 6) lives in loss:1, even though
    # W_1 gets only the input-path term (layer 1's target input is S c).
    bd = estimate(make_config("4-3r-2", "tp", batch=2, classes=2, steps=5), implementation=False)
    terms = {t.name: (t.count, t.persistent, t.phases) for t in bd.terms}
    assert terms["layer1/δ̃ (target-path signal)"] == (6, False, ("loss:1",))
    c = {t.name: t.macs for t in bd.compute}
    assert c["layer1/Eq. 18 B×B products"] == 2 * 2 * 2 * 3   # two products, B²·n_out each
    assert c["layer1/Eq. 18 weight gradient"] == 2 * (12 + 2 * 9)  # B·(1 term · nW + 2 terms · nR) = 60
    assert c["layer1/forward target path"] == 2 * 2 * 3 + 2 * 9  # S c (B·C·H1) + R_1 s̃ (B·nR)
    # feed-forward layer 1: only the input-path term, one product, W_1 term once
    ff = {t.name: t.macs for t in estimate(_cfg("tp"), implementation=False).compute}
    assert ff["layer1/Eq. 18 B×B products"] == 2 * 2 * 3 and ff["layer1/Eq. 18 weight gradient"] == 2 * 12
    assert "layer1/δ̃ (target-path signal)" not in {t.name for t in estimate(_cfg("tp"), implementation=False).terms}


def test_tp_train_s_weight_gradient_is_one_term_for_w1() -> None:
    # train_s: δ̃_1 feeds dS = δ̃_1ᵀ c (B·C·H1 = 12 MACs), not W_1 (B·nW = 24 MACs, one term)
    c = {t.name: t.macs for t in estimate(_cfg("tp", train_s=True), implementation=False).compute}
    assert c["layer1/Eq. 18 weight gradient"] == 24
    assert c["layer1/S gradient"] == 12


def test_tess_recurrent_traces_follow_the_factors() -> None:
    # 4-3r-2, B = 2: trace_in B·F = 8, recurrent causal trace B·H1 = 6, trace_out B·H1 = 6, ε_L B·H1 = 6
    def traces(f):
        bd = estimate(make_config("4-3r-2", "tess", batch=2, classes=2, steps=5, tess_factors=f), implementation=False)
        return {t.name: t.count for t in bd.terms if t.category == "traces"}

    assert traces((0.2, 0.5, 1.0, 1.0)) == {"layer1/trace_in": 8, "layer1/trace_in (recurrent)": 6,
                                             "layer1/trace_out": 6, "ε_L (readout input trace)": 6}
    assert traces((0.2, 0.5, 0.0, 1.0)) == {"layer1/trace_in": 8, "layer1/trace_in (recurrent)": 6,
                                             "ε_L (readout input trace)": 6}  # α_post = 0: no trace_out
    assert traces((0.2, 0.5, 1.0, 0.0)) == {"layer1/trace_out": 6,
                                             "ε_L (readout input trace)": 6}  # α_pre = 0: no presynaptic traces


def test_bptt_conv_saves_pool_switches() -> None:
    cfg = make_config("2x4x4-c3p-2", "bptt", batch=2, classes=2, steps=5)
    terms = {t.name: t.count for t in estimate(cfg, implementation=False).terms}
    assert terms["layer1/saved input x^t × T"] == 5 * 2 * 32   # T·B·(2·4·4)
    assert terms["layer1/saved u × T"] == 5 * 2 * 48
    assert terms["layer1/saved pool switches × T"] == 5 * 2 * 12
    assert terms["saved s_L × T"] == 5 * 2 * 12  # pooled o^t, not the state s: all T steps


@pytest.mark.parametrize("dtype,bytes_", [("fp64", 8), ("fp16", 2), ("int8", 1)])
def test_bytes_scale_with_dtype(dtype: str, bytes_: int) -> None:
    bd = estimate(make_config("4-3-5-2", "tp", batch=2, classes=2, steps=5, dtype=dtype), implementation=False)
    assert bd.total_bytes == 308 * bytes_  # 1232 B at fp32 (test_tp_every_term)
    assert all(t.bytes == t.count * bytes_ for t in bd.terms)


def test_compute_golden_tp_layer2() -> None:
    # layer 2 of 4-3-5-2, B = 2: forward per path B·nW = 2·15 = 30 MACs; similarity B²·n_out = 4·5 = 20;
    # distance B²·n_prev = 4·3 = 12; Eq. 18 products 2·B²·n_out = 40; weight gradient 2 terms · 30 = 60
    c = {t.name: t for t in estimate(_cfg("tp")).compute}
    assert c["layer2/forward input path"].macs == 30 and c["layer2/forward target path"].macs == 30
    assert c["layer2/similarity z"].macs == 20
    assert c["layer2/distance f for y"].macs == 12
    assert c["layer2/Eq. 18 B×B products"].macs == 40
    assert c["layer2/Eq. 18 weight gradient"].macs == 60
    # layer 1: target path is S c = B·C·H1 = 12 MACs; distance uses ε̃_0, B²·C = 8
    assert c["layer1/forward target path"].macs == 12
    assert c["layer1/distance f for y"].macs == 8


def test_compute_golden_bptt_backward_is_about_twice_forward() -> None:
    c = {t.name: t for t in estimate(_cfg("bptt")).compute}
    assert c["layer1/backward"].macs == 24   # weight gradient only (no gradient w.r.t. x): 1 × B·12
    assert c["layer2/backward"].macs == 60   # weight + input gradient: 2 × B·15
    assert c["readout backward"].macs == 40  # 2·B·H2·C


def test_tess_compute_learning_signal() -> None:
    c = {t.name: t for t in estimate(_cfg("tess")).compute}
    assert c["layer2/learning signal z, m"].macs == 2 * 2 * 2 * 5  # 2·B·C·H2
