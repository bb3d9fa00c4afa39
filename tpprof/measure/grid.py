"""Measurement grids: expand rules × nets × B × C × T × dtype × device, run each point in a
fresh subprocess, append one row per finished point, resume on rerun.

A grid comes from CLI flags or a TOML file::

    [protocol]            # optional; CLI flags override
    batches = 1           # measured mini-batches in the memory window
    repeats = 3           # timed mini-batches (median)
    warmup = 1
    timeout = 600         # seconds per point
    rss = true            # also sample process RSS (CPU secondary counter)

    [[grid]]              # each block is a Cartesian product; the grid is their union
    rule = ["tp", "tess", "bptt"]
    net = ["shd", "700-450-450-20"]
    batch = [16, 128]
    classes = [20]        # optional: the net's readout when absent
    steps = [25, 400]
    dtype = ["fp32"]      # optional
    device = ["cpu"]      # optional
    optimizer = ["adam"]  # optional; also cadence, aux
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from tpprof.config import TRAINABLE_RULES, Config, Grid, RuleSpec, make_config
from tpprof.errors import UserError
from tpprof.measure.claims import PointClaims
from tpprof.store import append_row, finished_keys, point_key, point_label

GRID_KEYS = ("rule", "net", "batch", "classes", "steps", "dtype", "device")
#: Every RuleSpec field but the name may be a grid key too (optimizer, cadence, aux, lr, ...).
RULE_KEYS = tuple(f.name for f in dataclasses.fields(RuleSpec) if f.name != "name")
PROTOCOL_KEYS = ("batches", "repeats", "warmup", "timeout", "rss", "threads", "seed")
#: Longest timeout per point a grid accepts (a week), and the most points one grid may expand to.
MAX_TIMEOUT_S = 7 * 86400.0
MAX_POINTS = 100_000


@dataclass(frozen=True)
class Protocol:
    """How each point is measured (see :mod:`tpprof.measure.protocol`)."""

    batches: int = 1
    repeats: int = 3
    warmup: int = 1
    timeout: float = 600.0
    rss: bool = True
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batches", "repeats", "warmup", "threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "warmup" else 1) or v > 10**6:
                raise UserError(name, f"{str(v)[:40]!r} is not a valid count", "an integer 1..10^6 (warmup >= 0)")
        t = self.timeout
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 < t <= MAX_TIMEOUT_S:
            raise UserError("timeout", f"{str(t)[:40]!r} is not a number of seconds in (0, {MAX_TIMEOUT_S}]", "e.g. 600")
        if not isinstance(self.rss, bool):  # `rss = "no"` must not read as true
            raise UserError("rss", f"{str(self.rss)[:40]!r} is not true or false", "true or false (TOML booleans)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise UserError("seed", f"{str(self.seed)[:40]!r} is not a seed", "an integer 0..2^32-1")


@dataclass(frozen=True)
class Point:
    """One grid point: the config, the label the user gave the net, the device."""

    cfg: Config
    net: str
    device: str = "cpu"

    def key_row(self) -> dict[str, Any]:
        from tpprof.measure.protocol import config_columns

        return config_columns(self.cfg, self.device, self.net)

    @property
    def key(self) -> tuple[str, ...]:
        return point_key(self.key_row())

    def label(self) -> str:
        return point_label(self.key_row())


_STR_KEYS = ("rule", "net", "dtype", "device", "optimizer", "cadence", "aux")
_INT_KEYS = ("batch", "classes", "steps")


def _as_list(name: str, v: Any) -> list[Any]:
    """A grid value as a list of scalars of the right type: strings for rule/net/dtype/device/
    optimizer/cadence/aux, integers (never bools, floats, NaN or inf) for batch/classes/steps."""
    items = list(v) if isinstance(v, (list, tuple)) else [v]
    if not items:
        raise UserError(name, "is an empty list", "at least one value")
    for it in items:
        if it is None and name == "classes":
            continue
        if name in _STR_KEYS:
            if not isinstance(it, str) or not it.strip():
                raise UserError(name, f"{str(it)[:40]!r} is not a non-empty string", f"e.g. {name} = [\"...\"]")
        elif name in _INT_KEYS:
            if isinstance(it, bool) or not isinstance(it, int):  # `true` or 2.7 are not silently 1 or 2
                raise UserError(name, f"{str(it)[:40]!r} is not an integer", "integers 1..10^9, e.g. [16, 128]")
    return items


def _check_device(dev: str) -> str:
    d = str(dev).strip().lower()
    if d != "cpu" and not (d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit())):
        raise UserError("device", f"{dev!r} is not known", "cpu, cuda, cuda:N")
    return d


def expand_block(block: Mapping[str, Any]) -> list[Point]:
    """One product block → points: per rule and net a :class:`tpprof.config.Grid` over the other
    keys (any RuleSpec field may be a key, e.g. ``lr`` or ``train_s``), so every value is checked
    by Config itself (``2.7`` or ``true`` for a batch is an error, not coerced)."""
    keys = GRID_KEYS + RULE_KEYS
    unknown = set(block) - set(keys)
    if unknown:
        raise UserError("grid", f"unknown key(s) {sorted(unknown)}", ", ".join(keys))
    for need in ("rule", "net", "batch", "steps"):
        if need not in block:
            raise UserError("grid", f"a block lacks {need!r}", "rule, net, batch, steps (classes, dtype, device optional)")
    lists = {k: _as_list(k, block[k]) for k in keys if k in block}
    n = math.prod(len(v) for v in lists.values())
    if n > MAX_POINTS:  # counted before expanding: a 2 KB grid must not allocate millions of configs
        raise UserError("grid", f"a block expands to {n:,} points", f"at most {MAX_POINTS:,} per grid; split it")
    points = []
    for rule in lists.pop("rule"):
        r = str(rule).strip().lower() if isinstance(rule, str) else rule
        if r not in TRAINABLE_RULES:
            raise UserError("rule", f"{rule!r} has no torch learner to measure", ", ".join(TRAINABLE_RULES))
        for net in lists["net"]:
            if not isinstance(net, str):
                raise UserError("net", f"{net!r} is not a net string", "a preset or net string, e.g. shd")
            axes = tuple((k, tuple(v)) for k, v in lists.items() if k not in ("net", "device"))
            base = make_config(net.strip(), r, steps=1, batch=1)
            for cfg in Grid(base, axes).configs():
                for dev in lists.get("device", ["cpu"]):
                    points.append(Point(cfg, net.strip(), _check_device(dev)))
    return points


def expand(blocks: Iterable[Mapping[str, Any]]) -> list[Point]:
    """The union of blocks, first occurrence kept, in order."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for b in blocks:
        if not isinstance(b, Mapping):
            raise UserError("grid", f"a block is a {type(b).__name__}, not a table", "[[grid]] tables")
        for p in expand_block(b):
            if p.key not in seen:
                seen.add(p.key)
                out.append(p)
        if len(out) > MAX_POINTS:
            raise UserError("grid", f"the blocks expand to more than {MAX_POINTS:,} points", "a smaller grid; split it")
    return out


def load_grid(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A grid TOML file → (blocks, protocol overrides)."""
    from tpprof.tablefile import read_table_file

    p = Path(path)
    data = read_table_file(p, "grid")
    if not isinstance(data, dict):
        raise UserError("grid", f"{p.name} is not a table", "[protocol] and [[grid]] tables")
    unknown = set(data) - {"grid", "protocol"}
    if unknown:
        raise UserError("grid", f"{p.name} has unknown section(s) {sorted(unknown)}", "[protocol] and [[grid]]")
    blocks = data.get("grid")
    if not isinstance(blocks, list) or not blocks:
        raise UserError("grid", f"{p.name} has no [[grid]] block", "one or more [[grid]] tables")
    proto = data.get("protocol", {})
    if not isinstance(proto, Mapping):
        raise UserError("protocol", f"{p.name}: protocol is a {type(proto).__name__}, not a table",
                        "a [protocol] table, e.g. [protocol] repeats = 3")
    bad = set(proto) - set(PROTOCOL_KEYS)
    if bad:
        raise UserError("protocol", f"unknown key(s) {sorted(bad)}", ", ".join(PROTOCOL_KEYS))
    return blocks, dict(proto)


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------

RunOne = Callable[[Point, Protocol], dict[str, Any]]


def failure_row(point: Point, protocol: Protocol, status: str, error: str, wall_s: float) -> dict[str, Any]:
    """A row for a point that did not finish (no torch import: the parent stays light)."""
    from importlib import metadata

    from tpprof.measure.counters import COUNTER_CUDA, COUNTER_PROFILER
    from tpprof.measure.protocol import PEAK_DEFINITION, provenance

    try:
        tv = metadata.version("torch")
    except metadata.PackageNotFoundError:
        tv = ""
    row = point.key_row()
    row.update(counter=COUNTER_CUDA if point.device.startswith("cuda") else COUNTER_PROFILER,
               peak_definition=PEAK_DEFINITION, warmup_batches=protocol.warmup, batches=protocol.batches,
               repeats=protocol.repeats, seed=protocol.seed, threads=protocol.threads,
               status=status, error=" ".join(error.split())[:300], wall_s=wall_s)
    row.update(provenance(torch_version=tv, gpu=point.device.startswith("cuda")))
    return row


#: Markers of an allocation failure in a point's stderr (torch's CPU and CUDA allocators, Python, C++).
OOM_MARKERS: tuple[str, ...] = ("out of memory", "memoryerror", "outofmemoryerror", "can't allocate memory",
                                "cannot allocate memory", "std::bad_alloc", "failed to allocate")
#: Exit code of a point whose allocation failed (written by :func:`tpprof.measure.protocol.main`).
EXIT_OOM = 3
#: Seconds the child's own deadline runs past the parent's (the parent normally acts first).
CHILD_GRACE_S = 5.0


def oom_kill_count() -> int | None:
    """The kernel's OOM-kill counter (``/proc/vmstat`` ``oom_kill`` plus this cgroup's, v1 or v2),
    or None when none is readable. An increase across a point's run means the kernel's OOM
    killer fired, so a SIGKILL then is ``oom``; otherwise it is ``killed`` (e.g. a user's kill -9)."""
    total, seen = 0, False
    for path, key in (("/proc/vmstat", "oom_kill"), ("/sys/fs/cgroup/memory.events", "oom_kill"),
                      ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill")):
        try:
            for line in Path(path).read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    total += int(parts[1])
                    seen = True
        except (OSError, ValueError):
            continue
    return total if seen else None


def _classify(returncode: int, stderr: str, oom_kills: int | None = None) -> str:
    """``oom`` for an allocation failure (exit :data:`EXIT_OOM`, a marker in stderr, or a SIGKILL
    while the kernel's OOM-kill counter rose: ``oom_kills`` > 0), ``killed`` for another signal,
    ``timeout`` for the child's own deadline (SIGALRM), else ``error``."""
    text = stderr.lower()
    if returncode == EXIT_OOM or any(m in text for m in OOM_MARKERS):
        return "oom"
    if returncode == -signal.SIGALRM:
        return "timeout"
    if returncode in (-signal.SIGKILL, 137):
        return "oom" if oom_kills else "killed"
    if returncode < 0:
        return "killed"
    return "error"


def _last_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("USDT:")]
    return lines[-1] if lines else "no message"


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's process group (the child and anything it started), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state)
        pass


def run_subprocess(point: Point, protocol: Protocol, timing: bool = True) -> dict[str, Any]:
    """Measure one point in a fresh ``python -m tpprof.measure.protocol`` process
    (``timing=False``: memory window only, for benchmarks).

    Fault handling: the child runs in its own process group (the parent's timeout kills the
    whole group); on Linux it asks the kernel for SIGKILL when this parent dies
    (``PR_SET_PDEATHSIG``) and exits if the parent is already gone; it also arms its own
    deadline (``timeout`` + :data:`CHILD_GRACE_S`, SIGALRM's default action ends it even inside
    native code), so it never outlives a killed, stopped or hung parent by more than that.
    """
    deadline = protocol.timeout + CHILD_GRACE_S
    spec = {"config": point.cfg.to_dict(), "net": point.net, "device": point.device,
            "batches": protocol.batches, "repeats": protocol.repeats, "warmup": protocol.warmup,
            "rss": protocol.rss, "seed": protocol.seed, "threads": protocol.threads, "timing": timing,
            "parent_pid": os.getpid(), "deadline_s": deadline}
    env = dict(os.environ)
    # Large blocks go to mmap and back to the OS when freed, so RSS follows tensor memory.
    env.update(MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS=str(protocol.threads),
               MKL_NUM_THREADS=str(protocol.threads))
    kills0 = oom_kill_count()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tpprof.measure.protocol", json.dumps(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=os.name == "posix")
    try:
        stdout, stderr = proc.communicate(timeout=protocol.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return failure_row(point, protocol, "timeout", f"exceeded {protocol.timeout:g} s",
                           time.perf_counter() - t0)
    except BaseException:  # Ctrl-C or any error here: the point's process must not outlive us
        _kill_group(proc)
        raise
    wall = time.perf_counter() - t0
    rc = proc.returncode
    if rc != 0:
        kills1 = oom_kill_count()
        oom_kills = None if kills0 is None or kills1 is None else kills1 - kills0
        status = _classify(rc, stderr, oom_kills)
        if rc == -signal.SIGALRM:
            msg = f"exceeded its own deadline of {deadline:g} s"
        elif rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            msg = f"killed by {name}" + (" (the kernel's OOM killer fired meanwhile)" if status == "oom" else
                                         " (not the OOM killer, as far as the kernel's counter tells)"
                                         if oom_kills == 0 else "")
        else:
            msg = _last_error_line(stderr)
        return failure_row(point, protocol, status, msg, wall)
    try:
        row = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return failure_row(point, protocol, "error", "the point printed no result row", wall)
    row["wall_s"] = wall
    return row


#: What the zygote imports once (one module, :mod:`tpprof.measure.preload`, so the zygote's command
#: line names no module a point's process is recognised by).
ZYGOTE_PRELOAD: tuple[str, ...] = ("tpprof.measure.preload",)
_ZYGOTE: Any = None
_ZYGOTE_LOCK = threading.Lock()


def _zygote(threads: int) -> Any:
    """The multiprocessing context whose fork server (started once, with the measuring
    environment: glibc's mmap threshold, ``threads`` OpenMP/MKL threads) has imported
    :data:`ZYGOTE_PRELOAD`."""
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None:
            import multiprocessing as mp
            from multiprocessing import forkserver

            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(list(ZYGOTE_PRELOAD))
            env = {"MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            old = {k: os.environ.get(k) for k in env}
            os.environ.update(env)  # the fork server reads them when it starts, its children inherit them
            try:
                forkserver.ensure_running()
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            _ZYGOTE = ctx
    return _ZYGOTE


def _zygote_child(spec: dict[str, Any], conn: Any) -> None:
    """One point in a process forked from the zygote: measure, send ("ok", row) or (status, message)."""
    from tpprof.measure.protocol import measure_point, tie_to_parent

    tie_to_parent(os.getppid(), spec["deadline_s"])  # dies with the zygote, which dies with the parent
    fd = os.open(spec["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)  # the profiler's and torch's notes, and a crash's last words, go to the parent's file
    os.close(fd)
    cfg = Config.from_dict(spec["config"])
    kw = {k: spec[k] for k in ("device", "batches", "repeats", "warmup", "rss", "seed", "threads", "timing")}
    try:
        row = measure_point(cfg, **kw)
        row["net"] = spec["net"]
        msg: tuple[str, Any] = ("ok", row)
    except UserError as e:
        msg = ("error", str(e))
    except MemoryError as e:
        msg = ("oom", f"MemoryError: {e}")
    except Exception as e:  # noqa: BLE001 - a failed point is data
        text = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        msg = ("oom" if any(m in text.lower() for m in OOM_MARKERS) else "error", text)
    conn.send(msg)
    conn.close()


def run_forked(point: Point, protocol: Protocol, timing: bool = True) -> dict[str, Any]:
    """Measure one point in a fresh process forked from the zygote (:func:`_zygote`): isolated
    as :func:`run_subprocess` (its own process, so its peak and RSS are its own; killed with its
    process on timeout), without paying the interpreter's and torch's import per point."""
    ctx = _zygote(protocol.threads)
    spec = {"config": point.cfg.to_dict(), "net": point.net, "device": point.device,
            "batches": protocol.batches, "repeats": protocol.repeats, "warmup": protocol.warmup,
            "rss": protocol.rss, "seed": protocol.seed, "threads": protocol.threads, "timing": timing,
            "deadline_s": protocol.timeout + CHILD_GRACE_S}
    import tempfile

    err_fd, spec["stderr"] = tempfile.mkstemp(prefix="tpprof-point-", suffix=".err")
    os.close(err_fd)
    try:
        return _run_forked(ctx, point, protocol, spec)
    finally:
        Path(spec["stderr"]).unlink(missing_ok=True)


def _run_forked(ctx: Any, point: Point, protocol: Protocol, spec: dict[str, Any]) -> dict[str, Any]:
    recv, send = ctx.Pipe(duplex=False)
    kills0 = oom_kill_count()
    t0 = time.perf_counter()
    proc = ctx.Process(target=_zygote_child, args=(spec, send))  # not daemonic: the RSS sampler may start one
    proc.start()
    send.close()
    msg = None
    try:
        while msg is None:
            left = t0 + protocol.timeout - time.perf_counter()
            if recv.poll(max(0.0, min(left, 0.5))):
                try:
                    msg = recv.recv()
                except EOFError:  # the process died before it could answer
                    break
            elif not proc.is_alive() and not recv.poll(0):
                break
            elif left <= 0:
                proc.kill()
                proc.join(10)
                return failure_row(point, protocol, "timeout", f"exceeded {protocol.timeout:g} s",
                                   time.perf_counter() - t0)
    except BaseException:  # Ctrl-C or any error here: the point's process must not outlive us
        proc.kill()
        raise
    finally:
        recv.close()
    proc.join(30)
    wall = time.perf_counter() - t0
    if msg is None:
        rc = proc.exitcode if proc.exitcode is not None else -signal.SIGKILL
        kills1 = oom_kill_count()
        oom_kills = None if kills0 is None or kills1 is None else kills1 - kills0
        try:
            stderr = Path(spec["stderr"]).read_text(errors="replace")
        except OSError:
            stderr = ""
        status = _classify(rc, stderr, oom_kills)
        if rc == -signal.SIGALRM:
            return failure_row(point, protocol, status, f"exceeded its own deadline of {spec['deadline_s']:g} s", wall)
        name = signal.Signals(-rc).name if rc < 0 and -rc in signal.Signals._value2member_map_ else f"exit {rc}"
        return failure_row(point, protocol, status, f"ended ({name}) without a row: {_last_error_line(stderr)}", wall)
    status, body = msg
    if status != "ok":
        return failure_row(point, protocol, status, str(body), wall)
    body["wall_s"] = wall
    return body


def run_in_process(point: Point, protocol: Protocol, factory: Any = None) -> dict[str, Any]:
    """Measure one point in this process (tests, notebooks); errors become rows too."""
    from tpprof.measure.protocol import measure_point

    t0 = time.perf_counter()
    try:
        row = measure_point(point.cfg, device=point.device, batches=protocol.batches, repeats=protocol.repeats,
                            warmup=protocol.warmup, rss=protocol.rss, seed=protocol.seed,
                            threads=protocol.threads, factory=factory)
    except MemoryError as e:
        return failure_row(point, protocol, "oom", f"MemoryError: {e}", time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - a failed point is data; the grid goes on
        status = "oom" if any(m in f"{type(e).__name__}: {e}".lower() for m in OOM_MARKERS) else "error"
        return failure_row(point, protocol, status, f"{type(e).__name__}: {e}", time.perf_counter() - t0)
    row["net"] = point.net
    row["wall_s"] = time.perf_counter() - t0
    return row


@dataclass
class GridResult:
    """What a grid run did."""

    ran: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    busy: int = 0  # points another run on the same file was measuring (skipped here)

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.ran)


def run_grid(points: Sequence[Point], out: str | Path, protocol: Protocol, run_one: RunOne = run_subprocess,
             retry_failed: bool = False, progress: bool = True, executor: Any = None) -> GridResult:
    """Run every point not yet in ``out``; append and flush one row per finished point.

    ``executor`` (:mod:`tpprof.executor`): ``None`` runs the points here in order; a
    ``RayExecutor`` runs each in a fresh Ray worker and the rows are appended as they arrive.
    """
    from tqdm import tqdm

    from tpprof.store import check_out_file

    check_out_file(out)  # a folder or an unwritable path fails before any point is measured
    done = _Finished(out, retry_failed)
    todo = [p for p in points if p.key not in done.keys]
    res = GridResult(skipped=len(points) - len(todo))
    claims = PointClaims(out)
    try:
        if executor is not None:  # points go out in bulk: claim them all now
            todo = _claimed(todo, claims, done, res)
        bar = tqdm(total=len(todo), desc="measure" if executor is None else f"measure ({executor.name})",
                   unit="point", file=sys.stderr, disable=not progress, dynamic_ncols=True)

        def in_order() -> Iterator[dict[str, Any]]:  # here, one point after the other, each claimed then named
            for p in todo:
                if not _claimed([p], claims, done, res):
                    bar.update(1)
                    continue
                bar.set_postfix_str(p.label(), refresh=True)
                yield run_one(p, protocol)

        for row in in_order() if executor is None else executor.imap(run_one, todo, protocol):
            done.wrote(point_key(row), append_row(out, row))
            claims.release(point_key(row))
            res.ran.append(row)
            bar.update(1)
        bar.close()
    finally:
        claims.close()
    return res


class _Finished:
    """The keys already in the results file, re-read only when the file changed other than by
    this run's own appends (another run on the same file)."""

    def __init__(self, out: str | Path, retry_failed: bool) -> None:
        self.out, self.retry_failed = Path(out), retry_failed
        self.keys = finished_keys(out, retry_failed=retry_failed)
        self.state = self._state()

    def _state(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.out)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def fresh(self) -> set[tuple[str, ...]]:
        if self._state() != self.state:
            self.keys = finished_keys(self.out, retry_failed=self.retry_failed)
            self.state = self._state()
        return self.keys

    def wrote(self, key: tuple[str, ...], start: int) -> None:
        """This run appended ``key`` at offset ``start``: the file is still known when nothing
        else was appended since it was last read (another run's rows force a re-read)."""
        from tpprof.store import state_after_append

        self.keys.add(key)
        known = self.state is not None and start == self.state[1]
        # the state the append left, taken under its lock: a stat now could already include
        # another run's row that this run never read
        self.state = state_after_append(self.out) if known else None


def _claimed(points: Sequence[Point], claims: PointClaims, done: _Finished, res: GridResult) -> list[Point]:
    """The points this run now holds (another run's are counted in ``res.busy``), less those the
    file gained since it was read (another run finished them: counted as skipped)."""
    mine = [p for p in points if claims.claim(p.key)]
    res.busy += len(points) - len(mine)
    if not mine:
        return mine
    keys = done.fresh()
    for p in mine:
        if p.key in keys:
            claims.release(p.key)
            res.skipped += 1
    return [p for p in mine if p.key not in keys]
