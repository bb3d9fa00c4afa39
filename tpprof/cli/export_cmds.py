"""``tpprof export``: a trained checkpoint → a NIR graph file (:mod:`tpprof.nir_io`).

torch and nir are imported inside the handler, so ``tpprof estimate`` stays light.
"""

from __future__ import annotations

import argparse
import sys

from tpprof.errors import UserError

_EXAMPLES = """examples:
  tpprof export --checkpoint runs/tp0/model.pt --out tp0.nir
  tpprof estimate --net tp0.nir --rule tp,tess,bptt     # the same net, read back
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a trained checkpoint as a NIR graph (.nir) for other SNN tools",
                       description="Write the trained net of a tpprof checkpoint (weights, LIF parameters, integrator "
                                   "readout) as a NIR graph (HDF5), readable by snnTorch's import_from_nir, snn-mlir, "
                                   "nirtorch and tpprof; train with --reset hard for a file that computes what tpprof computed. "
                                   "Needs the nir extra: pip install 'tpprof[nir]'.",
                       epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a model.pt written by tpprof train (e.g. runs/tp0/model.pt)")
    p.add_argument("--out", required=True, help="the .nir file to write (e.g. --out tp0.nir)")
    p.add_argument("--readout", choices=("lif", "i"), default="lif",
                   help="the integrator readout as a never-firing LIF with α = 1 (default: snnTorch's public "
                        "importer and snn-mlir map it) or as NIR's integrator I (r = 1/dt; neither maps it)")
    p.set_defaults(func=export_handler)


def export_handler(args: argparse.Namespace) -> int:
    from tpprof.nir_io import _nir, write_nir

    if not str(args.out).lower().endswith(".nir"):
        raise UserError("out", f"{args.out!r} does not end in .nir", "a file name such as net.nir")
    _nir()  # a one-line error before torch loads when nir is missing
    from tpprof.train import learner_from_checkpoint

    learner, cfg, _ = learner_from_checkpoint(args.checkpoint, "cpu")
    notes = write_nir(learner, args.out, readout=args.readout)
    for n in notes:
        sys.stderr.write(f"tpprof export: note: {n}\n")
    print(f"{cfg.net.to_string()} ({cfg.rule.name}) -> {args.out}")
    return 0


def neurobench_output(learner, ds, doc: dict, line: str, as_json: bool) -> int:
    """``tpprof evaluate --neurobench``: print :func:`tpprof.nb_metrics.report` after evaluate's
    ``doc`` (JSON) or its accuracy ``line``."""
    import json

    import torch

    from tpprof.nb_metrics import report
    from tpprof.units import format_bytes

    rep = {**doc, **report(learner, torch.from_numpy(ds.x), torch.from_numpy(ds.y))}
    if as_json:
        print(json.dumps(rep, default=str))
        return 0
    nb, cf = rep["neurobench"], rep["tpprof_closed_form"]
    print(line)
    print(f"{'metric (NeuroBench key)':<34} {'NeuroBench':>16} {'tpprof':>16}  agree")
    rows = [("Footprint (bytes)", "Footprint"), ("ConnectionSparsity", "ConnectionSparsity"),
            ("ActivationSparsity", "ActivationSparsity")]
    rows += [(f"SynapticOperations {k}", f"SynapticOperations.{k}")
             for k in ("Dense", "Effective_ACs", "Effective_MACs")]

    def get(d: dict, key: str):
        head, _, sub = key.partition(".")
        return d[head][sub] if sub else d[head]

    rows = [(label, get(nb, key), get(cf, key), key) for label, key in rows]
    for label, a, b, key in rows:
        print(f"{label:<34} {a:>16.6g} {b:>16.6g}  {'yes' if rep['agree'][key] else 'NO'}")
    sem = rep["neuron_semantics"]
    eq = sem["closest_snntorch"]
    print(f"activity figures count tpprof's spikes: {sem['tpprof']}")
    print(f"closest snnTorch neuron: {eq['setting']} ({'identical' if eq['exact'] else 'close: ' + eq['caveat']})")
    wl = rep["tpprof_train_workload"]
    print(f"training peak (not in NeuroBench), B={wl['batch']} T={wl['steps']} {wl['dtype']} {wl['optimizer']}:")
    peaks = rep["tpprof_train_peak_analytic_bytes"]
    width = max(len(r) for r in peaks) if peaks else 4
    measured = rep.get("tpprof_train_peak_measured_bytes", {})
    print(f"  {'rule':<{width}} {'analytic':>12} {'measured (cpu)':>16}")
    for rule, v in peaks.items():
        m = measured.get(rule)
        # measured: TP, TESS, BPTT and the checkpoint's own rule (one process each); the rest: analytic only
        ms = format_bytes(m) if isinstance(m, int) else "not measured" if m is None else str(m)[:60]
        print(f"  {rule:<{width}} {format_bytes(v):>12} {ms:>16}")
    return 0
