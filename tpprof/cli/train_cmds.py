"""``tpprof train`` / ``evaluate`` / ``finetune``: thin shells over :mod:`tpprof.train`.

torch, numpy and the learners are imported inside the handlers so ``tpprof estimate`` stays light.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from tpprof.cli.config_flags import (add_config_flags, add_nir_dt_flag, apply_nir_dt, ascii_float, ascii_int,
                                     check_rules, config_from_args, int_flag, refuse_catalogue_device)
from tpprof.config import TRAINABLE_RULES
from tpprof.errors import UserError

_TRAIN_EXAMPLES = """examples:
  tpprof train --rule tp --net fsdd --data fsdd --epochs 10 --seed 0 --out runs/tp0
  tpprof train --rule bptt --data fsdd --task digit-speaker --net 40-256-256-60 --epochs 10 --out runs/b60
  tpprof train --rule tp --data fsdd --holdout-speaker theo --epochs 10 --out runs/pre-theo
  tpprof train --rule tess --net 700-450-20 --data my_spikes.npz --epochs 5 --out runs/mine
  tpprof train --rule tp --net from_snntorch.nir --data my_spikes.npz --epochs 5 --out runs/ft  # its weights
"""
_FT_EXAMPLES = """examples:
  tpprof finetune --checkpoint runs/pre-theo/model.pt --data fsdd --speaker theo --shots 5 --out runs/ft-theo-5
  tpprof finetune --net from_snntorch.nir --rule tp --data fsdd --speaker theo --shots 5 --out runs/ft-nir
"""


def _data_flags(p: argparse.ArgumentParser, default_data: str | None = "fsdd") -> None:
    p.add_argument("--data", default=default_data,
                   help="fsdd (the Free Spoken Digit Dataset), a .npz with x [N,T,F] and y [N], or an SHD-layout "
                        ".h5 (e.g. --data fsdd, --data my_spikes.npz)")
    p.add_argument("--task", choices=("digit", "speaker", "digit-speaker"), default=None,
                   help="FSDD labels: digit (10 classes), speaker (6) or digit-speaker (60) (e.g. --task digit)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the FSDD recordings; else $TPPROF_FSDD, else ../shared/data/fsdd "
                        "(e.g. --data-dir ~/fsdd)")
    p.add_argument("--backend", default="cpu", help="where the steps run: cpu, cuda or cuda:N (e.g. --backend cuda)")
    refuse_catalogue_device(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars (e.g. in batch jobs)")
    p.add_argument("--threads", type=ascii_int, default=None,
                   help="torch CPU threads; 1 gives steady timings on shared machines (e.g. --threads 1)")


def register(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("train", help="train a TP / TESS / BPTT learner on FSDD or your own data",
                       description="Train a spiking net with a local learning rule; writes OUT/metrics.json after "
                                   "every epoch and OUT/model.pt (loads with torch.load(weights_only=True)).",
                       epilog=_TRAIN_EXAMPLES, formatter_class=fmt)
    # net, rule, batch, steps, optimizer, lr, similarity, train-s, ...: the shared config flags; the net's
    # input must match the data, its readout is resized to the data's classes, T is the data's
    add_config_flags(p, rules=TRAINABLE_RULES, config_file=False, default_net="fsdd", rule_all=False)
    _data_flags(p)
    p.add_argument("--epochs", type=ascii_int, required=True, help="epochs (e.g. --epochs 10)")
    p.add_argument("--seed", type=ascii_int, default=0, help="seed of the weights and the shuffling (e.g. --seed 1)")
    p.add_argument("--limit", type=ascii_int, default=None, help="use the first N training samples (e.g. --limit 300)")
    p.add_argument("--freeze-hidden", action="store_true",
                   help="control run: hidden layers stay at their random init, only the readout learns "
                        "(the same as --trainable readout)")
    p.add_argument("--holdout-speaker", default=None,
                   help="FSDD: pretrain without this speaker, for tpprof finetune (e.g. --holdout-speaker theo)")
    p.add_argument("--test-data", default=None, help="a separate test file for .npz/.h5 data (e.g. test.npz)")
    p.add_argument("--mels", type=ascii_int, default=40, help="FSDD mel bands (e.g. --mels 40)")
    p.add_argument("--encoding", choices=("current", "delta"), default="current",
                   help="FSDD input: log-mel currents or send-on-delta spikes (2x bands) (e.g. --encoding delta)")
    p.add_argument("--out", required=True, help="output folder (e.g. --out runs/tp0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out after its last complete epoch (same flags as that run)")
    p.add_argument("--force", action="store_true",
                   help="replace another run's files in --out (without it such a folder is refused), e.g. --force")
    p.add_argument("--reset", choices=("soft", "hard"), default=None,
                   help="the neurons' reset (default: the net's; soft for net strings): hard makes a net whose "
                        "NIR export computes the same in snnTorch and snn-mlir (e.g. --reset hard)")
    p.set_defaults(func=train_handler)

    e = sub.add_parser("evaluate", help="accuracy of a checkpoint on FSDD or your data",
                       description="Accuracy (argmax of the readout potential) of a tpprof checkpoint.",
                       epilog="examples:\n  tpprof evaluate --checkpoint runs/tp0/model.pt --data fsdd\n",
                       formatter_class=fmt)
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a model.pt written by tpprof train (e.g. runs/tp0/model.pt)")
    src.add_argument("--net", help="a .nir file: its weights and neurons, e.g. exported by snnTorch "
                                   "(e.g. --net net.nir)")
    add_nir_dt_flag(e)
    _data_flags(e, default_data=None)
    e.add_argument("--test-data", default=None, help="with --net: a separate test file for .npz/.h5 data")
    e.add_argument("--split", choices=("test", "train"), default="test", help="which split to score (e.g. --split test)")
    e.add_argument("--json", action="store_true", help="print a JSON object instead of a line")
    e.add_argument("--neurobench", action="store_true",
                   help="also NeuroBench's Footprint, ConnectionSparsity, ActivationSparsity and SynapticOperations "
                        "(its harness, on the split) next to tpprof's closed forms, plus training peaks per rule "
                        "(needs pip install 'tpprof[neurobench]')")
    e.set_defaults(func=evaluate_handler)

    f = sub.add_parser("finetune", help="fine-tune a checkpoint for a new FSDD speaker (k-shot)",
                       description="Fine-tune a pretrained checkpoint on k takes per digit of one speaker; report "
                                   "that speaker's query-set accuracy before and after in OUT/metrics.json.",
                       epilog=_FT_EXAMPLES, formatter_class=fmt)
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a model.pt from tpprof train (e.g. runs/pre-theo/model.pt)")
    src.add_argument("--net", help="a .nir file whose weights and neurons start the fine-tune (e.g. --net net.nir)")
    add_nir_dt_flag(f)
    f.add_argument("--rule", default="tp", help="with --net: the learning rule (e.g. --rule tp)")
    f.add_argument("--batch", type=ascii_int, default=32, help="with --net: the batch size B of the fine-tune (e.g. --batch 32)")
    _data_flags(f)
    f.add_argument("--speaker", required=True, help="the new user, an FSDD speaker (e.g. --speaker theo)")
    f.add_argument("--shots", default="all", help="takes per digit in the support set: 1, 5 or all (e.g. --shots 5)")
    f.add_argument("--epochs", type=ascii_int, default=3, help="fine-tuning epochs (e.g. --epochs 3)")
    f.add_argument("--lr", type=ascii_float, default=None, help="learning rate; default the checkpoint's (e.g. --lr 1e-4)")
    f.add_argument("--seed", type=ascii_int, default=0, help="seed of the support draw and shuffling (e.g. --seed 0)")
    f.add_argument("--out", required=True, help="output folder (e.g. --out runs/ft-theo-5)")
    f.set_defaults(func=finetune_handler)


def _setup(args: argparse.Namespace) -> str:
    import torch

    from tpprof.train import resolve_device

    if args.threads is not None:
        cpus = os.cpu_count() or 1  # more threads than CPUs only oversubscribes (and torch keeps them)
        if not 1 <= args.threads <= cpus:
            raise UserError("threads", f"{str(args.threads)[:20]} is out of range", f"an integer 1..{cpus} (this machine's CPUs)")
        torch.set_num_threads(args.threads)
    return resolve_device(args.backend)


#: Upper bounds of the counts a run loops over: past them a typo is a run that never ends.
MAX_EPOCHS = 10_000


def _check_positive(name: str, value: Any) -> None:
    if value is not None and value < 1:
        raise UserError(name, f"{value} is too small", "an integer >= 1")
    if name == "epochs" and value is not None and value > MAX_EPOCHS:
        raise UserError(name, f"{str(value)[:20]} is too large", f"an integer 1..{MAX_EPOCHS}")


def train_handler(args: argparse.Namespace) -> int:
    from tpprof.data.select import load_train_test
    from tpprof.train import check_seed, fit, set_default_threads

    for name in ("epochs", "limit", "mels"):
        _check_positive(name, getattr(args, name))
    steps = int_flag("steps", args.steps)  # T of the FSDD features or SHD bins (default 50 / 100)
    if args.rule is not None and "," in args.rule:
        raise UserError("rule", f"{args.rule[:40]!r} names several rules", "one rule: " + ", ".join(TRAINABLE_RULES))
    check_rules(args.rule, TRAINABLE_RULES)
    if args.freeze_hidden and getattr(args, "trainable", None) not in (None, "readout"):
        raise UserError("freeze-hidden", f"contradicts --trainable {args.trainable}", "one of them")
    config_from_args(args)  # every config flag checked before the data loads
    check_seed(args.seed)
    device = _setup(args)
    task = args.task or "digit"
    train, test, spec = load_train_test(args.data, task, data_dir=args.data_dir, steps=steps, n_mels=args.mels,
                                        encoding=args.encoding, test_path=args.test_data,
                                        holdout_speaker=args.holdout_speaker, seed=args.seed)
    train = train.head(args.limit)
    spec["limit"] = args.limit
    cfg = config_from_args(args, classes=train.classes, steps=train.steps)
    if getattr(args, "reset", None):
        cfg = dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, neuron=dataclasses.replace(
            cfg.net.neuron, reset=args.reset)))
    if args.threads is None:  # see tpprof.train.default_threads for the rule and its measurement
        set_default_threads(cfg)
    learner = _nir_learner(args.net, cfg, device, args.seed) if not getattr(args, "resume", False) else None
    m = fit(cfg, train, test, epochs=args.epochs, seed=args.seed, out_dir=args.out, device=device,
            freeze_hidden=args.freeze_hidden, progress=not args.no_progress, meta=spec,
            resume=getattr(args, "resume", False), learner=learner, force=args.force)
    last3 = f", mean of last 3 {m['test_mean_last3']:.4f}" if m["test_mean_last3"] is not None else ""
    print(f"{cfg.rule.name} {cfg.net.to_string()} on {args.data} ({task}): test {m['test_final']:.4f} "
          f"(best {m['test_best']:.4f}{last3}), train {m['train_accuracy']:.4f}, "
          f"{m['seconds_per_epoch']:.1f} s/epoch -> {args.out}")
    return 0


def _nir_learner(net: Any, cfg: Any, device: str, seed: int) -> Any:
    """``--net x.nir``: a learner that starts from the file's weights (None for other nets)."""
    from tpprof.train import is_nir_path, learner_from_nir

    if not is_nir_path(net):
        return None
    learner = learner_from_nir(net, cfg, device, seed)
    sys.stderr.write(f"tpprof: starts from the weights and neurons of {os.path.basename(str(net))} "
                     f"({cfg.net.to_string()}, α = {cfg.net.neuron.alpha:g}, v_th = {cfg.net.neuron.v_th:g}, "
                     f"{cfg.net.neuron.reset} reset)\n")
    return learner


def _nir_config(args: argparse.Namespace, steps: int, rule: str = "tp", batch: int = 32, lr: float | None = None):
    """The Config of a ``--net x.nir`` run without a checkpoint: the file's net and neurons."""
    from tpprof.config import RuleSpec, make_config, parse_net

    apply_nir_dt(args)
    spec = parse_net(args.net)
    rs = RuleSpec(name=rule) if lr is None else RuleSpec(name=rule, lr=lr)
    return make_config(spec, rs, batch=batch, steps=steps)


def _evaluate_nir(args: argparse.Namespace, device: str) -> int:
    """``tpprof evaluate --net x.nir --data D``: the file's own weights on the user's data."""
    from tpprof.data.select import load_train_test
    from tpprof.train import check_fits, evaluate, set_default_threads

    if args.data is None:
        raise UserError("data", "is needed with --net", "--data FILE (.npz / .h5) or --data fsdd")
    task = args.task or "digit"
    train, test, _ = load_train_test(args.data, task, data_dir=args.data_dir, test_path=args.test_data)
    ds = test if args.split == "test" else train
    cfg = _nir_config(args, steps=ds.steps)
    if args.threads is None:
        set_default_threads(cfg, batch=256)
    learner = _nir_learner(args.net, cfg, device, 0)
    check_fits(cfg, ds)
    acc = evaluate(learner, ds, device=device)
    doc = {"accuracy": acc, "n": len(ds), "split": args.split, "task": task, "data": args.data, "net": args.net}
    line = f"accuracy {acc:.4f} on {len(ds)} {args.split} samples ({args.data}, {task}) with {args.net}'s weights"
    if getattr(args, "neurobench", False):
        from tpprof.cli.export_cmds import neurobench_output

        return neurobench_output(learner, ds, doc, line, args.json)
    print(json.dumps(doc) if args.json else line)
    return 0


def evaluate_handler(args: argparse.Namespace) -> int:
    from tpprof.data.select import load_train_test
    from tpprof.train import check_fits, evaluate, learner_from_checkpoint, set_default_threads

    device = _setup(args)
    if args.net is not None:
        return _evaluate_nir(args, device)
    learner, cfg, meta = learner_from_checkpoint(args.checkpoint, device)
    if args.threads is None:
        set_default_threads(cfg, batch=256)  # evaluate's mini-batch
    data_meta = meta.get("data") or meta
    if not isinstance(data_meta, dict):
        data_meta = {}
    # Checkpoints are shared: the files they name are never read on their say-so. A checkpoint
    # trained on a user's file needs --data; FSDD is found by --data-dir / $TPPROF_FSDD / default.
    if args.data is None and data_meta.get("kind") == "file":
        raise UserError("data", f"the checkpoint was trained on {str(data_meta.get('path'))[:80]!r}, which is not "
                        "read from a shared checkpoint's metadata", "--data FILE naming the evaluation data")
    data = args.data or "fsdd"
    task = args.task or data_meta.get("task") or "digit"
    if task == "labels":
        task = "digit"
    feats = data_meta.get("features") or {}
    train, test, _ = load_train_test(data, task, data_dir=args.data_dir,
                                     steps=feats.get("steps") or data_meta.get("steps"),
                                     n_mels=feats.get("n_mels", 40), encoding=feats.get("encoding", "current"),
                                     test_path=None,
                                     holdout_speaker=data_meta.get("holdout_speaker") if data == "fsdd" else None,
                                     seed=int(meta.get("seed", 0)))
    ds = test if args.split == "test" else train
    check_fits(cfg, ds)
    acc = evaluate(learner, ds, device=device)
    doc = {"accuracy": acc, "n": len(ds), "split": args.split, "task": task, "data": data}
    line = f"accuracy {acc:.4f} on {len(ds)} {args.split} samples ({data}, {task})"
    if getattr(args, "neurobench", False):
        from tpprof.cli.export_cmds import neurobench_output

        return neurobench_output(learner, ds, doc, line, args.json)
    print(json.dumps(doc) if args.json else line)
    return 0


def finetune_handler(args: argparse.Namespace) -> int:
    from tpprof.data.fsdd import new_user_split, parse_shots
    from tpprof.data.select import load_fsdd_features
    from tpprof.train import check_seed, finetune, load_checkpoint, set_default_threads

    _check_positive("epochs", args.epochs)
    if str(args.data).lower() != "fsdd":
        raise UserError("data", f"{args.data!r} has no speakers", "fsdd (fine-tuning uses a speaker's recordings)")
    parse_shots(args.shots)
    check_seed(args.seed)
    device = _setup(args)
    start = None
    if args.net is not None:  # the file's weights; FSDD's default features
        ck_cfg, meta = _nir_config(args, steps=50, rule=args.rule, batch=args.batch, lr=args.lr), {}
    else:
        ck_cfg, _, meta = load_checkpoint(args.checkpoint)
    if args.threads is None:
        set_default_threads(ck_cfg)
    if args.net is not None:
        start = (_nir_learner(args.net, ck_cfg, device, args.seed), ck_cfg, {"net": args.net})
    data_meta = meta.get("data") or meta
    if data_meta.get("kind") not in (None, "fsdd"):
        raise UserError("checkpoint", "was not trained on fsdd", "a checkpoint from tpprof train --data fsdd")
    spec = {"data_dir": args.data_dir, "features": data_meta.get("features") or {}}  # no path from a shared file
    fs = load_fsdd_features(spec)
    task = args.task or "digit"
    split = new_user_split(fs, args.speaker, args.shots, args.seed, task)
    held = data_meta.get("holdout_speaker")
    if held != split.speaker and args.net is None:
        sys.stderr.write(f"tpprof finetune: warning: the checkpoint was pretrained with "
                         f"{'no speaker' if not held else held} held out, so {split.speaker}'s recordings may be in "
                         f"its training set; pretrain with --holdout-speaker {split.speaker} for a new-user figure\n")
    m = finetune(args.checkpoint or args.net, split.support, split.query, epochs=args.epochs, lr=args.lr,
                 seed=args.seed, out_dir=args.out, device=device, progress=not args.no_progress,
                 meta={"speaker": split.speaker, "shots": str(args.shots), "task": task}, start=start)
    print(f"{split.speaker}, {args.shots}-shot ({m['support_size']} support, {m['query_size']} query): "
          f"query accuracy before {m['before_accuracy']:.4f} -> after {m['after_accuracy']:.4f} -> {args.out}")
    print(finetune_memory_line(m["memory"]))
    return 0


def finetune_memory_line(mem: dict[str, Any]) -> str:
    """One line: the fine-tune's analytic peak; for TP both target-path layouts (batch vs classes)."""
    from tpprof.units import format_bytes

    head = f"memory at batch {mem['batch']} ({mem['classes']} classes), analytic peak (full): "
    if "peak_bytes_target_rows_batch" not in mem:
        return head + format_bytes(mem["peak_bytes"])
    b, c = mem["peak_bytes_target_rows_batch"], mem["peak_bytes_target_rows_classes"]
    return (head + f"TP target_rows=batch {format_bytes(b)}, target_rows=classes {format_bytes(c)} "
            f"(K = {mem['target_rows_classes_k']}, {c / b:.2f}x); this run used target_rows={mem['target_rows']}")
