"""NIR (Neuromorphic Intermediate Representation) files in and out of tpprof.

Import (:func:`read_nir_net`): a ``.nir`` file (HDF5, written by snnTorch, Norse, SpikingJelly,
Lava-dl, Rockpool, Sinabs or :func:`write_nir`) → :class:`tpprof.config.NetSpec` plus a list
of mapped-with-caveats notes. The graph must be a chain::

    Input → [Flatten] → W_1 → [pool] → N_1 → [pool] → … → W_out → [LI | I] → Output

with W_l ∈ {Affine, Linear, Conv2d}, N_l ∈ {LIF, CubaLIF, IF}, pools ∈ {SumPool2d, AvgPool2d}
(kernel = stride = 2, or the 2×2 adaptive form), and an optional recurrent Affine/Linear
R_l whose only input and only output is N_l (``N_l → R_l → N_l``). A spiking last layer
(``W_out → LIF → Output``, snnTorch's usual net) is read as tpprof's integrator readout with a note.

Neuron parameters (NIR's continuous-time LIF, forward-Euler with step dt, as snnTorch and
nirtorch integrate it)::

    τ dv/dt = (v_leak − v) + R I   ⇒   v^t = (1 − dt/τ) v^{t−1} + (dt R/τ) I^t
    α = 1 − dt/τ   (IF: α = 1)       input gain g = dt R/τ  (IF: g = dt R)
    CubaLIF: α = 1 − dt/τ_mem, trace decay β = 1 − dt/τ_syn (the synaptic filter of the inputs)
    LIF / IF: β = α (NIR has no trace; tpprof's input traces then decay like the membrane)
    reset: NIR resets to v_reset ⇒ hard reset (v_reset must be 0); v_threshold → v_th.

dt comes from the graph's metadata ``dt``; else, when every neuron has r ≠ 1, from snnTorch's
unit-gain convention r = τ/dt (dt = τ/r, noted); else it is an error. Graphs written by
:func:`write_nir` carry ``tpprof.*`` metadata (the neuron's soft reset, β, ordering, surrogate
scale, the conv weight standardisation) so that importing them gives back the same NetSpec.

Export (:func:`write_nir`): a learner (trained weights) → ``Input → Linear/Conv2d (+Flatten)
→ LIF (+ recurrent Linear) → … → Linear → I → Output`` with τ = dt/(1 − α), r = τ/dt (unit
input gain), v_reset = 0, and the readout m^t = m^{t−1} + W_out a^t as NIR's integrator
I (dv/dt = R I, r = 1/dt). Conv weights are exported as the standardised Ŵ the forward uses.
NIR has no soft reset and no max-pool: a soft-reset net is written with NIR's hard reset
(noted, and kept in the metadata for tpprof), a max-pool layer is an error.

numpy and h5py only here; ``nir`` is imported lazily (``pip install 'tpprof[nir]'``).
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tpprof.config import LayerSpec, NetSpec, NeuronSpec, net_file_dt
from tpprof.errors import ConfigError, UserError

__all__ = ["read_nir_net", "net_from_graph", "graph_from_learner", "write_nir", "net_for_parse", "NIR_DT",
           "MAX_ELEMENTS"]

#: dt written by :func:`write_nir`: snnTorch's and its importer's fixed step, so they run it as-is.
NIR_DT = 1e-4
#: Most elements a .nir file may declare, summed over all its arrays, before anything is read.
MAX_ELEMENTS = 10**8
#: Largest layer width accepted (as the net-string parser).
MAX_WIDTH = 10**7
_FIELD = "net"
_ACCEPTED_NODES = "Input, Output, Affine, Linear, Conv2d, Flatten, SumPool2d, AvgPool2d, LIF, CubaLIF, IF, LI, I"
_WEIGHT = ("Affine", "Linear", "Conv2d")
_SPIKING = ("LIF", "CubaLIF", "IF")
_INTEGRATOR = ("LI", "I")
_POOL = ("SumPool2d", "AvgPool2d")


def _nir() -> Any:
    try:
        import nir
    except ImportError:
        raise ConfigError(_FIELD, "reading or writing .nir files needs the nir package",
                        "pip install 'tpprof[nir]' (or pip install nir)") from None
    return nir


def _err(node: str, problem: str, accepted: str | None = None) -> ConfigError:
    return ConfigError(_FIELD, f"NIR node {node!r}: {problem}", accepted)


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _precheck_hdf5(path: Path) -> None:
    """Open the HDF5 file and reject it before ``nir.read`` loads every array into memory:
    unreadable / truncated files, and the structures :func:`tpprof.hdf5_guard.check_hdf5_tree`
    refuses (external storage, virtual datasets, external or soft links, depth, object count,
    more than :data:`MAX_ELEMENTS` elements summed over every array)."""
    import h5py

    from tpprof.hdf5_guard import HostileHDF5, Limits, check_hdf5_tree

    try:
        with h5py.File(path, "r") as f:
            if not f.id.links.exists(b"node"):
                raise ConfigError(_FIELD, f"{path.name} has no NIR 'node' group", "a .nir file written by nir.write")
            check_hdf5_tree(f, "node", Limits(max_elements=MAX_ELEMENTS))
    except ConfigError:
        raise
    except HostileHDF5 as e:
        raise ConfigError(_FIELD, f"{path.name} refused: {e}",
                          "a .nir file written by nir.write (arrays stored in the file itself, "
                          f"at most {MAX_ELEMENTS:.0e} elements in all)") from None
    except Exception as e:  # noqa: BLE001 - truncated / foreign file is the user's file
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ConfigError(_FIELD, f"{path.name} is not a readable NIR/HDF5 file ({first})",
                          "a .nir file written by nir.write") from None


def read_nir_net(path: str | os.PathLike, neuron: NeuronSpec | None = None,
                 dt: float | None = None) -> tuple[NetSpec, list[str]]:
    """``.nir`` file → (NetSpec, caveat notes). One-line :class:`ConfigError` on anything unmappable.

    ``dt``: the step to use when the graph's metadata has none (``--nir-dt``); None means
    :func:`tpprof.config.net_file_dt` (the CLI's ``--nir-dt``, else unset)."""
    net, notes, _ = read_nir_file(path, neuron, dt)
    return net, notes


def read_nir_file(path: str | os.PathLike, neuron: NeuronSpec | None = None,
                  dt: float | None = None) -> tuple[NetSpec, list[str], "NirWeights"]:
    """``.nir`` file → (NetSpec, notes, :class:`NirWeights`): :func:`read_nir_net` plus the
    file's weights as the learner's parameters (see :func:`net_from_graph`)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(_FIELD, f"NIR file {str(path)!r} does not exist", "a path to a .nir file")
    nir = _nir()
    _precheck_hdf5(p)
    try:
        graph = nir.read(p, type_check=False)
    except Exception as e:  # noqa: BLE001 - malformed node fields, shapes, types
        _raise_if_newer_nir(p, nir)
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(_FIELD, f"{p.name} does not parse as a NIR graph ({type(e).__name__}: {first})",
                          "a .nir file written by nir.write") from None
    weights = NirWeights()
    try:
        net, notes = net_from_graph(graph, name=p.name, dt=dt, weights=weights)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a hostile graph (odd dtypes, shapes) is the user's file
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(_FIELD, f"{p.name} does not map onto a tpprof net ({type(e).__name__}: {first})",
                          "a chain of " + _ACCEPTED_NODES) from None
    notes += [f"{n}: no v_reset in the file; NIR's default v_reset = 0 is used (a hard reset to 0)"
              for n in _spiking_without_v_reset(p)]
    if neuron is not None:
        net = replace(net, neuron=neuron)
    return net, notes, weights


def _spiking_without_v_reset(path: Path) -> list[str]:
    """Spiking nodes (LIF, CubaLIF, IF) whose group in the file has no ``v_reset``: ``nir.read``
    fills in NIR's default 0 without a word, so the note says it (the walk is bounded: the file
    passed :func:`_precheck_hdf5`)."""
    import h5py

    out: list[str] = []
    with h5py.File(path, "r") as f:
        stack = [(f["node"], "")]
        while stack:
            graph, prefix = stack.pop()
            nodes = graph.get("nodes")
            if not isinstance(nodes, h5py.Group):
                continue
            for name, g in nodes.items():
                if not isinstance(g, h5py.Group):
                    continue
                kind = g.get("type")
                kind = kind[()] if isinstance(kind, h5py.Dataset) else b""
                kind = kind.decode("utf8", "replace") if isinstance(kind, bytes) else str(kind)
                if kind == "NIRGraph":
                    stack.append((g, f"{prefix}{name}."))
                elif kind in _SPIKING and "v_reset" not in g:
                    out.append(f"{prefix}{name}")
    return sorted(out)


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in str(v).split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def file_nir_version(path: Path) -> str | None:
    """The ``version`` string :func:`nir.write` stores at the file's root (None when absent)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            v = f["version"][()] if "version" in f else None
    except Exception:  # noqa: BLE001 - unreadable files are reported by the caller
        return None
    if isinstance(v, bytes):
        v = v.decode("utf8", "replace")
    return str(v)[:40] if v is not None else None


def _raise_if_newer_nir(path: Path, nir: Any) -> None:
    """A file that fails to parse and was written by a newer nir than the one installed:
    say both versions (a newer writer may add node types or fields an older reader lacks)."""
    wrote, have = file_nir_version(path), str(getattr(nir, "version", getattr(nir, "__version__", "?")))
    if wrote and _version_tuple(wrote) > _version_tuple(have):
        raise ConfigError(_FIELD, f"{path.name} was written by nir {wrote}, newer than the installed nir {have}",
                          f"pip install -U 'nir>={wrote}'") from None




class NirWeights:
    """The learner's parameters read from a NIR graph, and why they cannot be loaded.

    ``tensors``: ``{"layer{i}.W", "layer{i}.R", "readout.W"}`` → float arrays shaped like
    :class:`tpprof.snn.nets.SpikingNet`'s parameters, with each neuron's input gain
    g = dt·r/τ folded in (I = g (W a + R s) = (gW) a + (gR) s). ``blockers``: one line per
    thing the learner cannot take (a bias, per-neuron or per-layer parameters that differ, a
    CubaLIF's synaptic current, pooling before the neuron, SumPool), each naming its node.
    ``nodes``: the NIR node each tensor came from (for errors)."""

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}
        self.nodes: dict[str, str] = {}
        self.blockers: list[str] = []

    def block(self, node: str, why: str) -> None:
        self.blockers.append(f"NIR node {node!r}: {why}")

    def check(self) -> None:
        """One-line :class:`ConfigError` naming the first node the learner cannot take."""
        if self.blockers:
            more = f" (and {len(self.blockers) - 1} more)" if len(self.blockers) > 1 else ""
            raise ConfigError(_FIELD, f"{self.blockers[0]}{more}; its weights cannot start a tpprof learner",
                              "a chain of bias-free Linear/Conv2d → LIF/IF layers with one α and v_th "
                              "(or use the file for sizing only: tpprof estimate --net FILE)")


def _flatten(graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Inline sub-graphs: nodes get ``prefix.name``; a sub-graph's own Input/Output nodes become
    pass-through nodes (type ``_Pass``) that :func:`_contract` removes."""
    nir = _nir()
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    sub_in: dict[str, list[str]] = {}
    sub_out: dict[str, list[str]] = {}
    if not isinstance(getattr(graph, "nodes", None), dict) or not isinstance(getattr(graph, "edges", None), list):
        raise ConfigError(_FIELD, "the file's top node is not a NIR graph", "a NIRGraph")
    for name, node in graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            sn, se = _flatten(node, full + ".")
            nodes.update(sn)
            edges.extend(se)
            sub_in[full] = [f"{full}.{k}" for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            sub_out[full] = [f"{full}.{k}" for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(sub_in[full]) != 1 or len(sub_out[full]) != 1:
                raise _err(full, "is a sub-graph without exactly one Input and one Output", "a chain of layers")
        elif prefix and isinstance(node, (nir.Input, nir.Output)):
            nodes[full] = "_Pass"
        else:
            nodes[full] = node
    for e in graph.edges:
        if not (isinstance(e, (tuple, list)) and len(e) == 2):
            raise ConfigError(_FIELD, f"edge {e!r} is not a (source, target) pair", "pairs of node names")
        a, b = (f"{prefix}{str(x)}" for x in e)
        a = sub_out[a][0] if a in sub_out else a
        b = sub_in[b][0] if b in sub_in else b
        for x in (a, b):
            if x not in nodes:
                raise _err(x, "is named by an edge but is not a node", "edges between the graph's nodes")
        edges.append((a, b))
    return nodes, edges


def _contract(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Remove pass-through nodes, joining each predecessor to each successor."""
    edges = list(dict.fromkeys(edges))
    for name in [n for n, v in nodes.items() if isinstance(v, str) and v == "_Pass"]:
        preds = [a for a, b in edges if b == name]
        succs = [b for a, b in edges if a == name]
        edges = [e for e in edges if name not in e] + [(a, b) for a in preds for b in succs]
        del nodes[name]
    return list(dict.fromkeys(edges))


def _arr(node_name: str, node: Any, attr: str) -> np.ndarray:
    v = getattr(node, attr, None)
    if v is None:
        raise _err(node_name, f"has no {attr}", f"a {type(node).__name__} with {attr}")
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise _err(node_name, f"{attr} is not numeric", "a numeric array") from None
    if a.size == 0:
        raise _err(node_name, f"{attr} is empty", "a non-empty array")
    if not np.all(np.isfinite(a)) and attr not in ("tau", "tau_mem", "tau_syn"):
        raise _err(node_name, f"{attr} has NaN or infinite values", "finite numbers")
    if np.any(np.isnan(a)):
        raise _err(node_name, f"{attr} has NaN values", "finite positive time constants")
    return a


def _uniform(node_name: str, attr: str, a: np.ndarray, notes: list[str]) -> float:
    """One value for a per-neuron array; the mean with a note when the neurons differ."""
    lo, hi = float(np.min(a)), float(np.max(a))
    if not math.isclose(lo, hi, rel_tol=1e-6, abs_tol=1e-12):
        notes.append(f"{node_name}: {attr} differs across neurons ({lo:.4g}..{hi:.4g}); tpprof uses the mean "
                     f"{float(np.mean(a)):.4g} (memory unaffected, dynamics approximated)")
        return float(np.mean(a))
    return lo


def _shape_of(node: Any, key: str) -> tuple[int, ...] | None:
    t = getattr(node, key, None)
    if not isinstance(t, dict) or not t:
        return None
    v = next(iter(t.values()))
    if v is None:
        return None
    try:
        arr = np.asarray(v).reshape(-1)
        return tuple(int(x) for x in arr)
    except (TypeError, ValueError):
        return None


def _meta(graph: Any) -> dict[str, Any]:
    m = getattr(graph, "metadata", None)
    if not isinstance(m, dict):
        return {}
    out = {}
    for k, v in m.items():
        if isinstance(v, bytes):
            v = v.decode("utf8", "replace")
        elif isinstance(v, np.generic) or (isinstance(v, np.ndarray) and v.shape == ()):
            v = v.item()
        out[str(k)] = v
    return out


def _order_chain(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> tuple[list[str], dict[str, str]]:
    """(chain of node names from the Input to the Output, {neuron: its recurrent weight node})."""
    nir = _nir()
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a == b:
            raise _err(a, "connects to itself", "a recurrent Affine/Linear between a neuron's output and input")
        succs[a].append(b)
        preds[b].append(a)
    recurrent: dict[str, str] = {}
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind in ("Affine", "Linear") and len(preds[name]) == 1 and succs[name] == preds[name]:
            target = preds[name][0]
            if type(nodes[target]).__name__ not in _SPIKING:
                raise _err(name, f"feeds back into {target!r}, a {type(nodes[target]).__name__}",
                           "recurrence onto a LIF / CubaLIF / IF layer")
            if target in recurrent:
                raise _err(name, f"is a second recurrent weight of {target!r}", "one recurrent weight per layer")
            recurrent[target] = name
    for neuron, w in recurrent.items():
        succs[neuron].remove(w)
        preds[neuron].remove(w)
        del succs[w], preds[w]
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConfigError(_FIELD, f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes",
                          "exactly one Input and one Output (a chain of layers)")
    chain = [inputs[0]]
    seen = {inputs[0]}
    while chain[-1] != outputs[0]:
        cur = chain[-1]
        nxt = succs[cur]
        if len(nxt) != 1:
            raise _err(cur, f"has {len(nxt)} outgoing edges" + (f" ({', '.join(map(repr, nxt[:3]))})" if nxt else ""),
                       "a chain of layers: one successor per node, recurrence only as neuron → Affine → same neuron")
        n = nxt[0]
        if n in seen:
            raise _err(n, "closes a cycle that is not a recurrent weight of one layer",
                       "a chain of layers, recurrence only as neuron → Affine/Linear → same neuron")
        if len(preds[n]) != 1:
            raise _err(n, f"has {len(preds[n])} incoming edges (a merge or a cycle)",
                       "a chain of layers: no skip, merge or feedback edges except one layer's recurrent weight")
        chain.append(n)
        seen.add(n)
    left = [n for n in preds if n not in seen]
    if left:
        raise _err(left[0], "is not on the path from the Input to the Output", "a chain of layers")
    return chain, recurrent


def _dt(meta: dict[str, Any], neurons: list[tuple[str, Any]], notes: list[str], given: float | None = None) -> float:
    """The graph's step: its metadata ``dt``; else ``given`` (``--nir-dt``); else τ/r when every
    leaky neuron has r ≠ 1 (snnTorch's unit-gain convention r = τ/dt); else a one-line error."""
    if "dt" in meta:
        try:
            dt = float(meta["dt"])
        except (TypeError, ValueError):
            raise ConfigError(_FIELD, f"graph metadata dt = {meta['dt']!r} is not a number", "a positive dt") from None
        if not (dt > 0 and math.isfinite(dt)):
            raise ConfigError(_FIELD, f"graph metadata dt = {dt!r} is not positive", "a positive, finite dt")
        if given is not None and not math.isclose(given, dt, rel_tol=1e-9):
            notes.append(f"--nir-dt {given:g} ignored: the graph's metadata says dt = {dt:g}")
        return dt
    if given is not None:
        notes.append(f"dt = {given:g} from --nir-dt (the graph's metadata has none)")
        return float(given)
    leaky = [(n, v) for n, v in neurons if type(v).__name__ in ("LIF", "CubaLIF", "LI")]
    if not leaky:
        return _dt_if_only(neurons, notes)
    ests = []
    for name, node in leaky:
        tau = _arr(name, node, "tau_mem" if type(node).__name__ == "CubaLIF" else "tau")
        r = _arr(name, node, "r")
        if np.allclose(r, 1.0) or np.any(r <= 0):
            raise _err(name, "the time step dt is missing (no graph metadata 'dt', and r = 1 does not give it)",
                       "--nir-dt SECONDS (your simulation step, e.g. --nir-dt 1e-3), graph.metadata['dt'], "
                       "or r = τ/dt (snnTorch's convention)")
        ests.append(float(np.median(tau / r)))
    dt = float(np.median(ests))
    if not (dt > 0 and math.isfinite(dt)):
        raise _err(leaky[0][0], f"dt inferred as τ/r = {dt!r}", "positive τ and r, or graph.metadata['dt']")
    notes.append(f"dt is not in the graph's metadata; inferred dt = τ/r = {dt:.4g} (snnTorch's unit-gain "
                 f"convention r = τ/dt)")
    return dt


def _dt_if_only(neurons: list[tuple[str, Any]], notes: list[str]) -> float:
    """IF / I only and no dt: α = 1 needs none; the input gain dt·r does. r ≠ 1 on every node:
    dt = 1/r (SpikingJelly's unit-gain convention, noted); else dt = 1, so r = 1 enters with gain 1
    (the discrete reading Sinabs, Norse and snn-mlir give IF with r = 1)."""
    rs = [_arr(n, v, "r") for n, v in neurons if getattr(v, "r", None) is not None]
    if rs and all(np.all(r > 0) and not np.allclose(r, 1.0) for r in rs):
        dt = float(np.median([np.median(1.0 / r) for r in rs]))
        notes.append(f"dt is not in the graph's metadata; inferred dt = 1/r = {dt:.4g} (IF input gain dt·r = 1)")
        return dt
    return 1.0


def _decay(name: str, tau: np.ndarray, dt: float, notes: list[str], what: str) -> float:
    """α = 1 − dt/τ (forward Euler); τ = ∞ gives 1. Must be in [0, 1]."""
    if np.any(tau <= 0):
        raise _err(name, f"{what} τ has values <= 0", "positive time constants")
    a = 1.0 - dt / tau
    val = _uniform(name, f"decay 1 − dt/{what}", a, notes)
    if not 0.0 <= val <= 1.0:
        raise _err(name, f"{what} τ = {float(np.min(tau)):.4g} is shorter than dt = {dt:.4g} (decay {val:.4g})",
                   "τ >= dt")
    return round(val, 6)


def _pool_kind(name: str, node: Any, shape: tuple[int, ...], notes: list[str]) -> tuple[str, tuple[int, ...]]:
    """(tpprof pool, pooled shape) for a SumPool2d / AvgPool2d on a C×H×W map."""
    if len(shape) != 3:
        raise _err(name, f"pools a flat input {shape}", "pooling on C×H×W maps")
    k, s, pad = (np.asarray(getattr(node, a, 0)).reshape(-1) for a in ("kernel_size", "stride", "padding"))
    k, s = (np.broadcast_to(v, (2,)) if v.size in (1, 2) else v for v in (k, s))
    if k.size != 2 or s.size != 2 or np.any(pad != 0):
        raise _err(name, f"pool kernel {k.tolist()}, stride {s.tolist()}, padding {pad.tolist()}",
                   "kernel = stride = 2 (or H/2 × W/2 to 2×2), no padding")
    c, h, w = shape
    kind = type(node).__name__
    if tuple(k) == (2, 2) and tuple(s) == (2, 2):
        pool, out = "avg2", (c, h // 2, w // 2)
    elif tuple(k) == tuple(s) and h == 2 * int(k[0]) and w == 2 * int(k[1]):
        pool, out = "adapt2", (c, 2, 2)
    else:
        raise _err(name, f"pool kernel {k.tolist()} stride {s.tolist()} on a {h}x{w} map",
                   "kernel = stride = 2, or a pool to 2×2")
    if kind == "SumPool2d":
        notes.append(f"{name}: SumPool2d read as average pooling (same shapes and memory; the sum is "
                     f"{int(k[0] * k[1])}× the average)")
    return pool, out


def net_from_graph(graph: Any, name: str = "", dt: float | None = None,
                   weights: NirWeights | None = None) -> tuple[NetSpec, list[str]]:
    """A ``nir.NIRGraph`` → (NetSpec, notes); see the module docstring for the mapping.

    ``dt``: the step when the metadata has none (else :func:`tpprof.config.net_file_dt`); ``weights``: filled
    with the learner's parameters and the blockers (:class:`NirWeights`)."""
    notes: list[str] = []
    wts = weights if weights is not None else NirWeights()
    meta = _meta(graph)
    nodes, edges = _flatten(graph)
    edges = _contract(nodes, edges)
    for n, node in nodes.items():
        kind = type(node).__name__
        if kind not in _ACCEPTED_NODES.split(", "):
            raise _err(n, f"has type {kind}, which tpprof cannot map", _ACCEPTED_NODES)
    chain, recurrent = _order_chain(nodes, edges)
    _check_graph_values(nodes, edges, chain)
    in_shape = _shape_of(nodes[chain[0]], "input_type") or _shape_of(nodes[chain[0]], "output_type")
    in_shape = _strip_batch(chain, nodes, in_shape, notes)
    if not in_shape or len(in_shape) not in (1, 3) or any(d < 1 or d > MAX_WIDTH for d in in_shape):
        raise _err(chain[0], f"input shape {in_shape}", "F or C×H×W, each 1..10^7")
    neurons = [(n, nodes[n]) for n in chain if type(nodes[n]).__name__ in _SPIKING + _INTEGRATOR]
    dt = _dt(meta, neurons, notes, dt if dt is not None else net_file_dt())

    shape: tuple[int, ...] = tuple(in_shape)
    layers: list[LayerSpec] = []
    neuron_params: list[tuple[str, float, float, float, str]] = []  # (node, α, β, v_th, reset)
    pending: tuple[str, Any, int] | None = None  # (node name, node, width)
    pool_before: str | None = None
    readout_neuron: str | None = None
    body = chain[1:-1]
    for i, n in enumerate(body):
        node = nodes[n]
        kind = type(node).__name__
        if readout_neuron is not None:
            raise _err(n, f"follows the integrator {readout_neuron!r}", "LI / I only as the last node before Output")
        if kind in _WEIGHT:
            if pending is not None:
                raise _err(n, f"follows the weight node {pending[0]!r} without a neuron between",
                           "weight → neuron layers")
            w = _arr(n, node, "weight")
            if kind == "Conv2d":
                if len(shape) != 3:
                    raise _err(n, f"is a Conv2d on a flat input {shape}", "conv layers on a C×H×W input, before dense")
                if w.ndim != 4 or w.shape[1] != shape[0] or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
                    raise _err(n, f"weight shape {w.shape} does not fit input {shape}",
                               f"(C_out, {shape[0]}, k, k) with k odd")
                k = int(w.shape[2])
                stride = np.asarray(node.stride).reshape(-1)
                dil = np.asarray(node.dilation).reshape(-1)
                pad = node.padding
                pad_ok = (isinstance(pad, str) and pad == "same") or (
                    not isinstance(pad, str) and np.all(np.asarray(pad).reshape(-1) == k // 2))
                if np.any(stride != 1) or np.any(dil != 1) or int(node.groups) != 1 or not pad_ok:
                    raise _err(n, f"conv stride {stride.tolist()}, padding {pad!r}, dilation {dil.tolist()}, "
                               f"groups {int(node.groups)}", "stride 1, padding k//2 ('same'), dilation 1, groups 1")
                if not 1 <= w.shape[0] <= 10**6:
                    raise _err(n, f"has {w.shape[0]} output channels", "1..10^6")
                width = int(w.shape[0])
                shape_after = (width, shape[1], shape[2])
            else:
                n_in = math.prod(shape)
                if w.ndim != 2 or w.shape[1] != n_in:
                    raise _err(n, f"weight shape {w.shape} does not fit its input of {n_in} values",
                               f"(H, {n_in})")
                width = int(w.shape[0])
                if not 1 <= width <= MAX_WIDTH:
                    raise _err(n, f"width {width} is out of range", "1..10^7")
                shape_after = (width,)
            if kind in ("Affine", "Conv2d"):
                b = _arr(n, node, "bias")
                if np.any(b != 0):
                    wts.block(n, f"has a bias ({b.size} values); tpprof's learners have none")
                    notes.append(f"{n}: bias ({b.size} values) not modelled (tpprof nets have no biases; "
                                 f"{b.size * 1} parameters not counted)")
            pending = (n, node, width)
            wts.tensors["_pending"] = w
            shape = shape_after
        elif kind == "Flatten":
            if pending is not None:
                raise _err(n, "flattens between a weight and its neuron", "Flatten before a dense weight")
            shape = (math.prod(shape),)
        elif kind in _POOL:
            if pending is not None and pending[1].__class__.__name__ == "Conv2d":
                pool, shape = _pool_kind(n, node, shape, notes)
                pool_before = pool
                wts.block(n, "pools before the neuron; tpprof pools the spikes after it (another computation)")
                notes.append(f"{n}: pooling before the neuron; tpprof pools the spikes after it, so this layer's "
                             f"neuron state is counted at the unpooled size (an over-estimate)")
            elif pending is None and layers and layers[-1].kind == "conv" and layers[-1].pool == "none":
                pool, shape = _pool_kind(n, node, shape, notes)
                layers[-1] = replace(layers[-1], pool=pool)
                if kind == "SumPool2d":
                    wts.block(n, "sums where tpprof averages (4x the spikes the next layer sees)")
            else:
                raise _err(n, "pools where tpprof cannot", "one pool per conv layer, after its conv weight or neuron")
        elif kind in _SPIKING:
            if pending is None:
                raise _err(n, "has no weight node before it", "weight → neuron layers")
            wname, wnode, width = pending
            size = _neuron_size(n, node)
            want = math.prod(shape) if pool_before is None else None
            if pool_before is None and size not in (1, want):
                raise _err(n, f"has {size} neurons but {wname!r} gives {want}", f"{want} neurons (or one shared value)")
            neuron_params.append(_neuron(n, node, dt, notes))
            gain = neuron_params[-1][5]
            li = len(layers) + 1
            wts.tensors[f"layer{li}.W"] = gain * wts.tensors.pop("_pending")
            wts.nodes[f"layer{li}.W"] = wname
            rec = recurrent.get(n)
            if type(wnode).__name__ == "Conv2d":
                if rec:
                    raise _err(rec, "is a recurrent weight on a conv layer", "recurrence on dense layers")
                k = int(np.asarray(wnode.weight).shape[2])
                # pool_before: tpprof pools the spikes, so neuron_shape is the unpooled map (noted above)
                layers.append(LayerSpec("conv", width, kernel=k, pool=pool_before or "none", weight_std=False))
            else:
                if rec:
                    r = _arr(rec, nodes[rec], "weight")
                    if r.shape != (width, width):
                        raise _err(rec, f"recurrent weight shape {r.shape}", f"({width}, {width})")
                    if type(nodes[rec]).__name__ == "Affine" and np.any(_arr(rec, nodes[rec], "bias") != 0):
                        wts.block(rec, f"has a recurrent bias ({width} values); tpprof's learners have none")
                        notes.append(f"{rec}: recurrent bias ({width} values) not modelled")
                    wts.tensors[f"layer{li}.R"] = gain * r
                    wts.nodes[f"layer{li}.R"] = rec
                layers.append(LayerSpec("recurrent" if rec else "dense", width))
            pending, pool_before = None, None
        elif kind in _INTEGRATOR:
            if pending is None or i != len(body) - 1:
                raise _err(n, "is a leaky integrator that is not the readout", "LI / I right after the last weight")
            if type(nodes[n]).__name__ == "LI":
                tau = _arr(n, node, "tau")
                a = 1.0 if np.all(np.isinf(tau)) else _decay(n, tau, dt, notes, "τ")
                if a != 1.0:
                    notes.append(f"{n}: leaky readout (decay {a:.4g}) read as tpprof's non-leaky integrator "
                                 f"m^t = m^(t-1) + W_out a^t (same memory)")
            readout_neuron = n
        else:  # Input / Output in the middle
            raise _err(n, f"is a {kind} inside the chain", "one Input at the start and one Output at the end")
    if pending is not None:
        wname, wnode, width = pending
        if type(wnode).__name__ == "Conv2d":
            raise _err(wname, "is a conv readout", "a dense (Affine / Linear) readout")
        readout = width
        wts.tensors["readout.W"] = wts.tensors.pop("_pending") * _readout_gain(readout_neuron, nodes, dt)
        wts.nodes["readout.W"] = wname
        if readout_neuron is None:
            notes.append(f"{wname}: no neuron after the last weight; read as tpprof's integrator readout "
                         f"m^t = m^(t-1) + W_out a^t")
    else:
        if not layers or layers[-1].kind == "conv":
            raise ConfigError(_FIELD, "the graph ends in a conv layer", "a dense readout (Affine / Linear) last")
        last = layers.pop()
        if last.kind == "recurrent":
            raise _err(chain[-2], "the spiking output layer is recurrent", "a feed-forward readout")
        readout = last.width
        li = len(layers) + 1
        wts.tensors["readout.W"] = wts.tensors.pop(f"layer{li}.W")
        wts.nodes["readout.W"] = wts.nodes.pop(f"layer{li}.W")
        if not _is_integrator_lif(nodes[chain[-2]], meta):
            notes.append(f"{chain[-2]}: spiking output layer read as tpprof's non-spiking integrator readout "
                         f"(its membrane of {readout} units per sample is not counted)")
        neuron_params.pop()
    if not layers:
        raise ConfigError(_FIELD, "the graph has no hidden spiking layer", "at least one weight → LIF layer before the readout")
    _check_output(nodes, chain, int(readout), readout_neuron)
    spec = _neuron_spec(neuron_params, meta, notes, wts)
    layers = _restore_weight_std(layers, meta)
    try:
        net = NetSpec(tuple(in_shape), tuple(layers), int(readout), spec, name=name)
    except ConfigError as e:
        raise ConfigError(_FIELD, f"the NIR graph maps to an invalid net ({e})", "a chain tpprof can model") from None
    return net, notes


def _check_graph_values(nodes: dict[str, Any], edges: list[tuple[str, str]], chain: list[str]) -> None:
    """What the chain walk does not see: an edge into the Input or out of the Output (a cycle
    through them), complex arrays (numpy would drop the imaginary part with a warning), a
    fractional input shape, and a neuron's resistance r that is not positive and finite."""
    first, last = chain[0], chain[-1]
    for a, b in edges:
        if b == first or a == last:
            raise _err(f"{a} → {b}", "is an edge into the Input or out of the Output (a cycle)",
                       "a chain from the Input to the Output")
    for n, node in nodes.items():
        for attr, v in vars(node).items() if hasattr(node, "__dict__") else ():
            if isinstance(v, np.ndarray) and np.iscomplexobj(v):
                raise _err(n, f"{attr} is complex", "real numbers")
    for key in ("input_type", "output_type"):
        t = getattr(nodes[first], key, None)
        for v in (t.values() if isinstance(t, dict) else ()):
            a = np.asarray(v)
            if a.dtype.kind not in "iuf" or (a.dtype.kind == "f" and not np.all(np.isfinite(a) & (a == np.round(a)))):
                raise _err(first, f"input shape {a.tolist()!r} is not whole numbers", "F or C×H×W, each 1..10^7")
    for n in chain:
        kind = type(nodes[n]).__name__
        if kind in _SPIKING + _INTEGRATOR:
            r = _arr(n, nodes[n], "r")
            if not np.all(r > 0):
                raise _err(n, f"r = {float(np.min(r)):.4g} is not positive", "a positive, finite resistance r")


def _check_output(nodes: dict[str, Any], chain: list[str], readout: int, readout_neuron: str | None) -> None:
    """The Output node's declared shape must be the readout's width (it sizes the logits)."""
    shape = _shape_of(nodes[chain[-1]], "output_type")
    if shape is not None and math.prod(shape) != readout:
        raise _err(chain[-1], f"declares {math.prod(shape)} outputs but the readout has {readout}",
                   f"an Output of {readout}")


def _is_integrator_lif(node: Any, meta: dict[str, Any]) -> bool:
    """tpprof's own readout LIF (:func:`readout_nodes`): α = 1 and a threshold it never reaches."""
    if meta.get("tpprof.writer") != "tpprof" or type(node).__name__ != "LIF":
        return False
    return bool(np.all(np.asarray(node.v_threshold, dtype=np.float64) >= READOUT_VTH * 0.999))


def _neuron_size(name: str, node: Any) -> int:
    return int(_arr(name, node, "v_threshold").size)


def _neuron(name: str, node: Any, dt: float,
            notes: list[str]) -> tuple[str, float, float, float, str, float, list[str]]:
    """(node, α, β, v_th, reset, input gain g, blockers) of one spiking node (see the module
    docstring). Blockers: what a learner starting from the file's weights cannot take."""
    kind = type(node).__name__
    blockers: list[str] = []
    n_before = len(notes)
    v_th = _uniform(name, "v_threshold", _arr(name, node, "v_threshold"), notes)
    if not v_th > 0:
        raise _err(name, f"v_threshold {v_th} is not positive", "a positive threshold")
    v_reset = _arr(name, node, "v_reset") if getattr(node, "v_reset", None) is not None else np.zeros(1)
    if np.any(v_reset != 0):
        raise _err(name, f"resets to v_reset = {float(np.max(np.abs(v_reset))):.4g}", "v_reset = 0 (tpprof's hard reset)")
    r = _arr(name, node, "r")
    if kind in ("LIF", "CubaLIF"):
        v_leak = _arr(name, node, "v_leak")
        if np.any(v_leak != 0):
            raise _err(name, f"has v_leak = {float(np.max(np.abs(v_leak))):.4g}", "v_leak = 0")
        tau = _arr(name, node, "tau_mem" if kind == "CubaLIF" else "tau")
        alpha = _decay(name, tau, dt, notes, "τ_mem" if kind == "CubaLIF" else "τ")
        gain = r * dt / tau
    else:  # IF
        alpha, gain = 1.0, r * dt
    if kind == "CubaLIF":
        beta = _decay(name, _arr(name, node, "tau_syn"), dt, notes, "τ_syn")
        w_in = np.asarray(getattr(node, "w_in", 1.0), dtype=np.float64)
        notes.append(f"{name}: CubaLIF's synaptic current is not simulated; its τ_syn sets tpprof's trace decay "
                     f"β = {beta:.4g} (one extra B×{_neuron_size(name, node)} state per layer not counted)")
        blockers.append("is a CubaLIF; tpprof's learners have no synaptic current state")
        gain = gain * w_in * dt / _arr(name, node, "tau_syn")
    else:
        beta = alpha
    g = _uniform(name, "input gain dt·r/τ", np.asarray(gain, dtype=np.float64), notes)
    if any("differs across neurons" in x for x in notes[n_before:]):
        blockers.append("has per-neuron parameters that differ; tpprof's learners share one α, v_th and gain")
    if not math.isclose(g, 1.0, rel_tol=1e-4):
        notes.append(f"{name}: input gain dt·r/τ = {g:.4g} ≠ 1, i.e. the weights are scaled by {g:.4g} "
                     f"(memory unaffected; weights read into a learner are multiplied by it)")
    return name, alpha, beta, v_th, "hard", g, blockers


def _neuron_spec(params: list[tuple], meta: dict[str, Any], notes: list[str],
                 weights: NirWeights | None = None) -> NeuronSpec:
    """One NeuronSpec for every layer (tpprof shares it); other layers' differences are noted
    (and block loading the weights into a learner)."""
    first, alpha, beta, v_th, reset = params[0][:5]
    for p in params:
        for why in p[6]:
            if weights is not None:
                weights.block(p[0], why)
    for name, a, b, v, *_ in params[1:]:
        if not (math.isclose(a, alpha, rel_tol=1e-5) and math.isclose(v, v_th, rel_tol=1e-5)):
            notes.append(f"{name}: decay {a:.4g} / threshold {v:.4g} differ from {first}'s {alpha:.4g} / {v_th:.4g}; "
                         f"tpprof uses one neuron for every layer (memory unaffected)")
            if weights is not None:
                weights.block(name, f"decay {a:.4g} / threshold {v:.4g} differ from {first}'s {alpha:.4g} / "
                                    f"{v_th:.4g}; tpprof's learners share one neuron")
    kw: dict[str, Any] = {"v_th": float(v_th), "alpha": float(alpha), "beta": float(beta), "reset": reset}
    if meta.get("tpprof.writer") == "tpprof":
        # Our own export: NIR cannot say soft reset / ordering / surrogate; the metadata keeps them.
        for key in ("reset", "order"):
            if f"tpprof.{key}" in meta:
                kw[key] = str(meta[f"tpprof.{key}"])
        for key in ("beta", "surrogate_k", "alpha", "v_th"):
            if f"tpprof.{key}" in meta:
                kw[key] = float(meta[f"tpprof.{key}"])
    else:
        notes.append(f"neuron: α = {alpha:.6g}, β = {beta:.6g}, v_th = {v_th:.4g}, hard reset to 0 "
                     f"(NIR's reset), tpprof's code ordering (u = αv + I, s = Θ(u − v_th), v = u(1 − s): "
                     f"snnTorch's Leaky(reset_mechanism='zero', reset_delay=False), as its NIR importer builds)")
    try:
        return NeuronSpec(**kw)
    except ConfigError as e:
        raise ConfigError(_FIELD, f"NIR neuron parameters are out of range ({e})", "0 <= α, β <= 1, v_th > 0") from None


def _readout_gain(readout_neuron: str | None, nodes: dict[str, Any], dt: float) -> float:
    """Input gain of the readout integrator: I/LI dv/dt = r I (τ dv/dt = −v + r I) forward-Euler
    gives m += dt·r·I (LI: dt·r/τ). No node after the weight: gain 1."""
    if readout_neuron is None:
        return 1.0
    node = nodes[readout_neuron]
    r = float(np.mean(_arr(readout_neuron, node, "r")))
    if type(node).__name__ == "LI":
        tau = _arr(readout_neuron, node, "tau")
        return 1.0 if np.all(np.isinf(tau)) else float(np.mean(r * dt / tau))
    return r * dt


def _strip_batch(chain: list[str], nodes: dict[str, Any], in_shape: tuple[int, ...] | None,
                 notes: list[str]) -> tuple[int, ...] | None:
    """``Input`` shapes (1, F) / (1, C, H, W) (Norse, Rockpool write the batch of their sample):
    drop the leading 1 when the first weight's fan-in proves the rest is one sample."""
    if not in_shape or len(in_shape) not in (2, 4) or in_shape[0] != 1:
        return in_shape
    rest = tuple(in_shape[1:])
    first = next((nodes[n] for n in chain if type(nodes[n]).__name__ in _WEIGHT), None)
    w = np.asarray(getattr(first, "weight", np.zeros((0,))))
    kind = type(first).__name__
    proved = (kind in ("Affine", "Linear") and w.ndim == 2 and w.shape[1] == math.prod(rest)) or (
        kind == "Conv2d" and len(rest) == 3 and w.ndim == 4 and w.shape[1] == rest[0])
    if not proved:
        return in_shape
    notes.append(f"{chain[0]}: input shape {tuple(in_shape)} read as one sample of {tuple(rest)} (a leading batch "
                 f"dimension of 1; the first weight's fan-in {math.prod(rest) if kind != 'Conv2d' else rest[0]} "
                 f"proves it)")
    return rest if len(rest) == 3 else (math.prod(rest),)


def _restore_weight_std(layers: list[LayerSpec], meta: dict[str, Any]) -> list[LayerSpec]:
    ws = str(meta.get("tpprof.weight_std", ""))
    if meta.get("tpprof.writer") != "tpprof" or not ws:
        return layers
    flags = [c == "1" for c in ws]
    if len(flags) != sum(layer.kind == "conv" for layer in layers):
        return layers
    conv_flags = iter(flags)  # one per conv layer, in order
    return [replace(layer, weight_std=next(conv_flags)) if layer.kind == "conv" else layer for layer in layers]


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


#: The readout forms :func:`graph_from_learner` writes (``tpprof export --readout``).
READOUTS = ("lif", "i")
#: τ of the readout LIF: 1 − dt/τ is exactly 1 in float64 (no leak), r = τ/dt fits float32.
READOUT_TAU = 1e30
#: v_threshold of the readout LIF: float32's largest value, so it never fires.
READOUT_VTH = float(np.finfo(np.float32).max)


def readout_nodes(nir: Any, w_out: np.ndarray, dt: float, readout: str = "lif") -> dict[str, Any]:
    """The integrator readout m^t = m^{t−1} + W_out a^t as NIR nodes (``Linear`` then a neuron).

    ``"lif"`` (default): a LIF with τ = 10³⁰ (α = 1 − dt/τ = 1), r = τ/dt (unit input gain,
    the r = τ/dt convention snnTorch and snn-mlir read dt from), v_threshold = float32 max (it
    never fires): snnTorch's public ``import_from_nir`` maps it (Leaky(β = 1)), whose membrane
    ``.mem`` is m^t; snn-mlir maps it (decay 1). ``"i"``: NIR's integrator ``I`` with r = 1/dt
    (dv/dt = r I, forward Euler v += dt·r·I = I) — exact in NIR's own terms, but snnTorch does
    not import I and snn-mlir requires I's r = 1 (it reads I as v += I)."""
    c = w_out.shape[0]
    nodes: dict[str, Any] = {"readout": nir.Linear(weight=w_out.astype(np.float32))}
    if readout == "lif":
        tau = np.full((c,), READOUT_TAU, np.float32)
        nodes["integrator"] = nir.LIF(tau=tau, r=np.full((c,), READOUT_TAU / dt, np.float32),
                                      v_leak=np.zeros(c, np.float32), v_threshold=np.full(c, READOUT_VTH, np.float32),
                                      v_reset=np.zeros(c, np.float32))
    elif readout == "i":
        nodes["integrator"] = nir.I(r=np.full((c,), 1.0 / dt, np.float32))
    else:
        raise UserError("readout", f"{readout!r} is not a readout form", ", ".join(READOUTS))
    return nodes


def graph_from_learner(learner: Any, dt: float = NIR_DT, readout: str = "lif") -> tuple[Any, list[str]]:
    """A tpprof learner's net (trained weights) → (``nir.NIRGraph``, caveat notes);
    ``readout`` as :func:`readout_nodes`."""
    nir = _nir()
    net = learner.net
    spec: NetSpec = net.spec
    nrn = spec.neuron
    notes: list[str] = []
    if nrn.reset == "soft":
        notes.append("soft reset (v ← v − v_th) has no NIR form: written as NIR's reset to v_reset = 0; "
                     "tpprof re-imports it as soft (metadata), other NIR consumers run a hard reset (train with "
                     "--reset hard for a net whose NIR form computes what tpprof computed)")
    if nrn.order != "code":
        notes.append("the paper ordering (reset from the previous spike) has no NIR form; NIR consumers run "
                     "the code ordering")
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(spec.input_shape))}
    edges: list[tuple[str, str]] = []
    prev = "input"

    def add(name: str, node: Any) -> None:
        nonlocal prev
        nodes[name] = node
        edges.append((prev, name))
        prev = name

    alpha = float(nrn.alpha)
    tau_val = dt / (1.0 - alpha) if alpha < 1.0 else math.inf
    for i, (layer, hl) in enumerate(zip(spec.layers, net.layers), start=1):
        g = hl.geom
        w = hl.weight_eff().detach().cpu().double().numpy()
        if layer.kind == "conv":
            k = layer.kernel
            add(f"conv{i}", nir.Conv2d(input_shape=(g.in_shape[1], g.in_shape[2]), weight=w.astype(np.float32),
                                       stride=(1, 1), padding=(k // 2, k // 2), dilation=(1, 1), groups=1,
                                       bias=np.zeros(w.shape[0], dtype=np.float32)))
        else:
            if len(g.in_shape) == 3:
                add(f"flatten{i}", nir.Flatten(input_type={"input": np.array(g.in_shape)}, start_dim=0, end_dim=-1))
            add(f"fc{i}", nir.Linear(weight=w.astype(np.float32)))
        shp = g.neuron_shape
        if alpha < 1.0:
            tau = np.full(shp, tau_val, dtype=np.float64)
            lif = nir.LIF(tau=tau.astype(np.float32), r=(tau / dt).astype(np.float32), v_leak=np.zeros(shp, np.float32),
                          v_threshold=np.full(shp, nrn.v_th, np.float32), v_reset=np.zeros(shp, np.float32))
        else:
            lif = nir.IF(r=np.full(shp, 1.0 / dt, np.float32), v_threshold=np.full(shp, nrn.v_th, np.float32),
                         v_reset=np.zeros(shp, np.float32))
        add(f"lif{i}", lif)
        if hl.R is not None:
            nodes[f"rec{i}"] = nir.Linear(weight=hl.R.detach().cpu().float().numpy())
            edges += [(f"lif{i}", f"rec{i}"), (f"rec{i}", f"lif{i}")]
        if layer.pool != "none":
            if layer.pool == "max2":
                raise UserError("export", f"layer {i} max-pools, which NIR cannot express",
                                "nets with avg2 (v) or adapt2 (a2) pooling")
            c, h, ww = g.neuron_shape
            kk = (2, 2) if layer.pool == "avg2" else (h // 2, ww // 2)
            if layer.pool == "adapt2" and (h % 2 or ww % 2):
                raise UserError("export", f"layer {i} pools an odd {h}x{ww} map adaptively", "even maps")
            add(f"pool{i}", nir.AvgPool2d(kernel_size=np.array(kk), stride=np.array(kk), padding=np.array((0, 0))))
    if len(spec.geometry()[-1].out_shape) == 3:
        add("flatten_out", nir.Flatten(input_type={"input": np.array(spec.geometry()[-1].out_shape)},
                                       start_dim=0, end_dim=-1))
    for name, node in readout_nodes(nir, net.W_out.detach().cpu().double().numpy(), dt, readout).items():
        add(name, node)
    add("output", nir.Output(output_type=np.array([spec.readout])))
    meta = {"dt": float(dt), "tpprof.writer": "tpprof", "tpprof.net": spec.to_string(),
            "tpprof.reset": nrn.reset, "tpprof.order": nrn.order, "tpprof.alpha": float(nrn.alpha),
            "tpprof.beta": float(nrn.beta), "tpprof.v_th": float(nrn.v_th),
            "tpprof.surrogate_k": float(nrn.surrogate_k), "tpprof.readout": readout,
            "tpprof.weight_std": "".join("1" if layer.weight_std else "0" for layer in spec.layers
                                         if layer.kind == "conv")}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)
    return graph, notes


def write_nir(learner: Any, path: str | os.PathLike, dt: float = NIR_DT, readout: str = "lif") -> list[str]:
    """Write ``learner``'s net to ``path`` (``.nir``, HDF5); returns the caveat notes."""
    nir = _nir()
    graph, notes = graph_from_learner(learner, dt, readout)
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    nir.write(tmp, graph)
    os.replace(tmp, p)
    return notes


_PRINTED: set[tuple[str, float]] = set()


def net_for_parse(path: str, neuron: NeuronSpec | None = None, stream: Any = None) -> NetSpec:
    """The `.nir` reader of :func:`tpprof.config.parse_net` (registered in ``tpprof/__init__``): read the
    file, print its notes once per process."""
    import sys

    net, notes = read_nir_net(path, neuron)
    try:
        key = (str(Path(path).resolve()), Path(path).stat().st_mtime)
    except OSError:  # pragma: no cover
        key = (path, 0.0)
    if notes and key not in _PRINTED:
        _PRINTED.add(key)
        out = stream or sys.stderr
        out.write(f"tpprof: {Path(path).name} mapped with caveats:\n" + "".join(f"  - {n}\n" for n in notes))
    return net
