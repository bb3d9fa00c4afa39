"""NeuroBench metrics of a trained tpprof net: the harness's own numbers next to tpprof's closed forms.

NeuroBench (Yik et al., "The neurobench framework for benchmarking neuromorphic computing
algorithms and systems", Nat. Commun. 2025; package ``neurobench``) runs a wrapped model over a
data loader and reports, per its definitions:

* **Footprint** — bytes of the model's parameters and buffers: Σ numel × element size.
* **ConnectionSparsity** — zero weights / all weights of the Linear / Conv layers.
* **ActivationSparsity** — 1 − (non-zero outputs / all outputs) of the activation (spiking)
  modules, over every layer, time step and sample.
* **SynapticOperations** — per sample, over all time steps, for every Linear / Conv call:
  ``Dense`` = the operations with every input and weight taken as non-zero; ``Effective_ACs``
  (inputs all 0/1: accumulates) or ``Effective_MACs`` (otherwise) = Σ over output units of the
  non-zero inputs meeting non-zero weights (biases excluded).

The wrapper (:class:`HarnessNet`) is a ``torch.nn.Module`` built from the learner's tensors:
one ``nn.Linear`` / ``nn.Conv2d`` per weight (W_l — the standardised Ŵ_l for conv —, R_l,
W_out; no bias) so NeuroBench's connection hooks see every synaptic call, and one identity
:class:`SpikeOutput` module per hidden layer, registered as an activation module, that the
spikes of tpprof's own LIF step (:func:`tpprof.snn.neurons.lif_step`) pass through. Its output
is the readout potential m^T (B, C), equal to ``learner.predict``.

tpprof's closed forms (:func:`closed_forms`), from the NetSpec and tpprof's own forward:

* footprint = n_params · 4 B (fp32), n_params = Σ_l (n_in_l H_l [or k² C_in C_out] + H_l² [rec]) + n_L C;
* connection sparsity = #(W = 0) / #W over W_l, R_l, W_out;
* activation sparsity = 1 − Σ_{t,l} nnz(s_l^t) / (N T Σ_l n_nrn_l);
* Dense = T (Σ_l d_l + [H_l² if rec] + n_L C) per sample, with d_l = n_in_l H_l (dense) or
  C_in C_out v(H, k) v(W, k) (conv, stride 1, zero padding p = k//2; v(H, k) = kH − p(p+1)
  kernel taps land inside the map);
* Effective ops: Σ_t Σ_calls Σ_j Σ_i [a_i ≠ 0][W_ji ≠ 0] / N, an AC when the call's input is
  all 0/1 (spikes) and a MAC otherwise (real-valued input currents, average-pooled spikes).
"""

from __future__ import annotations

import math
from typing import Any

from tpprof.config import TRAINABLE_RULES, Config
from tpprof.errors import UserError

__all__ = ["HarnessNet", "SpikeOutput", "closed_forms", "neurobench_metrics", "training_peaks", "report",
           "conv_dense_ops"]


def conv_dense_ops(c_in: int, c_out: int, h: int, w: int, k: int) -> int:
    """Dense operations of one stride-1, zero-padded (p = k//2) k×k conv call on a C_in×H×W map:
    C_in C_out v(H) v(W) with v(n) = Σ_{d=−p}^{p} (n − |d|) = k n − p(p+1) (taps inside the map)."""
    p = k // 2
    v = lambda n: k * n - p * (p + 1) if n > p else sum(max(0, n - abs(d)) for d in range(-p, p + 1))  # noqa: E731
    return c_in * c_out * v(h) * v(w)


def _spike_module_class() -> Any:
    import torch

    class SpikeOutput(torch.nn.Module):
        """Identity on the spikes s_l^t (B, *neuron_shape): where NeuroBench's activation hook sits."""

        def forward(self, s: Any) -> Any:  # noqa: D401
            return s

    return SpikeOutput


SpikeOutput: Any = None  # set on first use (keeps this module importable without torch)


def HarnessNet(learner: Any) -> Any:  # noqa: N802 - a class factory
    """The learner as a ``torch.nn.Module`` NeuroBench can hook (see the module docstring)."""
    global SpikeOutput
    import torch

    from tpprof.snn.neurons import lif_step, lif_zeros

    if SpikeOutput is None:
        SpikeOutput = _spike_module_class()

    def _linear(w: Any) -> Any:
        """A bias-free ``nn.Linear`` holding w (out, in)."""
        m = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        m.weight.data = w
        return m

    class _Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            net = learner.net
            self.spec = net.spec
            self.lif = learner.lif
            self.hidden = net.layers  # tpprof layers: pooling and geometry (no tensors registered)
            syn, rec, spikes = [], [], []
            for hl in net.layers:
                w = hl.weight_eff().detach().clone()
                if hl.is_conv:
                    m = torch.nn.Conv2d(w.shape[1], w.shape[0], hl.spec.kernel, padding=hl.spec.kernel // 2,
                                        bias=False)
                    m.weight.data = w
                else:
                    m = _linear(w)
                syn.append(m)
                rec.append(_linear(hl.R.detach().clone()) if hl.R is not None else torch.nn.Identity())
                spikes.append(SpikeOutput())
            self.syn = torch.nn.ModuleList(syn)
            self.rec = torch.nn.ModuleList(rec)
            self.spikes = torch.nn.ModuleList(spikes)
            self.readout = _linear(net.W_out.detach().clone())

        def forward(self, x: Any) -> Any:
            """(B, T, *input_shape) → m^T (B, C), m^t = m^{t−1} + W_out a_L^t."""
            B, T = x.shape[0], x.shape[1]
            dt, dev = self.readout.weight.dtype, self.readout.weight.device
            states = [lif_zeros((B, *hl.geom.neuron_shape), dt, dev) for hl in self.hidden]
            m = torch.zeros((B, self.spec.readout), dtype=dt, device=dev)
            for t in range(T):
                a = x[:, t].to(dtype=dt, device=dev)  # (B, *input_shape)
                for i, hl in enumerate(self.hidden):
                    inp = a if hl.is_conv else a.reshape(B, -1)
                    cur = self.syn[i](inp)  # (B, *neuron_shape)
                    if hl.R is not None:
                        cur = cur + self.rec[i](states[i].s)
                    s, _, states[i] = lif_step(cur, states[i], self.lif)
                    s = self.spikes[i](s)
                    a, _ = hl.pool(s)
                m = m + self.readout(a.reshape(B, -1))
            return m

    return _Net()


# --------------------------------------------------------------------------------------
# tpprof's closed forms
# --------------------------------------------------------------------------------------


def closed_forms(learner: Any, x: Any) -> dict[str, Any]:
    """tpprof's own figures for the NeuroBench quantities on inputs x (N, T, *input_shape)."""
    import torch
    import torch.nn.functional as F

    from tpprof.snn.neurons import lif_step, lif_zeros

    cfg: Config = learner.cfg
    spec = cfg.net
    geo = spec.geometry()
    N, T = int(x.shape[0]), int(x.shape[1])
    # Footprint and connection sparsity: the weights themselves.
    footprint = spec.n_params() * 4  # fp32, the learner's dtype for checkpoints
    mats = [w.detach() for hl in learner.net.layers for w in (hl.weight_eff(), hl.R) if w is not None]
    mats.append(learner.net.W_out.detach())
    zeros = sum(int((w == 0).sum()) for w in mats)
    n_w = sum(w.numel() for w in mats)
    # Dense operations: geometry only.
    dense = 0
    for layer, g in zip(spec.layers, geo):
        if layer.kind == "conv":
            dense += conv_dense_ops(g.in_shape[0], layer.width, g.in_shape[1], g.in_shape[2], layer.kernel)
        else:
            dense += g.n_in * layer.width + (layer.width ** 2 if layer.kind == "recurrent" else 0)
    dense += geo[-1].n_out * spec.readout
    dense *= T
    # Activity: tpprof's forward, counting spikes and effective operations per call.
    spikes_total, neurons_total = 0, 0
    eff = {"AC": 0, "MAC": 0}

    def count(a: Any, w: Any, conv: bool, k: int = 0) -> None:
        binary = bool(torch.all((a == 0) | (a == 1)))
        ai, wi = (a != 0).to(torch.float64), (w != 0).to(torch.float64)
        n = F.conv2d(ai, wi, padding=k // 2).sum() if conv else (ai.reshape(ai.shape[0], -1) @ wi.t()).sum()
        eff["AC" if binary else "MAC"] += int(n.item())

    with torch.no_grad():
        for lo in range(0, N, 256):
            xb = x[lo:lo + 256]
            B = xb.shape[0]
            layers = learner.net.layers
            states = [lif_zeros((B, *hl.geom.neuron_shape), learner.dtype, learner.device) for hl in layers]
            w_eff = [hl.weight_eff() for hl in layers]
            for t in range(T):
                a = xb[:, t].to(dtype=learner.dtype, device=learner.device)
                for i, hl in enumerate(layers):
                    count(a, w_eff[i], hl.is_conv, hl.spec.kernel)
                    cur = hl.current(a, w_eff[i])
                    if hl.R is not None:
                        count(states[i].s, hl.R, False)
                        cur = cur + hl.rec_current(states[i].s)
                    s, _, states[i] = lif_step(cur, states[i], learner.lif)
                    spikes_total += int(torch.count_nonzero(s))
                    neurons_total += s.numel()
                    a, _ = hl.pool(s)
                count(a, learner.net.W_out, False)
    return {
        "Footprint": footprint,
        "ConnectionSparsity": round(zeros / n_w, 4),
        "ActivationSparsity": (neurons_total - spikes_total) / neurons_total if neurons_total else 0.0,
        "SynapticOperations": {"Effective_MACs": eff["MAC"] / N, "Effective_ACs": eff["AC"] / N, "Dense": dense},
        "n_samples": N,
        "steps": T,
    }


# --------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------


def _neurobench() -> Any:
    try:
        import neurobench  # noqa: F401
        from neurobench.benchmarks import Benchmark
        from neurobench.metrics.static import ConnectionSparsity, Footprint
        from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
        from neurobench.models import TorchModel
    except ImportError as e:
        raise UserError("neurobench", f"the NeuroBench harness is not importable ({e})",
                        "pip install 'tpprof[neurobench]'") from None
    return Benchmark, TorchModel, (Footprint, ConnectionSparsity), (ActivationSparsity, SynapticOperations)


def neurobench_metrics(learner: Any, x: Any, y: Any, batch: int = 64) -> dict[str, Any]:
    """Run NeuroBench's Benchmark (its metrics, hooks and loop) on the wrapped learner."""
    import torch
    Benchmark, TorchModel, static, workload = _neurobench()
    net = HarnessNet(learner)
    model = TorchModel(net)
    model.add_activation_module(SpikeOutput)
    ds = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False)
    bench = Benchmark(model, loader, [], [], [list(static), list(workload)])
    res = bench.run(quiet=True)
    # NeuroBench's own key names (Footprint in bytes; SynapticOperations per sample)
    out = {"Footprint": int(res["Footprint"]), "ConnectionSparsity": float(res["ConnectionSparsity"]),
           "ActivationSparsity": float(res["ActivationSparsity"]),
           "SynapticOperations": {k: float(v) for k, v in res["SynapticOperations"].items()}}
    return out


#: The rules whose training peak ``evaluate --neurobench`` measures besides the checkpoint's own
#: (one fresh process each; ``tpprof measure`` measures any other learner).
MEASURED_RULES: tuple[str, ...] = ("tp", "tess", "bptt")


def training_peaks(cfg: Config, measured: bool = True, timeout: float = 300.0) -> dict[str, Any]:
    """Training peak per learner at the checkpoint's workload (keys NeuroBench lacks): analytic
    (``tpprof.analytic.estimate(...).peak_bytes``) for every learner that accepts the net, and
    measured for :data:`MEASURED_RULES` and the checkpoint's rule (one fresh process per rule,
    memory window only, :func:`tpprof.measure.grid.run_subprocess`)."""
    from dataclasses import replace

    from tpprof.analytic import estimate
    from tpprof.config import rules_accepting

    rules = rules_accepting(cfg, TRAINABLE_RULES)
    analytic = {r: int(estimate(cfg.with_(name=r)).peak_bytes) for r in rules}
    out: dict[str, Any] = {"tpprof_train_peak_analytic_bytes": analytic,
                           "tpprof_train_workload": {"batch": cfg.workload.batch, "steps": cfg.workload.steps,
                                                     "dtype": cfg.workload.dtype, "optimizer": cfg.rule.optimizer}}
    if measured:
        from tpprof.measure.grid import Point, Protocol, run_subprocess

        rows = {}
        for r in dict.fromkeys([x for x in MEASURED_RULES if x in rules] + [cfg.rule.name]):
            c = replace(cfg, rule=replace(cfg.rule, name=r))
            row = run_subprocess(Point(c, c.net.to_string(), "cpu"), Protocol(repeats=1, rss=False, timeout=timeout),
                                 timing=False)
            rows[r] = int(row["peak_bytes"]) if row.get("status") == "ok" else f"{row.get('status')}: {row.get('error')}"
        out["tpprof_train_peak_measured_bytes"] = rows
        out["tpprof_train_peak_measured_device"] = "cpu"
    return out


def snntorch_equivalent(neuron: Any) -> dict[str, Any]:
    """The snnTorch ``Leaky`` setting closest to tpprof's neuron, and whether it is exact.

    tpprof (``order="code"``): u = αv + I, s = Θ(u − v_th), v = u − v_th s (soft) or u (1 − s)
    (hard); ``"paper"``: v = αv + I − v_th s^{t−1} (soft) or αv (1 − s^{t−1}) + I (hard).
    snnTorch's Leaky keeps its membrane un-reset and resets at the next step (reset_delay=True,
    its default): subtract → v = βv + I − θ s^{t−1}, zero → v = β(1 − s^{t−1}) v + I, i.e. the
    paper ordering; with reset_delay=False it resets at once: zero ≡ code + hard; subtract is
    code + soft except after a spike that leaves v ≥ θ (u ≥ 2θ), where snnTorch needs βv + I ≥ 2θ to
    fire again. tests/test_nb_metrics.py checks these on random currents against snnTorch."""
    a, th = float(neuron.alpha), float(neuron.v_th)
    mech = "subtract" if neuron.reset == "soft" else "zero"
    kw: dict[str, Any] = {"beta": a, "threshold": th, "reset_mechanism": mech}
    exact, caveat = True, ""
    if neuron.order == "code":
        kw["reset_delay"] = False
        if neuron.reset == "soft":
            exact = False
            caveat = ("differs only after a spike whose membrane stays >= v_th (u >= 2 v_th): tpprof can fire again "
                      "next step from v = u - v_th, snnTorch only if beta*v + I >= 2*threshold")
    args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    return {"setting": f"snntorch.Leaky({args})", "kwargs": kw, "exact": exact, "caveat": caveat}


def neuron_semantics(neuron: Any) -> dict[str, Any]:
    """What the activity figures (ActivationSparsity, Effective_ACs / MACs) assume: tpprof's own
    neuron (they count its spikes), and the closest snnTorch setting (:func:`snntorch_equivalent`)."""
    if neuron.order == "code":
        eq = ("u = alpha*v + I; s = H(u - v_th); v = u - v_th*s" if neuron.reset == "soft"
              else "u = alpha*v + I; s = H(u - v_th); v = u*(1 - s)")
    else:
        eq = ("v = alpha*v + I - v_th*s_prev; s = H(v - v_th)" if neuron.reset == "soft"
              else "v = alpha*v*(1 - s_prev) + I; s = H(v - v_th)")
    return {"tpprof": f"{eq} (alpha = {neuron.alpha:g}, v_th = {neuron.v_th:g}, {neuron.reset} reset, "
                      f"{neuron.order} ordering); readout m = m + W_out a, no spikes",
            "closest_snntorch": snntorch_equivalent(neuron)}


def report(learner: Any, x: Any, y: Any, measured_peaks: bool = True) -> dict[str, Any]:
    """The ``tpprof evaluate --neurobench`` object: NeuroBench's figures, tpprof's, and whether they agree."""
    nb = neurobench_metrics(learner, x, y)
    cf = closed_forms(learner, x)
    agree = {
        "Footprint": nb["Footprint"] == cf["Footprint"],
        "ConnectionSparsity": math.isclose(nb["ConnectionSparsity"], cf["ConnectionSparsity"], abs_tol=1e-4),
        "ActivationSparsity": math.isclose(nb["ActivationSparsity"], cf["ActivationSparsity"], rel_tol=1e-9,
                                           abs_tol=1e-12),
        **{f"SynapticOperations.{k}": math.isclose(nb["SynapticOperations"][k], cf["SynapticOperations"][k],
                                                   rel_tol=1e-9, abs_tol=1e-9)
           for k in ("Dense", "Effective_ACs", "Effective_MACs")},
    }
    out = {"neurobench": nb, "tpprof_closed_form": cf, "agree": agree,
           "definitions": "NeuroBench's, under its own key names (see tpprof/nb_metrics.py); Footprint in bytes; "
                          "Dense and Effective_* are per sample over all T steps; the readout is a non-spiking "
                          "integrator (no activation module)",
           "neuron_semantics": neuron_semantics(learner.cfg.net.neuron)}
    out.update(training_peaks(learner.cfg, measured=measured_peaks))
    return out
