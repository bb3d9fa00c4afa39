"""tess-authors-schedule: the authors' own TESS training loop (mapolinario94/TESS @07b311d,
utils/train.py ``do_epoch``; docs/tess_authors.md D12).

Every step runs the authors' TESS layers (:func:`tpprof.analytic.rules.tess.authors_terms`).
On the first T − delay_ls steps each block learns from its local signal and the readout does
not learn; on the last delay_ls steps no local signal is formed: the readout's cross-entropy
CE(W_out o_L + b) is back-propagated spatially through all blocks within the step (no temporal
graph: u and the traces are detached), each block's weight gradient being their S-TLLR trace
formula with the back-propagated ∂L/∂s_l. Memory beyond the local flavour, in the back-prop
phases (layers processed L … 1, phase ``backward:l``):

* saved per layer until it is back-propagated: s_l, Ψ_l, e_l^{t−1} (3·B·n_nrn) and, after a
  pooled layer, the pooled input o_{l−1} (B·n_in);
* ∂L/∂z (B·C) and a pooled o_L (B·n_out_L) for the whole back-prop pass;
* at layer l: ∂L/∂s_l, δ causal, δ non-causal (3·B·n_nrn) and ∂L/∂a_{l−1} (B·n_in, l ≥ 2).

All of it is independent of T: one step's spatial graph, whatever delay_ls (0 = fully local,
no back-prop phase; their published runs use delay_ls ≥ T on CIFAR10/100 and CIFAR10-DVS).
"""

from __future__ import annotations

from tpprof.analytic.rules._registry import RuleModel, register
from tpprof.analytic.rules.tess import NOT_MODELLED as TESS_NOT_MODELLED
from tpprof.analytic.rules.tess import authors_terms
from tpprof.analytic.terms import TermList
from tpprof.config import Config


def full_terms(cfg: Config, tl: TermList) -> None:
    authors_terms(cfg, tl, schedule=True)


NOT_MODELLED = TESS_NOT_MODELLED[:-2] + (
    "the authors' data pipeline and lr schedulers (ReduceLROnPlateau), dropout masks (p = 0 in their runs)",
    "delay_ls ≥ T (no local step): the local phases are still counted, an upper bound if one of them is the peak",
)

register(RuleModel(
    "tess-authors-schedule", "TESS, the authors' training loop (local + back-prop steps)", full_terms, NOT_MODELLED,
    locality="time-local",
    locality_source="the authors' do_epoch (docs/tess_authors.md D12): on the last delay_ls steps the readout's "
                     "cross-entropy is back-propagated through all blocks within the step (no temporal graph); "
                     "with delay_ls = 0 it is fully local (tpprof.analytic.learnability.locality)",
    learns_nothing=("delay_ls = 0: the readout is trained on the back-prop steps only, so it never learns",)))
