"""What the measurement zygote imports once (``tpprof.measure.grid.run_forked``): torch, the
learners, the protocol and its counters. Every point's process is forked from the zygote, so none
of them imports these again. (The memory counter starts torch's Kineto profiler directly, not
through ``torch.profiler.profile``, whose start imports torch._dynamo: ~800 modules, ~1.2 s.)"""

import gc

import torch  # noqa: F401
import torch.autograd.profiler  # noqa: F401

import tpprof.measure.counters  # noqa: F401
import tpprof.measure.protocol  # noqa: F401
import tpprof.snn  # noqa: F401

# Every point's process runs gc.collect() before its memory window; frozen, the objects imported
# here are skipped by it (57 of a tiny point's 98 ms were spent walking them), and pages shared with
# the zygote stay shared.
gc.collect()
gc.freeze()
