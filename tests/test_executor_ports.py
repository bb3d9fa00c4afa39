"""The local Ray instance that ``measure --executor ray`` starts listens on loopback only (issue 23,
S2): while its tasks run, every listening socket of the driver and of every process it started
(GCS, raylet, agents, workers) is bound to 127.0.0.1 / ::1 / ::ffff:127.0.0.1. Ray's defaults bind
them to every interface, unauthenticated; the control below shows that, so the test can fail."""

from __future__ import annotations

import ipaddress
import os

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")


def _listening() -> list[tuple[str, int, str]]:
    """(address, port, process name) of every listening socket of this process and its descendants."""
    me = psutil.Process()
    pids = {p.pid for p in [me, *me.children(recursive=True)]}
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        pytest.skip("psutil cannot list sockets here (needs more privileges)")
    out = []
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.pid in pids:
            try:
                name = psutil.Process(c.pid).name()
            except psutil.Error:
                name = "?"
            out.append((c.laddr.ip, c.laddr.port, name))
    return out


def _loopback(ip: str) -> bool:
    a = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return a.is_loopback


def _sockets_while_points_run(executor) -> list[tuple[str, int, str]]:
    from tpprof.executor import worker_pid

    seen: list[tuple[str, int, str]] = []
    try:
        for _ in executor.imap(worker_pid, [1, 2], None):  # workers exist while rows come back
            seen += _listening()
    finally:
        executor.shutdown()
    return seen


def test_measure_ray_executor_listens_on_loopback_only():
    from tpprof.executor import RayExecutor, make_executor

    if ray.is_initialized():
        ray.shutdown()
    ex = make_executor("ray")  # what `measure --executor ray` builds
    assert isinstance(ex, RayExecutor)
    seen = _sockets_while_points_run(ex)
    names = {n for _, _, n in seen}
    assert any("gcs" in n for n in names) and any("raylet" in n for n in names), seen  # Ray's servers seen
    exposed = [s for s in seen if not _loopback(s[0])]
    assert not exposed, f"Ray ports listening beyond loopback: {exposed}"


@pytest.mark.skipif(os.environ.get("TPPROF_SLOW_CONTROLS") != "1", reason="control: set TPPROF_SLOW_CONTROLS=1")
def test_control_ray_defaults_listen_on_every_interface():
    """Ray's own ``ray.init`` (no loopback setup) exposes its servers: the test above can fail."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        seen = _listening()
    finally:
        ray.shutdown()
    assert any(not _loopback(ip) for ip, _, _ in seen), seen
