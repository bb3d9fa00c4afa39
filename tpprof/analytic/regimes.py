"""Regimes: feasibility, crossovers and inverse design, searched on the term model itself.

Every question here is a monotone search over one axis of a :class:`tpprof.config.Grid` —
classes, batch, time steps, or (by rebuilding the net) width and depth — answered by
:func:`tpprof.analytic.estimate_grid` on a few dozen candidates per round (a k-ary search:
each round narrows the bracket 64-fold), so any net the model accepts works and no closed
form is written twice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from tpprof.analytic.grid import estimate_grid
from tpprof.config import Config, Grid
from tpprof.errors import UserError
from tpprof.units import MAX_COUNT

Array = np.ndarray
#: Candidates evaluated per round of a search (one estimate_grid call).
ROUND = 64
DESIGN_PARAMS: tuple[str, ...] = ("batch", "classes", "width", "depth")
#: What ``tpprof fit --largest`` searches: the design parameters and the number of trained layers.
FIT_PARAMS: tuple[str, ...] = DESIGN_PARAMS + ("trained-layers",)


def feasibility(peak_bytes: Any, budget_bytes: Any) -> dict[str, Array]:
    """``fits`` = peak ≤ budget; ``headroom_bytes`` = budget − peak; ``headroom_fraction`` of the budget."""
    peak = np.asarray(peak_bytes, dtype=np.float64)
    budget = np.asarray(budget_bytes, dtype=np.float64)
    head = budget - peak
    return {"fits": head >= 0, "headroom_bytes": head, "headroom_fraction": head / budget}


def candidates(lo: int, hi: int, n: int) -> np.ndarray:
    """About ``n`` integers spread over [lo, hi], hi included: log-spaced over a wide bracket (so
    a search over 1…2²⁴ needs few rounds), evenly spaced once it is narrow."""
    if hi > 16 * max(lo, 1):
        c = np.geomspace(max(lo, 1), hi, n)
    else:
        c = np.linspace(lo, hi, min(n, hi - lo + 1))
    return np.unique(np.append(np.round(c).astype(np.int64), hi))


def first_true(pred: Callable[[Array], Array], lo: int, hi: int, per_round: int = ROUND) -> int | None:
    """Smallest integer x in [lo, hi] with ``pred`` true, for ``pred`` monotone (false → true) and
    vectorised (an array of candidates → an array of bools); None when ``pred(hi)`` is false.
    Each round evaluates ``per_round`` candidates spread over the bracket."""
    if not pred(np.asarray([hi]))[0]:
        return None
    while hi > lo:
        cand = candidates(lo, hi, per_round)
        ok = pred(cand)
        k = int(np.argmax(ok))  # the first true candidate (the last one is true: it is hi or above)
        hi = int(cand[k])
        lo = int(cand[k - 1]) + 1 if k > 0 else lo
    return hi


def memory(grid: Grid, accounting: str = "full", metric: str = "peak", implementation: bool = True) -> Array:
    """The memory of every grid point: the step's ``peak`` or the ``total`` of all terms."""
    df = estimate_grid(grid, accounting, implementation=implementation)
    return df[f"{metric}_bytes"].to_numpy()


def tp_tess_crossover(cfg: Config, batches: Sequence[int], *, accounting: str = "full", metric: str = "peak",
                      implementation: bool = False, c_max: int = MAX_COUNT) -> Array:
    """Per batch size, the smallest class count C at which TP needs less memory than TESS
    (+inf where none up to ``c_max``), for ``cfg``'s net, dtype and optimiser.

    The paper's accounting gives C* = B + 1 (G = (B + C)/2B > 1); "paper+s" C* = ⌊BL/(L − 1)⌋ + 1;
    "full" searches tpprof's model (algorithmic terms by default: ``implementation=False``).
    """
    out = []
    for b in batches:
        base = cfg.with_(batch=int(b))

        def tp_smaller(cs: Array) -> Array:
            grid = Grid(base, (("rule", ("tp", "tess")), ("classes", tuple(int(c) for c in cs))))
            m = memory(grid, accounting, metric, implementation).reshape(2, -1)
            return m[0] < m[1]

        c = first_true(tp_smaller, 1, c_max)
        out.append(np.inf if c is None else float(c))
    return np.asarray(out)


def local_vs_bptt_crossover(cfg: Config, rule: str = "tp", *, metric: str = "peak",
                            implementation: bool = True, t_max: int = MAX_COUNT) -> float:
    """The smallest T at which BPTT needs more memory than ``rule`` on ``cfg`` (+inf if none)."""

    def bptt_bigger(ts: Array) -> Array:
        grid = Grid(cfg, (("rule", (rule, "bptt")), ("steps", tuple(int(t) for t in ts))))
        m = memory(grid, "full", metric, implementation).reshape(2, -1)
        return m[1] > m[0]

    t = first_true(bptt_bigger, 1, t_max)
    return np.inf if t is None else float(t)


def resize(cfg: Config, param: str, value: int) -> Config:
    """``cfg`` with batch, classes, width (every hidden layer) or depth (repeating the last
    hidden layer) set to ``value``."""
    if param in ("batch", "classes"):
        return cfg.with_(**{param: value})
    net = cfg.net
    if param == "width":
        layers = tuple(replace(layer, width=value) for layer in net.layers)
    elif param == "depth":
        layers = net.layers[:1] + tuple(net.layers[-1] for _ in range(value - 1))
    else:
        raise UserError("param", f"{param!r} is not known", ", ".join(DESIGN_PARAMS))
    return Config(replace(net, layers=layers, name=""), cfg.workload, cfg.rule, cfg.device)


def _too_big(cfg: Config, param: str, budget_bytes: int, metric: str, accounting: str,
             implementation: bool) -> Callable[[Array], Array]:
    """A vectorised predicate: does ``cfg`` resized to each candidate exceed the budget?"""

    def pred(vals: Array) -> Array:
        if param in ("batch", "classes"):
            grid = Grid(cfg, ((param, tuple(int(v) for v in vals)),))
            return memory(grid, accounting, metric, implementation) > budget_bytes
        out = np.ones(len(vals), dtype=bool)  # a net the model rejects (pooled to nothing) does not fit
        for i, v in enumerate(vals):
            try:
                grid = Grid(resize(cfg, param, int(v)))
                out[i] = memory(grid, accounting, metric, implementation)[0] > budget_bytes
            except UserError:
                pass
        return out

    return pred


def largest_fitting_rules(cfg: Config, rules: Sequence[str], budget_bytes: int, param: str = "batch", *,
                          metric: str = "peak", accounting: str = "full", implementation: bool = True,
                          hi: int = 2 ** 24) -> dict[str, int]:
    """:func:`largest_fitting` of batch or classes for several rules at once: every round is one
    estimate_grid call over rules × the union of their candidates (0: even 1 does not fit)."""
    if param not in ("batch", "classes"):
        raise UserError("param", f"{param!r} is not searched jointly", "batch or classes")
    lo = {r: 1 for r in rules}
    top = {r: hi for r in rules}  # the answer lies in [lo - 1, top]: lo - 1 fits (or is 0), top + 1 does not
    first = True
    while first or any(top[r] >= lo[r] for r in rules):
        cand = {r: np.unique(np.append(candidates(lo[r], top[r], ROUND), [hi + 1] if first else []).astype(np.int64))
                if top[r] >= lo[r] or first else np.zeros(0, np.int64) for r in rules}
        vals = np.unique(np.concatenate(list(cand.values())))
        grid = Grid(cfg, (("rule", tuple(rules)), (param, tuple(int(v) for v in vals))))
        mem = memory(grid, accounting, metric, implementation).reshape(len(rules), -1)
        for i, r in enumerate(rules):
            c = cand[r]
            if not len(c):
                continue
            bad = mem[i][np.searchsorted(vals, c)] > budget_bytes
            if first and not bad[-1]:  # even hi + 1 fits: the search is capped at hi
                lo[r], top[r] = hi + 1, hi
                continue
            if not bad.any():  # all fit, the bracket's top included
                lo[r] = int(c[-1]) + 1
                continue
            k = int(np.argmax(bad))  # the first candidate over budget
            lo[r] = int(c[k - 1]) + 1 if k > 0 else lo[r]
            top[r] = int(c[k]) - 1
        first = False
    return {r: min(lo[r] - 1, hi) for r in rules}


def largest_fitting(cfg: Config, budget_bytes: int, param: str, *, metric: str = "peak",
                    accounting: str = "full", implementation: bool = True, hi: int = 2 ** 24) -> int:
    """Largest batch, classes, width (all hidden layers) or depth (repeating the last hidden layer)
    at which ``cfg``'s memory fits the budget; 0 when even 1 does not fit. Assumes memory
    non-decreasing in the parameter. Depth is capped by the nets' depth limit."""
    if param not in DESIGN_PARAMS:
        raise UserError("param", f"{param!r} is not known", ", ".join(DESIGN_PARAMS))
    if param == "depth":
        from tpprof.config import MAX_DEPTH

        hi = min(hi, MAX_DEPTH)
    # a structural parameter costs one evaluation per candidate: few per round
    per_round = ROUND if param in ("batch", "classes") else 3
    first_bad = first_true(_too_big(cfg, param, budget_bytes, metric, accounting, implementation), 1, hi, per_round)
    return hi if first_bad is None else first_bad - 1


def trainable_for(k: int, depth: int) -> str:
    """``RuleSpec.trainable`` training the last ``k`` of ``depth`` hidden layers (0: the readout only)."""
    return "readout" if k <= 0 else "all" if k >= depth else f"last:{k}"


def largest_trained_layers(cfg: Config, budget_bytes: int, *, metric: str = "peak", accounting: str = "full",
                           implementation: bool = True) -> int:
    """The most hidden layers (the last ones, with the readout) ``cfg``'s rule can train within the
    budget: every k = 0 … L is evaluated in one estimate_grid call over the ``trainable`` axis (no
    monotonicity assumed); −1 when even the readout alone does not fit."""
    L = cfg.net.depth
    values = tuple(trainable_for(k, L) for k in range(L + 1))
    mem = memory(Grid(cfg, (("trainable", values),)), accounting, metric, implementation)
    fits = np.flatnonzero(mem <= budget_bytes)
    return int(fits[-1]) if len(fits) else -1
