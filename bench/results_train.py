"""Produce the real-data results of docs/results.md (a benchmark script, not a test).

Every training run is a ``tpprof train`` / ``tpprof finetune`` command (printed before it
runs), executed in worker processes with one torch thread each; each writes its own folder
under ``--runs`` (default ``$TPPROF_RUNS`` or ``~/tpprof-runs``), and a run whose
``metrics.json`` already says ``done`` is skipped, so the script can be resumed. The tables
in ``docs/results/`` are rebuilt from the run folders by ``collect``.

    python bench/results_train.py accuracy  --epochs 30 --seeds 0 1 2 --jobs 2
    python bench/results_train.py many      --epochs 30 --seeds 0 1 2 --jobs 2   # digit x speaker
    python bench/results_train.py finetune  --epochs 20 --ft-epochs 3 --ft-seeds 0 1 2 3 4 --jobs 2
    python bench/results_train.py silhouette --epochs 30
    python bench/results_train.py collect     # docs/results/*.csv + a markdown summary on stdout
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tpprof.compare import RULE_LR  # noqa: E402  one table of learning rates (docs/results.md)

RESULTS = REPO / "docs" / "results"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def runs_dir(args: argparse.Namespace) -> Path:
    return Path(args.runs or os.environ.get("TPPROF_RUNS") or Path.home() / "tpprof-runs")


def _done(out: Path) -> bool:
    try:
        return json.loads((out / "metrics.json").read_text()).get("status", "done") == "done"
    except (OSError, ValueError):
        return False


def _run(argv: list[str]) -> tuple[list[str], int, float]:
    """One CLI command in this worker process (torch single-threaded).

    A run folder is claimed with an exclusive lock file first, so several copies of this
    script can share the work; a folder already done or claimed is skipped (rc = -1)."""
    import torch

    torch.set_num_threads(1)
    from tpprof.cli import main

    out = Path(argv[argv.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out / ".claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    except FileExistsError:
        return argv, -1, 0.0
    if _done(out):
        return argv, -1, 0.0
    t0 = time.perf_counter()
    rc = main(argv)
    return argv, rc, time.perf_counter() - t0


def _run_point(argv: list[str], _protocol: object = None) -> tuple[list[str], int, float]:
    return _run(argv)


def run_all(commands: list[list[str]], jobs: int, executor: str | None = None) -> None:
    """Run the commands on tpprof's executor (tpprof.executor): a local pool of ``jobs`` processes
    (default) or Ray (``--executor ray`` / ``ray:ADDRESS``, one fresh worker per run)."""
    from tpprof.executor import make_executor

    todo = [c for c in commands if not _done(Path(c[c.index("--out") + 1]))]
    for c in todo:
        print("tpprof " + shlex.join(c), flush=True)
    if not todo:
        return
    for argv, rc, secs in make_executor(executor, jobs).imap(_run_point, todo, None):
        print(f"[rc={rc}, {secs:.0f} s] {argv[argv.index('--out') + 1]}", flush=True)


def _train_cmd(rule: str, net: str, task: str, epochs: int, seed: int, out: Path, frozen: bool = False,
               extra: list[str] | None = None) -> list[str]:
    cmd = ["train", "--rule", rule, "--net", net, "--data", "fsdd", "--task", task, "--lr", str(RULE_LR[rule]),
           "--epochs", str(epochs), "--seed", str(seed), "--batch", "32", "--no-progress", "--out", str(out)]
    return cmd + (["--freeze-hidden"] if frozen else []) + (extra or [])


def cmd_accuracy(args: argparse.Namespace, task: str = "digit", net: str = "fsdd", tag: str = "official") -> None:
    root = runs_dir(args) / tag
    cmds = []
    for seed in args.seeds:
        for rule in args.rules:
            cmds.append(_train_cmd(rule, net, task, args.epochs, seed, root / f"{rule}-s{seed}"))
        if args.control:
            cmds.append(_train_cmd("tp", net, task, args.epochs, seed, root / f"tp-frozen-s{seed}", frozen=True))
    run_all(cmds, args.jobs, args.executor)


def cmd_many(args: argparse.Namespace) -> None:
    tag = "digit-speaker" if args.net_many == "40-256-256-60" else f"digit-speaker-{args.net_many}"
    cmd_accuracy(args, "digit-speaker", args.net_many, tag)


def cmd_finetune(args: argparse.Namespace) -> None:
    root = runs_dir(args) / "finetune"
    pre = [_train_cmd("tp", "fsdd", "digit", args.epochs, args.seed, root / f"pre-{s}",
                      extra=["--holdout-speaker", s]) for s in args.speakers]
    run_all(pre, args.jobs, args.executor)
    ft = []
    for seed in args.ft_seeds:  # the seed draws the support takes and the shuffling
        for s in args.speakers:
            for shots in ("1", "5", "all"):
                ft.append(["finetune", "--checkpoint", str(root / f"pre-{s}" / "model.pt"), "--data", "fsdd",
                           "--speaker", s, "--shots", shots, "--epochs", str(args.ft_epochs), "--seed", str(seed),
                           "--no-progress", "--out", str(root / f"ft-{s}-{shots}-s{seed}")])
    run_all(ft, args.jobs, args.executor)


def cmd_silhouette(args: argparse.Namespace) -> None:
    out = runs_dir(args) / "silhouette" / f"tp-{args.net_deep}-s{args.seed}"
    run_all([_train_cmd("tp", args.net_deep, "digit", args.epochs, args.seed, out)], 1)
    scores = silhouettes(out / "model.pt")
    (out / "silhouette.json").write_text(json.dumps(scores, indent=1))
    print(json.dumps(scores, indent=1))


def silhouettes(checkpoint: Path) -> dict:
    """Silhouette score (Euclidean, sklearn) of each hidden layer's input traces ε_l^T on the
    official test set, labelled by digit — on the traces themselves and on a 2-D t-SNE
    embedding of them — for the trained net and for the same net at its random
    initialisation (the seed's weights before training)."""
    import numpy as np
    import torch
    from sklearn.metrics import silhouette_score

    from tpprof.data import load_fsdd, official_split
    from tpprof.snn import make_learner
    from tpprof.train import learner_from_checkpoint

    torch.set_num_threads(1)
    learner, cfg, meta = learner_from_checkpoint(checkpoint)
    _, test = official_split(load_fsdd(), "digit")
    x = torch.from_numpy(test.x)
    init = make_learner(cfg, seed=int(meta.get("seed", 0)))
    out = {"net": cfg.net.to_string(), "checkpoint": str(checkpoint), "n": len(test)}
    from sklearn.manifold import TSNE

    for name, lrn in (("trained", learner), ("init", init)):
        traces = lrn.layer_traces(x)  # list of (N, n_out_l)
        out[name] = [float(silhouette_score(t.numpy(), test.y)) if float(t.std()) > 0 else float("nan")
                     for t in traces]
        # the paper's Figure 4 scores a 2-D t-SNE embedding of the traces
        out[name + "_tsne"] = [float(silhouette_score(TSNE(2, random_state=0, init="pca").fit_transform(t.numpy()),
                                                      test.y)) for t in traces]
        out[name + "_rate"] = [float(t.mean()) for t in traces]  # mean trace value (activity check)
    out["input"] = float(silhouette_score(test.x.mean(axis=1), test.y))  # time-averaged features
    return out


# --------------------------------------------------------------------------------------
# collect: run folders → docs/results/*.csv
# --------------------------------------------------------------------------------------


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def cmd_collect(args: argparse.Namespace) -> None:
    root = runs_dir(args)
    acc_rows = []
    tags = ["official", "digit-speaker"] + sorted(p.name for p in root.glob("digit-speaker-*"))
    for tag in tags:
        for mpath in sorted((root / tag).glob("*/metrics.json")):
            m = json.loads(mpath.read_text())
            if m.get("status") != "done":
                continue
            task = m["data"].get("task", "digit")
            nrn = m["config"]["net"]["neuron"]
            neuron = f"v_th={nrn['v_th']} alpha={nrn['alpha']} beta={nrn['beta']}"
            acc_rows.append([m["rule"], task, m["net"], m["seed"], m["epochs"], str(m["freeze_hidden"]).lower(),
                             f"{m['test_final']:.4f}", f"{m['test_best']:.4f}", f"{m['test_mean_last3']:.4f}",
                             f"{m['train_accuracy']:.4f}", f"{m['seconds_per_epoch']:.2f}", neuron])
    _write_csv(RESULTS / "accuracy.csv", ["rule", "task", "net", "seed", "epochs", "frozen_hidden", "test_final",
                                          "test_best", "test_mean_last3", "train_final", "seconds_per_epoch",
                                          "neuron"], acc_rows)
    ft_rows = []
    for mpath in sorted((root / "finetune").glob("ft-*/metrics.json")):
        m = json.loads(mpath.read_text())
        if m["shots"] == "1":
            ft_rows.append([m["speaker"], 0, f"{m['before_accuracy']:.4f}", m["seed"]])
        ft_rows.append([m["speaker"], m["shots"], f"{m['after_accuracy']:.4f}", m["seed"]])
    order = {"0": 0, "1": 1, "5": 2, "all": 3}
    ft_rows.sort(key=lambda r: (r[0], order[str(r[1])], r[3]))
    _write_csv(RESULTS / "finetune.csv", ["speaker", "shots", "accuracy", "seed"], ft_rows)
    sil_rows = []
    for spath in sorted((root / "silhouette").glob("*/silhouette.json")):
        s = json.loads(spath.read_text())
        seed = json.loads((spath.parent / "metrics.json").read_text())["seed"]
        sil_rows += [[s["net"], i, f"{v:.4f}", f"{s['trained_tsne'][i - 1]:.4f}", f"{s['init'][i - 1]:.4f}",
                      f"{s['init_tsne'][i - 1]:.4f}", seed] for i, v in enumerate(s["trained"], start=1)]
    _write_csv(RESULTS / "silhouette.csv", ["net", "layer", "silhouette", "silhouette_tsne", "silhouette_init",
                                            "silhouette_init_tsne", "seed"], sil_rows)
    mem_rows = memory_rows()
    if mem_rows:
        _write_csv(RESULTS / "memory.csv", ["rule", "task", "net", "batch", "classes", "steps", "peak_bytes",
                                               "paper_bytes"],
                   mem_rows)
    print_summary()
    print_memory()
    print(f"wrote {len(acc_rows)} accuracy, {len(ft_rows)} finetune, {len(sil_rows)} silhouette, "
          f"{len(mem_rows)} memory rows to {RESULTS}")


def print_summary() -> None:
    """Markdown tables (mean ± sample std over seeds) from docs/results/*.csv."""
    import pandas as pd

    acc = pd.read_csv(RESULTS / "accuracy.csv")
    if len(acc):
        print("| task | neuron | rule | hidden | seeds | epochs | final | best | mean of last 3 | train | s/epoch |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for (task, neuron, rule, frozen), g in acc.groupby(["task", "neuron", "rule", "frozen_hidden"], sort=False):
            ms = [f"{100 * g[c].mean():.1f} ± {100 * g[c].std(ddof=1):.1f}" if len(g) > 1 else f"{100 * g[c].mean():.1f}"
                  for c in ("test_final", "test_best", "test_mean_last3", "train_final")]
            print(f"| {task} | {neuron} | {rule} | {'frozen' if frozen else 'trained'} | {len(g)} | {g['epochs'].iloc[0]} | "
                  + " | ".join(ms) + f" | {g['seconds_per_epoch'].mean():.1f} |")
    ft = pd.read_csv(RESULTS / "finetune.csv", dtype={"shots": str})
    if len(ft):
        piv = ft.pivot_table(index="speaker", columns="shots", values="accuracy")[["0", "1", "5", "all"]]
        print(f"\nfine-tuning: mean over seeds {sorted(int(v) for v in ft['seed'].unique())} per speaker")
        print("| speaker | before | 1-shot | 5-shot | all |\n|---|---|---|---|---|")
        for spk, row in piv.iterrows():
            print(f"| {spk} | " + " | ".join(f"{100 * v:.1f}" for v in row) + " |")
        print("| mean ± std | " + " | ".join(f"{100 * piv[c].mean():.1f} ± {100 * piv[c].std(ddof=1):.1f}"
                                           for c in piv.columns) + " |")


def print_memory() -> None:
    """Markdown: the analytic model's bytes per category for the trained configs (B = 32, T = 50)."""
    try:
        from tpprof.analytic import CATEGORIES, estimate
        from tpprof.config import make_config
    except ImportError:
        return
    print("\n| classes | rule | " + " | ".join(CATEGORIES) + " | peak (full) | paper |")
    print("|---|---|" + "---|" * (len(CATEGORIES) + 2))
    for classes in (10, 60):
        for rule in ("tp", "tess", "bptt"):
            cfg = make_config("fsdd", rule, batch=32, classes=classes, steps=50)
            bd, paper = estimate(cfg, accounting="full"), estimate(cfg, accounting="paper")
            cat = bd.by_category()
            print(f"| {classes} | {rule} | " + " | ".join(f"{cat.get(c, 0) / 1024:.0f}" for c in CATEGORIES)
                  + f" | {bd.peak_bytes / 1024:.0f} | {paper.total_bytes / 1024:.0f} |")
    print("(KiB)")


def memory_rows() -> list[list]:
    """Analytic memory of the trained configs: peak bytes of tpprof.analytic.estimate's 'full'
    accounting, and the paper's own state accounting ('paper': Table 3 / Figure 5 terms)."""
    try:
        from tpprof.analytic import estimate
        from tpprof.config import make_config
    except ImportError:
        return []
    rows = []
    for task, classes, net in (("digit", 10, "fsdd"), ("digit-speaker", 60, "fsdd")):
        for rule in ("tp", "tess", "bptt"):
            cfg = make_config(net, rule, batch=32, classes=classes, steps=50)
            bd = estimate(cfg, accounting="full")
            paper = estimate(cfg, accounting="paper")
            rows.append([rule, task, cfg.net.to_string(), 32, classes, 50, int(bd.peak_bytes),
                         int(paper.total_bytes)])
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("accuracy", "many", "finetune", "silhouette", "collect"))
    p.add_argument("--runs", default=None, help="folder for the run folders (default $TPPROF_RUNS or ~/tpprof-runs)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--ft-epochs", type=int, default=3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ft-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--rules", nargs="+", default=["tp", "tess", "bptt"])
    p.add_argument("--no-control", dest="control", action="store_false")
    p.add_argument("--speakers", nargs="+", default=list(SPEAKERS))
    p.add_argument("--net-many", default="40-256-256-60")
    p.add_argument("--net-deep", default="40-256-256-256-10")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--executor", default=None, help="local (default, --jobs processes), ray, or ray:ADDRESS")
    args = p.parse_args()
    {"accuracy": cmd_accuracy, "many": cmd_many, "finetune": cmd_finetune, "silhouette": cmd_silhouette,
     "collect": cmd_collect}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
