"""What the measurement zygote imports once (``tpprof.measure.grid.run_forked``): torch, the
learners, the protocol, and what torch's profiler imports when the memory window first starts it
(torch._dynamo, sympy: ~800 modules, 3–4 s of a point's wall time when each point imported them).
Every point's process is forked from the zygote, so none of them imports these again."""

import torch  # noqa: F401
import torch._dynamo  # noqa: F401
import torch.profiler  # noqa: F401

import tpprof.measure.counters  # noqa: F401
import tpprof.measure.protocol  # noqa: F401
import tpprof.snn  # noqa: F401
