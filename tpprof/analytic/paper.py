"""The paper's own accounting (Pes et al., Traces Propagation, §9 / Table 3) — labelled as such.

* :data:`TABLE3`: the seven rows of the paper's Table 3 as data.
* :func:`g_ratio`: the Figure-5 ratio G(C, B) = Mem_TESS / Mem_TP, **reconstructed** (the
  paper's closed form is not printed; this reading is consistent with Table 3 and its text):

      base:  Mem_TP = 2BLH,        Mem_TESS = BLH + LCH   ⇒  G = (B + C) / (2B)
      "s":   Mem_TP = 2BLH + CH    (adds S)               ⇒  G = L(B + C) / (2BL + C)

  and, for TP with the class-deduplicated target path (tpprof's ``target_rows="classes"``,
  not in the paper: ε̃_l is held once per class present, K = min(B, C) rows at worst):

      "dedup":   Mem_TP = (B + K)LH        ⇒  G = (B + C) / (B + K) ≥ 1 (TP never needs more than TESS)
      "dedup+s": Mem_TP = (B + K)LH + CH   ⇒  G = L(B + C) / (L(B + K) + C)

* :func:`paper_terms`: Table 3's state column scaled by B and the dtype, per layer width
  (H_l = n_out_l), as memory terms whose source is "paper §9 / Table 3".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tpprof.analytic.terms import TermList
from tpprof.config import Config

PAPER_SOURCE = "paper §9 / Table 3"
RECONSTRUCTED = "reconstructed"


@dataclass(frozen=True)
class Table3Row:
    """One row of the paper's Table 3 (True = free of the problem; O = C classes)."""

    rule: str
    update_lock_free: bool
    no_weight_transport: bool
    time_local: bool
    space_local: bool
    space: str
    time: str
    aux: str


TABLE3: tuple[Table3Row, ...] = (
    Table3Row("bptt", False, False, False, False, "TLH", "TLH²", "–"),
    Table3Row("eprop", False, False, True, False, "LH²", "LH²", "–"),
    Table3Row("eprop-rfb", False, True, True, False, "LH²", "LOH", "LOH"),
    Table3Row("ostl", False, False, True, False, "LH²", "LH²", "–"),
    Table3Row("osttp", True, True, True, True, "LH²", "LOH", "LOH"),
    Table3Row("tess", True, True, True, True, "LH", "LOH", "LOH"),
    Table3Row("tp", True, True, True, True, "LH", "LH", "OH"),
)


def table3() -> list[dict[str, object]]:
    """Table 3 as a list of plain dicts (for tables and JSON)."""
    return [dict(r.__dict__) for r in TABLE3]


def g_ratio(C: np.ndarray | float, B: np.ndarray | float, L: np.ndarray | float = 1,
            variant: str = "base") -> np.ndarray:
    """Reconstructed Figure-5 ratio G = Mem_TESS / Mem_TP (vectorised; TP cheaper where G > 1).

    base: G = (B + C) / (2B)  (independent of L and H);
    "s":  G = L (B + C) / (2 B L + C)  (TP also stores S, C × H).
    """
    C = np.asarray(C, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    L = np.asarray(L, dtype=np.float64)
    K = np.minimum(B, C)  # dedup: target rows, the worst case of the classes present
    if variant == "dedup":
        return (B + C) / (B + K) + 0.0 * L
    if variant == "dedup+s":
        return L * (B + C) / (L * (B + K) + C)
    if variant == "base":
        return (B + C) / (2.0 * B) + 0.0 * L
    if variant == "s":
        return L * (B + C) / (2.0 * B * L + C)
    raise ValueError(f"variant must be 'base', 's', 'dedup' or 'dedup+s', not {variant!r}")


def _widths(cfg: Config) -> list[int]:
    return [g.n_out for g in cfg.net.geometry()]


def _synapses(cfg: Config) -> list[int]:
    return [g.n_params for g in cfg.net.geometry()]


def _tp(cfg: Config, tl: TermList, with_s: bool) -> None:
    B = cfg.workload.batch
    dedup = cfg.rule.target_rows == "classes"
    K = np.minimum(B, cfg.workload.classes)
    for l, h in enumerate(_widths(cfg), start=1):
        if dedup:
            tl.mem("ε, ε̃ ((B + K)H)", "traces", (B + K) * h,
                   f"{PAPER_SOURCE} with tpprof's class-deduplicated target path (not in the paper): ε is BH, "
                   "ε̃ is held once per class present, KH with K = min(B, C) (worst case): (B + K)LH", layer=l)
            continue
        tl.mem("ε, ε̃ (2BH)", "traces", 2 * B * h, f"{PAPER_SOURCE}: TP stores two per-neuron traces, 2BLH",
               layer=l)
    if with_s:
        g1 = cfg.net.geometry()[0]
        tl.mem("S (OH)", "aux", cfg.workload.classes * g1.n_neurons, f"{PAPER_SOURCE}: TP aux OH (the S matrix)",
               layer=1)


def _tess(cfg: Config, tl: TermList, with_s: bool) -> None:
    B, C = cfg.workload.batch, cfg.workload.classes
    for l, h in enumerate(_widths(cfg), start=1):
        tl.mem("trace (BH)", "traces", B * h, f"{PAPER_SOURCE}: one per-neuron trace, BLH", layer=l)
        tl.mem("B_l (CH)", "aux", C * h, f"{PAPER_SOURCE}: one C × H matrix per layer, LCH", layer=l)


def _bptt(cfg: Config, tl: TermList, with_s: bool) -> None:
    B, T = cfg.workload.batch, cfg.workload.steps
    for l, h in enumerate(_widths(cfg), start=1):
        tl.mem("T steps of state (TBH)", "saved", T * B * h, f"{PAPER_SOURCE}: space TLH, × B", layer=l)


def _per_synapse(aux: bool) -> Callable[[Config, TermList, bool], None]:
    def fn(cfg: Config, tl: TermList, with_s: bool) -> None:
        B, C = cfg.workload.batch, cfg.workload.classes
        for l, (h, n) in enumerate(zip(_widths(cfg), _synapses(cfg)), start=1):
            tl.mem("eligibility (B·H²)", "traces", B * n, f"{PAPER_SOURCE}: space LH² (per synapse), × B", layer=l)
            if aux:
                tl.mem("feedback (OH)", "aux", C * h, f"{PAPER_SOURCE}: aux LOH", layer=l)
    return fn


def _per_neuron(label: str) -> Callable[[Config, TermList, bool], None]:
    def fn(cfg: Config, tl: TermList, with_s: bool) -> None:
        B = cfg.workload.batch
        for l, h in enumerate(_widths(cfg), start=1):
            tl.mem("trace (BH)", "traces", B * h, f"{label}: per-neuron trace, O(LH), × B", layer=l)
    return fn


PAPER_STATE: dict[str, Callable[[Config, TermList, bool], None]] = {
    "tp": _tp,
    "tess": _tess,
    "tess-authors-schedule": _tess,
    "bptt": _bptt,
    "eprop": _per_synapse(aux=False),
    "eprop-rfb": _per_synapse(aux=True),
    "ostl": _per_synapse(aux=False),
    "osttp": _per_synapse(aux=True),
    "etlp": _per_neuron("paper §9 text (ETLP, S-TLLR, DECOLLE, TESS: O(LH))"),
    "ottt": _per_neuron("paper §9 text, by analogy (OTTT is not in Table 3)"),
}


def paper_terms(cfg: Config, tl: TermList, with_s: bool = False) -> None:
    """Add the paper's state accounting for ``cfg.rule.name`` (``with_s``: TP also counts S)."""
    if cfg.rule.name not in PAPER_STATE:
        from tpprof.errors import UserError

        raise UserError("accounting", f"the paper's Table 3 has no row for {cfg.rule.name!r}",
                        f"--accounting full, or a rule among {', '.join(PAPER_STATE)}")
    PAPER_STATE[cfg.rule.name](cfg, tl, with_s)


PAPER_NOT_MODELLED: tuple[str, ...] = (
    "paper accounting (§9 / Table 3) counts only the rule's state; by definition it leaves out: weights, "
    "gradients, optimiser state, membranes and spikes, readout state, layer-0 traces, loss buffers (TP's B×B "
    "matrices, TESS's learning signals), saved tensors other than the per-step state, implementation overheads",
    "use --accounting full for tpprof's full model",
)
