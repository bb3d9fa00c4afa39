"""tpprof's TP step next to the authors' TP step (their official code, from a checkout you give).

    PYTHONPATH=$PWD python bench/authors_tp.py --authors /path/to/traces_propagation
    PYTHONPATH=$PWD python bench/authors_tp.py --authors ../traces_propagation --density 0.02 --rounds 8

Nothing of the authors' code is in this repository: the script imports ``models.tp_mlp.TP_MLP``
from the checkout and runs their training step as their ``utils.train`` does with ``--T 1
--custom_grad --layerwise_optim`` (forward, zero_grad, ``model.update()``, one Adam step per layer,
``detach_membrane_states``) with their SHD feed-forward settings (experiments/shd.sh: 700-450-20,
v_th 1, leak_m 0.96, leak_t 0.97, soft reset, norm none, ArcTan surrogate, Adam lr 1e-4).

Same window: B = 128, T = 100 steps per mini-batch, synthetic spikes with P(1) = ``--density``
(the same batch for everyone), one thread, CPU time (``time.process_time``); in every round each
variant runs one mini-batch, one after the other (alternating), and the median over rounds is
printed with the load average. Variants: the authors' TP; tpprof's TP (paper B rows, and
``target_rows = classes``) on the input path ``auto`` picks; tpprof's bptt; and the MAC ratio
TP-classes / bptt of the analytic model next to the time ratio. ``--floor`` adds TP classes' floor
(bench/bench_floor.py: its matrix products and Adam steps replayed alone, in the same rounds), with
and without building the sparse path's index lists: the least a step doing that arithmetic costs
in this process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from _alternate import alternate
from bench_floor import replay_floor
from tpprof.analytic import estimate
from tpprof.config import make_config
from tpprof.snn import make_learner

B, T, N_IN, H, C = 128, 100, 700, 450, 20


def authors_step(path: Path, x: torch.Tensor, y: torch.Tensor):
    """A closure running one mini-batch of the authors' TP training step (see module docstring)."""
    sys.path.insert(0, str(path))
    from models.tp_mlp import TP_MLP  # type: ignore[import-not-found]  # from the given checkout

    params = {"l_vth": 1.0, "l_leak_m": 0.96, "l_leak_t": 0.97, "l_rst_type": "soft", "l_out_leak_m": 1.0,
              "surrogate_type": "1", "surrogate_scale": 1.0, "norm_type": "none", "train_s": False,
              "l_rec": False}
    torch.manual_seed(0)
    model = TP_MLP(hidden_layers=[H], input_size=N_IN, output_size=C, batch_size=B, snn_params=params)
    opts = {name: torch.optim.Adam(ps, lr=1e-4) for name, ps in model.get_layerwise_params()}
    crit = torch.nn.CrossEntropyLoss()
    c = F.one_hot(y, C).float()

    def run() -> None:
        model.reset_potential()
        for o in opts.values():
            o.zero_grad()
        for t in range(x.shape[1]):
            out_t, out_teacher_t = model(x[:, t, :], c)
            crit(out_t, y)
            crit(out_teacher_t, y)
            for o in opts.values():
                o.zero_grad()
            model.update()
            for o in opts.values():
                o.step()
            model.detach_membrane_states()
    return run


def tpprof_step(rule: str, x: torch.Tensor, y: torch.Tensor, **kw):
    cfg = make_config("700-450-20", rule, B, C, T, lr=1e-4, **kw)
    lr = make_learner(cfg, seed=0)
    return cfg, (lambda: lr.train_batch(x, y))


def tpprof_floor(x: torch.Tensor, y: torch.Tensor, lists: bool):
    """TP classes' floor on the input path ``auto`` picks (bench/bench_floor.py): its matrix
    products and Adam steps replayed alone, with or without building the sparse path's index lists."""
    cfg = make_config("700-450-20", "tp", B, C, T, lr=1e-4, target_rows="classes")
    return replay_floor(make_learner(cfg, seed=0), x, y, lists=lists)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--authors", required=True, help="path of a checkout of the authors' traces_propagation")
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--floor", action="store_true",
                    help="also time TP classes' floor (products and Adam replayed alone), with and without the index lists")
    args = ap.parse_args()
    path = Path(args.authors).resolve()
    if not (path / "models" / "tp_mlp.py").is_file():
        sys.exit(f"authors: {path} has no models/tp_mlp.py (a checkout of traces_propagation is expected)")
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand((B, T, N_IN), generator=g) < args.density).float()
    y = torch.arange(B) % C
    cfg_tp, tp = tpprof_step("tp", x, y)
    cfg_cl, tp_cl = tpprof_step("tp", x, y, target_rows="classes")
    cfg_bp, bptt = tpprof_step("bptt", x, y)
    runs = {"authors TP": authors_step(path, x, y), "tpprof tp": tp, "tpprof tp classes": tp_cl, "tpprof bptt": bptt}
    if args.floor:
        runs["tp classes floor"] = tpprof_floor(x, y, lists=True)
        runs["  without the lists"] = tpprof_floor(x, y, lists=False)
    for fn in runs.values():
        fn()  # warm-up
    load0 = os.getloadavg()[0]
    med = {k: statistics.median(v) for k, v in alternate(runs, args.rounds, per=T).items()}
    print(f"SHD 700-450-20, B={B}, T={T}, synthetic spikes P(1)={args.density}, CPU ms per step, 1 thread, median of "
          f"{args.rounds} alternating rounds; load average {load0:.1f} → {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    a = med["authors TP"]
    for k, v in med.items():
        print(f"  {k:20s} {v:8.3f} ms/step   {v / a:5.2f}× the authors' TP")
    macs = {k: estimate(c).macs_per_step for k, c in (("classes", cfg_cl), ("bptt", cfg_bp), ("tp", cfg_tp))}
    print(f"  tp classes / bptt: time {med['tpprof tp classes'] / med['tpprof bptt']:.2f}, "
          f"MACs {macs['classes'] / macs['bptt']:.2f} ({macs['classes'] / 1e6:.1f} M / {macs['bptt'] / 1e6:.1f} M)")
    print(f"  tp / bptt:         time {med['tpprof tp'] / med['tpprof bptt']:.2f}, "
          f"MACs {macs['tp'] / macs['bptt']:.2f}")


if __name__ == "__main__":
    main()
