"""tpprof.snn — spiking nets and the three learners (TP, TESS, BPTT) in torch.

```python
from tpprof.snn import make_learner
learner = make_learner(cfg, device="cpu", dtype=torch.float32, seed=0)
out = learner.train_batch(x, y)     # x: (B, T, *input_shape), y: (B,) long → {"loss", "correct", "n"}
logits = learner.predict(x)         # (B, C): readout potential m^T (input path only)
feats = learner.layer_traces(x)     # [(B, n_out_l)] input traces ε_l at t = T
learner.memory_inventory()          # [(name, category, tensor)] held between steps
learner.state_dict() / learner.load_state_dict(sd)
# RuleSpec.trainable = "readout" (or "last:k"): only the readout (and the last k hidden layers) learn
```
Equations: tpprof/snn/neurons.py (LIF), nets.py (layers), tp.py, tess.py, bptt.py, bptt_variants.py, ottt.py.
"""

from __future__ import annotations

import torch

from tpprof.config import TRAINABLE_RULES, Config
from tpprof.errors import UserError
from tpprof.snn.base import CATEGORIES, Learner
from tpprof.snn.bptt import BPTTLearner
from tpprof.snn.bptt_variants import BPTTCkptLearner, BPTTCompactLearner, TBPTTLearner
from tpprof.snn.neurons import ArcTanSpike, LIFParams, LIFState, lif_step, surrogate_grad
from tpprof.snn.nets import SpikingNet, build_net
from tpprof.snn.ottt import OTTTLearner
from tpprof.snn.tess import TESSAuthorsScheduleLearner, TESSLearner
from tpprof.snn.tp import TPLearner

__all__ = [
    "make_learner", "Learner", "TPLearner", "TESSLearner", "TESSAuthorsScheduleLearner", "BPTTLearner",
    "BPTTCompactLearner", "BPTTCkptLearner", "TBPTTLearner", "OTTTLearner", "CATEGORIES",
    "LIFParams", "LIFState", "lif_step", "surrogate_grad", "ArcTanSpike", "SpikingNet", "build_net",
    "LEARNERS", "inventory_bytes",
]

LEARNERS: dict[str, type[Learner]] = {
    "tp": TPLearner, "tess": TESSLearner, "bptt": BPTTLearner, "bptt-compact": BPTTCompactLearner,
    "bptt-ckpt": BPTTCkptLearner, "tbptt": TBPTTLearner, "ottt": OTTTLearner,
    "tess-authors-schedule": TESSAuthorsScheduleLearner,
}


def make_learner(cfg: Config, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 seed: int = 0) -> Learner:
    """The learner for ``cfg.rule.name`` (one of :data:`LEARNERS`) on ``cfg.net``."""
    name = cfg.rule.name
    if name not in LEARNERS:
        raise UserError("rule", f"{name!r} has no trainable implementation", ", ".join(TRAINABLE_RULES))
    return LEARNERS[name](cfg, device=device, dtype=dtype, seed=seed)


def inventory_bytes(inventory: list[tuple[str, str, torch.Tensor]]) -> dict[str, int]:
    """Bytes per category of a ``memory_inventory()`` (each tensor's numel × element size)."""
    out = {c: 0 for c in CATEGORIES}
    for _, cat, t in inventory:
        out[cat] += t.numel() * t.element_size()
    return out
