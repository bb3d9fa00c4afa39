"""One meaning per flag name across every ``tpprof`` subcommand.

:data:`FLAG_MEANINGS` is the register every subcommand's flags come from: a flag's name, where
it is stored (``dest``), whether it takes a value, what it means, and a pattern its ``--help``
text must match in every subcommand that has it. ``tests/test_flag_meanings.py`` builds every
subcommand's parser and fails when a flag is missing here or departs from its entry; the README's
flag table is this register. A new flag gets an entry here (its meaning, once).

RuleSpec fields (``--optimizer``, ``--lr``, ``--segment``, ...) are added by
:func:`tpprof.cli.config_flags.add_config_flags` from one place, and enter the register from
:data:`tpprof.cli.config_flags.RULE_HELP`.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Meaning(NamedTuple):
    """What a flag name means wherever it appears."""

    dest: str  # the argparse attribute
    takes_value: bool  # False: a switch (store_true)
    meaning: str  # one line, for the README's table
    help_pattern: str  # a regex (case-insensitive) every subcommand's help text for it matches


FLAG_MEANINGS: dict[str, Meaning] = {
    # what is profiled
    "--net": Meaning("net", True, "the net: a preset, a net string or a .nir file", r"preset|net"),
    "--rule": Meaning("rule", True, "the learning rule(s)", r"learning rule"),
    "--batch": Meaning("batch", True, "batch size B", r"batch size"),
    "--classes": Meaning("classes", True, "classes C (the readout's size)", r"classes"),
    "--steps": Meaning("steps", True, "time steps T per sequence", r"time steps"),
    "--dtype": Meaning("dtype", True, "element type of every tensor", r"element type"),
    "--config": Meaning("config", True, "a TOML/JSON config file", r"config file"),
    "--accounting": Meaning("accounting", True, "what memory counts: full, algorithm, paper, paper+s", r"full"),
    # where it runs, and the memory it must fit
    "--device": Meaning("device", True, "a catalogue device (tpprof devices) whose memory is the budget",
                        r"tpprof devices|catalogue"),
    "--devices": Meaning("devices", True, "an extra device catalogue file", r"device (catalogue|file)|catalogue"),
    "--budget": Meaning("budget", True, "a memory budget (bytes or a size with unit)", r"budget"),
    "--backend": Meaning("backend", True, "where the steps run: cpu, cuda, cuda:N (measure also: qemu:<core>)",
                         r"where the steps run"),
    "--locality": Meaning("locality", True, "limit best alternatives to locality classes: local, time-local, "
                          "through-time", r"locality"),
    "--largest": Meaning("largest", True, "what fit maximises: batch, classes, width, depth, trained-layers",
                         r"maximise"),
    "--kind": Meaning("kind", True, "a kind of catalogue device", r"mcu"),
    "--threads": Meaning("threads", True, "torch CPU threads", r"threads"),
    "--executor": Meaning("executor", True, "where measurement points run: local or ray:...", r"local"),
    "--jobs": Meaning("jobs", True, "parallel worker processes", r"process"),
    "--nir-dt": Meaning("nir_dt", True, "the dt in seconds of a NIR graph that has none", r"dt"),
    # data and training
    "--data": Meaning("data", True, "the data: fsdd or a .npz/.h5 file", r"fsdd"),
    "--data-dir": Meaning("data_dir", True, "the folder with the FSDD recordings", r"FSDD"),
    "--task": Meaning("task", True, "FSDD labels: digit, speaker or digit-speaker", r"digit"),
    "--test-data": Meaning("test_data", True, "a separate test file", r"test file"),
    "--epochs": Meaning("epochs", True, "training epochs", r"epochs"),
    "--seed": Meaning("seed", True, "the random seed", r"seed"),
    "--limit": Meaning("limit", True, "use the first N training samples", r"first N"),
    "--test-limit": Meaning("test_limit", True, "use the first N test samples", r"first N test"),
    "--seeds": Meaning("seeds", True, "runs per learner, seeds 0..N-1", r"seeds"),
    "--measure": Meaning("measure", False, "also measure each learner's training peak", r"measure"),
    "--markdown": Meaning("markdown", False, "print the table as markdown", r"markdown"),
    "--freeze-hidden": Meaning("freeze_hidden", False, "hidden layers stay at their random init", r"hidden"),
    "--holdout-speaker": Meaning("holdout_speaker", True, "an FSDD speaker left out of pretraining", r"speaker"),
    "--mels": Meaning("mels", True, "FSDD mel bands", r"mel"),
    "--encoding": Meaning("encoding", True, "FSDD input encoding: current or delta", r"delta"),
    "--reset": Meaning("reset", True, "the neurons' reset: soft or hard", r"reset"),
    "--readout": Meaning("readout", True, "how export writes the readout in NIR", r"readout"),
    "--resume": Meaning("resume", False, "continue the run in --out", r"continue"),
    "--force": Meaning("force", False, "replace another run's files in --out", r"replace"),
    "--checkpoint": Meaning("checkpoint", True, "a model.pt written by tpprof train", r"model\.pt"),
    "--split": Meaning("split", True, "which split to score", r"split"),
    "--neurobench": Meaning("neurobench", False, "also NeuroBench's metrics", r"NeuroBench"),
    "--speaker": Meaning("speaker", True, "the new FSDD speaker to fine-tune for", r"speaker"),
    "--shots": Meaning("shots", True, "takes per digit in the support set", r"support"),
    "--no-progress": Meaning("no_progress", False, "hide the progress bars", r"progress"),
    # measurement
    "--grid": Meaning("grid", True, "a TOML grid file of points", r"grid"),
    "--batches": Meaning("batches", True, "measured mini-batches per point", r"mini-batches"),
    "--repeats": Meaning("repeats", True, "timed mini-batches per point", r"timed"),
    "--warmup": Meaning("warmup", True, "warm-up mini-batches per point", r"warm-up"),
    "--timeout": Meaning("timeout", True, "seconds per point before it times out", r"seconds"),
    "--no-rss": Meaning("no_rss", False, "skip the RSS counter", r"RSS"),
    "--retry-failed": Meaning("retry_failed", False, "rerun points recorded as failed", r"rerun"),
    "--dry-run": Meaning("dry_run", False, "list the points and exit", r"list"),
    "--explain": Meaning("explain", False, "profile one point and list what is live at its peak", r"profile"),
    "--quiet": Meaning("quiet", False, "no progress bar", r"progress"),
    "--measurements": Meaning("measurements", True, "a measurement CSV or a folder of them", r"measurement"),
    "--tolerance": Meaning("tolerance", True, "the fraction beyond which a point is flagged", r"fraction"),
    "--categories": Meaning("categories", False, "also measured vs analytic per category", r"per category"),
    "--strict": Meaning("strict", False, "exit 1 when a point is out of tolerance", r"exit 1"),
    # output
    "--out": Meaning("out", True, "the file or folder written", r"output|write|append"),
    "--json": Meaning("json", False, "print JSON instead of a table or line", r"JSON"),
    "--per-layer": Meaning("per_layer", False, "one row per layer's term", r"per layer|layer's"),
    "--results": Meaning("results", True, "a training results folder", r"results"),
    "--no-titles": Meaning("no_titles", False, "figures without a title", r"title"),
    "--size": Meaning("size", True, "a figure's page size in inches, WxH", r"inches"),
    "--port": Meaning("port", True, "the dashboard's TCP port", r"port"),
    "--address": Meaning("address", True, "the address the dashboard binds", r"address"),
}


def rule_flag_meanings() -> dict[str, Meaning]:
    """The register's entries for the RuleSpec flags (one per field, from RULE_HELP)."""
    from tpprof.cli.config_flags import RULE_HELP, _flag, rule_fields

    out = {}
    for f in rule_fields():
        text = RULE_HELP[f.name]
        out[_flag(f.name)] = Meaning(f.name, True, text.split(";")[0], re.escape(text[:12]))
    return out


def all_flag_meanings() -> dict[str, Meaning]:
    """:data:`FLAG_MEANINGS` with the RuleSpec flags."""
    return {**rule_flag_meanings(), **FLAG_MEANINGS}
