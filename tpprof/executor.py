"""Where the points of a measurement grid run: here, one after another (default), or on Ray.

An executor maps ``run_one(point, protocol) -> row`` over points and yields the rows as they
finish; :func:`tpprof.measure.grid.run_grid` appends each one to the results file at once
(``append_row`` flushes and fsyncs), so a crash of the driver loses no finished point and a
rerun resumes from the file as before.

* :class:`LocalExecutor` — today's behaviour: in order, in this process (``run_one`` itself
  starts the fresh measurement subprocess). Imports nothing.
* :class:`RayExecutor` — one Ray task per point with ``max_calls=1``: every point runs in a
  fresh worker process that exits after it, so peaks stay absolute (no allocator or import
  state carried between points). Rows come back in completion order. ``address``: ``"local"``
  starts a private local instance listening on 127.0.0.1 only (:func:`_init_local_loopback`), ``"auto"`` joins a running cluster (``ray start``), or a
  ``ray://`` / ``host:port`` address. Needs ``pip install 'tpprof[ray]'``.

:func:`make_executor` turns a user value (``None``/``local``, ``ray``, ``ray:ADDRESS``) into one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tpprof.errors import UserError

__all__ = ["LocalExecutor", "RayExecutor", "make_executor", "worker_pid"]

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
            try:
                if address == "local":
                    _init_local_loopback(ray, runtime_env=env, **kw)
                else:
                    ray.init(address=address, runtime_env=env, **kw)
            except UserError:
                raise
            except Exception as e:  # noqa: BLE001 - no cluster at that address etc.
                first = (str(e).splitlines() or [type(e).__name__])[0]
                raise UserError("ray", f"cannot start or join Ray at {address!r} ({first})",
                                "local, auto (a running 'ray start' cluster) or ray://HOST:PORT") from None

    def imap(self, run_one: RunOne, points: Sequence[Any], protocol: Any) -> Iterator[Any]:
        """Yield ``run_one(point, protocol)`` per point as the tasks finish; a lost worker gives a
        failure row for grid points (:class:`tpprof.measure.grid.Point`) and re-raises otherwise."""
        from tpprof.measure.grid import Point, failure_row

        ray = self.ray
        task = ray.remote(max_calls=1, num_cpus=self.num_cpus, max_retries=0)(_call)
        fn_ref = ray.put(run_one)
        pending = {task.remote(fn_ref, p, protocol): (p, time.perf_counter()) for p in points}
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


def make_executor(value: str | None, jobs: int = 1, pool: str = "process") -> LocalExecutor | RayExecutor:
    """``None`` / ``local`` → :class:`LocalExecutor` (``jobs`` workers of kind ``pool``); ``ray`` /
    ``ray:auto`` / ``ray:ADDRESS`` → :class:`RayExecutor`."""
    v = (value or "local").strip()
    if v.lower() == "local":
        return LocalExecutor(jobs, pool)
    if v.lower() == "ray" or v.lower().startswith("ray:"):
        return RayExecutor(v[4:] or "local")
    raise UserError("executor", f"{value!r} is not known", "local, ray, ray:auto, ray:HOST:PORT")


