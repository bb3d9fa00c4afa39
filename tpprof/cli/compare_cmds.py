"""``tpprof compare``: train every learner on one task, rank them for a device (tpprof.compare)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from tpprof.cli.config_flags import RULE_HELP, ascii_int
from tpprof.errors import UserError

_EXAMPLES = """examples:
  tpprof compare --data fsdd --device stm32h743 --rule all --seeds 3 --epochs 10 --jobs 2 --out cmp/digit
  tpprof compare --data fsdd --task digit-speaker --device rpi4-4gb --rule tp,tess,bptt --epochs 10 --out cmp/60
  tpprof compare --data my_spikes.npz --net 700-450-20 --device stm32h743 --epochs 5 --executor ray:auto --out cmp/mine
  tpprof compare --results cmp/digit/results.csv --device nrf52840     # rank an earlier comparison for another device
"""


def register(sub: argparse._SubParsersAction) -> None:
    from tpprof.compare import LEARNER_LABELS

    p = sub.add_parser("compare", help="train every learning rule on one task and rank them for a device",
                       description="Train every trainable learner (and TP's class-dedup and authors' modes) on one "
                                   "task with several seeds; write OUT/results.csv (final-epoch test accuracy, "
                                   "analytic peaks, time per step, MACs); print the most accurate learner that fits the "
                                   "device "
                                   "and the accuracy x peak Pareto front. A killed run started again continues where "
                                   "it stopped.",
                       epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="fsdd",
                   help="fsdd (the Free Spoken Digit Dataset) or a .npz with x [N,T,F] and y [N] (e.g. --data fsdd)")
    p.add_argument("--task", choices=("digit", "speaker", "digit-speaker"), default="digit",
                   help="FSDD labels: digit (10 classes), speaker (6), digit-speaker (60) (e.g. --task digit)")
    p.add_argument("--data-dir", default=None,
                   help="folder of the FSDD recordings; else $TPPROF_FSDD (e.g. --data-dir ~/fsdd)")
    p.add_argument("--test-data", default=None, help="a separate test file for .npz data (e.g. --test-data test.npz)")
    p.add_argument("--limit", type=ascii_int, default=None, help="use the first N training samples (e.g. --limit 300)")
    p.add_argument("--test-limit", type=ascii_int, default=None,
                   help="use the first N test samples (e.g. --test-limit 100)")
    p.add_argument("--net", default="fsdd",
                   help="preset, net string or .nir file; its readout is resized to the data's classes "
                        "(e.g. --net fsdd)")
    p.add_argument("--batch", type=ascii_int, default=32, help="batch size B of every run (e.g. --batch 32)")
    p.add_argument("--optimizer", default="adam",
                   help=RULE_HELP["optimizer"].split(";")[0] + "; of every learner (the learning rates were chosen "
                        "for adam), e.g. --optimizer adam")
    p.add_argument("--device", default=None,
                   help="catalogue device to rank for ('tpprof devices'); its kind names the accounting "
                        "(e.g. --device stm32h743)")
    p.add_argument("--devices", default=None, metavar="FILE",
                   help="extra device catalogue (e.g. --devices boards.toml)")
    p.add_argument("--rule", default="all",
                   help=f"the learning rules compared: all, or a comma-separated list of {', '.join(LEARNER_LABELS)} "
                        "(e.g. --rule tp,tess,bptt)")
    p.add_argument("--seeds", type=ascii_int, default=3, help="seeds per learner: 0..N-1 (e.g. --seeds 3)")
    p.add_argument("--epochs", type=ascii_int, default=None, help="epochs per run (e.g. --epochs 10)")
    p.add_argument("--jobs", type=ascii_int, default=1, help="parallel worker processes (e.g. --jobs 2)")
    p.add_argument("--executor", default=None, help="local (default, --jobs processes), ray, ray:auto, ray:ADDRESS")
    p.add_argument("--backend", default="cpu", help="where the steps run: cpu, cuda, cuda:N (e.g. --backend cpu)")
    p.add_argument("--threads", type=ascii_int, default=1, help="torch threads per run (e.g. --threads 1)")
    p.add_argument("--measure", action="store_true",
                   help="also measure each learner's training peak once (profiler counter, a fresh process)")
    p.add_argument("--out", default=None, help="output folder: OUT/results.csv and OUT/runs/ (e.g. --out cmp/digit)")
    p.add_argument("--results", default=None,
                   help="rank an existing results.csv instead of training (e.g. --results cmp/digit/results.csv)")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    p.add_argument("--markdown", action="store_true",
                   help="print the ranking as a markdown table (per-seed accuracies, both peaks, time, MACs)")
    p.set_defaults(func=compare_handler)


def _device(args: argparse.Namespace) -> Any:
    if not args.device:
        if args.devices:
            raise UserError("devices", "--devices needs --device NAME to pick one", "--device NAME")
        return None
    from tpprof.analytic.devices import get_device

    return get_device(args.device, args.devices)


def _check_counts(args: argparse.Namespace) -> None:
    from tpprof.cli.train_cmds import MAX_EPOCHS

    for name, top in (("seeds", 1000), ("epochs", MAX_EPOCHS), ("jobs", 256), ("batch", 10**6), ("threads", 1024),
                      ("limit", 10**9), ("test_limit", 10**9)):
        v = getattr(args, name)
        if v is None:
            continue
        if not 1 <= v <= top:
            raise UserError(name.replace("_", "-"), f"{str(v)[:20]} is out of range", f"an integer 1..{top}")


def compare_handler(args: argparse.Namespace) -> int:
    from tpprof import compare as cmp

    _check_counts(args)
    device = _device(args)
    if args.results:
        rows = cmp.load_results(args.results)
        if not rows:
            raise UserError("results", f"{args.results!r} holds no runs", "a results.csv written by tpprof compare")
        if args.markdown:
            print(markdown_table(rows, device))
            return 0
        print_ranking(rows, device, args.json)
        return 0
    if args.out is None or args.epochs is None:
        raise UserError("out" if args.out is None else "epochs", "is needed to train",
                        "--out DIR --epochs N (or --results FILE to rank an earlier comparison)")
    rows = run_compare(args, device)
    print_ranking(rows, device, args.json, results_path=Path(args.out) / cmp.RESULTS_FILE)
    return 0


def _base_config(args: argparse.Namespace, train: Any) -> Any:
    """The comparison's Config through the CLI's one path (readout resized to the data's classes,
    T the data's); each learner then sets its rule, learning rate and mode."""
    from tpprof.cli.config_flags import config_from_values

    return config_from_values(net=args.net, rule="tp", batch=args.batch, classes=train.classes, steps=train.steps,
                              optimizer=args.optimizer)


def run_compare(args: argparse.Namespace, device: Any) -> list[dict[str, Any]]:
    """Plan, run (skipping finished runs, continuing interrupted ones) and write the results file."""
    from tpprof import compare as cmp
    from tpprof.executor import make_executor
    from tpprof.train import resolve_device

    resolve_device(args.backend)
    spec = cmp.DataSpec(args.data, args.task, args.data_dir, args.test_data, args.limit, args.test_limit)
    train, _, _ = cmp.load_data(spec)  # the data's shape and classes, checked once before any worker starts
    base = _base_config(args, train)
    from tpprof.train import check_run

    learners = cmp.parse_learners(args.rule, base)
    for lr in learners:  # every run's checks before the progress line: a refused comparison is one line
        check_run(lr.config(base), train)
    out = Path(args.out)
    jobs = cmp.plan(base, learners, list(range(args.seeds)), args.epochs, out, spec, args.backend, args.threads)
    (out / cmp.RUNS_DIR).mkdir(parents=True, exist_ok=True)
    executor = make_executor(args.executor, max(1, min(args.jobs, len(jobs))))  # no idle worker processes
    try:
        if args.measure:
            todo = [(lr, lr.config(base).to_json(), args.backend, str(out / cmp.RUNS_DIR)) for lr in learners]
            for r in executor.imap(cmp.measure_learner, todo, None):
                sys.stderr.write(f"tpprof compare: measured peak {r.get('peak_bytes')} ({r.get('status')})\n")
        done: dict[str, dict[str, Any]] = {}
        order = [j.out for j in jobs]
        sys.stderr.write(f"tpprof compare: {len(jobs)} runs ({len(learners)} learners x {args.seeds} seeds, "
                         f"{args.epochs} epochs) -> {out}\n")
        # seed-major execution: a comparison cut short still has every learner at its first seeds
        for row in executor.imap(cmp.train_job, sorted(jobs, key=lambda j: j.seed), None):
            key = str(cmp.run_folder(out, next(lr for lr in learners if lr.label == row["label"]), row["seed"]))
            done[key] = row
            sys.stderr.write(f"tpprof compare: {row['label']} seed {row['seed']}: test {row['test_final']:.4f} "
                             f"({len(done)}/{len(jobs)})\n")
            cmp.write_results(out / cmp.RESULTS_FILE, [done[k] for k in order if k in done])
    finally:
        if hasattr(executor, "shutdown"):  # a Ray instance this command started
            executor.shutdown()
    return [done[k] for k in order]


def _pct(v: float) -> str:
    return "—" if v != v else f"{100 * v:.1f}"


def print_ranking(rows: Sequence[dict[str, Any]], device: Any, as_json: bool = False,
                  results_path: Path | None = None) -> None:
    from tpprof import compare as cmp
    from tpprof.units import format_bytes

    summary = cmp.summarise(rows)
    ranked = cmp.rank(summary, device)
    acc = ranked[0]["accounting"] if ranked else "full"
    front = cmp.pareto(summary, acc)
    top = cmp.best(ranked)
    if as_json:
        print(json.dumps({"device": device.name if device else None, "accounting": acc, "ranking": ranked,
                          "best": top["label"] if top else None, "pareto": front, "tp": cmp.tp_place(ranked)},
                         default=str, indent=1))
        return
    r0 = rows[0] if rows else {}
    print(f"tpprof compare: {r0.get('data')} {r0.get('task')}, net {r0.get('net_string')}, B={r0.get('batch')} "
          f"T={r0.get('steps')} {r0.get('optimizer')}, {r0.get('epochs')} epochs; accuracy = final-epoch test "
          "accuracy, mean ± sd over seeds")
    if device is not None:
        from tpprof.analytic.devices import device_accounting
        from tpprof.analytic.learnability import CAPABILITY_LABELS

        print(f"device {device.name} ({device.kind}): budget {format_bytes(device.budget_bytes)}, accounting {acc} "
              f"({device_accounting(device)[1]}); learning: {CAPABILITY_LABELS[device.learning_capability]}")
    measured = any(r.get("measured_peak_bytes") for r in ranked)
    mcol = f" {'measured':>10}" if measured else ""
    head = (f"{'#':>2}  {'learner':<22} {'accuracy %':>12} {'seeds':>5} {'peak ' + acc:>16}{mcol} {'fits':>4}  "
            f"{'ms/step':>8}  note")
    print(head)
    print("-" * len(head))
    for r in ranked:
        ms = f"{r['ms_per_step']:.2f}" if r.get("ms_per_step") is not None else "—"
        acc_txt = f"{_pct(r['acc_mean'])} ± {_pct(r['acc_sd'])}"
        mv = (f" {format_bytes(r['measured_peak_bytes']) if r.get('measured_peak_bytes') else '—':>10}"
              if measured else "")
        print(f"{r['rank'] or '':>2}  {r['label']:<22} {acc_txt:>12} {r['seeds']:>5} "
              f"{format_bytes(r['peak_bytes']):>16}"
              f"{mv} {'yes' if r['fits'] else 'no':>4}  {ms:>8}  {r['why_not']}")
    if measured:
        print("measured: training peak of each learner's config (profiler counter, tpprof.measure), full accounting's "
              "counterpart")
    where = f"fits {device.name} (and learns there)" if device is not None else "was trained"
    if top is not None:
        print(f"the most accurate rule that {where}: {top['label']} {_pct(top['acc_mean'])} ± {_pct(top['acc_sd'])} % "
              f"at {format_bytes(top['peak_bytes'])} ({acc})")
    else:
        print(f"no rule fits {device.name if device else ''} and learns there ({acc} accounting)")
    tp = cmp.tp_place(ranked)
    if tp is not None:
        if tp["rank"] is None:
            print(f"TP: not ranked ({tp['why_not']})")
        elif tp["versus"] is None:
            print(f"TP: 1 of {tp['of']}")
        else:
            print(f"TP: {tp['rank']} of {tp['of']}, {tp['acc_points']:+.1f} accuracy points and "
                  f"{tp['peak_ratio']:.2f}x the peak of {tp['versus']}")
    print(f"Pareto front (accuracy x peak, {acc}): " + " < ".join(front))
    if results_path is not None:
        print(f"results: {results_path}")


def markdown_table(rows: Sequence[dict[str, Any]], device: Any) -> str:
    """The ranking as a markdown table: per learner its rank on ``device``, learning rate, final-epoch
    accuracy (mean ± sd and each seed's), both analytic peaks, ms per step and MMAC per step."""
    from tpprof import compare as cmp
    from tpprof.units import format_bytes

    ranked = cmp.rank(cmp.summarise(rows), device)
    front = set(cmp.pareto(cmp.summarise(rows), ranked[0]["accounting"] if ranked else "full"))
    out = ["| rank | learner | lr | final accuracy % (mean ± sd) | per seed | peak full | peak algorithm | "
           "ms / step | MMAC / step | Pareto |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ranked:
        seeds = [x for x in rows if x["label"] == r["label"]]
        per = ", ".join(f"{100 * x['test_final']:.1f}" for x in sorted(seeds, key=lambda x: x["seed"]))
        sd = f" ± {100 * r['acc_sd']:.1f}" if r["acc_sd"] == r["acc_sd"] else ""
        ms = f"{r['ms_per_step']:.1f}" if r.get("ms_per_step") is not None else "–"
        mac = f"{r['macs_per_step'] / 1e6:.2f}" if r.get("macs_per_step") else "–"
        out.append(f"| {r['rank'] or '–'} | {r['label']} | {seeds[0].get('lr')} | {100 * r['acc_mean']:.1f}{sd} | "
                   f"{per} | {format_bytes(r['peak_bytes_full'])} | {format_bytes(r['peak_bytes_algorithm'])} | "
                   f"{ms} | {mac} | "
                   f"{'yes' if r['label'] in front else ''} |")
    return "\n".join(out)
