"""What every learner shares: the net, per-layer optimisers, gradient buffers, the input-path
forward (prediction, traces), checkpoints and the memory inventory.

Memory contract (docs/architecture.md): ``memory_inventory()`` lists every tensor the learner
holds between two time steps as ``(name, category, tensor)`` with the shared categories.
Gradients live in persistent buffers (``p.grad``, allocated once, written in place), so
their bytes are held for the learner's lifetime and listed under ``gradients``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F

from tpprof.config import CATEGORIES, Config, frozen_layers
from tpprof.errors import UserError
from tpprof.snn.neurons import LIFParams, LIFState, lif_step, lif_zeros
from tpprof.snn.nets import SpikingNet, build_net
from tpprof.snn.sparse import SpikeFrames, choose_frames

__all__ = ["Learner", "CATEGORIES", "LayerOptimizer", "make_optimizer"]


Inventory = list[tuple[str, str, torch.Tensor]]


class LayerOptimizer:
    """One layer's optimiser: sgd | momentum (0.9) | adam (β = 0.9, 0.999, ε = 1e-8), in place
    from ``p.grad``; the arithmetic of ``torch.optim.SGD`` / ``torch.optim.Adam``.

    TP and TESS step every time step, so ``torch.optim``'s per-call Python overhead (≈ 0.15 ms,
    comparable to the update kernel of a 700×450 layer) is avoided: Adam calls the fused
    kernel directly when the backend has it, else the single-tensor update. The state is
    allocated at construction (so it is in the learner's memory from the start) and is
    exposed as ``state[param] = {name: tensor}``, like ``torch.optim``.
    """

    def __init__(self, params: list[torch.nn.Parameter], name: str, lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, momentum: float = 0.9) -> None:
        self.params, self.name, self.lr = list(params), name, float(lr)
        self.betas, self.eps, self.momentum = betas, eps, momentum
        self.state: dict[torch.nn.Parameter, dict[str, torch.Tensor]] = {}
        for p in self.params:
            if name == "adam":
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            elif name == "momentum":
                self.state[p] = {"momentum_buffer": torch.zeros_like(p)}
        self._fused = name == "adam" and hasattr(torch, "_fused_adam_")
        # the fused kernel's fixed arguments, made once: the parameters and their moments never change
        # identity (a checkpoint is copied into them); the gradients may (a learner can rebind p.grad)
        self._fixed = ([_dense(p) for p in self.params], [_dense(self.state[p]["exp_avg"]) for p in self.params],
                       [_dense(self.state[p]["exp_avg_sq"]) for p in self.params],
                       [self.state[p]["step"] for p in self.params]) if self._fused else None

    @torch.no_grad()
    def step(self, lr_scale: float = 1.0) -> None:
        """One update with learning rate lr · lr_scale."""
        lr = self.lr * lr_scale
        if self.name == "sgd":
            for p in self.params:
                p.add_(p.grad, alpha=-lr)
        elif self.name == "momentum":
            for p in self.params:
                buf = self.state[p]["momentum_buffer"]
                buf.mul_(self.momentum).add_(p.grad)  # first step: buf = g, as torch.optim
                p.add_(buf, alpha=-lr)
        else:
            self._adam(lr)

    def _adam(self, lr: float) -> None:
        b1, b2 = self.betas
        if self._fused:
            params, exp_avg, exp_avg_sq, steps = self._fixed
            try:
                torch._foreach_add_(steps, 1)
                # elementwise: a column-major W_1 and its like-strided buffers go in as their contiguous
                # transposes (the kernel's contiguous path; 2.5× faster than on the strided views)
                torch._fused_adam_(params, [_dense(p.grad) for p in self.params], exp_avg, exp_avg_sq,
                                   [], steps, lr=lr, beta1=b1, beta2=b2,
                                   weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)
                return
            except (RuntimeError, NotImplementedError):  # dtype/backend without the kernel
                torch._foreach_sub_(steps, 1)
                self._fused = False
        sts = [self.state[p] for p in self.params]
        for p, st in zip(self.params, sts):
            st["step"] += 1
            t = float(st["step"])
            g = p.grad
            st["exp_avg"].lerp_(g, 1 - b1)
            st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (st["exp_avg_sq"].sqrt() / math.sqrt(1 - b2**t)).add_(self.eps)
            p.addcdiv_(st["exp_avg"], denom, value=-lr / (1 - b1**t))


def _dense(t: torch.Tensor) -> torch.Tensor:
    """t itself, or its contiguous transpose when t is a column-major matrix (same elements)."""
    return t.t() if t.dim() == 2 and not t.is_contiguous() and t.t().is_contiguous() else t


def make_optimizer(params: list[torch.nn.Parameter], name: str, lr: float) -> LayerOptimizer:
    """sgd | momentum | adam for one layer (see :class:`LayerOptimizer`)."""
    return LayerOptimizer(params, name, lr)


class Learner:
    """Base of the TP, TESS and BPTT learners (see ``tpprof.snn`` for the public API)."""

    rule = "base"
    #: Layer 1's weight gradient reads the input frame x^t itself (so the sparse path builds its
    #: weight-gradient lists); False where it reads a trace of x (OTTT).
    sparse_wgrad = True

    def __init__(self, cfg: Config, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 seed: int = 0) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = dtype
        self.seed = int(seed)
        self.net: SpikingNet = build_net(cfg.net, self.device, dtype, seed)
        self.lif = LIFParams.from_spec(cfg.net.neuron)
        self.beta = float(cfg.net.neuron.beta)
        self.classes = cfg.net.readout
        #: F: hidden layers 1..F are frozen (``RuleSpec.trainable``): no update, so no gradient
        #: buffer and no optimiser state; layers F+1..L and the readout learn.
        self.frozen = frozen_layers(cfg.rule, cfg.net.depth)
        #: layer 1's input products on the spikes' indices: "auto" (by the batch's density), "dense", "sparse"
        self.input_path = "auto"
        self._frames: SpikeFrames | None = None  # this mini-batch's sparse input frames, or None
        self._t = 0  # the time step being run (indexes the frames)
        self._state: object | None = None  # per-mini-batch state, (re)allocated by train_batch
        self._setup_extra()
        self._groups = self._param_groups()
        for g, (_, params) in enumerate(self._groups):
            for p in params:
                if self.trains(g):
                    p.grad = torch.zeros_like(p)  # persistent gradient buffer
                else:
                    p.requires_grad_(False)  # frozen: autograd (BPTT family) records nothing for it
        self._optims: list[LayerOptimizer | None] = [
            make_optimizer(params, cfg.rule.optimizer, cfg.rule.lr) if self.trains(g) else None
            for g, (_, params) in enumerate(self._groups)]

    def trains(self, i: int) -> bool:
        """Does hidden layer (or parameter group) ``i`` learn? 0-based; groups 0..L−1 are the hidden
        layers, the last the readout, which always learns."""
        return i >= self.frozen

    @property
    def freeze_hidden(self) -> bool:
        """True when every hidden layer is frozen (``RuleSpec.trainable = "readout"``)."""
        return self.frozen == len(self.net.layers)

    # ---- hooks for subclasses -----------------------------------------------------------
    def _setup_extra(self) -> None:
        """Create rule-specific parameters/aux before the optimisers are built."""

    def _param_groups(self) -> list[tuple[str, list[torch.nn.Parameter]]]:
        """One optimiser per hidden layer (W_l, R_l) and one for the readout."""
        groups = []
        for i, layer in enumerate(self.net.layers, start=1):
            ps = [layer.W] + ([layer.R] if layer.R is not None else [])
            groups.append((f"layer{i}", ps))
        groups.append(("readout", [self.net.W_out]))
        return groups

    def _state_inventory(self) -> Inventory:
        return []

    def _aux_inventory(self) -> Inventory:
        return []

    def _extra_state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_extra(self, sd: dict[str, torch.Tensor]) -> None:
        """Load rule-specific entries of a state dict."""

    # ---- public API -----------------------------------------------------------------------
    def train_batch(self, x: torch.Tensor, y: torch.Tensor, on_step: Callable[[int], None] | None = None,
                    lr_scale: float = 1.0) -> dict:  # pragma: no cover - abstract
        """One mini-batch. ``lr_scale`` multiplies the learning rate for this batch only, e.g.
        B_short / B to weigh a short last batch (it still receives T updates at cadence "step")."""
        raise NotImplementedError

    def set_lr(self, lr: float) -> None:
        """Set the base learning rate of every layer optimiser (hidden layers and readout).

        ``lr_scale`` of :meth:`train_batch` still multiplies it per batch.
        """
        lr = float(lr)
        if not (lr > 0 and math.isfinite(lr)):
            raise UserError("lr", f"{lr} is not a positive number", "a number > 0, e.g. 1e-4")
        for opt in self._optims:
            if opt is not None:
                opt.lr = lr

    def named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        """Trainable tensors (W_l, R_l, W_out, and S when it is trained)."""
        return self.net.named_parameters()

    def n_params(self) -> int:
        return sum(p.numel() for _, p in self.named_parameters())

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, *input_shape) → readout potential m^T (B, C), input path only."""
        m, _ = self._input_path(self._check_x(x), want_traces=False)
        return m

    @torch.no_grad()
    def layer_traces(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Input traces ε_l^T of every hidden layer, each flattened to (B, n_out_l)."""
        _, traces = self._input_path(self._check_x(x), want_traces=True)
        return [tr.reshape(tr.shape[0], -1) for tr in traces]

    def memory_inventory(self) -> Inventory:
        """Every tensor held between steps: ``[(name, category, tensor)]``."""
        inv: Inventory = []
        for name, p in self.named_parameters():
            inv.append((name, "weights", p))
        for name, p in self.named_parameters():
            if p.grad is not None:
                inv.append((name + ".grad", "gradients", p.grad))
        names = {id(p): n for n, p in self.named_parameters()}
        for opt in self._optims:
            for p, st in (opt.state.items() if opt is not None else ()):
                for key, val in st.items():
                    if torch.is_tensor(val):
                        inv.append((f"{names.get(id(p), '?')}.{key}", "optimizer", val))
        inv.extend(self._aux_inventory())
        inv.extend(self._state_inventory())
        return inv

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors (CPU copies): parameters and fixed aux; ``torch.load(weights_only=True)``-safe."""
        sd = {name: p.detach().to("cpu").clone() for name, p in self.named_parameters()}
        sd.update({k: v.detach().to("cpu").clone() for k, v in self._extra_state_dict().items()})
        return sd

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Copy parameters (and fixed aux) from ``sd``; shapes must match this learner's net."""
        params = dict(self.named_parameters())
        missing = [n for n in params if n not in sd]
        if missing:
            raise UserError("checkpoint", f"lacks {missing}", "a state dict of the same net and rule")
        for name, p in params.items():
            if tuple(sd[name].shape) != tuple(p.shape):
                raise UserError("checkpoint", f"{name} has shape {tuple(sd[name].shape)}, "
                                f"the net needs {tuple(p.shape)}", "a checkpoint of the same net")
            with torch.no_grad():
                p.copy_(sd[name].to(device=p.device, dtype=p.dtype))
        self._load_extra(sd)

    # ---- shared helpers --------------------------------------------------------------------
    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        want = tuple(self.cfg.net.input_shape)
        if not torch.is_tensor(x) or x.dim() != 2 + len(want) or tuple(x.shape[2:]) != want:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise UserError("x", f"has shape {shape}", f"(B, T, {', '.join(map(str, want))})")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise UserError("x", f"has shape {tuple(x.shape)}", "at least one sample and one time step")
        return x

    def _check_xy(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._check_x(x)
        if not torch.is_tensor(y) or y.dim() != 1 or y.shape[0] != x.shape[0]:
            got = tuple(y.shape) if torch.is_tensor(y) else repr(y)
            raise UserError("y", f"has shape {got}", f"({x.shape[0]},) labels")
        y = y.to(device=self.device, dtype=torch.long)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.classes):
            raise UserError("y", f"has labels outside 0..{self.classes - 1}", f"integers 0..{self.classes - 1}")
        return x, y

    def _x_at(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """Input frame t as the learner's dtype/device: (B, *input_shape)."""
        return x[:, t].to(device=self.device, dtype=self.dtype)

    def _use_frames(self, x: torch.Tensor | None) -> None:
        """Set (x given) or drop (None) this mini-batch's sparse input frames (tpprof.snn.sparse)."""
        self._frames = None  # the previous batch's index arrays go first
        if x is not None:
            lay = self.net.layers[0]
            self._frames = choose_frames(self.input_path, x, not lay.is_conv, lay.W.shape[0], self.dtype, self.device,
                                         grad=self.sparse_wgrad)

    def _current1(self, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Layer 1's feed-forward current I_1 = current(x^t): on the spikes' indices of step
        ``self._t`` when the sparse path is on, else dense."""
        if self._frames is None:
            return self.net.layers[0].current(a, w)
        return self._frames.linear(self._t, w)  # (B, H)

    def _wgrad1(self, gbuf: torch.Tensor, a: torch.Tensor, delta: torch.Tensor, beta: float) -> None:
        """gbuf ← beta·gbuf + δᵀ x^t for layer 1 (its input-frame pair), sparse or dense.

        Sparse, overwriting (beta = 0) W_1's own gradient without the native kernels: the gather's
        fresh (n_in, H) result becomes W_1.grad (same shape and column-major layout), instead of
        being copied into the old buffer (one pass over n_in·H saved; the old buffer is freed, so
        the bytes held are the same). The native kernels write into the buffer itself."""
        if self._frames is None:
            self.net.layers[0].add_weight_grad(gbuf, [(a, delta)], beta=beta)
            return
        d2 = delta.reshape(delta.shape[0], -1)  # (B, H)
        w1 = self.net.layers[0].W
        if beta == 0.0 and gbuf is w1.grad and not self._frames.in_place(gbuf, d2):
            w1.grad = self._frames.wgrad(self._t, d2)  # (H, n_in) view of a contiguous (n_in, H)
        else:
            self._frames.add_wgrad(self._t, gbuf, d2, beta=beta)

    def _one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.classes).to(self.dtype)  # (B, C)

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(shape, device=self.device, dtype=self.dtype)

    def _lif_zeros(self, batch: int, shape: Iterable[int]) -> LIFState:
        return lif_zeros((batch, *shape), self.dtype, self.device)

    def _input_path(self, x: torch.Tensor, want_traces: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the input path over T steps (no learning); returns m^T (B, C) and ε_l^T."""
        B, T = x.shape[0], x.shape[1]
        layers = self.net.layers
        states = [self._lif_zeros(B, lay.geom.neuron_shape) for lay in layers]
        traces = [self._zeros(B, *lay.geom.out_shape) for lay in layers] if want_traces else []
        m = self._zeros(B, self.classes)  # (B, C)
        w_eff = [lay.weight_eff() for lay in layers]
        for t in range(T):
            a = self._x_at(x, t)
            for i, lay in enumerate(layers):
                cur = lay.current(a, w_eff[i])
                if lay.R is not None:
                    cur = cur + lay.rec_current(states[i].s)
                s, _, states[i] = lif_step(cur, states[i], self.lif)
                a, _ = lay.pool(s)
                if want_traces:
                    traces[i].mul_(self.beta).add_(a)
            m.add_(F.linear(a.reshape(B, -1), self._w_out()))
        return m, traces

    def _w_out(self) -> torch.Tensor:
        """The readout weight of the forward pass (a rule may use a transformed W_out)."""
        return self.net.W_out

    def _readout_delta(self, m: torch.Tensor, c: torch.Tensor, eps_last: torch.Tensor, beta: float = 1.0) -> None:
        """Readout delta rule: grad W_out ← beta·grad + (softmax(m) − c)ᵀ ε_L / B  (C, n_out_L)."""
        B = m.shape[0]
        err = torch.softmax(m, dim=1).sub_(c)  # (B, C)
        self.net.W_out.grad.addmm_(err.t(), eps_last.reshape(B, -1), beta=beta, alpha=1.0 / B)

    def _zero_grads(self, groups: Iterable[int] | None = None) -> None:
        idx = range(len(self._groups)) if groups is None else groups
        for g in idx:
            for p in self._groups[g][1]:
                if p.grad is not None:  # a frozen layer has no gradient buffer
                    p.grad.zero_()

    def _run_local_steps(self, x: torch.Tensor, c: torch.Tensor, st: object, lr_scale: float,
                         on_step: Callable[[int], None] | None,
                         take: Callable[[Any], object] | None = None) -> None:
        """The time loop of a rule whose ``_step(x_t, c, st, acc)`` adds one step's gradients:
        cadence ``step`` overwrites them each step (acc = 0) and steps the optimisers every step;
        ``sequence`` accumulates them (acc = 1) and steps once, after step T. ``take`` receives
        each step's return value (TP sums its local losses with it)."""
        per_step = self.cfg.rule.cadence == "step"
        self._zero_grads()
        acc = 0.0 if per_step else 1.0
        T = x.shape[1]
        self._use_frames(x)
        try:
            for t in range(T):
                self._t = t
                out = self._step(self._x_at(x, t), c, st, acc)  # type: ignore[attr-defined]
                if take is not None:
                    take(out)
                if per_step or t == T - 1:
                    self._step_optims(lr_scale)
                if on_step is not None:
                    on_step(t)
        finally:
            self._use_frames(None)

    def _step_optims(self, lr_scale: float = 1.0) -> None:
        """Optimiser steps of the groups that learn (a frozen layer has none)."""
        for opt in self._optims:
            if opt is not None:
                opt.step(lr_scale)

    @staticmethod
    def _result(m: torch.Tensor, y: torch.Tensor, **extra: float) -> dict:
        """{"loss": CE(m^T, y), "correct": #(argmax m^T = y), "n": B} (+ extras)."""
        loss = F.cross_entropy(m, y).item() if y.numel() else 0.0
        out = {"loss": float(loss), "correct": int((m.argmax(1) == y).sum().item()), "n": int(y.numel())}
        out.update(extra)
        return out
