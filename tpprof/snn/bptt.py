"""BPTT baseline: surrogate gradient through time over the whole sequence.

Same nets and readout as TP: m^T = Σ_t W_out a_L^t, loss = cross-entropy(m^T, y) (mean over
the batch), gradients by autograd through all T steps (the ArcTan surrogate stands in for Θ′,
resets included in the graph), one optimiser step per mini-batch (``cadence`` is ignored).

While the forward runs, every tensor autograd saves for backward is recorded by a
saved-tensors hook, so ``memory_inventory()`` (e.g. from ``on_step``) lists them under
``saved``; tensors that are parameters or views of the caller's input are not listed (they
are held anyway). The record is dropped after backward.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from tpprof.snn.base import Inventory, Learner
from tpprof.snn.neurons import lif_step
from tpprof.snn.sparse import SparseInputLinear

__all__ = ["BPTTLearner"]


class BPTTLearner(Learner):
    """Backpropagation through time with the ArcTan surrogate."""

    rule = "bptt"

    def _setup_extra(self) -> None:
        self._saved: list[torch.Tensor] = []
        self._live: dict[str, torch.Tensor] = {}

    def _state_inventory(self) -> Inventory:
        inv: Inventory = [(name, "neuron_state", t) for name, t in self._live.items()]
        seen: set[int] = {id(t) for _, _, t in inv}
        ptrs: set[int] = {t.untyped_storage().data_ptr() for _, _, t in inv}
        for j, t in enumerate(self._saved):
            ptr = t.untyped_storage().data_ptr()
            if id(t) in seen or ptr in ptrs:
                continue
            ptrs.add(ptr)
            inv.append((f"saved.{j}", "saved", t))
        return inv

    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:
        """Forward T steps with autograd, backward once, one optimiser step."""
        x, y = self._check_xy(x, y)
        B, T = x.shape[0], x.shape[1]
        exclude = {p.untyped_storage().data_ptr() for _, p in self.named_parameters()}
        exclude.add(x.untyped_storage().data_ptr())
        self._saved = []
        saved = self._saved

        def pack(t: torch.Tensor) -> torch.Tensor:
            if t.untyped_storage().data_ptr() not in exclude:
                saved.append(t)
            return t

        self._zero_grads()
        layers = self.net.layers
        self._use_frames(x)  # the sparse input path's index lists, when it is taken (tpprof.snn.sparse)
        frames = self._frames
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            states = [self._lif_zeros(B, lay.geom.neuron_shape) for lay in layers]
            m = self._zeros(B, self.classes)  # (B, C)
            w_eff = [lay.weight_eff() for lay in layers]
            for t in range(T):
                a = self._x_at(x, t)
                for i, lay in enumerate(layers):
                    if i == 0 and frames is not None:  # I_1 on the spike indices; backward adds δᵀ x^t into
                        # W_1.grad in place (no per-step gradient tensor, no autograd sum over T)
                        cur = SparseInputLinear.apply(w_eff[0], frames, t, lay.W.grad if lay.W.requires_grad else None)
                    else:
                        cur = lay.current(a, w_eff[i])  # (B, *neuron)
                    if lay.R is not None:
                        cur = cur + lay.rec_current(states[i].s)
                    s, _, states[i] = lif_step(cur, states[i], self.lif)
                    a, _ = lay.pool(s)
                m = m + F.linear(a.reshape(B, -1), self.net.W_out)
                self._live = {f"layer{i + 1}.{k}": getattr(st, k) for i, st in enumerate(states) for k in ("v", "s")}
                self._live["readout.m"] = m
                if on_step is not None:
                    on_step(t)
            loss = F.cross_entropy(m, y)
        loss.backward()
        self._use_frames(None)
        self._saved = []
        self._live = {}
        del states, w_eff
        self._step_optims(lr_scale)
        return self._result(m.detach(), y)
