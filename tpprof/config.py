"""The one configuration type shared by the CLI, the app, the analytic model and the learners.

Everything here is plain Python (no torch, no numpy) and frozen, so configs hash (Streamlit
caches on them) and travel as JSON (checkpoints, provenance sidecars, measurement rows).

Compact text forms users can type:

* nets: ``700-450-20`` (input 700, dense 450, readout 20), ``700-450r-20`` (recurrent),
  ``2x32x32-c64-c128p-c256-10`` (conv 3x3; ``p`` = max-pool 2, ``a2`` = adaptive average
  pool to 2x2, ``v`` = average pool 2), ``vgg9:2x32x32`` (the paper's VGG-9, readout 10 unless
  ``vgg9:2x32x32-11``), or a preset name (:data:`PRESETS`);
* sizes: ``256KiB``, ``1.5 MB``, ``8GiB``, ``4096`` (bytes);
* dtypes: ``fp32``, ``fp16``, ``bf16``, ``fp64``, ``int8``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping

from tpprof.errors import ConfigError

# --------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------

DTYPE_BYTES: dict[str, int] = {"fp64": 8, "fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
DTYPE_ALIASES: dict[str, str] = {
    "float64": "fp64", "double": "fp64", "float32": "fp32", "float": "fp32",
    "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
}
#: Every rule the analytic registry must know (tpprof.analytic checks it covers these).
RULES: tuple[str, ...] = ("tp", "tess", "bptt", "eprop", "eprop-rfb", "ostl", "osttp", "etlp", "ottt")
#: Rules that also have a torch learner.
TRAINABLE_RULES: tuple[str, ...] = ("tp", "tess", "bptt")
OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam")
CADENCES: tuple[str, ...] = ("step", "sequence")
AUX_STORAGE: tuple[str, ...] = ("stored", "regenerated")
TARGET_ROWS: tuple[str, ...] = ("batch", "classes")  # TP target path: per sample | per class present
FLAVOURS: tuple[str, ...] = ("paper", "authors")  # a rule as the paper reads | as the authors' code runs
S_INITS: tuple[str, ...] = ("uniform", "ws", "c-invariant")  # TP's fixed S
LAYER_KINDS: tuple[str, ...] = ("dense", "recurrent", "conv")
POOLS: tuple[str, ...] = ("none", "max2", "avg2", "adapt2")

def _choice(field_name: str, value: Any, accepted: tuple[str, ...]) -> str:
    v = str(value).strip().lower()
    if v not in accepted:
        raise ConfigError(field_name, f"{value!r} is not known", ", ".join(accepted))
    return v


def _pos_int(field_name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise ConfigError(field_name, f"{value!r} is not an integer", f"an integer >= {minimum}")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            iv = int(value)
        else:
            iv = int(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigError(field_name, f"{value!r} is not an integer", f"an integer >= {minimum}") from None
    if iv < minimum:
        raise ConfigError(field_name, f"{iv} is too small", f"an integer >= {minimum}")
    return iv


def _unit_float(field_name: str, value: Any, lo: float = 0.0, hi: float = 1.0) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(field_name, f"{value!r} is not a number", f"a number in [{lo}, {hi}]") from None
    if not lo <= f <= hi:  # also rejects NaN
        raise ConfigError(field_name, f"{value!r} is out of range", f"a number in [{lo}, {hi}]")
    return f


def parse_dtype(text: str) -> str:
    """``'fp32'`` / ``'float16'`` / ... → canonical dtype name."""
    v = str(text).strip().lower()
    v = DTYPE_ALIASES.get(v, v)
    if v not in DTYPE_BYTES:
        raise ConfigError("dtype", f"{text!r} is not known", ", ".join(DTYPE_BYTES))
    return v


# --------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------

_UNITS: dict[str, int] = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 2**10, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "m": 2**20, "g": 2**30,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?\s*([A-Za-z]*)\s*$")


def parse_bytes(text: str | int | float, field_name: str = "budget") -> int:
    """Parse a memory size: ``'256KiB'`` → 262144, ``'1.5 MB'`` → 1500000, ``'8GiB'``.

    KB/MB/GB/TB are decimal (10^3k); KiB/MiB/GiB/TiB (and bare K/M/G) are binary (2^10k).
    A bare number is bytes. The result is rounded down to whole bytes and must be > 0.
    """
    if isinstance(text, bool):
        raise ConfigError(field_name, f"{text!r} is not a size", "e.g. 4096, 256KiB, 1.5 MB, 8GiB")
    if isinstance(text, (int, float)):
        if not math.isfinite(float(text)) or text < 1 or text > 2**62:
            raise ConfigError(field_name, f"{text!r} is not a size between 1 byte and 4 EiB",
                              "e.g. 4096, 256KiB, 1.5 MB, 8GiB")
        return int(text)
    m = _SIZE_RE.match(str(text))
    accepted = "a positive number with an optional unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 256KiB, 1.5 MB)"
    if not m:
        raise ConfigError(field_name, f"{text!r} is not a size", accepted)
    num, exp, unit = m.groups()
    unit_l = unit.lower()
    if unit_l not in _UNITS:
        raise ConfigError(field_name, f"unit {unit!r} is not known", accepted)
    try:
        value = float(num) * (10.0 ** int(exp) if exp else 1.0) * _UNITS[unit_l]
    except OverflowError:
        raise ConfigError(field_name, f"{text!r} is too large", accepted) from None
    if not math.isfinite(value) or value < 1 or value > 2**62:
        raise ConfigError(field_name, f"{text!r} is out of range", "between 1 byte and 4 EiB")
    return int(value)


def format_bytes(n: float) -> str:
    """Human-readable binary size: 262144 → ``'256.0 KiB'``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


# --------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeuronSpec:
    """LIF parameters shared by every hidden layer (reference sheet §2–3).

    u^t = α v^{t−1} + I^t ; s^t = Θ(u^t − v_th) ; v^t = u^t − v_th s^t (soft, order="code"),
    trace ε^t = β ε^{t−1} + s^t, surrogate Θ′(u) = k / (1 + (π (u − v_th))²).
    """

    v_th: float = 1.0
    alpha: float = 0.96  # membrane decay α
    beta: float = 0.97  # trace decay β
    reset: Literal["soft", "hard"] = "soft"
    order: Literal["code", "paper"] = "code"  # code: reset before the next decay; paper: Eq. 1
    surrogate_k: float = 1.0

    def __post_init__(self) -> None:
        if not (self.v_th > 0 and math.isfinite(self.v_th)):
            raise ConfigError("v_th", f"{self.v_th!r} is not a positive number", "a number > 0")
        _unit_float("alpha", self.alpha)
        _unit_float("beta", self.beta)
        _choice("reset", self.reset, ("soft", "hard"))
        _choice("order", self.order, ("code", "paper"))
        if not (self.surrogate_k > 0 and math.isfinite(self.surrogate_k)):
            raise ConfigError("surrogate_k", f"{self.surrogate_k!r} is not positive", "a number > 0")


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer. ``width`` is neurons (dense, recurrent) or output channels (conv)."""

    kind: Literal["dense", "recurrent", "conv"]
    width: int
    kernel: int = 3  # conv only: k×k, stride 1, padding k//2, no bias
    pool: Literal["none", "max2", "avg2", "adapt2"] = "none"  # conv only, applied to spikes
    weight_std: bool = True  # conv only: scaled weight standardisation ×1.8 (reference §2)

    def __post_init__(self) -> None:
        _choice("layer kind", self.kind, LAYER_KINDS)
        _pos_int("layer width", self.width)
        _pos_int("kernel", self.kernel)
        _choice("pool", self.pool, POOLS)
        if self.kind != "conv" and self.pool != "none":
            raise ConfigError("pool", f"{self.kind} layers cannot pool", "pooling on conv layers only")


@dataclass(frozen=True)
class LayerGeometry:
    """Shapes of one hidden layer, per sample (no batch dimension).

    ``neuron_shape``: membrane / spike shape before pooling; ``out_shape``: after pooling
    (what the next layer and the traces see, reference §3); ``in_shape``: what arrives.
    """

    index: int  # 1-based, as l in the paper
    kind: str
    in_shape: tuple[int, ...]
    neuron_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    n_weights: int  # feed-forward W_l elements
    n_recurrent: int  # recurrent R_l elements (0 unless recurrent)

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_neurons(self) -> int:
        return math.prod(self.neuron_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def n_params(self) -> int:
        return self.n_weights + self.n_recurrent


def _pooled(hw: int, pool: str) -> int:
    if pool in ("max2", "avg2"):
        return hw // 2
    if pool == "adapt2":
        return 2
    return hw


@dataclass(frozen=True)
class NetSpec:
    """A spiking net: input shape, hidden layers, non-spiking integrator readout (§7).

    ``input_shape`` is ``(F,)`` for feature vectors or ``(C, H, W)`` for event frames.
    ``readout`` is the number of output units, which equals the number of classes C.
    """

    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]
    readout: int
    neuron: NeuronSpec = field(default_factory=NeuronSpec)
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.input_shape) not in (1, 3):
            raise ConfigError("net input", f"shape {self.input_shape} has {len(self.input_shape)} dims", "F or CxHxW")
        for d in self.input_shape:
            _pos_int("net input", d)
        if not self.layers:
            raise ConfigError("net", "has no hidden layer", "at least one hidden layer, e.g. 700-450-20")
        _pos_int("readout", self.readout)
        self.geometry()  # validates the layer sequence

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def is_conv(self) -> bool:
        return any(layer.kind == "conv" for layer in self.layers)

    def geometry(self) -> tuple[LayerGeometry, ...]:
        """Per-layer shapes and weight counts (pure arithmetic; the learners must agree)."""
        out: list[LayerGeometry] = []
        shape = tuple(self.input_shape)
        for i, layer in enumerate(self.layers, start=1):
            if layer.kind == "conv":
                if len(shape) != 3:
                    raise ConfigError("net", f"layer {i} is conv but its input {shape} is flat",
                                      "conv layers before dense layers, on a CxHxW input")
                c_in, h, w = shape
                neuron = (layer.width, h, w)
                ph, pw = _pooled(h, layer.pool), _pooled(w, layer.pool)
                if ph < 1 or pw < 1:
                    raise ConfigError("net", f"layer {i} pools a {h}x{w} map to nothing", "a larger input")
                out_shape = (layer.width, ph, pw)
                n_w = layer.kernel * layer.kernel * c_in * layer.width
                n_r = 0
            else:
                n_in = math.prod(shape)
                neuron = (layer.width,)
                out_shape = neuron
                n_w = n_in * layer.width
                n_r = layer.width * layer.width if layer.kind == "recurrent" else 0
            out.append(LayerGeometry(i, layer.kind, shape, neuron, out_shape, n_w, n_r))
            shape = out_shape
        return tuple(out)

    @property
    def readout_fan_in(self) -> int:
        return self.geometry()[-1].n_out

    def n_params(self) -> int:
        """Trainable elements: Σ_l (W_l + R_l) + W_out (S excluded: fixed unless trained)."""
        return sum(g.n_params for g in self.geometry()) + self.readout_fan_in * self.readout

    def with_readout(self, classes: int) -> "NetSpec":
        return replace(self, readout=_pos_int("classes", classes))

    def to_string(self) -> str:
        """The compact text form, which :func:`parse_net` reads back."""
        parts = ["x".join(str(d) for d in self.input_shape)]
        for layer in self.layers:
            if layer.kind == "dense":
                parts.append(str(layer.width))
            elif layer.kind == "recurrent":
                parts.append(f"{layer.width}r")
            else:
                suffix = {"none": "", "max2": "p", "avg2": "v", "adapt2": "a2"}[layer.pool]
                k = "" if layer.kernel == 3 else f"k{layer.kernel}"
                parts.append(f"c{layer.width}{k}{suffix}")
        parts.append(str(self.readout))
        return "-".join(parts)


_VGG9_BODY = "c64-c128p-c256-c256p-c512-c512p-c512-c512a2"
_NET_HELP = ("a preset (" + ", ".join(["nmnist", "shd", "shd-rec", "gsc", "dvsgesture-vgg9", "cifar10dvs-vgg9", "fsdd"])
             + ") or a net string such as 700-450-20, 700-450r-20, 2x32x32-c64-c128p-10, vgg9:2x32x32")
_LAYER_RE = re.compile(r"^(?:(\d+)(r?)|c(\d+)(?:k(\d+))?(p|v|a2)?)$", re.ASCII)


def _parse_shape(tok: str) -> tuple[int, ...]:
    parts = tok.lower().split("x")
    if len(parts) not in (1, 3) or not all(p.isascii() and p.isdigit() for p in parts):
        raise ConfigError("net", f"input {tok!r} is not a size", "F (e.g. 700) or CxHxW (e.g. 2x32x32); " + _NET_HELP)
    dims = tuple(int(p) for p in parts)
    if any(d < 1 or d > 10**7 for d in dims):
        raise ConfigError("net", f"input {tok!r} has a dimension out of range", "1..10^7")
    return dims


def _parse_layer(tok: str) -> LayerSpec:
    m = _LAYER_RE.match(tok.strip().lower())
    if not m:
        raise ConfigError("net", f"{tok!r} is not a layer",
                          "450 (dense), 450r (recurrent), c64 / c64p / c64v / c512a2 / c64k5 (conv)")
    width, rec, cwidth, kernel, pool = m.groups()
    if width is not None:
        w = int(width)
        if not 1 <= w <= 10**7:
            raise ConfigError("net", f"layer width {w} is out of range", "1..10^7")
        return LayerSpec("recurrent" if rec else "dense", w)
    w = int(cwidth)
    k = int(kernel) if kernel else 3
    if not 1 <= w <= 10**6 or not 1 <= k <= 15 or k % 2 == 0:
        raise ConfigError("net", f"conv layer {tok!r} is out of range", "1..10^6 channels, odd kernel 1..15")
    return LayerSpec("conv", w, kernel=k, pool={None: "none", "p": "max2", "v": "avg2", "a2": "adapt2"}[pool])


def parse_net(text: str, neuron: NeuronSpec | None = None) -> NetSpec:
    """Net string or preset name → :class:`NetSpec` (see module docstring for the grammar)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("net", f"{text!r} is empty", _NET_HELP)
    s = text.strip().lower()
    if s in PRESETS:
        net = PRESETS[s].net
        return replace(net, neuron=neuron) if neuron is not None else net
    if s.startswith("vgg9:"):
        rest = s[len("vgg9:"):]
        toks = rest.split("-")
        if len(toks) not in (1, 2) or not toks[0]:
            raise ConfigError("net", f"{text!r} is not a VGG-9 string", "vgg9:CxHxW or vgg9:CxHxW-CLASSES")
        readout = toks[1] if len(toks) == 2 else "10"
        s = f"{toks[0]}-{_VGG9_BODY}-{readout}"
    toks = s.split("-")
    if len(toks) < 3:
        raise ConfigError("net", f"{text!r} needs input, hidden layers and readout", _NET_HELP)
    shape = _parse_shape(toks[0])
    layers = tuple(_parse_layer(t) for t in toks[1:-1])
    if not (toks[-1].isascii() and toks[-1].isdigit()) or not 1 <= int(toks[-1]) <= 10**7:
        raise ConfigError("net", f"readout {toks[-1]!r} is not a class count", "an integer 1..10^7 at the end")
    return NetSpec(shape, layers, int(toks[-1]), neuron or NeuronSpec(), name=text.strip())


# --------------------------------------------------------------------------------------
# Workload, rule, device
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One mini-batch of ``batch`` sequences of ``steps`` time steps, ``classes`` classes."""

    batch: int
    classes: int
    steps: int
    dtype: str = "fp32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch", _pos_int("batch", self.batch))
        object.__setattr__(self, "classes", _pos_int("classes", self.classes))
        object.__setattr__(self, "steps", _pos_int("steps", self.steps))
        object.__setattr__(self, "dtype", parse_dtype(self.dtype))

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class RuleSpec:
    """A learning rule and how it is run.

    ``cadence``: ``step`` = an optimiser step every time step (TP, TESS as published);
    ``sequence`` = gradients accumulated and applied once per mini-batch.
    ``aux``: whether fixed random matrices (TESS's B_l, TP's S) are ``stored`` or
    ``regenerated`` from a seed when needed (compute instead of memory).
    """

    name: str = "tp"
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    cadence: Literal["step", "sequence"] = "step"
    aux: Literal["stored", "regenerated"] = "stored"
    lr: float = 1e-4
    similarity: Literal["distance", "dot"] = "distance"  # TP's f in Eq. 15
    train_s: bool = False  # TP: train the label projection S too
    tess_factors: tuple[float, float, float, float] = (0.2, 0.5, 1.0, 1.0)  # λ_post, λ_pre, α_post, α_pre
    # TP: the target path held once per sample ("batch", the paper's) or once per class present
    # in the mini-batch ("classes": K ≤ min(B, C) rows, the same updates exactly; tpprof/snn/tp.py)
    target_rows: Literal["batch", "classes"] = "batch"
    # per rule: "paper" = the paper's reading; "authors" = the authors' published code
    # (TP: D1–D5 of docs/tp_authors.md)
    flavour: Literal["paper", "authors"] = "paper"
    # TP: the fixed label projection S: "uniform" U(±1/√C) (today), "ws" (the authors' CNN scaling
    # 1.8·WS(S)), "c-invariant" (layer-1 target drive independent of C; tpprof/snn/tp.py)
    s_init: Literal["uniform", "ws", "c-invariant"] = "uniform"

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _choice("rule", self.name, RULES))
        object.__setattr__(self, "optimizer", _choice("optimizer", self.optimizer, OPTIMIZERS))
        object.__setattr__(self, "cadence", _choice("cadence", self.cadence, CADENCES))
        object.__setattr__(self, "aux", _choice("aux", self.aux, AUX_STORAGE))
        object.__setattr__(self, "similarity", _choice("similarity", self.similarity, ("distance", "dot")))
        object.__setattr__(self, "target_rows", _choice("target_rows", self.target_rows, TARGET_ROWS))
        object.__setattr__(self, "flavour", _choice("flavour", self.flavour, FLAVOURS))
        object.__setattr__(self, "s_init", _choice("s_init", self.s_init, S_INITS))
        try:
            lr = float(self.lr)
        except (TypeError, ValueError):
            raise ConfigError("lr", f"{self.lr!r} is not a number", "a number > 0, e.g. 1e-4") from None
        if not (lr > 0 and math.isfinite(lr)):
            raise ConfigError("lr", f"{self.lr!r} is not positive", "a number > 0, e.g. 1e-4")
        object.__setattr__(self, "lr", lr)
        try:
            facs = tuple(float(f) for f in self.tess_factors)
        except (TypeError, ValueError):
            raise ConfigError("tess_factors", f"{self.tess_factors!r} is not a list of numbers",
                              "four numbers: λ_post, λ_pre, α_post, α_pre") from None
        if not isinstance(self.train_s, bool):
            raise ConfigError("train_s", f"{self.train_s!r} is not true or false", "true or false")
        if len(facs) != 4:
            raise ConfigError("tess_factors", f"{self.tess_factors!r} has {len(facs)} values",
                              "four numbers: λ_post, λ_pre, α_post, α_pre")
        object.__setattr__(self, "tess_factors", facs)


@dataclass(frozen=True)
class Device:
    """A memory budget to fit into, e.g. a microcontroller's SRAM or a GPU's HBM."""

    name: str
    budget_bytes: int
    source: str = "user"
    kind: str = "custom"  # mcu | neuromorphic | sbc | edge-gpu | gpu | custom
    on_chip_bytes: int | None = None
    off_chip_bytes: int | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget_bytes", parse_bytes(self.budget_bytes, "budget"))


def budget_device(text: str) -> Device:
    """``--budget 512KiB`` → an ad-hoc :class:`Device`."""
    return Device(name=f"budget {text.strip()}", budget_bytes=parse_bytes(text), source="user --budget")


# --------------------------------------------------------------------------------------
# The whole configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Net + workload + rule (+ device): the single object every part of tpprof consumes."""

    net: NetSpec
    workload: Workload
    rule: RuleSpec = field(default_factory=RuleSpec)
    device: Device | None = None

    def __post_init__(self) -> None:
        if self.net.readout != self.workload.classes:
            raise ConfigError("classes", f"{self.workload.classes} differs from the net's readout {self.net.readout}",
                              "the same number, or use make_config(), which resizes the readout")

    def with_(self, **changes: Any) -> "Config":
        """Copy with workload / rule fields changed: ``cfg.with_(batch=8, name='tess')``."""
        wl = {k: v for k, v in changes.items() if k in {f.name for f in dataclasses.fields(Workload)}}
        rl = {k: v for k, v in changes.items() if k in {f.name for f in dataclasses.fields(RuleSpec)}}
        unknown = set(changes) - set(wl) - set(rl)
        if unknown:
            raise ConfigError("config", f"unknown field(s) {sorted(unknown)}", "Workload or RuleSpec fields")
        workload = replace(self.workload, **wl)
        net = self.net.with_readout(workload.classes) if "classes" in wl else self.net
        return replace(self, net=net, workload=workload, rule=replace(self.rule, **rl))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["net"]["string"] = self.net.to_string()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        try:
            n = d["net"]
            net = NetSpec(
                input_shape=tuple(n["input_shape"]),
                layers=tuple(LayerSpec(**layer) for layer in n["layers"]),
                readout=n["readout"],
                neuron=NeuronSpec(**n.get("neuron", {})),
                name=n.get("name", ""),
            )
            dev = d.get("device")
            return cls(net, Workload(**d["workload"]), RuleSpec(**d.get("rule", {})), Device(**dev) if dev else None)
        except (KeyError, TypeError) as e:
            raise ConfigError("config", f"malformed config dict ({e})", "the form Config.to_dict() writes") from None


@dataclass(frozen=True)
class Preset:
    """A paper net with its published workload (reference sheet §11)."""

    net: NetSpec
    batch: int
    steps: int
    description: str

    @property
    def classes(self) -> int:
        return self.net.readout


def _preset(name: str, net: str, batch: int, steps: int, desc: str, **neuron: Any) -> tuple[str, Preset]:
    spec = parse_net(net, NeuronSpec(**neuron))
    return name, Preset(replace(spec, name=name), batch, steps, desc)


PRESETS: dict[str, Preset] = {}
PRESETS.update([
    _preset("nmnist", "2312-200-10", 128, 100, "N-MNIST, 2x34x34 events flattened", v_th=1.0, alpha=0.98, beta=0.98),
    _preset("shd", "700-450-20", 128, 100, "Spiking Heidelberg Digits, feed-forward", v_th=1.0, alpha=0.96, beta=0.97),
    _preset("shd-rec", "700-450r-20", 128, 100, "Spiking Heidelberg Digits, recurrent", v_th=0.5, alpha=0.85, beta=0.85),
    _preset("gsc", "120-450r-36", 1024, 101, "Google Speech Commands keyword spotting", v_th=0.66, alpha=0.77,
            beta=0.977, surrogate_k=10.0),
    _preset("dvsgesture-vgg9", "vgg9:2x32x32-11", 64, 21, "DVS-Gesture, VGG-9", v_th=1.0, alpha=0.53, beta=0.98),
    _preset("cifar10dvs-vgg9", "vgg9:2x48x48-10", 64, 10, "CIFAR10-DVS, VGG-9", v_th=0.5, alpha=0.18, beta=0.19),
    _preset("fsdd", "40-256-256-10", 32, 50, "Free Spoken Digit Dataset, 40 log-mel bands (tpprof's own)",
            v_th=1.0, alpha=0.9, beta=0.9),
])


def make_config(
    net: str | NetSpec = "shd",
    rule: str | RuleSpec = "tp",
    batch: int | None = None,
    classes: int | None = None,
    steps: int | None = None,
    dtype: str = "fp32",
    optimizer: str = "adam",
    cadence: str = "step",
    aux: str = "stored",
    device: Device | None = None,
    **rule_options: Any,
) -> Config:
    """Build a :class:`Config` from user-level values; preset workloads fill what is ``None``.

    ``classes`` resizes the readout; without it, the net's readout gives C.
    """
    spec = parse_net(net) if isinstance(net, str) else net
    preset = PRESETS.get(net.strip().lower()) if isinstance(net, str) else None
    b = batch if batch is not None else (preset.batch if preset else 32)
    t = steps if steps is not None else (preset.steps if preset else 100)
    c = classes if classes is not None else spec.readout
    workload = Workload(b, c, t, dtype)
    spec = spec.with_readout(workload.classes)
    if isinstance(rule, RuleSpec):
        rs = replace(rule, **rule_options) if rule_options else rule
    else:
        rs = RuleSpec(name=rule, optimizer=optimizer, cadence=cadence, aux=aux, **rule_options)
    return Config(spec, workload, rs, device)


def read_table_file(path: str | Path, field_name: str) -> Any:
    """Parse a user's ``.json`` file (JSON) or any other file (TOML); one-line errors."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(field_name, f"file {str(path)!r} does not exist", "a .toml or .json file")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        if p.suffix.lower() == ".json":
            return json.loads(text)
        import tomllib

        return tomllib.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse failure is the user's file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(field_name, f"{p.name} does not parse ({first})", "valid TOML or JSON") from None


def load_config_file(path: str | Path) -> Config:
    """Read a TOML or JSON config file.

    TOML form::

        net = "700-450-20"          # or a preset, or a [net] table as Config.to_dict writes
        [workload]  batch = 128  classes = 20  steps = 100  dtype = "fp32"
        [rule]      name = "tp"  optimizer = "adam"
        [device]    name = "my board"  budget_bytes = "512KiB"
    """
    p = Path(path)
    data = read_table_file(p, "config")
    if not isinstance(data, dict):
        raise ConfigError("config", f"{p.name} is not a table", "a TOML/JSON table with net, workload, rule")
    return config_from_mapping(data, source=p.name)


def config_from_mapping(data: Mapping[str, Any], source: str = "config") -> Config:
    """A loosely typed mapping (TOML/JSON/app state) → :class:`Config`, with one-line errors."""
    known = {"net", "workload", "rule", "device"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError("config", f"{source} has unknown section(s) {sorted(unknown)}", ", ".join(sorted(known)))
    net = data.get("net", "shd")
    if isinstance(net, Mapping):
        if "string" in net:
            net = net["string"]
        else:
            return Config.from_dict(data)
    if not isinstance(net, str):
        raise ConfigError("net", f"{source}: {net!r} is not a net string", _NET_HELP)
    wl = data.get("workload", {})
    rl = data.get("rule", {})
    if isinstance(rl, str):
        rl = {"name": rl}
    if not isinstance(wl, Mapping) or not isinstance(rl, Mapping):
        raise ConfigError("config", f"{source}: workload and rule must be tables", "[workload] and [rule] tables")
    wl_fields = {f.name for f in dataclasses.fields(Workload)}
    bad = set(wl) - wl_fields
    if bad:
        raise ConfigError("workload", f"unknown key(s) {sorted(bad)}", ", ".join(sorted(wl_fields)))
    rule_fields = {f.name for f in dataclasses.fields(RuleSpec)}
    bad = set(rl) - rule_fields
    if bad:
        raise ConfigError("rule", f"unknown key(s) {sorted(bad)}", ", ".join(sorted(rule_fields)))
    dev = data.get("device")
    device = None
    if dev is not None:
        if not isinstance(dev, Mapping) or "budget_bytes" not in dev:
            raise ConfigError("device", "needs name and budget_bytes", "[device] name = ..., budget_bytes = '512KiB'")
        device = Device(name=str(dev.get("name", "device")), budget_bytes=dev["budget_bytes"],
                        source=str(dev.get("source", source)))
    return make_config(net, RuleSpec(**rl), wl.get("batch"), wl.get("classes"), wl.get("steps"),
                       wl.get("dtype", "fp32"), device=device)
