"""OSTTP (Ortner, Pes et al. 2023): OSTL in time, DRTP-style fixed target projection in space.

Per hidden layer: LIF state; per-synapse, per-sample eligibility B·(nW + nR) (Table 3: LH²);
a fixed random C × n_out target projection (Table 3 aux: LOH) that turns the label into the
layer's learning signal (B × n_nrn, transient) — no weight transport, no update locking.
"""

from __future__ import annotations

from functools import partial

from tpprof.analytic.rules._common import COMMON_NOT_MODELLED, Ctx
from tpprof.analytic.rules._local import feedback_matrix, learning_signal, local_rule_terms, synapse_eligibility
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import LayerGeometry

SOURCE = "OSTTP (Ortner, Pes et al. 2023)"


def _layer(tl: TermList, c: Ctx, g: LayerGeometry) -> None:
    synapse_eligibility(tl, c, g, SOURCE)
    feedback_matrix(tl, c, g, SOURCE + ", target projection")
    learning_signal(tl, c, g, SOURCE)


NOT_MODELLED = COMMON_NOT_MODELLED + ("modelled at the depth of the paper's Table 3",)

register(RuleModel("osttp", "OSTTP", partial(local_rule_terms, source=SOURCE, layer_terms=_layer), NOT_MODELLED,
                   locality="local",
                   locality_source=f"{SOURCE}: OSTL's eligibility forward in time, a fixed random target projection "
                                   "of the label in space (DRTP): no weight transport, no error crosses a layer"))
