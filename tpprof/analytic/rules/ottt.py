"""OTTT (Xiao et al. 2022), online training through time, at Table-3 depth (OTTT is not in
the paper's Table 3; tpprof's reading of the OTTT paper).

Per hidden layer: LIF state; a presynaptic trace â (B × n_in) that replaces the history of
inputs; at every step the instantaneous loss is backpropagated through the layers only (not
through time): the pre-reset potential u (B × n_nrn) is held for that step's surrogate and the
adjoints ∂E/∂v, ∂E/∂s (B·n_nrn + B·n_out) live during the step's backward; dW_l = δ_lᵀ â_{l−1}.
Readout: backpropagated like the hidden layers, on a trace of the last layer's spikes.
"""

from __future__ import annotations

from tpprof.analytic.rules import RuleModel, register
from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SURR_OPS, add_forward_ops, add_lif_state, add_params, add_readout_state,
    ctx, fwd_macs, net_params,
)
from tpprof.analytic.rules._local import presyn_trace
from tpprof.analytic.terms import TermList
from tpprof.config import Config

STEP_BACKWARD = ("backward",)


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    src = "OTTT (Xiao et al. 2022)"
    add_params(tl, c, net_params(c), lambda _layer: STEP_BACKWARD,
               grad_source=f"{src}: gradient of this step's instantaneous loss (one element per parameter element)")
    for g in c.geo:
        add_lif_state(tl, c, g, "")
        presyn_trace(tl, c, g, src)
        tl.mem("saved u (this step)", "saved", c.B * g.n_neurons,
               f"{src}: pre-reset potential kept for this step's surrogate, B × n_nrn", layer=g.index,
               phases=STEP_BACKWARD)
        tl.mem("adjoint ∂E/∂v", "loss_buffers", c.B * g.n_neurons, f"{src}: B × n_nrn", layer=g.index,
               phases=STEP_BACKWARD)
        tl.mem("adjoint ∂E/∂s", "loss_buffers", c.B * g.n_out, f"{src}: B × n_out", layer=g.index,
               phases=STEP_BACKWARD)
        add_forward_ops(tl, c, g, "")
        tl.ops("backward (this step)", fwd_macs(c, g) * (2 if g.index >= 2 else 1), (SURR_OPS + 3) * c.B * g.n_neurons,
               f"{src}: weight gradient against â (+ input gradient for l ≥ 2)", layer=g.index)
    add_readout_state(tl, c)
    tl.mem("ε_L (readout input trace)", "traces", c.B * c.n_out_last, f"{src}: readout presynaptic trace, B × n_out_L")
    tl.mem("∂E/∂m", "loss_buffers", c.B * c.C, f"{src}: instantaneous cross-entropy gradient, B × C",
           phases=STEP_BACKWARD)
    tl.ops("readout backward", 2 * c.B * c.n_out_last * c.C, 4 * c.B * c.C, f"{src}: dW_out and ∂E/∂s_L")


NOT_MODELLED = COMMON_NOT_MODELLED + ("OTTT is not in the paper's Table 3: modelled from the OTTT paper's own "
                                      "description (one presynaptic trace per neuron)",)

register(RuleModel("ottt", "OTTT", full_terms, NOT_MODELLED))
