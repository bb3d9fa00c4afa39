"""Where the points of a measurement grid run: here, one after another (default), or on Ray.

An executor maps ``run_one(point, protocol) -> row`` over points and yields the rows as they
finish; :func:`tpprof.measure.grid.run_grid` appends each one to the results file at once
(``append_row`` flushes and fsyncs), so a crash of the driver loses no finished point and a
rerun resumes from the file as before.

* :class:`LocalExecutor` — today's behaviour: in order, in this process (``run_one`` itself
  starts the fresh measurement subprocess). Imports nothing.
* :class:`RayExecutor` — one Ray task per point with ``max_calls=1``: every point runs in a
  fresh worker process that exits after it, so peaks stay absolute (no allocator or import
  state carried between points). Rows come back in completion order. ``address``:

  - ``"local"`` (``ray`` / ``ray:local``): a **private** Ray instance this driver starts, listening
    on 127.0.0.1 only (:func:`_init_local_loopback`), running this interpreter; a watchdog
    (:func:`start_watchdog`) ends its processes if the driver is killed.
  - ``"auto"`` (``ray:auto``): **join the running cluster** that a ``ray start`` runs on this host —
    its workers run that cluster's Python; a probe task (:meth:`RayExecutor.check_workers`)
    refuses in one line when that is not the driver's tpprof (version and sources), Python
    (major.minor) and torch. The cluster's processes are its own: they outlive the driver.
  - ``ray://HOST:PORT`` or ``HOST:PORT``: another machine's cluster; the driver's tpprof sources
    travel as Ray ``py_modules``, and the same probe applies.

  Every row records the interpreter and tpprof that measured it (``python_executable``,
  ``tpprof_path``, ``python_version``, ``tpprof_version``). A token-authenticated cluster (Ray's
  ``RAY_AUTH_MODE=token``) that refuses the driver is reported with that cause
  (:func:`ray_failure_cause`). Needs ``pip install 'tpprof[ray]'``.

:func:`make_executor` turns a user value (``None``/``local``, ``ray``, ``ray:ADDRESS``) into one.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tpprof.errors import UserError

__all__ = ["LocalExecutor", "RayExecutor", "make_executor", "parse_executor", "check_executor", "worker_pid"]

RunOne = Callable[[Any, Any], dict]


class LocalExecutor:
    """Run the points here: in order in this process (``jobs=1``), or ``jobs`` at once (rows in
    completion order) in a pool of worker processes (``pool="process"``, as the training sweeps
    do) or of threads (``pool="thread"``: for a ``run_one`` that itself starts a process per point,
    such as ``tpprof measure``'s, so the pool costs no interpreter start-up)."""

    name = "local"

    def __init__(self, jobs: int = 1, pool: str = "process") -> None:
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise UserError("jobs", f"{jobs!r} is not a worker count", "an integer >= 1")
        if pool not in ("process", "thread"):
            raise UserError("pool", f"{pool!r} is not known", "process or thread")
        self.jobs, self.pool = jobs, pool

    def imap(self, run_one: RunOne, points: Sequence[Any], protocol: Any) -> Iterator[Any]:
        if self.jobs == 1:
            for p in points:
                yield run_one(p, protocol)
            return
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed

        kind = ThreadPoolExecutor if self.pool == "thread" else ProcessPoolExecutor
        with kind(max_workers=self.jobs) as pool:
            futs = [pool.submit(run_one, p, protocol) for p in points]
            for f in as_completed(futs):
                yield f.result()


def worker_pid(point: Any, protocol: Any) -> dict:
    """A ``run_one`` that reports the worker's process id (checks that points get fresh processes)."""
    import os

    return {"point": point, "pid": os.getpid()}


def _call(run_one: RunOne, point: Any, protocol: Any) -> dict:
    """The body of one Ray task (module level, so workers import it by name)."""
    return run_one(point, protocol)


def _init_local_loopback(ray: Any, **kw: Any) -> None:
    """Start a private local Ray whose ports (GCS, raylet, object manager, workers, agents) all
    listen on 127.0.0.1 only, not on every interface, unauthenticated, as Ray's defaults do.

    Ray replaces a loopback ``_node_ip_address`` by the host's routable address unless its
    ``ENABLE_RAY_CLUSTER`` switch is off (its local-only mode on macOS / Windows); with it off
    during ``ray.init`` the node's address is 127.0.0.1 and every server binds to it. The
    address Ray kept is checked afterwards, so a Ray that ignores the switch is refused, not
    silently exposed. The dashboard stays off."""
    import ipaddress

    try:
        from ray._private import ray_constants
    except ImportError:  # pragma: no cover - a Ray without it: the check below decides
        ray_constants = None
    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    for key in ("_node_ip_address", "include_dashboard", "dashboard_host"):
        kw.pop(key, None)
    if ray_constants is not None and saved is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                 dashboard_host="127.0.0.1", **kw)
    finally:
        if ray_constants is not None and saved is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved
    try:
        ip = ray._private.worker._global_node.node_ip_address
        loopback = ipaddress.ip_address(ip).is_loopback
    except (AttributeError, TypeError, ValueError):
        ip, loopback = None, False
    if not loopback:
        ray.shutdown()
        raise UserError("ray", f"this Ray version put the local instance on {ip!r}, not on loopback",
                        "a Ray that honours a 127.0.0.1 node address, or ray:auto with your own 'ray start'")


def tpprof_identity() -> dict[str, str]:
    """What a process runs: tpprof's version and a hash of its sources (every ``tpprof/**/*.py``),
    the folder it was imported from, Python's version and executable, torch's version (from the
    package metadata, without importing torch)."""
    import hashlib
    import platform
    import sys
    from importlib import metadata

    from tpprof._version import __version__

    root = Path(__file__).resolve().parent  # the tpprof package folder (this module lives in it)
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    try:
        torch_v = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_v = "none"
    return {"tpprof": __version__, "source": h.hexdigest()[:12], "path": str(root),
            "python": platform.python_version(), "executable": sys.executable, "torch": torch_v}


def _identity_task() -> dict[str, str]:
    """A Ray task body: the worker's :func:`tpprof_identity`."""
    return tpprof_identity()


def check_same_tpprof(driver: dict[str, str], worker: dict[str, str]) -> None:
    """Refuse, in one line, workers that would measure with another tpprof, Python or torch than
    the driver's (their rows would land in the driver's file as if the driver measured them)."""
    same = (driver["tpprof"] == worker["tpprof"] and driver["source"] == worker["source"]
            and driver["python"].rsplit(".", 1)[0] == worker["python"].rsplit(".", 1)[0]
            and driver["torch"] == worker["torch"])
    if not same:
        raise UserError("ray", f"the cluster's workers run tpprof {worker['tpprof']} (source {worker['source']}) from "
                        f"{worker['path']} with Python {worker['python']} ({worker['executable']}) and torch "
                        f"{worker['torch']}; this driver runs tpprof {driver['tpprof']} "
                        f"(source {driver['source']}) from "
                        f"{driver['path']} with Python {driver['python']} ({driver['executable']}) and torch "
                        f"{driver['torch']}", f"ray:local (a private instance of this interpreter), or a cluster "
                        f"started from this environment ({driver['executable']} -m ray.scripts.scripts start --head)")


_AUTH_WORDS = ("unauthenticated", "invalidauthtoken", "auth token", "authentication", "ray_auth")


def ray_failure_cause(e: BaseException) -> str:
    """One line saying why Ray could not start or be joined. Ray 2.5x's token authentication
    surfaces as ``ConnectionError: Failed to connect to Ray cluster at …`` whose cause (a
    RuntimeError carrying a traceback as text) ends in ``ray.exceptions.AuthenticationError: …``:
    the authentication line anywhere in the exception chain is the cause shown; else the first
    line of the error itself."""
    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in chain and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for x in chain:
        lines = [f"{type(x).__name__}: {x}".splitlines()[0]] + str(x).splitlines()[1:]
        hits = [ln.strip() for ln in lines if any(k in ln.lower() for k in _AUTH_WORDS)]
        if type(x).__name__ == "AuthenticationError" or hits:
            line = hits[-1] if hits else f"{type(x).__name__}: {x}"
            line = line.split(" Note: ")[0].split(" Ensure that ")[0]  # Ray's help text follows
            return f"authentication failed: {' '.join(line.split())[:240]}"
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return f"{type(e).__name__}: {first[:300]}"


_AUTH_HINT = ("for a token-authenticated cluster give this shell RAY_AUTH_MODE=token and the cluster's token "
              "(RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token, from 'ray get-auth-token'), or ray:local")


def start_watchdog(driver_pid: int, pids: list[int]) -> Any:
    """A small process that ends ``pids`` (and their children) when the driver dies without
    shutting Ray down (``kill -9``): Ray's own head processes otherwise outlive it for a minute
    or more. Each pid is matched with its start time, so a reused pid is never signalled. The
    watchdog exits by itself once the driver is gone or its processes are."""
    import json
    import subprocess
    import sys

    import psutil

    procs = []
    for pid in pids:
        try:
            procs.append([pid, psutil.Process(pid).create_time()])
        except psutil.Error:
            continue
    me = psutil.Process(driver_pid).create_time()
    code = (
        "import json, sys, time, psutil\n"
        "drv, t0, procs = json.loads(sys.argv[1])\n"
        "def alive(pid, t):\n"
        "    try:\n"
        "        p = psutil.Process(pid); return p.create_time() == t and p.status() != psutil.STATUS_ZOMBIE\n"
        "    except psutil.Error:\n"
        "        return False\n"
        "while alive(drv, t0) and any(alive(p, t) for p, t in procs):\n"
        "    time.sleep(0.5)\n"
        "if not alive(drv, t0):\n"
        "    victims = []\n"
        "    for pid, t in procs:\n"
        "        if alive(pid, t):\n"
        "            p = psutil.Process(pid)\n"
        "            try:\n"
        "                victims += p.children(recursive=True)\n"
        "            except psutil.Error:\n"
        "                pass\n"
        "            victims.append(p)\n"
        "    for p in victims:\n"
        "        try: p.terminate()\n"
        "        except psutil.Error: pass\n"
        "    gone, left = psutil.wait_procs(victims, timeout=3)\n"
        "    for p in left:\n"
        "        try: p.kill()\n"
        "        except psutil.Error: pass\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, json.dumps([driver_pid, me, procs])],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _ray_children(before: set[int]) -> list[int]:
    """The processes the driver started while Ray came up (its private instance's head)."""
    import os

    import psutil

    try:
        kids = psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return []
    return [k.pid for k in kids if k.pid not in before]


class RayExecutor:
    """One fresh Ray worker process per point (``max_calls=1``), rows streamed back as they finish."""

    name = "ray"

    def __init__(self, address: str = "local", num_cpus_per_point: float = 1.0, init_kwargs: dict | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("ray", "the Ray executor needs the ray package", "pip install 'tpprof[ray]'") from None
        self.ray = ray
        self.num_cpus = float(num_cpus_per_point)
        if not ray.is_initialized():
            kw = dict(init_kwargs or {})
            # Workers import tpprof from the same place as the driver (a checkout, not only an install).
            root = str(Path(__file__).resolve().parents[1])
            env = kw.pop("runtime_env", {}) or {}
            env_vars = dict(env.get("env_vars", {}))
            env_vars.setdefault("PYTHONPATH", root)
            env["env_vars"] = env_vars
            kw.setdefault("include_dashboard", False)
            kw.setdefault("logging_level", "ERROR")
            if address != "local":
                _reachable(address)
            if address not in ("local", "auto"):  # another host: ship the driver's tpprof sources
                env.setdefault("py_modules", [root + "/tpprof"])
            before = set(_ray_children(set()))
            try:
                if address == "local":
                    with _interruptible("starting a local Ray instance", timeout_s=None):  # signals only
                        _init_local_loopback(ray, runtime_env=env, **kw)
                else:
                    with _interruptible(f"joining the Ray cluster at {address}"):
                        ray.init(address=address, runtime_env=env, **kw)
            except UserError:
                raise
            except Exception as e:  # noqa: BLE001 - no cluster at that address, authentication etc.
                cause = ray_failure_cause(e)
                hint = _AUTH_HINT if cause.startswith("authentication") else (
                    "local (a private instance), auto (join the cluster a 'ray start' runs on this host) or "
                    "ray://HOST:PORT")
                raise UserError("ray", f"cannot start or join Ray at {address!r} ({cause})", hint) from None
            self.watchdog = start_watchdog(os.getpid(), _ray_children(before)) if address == "local" else None
        self.check_workers()

    def check_workers(self) -> None:
        """One probe task: its worker must run the driver's tpprof (same version and sources),
        Python (major.minor) and torch, else the run refuses in one line (:func:`check_same_tpprof`)."""
        ray = self.ray
        probe = ray.remote(max_calls=1, num_cpus=0, max_retries=0)(_identity_task)
        try:
            worker = ray.get(probe.remote(), timeout=300)
        except Exception as e:  # noqa: BLE001 - the worker cannot even import tpprof
            raise UserError("ray", f"a Ray worker could not report its tpprof ({ray_failure_cause(e)})",
                            "a cluster whose workers can import this tpprof, or ray:local") from None
        check_same_tpprof(tpprof_identity(), worker)
        self.worker_identity = worker

    def imap(self, run_one: RunOne, points: Sequence[Any], protocol: Any) -> Iterator[Any]:
        """Yield ``run_one(point, protocol)`` per point as the tasks finish; a lost worker gives a
        failure row for grid points (:class:`tpprof.measure.grid.Point`) and re-raises otherwise."""
        from tpprof.measure.grid import Point, failure_row

        ray = self.ray
        task = ray.remote(max_calls=1, num_cpus=self.num_cpus, max_retries=0)(_call)
        fn_ref = ray.put(run_one)
        pending = {task.remote(fn_ref, p, protocol): (p, time.perf_counter()) for p in points}
        with _interruptible("waiting for Ray tasks", timeout_s=None):  # ray.wait blocks in native code
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    p, t0 = pending.pop(ref)
                    try:
                        row = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - a lost worker is a failed point, the grid goes on
                        if not isinstance(p, Point):
                            raise
                        first = (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]
                        row = failure_row(p, protocol, "error", f"ray: {first}", time.perf_counter() - t0)
                    yield row

    def shutdown(self) -> None:
        self.ray.shutdown()
        wd = getattr(self, "watchdog", None)
        if wd is not None and wd.poll() is None:
            wd.terminate()
            wd.wait(timeout=5)


#: Seconds ``ray.init`` may take (start a local instance or join a cluster) before tpprof gives up.
INIT_TIMEOUT_S = 120.0


@contextlib.contextmanager
def _interruptible(what: str, timeout_s: float | None = INIT_TIMEOUT_S) -> Iterator[None]:
    """Keep SIGINT / SIGTERM and a deadline working while Ray's connect blocks in C++.

    Ray retries an unanswered connect for minutes inside native code, where Python's signal
    handlers (Ctrl-C, and the SIGTERM handler Ray installs) never get to run. Python's C-level
    handler still writes each signal's number to the wakeup fd: a watcher thread reads it and, if
    the block has not ended, prints one line, stops this process's children (Ray's) and exits
    with 128 + signal; after ``timeout_s`` (None: no deadline) it exits with 2. Main thread only
    (signals are)."""
    import select
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    done = threading.Event()
    # SIGTERM needs a Python-level handler for its number to reach the wakeup fd; once Ray runs,
    # the native crash handler it installs has it (a stack dump and SIGABRT instead of an exit).
    old_term = signal.getsignal(signal.SIGTERM)
    if not callable(old_term):
        signal.signal(signal.SIGTERM, _exit_on_term)

    def watch() -> None:
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else float("inf"))
        while not done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                _die(f"ray: {what} did not finish within {timeout_s:g} s", 2)
            ready, _, _ = select.select([r], [], [], min(left, 0.25))
            if ready:
                sig = [b for b in os.read(r, 64) if b in (signal.SIGINT, signal.SIGTERM)]
                if sig and not done.wait(0.5):  # the main thread did not return to Python to handle it
                    _die(f"ray: interrupted while {what}", 128 + sig[0])

    t = threading.Thread(target=watch, name="tpprof-ray-init-watch", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        if not callable(old_term):
            signal.signal(signal.SIGTERM, signal.SIG_DFL if old_term is None else old_term)
        signal.set_wakeup_fd(old_fd)
        t.join(2)
        os.close(r)
        os.close(w)


def _exit_on_term(signum: int, frame: Any) -> None:
    """SIGTERM while Python code runs: one line, then a normal exit (atexit stops Ray)."""
    import sys

    sys.stderr.write("tpprof: error: stopped by SIGTERM\n")
    raise SystemExit(128 + signum)


def _die(message: str, code: int) -> None:
    """One line, exit now with ``code`` (the main thread is stuck in Ray's native code), and this
    process's children stopped right after it is gone (no orphan).

    The exit comes before any child is signalled: once Ray's raylet goes, Ray's core worker in
    this process ends it with status 1 on its own, so stopping the children first and exiting
    after raced the exit code (SIGTERM seen as 1 instead of 143 on a loaded machine). The
    watchdog (:func:`start_watchdog`) waits for this process to end, then stops them."""
    import sys

    try:
        sys.stderr.write(f"tpprof: error: {message}\n")
        sys.stderr.flush()
        import psutil

        start_watchdog(os.getpid(), [k.pid for k in psutil.Process().children(recursive=True)])
    finally:
        os._exit(code)


_EXECUTORS = "local, ray, ray:auto, ray:HOST:PORT or ray:ray://HOST:PORT"
#: Seconds to wait for a TCP connection to a Ray cluster before refusing the address.
JOIN_TIMEOUT_S = 5.0


def parse_executor(value: str | None) -> tuple[str, str]:
    """``None`` / ``local`` → ("local", ""); ``ray`` → ("ray", "local"); ``ray:auto`` → ("ray", "auto");
    ``ray:HOST:PORT`` / ``ray:ray://HOST:PORT`` → ("ray", that address). Syntax only (no import
    of ray, no network): anything else is a one-line error."""
    v = (value or "local").strip()
    low = v.lower()
    if low == "local":
        return "local", ""
    if low == "ray":
        return "ray", "local"
    if not low.startswith("ray:"):
        raise UserError("executor", f"{value!r} is not known", _EXECUTORS)
    address = v[4:]
    if not address:  # "ray:" is plain "ray"
        return "ray", "local"
    if address.lower() in ("local", "auto"):
        return "ray", address.lower()
    _host_port(address)
    return "ray", address


def _host_port(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``ray://HOST:PORT`` (IPv6 as ``[::1]:PORT``) → (host, port)."""
    import ipaddress
    import re

    rest = address[len("ray://"):] if address.lower().startswith("ray://") else address
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})|([A-Za-z0-9.-]{1,253}):([0-9]{1,5})", rest)
    if not m:
        raise UserError("executor", f"ray address {address[:60]!r} is not HOST:PORT", _EXECUTORS)
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if m.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UserError("executor", f"{host!r} is not an IPv6 address", _EXECUTORS) from None
    elif host.startswith(("-", ".")) or ".." in host:
        raise UserError("executor", f"{host!r} is not a host name", _EXECUTORS)
    if not 1 <= int(port) <= 65535:
        raise UserError("executor", f"port {port} is out of range", "1..65535")
    return host, int(port)


def _reachable(address: str, timeout_s: float = JOIN_TIMEOUT_S) -> None:
    """Refuse (one line) a cluster address nothing answers at within ``timeout_s`` seconds, before
    Ray's own connect, which retries for minutes and cannot be interrupted while it does."""
    import socket

    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            found = canonicalize_bootstrap_address("auto")
        except Exception as e:  # noqa: BLE001 - Ray's own "no cluster" errors
            found = None
            why = (str(e).splitlines() or [type(e).__name__])[0][:200]
        else:
            why = "no running 'ray start' cluster found"
        if not found:
            raise UserError("ray", f"cannot join Ray at 'auto' ({why})", "start one with 'ray start --head', or use ray")
        address = found
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise UserError("ray", f"nothing answers at {host}:{port} ({why})",
                        f"the address of a running Ray cluster (checked for {timeout_s:g} s)") from None


def check_executor(value: str | None) -> str:
    """What ``measure --dry-run`` checks without starting anything: the spec's syntax, that ray is
    installed, and that a cluster address answers. Returns a one-line description."""
    kind, address = parse_executor(value)
    if kind == "local":
        return "local executor"
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise UserError("ray", "the Ray executor needs the ray package", "pip install 'tpprof[ray]'")
    if address == "local":
        return "ray executor: a private local instance on 127.0.0.1"
    _reachable(address)
    return f"ray executor: cluster at {address} answers"


def make_executor(value: str | None, jobs: int = 1, pool: str = "process") -> LocalExecutor | RayExecutor:
    """``None`` / ``local`` → :class:`LocalExecutor` (``jobs`` workers of kind ``pool``); ``ray`` /
    ``ray:auto`` / ``ray:ADDRESS`` → :class:`RayExecutor` (see :func:`parse_executor`)."""
    kind, address = parse_executor(value)
    if kind == "local":
        return LocalExecutor(jobs, pool)
    return RayExecutor(address)


