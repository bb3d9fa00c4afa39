"""Terms shared by several rules: parameters, gradients, optimiser state, LIF state, readout.

Notation (reference sheet §1): B batch, C classes, T steps; per hidden layer l (from
``cfg.net.geometry()``): n_in = elements arriving, n_nrn = neurons before pooling (membranes),
n_out = after pooling (spikes passed on, traces), nW = feed-forward weights, nR = recurrent
weights, P = output positions of a conv layer (H·W before pooling; 1 for dense layers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from tpprof.analytic.terms import OPTIMIZER_FACTOR, TermList
from tpprof.config import Config, LayerGeometry, frozen_layers

#: Elementwise operations per trainable element for one optimiser step (order of magnitude:
#: SGD w -= lr·g; momentum adds m = μm + g; Adam updates two moments, bias-corrects, sqrt, divides).
OPT_OPS: dict[str, int] = {"sgd": 2, "momentum": 4, "adam": 12}
#: Elementwise operations per neuron per step for the LIF update of reference §2
#: (decay-and-add, threshold, reset) and per trace element (decay-and-add).
LIF_OPS = 4
TRACE_OPS = 2
#: ArcTan surrogate Θ′(u) = k / (1 + (π(u − v_th))²): sub, mul, square, add, divide.
SURR_OPS = 5


@dataclass(frozen=True)
class Ctx:
    B: int
    C: int
    T: int
    geo: tuple[LayerGeometry, ...]
    opt: str
    cadence: str
    aux_stored: bool
    update: str = "buffered"  # RuleSpec.update: "in-loop" holds no per-step gradient buffer
    #: F: hidden layers 1..F are frozen (RuleSpec.trainable): no gradient, no optimiser state
    frozen: int = 0

    def trains(self, layer: int | None) -> bool:
        """Does hidden layer ``layer`` (1-based; None = the readout) learn?"""
        return layer is None or layer > self.frozen

    @property
    def L(self) -> int:
        return len(self.geo)

    @property
    def n_out_last(self) -> int:
        return self.geo[-1].n_out


def ctx(cfg: Config) -> Ctx:
    wl = cfg.workload
    return Ctx(wl.batch, wl.classes, wl.steps, cfg.net.geometry(), cfg.rule.optimizer, cfg.rule.cadence,
               cfg.rule.aux == "stored", cfg.rule.update, frozen_layers(cfg.rule, cfg.net.depth))


def positions(g: LayerGeometry) -> int:
    """P: output positions per weight application (H·W for conv, 1 for dense)."""
    return math.prod(g.neuron_shape[1:]) if g.kind == "conv" else 1


def fwd_macs(c: Ctx, g: LayerGeometry) -> int:
    """MACs of W_l s_{l−1} (+ R_l s_l^{t−1}) for one path and one step: B·(nW·P + nR)."""
    return c.B * (g.n_weights * positions(g) + g.n_recurrent)


# ---------------------------------------------------------------------------------------
# Parameters, gradients, optimiser state
# ---------------------------------------------------------------------------------------

Param = tuple[str, int, "int | None", str]  # (key, elements, layer, source)


def net_params(c: Ctx) -> list[Param]:
    """W_l, R_l per hidden layer and W_out: the trainable tensors of NetSpec.n_params()."""
    out: list[Param] = []
    for g in c.geo:
        src = "Eq. 1 (conv: k²·C_in·C_out)" if g.kind == "conv" else "Eq. 1: W_l is n_out × n_in"
        out.append(("W", g.n_weights, g.index, src))
        if g.n_recurrent:
            out.append(("R", g.n_recurrent, g.index, "Eq. 1: recurrent R_l is H_l × H_l"))
    out.append(("W_out", c.n_out_last * c.C, None, "§7 readout: C × n_out_L"))
    return out


def add_params(tl: TermList, c: Ctx, params: list[Param],
               grad_phases: Callable[[int | None], tuple[str, ...]],
               *, once_per_sequence: bool = False, grad_source: str | None = None) -> None:
    """Weights, one gradient buffer per parameter, optimiser state (sgd 0, momentum 1×, Adam 2×).

    With ``update = "in-loop"`` (per-step rules) there is no gradient buffer: the optimiser step of
    each element (SGD w −= lr·g; Adam's two moments and w, elementwise) is applied as soon as its
    gradient g = Σ_b δ[b]·x[b] is summed, inside the gradient loop.

    A frozen layer's parameters (``RuleSpec.trainable``: layer ≤ F) are weights only: no update,
    so no gradient and no optimiser state (the learners allocate neither).

    ``grad_phases(layer)`` gives the phases in which the per-step gradient of a layer lives
    (update every step); cadence ``sequence`` makes the gradient a persistent accumulator
    that outlives the T steps of a mini-batch. ``once_per_sequence`` (BPTT):
    the gradient is transient in ``grad_phases`` and the optimiser runs once per mini-batch.
    """
    k = OPTIMIZER_FACTOR[c.opt]
    seq = c.cadence == "sequence" and not once_per_sequence
    in_loop = c.update == "in-loop" and not seq and not once_per_sequence
    trained = [(key, n, layer, src) for key, n, layer, src in params if c.trains(layer)]
    for key, n, layer, src in params:
        tl.mem(key, "weights", n, src + ("" if c.trains(layer) else " (frozen: RuleSpec.trainable)"), layer=layer)
        if not c.trains(layer):
            continue
        if in_loop:
            pass  # update "in-loop": each element's step is applied as its gradient is summed (no buffer)
        elif seq:
            tl.mem(f"grad {key}", "gradients", n, "gradient accumulator, one element per parameter element: "
                   "cadence 'sequence' sums the T per-step gradients before one update", layer=layer)
        else:
            tl.mem(f"grad {key}", "gradients", n,
                   grad_source or "per-step gradient of this layer's local loss (one element per parameter "
                   "element), applied at once by its own optimiser (update every step, one optimiser per layer, "
                   "TP paper Eq. 18)", layer=layer, phases=grad_phases(layer))
        if k:
            tl.mem(f"{c.opt} state {key}", "optimizer", k * n,
                   f"{c.opt}: {k} buffer(s) per trainable element", layer=layer)
    total = sum(n for _, n, _, _ in trained)
    per_step = OPT_OPS[c.opt] * total
    if seq or once_per_sequence:
        per_step = -(-per_step // c.T)  # one update per mini-batch, amortised per step
    tl.ops("optimizer step", 0, per_step, f"{c.opt}: ~{OPT_OPS[c.opt]} ops per element"
           + (" once per mini-batch, amortised over T" if seq or once_per_sequence else " every step"))


# ---------------------------------------------------------------------------------------
# LIF state and forward compute
# ---------------------------------------------------------------------------------------


SPIKES_WHY = ("spikes s_l, B × n_nrn: needed across steps for the reset under the paper's ordering (Eq. 1) "
              "and for R_l s_l^{t−1} in recurrent layers; under the code's ordering (§2) the reset is already "
              "in v, but s_l^t is still held through the step as layer l+1's input and presynaptic factor "
              "and to recover the pre-reset potential u = v + v_th·s for the surrogate Θ′(u)")


def add_lif_state(tl: TermList, c: Ctx, g: LayerGeometry, path: str) -> None:
    """Membrane v and spikes s, both at the neuron (pre-pool) shape, B·n_nrn each.

    Only the pre-pool spikes are state: the pooled spikes o_l = pool(s_l) are a transient of
    the step (see :func:`add_pooled_spikes`); nothing of theirs is read at the next step.
    """
    sfx = f" ({path} path)" if path else ""
    tl.mem(f"v{sfx}", "neuron_state", c.B * g.n_neurons, "Eq. 1: membrane potential, B × n_nrn", layer=g.index)
    tl.mem(f"s{sfx}", "neuron_state", c.B * g.n_neurons, SPIKES_WHY, layer=g.index)


def next_phase(c: Ctx, l: int) -> str:
    """The phase that follows layer l's local loss: layer l+1's, or the readout's after the last layer."""
    return f"loss:{l + 1}" if l < c.L else "readout"


def add_pooled_spikes(tl: TermList, c: Ctx, g: LayerGeometry, path: str) -> None:
    """Pooled spikes o_l = pool(s_l), B × n_out, for pooled conv layers only: a transient of the step.

    Formed at layer l (and read there, e.g. by TP's trace ε_l or TESS's z = B_l o), then read as
    layer l+1's input and presynaptic factor (its weight update), or by the readout after the
    last layer; nothing reads them at the next step (the reset and R_l use the pre-pool s_l),
    so they live in the phases ``loss:l`` and the next one. Dense and unpooled conv layers pass
    s_l itself on (already counted as state).
    """
    if g.n_out == g.n_neurons:
        return
    sfx = f" ({path} path)" if path else ""
    tl.mem(f"pooled s{sfx}", "neuron_state", c.B * g.n_out,
           "§3: pooled spikes o_l = pool(s_l), B × n_out: layer l+1's input and presynaptic factor (or the "
           "readout's input); a transient of the step, not held to the next step", layer=g.index,
           phases=(f"loss:{g.index}", next_phase(c, g.index)))


def add_forward_ops(tl: TermList, c: Ctx, g: LayerGeometry, path: str, *, macs: int | None = None) -> None:
    m = fwd_macs(c, g) if macs is None else macs
    pool_ops = c.B * g.n_neurons if g.n_out != g.n_neurons else 0
    tl.ops(f"forward {path}", m, LIF_OPS * c.B * g.n_neurons + pool_ops,
           "Eq. 1: B·(nW·P + nR) MACs; LIF ~4 ops/neuron (+ pooling)", layer=g.index)


def add_readout_state(tl: TermList, c: Ctx) -> None:
    tl.mem("m (readout potential)", "neuron_state", c.B * c.C, "§7: integrator m^t = m^{t−1} + W_out s_L^t, B × C")
    tl.ops("readout forward", c.B * c.n_out_last * c.C, c.B * c.C, "§7: W_out s_L, B·n_out_L·C MACs")


def add_readout_delta(tl: TermList, c: Ctx, grad_phase: tuple[str, ...] = ("readout",)) -> None:
    """Delta rule ΔW_out ∝ (softmax(m^t) − c)ᵀ ε_L^t / B (reference §7, [code])."""
    tl.mem("softmax(m) − c", "loss_buffers", c.B * c.C, "§7 delta rule error, B × C", phases=grad_phase)
    tl.ops("readout delta rule", c.B * c.n_out_last * c.C, 4 * c.B * c.C,
           "§7: (softmax(m) − c)ᵀ ε_L, B·C·n_out_L MACs")


def readout_phases(l: int | None) -> tuple[str, ...]:
    return (f"loss:{l}",) if l is not None else ("readout",)


COMMON_NOT_MODELLED: tuple[str, ...] = (
    "input data buffer: streamed one time step at a time (B × input) by the data loader",
    "labels / one-hot targets held by the data loader (B integers)",
    "allocator fragmentation, alignment and caching (see the 'implementation' terms for what is known)",
    "Python / framework runtime, CUDA context, kernels' workspaces",
    "activations of data loading and augmentation",
    "learning-rate schedule and other scalars (O(1))",
    "metrics and logging buffers",
)
