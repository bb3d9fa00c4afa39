"""How much of TP's step is the learner's Python structure: the learner's step next to the same
operators written as one flat function, and (``--compile``) next to ``torch.compile`` of its step.

    PYTHONPATH=$PWD python bench/tp_step_overhead.py [--density 0.05] [--rounds 5] [--compile]

SHD 700-450-20, B = 128, T = 100, TP with the class-deduplicated target path (its fastest mode),
sparse input path, synthetic spikes at ``--density``; CPU ms per step, one thread, median of
``--rounds`` alternating rounds. The flat step applies, per time step, exactly the learner's
operators for this net (one dense hidden layer, fixed S, per-step Adam); it is checked first: from
the same initial weights, one mini-batch of each must give the same parameters (max |Δ| printed,
float32). ``--compile`` times ``torch.compile(learner._step, dynamic=True)`` (its first mini-batch,
the compilation, is printed apart) and prints its parameters' drift from eager after the rounds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

from _alternate import alternate
from tpprof.config import make_config
from tpprof.snn import make_learner
from tpprof.snn.sparse import SpikeFrames

B, T, C = 128, 100, 20


def _learner():
    lr = make_learner(make_config("700-450-20", "tp", B, C, T, lr=1e-4, target_rows="classes"), seed=0)
    lr.input_path = "sparse"
    return lr


@torch.no_grad()
def flat_batch(lr, x: torch.Tensor, y: torch.Tensor) -> None:
    """One mini-batch of TP (classes mode) on ``lr``'s weights and optimisers, as one flat loop."""
    W1, Wo, S = lr.net.layers[0].W, lr.net.W_out, lr.S
    p, beta = lr.lif, lr.beta
    one = torch.ones((), dtype=W1.dtype)
    fr = SpikeFrames(x, W1.dtype, W1.device)
    uniq, inv, counts = torch.unique(y, sorted=True, return_inverse=True, return_counts=True)
    log_n = counts.to(W1.dtype).log_()
    c, ck = F.one_hot(y, C).to(W1.dtype), F.one_hot(uniq, C).to(W1.dtype)  # (B, C), (K, C)
    H, K = W1.shape[0], len(uniq)
    v, vt = torch.zeros(B, H), torch.zeros(K, H)
    eps, epst, m = torch.zeros(B, H), torch.zeros(K, H), torch.zeros(B, C)
    same = ck @ ck.t()
    kappa = 0.0
    for t in range(T):
        kappa = beta * kappa + 1.0
        u = fr.linear(t, W1).add_(v, alpha=p.alpha)  # input path, (B, H)
        s = torch.ge(u, p.v_th, out=torch.empty_like(u))
        v = torch.add(u, s, alpha=-p.v_th)
        torch.add(s, eps, alpha=beta, out=eps)
        ut = F.linear(ck, S).add_(vt, alpha=p.alpha)  # target path, (K, H)
        st = torch.ge(ut, p.v_th, out=torch.empty_like(ut))
        vt = torch.add(ut, st, alpha=-p.v_th)
        torch.add(st, epst, alpha=beta, out=epst)
        zh = torch.addmm(log_n.unsqueeze(0), eps, epst.t())  # (B, K)
        yk = torch.softmax(same * (kappa * math.sqrt(2.0)) + log_n, dim=1)[inv]
        G = torch.log_softmax(zh, dim=1).exp_().sub_(yk).div_(B)
        d = G @ epst  # (B, H)
        g = torch.sub(u, p.v_th)
        d.mul_(torch.addcmul(one, g, g, value=math.pi * math.pi, out=g).reciprocal_())
        W1.grad = fr.wgrad(t, d)
        m.addmm_(s, Wo.t())
        Wo.grad.addmm_(torch.softmax(m, dim=1).sub_(c).t(), eps, beta=0.0, alpha=1.0 / B)
        for o in lr._optims:
            o.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the learner's step")
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand((B, T, 700), generator=g) < args.density).float()
    y = torch.arange(B) % C
    ref, flat = _learner(), _learner()
    ref.train_batch(x, y)
    flat_batch(flat, x, y)
    diff = max(float((a - b).detach().abs().max()) for (_, a), (_, b) in zip(ref.named_parameters(), flat.named_parameters()))
    print(f"flat step = learner after one mini-batch: max |Δparameter| {diff:.1e}")
    runs = {"learner": lambda: ref.train_batch(x, y), "flat": lambda: flat_batch(flat, x, y)}
    if args.compile:
        comp, eager = _learner(), _learner()
        comp._step = torch.compile(comp._step, dynamic=True)
        t0 = time.perf_counter()
        comp.train_batch(x, y)
        print(f"torch.compile: first mini-batch (compiling) {time.perf_counter() - t0:.1f} s wall")
        eager.train_batch(x, y)
        runs["compiled"] = lambda: comp.train_batch(x, y)
        runs["eager twin"] = lambda: eager.train_batch(x, y)
    times = alternate(runs, args.rounds, per=T)
    print(f"TP classes, 700-450-20, B={B}, T={T}, P(1)={args.density}, sparse path: CPU ms per step, 1 thread, "
          f"median of {args.rounds} alternating rounds")
    for k, v in times.items():
        print(f"  {k:11s} {statistics.median(v):7.3f}")
    if args.compile:
        drift = max(float((a - b).detach().abs().max()) for (_, a), (_, b) in zip(comp.named_parameters(), eager.named_parameters()))
        print(f"  compiled vs eager twin after {args.rounds + 1} mini-batches: max |Δparameter| {drift:.1e}")


if __name__ == "__main__":
    main()
