"""The house's structure, read from the code's own imports (every ``import`` in tpprof/, those
inside functions too, parsed with ast): no import circle between modules, no module importing
its own package's front door (``tpprof.analytic.grid`` → ``tpprof.analytic``), and the rooms'
floors as docs/architecture.md draws them (a room imports only rooms on lower floors)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tpprof"

#: Rooms (a module directly under tpprof/, or a subpackage) by floor, lowest first. A room may
#: import rooms on lower floors only; a room not listed is checked for circles but has no floor.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("_version", "errors"),  # 0
    ("units", "resources", "hdf5_guard"),  # 1
    ("device", "tablefile"),  # 2
    ("config",),  # 3: the vocabulary, the specs, Config, Grid
    ("nir_io", "store", "data"),  # 4
    ("__init__", "config_flags"),  # 5: the package (registers the .nir net reader with the vocabulary);
    # tpprof/cli/config_flags.py, user values → Config for the CLI, the app and the report (and --nir-dt)
    ("analytic",),  # 6
    ("snn", "target", "validate"),  # 7: the backends (torch, microcontroller) and the one join
    ("measure", "train", "datafiles"),  # 8
    ("executor", "nb_metrics"),  # 9
    ("compare",),  # 10: the comparison run (accuracy results rows)
    ("views",),  # 11
    ("plots",),  # 12
    ("report",),  # 13
    ("app",),  # 14
    ("cli",),  # 15
    ("__main__",),  # 16
)


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    """``tpprof.config.make_config`` → ``tpprof.config``: the longest prefix that is a module."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _edges(mods: dict[str, Path]) -> dict[str, set[tuple[str, int]]]:
    """module → {(imported module, line)}: every tpprof import, at module level or in a function."""
    out: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # ``from .x import y`` inside package P: P.x.y
                    pkg = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
                    base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for n in names:
                if n == "tpprof" or n.startswith("tpprof."):
                    t = _resolve(n, mods)
                    if t and t != m:
                        out[m].add((t, node.lineno))
    return out


#: Modules that are a room of their own inside another room's folder.
OWN_ROOMS: dict[str, str] = {"tpprof.cli.config_flags": "config_flags"}


def _room(module: str) -> str:
    parts = module.split(".")
    return OWN_ROOMS.get(module) or ("__init__" if len(parts) == 1 else parts[1])


MODS = _modules()
EDGES = _edges(MODS)


def test_no_import_circle() -> None:
    graph = {m: {t for t, _ in EDGES[m]} for m in MODS}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan: a strongly connected set of 2+ modules is a circle
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_no_module_imports_its_own_package() -> None:
    up = [f"{m} → {t} (line {line})" for m, ts in EDGES.items() for t, line in ts if m.startswith(t + ".")]
    assert not up, "imports that run back up into the package's __init__: " + "; ".join(sorted(up))


def test_rooms_import_only_lower_floors() -> None:
    floor = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
    bad = []
    for m, ts in EDGES.items():
        a = _room(m)
        for t, line in ts:
            b = _room(t)
            if a != b and a in floor and b in floor and floor[b] >= floor[a]:
                bad.append(f"{m} (floor {floor[a]}) → {t} (floor {floor[b]}), line {line}")
    assert not bad, "imports that run up or sideways: " + "; ".join(sorted(bad))


def test_every_room_today_has_a_floor() -> None:
    rooms = {_room(m) for m in MODS} - {"shipped"}
    missing = rooms - {r for rs in FLOORS for r in rs}
    assert not missing, f"rooms without a floor in FLOORS (and docs/architecture.md): {sorted(missing)}"


@pytest.mark.parametrize("room", ["config", "units", "device", "tablefile", "errors"])
def test_the_vocabulary_imports_only_the_vocabulary(room: str) -> None:
    vocab = {"config", "units", "device", "tablefile", "errors", "_version"}
    outside = sorted({t for m, ts in EDGES.items() if _room(m) == room for t, _ in ts if _room(t) not in vocab})
    assert not outside, f"tpprof.{room} imports {outside}"


def test_net_files_reach_their_reader_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # The vocabulary dispatches a net file by suffix to a registered reader; it imports no reader.
    from tpprof import config

    assert ".nir" in config.NET_FILE_READERS  # wired by tpprof/__init__
    with pytest.raises(ValueError, match="already registered"):
        config.register_net_reader(".nir", lambda path, neuron: config.parse_net("shd"))
    seen = []

    def reader(path: str, neuron: object) -> object:
        seen.append(path)
        return config.parse_net("40-8-3")

    monkeypatch.setitem(config.NET_FILE_READERS, ".toynet", reader)
    cfg = config.make_config(" my.TOYNET ", "tp", batch=2)
    assert seen == ["my.TOYNET"] and cfg.net.to_string() == "40-8-3"


def test_the_vocabulary_loads_without_nir_io_or_numpy() -> None:
    import subprocess
    import sys

    code = ("import sys, tpprof.config; "
            "print(sorted(m for m in ('tpprof.nir_io', 'numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""}).stdout.strip()
    assert out == "[]"
