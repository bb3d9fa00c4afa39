"""Registry of learning-rule memory/compute models, one module per rule, keyed by name.

Each module calls :func:`register` with a :class:`RuleModel`; a name registered twice is an
error (as in PyTorch's flop-counter registry), and the registry must cover exactly
:data:`tpprof.config.RULES` (checked on import and by a test).
"""

from __future__ import annotations

from tpprof.analytic.rules._registry import (LOCALITIES, LOCALITY_LABELS, REGISTRY, FullFn, RuleModel, get_rule,
                                             register)

__all__ = ["REGISTRY", "FullFn", "RuleModel", "get_rule", "register", "LOCALITIES", "LOCALITY_LABELS"]


def _load_all() -> None:
    # Import order is irrelevant; each module registers itself.
    from tpprof.analytic.rules import (  # noqa: F401
        bptt, bptt_ckpt, bptt_compact, eprop, etlp, ostl, osttp, ottt, tbptt, tess, tess_authors_schedule, tp,
    )


_load_all()
