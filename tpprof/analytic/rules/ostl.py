"""OSTL (Bohnstingl et al.), online spatio-temporal learning, at Table-3 depth.

Per hidden layer: LIF state (v, s); a per-synapse, per-sample eligibility B·(nW + nR) carried
through time (Table 3: LH²); the spatial part is exact backpropagation through the layers
within the step (weight transport, no auxiliary matrix): an adjoint B × n_nrn per layer, live
during the step's backward pass. Readout: delta rule as §7.
"""

from __future__ import annotations

from functools import partial

from tpprof.analytic.rules._common import COMMON_NOT_MODELLED, Ctx, fwd_macs
from tpprof.analytic.rules._local import local_rule_terms, synapse_eligibility
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import LayerGeometry

SOURCE = "OSTL (Bohnstingl et al.)"


def _layer(tl: TermList, c: Ctx, g: LayerGeometry) -> None:
    synapse_eligibility(tl, c, g, SOURCE)
    tl.mem("spatial adjoint", "loss_buffers", c.B * g.n_neurons,
           f"{SOURCE}: error backpropagated through the layers within the step, B × n_nrn",
           layer=g.index, phases=(f"loss:{g.index}",))
    tl.ops("spatial backprop", fwd_macs(c, g) if g.index >= 2 else 0, 0,
           f"{SOURCE}: transposed-weight product within the step", layer=g.index)


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "modelled at the depth of the paper's Table 3: recurrent OSTL's full per-synapse Jacobian terms beyond "
    "one eligibility value per synapse are not counted",
)

register(RuleModel("ostl", "OSTL", partial(local_rule_terms, source=SOURCE, layer_terms=_layer), NOT_MODELLED,
                   locality="time-local",
                   locality_source=f"{SOURCE}: eligibility forward in time; the spatial part is exact "
                                   "back-propagation through the layers within each step (weight transport)"))
