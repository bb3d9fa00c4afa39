"""e-prop (Bellec et al. 2020), symmetric and random-feedback variants, at Table-3 depth.

Per hidden layer: LIF state (v, s); a filtered presynaptic trace (B × n_in); the filtered
eligibility trace per synapse and sample, B·(nW + nR) (Table 3: space LH²); the learning
signal L_l (B × n_nrn, transient). Symmetric e-prop feeds the readout error back through the
readout's own weights (no auxiliary memory; weight transport); the random-feedback variant
stores a fixed C × n_out matrix per layer (Table 3 aux: LOH). Readout: delta rule as §7.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from tpprof.analytic.rules._common import COMMON_NOT_MODELLED, Ctx
from tpprof.analytic.rules._local import feedback_matrix, learning_signal, local_rule_terms, synapse_eligibility
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import Config, LayerGeometry

SOURCE = "e-prop (Bellec et al. 2020)"


def _terms(random_feedback: bool) -> Callable[[Config, TermList], None]:
    """``full(cfg, tl)`` of e-prop, symmetric or with random feedback."""

    def layer(tl: TermList, c: Ctx, g: LayerGeometry) -> None:
        synapse_eligibility(tl, c, g, SOURCE)
        if random_feedback:
            feedback_matrix(tl, c, g, SOURCE + ", random feedback")
        learning_signal(tl, c, g, SOURCE)

    return partial(local_rule_terms, source=SOURCE, layer_terms=layer)


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "modelled at the depth of the paper's Table 3: LIF neurons without adaptation (ALIF's extra per-synapse "
    "eligibility component is not counted)",
    "symmetric e-prop for layers below the last: feedback through transposed weights assumed (no extra memory)",
)

register(RuleModel("eprop", "e-prop (symmetric feedback)", _terms(random_feedback=False), NOT_MODELLED,
                   locality="time-local",
                   locality_source=f"{SOURCE}: eligibility traces forward in time; the learning signal is the "
                                   "readout error fed back through the transposed readout (and, below the last "
                                   "layer, transposed forward) weights: spatial back-propagation, weight transport"))
register(RuleModel("eprop-rfb", "e-prop (random feedback)", _terms(random_feedback=True), NOT_MODELLED,
                   locality="local",
                   locality_source=f"{SOURCE}, random feedback: eligibility traces forward in time; the readout "
                                   "error reaches every layer through a fixed random C × n_out matrix, a broadcast "
                                   "third factor: no weight transport, nothing back-propagated through layers "
                                   "(it needs the readout's error, unlike TP, TESS, ETLP and OSTTP's label signal)"))
