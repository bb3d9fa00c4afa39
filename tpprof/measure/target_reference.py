"""The PyTorch learner on the C kernel's weights and data: the oracle of the numerical checks.

Imports torch (the rest of tpprof.target does not). ``compare(cfg, run)`` replays the mini-batch
main.c drew (:func:`tpprof.target.run.synthetic_batch`) through the learner of ``tpprof.snn``,
starting from the parameters the kernel dumped before its first step, and returns the largest
relative difference of the per-step parameter updates:

    max over steps t and tensors P of ‖ΔP_C(t) − ΔP_torch(t)‖₂ / ‖ΔP_torch(t)‖₂,
    ΔP(t) = P after step t − P after step t − 1   (float32 both).
"""

from __future__ import annotations

import math

import torch

from tpprof.config import Config
from tpprof.snn import make_learner
from tpprof.target.run import TargetRun, synthetic_batch


def torch_updates(cfg: Config, initial: dict[str, list[float]]) -> tuple[list[dict[str, torch.Tensor]], dict]:
    """Parameters after every step of the learner (float32), from the kernel's initial parameters."""
    learner = make_learner(cfg, dtype=torch.float32)
    sd = {}
    for name, p in learner.named_parameters():
        sd[name] = torch.tensor(initial[name], dtype=torch.float32).view_as(p)
    for name, vals in initial.items():
        if name not in sd:  # fixed aux (TP's S)
            ref = learner.state_dict()[name]
            sd[name] = torch.tensor(vals, dtype=torch.float32).view_as(ref)
    learner.load_state_dict(sd)
    labels, x = synthetic_batch(cfg)
    xt = torch.tensor(x, dtype=torch.float32)  # (B, T, n_in)
    yt = torch.tensor(labels, dtype=torch.long)  # (B,)
    names = list(initial)
    states = [{n: sd[n].clone() for n in names}]

    def on_step(t: int) -> None:
        cur = dict(learner.named_parameters())
        states.append({n: (cur[n] if n in cur else sd[n]).detach().clone() for n in names})

    if cfg.rule.name == "tbptt":  # on_step runs before a window's update: the step's state is after it
        step_optims = learner._step_optims

        def after_update(*args: object, **kw: object) -> None:
            step_optims(*args, **kw)
            on_step(-1)
            states.pop(-2)

        learner._step_optims = after_update  # type: ignore[method-assign]
    res = learner.train_batch(xt, yt, on_step=on_step)
    # BPTT's on_step runs inside its forward, before its one update: the end of the mini-batch
    # is the state after step T (for the per-step rules it is what on_step saw at t = T − 1)
    cur = dict(learner.named_parameters())
    states[-1] = {n: (cur[n] if n in cur else sd[n]).detach().clone() for n in names}
    return states, res


def max_update_difference(cfg: Config, run: TargetRun) -> float:
    """The largest relative difference of a per-step parameter update (module docstring)."""
    if len(run.params) != cfg.workload.steps + 1:
        raise ValueError(f"the run dumped {len(run.params)} parameter sets, expected T + 1 = {cfg.workload.steps + 1}")
    states, _ = torch_updates(cfg, run.params[0])
    worst = 0.0
    for t in range(1, len(states)):
        for name in states[t]:
            ref = states[t][name] - states[t - 1][name]
            c_now = torch.tensor(run.params[t][name]).view_as(ref)
            c_prev = torch.tensor(run.params[t - 1][name]).view_as(ref)
            got = c_now - c_prev
            den = float(ref.norm())
            num = float((got - ref).norm())
            if den == 0.0:
                worst = max(worst, 0.0 if num == 0.0 else math.inf)
            else:
                worst = max(worst, num / den)
    return worst
