"""The vocabulary (rules, memory categories, the point key, dtypes, presets) and the configuration
types shared by the CLI, the app, the analytic model and the learners: the specs (net, workload,
rule), :class:`Config` (one point) and :class:`Grid` (a product of axes over a Config).

Everything here is plain Python (no torch, no numpy) and frozen, so configs hash (Streamlit
caches on them) and travel as JSON (checkpoints, provenance sidecars, measurement rows). Numbers
and sizes users type are parsed by :mod:`tpprof.units`, the device record is :mod:`tpprof.device`,
table files are read by :mod:`tpprof.tablefile`.

Compact text forms users can type:

* nets: ``700-450-20`` (input 700, dense 450, readout 20), ``700-450r-20`` (recurrent),
  ``2x32x32-c64-c128p-c256-10`` (conv 3x3; ``p`` = max-pool 2, ``a2`` = adaptive average
  pool to 2x2, ``v`` = average pool 2), ``vgg9:2x32x32`` (the paper's VGG-9, readout 10 unless
  ``vgg9:2x32x32-11``), a preset name (:data:`PRESETS`), or a net file whose reader is registered
  (:data:`NET_FILE_READERS`; ``.nir``: :mod:`tpprof.nir_io`);
* dtypes: ``fp32``, ``fp16``, ``bf16``, ``fp64``, ``int8``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from tpprof.device import Device
from tpprof.errors import ConfigError
from tpprof.tablefile import read_table_file
from tpprof.units import MAX_COUNT, parse_ascii_int, parse_real
from tpprof.units import choice as _choice
from tpprof.units import pos_int as _pos_int
from tpprof.units import short as _short
from tpprof.units import unit_float as _unit_float

# --------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------

DTYPE_BYTES: dict[str, int] = {"fp64": 8, "fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
DTYPE_ALIASES: dict[str, str] = {
    "float64": "fp64", "double": "fp64", "float32": "fp32", "float": "fp32",
    "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
}
#: Every rule the analytic registry must know (tpprof.analytic checks it covers these).
RULES: tuple[str, ...] = ("tp", "tess", "bptt", "eprop", "eprop-rfb", "ostl", "osttp", "etlp", "ottt",
                          "tess-authors-schedule", "bptt-compact", "bptt-ckpt", "tbptt")
#: Rules that also have a torch learner.
TRAINABLE_RULES: tuple[str, ...] = ("tp", "tess", "bptt", "tess-authors-schedule", "bptt-compact", "bptt-ckpt",
                                    "tbptt", "ottt")
#: ``RuleSpec.flavour``: "paper" = the paper's equations as tpprof reads them; "authors" = the
#: authors' published code (TESS: docs/tess_authors.md; TP: docs/tp_authors.md).
FLAVOURS: tuple[str, ...] = ("paper", "authors")
#: tbptt's default window when ``RuleSpec.window`` is None: min(T, TBPTT_DEFAULT_WINDOW) steps.
TBPTT_DEFAULT_WINDOW = 25
OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam")
CADENCES: tuple[str, ...] = ("step", "sequence")
#: Where the optimiser step is applied (RuleSpec.update).
UPDATES: tuple[str, ...] = ("buffered", "in-loop")
#: Rules whose gradient is accumulated before one update per mini-batch (or per window).
ONCE_PER_SEQUENCE: tuple[str, ...] = ("bptt", "bptt-ckpt", "bptt-compact", "tbptt", "tess-authors-schedule")
AUX_STORAGE: tuple[str, ...] = ("stored", "regenerated")
TARGET_ROWS: tuple[str, ...] = ("batch", "classes")  # TP target path: per sample | per class present
S_INITS: tuple[str, ...] = ("uniform", "ws", "c-invariant")  # TP's fixed S
LAYER_KINDS: tuple[str, ...] = ("dense", "recurrent", "conv")
POOLS: tuple[str, ...] = ("none", "max2", "avg2", "adapt2")
#: The memory categories: the same strings in the analytic terms, the learners' inventories,
#: the measurement columns and the plots (what each holds: docs/architecture.md).
CATEGORIES: tuple[str, ...] = (
    "weights", "gradients", "optimizer", "neuron_state", "traces", "aux",
    "loss_buffers", "saved", "implementation",
)
#: The deepest net accepted (hidden layers), so that a typo cannot ask for a million layers.
MAX_DEPTH = 1024
#: The columns that identify one point of a sweep or a measurement file.
POINT_KEY: tuple[str, ...] = ("rule", "net", "batch", "classes", "steps", "dtype", "optimizer",
                              "cadence", "aux", "device")

#: The net's size caps (net strings, [net] tables and saved configs alike): neurons per dense or
#: recurrent layer and each input dimension, conv channels, kernel size, classes (= readout).
MAX_WIDTH = 10**7
MAX_CHANNELS = 10**6
MAX_KERNEL = 15
MAX_CLASSES = 10**7
def parse_dtype(text: str) -> str:
    """``'fp32'`` / ``'float16'`` / ... → canonical dtype name."""
    v = str(text).strip().lower()
    v = DTYPE_ALIASES.get(v, v)
    if v not in DTYPE_BYTES:
        raise ConfigError("dtype", f"{text!r} is not known", ", ".join(DTYPE_BYTES))
    return v


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
        # The net-string grammar's caps live here, so a [net] table, a saved config or a NIR import
        # meets the same checks as --net (one place for them).
        kind = _choice("layer kind", self.kind, LAYER_KINDS)
        object.__setattr__(self, "kind", kind)
        cap = MAX_CHANNELS if kind == "conv" else MAX_WIDTH
        object.__setattr__(self, "width", _pos_int("channels" if kind == "conv" else "layer width", self.width,
                                                   maximum=cap))
        k = _pos_int("kernel", self.kernel, maximum=MAX_KERNEL)
        if kind == "conv" and k % 2 == 0:
            raise ConfigError("kernel", f"{k} is even", f"an odd kernel 1..{MAX_KERNEL}")
        object.__setattr__(self, "kernel", k)
        object.__setattr__(self, "pool", _choice("pool", self.pool, POOLS))
        if not isinstance(self.weight_std, bool):
            raise ConfigError("weight_std", f"{_short(self.weight_std)} is not true or false", "true or false")
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
    return {"max2": hw // 2, "avg2": hw // 2, "adapt2": 2}.get(pool, hw)


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
        object.__setattr__(self, "input_shape", tuple(_pos_int("net input", d, maximum=MAX_WIDTH)
                                                      for d in self.input_shape))
        if not self.layers:
            raise ConfigError("net", "has no hidden layer", "at least one hidden layer, e.g. 700-450-20")
        if len(self.layers) > MAX_DEPTH:
            raise ConfigError("net", f"has {len(self.layers)} hidden layers", f"at most {MAX_DEPTH}")
        # readout up to MAX_COUNT: the crossover searches probe class counts beyond a Workload's cap
        object.__setattr__(self, "readout", _pos_int("readout", self.readout))
        object.__setattr__(self, "_geometry", self._layer_geometry())  # validates the layer sequence

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
        return self._geometry  # type: ignore[attr-defined]  # computed once, in __post_init__

    def _layer_geometry(self) -> tuple[LayerGeometry, ...]:
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

    def n_params(self) -> int:
        """Trainable elements: Σ_l (W_l + R_l) + W_out (S excluded: fixed unless trained)."""
        return sum(g.n_params for g in self.geometry()) + self.geometry()[-1].n_out * self.readout

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
        raise ConfigError("net", f"input {_short(tok)} is not a size", "F (e.g. 700) or CxHxW (e.g. 2x32x32); " + _NET_HELP)
    if any(len(p) > 9 for p in parts):  # before int(): 5,000 digits; the range is NetSpec's
        raise ConfigError("net", f"input {_short(tok)} has a dimension out of range", "1..10^7")
    return tuple(int(p) for p in parts)


def _parse_layer(tok: str) -> LayerSpec:
    m = _LAYER_RE.match(tok.strip().lower())
    if not m:
        raise ConfigError("net", f"{_short(tok)} is not a layer",
                          "450 (dense), 450r (recurrent), c64 / c64p / c64v / c512a2 / c64k5 (conv)")
    width, rec, cwidth, kernel, pool = m.groups()
    if any(g is not None and len(g) > 9 for g in (width, cwidth, kernel)):  # before int(): 5,000 digits
        raise ConfigError("net", f"layer {tok[:20]!r}… has a size out of range", "1..10^7 neurons, 1..10^6 channels")
    # the caps and the odd kernel are LayerSpec's (one place for every way a net is built)
    if width is not None:
        return LayerSpec("recurrent" if rec else "dense", int(width))
    return LayerSpec("conv", int(cwidth), kernel=int(kernel) if kernel else 3,
                     pool={None: "none", "p": "max2", "v": "avg2", "a2": "adapt2"}[pool])


#: Readers of net files by suffix: ``reader(path, neuron) -> NetSpec``. The vocabulary knows no file
#: format; a reader registers itself here (``.nir``: :mod:`tpprof.nir_io`, wired in ``tpprof/__init__``).
NET_FILE_READERS: dict[str, Callable[[str, "NeuronSpec | None"], "NetSpec"]] = {}


def register_net_reader(suffix: str, reader: Callable[[str, "NeuronSpec | None"], "NetSpec"]) -> None:
    """Read net strings ending in ``suffix`` (lower case, e.g. ``".nir"``) with ``reader``; a suffix
    registered twice is an error."""
    if suffix in NET_FILE_READERS:
        raise ValueError(f"a net reader for {suffix!r} is already registered")
    NET_FILE_READERS[suffix] = reader


#: ``--nir-dt SECONDS``: the step of every net file read in this process whose graph has no dt of
#: its own (set by the CLI before any net is parsed, cleared after the command). It lives with the
#: reader registry so that the flags (below the readers) can set it without importing a reader.
_NET_FILE_DT: list[float | None] = [None]


def set_net_file_dt(dt: float | None) -> None:
    """Set (or clear, with None) the dt given to net files that carry none."""
    if dt is not None and not (isinstance(dt, (int, float)) and math.isfinite(dt) and 0 < dt <= 3600):
        raise ConfigError("nir_dt", f"{dt!r} is not a time step", "seconds, 0 < dt <= 3600, e.g. --nir-dt 1e-3")
    _NET_FILE_DT[0] = None if dt is None else float(dt)


def net_file_dt() -> float | None:
    """The ``--nir-dt`` of this process (None when not given)."""
    return _NET_FILE_DT[0]


def parse_net(text: str, neuron: NeuronSpec | None = None) -> NetSpec:
    """Net string or preset name → :class:`NetSpec` (see module docstring for the grammar)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("net", f"{text!r} is empty", _NET_HELP)
    s = text.strip().lower()
    for suffix, reader in NET_FILE_READERS.items():  # a net file (.nir: tpprof.nir_io, wired in tpprof/__init__)
        if s.endswith(suffix):
            return reader(text.strip(), neuron)
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
    if len(toks) - 2 > MAX_DEPTH:
        raise ConfigError("net", f"{text[:40]!r}… has {len(toks) - 2} hidden layers", f"at most {MAX_DEPTH}")
    shape = _parse_shape(toks[0])
    layers = tuple(_parse_layer(t) for t in toks[1:-1])
    if not (toks[-1].isascii() and toks[-1].isdigit()) or len(toks[-1]) > 9 or not 1 <= int(toks[-1]) <= MAX_CLASSES:
        raise ConfigError("net", f"readout {_short(toks[-1])} is not a class count", "an integer 1..10^7 at the end")
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
        object.__setattr__(self, "classes", _pos_int("classes", self.classes, maximum=MAX_CLASSES))
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
    #: "paper" (today's reading of the paper's equations) | "authors" (the authors' code;
    #: TESS: docs/tess_authors.md D1–D11, D13; TP: docs/tp_authors.md D1–D5).
    #: ``tess-authors-schedule`` always uses "authors".
    flavour: Literal["paper", "authors"] = "paper"
    #: tess-authors-schedule: the last ``delay_ls`` of the T steps back-propagate the readout's
    #: cross-entropy through all blocks; the first T − delay_ls use the local learning signal
    #: (the authors' utils/train.py do_epoch, ``--delay-ls``). 0 = fully local.
    delay_ls: int = 1
    #: bptt-ckpt: segment length k (steps between kept states); None = ⌈√T⌉.
    segment: int | None = None
    #: tbptt: window K (update every K steps, gradient through ≤ K steps); None = min(T, 25).
    window: int | None = None
    #: bptt-ckpt / tbptt: save spikes bit-packed and pooling inputs compactly (bptt-compact's saving).
    compact: bool = False
    #: TP: the target path held once per sample ("batch", the paper's) or once per class present
    #: in the mini-batch ("classes": K ≤ min(B, C) rows, the same updates exactly; tpprof/snn/tp.py)
    target_rows: Literal["batch", "classes"] = "batch"
    #: TP: the fixed label projection S: "uniform" U(±1/√C) (today), "ws" (the authors' CNN scaling
    #: 1.8·WS(S)), "c-invariant" (layer-1 target drive independent of C; tpprof/snn/tp.py)
    s_init: Literal["uniform", "ws", "c-invariant"] = "uniform"
    #: where the optimiser step is applied: "buffered" (a gradient buffer per parameter, applied
    #: once the step's gradients are formed) or "in-loop" (each weight's update applied as soon as
    #: its gradient element is summed over the batch: no gradient buffer, the same arithmetic;
    #: per-step rules at cadence step; tpprof/target's kernels run it)
    update: Literal["buffered", "in-loop"] = "buffered"
    #: Which layers learn: "all" (default), "readout" (every hidden layer frozen: only W_out learns)
    #: or "last:k" (the last k hidden layers and the readout; the first L − k frozen). A frozen
    #: layer gets no update, so it holds no gradient or optimiser state (:func:`frozen_layers`).
    trainable: str = "all"

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _choice("rule", self.name, RULES))
        object.__setattr__(self, "trainable", parse_trainable(self.trainable))
        object.__setattr__(self, "flavour", _choice("flavour", self.flavour, FLAVOURS))
        object.__setattr__(self, "delay_ls", _pos_int("delay_ls", self.delay_ls, minimum=0))
        for key, accepted in (("optimizer", OPTIMIZERS), ("cadence", CADENCES), ("aux", AUX_STORAGE),
                              ("similarity", ("distance", "dot")), ("target_rows", TARGET_ROWS), ("s_init", S_INITS),
                              ("update", UPDATES)):
            object.__setattr__(self, key, _choice(key, getattr(self, key), accepted))
        if self.update == "in-loop":
            if self.name in ONCE_PER_SEQUENCE or uses_tess_authors(self):
                raise ConfigError("update", f"'in-loop' needs a per-step update; {self.name} "
                                  f"{'(authors flavour) ' if self.name == 'tess' else ''}accumulates its gradient "
                                  "before one update", "update buffered, or a per-step rule (tp, tess, ottt, eprop, …)")
            if self.cadence != "step":
                raise ConfigError("update", "'in-loop' applies each step's gradient as it is formed; cadence "
                                  "'sequence' accumulates it over T", "update buffered, or cadence step")
        try:
            lr = parse_real(self.lr)
        except (TypeError, ValueError):
            raise ConfigError("lr", f"{self.lr!r} is not a number", "a number > 0, e.g. 1e-4") from None
        if not (lr > 0 and math.isfinite(lr)):
            raise ConfigError("lr", f"{self.lr!r} is not positive", "a number > 0, e.g. 1e-4")
        object.__setattr__(self, "lr", lr)
        try:
            facs = tuple(parse_real(f) for f in self.tess_factors)
        except (TypeError, ValueError):
            raise ConfigError("tess_factors", f"{self.tess_factors!r} is not a list of numbers",
                              "four numbers: λ_post, λ_pre, α_post, α_pre") from None
        if not isinstance(self.train_s, bool):
            raise ConfigError("train_s", f"{self.train_s!r} is not true or false", "true or false")
        if len(facs) != 4:
            raise ConfigError("tess_factors", f"{self.tess_factors!r} has {len(facs)} values",
                              "four numbers: λ_post, λ_pre, α_post, α_pre")
        object.__setattr__(self, "tess_factors", _tess_factors_in_range(facs))
        for key in ("segment", "window"):
            val = getattr(self, key)
            if val is not None:
                object.__setattr__(self, key, _pos_int(key, val))
        if not isinstance(self.compact, bool):
            raise ConfigError("compact", f"{self.compact!r} is not true or false", "true or false")

    def segment_for(self, steps: int) -> int:
        """bptt-ckpt's segment length k for T = ``steps``: ``segment`` or ⌈√T⌉."""
        return self.segment if self.segment is not None else math.isqrt(steps - 1) + 1 if steps > 1 else 1

    def window_for(self, steps: int) -> int:
        """tbptt's window K for T = ``steps``: ``window`` or min(T, 25)."""
        return self.window if self.window is not None else min(steps, TBPTT_DEFAULT_WINDOW)


#: TESS's factors: λ_post, λ_pre are trace decays (a fraction kept per step); α_post, α_pre scale the
#: non-causal / causal terms (0 switches a term off; negative would reverse learning).
TESS_FACTOR_RANGES: tuple[tuple[str, float, float], ...] = (
    ("λ_post", 0.0, 1.0), ("λ_pre", 0.0, 1.0), ("α_post", 0.0, 1e3), ("α_pre", 0.0, 1e3))


def _tess_factors_in_range(facs: tuple[float, ...]) -> tuple[float, ...]:
    """Each factor finite and in its range (:data:`TESS_FACTOR_RANGES`), else a one-line error."""
    for f, (name, lo, hi) in zip(facs, TESS_FACTOR_RANGES):
        if not lo <= f <= hi:  # also NaN and ±inf
            raise ConfigError("tess_factors", f"{name} = {f!r} is out of range",
                              "λ_post, λ_pre in [0, 1]; α_post, α_pre in [0, 1000]")
    return facs


def parse_trainable(value: Any) -> str:
    """``RuleSpec.trainable`` in canonical form: ``all``, ``readout`` or ``last:k`` (k ≥ 1)."""
    v = str(value).strip().lower().replace(" ", "")
    accepted = "all, readout, or last:k (the last k hidden layers and the readout learn), e.g. last:1"
    if v in ("all", "readout"):
        return v
    if v.startswith("last:"):
        k = parse_ascii_int(v[5:], 9)
        if k is not None and k >= 1:
            return f"last:{k}"
    raise ConfigError("trainable", f"{_short(value)} is not known", accepted)


def trained_hidden(trainable: str, depth: int) -> int:
    """How many hidden layers learn (the last ones) under ``trainable`` in a net of ``depth``
    hidden layers: L for "all", 0 for "readout", min(k, L) for "last:k"."""
    if trainable == "all":
        return depth
    if trainable == "readout":
        return 0
    return min(int(trainable.split(":")[1]), depth)


def frozen_layers(rule: "RuleSpec", depth: int) -> int:
    """F: the first F hidden layers (1-based l ≤ F) are frozen; layers F+1..L and the readout learn."""
    return depth - trained_hidden(rule.trainable, depth)


#: RuleSpec fields that have their own measurement column (the rest are "options").
RULE_COLUMNS: tuple[str, ...] = ("name", "optimizer", "cadence", "aux")


def rule_options(rule: "RuleSpec") -> str:
    """The rule's settings beyond name, optimiser, cadence and aux that differ from their
    defaults, e.g. ``'lr=0.003 train_s=True'`` (empty for defaults): part of a point's identity."""
    default = RuleSpec(name=rule.name)
    return " ".join(f"{f.name}={getattr(rule, f.name)}" for f in dataclasses.fields(RuleSpec)
                    if f.name not in RULE_COLUMNS and getattr(rule, f.name) != getattr(default, f.name))


def uses_tess_authors(rule: RuleSpec) -> bool:
    """True when the TESS learner/model runs the authors' code (flavour or the schedule rule)."""
    return rule.name == "tess-authors-schedule" or (rule.name == "tess" and rule.flavour == "authors")


# --------------------------------------------------------------------------------------
# The whole configuration
# --------------------------------------------------------------------------------------


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


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
        if uses_tess_authors(self.rule) and any(layer.kind == "recurrent" for layer in self.net.layers):
            raise ConfigError("flavour", "'authors' TESS has no recurrent layers (their VGG code has none)",
                              "dense and conv layers, or flavour 'paper'")
        if self.rule.trainable.startswith("last:") and int(self.rule.trainable[5:]) > self.net.depth:
            raise ConfigError("trainable", f"{self.rule.trainable} asks for more layers than the net's "
                              f"{self.net.depth} hidden layer(s)", f"last:1..last:{self.net.depth}, all or readout")
        T = self.workload.steps
        for key in ("segment", "window"):
            val = getattr(self.rule, key)
            if val is not None and val > T:
                raise ConfigError(key, f"{val} is larger than the sequence (T = {T} steps)", f"an integer 1..{T}")

    def with_(self, **changes: Any) -> "Config":
        """Copy with workload / rule fields changed: ``cfg.with_(batch=8, name='tess')``."""
        wl = {k: v for k, v in changes.items() if k in _field_names(Workload)}
        rl = {k: v for k, v in changes.items() if k in _field_names(RuleSpec)}
        if unknown := set(changes) - set(wl) - set(rl):
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
    if unknown := set(data) - known:
        raise ConfigError("config", f"{source} has unknown section(s) {sorted(unknown)}", ", ".join(sorted(known)))
    net = data.get("net", "shd")
    if isinstance(net, Mapping):
        if "string" not in net:
            return Config.from_dict(data)
        net = net["string"]
    if not isinstance(net, str):
        raise ConfigError("net", f"{source}: {net!r} is not a net string", _NET_HELP)
    wl = data.get("workload", {})
    rl = data.get("rule", {})
    if isinstance(rl, str):
        rl = {"name": rl}
    if not isinstance(wl, Mapping) or not isinstance(rl, Mapping):
        raise ConfigError("config", f"{source}: workload and rule must be tables", "[workload] and [rule] tables")
    for section, table, cls in (("workload", wl, Workload), ("rule", rl, RuleSpec)):
        if bad := set(table) - _field_names(cls):
            raise ConfigError(section, f"unknown key(s) {sorted(bad)}", ", ".join(sorted(_field_names(cls))))
    dev = data.get("device")
    device = None
    if dev is not None:
        if not isinstance(dev, Mapping) or "budget_bytes" not in dev:
            raise ConfigError("device", "needs name and budget_bytes", "[device] name = ..., budget_bytes = '512KiB'")
        device = Device(name=str(dev.get("name", "device")), budget_bytes=dev["budget_bytes"],
                        source=str(dev.get("source", source)))
    return make_config(net, RuleSpec(**rl), wl.get("batch"), wl.get("classes"), wl.get("steps"),
                       wl.get("dtype", "fp32"), device=device)


def rules_accepting(cfg: Config, rules: "tuple[str, ...] | list[str]") -> list[str]:
    """The rules among ``rules`` that accept ``cfg``'s net and workload (e.g. the authors' TESS
    refuses recurrent layers)."""
    out = []
    for r in rules:
        try:
            cfg.with_(name=r)
        except ConfigError:
            continue
        out.append(r)
    return out


# --------------------------------------------------------------------------------------
# Grids of configurations
# --------------------------------------------------------------------------------------

#: Workload axes a Grid may vary; the analytic model evaluates them as arrays in one pass.
VECTOR_AXES: tuple[str, ...] = ("batch", "classes", "steps", "dtype")
#: Every axis a Grid may vary: the net, the workload, and any RuleSpec field ("rule" = its name).
GRID_AXES: tuple[str, ...] = ("net", "rule") + VECTOR_AXES + tuple(
    f.name for f in dataclasses.fields(RuleSpec) if f.name != "name")
#: The most points one Grid may hold (a 10⁶-point sweep of three rules fits).
MAX_GRID_POINTS = 10_000_000


def _axis_value(base: "Config", axis: str, value: Any) -> Any:
    """One validated axis value (net strings are parsed; workload and rule fields checked)."""
    if axis == "net":
        return parse_net(value) if isinstance(value, str) else value
    if axis in ("batch", "classes", "steps"):
        return _pos_int(axis, value)
    if axis == "dtype":
        return parse_dtype(value)
    key = "name" if axis == "rule" else axis
    return getattr(replace(base.rule, **{key: value}), key)


@dataclass(frozen=True)
class Grid:
    """The product of ``axes`` over a ``base`` Config: the first axis varies slowest.

    ``Grid(base, (("rule", ("tp", "tess")), ("batch", (8, 64))))`` holds four configs. Axes are
    :data:`GRID_AXES`; values are validated on construction; more than ``max_points`` points is
    a one-line error (before anything is expanded).
    """

    base: Config
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    max_points: int = MAX_GRID_POINTS

    def __post_init__(self) -> None:
        axes = tuple(self.axes.items()) if isinstance(self.axes, Mapping) else tuple(self.axes)
        names = [a for a, _ in axes]
        bad = [a for a in names if a not in GRID_AXES]
        if bad:
            raise ConfigError("grid", f"unknown axis {bad[0]!r}", ", ".join(GRID_AXES))
        if len(set(names)) != len(names):
            raise ConfigError("grid", "an axis is given twice", "each axis once")
        for a, vals in axes:
            if not isinstance(vals, (list, tuple)) or not vals:
                raise ConfigError(a, f"{vals!r} is not a non-empty list of values", "a list, e.g. [1, 8, 64]")
        size = math.prod(len(vals) for _, vals in axes)
        if size > self.max_points:
            raise ConfigError("grid", f"{size:,} points is too many", f"at most {self.max_points:,} points")
        checked = tuple((a, tuple(_axis_value(self.base, a, v) for v in vals)) for a, vals in axes)
        for a, vals in checked:  # a value twice would be a point twice (and an ambiguous rule column)
            seen: set[str] = set()
            for v in vals:
                key = repr(v)
                if key in seen:
                    raise ConfigError(a, f"{_short(v)} is listed twice", "each value once")
                seen.add(key)
        object.__setattr__(self, "axes", checked)

    @property
    def size(self) -> int:
        return math.prod(len(v) for _, v in self.axes)

    def __len__(self) -> int:
        return self.size

    def values(self, axis: str) -> tuple[Any, ...]:
        """The values of one axis (the base's value when the grid does not vary it)."""
        return dict(self.axes).get(axis) or (point_value(self.base, axis),)

    def point(self, changes: Mapping[str, Any]) -> "Config":
        """The base Config with the given axis values."""
        cfg = self.base
        if "net" in changes:
            cfg = replace(cfg, net=changes["net"].with_readout(cfg.workload.classes))
        rest = {("name" if a == "rule" else a): v for a, v in changes.items() if a != "net"}
        return cfg.with_(**rest) if rest else cfg

    def configs(self) -> "list[Config]":
        """Every point as a Config, in product order (first axis slowest)."""
        import itertools

        names = [a for a, _ in self.axes]
        return [self.point(dict(zip(names, combo))) for combo in itertools.product(*(v for _, v in self.axes))]


def point_value(cfg: "Config", axis: str) -> Any:
    """The value of a grid axis in one Config."""
    if axis == "net":
        return cfg.net
    if axis in VECTOR_AXES:
        return getattr(cfg.workload, axis)
    return getattr(cfg.rule, "name" if axis == "rule" else axis)
