"""Regimes: vectorised closed forms, sweeps, feasibility, crossovers and inverse design.

Closed forms cover **dense, uniform-width, feed-forward** nets — input F, L hidden layers of
width H, readout C — with the rule defaults of :class:`tpprof.config.RuleSpec` (S not trained;
TESS's four factors non-zero) and the algorithmic terms of the full model (implementation
overheads left out: they are calibrated against measurements and live in
:mod:`tpprof.analytic.implementation`). Every argument broadcasts as a numpy array, so a grid
of millions of design points costs a few array operations (no Python loop over points). A test
checks them equal to :func:`tpprof.analytic.estimate` (``implementation=False``) at sample points.

Notation: P = F·H + (L−1)·H² + H·C trainable elements, k = optimiser buffers per element
(sgd 0, momentum 1, Adam 2), d = bytes per element. Per rule (bytes = elements × d):

* TP:   persistent = P(1+k) [+P grads if cadence=sequence] + C·H (S, stored)
        + 6·B·L·H (v, s per path, ε, ε̃) + B·C (m)   (ε̃_0 = κ_t c: a scalar, no tensor);
        loss phase l: 3B² (z, y, softmax) + B·H (δ) [+ B·H δ̃ for l ≥ 2] [+ layer grads, step cadence];
        readout phase: B·C [+ H·C grad].
* TESS: persistent = P(1+k) [+P] + 2BLH (v, s) + B(F + (L−1)H) (trace_in) + BLH (trace_out)
        + LCH (B_l, stored) + BC (m) + BH (readout trace); loss phase: BC + 2BH [+ grad].
* BPTT: persistent = P(1+k) + 2BLH + BC; backward phase: P (grads) + T·B·F (saved x) + T·B·LH (u)
        + (T−1)·B·LH (spikes saved as layer 2…L and readout inputs; s^T is the state s)
        + BLH (one carried adjoint δ_l per layer) + BC (∂E/∂m).
* e-prop / OSTL / OSTTP: per-synapse eligibility B·P_hidden, presynaptic trace B(F + (L−1)H),
        [+ LCH feedback for e-prop-rfb / OSTTP]; ETLP: per-neuron pre and post traces + LCH;
        OTTT: presynaptic traces, one step of u and the spike adjoints in its per-layer backward phases;
* bptt-compact: BPTT with spikes bit-packed (L·T·⌈B·H/8⌉ bytes) instead of (T−1)·B·L·H elements;
  bptt-ckpt: BPTT over k = ⌈√T⌉ steps + ⌈T/k⌉ kept states 2·B·L·H (+ B·L·H end-state adjoint);
  tbptt: BPTT over K = min(T, 25) steps + B·C (the window's starting readout).

peak = persistent + max over phases; total = Σ of all terms.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from tpprof.analytic.paper import g_ratio
from tpprof.analytic.terms import CATEGORIES, OPTIMIZER_FACTOR
from tpprof.config import DTYPE_BYTES, RULES

Array = np.ndarray

# ---------------------------------------------------------------------------------------
# Closed forms (element counts; the caller multiplies by d)
# ---------------------------------------------------------------------------------------


class _Acc:
    """Accumulates category element counts, persistent elements and per-phase transients."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        z = np.zeros(shape, dtype=np.float64)
        self.cat = {c: z.copy() for c in CATEGORIES}
        self.persistent = z.copy()
        self.phases: dict[str, Array] = {}

    def add(self, cat: str, n: Array, phases: Sequence[str] | None = None) -> None:
        self.cat[cat] = self.cat[cat] + n
        if phases is None:
            self.persistent = self.persistent + n
        else:
            for p in phases:
                self.phases[p] = self.phases.get(p, 0.0) + n


def _params(acc: _Acc, F: Array, H: Array, L: Array, C: Array, k: Array, seq: Array,
            grad_phases: Callable[[str], Sequence[str]] | None, force_transient: bool = False) -> None:
    """Weights, optimiser state and gradients (persistent under cadence=sequence)."""
    p1, pl, pout = F * H, (L - 1) * H * H, H * C
    acc.add("weights", p1 + pl + pout)
    acc.add("optimizer", k * (p1 + pl + pout))
    if force_transient:
        acc.add("gradients", p1 + pl + pout, grad_phases("all"))
        return
    # Persistent part (sequence cadence) and transient part (step cadence) split by a 0/1 mask.
    acc.add("gradients", seq * (p1 + pl + pout))
    acc.add("gradients", (1 - seq) * p1, grad_phases("l1"))
    acc.add("gradients", (1 - seq) * H * H * (L >= 2), grad_phases("l2"))  # a layer l ≥ 2: H² each
    acc.cat["gradients"] = acc.cat["gradients"] + (1 - seq) * (L - 2).clip(min=0) * H * H
    acc.add("gradients", (1 - seq) * pout, grad_phases("readout"))


def _local_phases(which: str) -> Sequence[str]:
    return {"l1": ("loss:1",), "l2": ("loss:2",), "readout": ("readout",)}[which]


def _lif(acc: _Acc, B: Array, H: Array, L: Array, paths: int = 1) -> None:
    acc.add("neuron_state", paths * 2 * B * L * H)


def _readout_delta(acc: _Acc, B: Array, H: Array, C: Array, readout_trace: bool = True) -> None:
    acc.add("neuron_state", B * C)  # m
    if readout_trace:
        acc.add("traces", B * H)  # ε_L
    acc.add("loss_buffers", B * C, ("readout",))


def _per_layer_transient(acc: _Acc, cat: str, n_l1: Array, n_l: Array, L: Array) -> None:
    """A transient of n_l1 elements in loss:1 and n_l in each loss:l (l ≥ 2), counted per layer."""
    acc.add(cat, n_l1, ("loss:1",))
    acc.add(cat, n_l * (L >= 2), ("loss:2",))
    acc.cat[cat] = acc.cat[cat] + n_l * (L - 2).clip(min=0)


def _tp(a: _Acc, B, C, L, H, T, F, k, seq, aux) -> None:
    _params(a, F, H, L, C, k, seq, _local_phases)
    a.add("aux", aux * C * H)  # S (ε̃_0 = κ_t c is a scalar: nothing stored)
    _lif(a, B, H, L, paths=2)
    a.add("traces", 2 * B * L * H)
    _per_layer_transient(a, "loss_buffers", 3 * B * B + B * H, 3 * B * B + 2 * B * H, L)
    _readout_delta(a, B, H, C, readout_trace=False)


def _tess(a: _Acc, B, C, L, H, T, F, k, seq, aux) -> None:
    _params(a, F, H, L, C, k, seq, _local_phases)
    _lif(a, B, H, L)
    a.add("traces", B * (F + (L - 1) * H) + B * L * H)
    a.add("aux", aux * L * C * H)
    _per_layer_transient(a, "loss_buffers", B * C + 2 * B * H, B * C + 2 * B * H, L)
    _readout_delta(a, B, H, C)


def _bptt(a: _Acc, B, C, L, H, T, F, k, seq, aux) -> None:
    bw = ("backward",)
    _params(a, F, H, L, C, k, seq, lambda _w: ("backward", "update"), force_transient=True)
    _lif(a, B, H, L)
    a.add("neuron_state", B * C)
    # x^t and u_l^t at all T steps; spikes of every layer (L−1 next-layer inputs + the readout's)
    # at T − 1 steps beyond the state s_l = s_l^T
    a.add("saved", T * B * (F + L * H) + (T - 1) * B * L * H, bw)
    a.add("loss_buffers", B * L * H + B * C, bw)  # one carried adjoint per layer, ∂E/∂m


def _bptt_compact(a: _Acc, B, C, L, H, T, F, k, seq, aux, d=4) -> None:
    bw = ("backward",)
    _params(a, F, H, L, C, k, seq, lambda _w: ("backward", "update"), force_transient=True)
    _lif(a, B, H, L)
    a.add("neuron_state", B * C)
    # x^t (views) and u_l − v_th at all T steps; spikes bit-packed (⌈B·H/8⌉ bytes, as elements of d
    # bytes: / d) as the inputs of layers 2…L and of the readout
    a.add("saved", T * B * (F + L * H) + L * T * np.ceil(B * H / 8) / d, bw)
    a.add("loss_buffers", B * L * H + B * C, bw)


def _bptt_ckpt(a: _Acc, B, C, L, H, T, F, k, seq, aux, d=4) -> None:
    seg = np.ceil(np.sqrt(T))
    n_seg = np.ceil(T / seg)
    _bptt(a, B, C, L, H, seg, F, k, seq, aux)  # BPTT over one segment of k = ⌈√T⌉ steps
    a.add("saved", n_seg * 2 * B * L * H, ("backward",))  # (v, s) kept at each segment start
    a.add("loss_buffers", np.where(n_seg >= 2, B * L * H, 0), ("backward",))  # the end state's ∂E/∂v


def _tbptt(a: _Acc, B, C, L, H, T, F, k, seq, aux, d=4) -> None:
    _bptt(a, B, C, L, H, np.minimum(T, 25), F, k, seq, aux)  # BPTT over one window of K = min(T, 25)
    a.add("neuron_state", B * C, ("backward",))  # m at the window start


def _synaptic(feedback: bool) -> Callable[..., None]:
    """e-prop / OSTL / OSTTP: per-synapse eligibility; the per-layer transient (e-prop's learning
    signal, OSTL's spatial adjoint, OSTTP's projected target) is B × H in every case."""

    def fn(a: _Acc, B, C, L, H, T, F, k, seq, aux) -> None:
        _params(a, F, H, L, C, k, seq, _local_phases)
        _lif(a, B, H, L)
        a.add("traces", B * (F + (L - 1) * H))  # presynaptic traces
        a.add("traces", B * (F * H + (L - 1) * H * H))  # per-synapse eligibility
        if feedback:
            a.add("aux", aux * L * C * H)
        _per_layer_transient(a, "loss_buffers", B * H, B * H, L)
        _readout_delta(a, B, H, C)
    return fn


def _etlp(a: _Acc, B, C, L, H, T, F, k, seq, aux) -> None:
    _params(a, F, H, L, C, k, seq, _local_phases)
    _lif(a, B, H, L)
    a.add("traces", B * (F + (L - 1) * H) + B * L * H)
    a.add("aux", aux * L * C * H)
    _per_layer_transient(a, "loss_buffers", B * H, B * H, L)
    _readout_delta(a, B, H, C)


def _ottt(a: _Acc, B, C, L, H, T, F, k, seq, aux) -> None:
    p1, pl, pout = F * H, (L - 1) * H * H, H * C
    a.add("weights", p1 + pl + pout)
    a.add("optimizer", k * (p1 + pl + pout))
    a.add("gradients", seq * (p1 + pl + pout))
    a.cat["gradients"] = a.cat["gradients"] + (1 - seq) * (p1 + pl + pout)  # per layer, in its phase below
    _lif(a, B, H, L)
    a.add("traces", B * (F + (L - 1) * H) + B * H)  # presynaptic traces â_{l−1}, readout trace ε_L
    a.add("neuron_state", B * C)
    a.cat["saved"] = a.cat["saved"] + B * L * H  # u_l of this step
    a.cat["loss_buffers"] = a.cat["loss_buffers"] + B * L * H + B * C  # spike adjoints, ∂L_t/∂m
    # readout: every u, ∂L_t/∂m, dW_out; backward:l: u_1…u_l, the adjoint of layer l, ∂L_t/∂m, dW_l —
    # largest at l = 1 (F·H) or l = L; backward:l:input ((l+1)·B·H + B·C) never exceeds backward:l
    a.phases["readout"] = L * B * H + B * C + (1 - seq) * pout
    a.phases["backward:1"] = 2 * B * H + B * C + (1 - seq) * p1
    a.phases["backward:L"] = np.where(L >= 2, (L + 1) * B * H + B * C + (1 - seq) * H * H, 0)


CLOSED_FORMS: dict[str, Callable[..., None]] = {
    "tp": _tp, "tess": _tess, "bptt": _bptt,
    "eprop": _synaptic(feedback=False), "eprop-rfb": _synaptic(feedback=True),
    "ostl": _synaptic(feedback=False), "osttp": _synaptic(feedback=True),
    "etlp": _etlp, "ottt": _ottt, "bptt-compact": _bptt_compact, "bptt-ckpt": _bptt_ckpt, "tbptt": _tbptt,
}
assert set(CLOSED_FORMS) == set(RULES)


def memory_dense(rule: str, B: Any, C: Any, L: Any = 1, H: Any = 450, T: Any = 100, F: Any = 700,
                 dtype_bytes: Any = 4, opt_factor: Any = 2, sequence: Any = False,
                 aux_stored: Any = True) -> dict[str, Array]:
    """Closed-form memory of ``rule`` on a dense uniform net, broadcast over all arguments.

    Returns bytes: ``total_bytes``, ``peak_bytes``, ``persistent_bytes`` and one array per
    category (:data:`CATEGORIES`).
    """
    if rule not in CLOSED_FORMS:
        raise ValueError(f"rule {rule!r} has no closed form; known: {sorted(CLOSED_FORMS)}")
    arrs = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in
                                 (B, C, L, H, T, F, dtype_bytes, opt_factor, sequence, aux_stored)))
    B_, C_, L_, H_, T_, F_, d_, k_, s_, a_ = arrs
    acc = _Acc(B_.shape)
    if rule == "bptt-compact":  # bit-packed spikes are counted in bytes, converted to d-byte elements
        CLOSED_FORMS[rule](acc, B_, C_, L_, H_, T_, F_, k_, s_, a_, d_)
    else:
        CLOSED_FORMS[rule](acc, B_, C_, L_, H_, T_, F_, k_, s_, a_)
    transient = np.zeros(B_.shape)
    for v in acc.phases.values():
        transient = np.maximum(transient, v)
    out = {c: acc.cat[c] * d_ for c in CATEGORIES}
    out["total_bytes"] = sum(acc.cat.values()) * d_
    out["persistent_bytes"] = acc.persistent * d_
    out["peak_bytes"] = (acc.persistent + transient) * d_
    return out


# ---------------------------------------------------------------------------------------
# Sweeps, feasibility
# ---------------------------------------------------------------------------------------


def sweep(rules: Iterable[str] = ("tp", "tess", "bptt"), *, B: Any = (128,), C: Any = (20,), L: Any = (1,),
          H: Any = (450,), T: Any = (100,), F: Any = (700,), dtype: Iterable[str] = ("fp32",),
          optimizer: Iterable[str] = ("adam",), cadence: Iterable[str] = ("step",),
          budget_bytes: float | None = None) -> "Any":
    """Full-factorial sweep → pandas DataFrame, one row per (rule, dtype, optimiser, cadence, point).

    Columns: rule, dtype, optimizer, cadence, B, C, L, H, T, F, total_bytes, peak_bytes and
    ``<category>_bytes`` for every category.
    Numeric dimensions are expanded with one meshgrid per combination of the categorical ones.
    With ``budget_bytes``: columns ``fits`` (peak ≤ budget) and ``headroom_bytes``.
    """
    import pandas as pd

    grids = np.meshgrid(*(np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (B, C, L, H, T, F)),
                        indexing="ij")
    flat = [g.ravel() for g in grids]
    frames = []
    for rule, dt, opt, cad in itertools.product(rules, dtype, optimizer, cadence):
        mem = memory_dense(rule, *flat, dtype_bytes=DTYPE_BYTES[dt], opt_factor=OPTIMIZER_FACTOR[opt],
                           sequence=cad == "sequence")
        cols: dict[str, Any] = {"rule": rule, "dtype": dt, "optimizer": opt, "cadence": cad}
        for name, arr in zip(("B", "C", "L", "H", "T", "F"), flat):
            cols[name] = arr.astype(np.int64)
        cols["total_bytes"] = mem["total_bytes"]
        cols["peak_bytes"] = mem["peak_bytes"]
        for c in CATEGORIES:
            cols[f"{c}_bytes"] = mem[c]
        frames.append(pd.DataFrame(cols))
    df = pd.concat(frames, ignore_index=True)
    if budget_bytes is not None:
        df = df.assign(**feasibility(df["peak_bytes"].to_numpy(), budget_bytes))
    return df


def feasibility(peak_bytes: Any, budget_bytes: Any) -> dict[str, Array]:
    """``fits`` = peak ≤ budget; ``headroom_bytes`` = budget − peak; ``headroom_fraction`` of the budget."""
    peak = np.asarray(peak_bytes, dtype=np.float64)
    budget = np.asarray(budget_bytes, dtype=np.float64)
    head = budget - peak
    return {"fits": head >= 0, "headroom_bytes": head, "headroom_fraction": head / budget}


# ---------------------------------------------------------------------------------------
# Crossovers
# ---------------------------------------------------------------------------------------


def _bisect_int(pred: Callable[[Array], Array], lo: Array, hi: Array, iters: int = 64) -> Array:
    """Smallest integer x in (lo, hi] with pred(x) true, per element (pred monotone: false → true).

    Where pred(hi) is false the result is +inf.
    """
    lo, hi = (a.copy() for a in np.broadcast_arrays(np.asarray(lo, dtype=np.float64),
                                                    np.asarray(hi, dtype=np.float64)))
    ok_hi = pred(hi)
    for _ in range(iters):
        mid = np.floor((lo + hi) / 2)
        done = hi - lo <= 1
        if np.all(done):
            break
        p = pred(mid)
        hi = np.where(~done & p, mid, hi)
        lo = np.where(~done & ~p, mid, lo)
    return np.where(ok_hi, hi, np.inf)


def tp_tess_crossover(B: Any, L: Any = 1, H: Any = 450, F: Any = 700, T: Any = 100, *, accounting: str = "full",
                      metric: str = "peak", dtype_bytes: int = 4, opt_factor: int = 2,
                      c_max: float = 2.0 ** 40) -> Array:
    """Smallest class count C at which TP needs less memory than TESS (vectorised over B, L, H, F, T).

    accounting "paper": C* = B (G = (B + C)/2B crosses 1 at C = B); "paper+s": C* = BL/(L − 1)
    (+inf for L = 1); "full": bisection on tpprof's full (algorithmic) model, ``metric`` "peak"
    or "total" (the memory difference TESS − TP grows with C: L·C·H for the B_l against C·H for S).
    """
    B = np.asarray(B, dtype=np.float64)
    L = np.asarray(L, dtype=np.float64)
    if accounting == "paper":
        return np.floor(B) + 1 + 0 * L  # G > 1 ⇔ C > B
    if accounting == "paper+s":
        with np.errstate(divide="ignore", invalid="ignore"):
            cstar = np.where(L > 1, B * L / np.where(L > 1, L - 1, 1), np.inf)
        return np.floor(cstar) + 1
    key = f"{metric}_bytes"

    def pred(c: Array) -> Array:
        tp = memory_dense("tp", B, c, L, H, T, F, dtype_bytes, opt_factor)[key]
        te = memory_dense("tess", B, c, L, H, T, F, dtype_bytes, opt_factor)[key]
        return tp < te

    shape = np.broadcast(B, L, np.asarray(H), np.asarray(F), np.asarray(T)).shape
    return _bisect_int(pred, np.zeros(shape), c_max)


def crossover_surface(B: Any, C: Any, L: int = 1, H: int = 450, F: int = 700, T: int = 100,
                      dtype_bytes: int = 4, opt_factor: int = 2) -> "Any":
    """TP-vs-TESS ratios on a (B, C) grid: G_paper, G_paper_s (reconstructed) and the full model's
    TESS/TP ratios of peak and total. TP is cheaper where a ratio > 1."""
    import pandas as pd

    b, c = (g.ravel() for g in np.meshgrid(np.asarray(B, float), np.asarray(C, float), indexing="ij"))
    tp = memory_dense("tp", b, c, L, H, T, F, dtype_bytes, opt_factor)
    te = memory_dense("tess", b, c, L, H, T, F, dtype_bytes, opt_factor)
    return pd.DataFrame({
        "B": b.astype(np.int64), "C": c.astype(np.int64),
        "G_paper": g_ratio(c, b, L, "base"), "G_paper_s": g_ratio(c, b, L, "s"),
        "G_full_peak": te["peak_bytes"] / tp["peak_bytes"], "G_full_total": te["total_bytes"] / tp["total_bytes"],
    })


def local_vs_bptt_crossover(rule: str, B: Any, C: Any, L: Any = 1, H: Any = 450, F: Any = 700, *,
                            metric: str = "peak", dtype_bytes: int = 4, opt_factor: int = 2) -> Array:
    """Smallest T at which BPTT needs more memory than the local ``rule`` (which is flat in T).

    BPTT's memory is a + b·T, so T* = ⌊(M_rule − a)/b⌋ + 1 (at least 1).
    """
    key = f"{metric}_bytes"
    m_rule = memory_dense(rule, B, C, L, H, 1, F, dtype_bytes, opt_factor)[key]
    a = memory_dense("bptt", B, C, L, H, 0, F, dtype_bytes, opt_factor)[key]
    b = memory_dense("bptt", B, C, L, H, 1, F, dtype_bytes, opt_factor)[key] - a
    return np.maximum(np.floor((m_rule - a) / b) + 1, 1)


# ---------------------------------------------------------------------------------------
# Inverse design
# ---------------------------------------------------------------------------------------

DESIGN_PARAMS: tuple[str, ...] = ("batch", "classes", "width", "depth")


def largest_dense(rule: str, param: str, budget_bytes: Any, *, B: Any = 128, C: Any = 20, L: Any = 1,
                  H: Any = 450, T: Any = 100, F: Any = 700, dtype_bytes: int = 4, opt_factor: int = 2,
                  metric: str = "peak", hi: float = 2.0 ** 31) -> Array:
    """Largest B, C, H or L (``param``) whose ``metric`` fits the budget, vectorised (0 = none fits)."""
    names = {"batch": "B", "classes": "C", "width": "H", "depth": "L"}
    if param not in names:
        raise ValueError(f"param must be one of {DESIGN_PARAMS}")
    dims = {"B": B, "C": C, "L": L, "H": H, "T": T, "F": F}
    key = f"{metric}_bytes"
    budget = np.asarray(budget_bytes, dtype=np.float64)

    def too_big(x: Array) -> Array:
        d = dict(dims, **{names[param]: x})
        return memory_dense(rule, d["B"], d["C"], d["L"], d["H"], d["T"], d["F"], dtype_bytes,
                            opt_factor)[key] > budget

    shape = np.broadcast(*(np.asarray(v) for v in dims.values()), budget).shape
    first_bad = _bisect_int(too_big, np.zeros(shape), np.full(shape, hi))
    return np.where(np.isinf(first_bad), hi, first_bad - 1)


def _resize(cfg: Any, param: str, value: int) -> Any:
    from dataclasses import replace

    from tpprof.config import Config

    if param == "batch":
        return cfg.with_(batch=value)
    if param == "classes":
        return cfg.with_(classes=value)
    net = cfg.net
    if param == "width":
        layers = tuple(replace(layer, width=value) for layer in net.layers)
    elif param == "depth":
        layers = net.layers[:1] + tuple(net.layers[-1] for _ in range(value - 1))
    else:
        raise ValueError(f"param must be one of {DESIGN_PARAMS}")
    return Config(replace(net, layers=layers, name=""), cfg.workload, cfg.rule, cfg.device)


def largest_fitting(cfg: Any, budget_bytes: int, param: str, *, metric: str = "peak",
                    accounting: str = "full", implementation: bool = True, hi: int = 2 ** 24) -> int:
    """Largest batch, classes, width (all hidden layers) or depth (repeating the last hidden layer)
    at which ``estimate(cfg)`` fits the budget — a search over the general model (any net).

    Returns 0 when even 1 does not fit. Assumes memory non-decreasing in the parameter.
    """
    from tpprof.analytic import estimate
    from tpprof.errors import UserError

    def fits(v: int) -> bool:
        try:
            bd = estimate(_resize(cfg, param, v), accounting, implementation=implementation)
        except UserError:  # e.g. a conv net pooled to nothing
            return False
        return (bd.peak_bytes if metric == "peak" else bd.total_bytes) <= budget_bytes

    if not fits(1):
        return 0
    lo, step = 1, 1
    while lo + step <= hi and fits(lo + step):
        lo, step = lo + step, step * 2
    hi_bad = min(lo + step, hi + 1)
    while hi_bad - lo > 1:
        mid = (lo + hi_bad) // 2
        if fits(mid):
            lo = mid
        else:
            hi_bad = mid
    return lo


def dense_args_from_config(cfg: Any) -> Mapping[str, Any]:
    """(B, C, L, H, T, F, dtype_bytes, opt_factor, sequence, aux_stored) of a dense uniform net, or
    ValueError if the net is not dense, feed-forward and uniform."""
    layers = cfg.net.layers
    if any(layer.kind != "dense" for layer in layers) or len({layer.width for layer in layers}) != 1 \
            or len(cfg.net.input_shape) != 1:
        raise ValueError("closed forms need a dense, feed-forward, uniform-width net")
    wl, r = cfg.workload, cfg.rule
    return {"B": wl.batch, "C": wl.classes, "L": len(layers), "H": layers[0].width, "T": wl.steps,
            "F": cfg.net.input_size, "dtype_bytes": wl.dtype_bytes, "opt_factor": OPTIMIZER_FACTOR[r.optimizer],
            "sequence": r.cadence == "sequence", "aux_stored": r.aux == "stored"}
