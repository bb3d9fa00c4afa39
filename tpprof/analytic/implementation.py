"""What the PyTorch learners (``tpprof.snn``) hold beyond the algorithm: category "implementation".

``implementation_terms(cfg)`` is the one entry point (its signature is stable: the measurement
engineer calibrates the *contents* of this file against the allocator). Every term's source
starts with ``"implementation: "`` and says why the buffer exists. These terms are included
only under ``accounting="full"``; algorithmic terms are never adjusted to match measurements.

Current content is a first model from how such learners are usually written:

* optimiser step temporaries: ``torch.optim.Adam`` (foreach) forms sqrt(v̂)+ε and the update
  in temporaries of the parameter's size (momentum: one); live during that layer's update;
* the surrogate Θ′(u) materialised as its own tensor (B × n_nrn per path) for Eq. 18 / TESS;
* TP: the second Eq. 18 term's dW formed in a temporary before it is added (l ≥ 2);
* TP: ε_0 (B × F), updated by the reference algorithm §8 although no loss reads it;
* TP conv: the Eq. 15 distance per spatial position as a (P, B, B) tensor before averaging;
* BPTT: max_pool2d saves its (pre-pool) input for backward in addition to the switches.
"""

from __future__ import annotations

from tpprof.analytic.terms import MemoryTerm, TermList
from tpprof.config import Config

_ADAM_TEMPS = {"sgd": 0, "momentum": 1, "adam": 1}


def implementation_terms(cfg: Config) -> list[MemoryTerm]:
    """Implementation-overhead terms for ``cfg`` (category "implementation")."""
    wl = cfg.workload
    B, C, T, d = wl.batch, wl.classes, wl.steps, wl.dtype_bytes
    rule = cfg.rule.name
    geo = cfg.net.geometry()
    tl = TermList(d)
    local = rule not in ("bptt", "ottt")
    seq = cfg.rule.cadence == "sequence"

    def upd_phase(layer: int | None) -> tuple[str, ...]:
        if rule == "bptt":
            return ("update",)
        if rule == "ottt":
            return ("backward",)
        if seq:
            return ("update",)
        return (f"loss:{layer}",) if layer is not None else ("readout",)

    k = _ADAM_TEMPS[cfg.rule.optimizer]
    if k:
        for g in geo:
            tl.mem("optimizer step temporary", "implementation", k * g.n_params,
                   f"implementation: torch.optim.{cfg.rule.optimizer} forms its update in a temporary of the "
                   "parameter's size", layer=g.index, phases=upd_phase(g.index))
        tl.mem("optimizer step temporary (W_out)", "implementation", k * geo[-1].n_out * C,
               "implementation: optimiser update temporary for W_out", phases=upd_phase(None))

    if local and rule in ("tp", "tess"):
        for g in geo:
            paths = 2 if rule == "tp" and (g.index >= 2 or cfg.rule.train_s) else 1
            tl.mem("surrogate Θ′(u) tensor", "implementation", paths * B * g.n_neurons,
                   "implementation: Θ′(u) materialised per path before the ⊙ of Eq. 18 / TESS",
                   layer=g.index, phases=(f"loss:{g.index}",))

    if rule == "tp":
        tl.mem("ε_0 (input trace, unused by the loss)", "implementation", B * cfg.net.input_size,
               "implementation: reference §8 updates ε_0 = βε_0 + x; no TP loss reads it", layer=0)
        for g in geo:
            if g.index >= 2:
                tl.mem("second dW term temporary", "implementation", g.n_params,
                       "implementation: δ̃ᵀ s̃_{l−1} formed before being added to the first term",
                       layer=g.index, phases=(f"loss:{g.index}",))
                prev = geo[g.index - 2]
                if prev.kind == "conv":
                    P = prev.n_out // prev.out_shape[0]
                    tl.mem("per-position distance (P, B, B)", "implementation", P * B * B,
                           "implementation: Eq. 15 conv distance per spatial position before averaging",
                           layer=g.index, phases=(f"loss:{g.index}",))

    if rule == "bptt":
        for g, spec in zip(geo, cfg.net.layers):
            if spec.pool == "max2":
                tl.mem("max_pool2d saved input × T", "implementation", T * B * g.n_neurons,
                       "implementation: autograd's max_pool2d keeps its input as well as the switches",
                       layer=g.index, phases=("backward",))
    return tl.terms
