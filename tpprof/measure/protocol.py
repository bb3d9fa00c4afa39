"""The measurement protocol for one point (rule × net × workload × dtype × device).

Order inside one (fresh) process, all with ``torch.set_num_threads(threads)``:

1. The mini-batch x (B, T, *input_shape) and labels y (B,) are made first; a device streams
   its input one step at a time, so x is excluded from the peak and reported as input_bytes.
2. **Timing window**: build a learner, run ``warmup`` mini-batches (Adam allocates its two
   moments lazily at its first step: the warm-up makes them exist), then ``repeats`` timed
   mini-batches with an ``on_step`` callback; no counter attached. Median of repeats.
3. **RSS window** (CPU, optional, secondary): the same learner runs ``batches`` mini-batches
   while memory-profiler samples process RSS every 1 ms.
4. **Memory window** (primary): a second learner is built *under* the counter, so live bytes
   are absolute (every tensor allocated since before construction, x excluded); warm-up;
   ``memory_inventory()`` is summed by category; then ``batches`` measured mini-batches.
   baseline_bytes = live bytes when the measured window opens; peak_bytes = max live bytes in
   it. On CUDA the allocator's counters replace the profiler (relative to after x).

Attribution (bytes_<category>): persistent categories from the learner's inventory
(distinct storages, first category wins); ``saved`` = max bytes autograd held for backward at
once (saved-tensor hooks, storages of the inventory and of x excluded; or, when the learner
runs its own hooks, what it lists as ``saved`` at the last step); ``bytes_other`` =
peak_bytes − Σ categories (transient temporaries not saved for backward, plus untracked).
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from typing import Any, Callable

from tpprof.config import Config
from tpprof.errors import UserError
from tpprof.measure.counters import (
    COUNTER_CUDA,
    COUNTER_PROFILER,
    CudaCounter,
    ProfilerCounter,
    SavedTensorTracker,
    hardware_description,
    saved_in_graph,
    now_utc,
    rss_peak,
    storage_key,
)
from tpprof.store import CATEGORIES, learner_hash

PEAK_DEFINITION = ("max live tensor bytes during the measured mini-batches; absolute: every tensor "
                   "allocated since before learner construction and still alive; input batch excluded")
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp64": "float64"}

LearnerFactory = Callable[..., Any]


def torch_dtype(name: str) -> Any:
    """Config dtype name → torch dtype (int8 has no training path)."""
    import torch

    if name not in TORCH_DTYPES:
        raise UserError("dtype", f"{name!r} cannot be trained by the torch learners", ", ".join(TORCH_DTYPES))
    return getattr(torch, TORCH_DTYPES[name])


def make_batch(cfg: Config, device: str, seed: int = 0, density: float = 0.1) -> tuple[Any, Any]:
    """Synthetic spikes x (B, T, *input_shape) ∈ {0, 1} with P(1) = density, labels y (B,).

    Only shapes matter for memory and time; labels cycle through the classes so a batch
    repeats classes when B > C (TP's target traces then coincide, as in real data).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    wl = cfg.workload
    shape = (wl.batch, wl.steps, *cfg.net.input_shape)
    x = (torch.rand(shape, generator=g) < density).to(torch_dtype(wl.dtype))  # (B, T, *in)
    y = torch.randperm(wl.batch, generator=g) % wl.classes  # (B,)
    return x.to(device), y.to(device)


def default_factory() -> LearnerFactory:
    from tpprof.snn import make_learner

    return make_learner


def _inventory(learner: Any) -> tuple[dict[str, int], set[int], int]:
    """Bytes per category over distinct storages, the storage pointers, and their sum."""
    by_cat: dict[str, int] = {}
    seen: set[int] = set()
    for _name, cat, t in learner.memory_inventory():
        if t is None:
            continue
        ptr, nb = storage_key(t)
        if ptr in seen or nb == 0:
            continue
        seen.add(ptr)
        by_cat[cat] = by_cat.get(cat, 0) + nb
    return by_cat, seen, sum(by_cat.values())


#: glibc mallopt parameter M_MMAP_THRESHOLD.
_M_MMAP_THRESHOLD = -3
#: The mmap threshold of the timing window: glibc's own ceiling for its dynamic threshold, so a
#: step's temporaries come from the heap as in a training run (at 64 KiB, each (B, H) temporary
#: is an mmap plus page faults: 60 µs instead of 7 µs for a 128×450 add on the project machine).
TIMING_MMAP_THRESHOLD = 32 * 2**20
#: The mmap threshold of the RSS and memory windows (= the process's MALLOC_MMAP_THRESHOLD_):
#: large blocks go back to the OS when freed, so RSS follows tensor memory.
RSS_MMAP_THRESHOLD = 65536


def set_mmap_threshold(nbytes: int) -> bool:
    """glibc ``mallopt(M_MMAP_THRESHOLD, nbytes)`` and ``malloc_trim(0)``; False where there is no
    glibc (the threshold then stays what the environment set)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(nbytes)))
        libc.malloc_trim(0)
        return ok
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False


def _timed_batches(learner: Any, x: Any, y: Any, n: int, sync: Callable[[], None],
                   cpu_s: list[float] | None = None) -> tuple[list[float], list[float]]:
    """Run n mini-batches; returns (wall seconds per batch, ms between on_step callbacks); the
    CPU seconds of each batch (process time) are appended to ``cpu_s`` when given."""
    batch_s: list[float] = []
    step_ms: list[float] = []
    for _ in range(n):
        marks: list[float] = []

        def on_step(_t: int) -> None:
            sync()
            marks.append(time.perf_counter())

        sync()
        c0 = time.process_time()
        t0 = time.perf_counter()
        learner.train_batch(x, y, on_step=on_step)
        sync()
        batch_s.append(time.perf_counter() - t0)
        if cpu_s is not None:
            cpu_s.append(time.process_time() - c0)
        step_ms += [(m - prev) * 1e3 for prev, m in zip([t0, *marks], marks)]
    return batch_s, step_ms


def measure_point(
    cfg: Config,
    device: str = "cpu",
    batches: int = 1,
    repeats: int = 3,
    warmup: int = 1,
    rss: bool = True,
    seed: int = 0,
    threads: int = 1,
    factory: LearnerFactory | None = None,
    timing: bool = True,
) -> dict[str, Any]:
    """Measure one point; returns a row for :mod:`tpprof.store` (status ``ok``).

    ``timing=False`` skips the timing and RSS windows (memory only; such a row lacks the
    time columns and is for benchmarks, not for measurement files).
    Exceptions propagate (the grid runner turns them into oom / error rows).
    """
    import torch

    torch.set_num_threads(threads)
    factory = factory or default_factory()
    dt = torch_dtype(cfg.workload.dtype)
    is_cuda = str(device).startswith("cuda")
    if is_cuda and not torch.cuda.is_available():
        raise UserError("device", f"{device!r} is not available here (no CUDA device)", "cpu, or cuda on a GPU machine")
    sync = (lambda: torch.cuda.synchronize(device)) if is_cuda else (lambda: None)
    x, y = make_batch(cfg, device, seed)
    input_bytes = x.untyped_storage().nbytes() + y.untyped_storage().nbytes()

    batch_s: list[float] = []
    step_ms: list[float] = []
    cpu_s: list[float] = []
    rss_before = rss_peak_b = None
    build_s = None
    if timing:
        # --- timing window (no counter attached; temporaries from the heap, see TIMING_MMAP_THRESHOLD) ---
        set_mmap_threshold(TIMING_MMAP_THRESHOLD)
        t0 = time.perf_counter()
        learner = factory(cfg, device=device, dtype=dt, seed=seed)
        sync()
        build_s = time.perf_counter() - t0
        for _ in range(warmup):
            learner.train_batch(x, y)
        batch_s, step_ms = _timed_batches(learner, x, y, repeats, sync, cpu_s)
        set_mmap_threshold(RSS_MMAP_THRESHOLD)  # the RSS and memory windows: freed blocks go back to the OS

        # --- RSS window (CPU secondary) ---
        if rss and not is_cuda:
            def run() -> None:
                for _ in range(batches):
                    learner.train_batch(x, y)

            rss_before, rss_peak_b, _ = rss_peak(run, interval=0.001)
        del learner
        gc.collect()

    # --- memory window (primary counter) ---
    window = _memory_window_cuda if is_cuda else _memory_window_cpu
    mem = window(cfg, factory, device, dt, seed, x, y, warmup, batches)

    row: dict[str, Any] = config_columns(cfg, device)
    row.update(
        counter=COUNTER_CUDA if is_cuda else COUNTER_PROFILER,
        peak_definition=PEAK_DEFINITION,
        warmup_batches=warmup, batches=batches, repeats=repeats, seed=seed, threads=threads,
        input_bytes=input_bytes,
        rss_before_bytes=rss_before, rss_peak_bytes=rss_peak_b,
        rss_delta_bytes=None if rss_before is None else rss_peak_b - rss_before,  # type: ignore[operator]
        batch_s_median=statistics.median(batch_s) if batch_s else None, batch_s_min=min(batch_s, default=None),
        ms_per_step=statistics.median(batch_s) * 1e3 / cfg.workload.steps if batch_s else None,
        step_ms_median=statistics.median(step_ms) if step_ms else None,
        cpu_s_median=statistics.median(cpu_s) if cpu_s else None,
        build_s=build_s, status="ok", error="",
    )
    row.update(mem)
    row.update(provenance())
    return row


def _attribute(by_cat: dict[str, int], saved: int, peak: int, baseline: int, inv_total: int) -> dict[str, Any]:
    out: dict[str, Any] = {f"bytes_{c}": 0 for c in CATEGORIES}
    for cat, nb in by_cat.items():
        if cat in CATEGORIES:  # a category outside the shared vocabulary stays in bytes_other
            out[f"bytes_{cat}"] += nb
    out["bytes_saved"] += saved
    out["bytes_other"] = peak - sum(out[f"bytes_{c}"] for c in CATEGORIES)
    out.update(inventory_bytes=inv_total, baseline_bytes=baseline, peak_bytes=peak,
               transient_bytes=peak - baseline, untracked_bytes=baseline - inv_total)
    return out


def _memory_window_cpu(cfg: Config, factory: LearnerFactory, device: str, dt: Any, seed: int,
                       x: Any, y: Any, warmup: int, batches: int) -> dict[str, Any]:
    exclude = {storage_key(x)[0], storage_key(y)[0]}
    with ProfilerCounter() as pc:
        with pc.phase("build"):
            learner = factory(cfg, device=device, dtype=dt, seed=seed)
        with pc.phase("warmup"):
            for _ in range(warmup):
                learner.train_batch(x, y)
        by_cat, ptrs, inv_total = _inventory(learner)
        tracker = SavedTensorTracker(exclude | ptrs)
        listed = _ListedSaved(learner, cfg.workload.steps, ptrs, exclude)
        with pc.phase("measure"), tracker.active():
            for _ in range(batches):
                learner.train_batch(x, y, on_step=listed)
    st = pc.stats("measure")
    del learner
    out = _attribute(by_cat, max(tracker.peak, listed.peak), st.peak_bytes, st.start_bytes, inv_total)
    out["input_saved_bytes"] = listed.input_peak
    return out


class _ListedSaved:
    """on_step callback: at the last step of a mini-batch (where a BPTT graph is largest),
    walk the autograd graph behind the tensors the learner holds and count what it saves
    for backward: distinct storages (``saved``) and views of the input batch (``input_saved``,
    the frames a device that streams its input would have to keep)."""

    def __init__(self, learner: Any, steps: int, exclude: set[int], inputs: set[int]) -> None:
        self.learner, self.last = learner, steps - 1
        self.exclude, self.inputs = exclude, inputs
        self.peak = self.input_peak = 0

    def __call__(self, t: int) -> None:
        if t != self.last:
            return
        roots = [tensor for _n, _c, tensor in self.learner.memory_inventory() if tensor is not None]
        saved, inp = saved_in_graph(roots, self.exclude, self.inputs)
        self.peak = max(self.peak, saved)
        self.input_peak = max(self.input_peak, inp)


def _memory_window_cuda(cfg: Config, factory: LearnerFactory, device: str, dt: Any, seed: int,
                        x: Any, y: Any, warmup: int, batches: int) -> dict[str, Any]:
    cc = CudaCounter(device)
    zero = cc.allocated()  # x and y (and nothing else) live on the device now
    learner = factory(cfg, device=device, dtype=dt, seed=seed)
    for _ in range(warmup):
        learner.train_batch(x, y)
    by_cat, ptrs, inv_total = _inventory(learner)
    inputs = {storage_key(x)[0], storage_key(y)[0]}
    tracker = SavedTensorTracker(inputs | ptrs)
    listed = _ListedSaved(learner, cfg.workload.steps, ptrs, inputs)
    cc.reset_peak()
    baseline = cc.allocated() - zero
    with tracker.active():
        for _ in range(batches):
            learner.train_batch(x, y, on_step=listed)
    peak = cc.peak_allocated() - zero
    out = _attribute(by_cat, max(tracker.peak, listed.peak), peak, baseline, inv_total)
    out["reserved_peak_bytes"] = cc.peak_reserved()
    out["input_saved_bytes"] = listed.input_peak
    del learner
    return out


def config_columns(cfg: Config, device: str, net_label: str | None = None) -> dict[str, Any]:
    """The config part of a row."""
    wl, r = cfg.workload, cfg.rule
    return dict(
        rule=r.name, net=net_label or cfg.net.name or cfg.net.to_string(), net_string=cfg.net.to_string(),
        depth=cfg.net.depth, batch=wl.batch, classes=wl.classes, steps=wl.steps, dtype=wl.dtype,
        optimizer=r.optimizer, cadence=r.cadence, aux=r.aux, device=str(device), config_json=cfg.to_json(),
    )


def provenance(torch_version: str | None = None, gpu: bool = True) -> dict[str, Any]:
    """Versions, hardware (no host names) and time. A caller that must not import torch (the
    grid's parent process) passes ``torch_version`` itself, and ``gpu=False`` unless the point
    ran on a GPU. Every value is a plain ``str``: a row crosses a pipe to the grid's parent, and
    torch's ``TorchVersion`` would make the parent import torch (~1 s) to unpickle it."""
    import platform

    from tpprof._version import __version__

    tv = torch_version
    if tv is None:
        try:
            import torch

            tv = str(torch.__version__)
        except Exception:  # noqa: BLE001 - rows for failed points still get written
            tv = ""
    return dict(tpprof_version=__version__, torch_version=tv, python_version=platform.python_version(),
                hardware=hardware_description(gpu), timestamp=now_utc(), learner_hash=learner_hash(),
                **interpreter())


def interpreter() -> dict[str, str]:
    """Which Python and which tpprof this process runs (a row records the ones that measured it)."""
    import sys
    from pathlib import Path

    # this file is tpprof/measure/protocol.py: the package folder is two levels up
    return {"python_executable": sys.executable, "tpprof_path": str(Path(__file__).resolve().parents[1])}


def tie_to_parent(parent_pid: int | None, deadline_s: float | None) -> None:
    """Make this point's process end with its parent and by its own deadline.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (the kernel kills us when the parent dies), then
    exit at once if the parent already died before that call (our parent pid changed).
    Everywhere on POSIX: ``alarm(deadline_s)`` with SIGALRM's default action, which ends the
    process even inside native code; the parent reads signal 14 as ``timeout``.
    """
    import os
    import signal

    if os.name != "posix":  # pragma: no cover
        return
    if parent_pid and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 == PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: the deadline still holds
            pass
        if os.getppid() != int(parent_pid):
            os._exit(1)
    if deadline_s:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(max(1, int(math.ceil(float(deadline_s)))))


def main(argv: list[str] | None = None) -> int:
    """Subprocess entry: ``python -m tpprof.measure.protocol JSON`` prints one JSON row last.

    JSON = {"config": Config.to_dict(), "net": label, "device": ..., "batches": ..., ...}.
    """
    import json

    spec = json.loads((argv or sys.argv[1:])[0])
    tie_to_parent(spec.get("parent_pid"), spec.get("deadline_s"))
    cfg = Config.from_dict(spec["config"])
    kw = {k: spec[k] for k in ("device", "batches", "repeats", "warmup", "rss", "seed", "threads", "timing")
          if k in spec}
    try:
        row = measure_point(cfg, **kw)
    except UserError as e:  # one line for the grid's error column, not a traceback
        sys.stderr.write(f"{e}\n")
        return 2
    except MemoryError as e:  # an allocation failure is the status oom, whatever raised it
        sys.stderr.write(f"MemoryError: {e}\n")
        return 3  # == tpprof.measure.grid.EXIT_OOM
    except RuntimeError as e:
        text = " ".join(str(e).split())[:300]
        low = text.lower()
        if any(m in low for m in ("out of memory", "can't allocate memory", "cannot allocate memory",
                                  "bad_alloc", "failed to allocate")):
            sys.stderr.write(f"out of memory: {type(e).__name__}: {text}\n")
            return 3
        raise
    if spec.get("net"):
        row["net"] = spec["net"]
    sys.stdout.write("\n" + json.dumps(row) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
