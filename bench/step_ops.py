"""Where a learner's step goes beyond its floor: its operators, one by one, and what fusing the
elementwise ones could save.

    PYTHONPATH=$PWD python bench/step_ops.py                       # tp:classes and bptt, P(1) = 0.05
    PYTHONPATH=$PWD python bench/step_ops.py --rules tp,tess --top 15
    PYTHONPATH=$PWD python bench/step_ops.py --fusion              # the LIF step fused three ways

SHD 700-450-20, B = 128, T = 100, sparse input path, one thread, synthetic spikes at ``--density``.

Operators: one mini-batch under the autograd profiler (after a warm-up batch); per operator its
calls per step and its mean self CPU time per call (µs), the largest first. The profiler adds its
own cost per call, so compare rows, not the sum with a step's time. The minor page faults of the
unprofiled mini-batch are printed too: new pages would make fresh tensors cost more than reused ones.

``--fusion``: the LIF step of one (B, H) layer with its trace and surrogate derivative
(u = αv + I, s = Θ(u − v_th), v ← u − v_th s, ε ← βε + s, Θ′(u)), CPU µs per call (median of
``--rounds`` alternating rounds of 2,000 calls): as the learners run it (eager, six operator
passes), as one ``torch.compile`` graph, and as one numba loop when numba is installed (not a
dependency of tpprof: ``pip install numba``). Fusing removes passes over memory, not the work
of the products, so this bounds what fused elementwise kernels could take off a step.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import time
from collections import defaultdict
from typing import Callable

import torch

from tpprof.config import make_config
from tpprof.snn import make_learner

B, T, N_IN, H = 128, 100, 700, 450


def op_table(rule: str, density: float, top: int) -> None:
    name, _, mode = rule.partition(":")
    kw = {"target_rows": "classes"} if mode == "classes" else {}
    lr = make_learner(make_config("700-450-20", name, B, None, T, **kw), seed=0)
    lr.input_path = "sparse"
    g = torch.Generator().manual_seed(1)
    x = (torch.rand((B, T, N_IN), generator=g) < density).float()
    y = torch.arange(B) % 20
    lr.train_batch(x, y)  # warm-up
    f0, c0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    lr.train_batch(x, y)
    step_ms = (time.process_time() - c0) / T * 1e3
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    with torch.autograd.profiler.profile(use_kineto=True) as prof:
        lr.train_batch(x, y)
    rows: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for ev in prof.key_averages():
        if ev.key.startswith("aten::") or "Backward" in ev.key or ev.key[:1].isupper():
            rows[ev.key][0] += ev.count
            rows[ev.key][1] += ev.self_cpu_time_total
    print(f"{rule}: {step_ms:.3f} ms per step without the profiler ({faults} minor page faults in that mini-batch); "
          "operators by self CPU time per step")
    print(f"  {'operator':42s} {'calls/step':>10s} {'µs/call':>8s} {'µs/step':>8s}")
    for key, (n, us) in sorted(rows.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"  {key[:42]:42s} {n / T:10.1f} {us / n:8.1f} {us / T:8.1f}")


def _lif_eager(cur: torch.Tensor, v: torch.Tensor, eps: torch.Tensor, one: torch.Tensor) -> None:
    u = torch.add(cur, v, alpha=0.96)
    s = torch.ge(u, 1.0, out=torch.empty_like(u))
    torch.add(u, s, alpha=-1.0, out=v)
    torch.add(s, eps, alpha=0.95, out=eps)
    d = torch.sub(u, 1.0)
    torch.addcmul(one, d, d, value=math.pi ** 2, out=d).reciprocal_()


def _lif_graph(cur: torch.Tensor, v: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, ...]:
    u = cur + 0.96 * v
    s = (u >= 1.0).to(u.dtype)
    d = u - 1.0
    return s, u - s, 0.95 * eps + s, 1.0 / (1.0 + math.pi ** 2 * d * d)


def _numba_lif() -> Callable[..., None] | None:
    try:
        import numba
        import numpy as np
    except ImportError:
        return None

    @numba.njit(fastmath=True, nogil=True, cache=False)
    def kernel(cur, v, eps, s, g):  # noqa: ANN001 - flat float32 arrays
        one, th = np.float32(1.0), np.float32(1.0)
        for i in range(cur.size):
            u = cur[i] + np.float32(0.96) * v[i]
            sp = np.float32(u >= th)
            v[i] = u - th * sp
            eps[i] = sp + np.float32(0.95) * eps[i]
            s[i] = sp
            d = u - th
            g[i] = one / (one + np.float32(math.pi ** 2) * d * d)

    def run(cur: torch.Tensor, v: torch.Tensor, eps: torch.Tensor, s: torch.Tensor, g: torch.Tensor) -> None:
        kernel(cur.view(-1).numpy(), v.view(-1).numpy(), eps.view(-1).numpy(), s.view(-1).numpy(), g.view(-1).numpy())
    return run


def fusion(rounds: int) -> None:
    cur, v, eps = torch.randn(B, H), torch.randn(B, H) * 0.5, torch.zeros(B, H)
    s, g, one = torch.empty(B, H), torch.empty(B, H), torch.ones(())
    t0 = time.perf_counter()
    graph = torch.compile(_lif_graph, dynamic=False)
    graph(cur, v, eps)
    print(f"torch.compile of the LIF step: {time.perf_counter() - t0:.1f} s to compile (wall)")
    variants: dict[str, Callable[[], object]] = {"eager (as the learners)": lambda: _lif_eager(cur, v, eps, one),
                                                 "torch.compile": lambda: graph(cur, v, eps)}
    nb = _numba_lif()
    if nb is not None:
        nb(cur, v, eps, s, g)  # compile
        variants["numba (fastmath)"] = lambda: nb(cur, v, eps, s, g)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for k, fn in variants.items():
            for _ in range(50):
                fn()
            c0 = time.process_time()
            for _ in range(2000):
                fn()
            times[k].append((time.process_time() - c0) / 2000 * 1e6)
    print(f"LIF step + trace + Θ′ of one ({B}, {H}) layer, CPU µs per call, median of {rounds} alternating rounds"
          + ("" if nb is not None else " (numba not installed)"))
    for k, ts in times.items():
        print(f"  {k:26s} {statistics.median(ts):7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", default="tp:classes,bptt", help="learners (rule[:classes]), comma-separated")
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--top", type=int, default=12, help="operators shown per learner")
    ap.add_argument("--fusion", action="store_true", help="time the LIF step eager, compiled and in numba")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.fusion:
        fusion(args.rounds)
        return
    for rule in args.rules.split(","):
        op_table(rule, args.density, args.top)


if __name__ == "__main__":
    main()
