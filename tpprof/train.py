"""Train, evaluate and fine-tune a learner of :mod:`tpprof.snn` on an :class:`ArrayDataset`.

Loop (one epoch): shuffle with a seeded generator; cut mini-batches of B; **drop** a final
mini-batch shorter than B — with an update at every time step it would still receive T
optimiser steps from fewer samples and skew the weights just before evaluation (reference
§12) — then ``learner.train_batch(x, y)`` per mini-batch; then the test accuracy
(argmax of the readout potential m^T, input path only).

Learning rate: cosine schedule per epoch, as the reference code's ``CosineAnnealingLR``
stepped once per epoch with T_max = epochs and η_min = 0.25 η:
    η_e = η_min + (η − η_min) (1 + cos(π e / E)) / 2,   e = 0..E−1.

Files (``out_dir``): ``metrics.json`` and ``model.pt``, both rewritten after every epoch by
writing a temporary file and renaming it over the old one (atomic on POSIX), so an
interruption (Ctrl-C, kill -9) leaves the last complete epoch's files intact and no
temporary file once the folder is used again; ``metrics.json`` then says ``"status":
"interrupted"`` (Ctrl-C), or ``"running"`` with a ``pid`` that is gone (kill -9), which
:func:`read_metrics` reports as interrupted. ``fit(..., resume=True)`` (``tpprof train --resume``)
continues after the last complete epoch with the saved optimiser, shuffling and RNG states. ``model.pt`` is a plain dict of tensors and strings that
loads with ``torch.load(..., weights_only=True)``: ``state_dict``, ``config_json``
(:meth:`Config.to_json`) and ``meta_json`` ({"data": how to load the data again — kind,
task, features, held-out speaker —, "epoch", "seed", "test_accuracy"}).

The training accuracy in the metrics is counted online, during the epoch, from the
predictions ``train_batch`` makes while it learns (no second pass over the training set).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tpprof.config import Config
from tpprof.data.arrays import ArrayDataset
from tpprof.errors import UserError

METRICS = "metrics.json"
CHECKPOINT = "model.pt"
ETA_MIN_FRACTION = 0.25


# --------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------


def cosine_lr(base: float, epoch: int, epochs: int, eta_min_fraction: float = ETA_MIN_FRACTION) -> float:
    """η_e = η_min + (η − η_min)(1 + cos(π e / E)) / 2 with η_min = 0.25 η (e is 0-based)."""
    eta_min = eta_min_fraction * base
    return eta_min + (base - eta_min) * (1.0 + math.cos(math.pi * epoch / max(1, epochs))) / 2.0


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename it over ``path``
    (:func:`tpprof.store.atomic_write`; an exception leaves no temporary file)."""
    from tpprof.store import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    from tpprof.store import atomic_write

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _optimizer_tensors(learner: Any) -> Any:
    """("opt.<i>.<j>.<key>", tensor) of every layer optimiser's state (i: optimiser, j: its parameter)."""
    for i, opt in enumerate(getattr(learner, "_optims", [])):
        for j, prm in enumerate(opt.params if opt is not None else ()):  # a frozen layer has no optimiser
            for key, val in opt.state.get(prm, {}).items():
                yield f"opt.{i}.{j}.{key}", val


def optimizer_state(learner: Any) -> dict[str, Any]:
    """Every layer optimiser's tensors as ``{"opt.<i>.<j>.<key>": tensor}`` (i: optimiser, j: its
    parameter), for an exact ``--resume``; empty for learners without ``_optims``."""
    return {name: val.detach().to("cpu").clone() for name, val in _optimizer_tensors(learner)}


def load_optimizer_state(learner: Any, state: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_state` (shapes checked; a missing entry is an error)."""
    import torch

    for name, val in _optimizer_tensors(learner):
        src = state.get(name)
        if not torch.is_tensor(src) or tuple(src.shape) != tuple(val.shape):
            raise UserError("resume", f"the checkpoint's optimiser state lacks or mis-shapes {name}",
                            "a model.pt written by this tpprof train with the same net, rule and optimiser")
        with torch.no_grad():
            val.copy_(src.to(device=val.device, dtype=val.dtype))


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` (an int) still runs on this machine."""
    try:
        pid = int(pid)
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    except (TypeError, ValueError):
        return False
    return True


def read_metrics(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``out_dir/metrics.json``, with a ``"running"`` status whose writer process is gone (killed,
    machine reset) reported as ``"interrupted"`` (``"interrupted_by": "the process ended"``)."""
    p = Path(out_dir) / METRICS
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(m, dict) and m.get("status") == "running" and not pid_alive(m.get("pid")):
        m["status"] = "interrupted"
        m["interrupted_by"] = "the process ended (killed or crashed) during the run"
    return m if isinstance(m, dict) else None


#: Per-step multiply-accumulates (B × trainable parameters) below which one thread is used.
THREADS_MIN_MACS = 1e8
#: The most threads the default ever picks (per-step work here is a chain of small kernels).
THREADS_MAX = 4


def default_threads(cfg: Config, batch: int | None = None, cores: int | None = None,
                    load: float | None = None) -> int:
    """Torch CPU threads for train / evaluate / finetune when neither ``--threads`` nor
    ``$OMP_NUM_THREADS`` says: 1 unless the per-step work is large *and* cores are idle.

    Rule: MACs = B · n_params (one time step's dense work); if MACs < :data:`THREADS_MIN_MACS`
    (1e8) → 1 thread; else min(:data:`THREADS_MAX`, ⌊cores − load⌋) with ``load`` the 1-minute
    load average (cores busy with other work), at least 1.

    Measurement (``python bench/bench_threads.py``, 2-core machine shared with 5 other jobs,
    load 2.5; per-step ms at 1 → 2 threads): tp 40-256-256-10 B=32 (2.5e6 MACs, FSDD default)
    2.3 → 43.1 (18.6×); bptt same 2.0 → 17.0 (8.5×); tp B=128 (1.0e7) 8.5 → 51.9 (6.1×);
    tp 700-450-450-20 B=128 (6.7e7) 14.2 → 90.7 (6.4×); tp 700-1024-1024-20 B=256 (4.6e8)
    92 → 308 (3.4×); tp 700-2048-2048-20 B=256 (1.5e9) 281 → 1199 (4.3×). Under load every size
    was slower with 2 threads, which the load term turns into 1 thread; on an idle machine
    small work still loses to thread hand-off (the 1e8 threshold), large work can gain (not
    measured here: no idle multi-core machine was available).
    """
    if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"].strip()))
    b = batch if batch is not None else cfg.workload.batch
    macs = float(b) * float(cfg.net.n_params())
    if macs < THREADS_MIN_MACS:
        return 1
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # pragma: no cover
            load = 0.0
    return int(max(1, min(THREADS_MAX, math.floor(cores - load))))


def set_default_threads(cfg: Config, batch: int | None = None) -> int:
    """``torch.set_num_threads(default_threads(cfg, batch))``; returns the count."""
    import torch

    n = default_threads(cfg, batch)
    torch.set_num_threads(n)
    return n


def resolve_device(device: str) -> str:
    import torch

    d = str(device).strip().lower()
    if d not in ("cpu", "cuda") and not d.startswith("cuda:"):
        raise UserError("backend", f"{str(device)[:40]!r} is not known", "cpu, cuda, cuda:N")
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("backend", "CUDA is not available on this machine", "cpu")
    return d


def check_seed(seed: Any) -> int:
    """A seed is an integer 0..2^32−1 (numpy's and torch's generators both take it)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UserError("seed", f"{str(seed)[:40]!r} is not a seed", "an integer 0..4294967295, e.g. --seed 1")
    return seed


def check_memory(cfg: Config, field: str = "net", available: int | None = None) -> None:
    """Refuse, with the figures, a learner whose analytic peak (full accounting) exceeds the
    memory available now, before anything is allocated (a label 10⁹ in a data file or a
    crafted checkpoint would otherwise end as a raw allocation error or the OOM killer)."""
    try:
        from tpprof.analytic import estimate

        need = int(estimate(cfg, accounting="full").peak_bytes)
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - the model cannot price it: let the learner try
        return
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    if need > available:
        from tpprof.units import format_bytes

        raise UserError(field, f"training {cfg.rule.name} on {cfg.net.to_string()[:60]} with B={cfg.workload.batch}, "
                        f"C={cfg.workload.classes}, T={cfg.workload.steps} needs about {format_bytes(need)} at its "
                        f"peak and {format_bytes(available)} is available",
                        "a smaller net, batch, class count or --steps (see tpprof estimate)")


def check_fits(cfg: Config, data: ArrayDataset) -> None:
    """The net's input shape and readout must match the data; one-line errors otherwise."""
    if tuple(cfg.net.input_shape) != data.input_shape:
        raise UserError("net", f"input {'x'.join(map(str, cfg.net.input_shape))} does not match the data's "
                        f"{'x'.join(map(str, data.input_shape))} features",
                        f"a net starting with {'x'.join(map(str, data.input_shape))}, e.g. "
                        f"{'x'.join(map(str, data.input_shape))}-256-256-{data.classes}")
    if cfg.net.readout < data.classes:
        raise UserError("classes", f"the readout has {cfg.net.readout} units but the data has {data.classes} classes",
                        "a readout >= the number of classes")
    if data.steps != cfg.workload.steps:
        raise UserError("steps", f"the config has T={cfg.workload.steps} but the data has T={data.steps}",
                        "the same number of time steps")


def check_batch(cfg: Config, train: ArrayDataset) -> None:
    """A training batch of min(B, len(train)) samples at least the rule's minimum batch
    (:func:`tpprof.analytic.learnability.min_batch`: TP's contrastive loss compares samples, so B ≥ 2;
    the other rules learn from one); the one-line error names the field that is short: ``batch``,
    else ``data``."""
    from tpprof.analytic.learnability import min_batch

    need = min_batch(cfg.rule)
    if cfg.workload.batch < need:
        raise UserError("batch", f"{cfg.workload.batch} is too small to train {cfg.rule.name}",
                        f"an integer >= {need} ({cfg.rule.name}'s minimum batch: below it the rule learns nothing)")
    if len(train) < need:
        raise UserError("data", f"{len(train)} training sample(s)", f"at least {need} ({cfg.rule.name}'s minimum batch)")


def check_run(cfg: Config, train: ArrayDataset, memory: bool = True) -> None:
    """Every check :func:`fit` makes before it trains: the net fits the data, the batch is at least
    the rule's minimum, and (``memory``: a learner is still to be built) its peak fits the memory
    available now. ``tpprof compare`` runs it for every learner before its first line."""
    check_fits(cfg, train)
    check_batch(cfg, train)
    if memory:
        check_memory(cfg, "data" if cfg.workload.classes > 10**4 else "net")


# --------------------------------------------------------------------------------------
# Evaluation and one epoch
# --------------------------------------------------------------------------------------


def evaluate(learner: Any, data: ArrayDataset, batch: int = 256, device: str = "cpu") -> float:
    """Accuracy of argmax ``learner.predict(x)`` (input path only) over ``data``, in [0, 1]."""
    import torch

    if len(data) == 0:
        return float("nan")
    correct = 0
    with torch.no_grad():
        for xb, yb in data.batches(batch):
            logits = learner.predict(torch.from_numpy(xb).to(device))  # (b, C)
            correct += int((logits.argmax(dim=1).cpu() == torch.from_numpy(yb)).sum())
    return correct / len(data)


def train_epoch(learner: Any, data: ArrayDataset, batch: int, rng: np.random.Generator, device: str = "cpu",
                progress: bool = True, desc: str = "train") -> dict[str, float]:
    """One pass over ``data`` in shuffled mini-batches of ``batch`` (short last one dropped)."""
    import torch
    from tqdm import tqdm

    n_batches = data.n_batches(batch, drop_last=True)
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(data.batches(batch, shuffle=True, rng=rng, drop_last=True), total=n_batches, desc=desc,
               unit="batch", disable=not progress, file=sys.stderr, mininterval=1.0, leave=False)
    for xb, yb in bar:
        out = learner.train_batch(torch.from_numpy(xb).to(device), torch.from_numpy(yb).to(device))
        loss_sum += float(out.get("loss", float("nan"))) * len(yb)
        correct += int(out.get("correct", 0))
        seen += int(out.get("n", len(yb)))
        bar.set_postfix(acc=f"{correct / max(1, seen):.3f}", refresh=False)
    bar.close()
    return {"train_loss": loss_sum / max(1, seen), "train_accuracy": correct / max(1, seen), "n": seen,
            "dropped": len(data) - seen}


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------


def save_checkpoint(path: Path, learner: Any, cfg: Config, meta: dict[str, Any],
                    resume: dict[str, Any] | None = None) -> None:
    """Atomically write ``{state_dict, config_json, meta_json}`` (loads with weights_only=True);
    with ``resume`` also ``optimizer_state`` (tensors) and ``resume_json`` (history, the shuffling
    generator's state, the planned epochs) for ``tpprof train --resume``."""
    sd = {k: v.detach().cpu() if hasattr(v, "detach") else v for k, v in learner.state_dict().items()}
    obj = {"state_dict": sd, "config_json": cfg.to_json(), "meta_json": json.dumps(meta, sort_keys=True, default=str)}
    if resume is not None:
        import torch

        obj["optimizer_state"] = optimizer_state(learner)
        obj["torch_rng_state"] = torch.get_rng_state()
        obj["resume_json"] = json.dumps(resume, sort_keys=True, default=str)
    atomic_torch_save(obj, Path(path))


def load_resume(path: str | os.PathLike) -> tuple[Config, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(config, state_dict, resume info, optimiser state) of a checkpoint written during
    :func:`fit`; the torch RNG state travels in ``resume["torch_rng_state"]``."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise UserError("resume", f"{str(p)!r} does not exist", "the --out folder of an earlier tpprof train run")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
        cfg = Config.from_dict(json.loads(ck["config_json"]))
        info = json.loads(ck["resume_json"])
        sd, opt = ck["state_dict"], ck["optimizer_state"]
        if not isinstance(info, dict) or not isinstance(sd, dict) or not isinstance(opt, dict):
            raise TypeError("odd field types")
        info["torch_rng_state"] = ck.get("torch_rng_state")
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a foreign, old or truncated file
        raise UserError("resume", f"{p.name} holds no resume state ({type(e).__name__})",
                        "a model.pt written by this version of tpprof train") from None
    return cfg, sd, info, opt


#: Fields every epoch of a resumed history must carry, as numbers (what summarise and the report read).
_HISTORY_NUMBERS = ("epoch", "test_accuracy", "train_accuracy", "train_seconds")
#: Samples hashed for a dataset's fingerprint (evenly spaced: cheap for any size, and any other
#: file, limit, split or feature setting changes the labels, the shapes or these rows).
_FINGERPRINT_ROWS = 64


def data_identity(train: ArrayDataset, test: ArrayDataset, meta: dict[str, Any] | None) -> dict[str, Any]:
    """What makes a training run's data the same data: the load spec (not where it was found),
    sizes, shapes, and SHA-256 fingerprints of the labels and of evenly spaced samples."""
    import hashlib

    def fingerprint(ds: ArrayDataset) -> str:
        h = hashlib.sha256(np.ascontiguousarray(ds.y).tobytes())
        rows = np.unique(np.linspace(0, len(ds) - 1, num=min(len(ds), _FINGERPRINT_ROWS)).astype(np.int64))
        h.update(np.ascontiguousarray(ds.x[rows]).tobytes() if len(ds) else b"")
        return h.hexdigest()

    spec = {k: v for k, v in (meta or {}).items() if k not in ("data_dir", "path", "test_path")}
    return json.loads(json.dumps({"spec": spec, "n_train": len(train), "n_test": len(test),
                                  "x_shape": list(train.x.shape), "classes": train.classes,
                                  "train": fingerprint(train), "test": fingerprint(test)}, sort_keys=True, default=str))


def apply_resume_state(learner: Any, rng: np.random.Generator, info: dict[str, Any], state_dict: dict[str, Any],
                       opt_state: dict[str, Any], identity: dict[str, Any], epochs: int) -> list[dict[str, Any]]:
    """Check a checkpoint's resume state field by field, then load it into ``learner`` and
    ``rng`` (and torch's generator); returns the history. Anything tampered, foreign or from
    other data is a one-line :class:`UserError` (never a traceback, never a silent continue)."""
    import torch

    accepted = "a model.pt written by tpprof train --out DIR, resumed with the same flags and data"
    if "data_identity" not in info:
        raise UserError("resume", "the checkpoint does not record which data it was trained on (an older tpprof)",
                        "a fresh run (a new --out), or resume with the tpprof version that started it")
    if info.get("data_identity") != identity:
        was = info.get("data_identity") if isinstance(info.get("data_identity"), dict) else {}
        diff = sorted(k for k in set(was) | set(identity) if was.get(k) != identity.get(k)) or ["data"]
        raise UserError("resume", f"the earlier run trained on other data (differs in {', '.join(diff[:4])})",
                        "the same --data, --limit, --task, --holdout-speaker and feature flags as that run")
    history = info.get("history")
    if not isinstance(history, list) or len(history) > epochs or not all(
            isinstance(h, dict) and all(isinstance(h.get(k), (int, float)) and not isinstance(h.get(k), bool)
                                        for k in _HISTORY_NUMBERS) for h in history):
        raise UserError("resume", "the checkpoint's history is not a list of epochs", accepted)
    if [h["epoch"] for h in history] != list(range(1, len(history) + 1)):
        raise UserError("resume", "the checkpoint's history does not count epochs 1, 2, ...", accepted)
    try:
        learner.load_state_dict(state_dict)
    except Exception as e:  # noqa: BLE001 - shapes or names of another net
        raise UserError("resume", f"the checkpoint's weights do not fit this net ({type(e).__name__})", accepted) from None
    load_optimizer_state(learner, opt_state)
    saved = rng.bit_generator.state
    try:
        rng.bit_generator.state = info["rng_state"]
    except Exception as e:  # noqa: BLE001 - not a numpy generator state
        rng.bit_generator.state = saved
        raise UserError("resume", f"the checkpoint's shuffling state is not a generator state ({type(e).__name__})",
                        accepted) from None
    t_state = info.get("torch_rng_state")
    if t_state is not None:
        try:
            if not torch.is_tensor(t_state) or t_state.dtype != torch.uint8:
                raise TypeError("not a uint8 tensor")
            torch.set_rng_state(t_state)
        except Exception as e:  # noqa: BLE001 - a size or type torch refuses
            raise UserError("resume", f"the checkpoint's torch RNG state is not valid ({type(e).__name__})",
                            accepted) from None
    return [dict(h) for h in history]


#: The checkpoint metadata evaluate / finetune read, with the type each must have (None allowed).
_DATA_META_TYPES: dict[str, type | tuple[type, ...]] = {
    "kind": str, "task": str, "holdout_speaker": str, "steps": int, "features": dict, "path": str}
_FEATURE_TYPES: dict[str, type] = {"steps": int, "n_mels": int, "encoding": str}


def _check_data_meta(data: Any) -> None:
    """TypeError naming the first field of a checkpoint's data metadata with the wrong type or
    range (a crafted or foreign file), before evaluate / finetune use it."""
    if not isinstance(data, dict):
        raise TypeError("data metadata is not a table")
    for key, kind in _DATA_META_TYPES.items():
        v = data.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, kind)):
            raise TypeError(f"metadata {key} is not a {getattr(kind, '__name__', kind)}")
    for key, kind in _FEATURE_TYPES.items():
        v = (data.get("features") or {}).get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, kind)):
            raise TypeError(f"metadata features.{key} is not a {kind.__name__}")
        if kind is int and v is not None and not 1 <= v <= 10**6:
            raise TypeError(f"metadata features.{key} is out of range")
    if isinstance(data.get("steps"), int) and not 1 <= data["steps"] <= 10**6:
        raise TypeError("metadata steps is out of range")


def load_checkpoint(path: str | os.PathLike) -> tuple[Config, dict[str, Any], dict[str, Any]]:
    """(config, state_dict, meta) of a checkpoint written by :func:`save_checkpoint`."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise UserError("checkpoint", f"file {str(path)!r} does not exist", "a model.pt written by tpprof train")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
        if not isinstance(ck, dict) or not isinstance(ck.get("config_json"), str):
            raise TypeError("not a dict with config_json")
        cfg = Config.from_dict(json.loads(ck["config_json"]))
        meta = json.loads(ck.get("meta_json", "{}"))
        sd = ck["state_dict"]
        # odd field types from a crafted or foreign file: refuse here, not as a traceback later
        if not isinstance(meta, dict) or not isinstance(meta.get("data", {}), dict):
            raise TypeError("meta_json is not a table")
        if "seed" in meta and (isinstance(meta["seed"], bool) or not isinstance(meta["seed"], int)):
            raise TypeError("meta seed is not an integer")
        _check_data_meta(meta.get("data") or meta)
        if not isinstance(sd, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
            raise TypeError("state_dict is not a table of tensors")
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a foreign or truncated file is the user's file
        why = str(e).splitlines()[0][:120] if isinstance(e, TypeError) and str(e) else type(e).__name__
        raise UserError("checkpoint", f"{p.name} is not a tpprof checkpoint ({why})",
                        "a model.pt written by tpprof train") from None
    return cfg, sd, meta


def learner_from_checkpoint(path: str | os.PathLike, device: str = "cpu", seed: int = 0) -> tuple[Any, Config, dict]:
    """Rebuild the learner of a checkpoint and load its weights."""
    import torch

    from tpprof.snn import make_learner

    cfg, sd, meta = load_checkpoint(path)
    check_memory(cfg, "checkpoint")
    learner = make_learner(cfg, device=device, dtype=torch.float32, seed=seed)
    learner.load_state_dict({k: v.to(device) if hasattr(v, "to") else v for k, v in sd.items()})
    return learner, cfg, meta


def load_nir_weights(learner: Any, weights: Any) -> None:
    """Copy a NIR file's weights (:class:`tpprof.nir_io.NirWeights`, input gains folded in) into
    ``learner``'s W_l, R_l and W_out; a shape the learner cannot take is a one-line error naming
    the NIR node. Rule-specific tensors (TP's S, ...) keep their initial values."""
    import torch

    weights.check()
    params = dict(learner.net.named_parameters())
    for name, p in params.items():
        node = weights.nodes.get(name, name)
        if name not in weights.tensors:
            raise UserError("net", f"the NIR file has no weight for the learner's {name}",
                            "a file whose layers match the net")
        w = weights.tensors[name]
        if tuple(w.shape) != tuple(p.shape):
            why = " (the readout is resized to the data's classes)" if name == "readout.W" else ""
            raise UserError("net", f"NIR node {node!r}: weight shape {tuple(w.shape)}, the learner's {name} "
                            f"needs {tuple(p.shape)}{why}", f"a file whose {name} is {tuple(p.shape)}")
        with torch.no_grad():
            p.copy_(torch.as_tensor(w, dtype=p.dtype, device=p.device))


def learner_from_nir(path: str | os.PathLike, cfg: Config, device: str = "cpu", seed: int = 0) -> Any:
    """A learner for ``cfg`` (whose net is the file's, :func:`tpprof.config.parse_net`) that
    starts from the file's weights and neuron parameters (:func:`load_nir_weights`)."""
    import torch

    from tpprof.nir_io import read_nir_file
    from tpprof.snn import make_learner

    _, _, weights = read_nir_file(path)
    check_memory(cfg, "net")
    learner = make_learner(cfg, device=device, dtype=torch.float32, seed=seed)
    load_nir_weights(learner, weights)
    return learner


def is_nir_path(net: Any) -> bool:
    return isinstance(net, str) and net.strip().lower().endswith(".nir")


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


def refuse_other_run(out: Path, run: dict[str, Any]) -> None:
    """UserError when ``out`` holds a run's files (metrics.json, model.pt) that are not ``run``'s
    (its config, seed, planned epochs and data description, as metrics.json records them)."""
    files = [n for n in (METRICS, CHECKPOINT) if (out / n).exists()]
    if not files:
        return
    run = json.loads(json.dumps(run, sort_keys=True, default=str))  # as metrics.json holds it (lists, str)
    prior = read_metrics(out) or {}
    if isinstance(prior, dict) and all(prior.get(k) == v for k, v in run.items()):
        return  # the same run again: its own files
    what = (f"a {prior.get('rule')} run of {prior.get('net')}, seed {prior.get('seed')}"
            if isinstance(prior, dict) and prior.get("rule") else "files of another run")
    raise UserError("out", f"{str(out)[:80]!r} holds {what} ({', '.join(files)})",
                    "another folder, --resume to continue that run, or --force to replace it")


def summarise(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Final / best / mean-of-last-3 test accuracy (None before 3 epochs) and timing from the
    per-epoch history."""
    tests = [h["test_accuracy"] for h in history]
    best = int(np.nanargmax(tests)) if tests and not all(np.isnan(tests)) else 0
    return {
        "epochs": len(history),
        "test_accuracy": tests[-1] if tests else None,
        "train_accuracy": history[-1]["train_accuracy"] if history else None,
        "test_final": tests[-1] if tests else None,
        "test_best": tests[best] if tests else None,
        "test_best_epoch": best + 1 if tests else None,
        "test_mean_last3": float(np.mean(tests[-3:])) if len(tests) >= 3 else None,  # no "last 3" of fewer
        "seconds_per_epoch": float(np.mean([h["train_seconds"] for h in history])) if history else None,
    }


def fit(cfg: Config, train: ArrayDataset, test: ArrayDataset, *, epochs: int, seed: int = 0,
        out_dir: str | os.PathLike | None = None, device: str = "cpu", freeze_hidden: bool = False,
        progress: bool = True, meta: dict[str, Any] | None = None, learner: Any = None,
        eval_batch: int = 256, on_epoch: Callable[[dict[str, Any]], None] | None = None,
        resume: bool = False, force: bool = False, test_name: str = "test") -> dict[str, Any]:
    """Train ``epochs`` epochs with the cosine schedule; evaluate and save after each epoch.

    ``out_dir`` holding another run's files (another config, seed, epochs or data) is refused
    unless ``force``: rerunning the same run, or ``resume``, writes over its own files.
    ``test_name`` names the evaluated set in the per-epoch line (fine-tuning: "query").

    Returns the metrics dict also written to ``out_dir/metrics.json`` (when ``out_dir``).
    A ``learner`` may be passed in (fine-tuning); otherwise ``make_learner(cfg, seed=seed)``.

    ``resume``: continue the run in ``out_dir`` after its last complete epoch (weights, every
    optimiser's state, the shuffling generator and the torch RNG come from ``model.pt``), so
    an interrupted run ends where an uninterrupted one would. The config, seed and planned
    epochs must match the earlier run's. ``metrics.json`` carries the writer's ``pid``: a
    ``"running"`` file whose process is gone reads as interrupted (:func:`read_metrics`).
    """
    import torch

    if epochs < 1:
        raise UserError("epochs", f"{epochs} is too small", "an integer >= 1")
    if resume and out_dir is None:
        raise UserError("resume", "needs an output folder", "--out DIR of the run to continue")
    if freeze_hidden:  # the control run: RuleSpec.trainable = "readout" (one idea, one place)
        cfg = cfg.with_(trainable="readout")
    if learner is not None and learner.cfg.rule.trainable != cfg.rule.trainable:
        raise UserError("trainable", f"the learner trains {learner.cfg.rule.trainable!r}, the config "
                        f"{cfg.rule.trainable!r}", "the same value (it is fixed when the learner is built)")
    check_run(cfg, train, memory=learner is None)
    batch = min(cfg.workload.batch, len(train))
    check_seed(seed)
    torch.manual_seed(seed)
    if learner is None:
        from tpprof.snn import make_learner

        learner = make_learner(cfg, device=device, dtype=torch.float32, seed=seed)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        if not str(out_dir).strip():
            raise UserError("out", "is empty", "an output folder, e.g. --out runs/tp-digit")
        if out.exists() and not out.is_dir():
            raise UserError("out", f"{str(out)!r} is a file", "a folder (created if absent), e.g. --out runs/tp-digit")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError("out", f"cannot create {str(out)!r}: {e.strerror or type(e).__name__}",
                            "a folder you may write to") from None
        if not os.access(out, os.W_OK):
            raise UserError("out", f"{str(out)!r} is not writable", "a folder you may write to")
        from tpprof.store import clean_stale_tmp

        for name in (METRICS, CHECKPOINT):  # left by a killed run (SIGKILL skips every cleanup)
            clean_stale_tmp(out, name)
        if not resume and not force:
            refuse_other_run(out, {"config": cfg.to_dict(), "seed": seed, "epochs_planned": epochs,
                                   "data": dict(meta or {})})
    rng = np.random.default_rng(seed)
    history: list[dict[str, Any]] = []
    first_epoch = 0
    identity = data_identity(train, test, meta)
    if resume:
        r_cfg, r_sd, info, r_opt = load_resume(out / CHECKPOINT)
        if r_cfg.to_dict() != cfg.to_dict():
            raise UserError("resume", "the earlier run used another config", "the same --net, --rule, --batch, "
                            f"--lr, ... as that run (it used net {r_cfg.net.to_string()}, rule {r_cfg.rule.name})")
        if info.get("seed") != seed or info.get("epochs_planned") != epochs:
            raise UserError("resume", f"the earlier run had --seed {str(info.get('seed'))[:20]} --epochs "
                            f"{str(info.get('epochs_planned'))[:20]}", "the same --seed and --epochs")
        history = apply_resume_state(learner, rng, info, r_sd, r_opt, identity, epochs)
        first_epoch = len(history)
    base = {"rule": cfg.rule.name, "net": cfg.net.to_string(), "batch": batch, "lr": cfg.rule.lr, "seed": seed,
            "epochs_planned": epochs, "freeze_hidden": cfg.rule.trainable == "readout",
            "trainable": cfg.rule.trainable, "n_train": len(train),
            "n_test": len(test), "last_batch": "dropped when shorter than the batch", "classes": train.classes,
            "steps": train.steps, "device": device, "config": cfg.to_dict(), "data": dict(meta or {}),
            "train_accuracy_kind": "online, during the epoch", "pid": os.getpid()}
    started = time.perf_counter()
    if resume:
        base["resumed_at_epoch"] = first_epoch

    def record(status: str) -> dict[str, Any]:
        m = dict(base, **summarise(history), history=history, status=status,
                 seconds=time.perf_counter() - started)
        if status == "interrupted":
            m["interrupted_by"] = "Ctrl-C; tpprof train --resume continues after the last complete epoch"
        if out is not None:
            atomic_write_text(out / METRICS, json.dumps(m, indent=1, sort_keys=True, default=str))
        return m

    metrics = record("running" if first_epoch < epochs else "done")
    try:
        for epoch in range(first_epoch, epochs):
            lr = cosine_lr(cfg.rule.lr, epoch, epochs)
            learner.set_lr(lr)  # every layer optimiser and the readout's
            t0 = time.perf_counter()
            ep = train_epoch(learner, train, batch, rng, device, progress, f"epoch {epoch + 1}/{epochs}")
            t1 = time.perf_counter()
            acc = evaluate(learner, test, eval_batch, device)
            row = {"epoch": epoch + 1, "lr": lr, **ep, "test_accuracy": acc, "train_seconds": t1 - t0,
                   "eval_seconds": time.perf_counter() - t1}
            history.append(row)
            if out is not None:
                save_checkpoint(out / CHECKPOINT, learner, cfg, {"data": dict(meta or {}), "epoch": epoch + 1,
                                                                 "seed": seed, "test_accuracy": acc},
                                resume={"history": history, "rng_state": rng.bit_generator.state,
                                        "seed": seed, "epochs_planned": epochs, "data_identity": identity})
            metrics = record("running" if epoch + 1 < epochs else "done")
            if progress:
                sys.stderr.write(f"epoch {epoch + 1}/{epochs}: loss {ep['train_loss']:.4f} train "
                                 f"{ep['train_accuracy']:.3f} {test_name} {acc:.3f} ({t1 - t0:.1f} s)\n")
            if on_epoch is not None:
                on_epoch(row)
    except KeyboardInterrupt:
        record("interrupted")
        raise
    metrics["learner"] = learner  # not written: handed back for callers that continue
    return metrics


def finetune_memory(cfg: Config, batch: int) -> dict[str, Any]:
    """Analytic training peak (full accounting, bytes) of fine-tuning ``cfg`` at mini-batch ``batch``.

    For TP both target-path layouts are given, so a few-shot fine-tune shows what the class
    dedup saves: ``target_rows="batch"`` holds the target path B times (2·B·L·H of state in the
    paper's accounting), ``"classes"`` once per class present, (B + K)·L·H with K = min(B, C),
    the model's worst case (a batch of B distinct classes saves nothing — it adds the class
    index, a few hundred bytes; K < B needs repeated
    classes, e.g. 5 shots of 10 digits in batches of 32). Other rules: their own peak.
    Source: :func:`tpprof.analytic.estimate` at the fine-tune's workload.
    """
    from tpprof.analytic import estimate

    cfg_b = replace(cfg, workload=replace(cfg.workload, batch=batch))
    out: dict[str, Any] = {"batch": batch, "classes": cfg.workload.classes,
                           "target_rows": getattr(cfg.rule, "target_rows", None) if cfg.rule.name == "tp" else None,
                           "peak_bytes": int(estimate(cfg_b, "full").peak_bytes)}
    if cfg.rule.name == "tp":
        for rows in ("batch", "classes"):
            c = replace(cfg_b, rule=replace(cfg_b.rule, target_rows=rows))
            out[f"peak_bytes_target_rows_{rows}"] = int(estimate(c, "full").peak_bytes)
        out["target_rows_classes_k"] = min(batch, cfg.workload.classes)
    return out


def finetune(checkpoint: str | os.PathLike, support: ArrayDataset, query: ArrayDataset, *, epochs: int = 3,
             lr: float | None = None, seed: int = 0, out_dir: str | os.PathLike | None = None,
             device: str = "cpu", progress: bool = True, meta: dict[str, Any] | None = None,
             start: tuple[Any, Config, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Query accuracy of a checkpoint before and after ``epochs`` of training on ``support``.

    Mini-batches are min(B, |support|) so a 1-shot support set (10 samples) still trains.
    ``result["memory"]``: the analytic peak at that batch (:func:`finetune_memory`).
    ``start``: (learner, config, meta) to fine-tune instead of the checkpoint's (``--net x.nir``).
    """
    learner, cfg, ck_meta = start if start is not None else learner_from_checkpoint(checkpoint, device, seed)
    if lr is not None:
        cfg = replace(cfg, rule=replace(cfg.rule, lr=lr))
    check_fits(cfg, query)
    before = evaluate(learner, query, device=device)
    m = fit(cfg, support, query, epochs=epochs, seed=seed, out_dir=None, device=device, progress=progress,
            learner=learner, test_name="query")
    result = {"before_accuracy": before, "after_accuracy": m["test_final"], "epochs": epochs,
              "memory": finetune_memory(cfg, m["batch"]),
              "support_size": len(support), "query_size": len(query), "lr": cfg.rule.lr, "batch": m["batch"],
              "seed": seed, "history": m["history"], "seconds": m["seconds"], "checkpoint": str(checkpoint),
              "pretrain": ck_meta, **(meta or {})}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / METRICS, json.dumps(result, indent=1, sort_keys=True, default=str))
        save_checkpoint(out / CHECKPOINT, m["learner"], cfg, dict(ck_meta, finetuned=meta or {}))
    result["learner"] = m["learner"]
    return result
