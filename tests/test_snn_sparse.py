"""The sparse input path (tpprof.snn.sparse) gives the dense path's results: every learner whose
layer 1 reads the input spikes, float64, parameters and gradients after a few mini-batches ≤ 1e-6."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tpprof.config import make_config  # noqa: E402
from tpprof.snn import make_learner  # noqa: E402
from tpprof.snn.sparse import (  # noqa: E402
    SPARSE_DENSITY_MAX, SpikeFrames, _entries_numpy, _entries_torch, batch_density, choose_frames)

torch.set_num_threads(1)

CASES = [
    ("tp", "24-16-12-5", {}),
    ("tp", "24-16-12-5", {"target_rows": "classes"}),
    ("tp", "24-16r-12-5", {"cadence": "sequence", "optimizer": "momentum"}),
    ("tp", "24-16r-5", {"flavour": "authors", "train_s": True}),
    ("tess", "24-16-12-5", {}),
    ("tess", "24-16r-5", {"tess_factors": (0.2, 0.5, 1.0, 0.0)}),  # non-causal only: the frame pair alone
    ("ottt", "24-16r-12-5", {}),
    ("bptt", "24-16r-12-5", {}),
    ("bptt-compact", "24-16r-12-5", {}),
    ("bptt-ckpt", "24-16-12-5", {"segment": 2}),
    ("bptt-ckpt", "24-16r-5", {"segment": 2, "compact": True}),
    ("tbptt", "24-16r-12-5", {"window": 2}),
    ("tbptt", "24-16-5", {"window": 3, "compact": True}),
    ("tp", "24-16-12-5", {"trainable": "last:1"}),  # layer 1 frozen: its frame feeds the forward only
    ("bptt", "24-16-12-5", {"trainable": "last:1"}),
    ("ottt", "24-16-12-5", {"trainable": "last:1"}),
]


def _batch(B: int = 6, T: int = 5, n: int = 24, density: float = 0.15, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((B, T, n), generator=g) < density).to(torch.float64)
    return x, torch.arange(B) % 5


@pytest.mark.parametrize("rule,net,kw", CASES, ids=[f"{r}-{n}-{'-'.join(map(str, k.values()))}" for r, n, k in CASES])
def test_sparse_path_equals_dense(rule: str, net: str, kw: dict) -> None:
    cfg = make_config(net, rule, 6, 5, 5, **kw)
    x, y = _batch()
    out = {}
    for path in ("dense", "sparse"):
        lr = make_learner(cfg, dtype=torch.float64, seed=3)
        lr.input_path = path
        seen: list[bool] = []
        res = [lr.train_batch(x, y, on_step=lambda t: seen.append(lr._frames is not None)) for _ in range(3)]
        assert all(seen) == (path == "sparse") and any(seen) == (path == "sparse")  # the path asked for ran
        assert lr._frames is None  # dropped after the mini-batch
        out[path] = (res, {n: p.detach().clone() for n, p in lr.named_parameters()},
                     {n: p.grad.clone() for n, p in lr.named_parameters() if p.grad is not None})
    (rd, pd, gd), (rs, ps, gs) = out["dense"], out["sparse"]
    for a, b in zip(rd, rs):
        assert abs(a["loss"] - b["loss"]) <= 1e-6
    assert gd.keys() == gs.keys()
    for n in pd:
        assert torch.allclose(pd[n], ps[n], atol=1e-6, rtol=0), n
    for n in gd:
        assert torch.allclose(gd[n], gs[n], atol=1e-6, rtol=0), n


def test_frames_are_the_batch() -> None:
    for binary in (True, False):
        x, _ = _batch(B=4, T=3, n=10, density=0.3)
        if not binary:
            x = x * torch.rand(x.shape, dtype=torch.float64)  # graded inputs: values are kept
        fr = SpikeFrames(x, torch.float64, torch.device("cpu"))
        assert (fr.vals is None) == binary
        w = torch.randn(7, 10, dtype=torch.float64)
        d = torch.randn(4, 7, dtype=torch.float64)
        for t in range(3):
            assert torch.allclose(fr.linear(t, w), x[:, t] @ w.t(), atol=1e-12)
            g = torch.randn(7, 10, dtype=torch.float64)
            want = 0.5 * g + d.t() @ x[:, t]
            fr.add_wgrad(t, g, d, beta=0.5)
            assert torch.allclose(g, want, atol=1e-12)
            g0 = torch.randn(7, 10, dtype=torch.float64)
            fr.add_wgrad(t, g0, d, beta=0.0)  # overwrite
            assert torch.allclose(g0, d.t() @ x[:, t], atol=1e-12)
        # two index arrays (+ two value arrays), bag starts per (t, b) and per (t, j)
        assert fr.nbytes() == ((2 if binary else 4) * int((x != 0).sum()) + 3 * 4 + 3 * 10) * 8


def test_numpy_and_torch_entries_agree() -> None:
    """The CPU lists (numpy, counting placement) equal the any-device lists (torch.nonzero)."""
    for binary in (True, False):
        x, _ = _batch(B=5, T=4, n=9, density=0.3)
        x[2] = 0  # a sample without entries
        if not binary:
            x = x * torch.rand(x.shape, dtype=torch.float64)
        for grad in (True, False):  # without the weight-gradient lists (OTTT's forward only)
            a, b = _entries_numpy(x, grad), _entries_torch(x, grad)
            for name, u, v in zip(a._fields, a, b):
                # values only for graded inputs; the (t, j) lists only with grad
                held = not (binary and name.endswith("vals")) and (grad or name in ("cols", "fcount", "vals"))
                assert (u is not None, v is not None) == (held, held), name
                if held:
                    assert torch.equal(u, v.to(u.dtype)), name
    fr = SpikeFrames(x, torch.float64, torch.device("cpu"), grad=False)
    with pytest.raises(RuntimeError, match="without the weight-gradient lists"):
        fr.add_wgrad(0, torch.zeros(3, 9, dtype=torch.float64), torch.zeros(5, 3, dtype=torch.float64))


def test_auto_takes_the_sparse_path_only_when_it_pays() -> None:
    cpu = torch.device("cpu")
    sparse = (torch.rand(128, 4, 700) < SPARSE_DENSITY_MAX / 2).float()
    dense = (torch.rand(128, 4, 700) < 0.1).float()
    assert choose_frames("auto", sparse, True, 450, torch.float32, cpu) is not None
    assert choose_frames("auto", dense, True, 450, torch.float32, cpu) is None  # the protocol's density
    assert choose_frames("auto", sparse[:4, :, :24], True, 16, torch.float32, cpu) is None  # too small a product
    assert choose_frames("auto", sparse, False, 450, torch.float32, cpu) is None  # conv layer 1
    assert choose_frames("auto", sparse, True, 45, torch.float32, cpu) is None  # narrow: the conversion dominates
    assert choose_frames("dense", sparse, True, 450, torch.float32, cpu) is None
    assert choose_frames("sparse", dense, True, 450, torch.float32, cpu) is not None
    assert abs(batch_density(dense) - 0.1) < 0.01
