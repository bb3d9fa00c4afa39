"""Which learning rule learns this task best within this device: train every rule, rank them.

``tpprof compare`` trains every trainable learner (:data:`tpprof.config.TRAINABLE_RULES`) plus
TP's two modes (the class-deduplicated target path, ``target_rows=classes``, and the authors'
flavour) on one task, ``seeds`` times each, through the ordinary training loop
(:func:`tpprof.train.fit`: cosine schedule, the short last mini-batch dropped, test accuracy
after every epoch), and writes one results file with one row per run.

Honesty rules of the file:

* accuracy is the **final epoch's** test accuracy (``test_final``), never the best epoch picked
  on the test set;
* memory is the analytic peak under two named accountings (``peak_bytes_full``: the PyTorch
  learner's, implementation temporaries included; ``peak_bytes_algorithm``: what a lean
  implementation must hold), plus a measured peak when ``--measure`` ran one
  (``measured_peak_bytes``, the profiler counter of :mod:`tpprof.measure`);
* which accounting decides "fits" follows the device (:func:`tpprof.analytic.devices.device_accounting`) and is named
  wherever a verdict is printed.

Resuming: every run has its own folder ``OUT/runs/<label>-s<seed>`` that :func:`tpprof.train.fit`
rewrites after every epoch (weights, optimiser, shuffling and RNG state), so a killed comparison
started again continues each run after its last complete epoch, and the results file, rebuilt
from the run folders in plan order, equals an uninterrupted run's except in the wall-time
columns (:data:`TIMING_COLUMNS`).

Ranking (:func:`rank`): per learner the mean ± sample sd of the final accuracy over seeds; the
learners that fit the device (peak ≤ budget under the device's accounting) and learn there
(:func:`learns`) come first, by mean accuracy, then by peak; :func:`pareto` gives the
accuracy × peak front (no other learner at least as accurate with no more memory, one strictly).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tpprof.analytic.devices import device_accounting
from tpprof.config import TRAINABLE_RULES, Config, RuleSpec
from tpprof.device import Device
from tpprof.errors import UserError

#: Learning rate per rule (Adam, B = 32, the FSDD net): tp, tess and bptt from the coarse sweep of
#: docs/results.md; tess-authors-schedule: the authors' default (their main.py ``--lr`` 1e-3,
#: docs/tess_authors.md D13); the other BPTT-family learners: BPTT's; OTTT: 1e-4 (seed 0, two
#: epochs of FSDD digits: 1e-3 stayed at chance, 10 %; 1e-4 reached 76 %). Not tuned further.
RULE_LR: dict[str, float] = {"tp": 1e-4, "tess": 1e-4, "bptt": 1e-3, "tess-authors-schedule": 1e-3,
                             "bptt-compact": 1e-3, "bptt-ckpt": 1e-3, "tbptt": 1e-3, "ottt": 1e-4}


@dataclass(frozen=True)
class Learner:
    """One learner of a comparison: a rule, a mode (RuleSpec changes) and its learning rate."""

    label: str
    rule: str
    mode: str = "default"
    changes: tuple[tuple[str, Any], ...] = ()

    @property
    def lr(self) -> float:
        return RULE_LR[self.rule]

    def config(self, base: Config) -> Config:
        """``base`` with this learner's rule, learning rate and mode."""
        return base.with_(name=self.rule, lr=self.lr, **dict(self.changes))


#: TP's modes beside the paper's: the target path once per class present (same updates, less
#: memory; docs/results.md §6a) and the authors' published code (docs/tp_authors.md).
TP_MODES: tuple[Learner, ...] = (
    Learner("tp-classes", "tp", "target_rows=classes", (("target_rows", "classes"),)),
    Learner("tp-authors", "tp", "flavour=authors", (("flavour", "authors"),)),
)
LEARNERS: tuple[Learner, ...] = tuple(Learner(r, r) for r in TRAINABLE_RULES) + TP_MODES
LEARNER_LABELS: tuple[str, ...] = tuple(lr.label for lr in LEARNERS)

#: Columns of the results file, in order.
COLUMNS: tuple[str, ...] = (
    "label", "rule", "mode", "seed", "epochs", "test_final", "train_final", "data", "task", "net_string",
    "batch", "classes", "steps", "dtype", "optimizer", "lr", "n_train", "n_test",
    "peak_bytes_full", "peak_bytes_algorithm", "measured_peak_bytes", "measured_counter", "macs_per_step",
    "ms_per_step", "seconds_per_epoch", "backend", "threads", "tpprof_version", "torch_version",
    "python_version", "learner_hash", "config_json",
)
#: Wall-time columns: the only ones an interrupted-and-resumed comparison may change.
TIMING_COLUMNS: tuple[str, ...] = ("ms_per_step", "seconds_per_epoch")
RESULTS_FILE = "results.csv"
RUNS_DIR = "runs"


def parse_learners(text: str | Sequence[str] | None, base: Config | None = None) -> list[Learner]:
    """``all`` (every learner that accepts ``base``'s net) or a comma-separated list of labels."""
    items = [str(t).strip().lower() for t in ([text] if isinstance(text, str) or text is None else text)]
    items = [x for t in items for x in (t or "all").split(",")]
    if any(not x for x in items):
        raise UserError("rules", f"{text!r} has an empty item", "all, or labels such as tp,tess,bptt")
    if items == ["all"]:
        chosen = list(LEARNERS)
    else:
        by = {lr.label: lr for lr in LEARNERS}
        bad = [x for x in items if x not in by]
        if bad:
            raise UserError("rules", f"{bad[0]!r} is not a trainable learner", "all, or " + ", ".join(LEARNER_LABELS))
        chosen = [by[x] for x in dict.fromkeys(items)]
    if base is None:
        return chosen
    ok = []
    for lr in chosen:
        try:
            lr.config(base)
        except UserError:
            if items != ["all"]:
                raise
            continue  # "all": the learners that accept this net (the authors' TESS refuses recurrent layers)
        ok.append(lr)
    return ok


# --------------------------------------------------------------------------------------
# The plan and one run
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """How every worker loads the task (the arguments of :func:`tpprof.data.select.load_train_test`)."""

    data: str = "fsdd"
    task: str = "digit"
    data_dir: str | None = None
    test_data: str | None = None
    limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True)
class Job:
    """One training run of a comparison (picklable: it travels to a worker process)."""

    learner: Learner
    seed: int
    cfg_json: str
    out: str
    epochs: int
    data: DataSpec
    backend: str = "cpu"
    threads: int = 1


def run_folder(out: str | Path, learner: Learner, seed: int) -> Path:
    return Path(out) / RUNS_DIR / f"{learner.label}-s{seed}"


def plan(base: Config, learners: Sequence[Learner], seeds: Sequence[int], epochs: int, out: str | Path,
         data: DataSpec, backend: str = "cpu", threads: int = 1) -> list[Job]:
    """Every (learner, seed) run, learner-major (the order of the results file)."""
    return [Job(lr, s, lr.config(base).to_json(), str(run_folder(out, lr, s)), epochs, data, backend, threads)
            for lr in learners for s in seeds]


def load_data(spec: DataSpec, seed: int = 0) -> tuple[Any, Any, dict[str, Any]]:
    """(train, test, meta) of the comparison's task, cut to ``limit`` / ``test_limit`` samples."""
    from tpprof.data.select import load_train_test

    train, test, meta = load_train_test(spec.data, spec.task, data_dir=spec.data_dir, test_path=spec.test_data,
                                        seed=seed)
    train, test = train.head(spec.limit), test.head(spec.test_limit)
    meta = dict(meta, limit=spec.limit, test_limit=spec.test_limit)
    return train, test, meta


def _done(metrics: Mapping[str, Any] | None, job: Job) -> bool:
    return bool(metrics) and metrics.get("status") == "done" and metrics.get("epochs_planned") == job.epochs


def train_job(job: Job, _protocol: Any = None) -> dict[str, Any]:
    """Train one run (continuing it after its last complete epoch when its folder holds one);
    returns its results row. Runs in a worker process."""
    import torch

    from tpprof.train import CHECKPOINT, fit, read_metrics

    torch.set_num_threads(job.threads)
    cfg = Config.from_dict(json.loads(job.cfg_json))
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    # One writer per run folder: a worker left over from a killed comparison may still be training
    # this run; wait for it (the lock goes with its process) rather than write the folder twice.
    with (out / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        m = read_metrics(out)
        if not _done(m, job):
            train, test, meta = load_data(job.data, job.seed)
            resume = (out / CHECKPOINT).is_file()  # the last complete epoch's state (history included)
            m = fit(cfg, train, test, epochs=job.epochs, seed=job.seed, out_dir=out, device=job.backend,
                    progress=False, meta=meta, resume=resume)
            m.pop("learner", None)
    return result_row(job.learner, cfg, m, job)


def result_row(learner: Learner, cfg: Config, m: Mapping[str, Any], job: Job) -> dict[str, Any]:
    """The results row of one finished run, from its metrics (``metrics.json``) and the analytic model."""
    from tpprof._version import __version__
    from tpprof.analytic import estimate

    full, algo = estimate(cfg, "full"), estimate(cfg, "algorithm")
    hist = m.get("history") or []
    n_batches = max(1, int(m["n_train"]) // int(m["batch"]))
    ms = statistics.mean(h["train_seconds"] for h in hist) * 1e3 / (n_batches * cfg.workload.steps) if hist else None
    measured = _read_measured(Path(job.out).parent / f"{learner.label}.measured.json")
    data = m.get("data") or {}
    return {
        "label": learner.label, "rule": learner.rule, "mode": learner.mode, "seed": job.seed, "epochs": m["epochs"],
        "test_final": m["test_final"], "train_final": m["train_accuracy"],
        "data": data.get("path") if data.get("kind") == "file" else data.get("kind", ""),
        "task": data.get("task", ""), "net_string": cfg.net.to_string(), "batch": m["batch"],
        "classes": cfg.workload.classes, "steps": cfg.workload.steps, "dtype": cfg.workload.dtype,
        "optimizer": cfg.rule.optimizer, "lr": cfg.rule.lr, "n_train": m["n_train"], "n_test": m["n_test"],
        "peak_bytes_full": int(full.peak_bytes), "peak_bytes_algorithm": int(algo.peak_bytes),
        "measured_peak_bytes": measured.get("peak_bytes"), "measured_counter": measured.get("counter"),
        "macs_per_step": int(full.macs_per_step), "ms_per_step": ms, "seconds_per_epoch": m.get("seconds_per_epoch"),
        "backend": job.backend, "threads": job.threads, "tpprof_version": __version__,
        "torch_version": _torch_version(), "python_version": platform.python_version(),
        "learner_hash": _learner_hash(), "config_json": cfg.to_json(),
    }


def _torch_version() -> str:
    try:
        import torch

        return str(torch.__version__)
    except ImportError:  # pragma: no cover - a results file read without torch
        return ""


def _learner_hash() -> str:
    from tpprof.store import learner_hash

    return learner_hash()


def _read_measured(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) and d.get("status") == "ok" else {}


def measure_learner(args: tuple[Learner, str, str, str], _protocol: Any = None) -> dict[str, Any]:
    """Measured training peak of one learner's config (profiler counter, a fresh subprocess:
    :func:`tpprof.measure.grid.run_subprocess`), written to ``<runs>/<label>.measured.json``."""
    from tpprof.measure.grid import Point, Protocol, run_subprocess
    from tpprof.train import atomic_write_text

    learner, cfg_json, backend, folder = args
    path = Path(folder) / f"{learner.label}.measured.json"
    old = _read_measured(path)
    if old:
        return old
    cfg = Config.from_dict(json.loads(cfg_json))
    row = run_subprocess(Point(cfg, cfg.net.to_string(), backend), Protocol(repeats=1, rss=False), timing=False)
    keep = {k: row.get(k) for k in ("status", "error", "peak_bytes", "counter", "peak_definition")}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(keep, indent=1, sort_keys=True, default=str))
    return keep


# --------------------------------------------------------------------------------------
# The results file
# --------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def rows_to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in COLUMNS])
    return buf.getvalue()


def write_results(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write the results file atomically (a kill never leaves half a file)."""
    from tpprof.train import atomic_write_text

    p = Path(path)
    atomic_write_text(p, rows_to_csv(rows))
    return p


_INT_COLS = ("seed", "epochs", "batch", "classes", "steps", "n_train", "n_test", "peak_bytes_full",
             "peak_bytes_algorithm", "measured_peak_bytes", "macs_per_step", "threads")
_FLOAT_COLS = ("test_final", "train_final", "lr", "ms_per_step", "seconds_per_epoch")


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a results file, typed (empty cells → None); one-line errors for a foreign file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError("results", f"{p.name} is not UTF-8 text", "a results.csv written by tpprof compare") from None
    except OSError as e:
        raise UserError("results", f"cannot read {str(p)!r}: {e.strerror or type(e).__name__}",
                        "a results.csv written by tpprof compare") from None
    try:
        reader = csv.DictReader(io.StringIO(text))
        raws = list(reader)
    except csv.Error as e:
        raise UserError("results", f"{p.name} does not parse as CSV ({e})", "a results.csv written by tpprof compare") \
            from None
    missing = [c for c in ("label", "rule", "seed", "test_final", "peak_bytes_full", "peak_bytes_algorithm")
               if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError("results", f"{p.name} lacks the column {missing[0]!r}",
                        "a results.csv written by tpprof compare")
    rows = []
    for i, raw in enumerate(raws, start=2):
        row: dict[str, Any] = {}
        for k, v in raw.items():
            if k is None:
                continue
            v = (v or "").strip()
            try:
                row[k] = None if v == "" else int(v) if k in _INT_COLS else float(v) if k in _FLOAT_COLS else v
            except ValueError:
                raise UserError("results", f"{p.name} line {i}: {k} = {v[:30]!r} is not a number",
                                "a results.csv written by tpprof compare") from None
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------


def _rule_spec(s: Mapping[str, Any]) -> RuleSpec:
    """The RuleSpec of a results row (its ``config_json``; a bare rule name when the file has none)."""
    text = s.get("config_json")
    if text:
        try:
            return Config.from_dict(json.loads(str(text))).rule
        except (ValueError, TypeError, KeyError, UserError):
            pass
    return RuleSpec(name=str(s["rule"]))


def learns(rule: RuleSpec, batch: int, classes: int, device: Device | None) -> tuple[bool, str]:
    """Whether ``rule`` at (``batch``, ``classes``) learns anything on ``device``, and why not: the
    device must run the rule's locality class (``Device.learning_capability``) and the point must
    meet the rule's conditions (minimum batch: TP's local loss is identically zero at B = 1; two
    classes at least) — both from :mod:`tpprof.analytic.learnability`."""
    from tpprof.analytic import learnability as la

    if device is not None and not device.can_learn:
        return False, f"{device.name} runs inference only"
    if device is not None and not la.device_runs(device, rule):
        return False, f"{device.name} cannot run a {la.locality(rule)} rule"
    reasons = la.why_not(rule, batch, classes)
    return (not reasons), (reasons[0].split(":")[0] if reasons else "")


def summarise(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per learner (first-seen order): seeds, mean and sample sd of the final accuracy,
    the analytic peaks, measured peak, MACs and mean ms per step."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r["label"]), []).append(r)
    out = []
    for label, g in groups.items():
        accs = [float(r["test_final"]) for r in g]  # NaN when no accuracy is known (memory_frame)
        ms = [float(r["ms_per_step"]) for r in g if r.get("ms_per_step") is not None]
        meas = [r.get("measured_peak_bytes") for r in g if r.get("measured_peak_bytes") is not None]
        out.append({
            "label": label, "rule": g[0]["rule"], "mode": g[0].get("mode", "default"), "seeds": len(g),
            "acc_mean": statistics.mean(accs), "acc_sd": statistics.stdev(accs) if len(accs) > 1 else float("nan"),
            "peak_bytes_full": int(g[0]["peak_bytes_full"]), "peak_bytes_algorithm": int(g[0]["peak_bytes_algorithm"]),
            "measured_peak_bytes": int(meas[0]) if meas else None, "batch": int(g[0].get("batch") or 0),
            "macs_per_step": g[0].get("macs_per_step"), "ms_per_step": statistics.mean(ms) if ms else None,
            "epochs": g[0].get("epochs"), "classes": int(g[0].get("classes") or 0),
            "config_json": g[0].get("config_json"),
        })
    return out


def rank(summary: Iterable[Mapping[str, Any]], device: Device | None = None,
         accounting: str | None = None) -> list[dict[str, Any]]:
    """The summary with ``peak_bytes`` (under ``accounting``, default the device's), ``fits``,
    ``learns``, ``why_not`` and ``rank`` added, sorted: learners that fit and learn first, by mean
    accuracy (descending) then peak (ascending); then the others in the same order (``rank`` None)."""
    acc = accounting or device_accounting(device)[0]  # no device: full
    out = []
    for s in summary:
        r = dict(s)
        r["accounting"] = acc
        r["peak_bytes"] = int(s[f"peak_bytes_{acc}"])
        r["fits"] = device is None or r["peak_bytes"] <= device.budget_bytes
        ok, why = learns(_rule_spec(s), int(s.get("batch") or 0), int(s.get("classes") or 2), device)
        r["learns"] = ok
        r["why_not"] = why if not ok else ("" if r["fits"] else "does not fit")
        out.append(r)
    # accuracies equal to 9 decimals are a tie (float summation order must not rank), broken by peak;
    # an unknown accuracy (NaN: no results for this net) ranks after every known one
    key = lambda r: (-_acc_key(r["acc_mean"]), r["peak_bytes"], r["label"])  # noqa: E731
    good = sorted((r for r in out if r["fits"] and r["learns"]), key=key)
    rest = sorted((r for r in out if not (r["fits"] and r["learns"])), key=key)
    for i, r in enumerate(good, start=1):
        r["rank"] = i
    for r in rest:
        r["rank"] = None
    return good + rest


def _acc_key(v: float) -> float:
    return -1.0 if v != v else round(float(v), 9)


def best(ranked: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most accurate learner that fits and learns (the first of :func:`rank`), or None."""
    return ranked[0] if ranked and _rank_of(ranked[0]) == 1 else None


def pareto(summary: Iterable[Mapping[str, Any]], accounting: str = "full") -> list[str]:
    """Labels on the accuracy × peak front, by increasing peak: no other learner has mean accuracy
    ≥ and peak ≤ with one of them strict."""
    pts = [(int(s[f"peak_bytes_{accounting}"]), round(float(s["acc_mean"]), 9), str(s["label"])) for s in summary]
    front = []
    for p, a, lab in pts:
        if not any((p2 <= p and a2 >= a) and (p2 < p or a2 > a) for p2, a2, _ in pts):
            front.append((p, -a, lab))
    return [lab for _, _, lab in sorted(front)]


def _rank_of(r: Mapping[str, Any]) -> int | None:
    """A row's rank as an int; None (or NaN, from a DataFrame) when it does not fit or learn."""
    v = r.get("rank")
    return None if v is None or v != v else int(v)


def tp_place(ranked: Sequence[Mapping[str, Any]], label: str = "tp") -> dict[str, Any] | None:
    """TP's place among the learners that fit and learn, and its margin: accuracy points behind the
    first (or ahead of the second when first) and its peak against theirs."""
    tp = next((r for r in ranked if r["label"] == label), None)
    if tp is None:
        return None
    ok = sorted((r for r in ranked if _rank_of(r)), key=_rank_of)
    place = _rank_of(tp)
    if place is None:
        return {"label": label, "rank": None, "of": len(ok), "why_not": tp.get("why_not", "")}
    other = (ok[1] if len(ok) > 1 else None) if place == 1 else ok[0]
    return {"label": label, "rank": place, "of": len(ok), "versus": other["label"] if other else None,
            "acc_points": 100 * (tp["acc_mean"] - other["acc_mean"]) if other else None,
            "peak_ratio": tp["peak_bytes"] / other["peak_bytes"] if other else None}


# --------------------------------------------------------------------------------------
# Tables for the report and the dashboard
# --------------------------------------------------------------------------------------

COMPARISON_GLOB = "compare_*.csv"  # how shipped comparison files are named in the results folder


def load_comparisons(folder: str | Path | None = None) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The comparison results (``compare_*.csv``, written by ``tpprof compare``) in the results
    folder (default :func:`tpprof.resources.results_dir`), by file stem, and one-line problems for
    files that do not load."""
    from tpprof import resources

    d = Path(folder) if folder else resources.results_dir()
    out: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for p in sorted(d.glob(COMPARISON_GLOB)) if d.is_dir() else []:
        try:
            rows = load_results(p)
        except UserError as e:
            problems.append(str(e))
            continue
        if rows:
            out[p.stem] = rows
    return out, problems


def hidden_part(net_string: str) -> str:
    """A net string without its readout (``40-256-256-10`` → ``40-256-256``): results of one net
    trained on tasks with different class counts share it."""
    return net_string.rsplit("-", 1)[0]


def ranking_frame(rows: Sequence[Mapping[str, Any]], device: Device | None = None,
                  accounting: str | None = None) -> "Any":
    """:func:`rank` of the rows as a DataFrame with ``pareto`` (on the front) and ``fits_learns``;
    one row per learner, ranked learners first."""
    import pandas as pd

    summary = summarise(rows)
    ranked = rank(summary, device, accounting)
    acc = ranked[0]["accounting"] if ranked else (accounting or "full")
    front = set(pareto(summary, acc))
    df = pd.DataFrame(ranked)
    if df.empty:
        return df
    df["pareto"] = df["label"].isin(front)
    df["fits_learns"] = df["rank"].notna()
    return df


def memory_frame(base: Config, device: Device | None = None, learners: Sequence[Learner] = LEARNERS) -> "Any":
    """The learners ranked by memory alone at ``base`` (no accuracy known: ``acc_mean`` NaN), as
    :func:`ranking_frame` — what the device page shows for a net without comparison results."""
    from tpprof.analytic import estimate

    rows = []
    for lr in learners:
        try:
            cfg = lr.config(base)
        except UserError:
            continue  # a learner that refuses this net (e.g. the authors' TESS and recurrent layers)
        full = estimate(cfg, "full")
        rows.append({"label": lr.label, "rule": lr.rule, "mode": lr.mode, "seed": 0, "test_final": float("nan"),
                     "batch": cfg.workload.batch, "classes": cfg.workload.classes, "config_json": cfg.to_json(),
                     "peak_bytes_full": int(full.peak_bytes),
                     "peak_bytes_algorithm": int(estimate(cfg, "algorithm").peak_bytes),
                     "macs_per_step": int(full.macs_per_step)})
    df = ranking_frame(rows, device)
    if not df.empty:
        df["seeds"] = 0
        df["pareto"] = False  # no accuracy: no accuracy × peak front
    return df
