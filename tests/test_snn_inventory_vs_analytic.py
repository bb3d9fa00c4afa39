"""The learners' persistent memory equals the analytic model's, category by category, to the byte.

For small dense, recurrent and conv nets and for TP, TESS and BPTT, after one ``train_batch``
(BPTT: at the last step, while its state is still held — it drops v, s and m once backward has
run), ``inventory_bytes(learner.memory_inventory())`` must equal, for each persistent category
(weights, optimizer, neuron_state, traces, aux), the bytes of the analytic model's persistent
terms of that category (``estimate(cfg, "full")``), plus the persistent implementation terms
that the learner holds as a tensor of that category:

* "Adam step counters" (one fp32 scalar per parameter tensor) → optimizer.

Persistent implementation terms the learner does *not* list in its inventory:

* "one-hot labels c (B × C)" (TP, TESS): a local variable of ``train_batch``, held for the
  mini-batch but outside ``memory_inventory()`` (the inventory lists the learner's own state).

Gradients: the learners allocate every ``p.grad`` once and keep it (category "gradients",
persistent), while the algorithmic model holds each gradient only in its layer's phase
(the implementation model adds the complement per phase). So the sum of *all* analytic
gradient terms, persistent or not, equals the learner's gradient bytes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tpprof.analytic import estimate  # noqa: E402
from tpprof.config import make_config  # noqa: E402
from tpprof.snn import inventory_bytes, make_learner  # noqa: E402

torch.set_num_threads(1)  # 2 shared cores

COMPARED = ("weights", "optimizer", "neuron_state", "traces", "aux")
#: persistent implementation terms held as a learner tensor, and the category it is listed under
IMPL_IN_INVENTORY = {"Adam step counters": "optimizer"}
#: persistent implementation terms the learner holds outside memory_inventory() (see docstring)
IMPL_OUTSIDE_INVENTORY = {"one-hot labels c (B × C)",
                          "Ŵ (standardised weight)"}  # the authors' TESS: Ŵ_l, a local of train_batch

NETS = {
    "dense": "12-8-6-3",
    "recurrent": "12-8r-6r-3",  # a recurrent layer 1 (TP's δ̃_1 for R_1) and a recurrent layer 2
    "conv": "2x8x8-c4p-c3-c2a2-3",  # max-pooled, unpooled, adaptive-average-pooled conv layers
}
B, T = 4, 3

FAMILY = ("bptt", "bptt-compact", "bptt-ckpt", "tbptt")  # drop their state once backward has run
CASES = [(rule, net, {}) for rule in ("tp", "tess", "bptt", "bptt-compact", "bptt-ckpt", "tbptt", "ottt")
         for net in NETS] + [
    ("bptt-ckpt", "recurrent", {"compact": True, "segment": 2}),
    ("tbptt", "conv", {"compact": True, "window": 2}),
    ("ottt", "recurrent", {"cadence": "sequence", "optimizer": "momentum"}),
    ("tp", "recurrent", {"train_s": True}),  # S is a trained parameter: weights, not aux
    ("tp", "conv", {"aux": "regenerated"}),  # S drawn per step: no aux
    ("tess", "recurrent", {"tess_factors": (0.2, 0.5, 0.0, 1.0)}),  # causal only: no trace_post
    ("tess", "conv", {"tess_factors": (0.2, 0.5, 1.0, 0.0), "aux": "regenerated"}),  # non-causal only
    ("tp", "dense", {"optimizer": "momentum", "cadence": "sequence"}),
    ("bptt", "recurrent", {"optimizer": "sgd"}),
    ("tess", "dense", {"flavour": "authors"}),  # the authors' code: traces always, no spikes, bias
    ("tess", "conv", {"flavour": "authors", "tess_factors": (0.2, 0.5, 0.0, 1.0)}),  # + gains, B_l regenerated
    ("tess-authors-schedule", "dense", {}),
    ("tess-authors-schedule", "conv", {"delay_ls": 2}),
    # RuleSpec.trainable: frozen layers hold no gradient or optimiser state; TP readout-only no target path
    ("tp", "recurrent", {"trainable": "readout"}),
    ("tp", "dense", {"trainable": "readout", "train_s": True}),
    ("tp", "conv", {"trainable": "last:1"}),
    ("tp", "recurrent", {"trainable": "last:1", "train_s": True, "optimizer": "momentum"}),
    ("tess", "dense", {"trainable": "last:1"}),
    ("tess", "conv", {"trainable": "readout", "flavour": "authors"}),
    ("tess-authors-schedule", "conv", {"trainable": "last:2", "delay_ls": 2}),
    ("ottt", "conv", {"trainable": "readout"}),
    ("ottt", "recurrent", {"trainable": "last:1", "cadence": "sequence"}),
    ("bptt", "recurrent", {"trainable": "last:1"}),
    ("bptt-compact", "conv", {"trainable": "readout"}),
    ("tbptt", "dense", {"trainable": "last:1"}),
]


def _data(cfg) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand((B, T, *cfg.net.input_shape), generator=gen) < 0.3).float()  # (B, T, *input)
    y = torch.tensor([0, 1, 0, 2])  # (B,), a repeated class
    return x, y


def _inventory(cfg) -> dict[str, int]:
    learner = make_learner(cfg, dtype=torch.float32, seed=0)
    x, y = _data(cfg)
    held: dict[str, int] = {}

    def on_step(t: int) -> None:
        if t == T - 1:
            held.update(inventory_bytes(learner.memory_inventory()))

    learner.train_batch(x, y, on_step=on_step)
    if cfg.rule.name not in FAMILY:  # TP, TESS and OTTT keep the mini-batch's state after the call
        after = inventory_bytes(learner.memory_inventory())
        assert after == held
    return held


def _analytic(cfg) -> tuple[dict[str, int], int]:
    bd = estimate(cfg, accounting="full")
    out = {c: 0 for c in COMPARED}
    for t in bd.terms:
        if not t.persistent:
            continue
        if t.category in out:
            out[t.category] += t.bytes
        elif t.category == "implementation":
            assert t.name in IMPL_IN_INVENTORY or t.key in IMPL_OUTSIDE_INVENTORY, t.name
            if t.name in IMPL_IN_INVENTORY:
                out[IMPL_IN_INVENTORY[t.name]] += t.bytes
        else:
            # no other persistent category may appear, except gradient accumulators (cadence sequence)
            assert t.category == "gradients", t.name
    grads = sum(t.bytes for t in bd.terms if t.category == "gradients")
    return out, grads


@pytest.mark.parametrize("rule,net,opts", CASES, ids=[f"{r}-{n}-{'-'.join(map(str, o.values())) or 'default'}"
                                                      for r, n, o in CASES])
def test_inventory_equals_analytic_persistent_terms(rule: str, net: str, opts: dict) -> None:
    cfg = make_config(NETS[net], rule, batch=B, classes=3, steps=T, dtype="fp32", **opts)
    got = _inventory(cfg)
    want, grads = _analytic(cfg)
    assert {c: got[c] for c in COMPARED} == want
    assert got["gradients"] == grads
    # nothing else is held between steps by the local rules; BPTT's saved tensors are its own check
    if rule not in FAMILY:
        assert got["loss_buffers"] == got["saved"] == got["implementation"] == 0
