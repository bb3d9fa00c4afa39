"""Memory counters: what the measurement protocol reads peak bytes from.

Three counters, each behind one small helper so the semi-private APIs they use are wrapped
(and tested) in one place:

* :class:`ProfilerCounter` (CPU, primary): torch's Kineto profiler with ``profile_memory=True``
  reports every CPU tensor allocation and free (size, time). Live bytes at time t are the
  running sum  L(t) = Σ_{events e, t_e ≤ t} size_e  over events in time order; only blocks
  allocated while profiling are counted (frees are paired with allocations by pointer; frees
  of older blocks are skipped), so L(t) is exact for "tensors allocated since the counter
  started and still alive". Phases are marked with ``record_function`` ranges and read back from the same
  clock.
* :class:`CudaCounter` (CUDA): the caching allocator's ``memory_allocated`` /
  ``max_memory_allocated`` (tensor bytes) and ``max_memory_reserved`` (what the allocator
  took from the driver, including cache and rounding to its 512 B / 2 MiB blocks).
* :func:`rss_peak` (CPU, secondary): process resident set size sampled by memory-profiler
  every ``interval`` seconds while a function runs (includes torch's libraries, Python and
  glibc's free lists; use it in a fresh process started with ``MALLOC_MMAP_THRESHOLD_=65536``).

:class:`SavedTensorTracker` counts the bytes autograd saves for backward, live at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

#: Names written into the ``counter`` column of a measurement row.
COUNTER_PROFILER = "torch-profiler-cpu"
COUNTER_CUDA = "cuda-allocator"


def storage_key(t: Any) -> tuple[int, int]:
    """(data pointer, bytes) of a tensor's storage: two views of one buffer share it."""
    st = t.untyped_storage()
    return st.data_ptr(), st.nbytes()


@dataclass
class PhaseStats:
    """Live-bytes figures of one marked phase (bytes, relative to the counter's start)."""

    start_bytes: int  # L just before the phase began
    end_bytes: int  # L when it ended
    peak_bytes: int  # max L during the phase (≥ start_bytes)


@dataclass
class ProfilerCounter:
    """Exact CPU tensor live bytes from the Kineto profiler's memory events.

    Usage::

        with ProfilerCounter() as pc:
            with pc.phase("build"): ...
            with pc.phase("measure"): ...
        pc.stats("measure").peak_bytes
    """

    keep_ops: bool = False  # remember which op allocated each block (diagnostics)
    _prof: Any = None
    _events: list[tuple[int, int]] = field(default_factory=list)  # (time ns, signed bytes)
    _raw: list[tuple[int, int, int]] = field(default_factory=list)  # (time ns, ptr, signed bytes)
    _ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    _op_of: dict[tuple[int, int], str] = field(default_factory=dict)

    def __enter__(self) -> "ProfilerCounter":
        # torch.autograd.profiler.profile is the Kineto profiler under torch.profiler.profile, with
        # the same events; the latter's start tests ``hasattr(torch, "_inductor")``, which imports
        # torch._inductor and torch._dynamo (~1.2 s and ~800 modules) into every process it starts in
        from torch.autograd.profiler import profile

        self._prof = profile(profile_memory=True, use_kineto=True, with_stack=self.keep_ops)
        self._prof.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._prof.__exit__(*exc)
        if exc[0] is None:
            self._collect()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark a phase; its figures are read with :meth:`stats` after the counter stops."""
        from torch.autograd.profiler import record_function

        with record_function(f"tpprof::{name}"):
            yield

    def _collect(self) -> None:
        from torch._C._profiler import _EventType

        stack = list(self._prof.kineto_results.experimental_event_tree())
        events: list[tuple[int, int, int]] = []
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            if node.tag == _EventType.Allocation:
                ef = node.extra_fields
                if str(ef.device).startswith("cpu"):
                    events.append((node.start_time_ns, int(ef.ptr), int(ef.alloc_size)))
                    if self.keep_ops and ef.alloc_size > 0:
                        self._op_of[(node.start_time_ns, int(ef.ptr))] = _op_path(node)
            elif node.tag == _EventType.TorchOp and node.name.startswith("tpprof::"):
                self._ranges[node.name[len("tpprof::"):]] = (node.start_time_ns, node.end_time_ns)
        events.sort(key=lambda e: e[0])  # sort is stable: same-time events keep tree order
        # Pair frees with allocations by pointer: a free of a block allocated before the
        # counter started is skipped (the reporter may even give it a stale size).
        live: dict[int, int] = {}
        self._raw = []
        for t, ptr, nb in events:
            if nb > 0:
                live[ptr] = nb
            elif nb < 0 and ptr in live:
                nb = -live.pop(ptr)
            else:
                continue
            self._raw.append((t, ptr, nb))
        self._events = [(t, nb) for t, _ptr, nb in self._raw]

    def live_at_peak(self, name: str) -> list[tuple[int, str]]:
        """(bytes, allocating op path) of every block live at the phase's peak that was
        allocated inside the phase, largest first (needs ``keep_ops=True``): what the
        transient part of the peak is made of."""
        t0, t1 = self._ranges[name]
        live: dict[int, tuple[int, int]] = {}
        level, best, best_set = 0, None, {}
        for t, ptr, nb in self._raw:
            if t > t1:
                break
            level += nb
            if nb > 0:
                live[ptr] = (t, nb)
            else:
                live.pop(ptr, None)
            if t >= t0 and (best is None or level > best):
                best, best_set = level, {p: v for p, v in live.items() if v[0] >= t0}
        return sorted(((nb, self._op_of.get((t, p), "?")) for p, (t, nb) in best_set.items()), reverse=True)

    def stats(self, name: str) -> PhaseStats:
        """Start / end / peak live bytes of a phase marked with :meth:`phase`."""
        if name not in self._ranges:
            raise KeyError(f"phase {name!r} was not recorded")
        t0, t1 = self._ranges[name]
        live, start, peak = 0, None, None
        for t, nb in self._events:
            if t < t0:
                live += nb
                continue
            if start is None:
                start = peak = live
            if t > t1:
                break
            live += nb
            peak = max(peak, live)  # type: ignore[type-var]
        if start is None:  # no event at or after the phase began
            start = peak = live
        # live now sums every event up to t1 (the loop stops at the first later one): the end level
        return PhaseStats(start_bytes=start, end_bytes=live, peak_bytes=peak)  # type: ignore[arg-type]


def _op_path(node: Any) -> str:
    """'op < caller op' plus the innermost tpprof source line on the Python stack, if recorded."""
    from torch._C._profiler import _EventType

    names: list[str] = []
    where = ""
    p = node.parent
    while p is not None:
        if p.tag == _EventType.PyCall:
            if not where and "tpprof" in p.name and "measure" not in p.name:
                where = p.name.split("tpprof/")[-1]
        elif p.tag == _EventType.TorchOp and len(names) < 2 and not p.name.startswith("tpprof::"):
            names.append(p.name)
        p = p.parent
    return " < ".join(names) + (f"  @ {where}" if where else "")


class CudaCounter:
    """CUDA caching-allocator counters for one device (all figures in bytes, read after a sync)."""

    def __init__(self, device: Any) -> None:
        import torch

        self.cuda = torch.cuda
        self.device = torch.device(device)

    def _read(self, counter: Callable[[Any], Any]) -> int:
        self.cuda.synchronize(self.device)
        return int(counter(self.device))

    def allocated(self) -> int:
        return self._read(self.cuda.memory_allocated)

    def reset_peak(self) -> None:
        self.cuda.synchronize(self.device)
        self.cuda.reset_peak_memory_stats(self.device)

    def peak_allocated(self) -> int:
        return self._read(self.cuda.max_memory_allocated)

    def peak_reserved(self) -> int:
        return self._read(self.cuda.max_memory_reserved)


class SavedTensorTracker:
    """Bytes autograd holds for backward, live at once, over distinct storages.

    ``torch.autograd.graph.saved_tensors_hooks``: the pack hook wraps each saved tensor in a
    small holder whose ``__del__`` fires when autograd frees the graph, so the tracker keeps
    live(t) = Σ bytes of distinct saved storages still referenced by a graph, and its maximum.
    Storages in ``exclude`` (the learner's own parameters and state, the input batch) are
    already counted elsewhere and skipped.
    """

    def __init__(self, exclude: set[int] | None = None) -> None:
        self.exclude = set(exclude or ())
        self.refs: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.live = 0
        self.peak = 0

    def _pack(self, t: Any) -> Any:
        ptr, nb = storage_key(t)
        if ptr in self.exclude or nb == 0:
            return _Held(t, None, 0)
        if self.refs.get(ptr, 0) == 0:
            self.sizes[ptr] = nb
            self.live += nb
            self.peak = max(self.peak, self.live)
        self.refs[ptr] = self.refs.get(ptr, 0) + 1
        return _Held(t, self, ptr)

    @staticmethod
    def _unpack(h: Any) -> Any:
        return h.t

    def _release(self, ptr: int) -> None:
        n = self.refs.get(ptr, 0) - 1
        if n <= 0:
            self.refs.pop(ptr, None)
            self.live -= self.sizes.pop(ptr, 0)
        else:
            self.refs[ptr] = n

    @contextlib.contextmanager
    def active(self) -> Iterator["SavedTensorTracker"]:
        import torch

        with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
            yield self


class _Held:
    __slots__ = ("t", "owner", "ptr")

    def __init__(self, t: Any, owner: SavedTensorTracker | None, ptr: Any) -> None:
        self.t, self.owner, self.ptr = t, owner, ptr

    def __del__(self) -> None:
        if self.owner is not None:
            self.owner._release(self.ptr)


def saved_in_graph(roots: list[Any], exclude: set[int], inputs: set[int]) -> tuple[int, int]:
    """Walk the autograd graph behind ``roots``; return (bytes of distinct saved storages not
    in ``exclude`` or ``inputs``, bytes of saved views into ``inputs`` storages).

    Reads each node's ``_saved_*`` attributes (built-in ops) and ``saved_tensors`` (custom
    Functions), so it sees saved tensors whatever saved-tensor hooks the learner installs.
    A saved view of the input batch counts its own elements (a frame x[:, t] is B·F values).
    """
    import torch

    sizes: dict[int, int] = {}
    views: set[tuple[int, int, int]] = set()
    seen: set[int] = set()
    stack = [r.grad_fn for r in roots if getattr(r, "grad_fn", None) is not None]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        tensors: list[Any] = []
        for attr in dir(fn):
            if attr.startswith("_saved_"):
                try:
                    v = getattr(fn, attr)
                except RuntimeError:  # already freed by a backward
                    continue
                tensors.extend(v if isinstance(v, (tuple, list)) else [v])
        if hasattr(fn, "saved_tensors"):
            try:
                tensors.extend(fn.saved_tensors)
            except RuntimeError:
                pass
        for t in tensors:
            if not torch.is_tensor(t):
                continue
            ptr, nb = storage_key(t)
            if ptr in inputs:
                views.add((ptr, t.storage_offset(), t.numel() * t.element_size()))
            elif ptr not in exclude and nb:
                sizes[ptr] = nb
        stack.extend(nf for nf, _ in fn.next_functions)
    return sum(sizes.values()), sum(v[2] for v in views)


def rss_bytes() -> int:
    """Resident set size of this process now (bytes)."""
    import psutil

    return int(psutil.Process(os.getpid()).memory_info().rss)


def rss_peak(fn: Callable[[], Any], interval: float = 0.001) -> tuple[int, int, Any]:
    """Run ``fn`` while memory-profiler samples this process's RSS every ``interval`` s.

    Returns (RSS just before, max sampled RSS during, fn's result), in bytes. memory-profiler
    samples from a helper process, so this also catches short spikes when interval ≤ 1 ms.
    """
    from memory_profiler import memory_usage

    before = rss_bytes()
    peak_mib, result = memory_usage((fn, (), {}), interval=interval, max_usage=True,
                                    retval=True, include_children=False, backend="psutil")
    peak = int(float(peak_mib) * 2**20)
    return before, max(peak, before), result


def hardware_description(gpu: bool = True) -> str:
    """CPU model, cores, RAM (and, with ``gpu``, the GPU name if any: that imports torch) — no host
    names."""
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except Exception:  # noqa: BLE001 - description only
        ram = "RAM unknown"
    desc = f"{model}; {os.cpu_count()} cores; {ram}; {platform.system()} {platform.machine()}"
    with contextlib.suppress(Exception):
        if gpu:
            import torch

            if torch.cuda.is_available():
                desc += f"; GPU {torch.cuda.get_device_name(0)}"
    return desc


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
