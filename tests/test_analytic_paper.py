"""The paper's own accounting: Table 3, the reconstructed Figure-5 ratio G(C, B), paper terms."""

from __future__ import annotations

import numpy as np
import pytest

from tpprof.analytic import estimate
from tpprof.analytic.paper import TABLE3, g_ratio, table3
from tpprof.config import make_config


@pytest.mark.parametrize("B,C,G", [(64, 10, 0.578), (64, 100, 1.281), (16, 100, 3.625), (128, 1000, 4.406)])
def test_g_ratio_reference_points(B: int, C: int, G: float) -> None:
    # G = (B + C) / (2B): e.g. (64 + 10) / 128 = 0.578125
    assert g_ratio(C, B) == pytest.approx(G, abs=5e-4)


def test_g_ratio_is_vectorised_and_crosses_one_at_c_equals_b() -> None:
    B = np.array([1, 8, 64, 512])
    assert np.allclose(g_ratio(B, B), 1.0)
    assert np.all(g_ratio(B - 0.5, B) < 1) and np.all(g_ratio(B + 0.5, B) > 1)
    grid = g_ratio(np.arange(1, 200)[None, :], np.arange(1, 100)[:, None])
    assert grid.shape == (99, 199)


@pytest.mark.parametrize("B,C,L", [(64, 10, 1), (16, 100, 2), (128, 1000, 4), (8, 3, 3)])
def test_g_ratio_s_variant(B: int, C: int, L: int) -> None:
    # G_s = L(B + C) / (2BL + C)
    assert g_ratio(C, B, L, "s") == pytest.approx(L * (B + C) / (2 * B * L + C))


def test_g_ratio_s_variant_crossing() -> None:
    # TP cheaper ⇔ C(L − 1) > BL: for L = 2, B = 16 the crossing is at C = 32
    assert g_ratio(32, 16, 2, "s") == pytest.approx(1.0)
    assert g_ratio(31, 16, 2, "s") < 1 < g_ratio(33, 16, 2, "s")
    assert np.all(g_ratio(np.arange(1, 10000), 16, 1, "s") < 1)  # L = 1: TP never cheaper with S counted


def test_g_ratio_bad_variant() -> None:
    with pytest.raises(ValueError):
        g_ratio(1, 1, 1, "x")


def test_table3_has_the_seven_rows() -> None:
    rows = {r.rule: r for r in TABLE3}
    assert set(rows) == {"bptt", "eprop", "eprop-rfb", "ostl", "osttp", "tess", "tp"}
    assert (rows["tp"].space, rows["tp"].time, rows["tp"].aux) == ("LH", "LH", "OH")
    assert (rows["tess"].space, rows["tess"].aux) == ("LH", "LOH")
    assert rows["bptt"].space == "TLH" and not rows["bptt"].time_local
    assert rows["osttp"].update_lock_free and not rows["eprop"].no_weight_transport
    assert len(table3()) == 7


def test_paper_accounting_values_and_labels() -> None:
    # SHD net 700-450-20, B = 128, T = 100, fp32: TP = 2BLH = 2·128·450 = 115200 elements
    tp = estimate(make_config("shd", "tp"), "paper")
    assert tp.total_bytes == 2 * 128 * 450 * 4
    assert all(t.source.startswith("paper") for t in tp.terms)
    tps = estimate(make_config("shd", "tp"), "paper+s")
    assert tps.total_bytes == (2 * 128 * 450 + 20 * 450) * 4  # + S = C·H
    tess = estimate(make_config("shd", "tess"), "paper")
    assert tess.total_bytes == (128 * 450 + 20 * 450) * 4      # BLH + LCH
    bptt = estimate(make_config("shd", "bptt"), "paper")
    assert bptt.total_bytes == 100 * 128 * 450 * 4             # TLH·B
    assert estimate(make_config("shd", "tess"), "paper+s").total_bytes == tess.total_bytes
    assert any("paper accounting" in x for x in tp.not_modelled)


@pytest.mark.parametrize("B,C", [(64, 10), (64, 100), (16, 100), (128, 1000), (32, 32)])
def test_paper_accounting_ratio_equals_g(B: int, C: int) -> None:
    for net in ("700-450-20", "700-300-300-20"):  # G is independent of L and H when widths are equal
        tp = estimate(make_config(net, "tp", batch=B, classes=C), "paper").total_bytes
        tess = estimate(make_config(net, "tess", batch=B, classes=C), "paper").total_bytes
        assert tess / tp == pytest.approx(float(g_ratio(C, B)))


def test_paper_accounting_other_rules_scale_like_table3() -> None:
    cfg = dict(batch=4, classes=3, steps=7)
    # e-prop: B·LH² (per synapse) → 4·(10·6 + 6·6) for 10-6-6-3
    assert estimate(make_config("10-6-6-3", "eprop", **cfg), "paper").total_bytes == 4 * (60 + 36) * 4
    # OSTTP: + LOH = 3·(6 + 6)
    assert estimate(make_config("10-6-6-3", "osttp", **cfg), "paper").total_bytes == (4 * 96 + 3 * 12) * 4
    # ETLP / OTTT: per-neuron, B·LH
    assert estimate(make_config("10-6-6-3", "etlp", **cfg), "paper").total_bytes == 4 * 12 * 4
