"""TP's fixed S by RuleSpec.s_init: uniform U(±1/√C) (default, unchanged), ws = 1.8·WS(S)
(rows zero-mean, RMS 1.8/√C: the authors' CNN S), c-invariant U(±1) (the drive S c of a one-hot
label has RMS 1/√3 whatever C)."""

from __future__ import annotations

import math

import pytest
import torch

from tpprof.config import ConfigError, RuleSpec, make_config
from tpprof.snn import make_learner

torch.set_num_threads(1)


def _S(init: str, C: int, aux: str = "stored") -> torch.Tensor:
    cfg = make_config("40-64-64-10", "tp", batch=8, steps=4, classes=C, s_init=init, aux=aux)
    return make_learner(cfg, dtype=torch.float64, seed=0)._s_matrix()  # (n_1, C)


@pytest.mark.parametrize("C", [10, 60])
def test_s_init_scales(C):
    u, w, ci = _S("uniform", C), _S("ws", C), _S("c-invariant", C)
    assert u.abs().max() <= 1 / math.sqrt(C)
    assert u.pow(2).mean().sqrt().item() == pytest.approx(1 / math.sqrt(3 * C), rel=0.05)
    assert torch.allclose(w.mean(dim=1), torch.zeros(w.shape[0], dtype=w.dtype), atol=1e-12)
    assert torch.allclose(w.pow(2).mean(dim=1).sqrt(), torch.full((w.shape[0],), 1.8 / math.sqrt(C), dtype=w.dtype),
                          rtol=1e-4)
    assert ci.abs().max() <= 1.0
    assert ci.pow(2).mean().sqrt().item() == pytest.approx(1 / math.sqrt(3), rel=0.05)  # independent of C


def test_s_init_same_stream_and_regenerated():
    """ws and c-invariant are deterministic transforms of the same draw; regenerated equals stored."""
    u, ci = _S("uniform", 10), _S("c-invariant", 10)
    assert torch.allclose(ci, u * math.sqrt(10))
    assert torch.equal(_S("ws", 10), _S("ws", 10, aux="regenerated"))


def test_s_init_bad_value():
    with pytest.raises(ConfigError, match="s_init"):
        RuleSpec(s_init="big")
