"""OTTT (Xiao et al., NeurIPS 2022), online training through time: full model of
tpprof/snn/ottt.py (equations there).

Held across steps: weights, optimiser state, the LIF state (v, s: B·n_nrn each per layer), the
presynaptic traces â_{l−1} (B × n_in per layer; B × n_nrn more for R_l's input in recurrent
layers), the readout's input trace ε_L (B × n_out_L, λ = 1) and the readout m (B × C).
Within a step (no temporal graph): the forward keeps every layer's pre-reset potential u_l
(B × n_nrn) for the surrogate Θ′(u_l) of this step's spatial backward; then, phase by phase:

* ``readout``: ∂L_t/∂m = (softmax(m^t) − c)/B (B × C; held to the end of the step), the spike
  adjoint ∂L_t/∂a_L = ∂L_t/∂m W_out (formed before W_out's update), dW_out;
* ``backward:l`` (l = L … 1): the spike adjoint ∂L_t/∂a_l (B × n_out_l, formed by layer l+1's
  input gradient or the readout), its un-pooled form (B × n_nrn_l, pooled layers only) turned
  in place into δ_l = ∂L_t/∂s_l ⊙ Θ′(u_l); u_1 … u_l are still held (u_l is dropped once δ_l is
  formed); dW_l = δ_lᵀ â_{l−1};
* ``backward:l:input`` (l ≥ 2): the input gradient ∂L_t/∂a_{l−1} (B × n_in_l) formed while δ_l
  and u_1 … u_{l−1} are held, and dW_l, applied once the input gradient has read W_l.

Memory is flat in T. Compute per step: forward, traces, a weight-gradient product per layer and
an input-gradient product for l ≥ 2 (≈ 2× forward for l ≥ 2), the readout's two products.
"""

from __future__ import annotations

from typing import Callable

from tpprof.analytic.rules._common import (
    COMMON_NOT_MODELLED, SURR_OPS, Ctx, add_forward_ops, add_lif_state, add_params, add_readout_state,
    ctx, fwd_macs, net_params,
)
from tpprof.analytic.rules._local import presyn_trace
from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.terms import TermList
from tpprof.config import Config

SRC = "OTTT (Xiao et al. 2022; snn/ottt.py)"


def phases_of(L: int, l: int = 1) -> tuple[str, ...]:
    """Every phase of an OTTT step: readout, then per layer l = L … 1 backward:l (δ_l, dW_l) and,
    for l ≥ 2, backward:l:input (the input gradient ∂L_t/∂a_{l−1} formed while δ_l is held);
    with ``l``, those until layer l is back-propagated (what layer l keeps for its backward is live)."""
    return ("readout",) + tuple(f"backward:{j}" for j in range(l, L + 1)) + tuple(
        f"backward:{j}:input" for j in range(l + 1, L + 1))


def _grad_phases(c: Ctx) -> Callable[[int | None], tuple[str, ...]]:
    """Where a gradient lives: dW_l is formed in backward:l and applied only after layer l's input
    gradient ∂L_t/∂a_{l−1} = δ_l W_l has read the weights of this step (backward:l:input, when
    layer l − 1 learns); dW_out in the readout phase."""
    def phases(l: int | None) -> tuple[str, ...]:
        if l is None:
            return ("readout",)
        return (f"backward:{l}",) + ((f"backward:{l}:input",) if l >= 2 and c.trains(l - 1) else ())
    return phases


def full_terms(cfg: Config, tl: TermList) -> None:
    c = ctx(cfg)
    B, L = c.B, c.L
    add_params(tl, c, net_params(c), _grad_phases(c),
               grad_source=f"{SRC}: gradient of this step's instantaneous loss L_t (one element per parameter element)")
    every = phases_of(L)
    for g in c.geo:
        l = g.index
        add_lif_state(tl, c, g, "")
        if not c.trains(l):  # frozen (RuleSpec.trainable): no trace, and the spatial backward stops above it
            add_forward_ops(tl, c, g, "")
            continue
        presyn_trace(tl, c, g, SRC)
        tl.mem("u (this step)", "saved", B * g.n_neurons,
               f"{SRC}: pre-reset potential kept from the forward for this step's Θ′(u_l), B × n_nrn; live until "
               "δ_l is formed", layer=l, phases=phases_of(L, l))
        pooled = g.n_out != g.n_neurons
        tl.mem("∂L_t/∂a_l (spike adjoint)", "loss_buffers", B * g.n_out,
               f"{SRC}: the spike adjoint of this step, B × n_out (formed as layer l+1's input gradient or by the "
               "readout); for unpooled layers turned in place into δ_l", layer=l,
               phases=(f"backward:{l}",) + ((f"backward:{l + 1}:input",) if l < L else ("readout",))
               + ((f"backward:{l}:input",) if c.trains(l - 1) and l >= 2 and not pooled else ()))
        if pooled:
            tl.mem("δ_l (un-pooled)", "loss_buffers", B * g.n_neurons,
                   f"{SRC}: the pooling's backward gives the un-pooled adjoint, turned in place into δ_l, B × n_nrn",
                   layer=l, phases=(f"backward:{l}",) + ((f"backward:{l}:input",) if l >= 2 and c.trains(l - 1)
                                                           else ()))
        add_forward_ops(tl, c, g, "")
        tl.ops("spatial backward (this step)", fwd_macs(c, g) * (2 if l >= 2 and c.trains(l - 1) else 1),
               (SURR_OPS + 2) * B * g.n_neurons, f"{SRC}: dW_l against â_{{l−1}} (+ input gradient for l ≥ 2)",
               layer=l)
    add_readout_state(tl, c)
    tl.mem("ε_L (readout input trace)", "traces", B * c.n_out_last,
           f"{SRC}: λ = 1 trace of the last hidden spikes (the readout is the integrator), B × n_out_L")
    tl.mem("∂L_t/∂m", "loss_buffers", B * c.C, f"{SRC}: (softmax(m^t) − c)/B, B × C, held to the end of the step",
           phases=every)
    tl.ops("readout backward", 2 * B * c.n_out_last * c.C, 4 * B * c.C, f"{SRC}: dW_out and ∂L_t/∂a_L")


NOT_MODELLED = COMMON_NOT_MODELLED + (
    "the reset is detached in the spatial backward (OTTT's approximation); not a memory term",
)

register(RuleModel(
    "ottt", "OTTT", full_terms, NOT_MODELLED, locality="time-local",
    locality_source="OTTT (Xiao et al. 2022; tpprof/snn/ottt.py): presynaptic traces forward in time, no temporal "
                    "graph; each step's readout error is back-propagated through all layers (∂L_t/∂a_l, weight "
                    "transport)"))
