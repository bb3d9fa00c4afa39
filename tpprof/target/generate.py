"""C sources of one training step from a :class:`~tpprof.config.Config`: the sizes header, the
model's arrays and a linker script.

Every memory term of ``tpprof estimate --accounting algorithm`` becomes one float32 array named
after it (``layer1/ε (input trace)`` → ``m_l1_eps``). Persistent terms are arrays of their own;
the transients are overlaid per phase in one ``union`` (``m_phase``): one struct per phase of the
model holding the transients live in that phase, so the union is exactly the largest phase and

    Σ sizeof(m_* persistent arrays) + sizeof(m_phase) = peak_bytes of the algorithmic model.

A term with no array in the kernel is an error here (the kernel and the model cannot drift
apart silently). Not modelled, and named ``d_*``: the input frame (B × n_in), the labels and what
TP derives from them (target-row labels, k(b), log n_k). Everything else in RAM is the C runtime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from tpprof.analytic import estimate
from tpprof.config import Config, Device
from tpprof.errors import UserError
from tpprof.target.cores import Core

#: Stack reserved in RAM by the linker script (the fit check counts it); the painted high-water
#: mark of every kernel so far is a few hundred bytes.
STACK_RESERVE = 1024
#: Input spike density of the synthetic frames (as measure's make_batch).
DENSITY = 0.1
WEIGHT_SEED, DATA_SEED = 0x1234567, 0x89ABCDE

#: The rules that have a C kernel, and the C field each analytic term key fills.
LAYER_FIELDS: dict[str, dict[str, str]] = {
    "tp": {"W": "W", "R": "R", "grad W": "gW", "grad R": "gR", "v (input path)": "v", "s (input path)": "s",
           "v (target path)": "vt", "s (target path)": "st", "ε (input trace)": "eps", "ε̃ (target trace)": "epst",
           "s^{t−1} (input path)": "sp", "s^{t−1} (target path)": "spt",
           "z (similarity)": "z", "y (soft targets)": "y", "softmax(z)": "sm", "δ (input-path signal)": "d",
           "δ̃ (target-path signal)": "dt", "S (label projection)": "S"},
    "ottt": {"W": "W", "R": "R", "grad W": "gW", "grad R": "gR", "v": "v", "s": "s", "presynaptic trace": "tr",
             "presynaptic trace (recurrent)": "trr", "u (this step)": "u", "∂L_t/∂a_l (spike adjoint)": "adj"},
    "tess": {"W": "W", "R": "R", "grad W": "gW", "grad R": "gR", "v": "v", "s": "s", "trace_in": "tri",
             "trace_in (recurrent)": "trr", "s^{t−1}": "sp", "trace_out": "tro",
             "B_l (LSG matrix)": "Bl", "p − t* (LSG error)": "pe", "δ causal": "dc", "δ non-causal": "dnc"},
    "bptt": {"W": "W", "R": "R", "grad W": "gW", "grad R": "gR", "v": "v", "s": "s", "saved input x^t × T": "sin",
             "saved input s_{l−1}^t × (T−1)": "sin", "saved u × T": "su", "adjoint δ = ∂E/∂u (carried)": "dl",
             "R_lᵀ δ (recurrent adjoint, carried)": "dr"},
}
NET_FIELDS: dict[str, dict[str, str]] = {
    "tp": {"W_out": "W_out", "grad W_out": "gW_out", "m (readout potential)": "m", "softmax(m) − c": "err"},
    "ottt": {"W_out": "W_out", "grad W_out": "gW_out", "m (readout potential)": "m", "ε_L (readout input trace)": "epsL",
             "∂L_t/∂m": "gm"},
    "tess": {"W_out": "W_out", "grad W_out": "gW_out", "m (readout potential)": "m", "ε_L (readout input trace)": "epsL",
             "softmax(m) − c": "err"},
    "bptt": {"W_out": "W_out", "grad W_out": "gW_out", "m (readout potential)": "m", "saved s_L × (T−1)": "sL",
             "∂E/∂m": "gm"},
}
#: Rules that run another rule's kernel: tbptt is bptt.c with a window K < T (same terms over K steps).
KERNEL: dict[str, str] = {"tbptt": "bptt"}
for _alias, _kernel in KERNEL.items():
    LAYER_FIELDS[_alias], NET_FIELDS[_alias] = LAYER_FIELDS[_kernel], NET_FIELDS[_kernel]
SOURCES: dict[str, tuple[str, ...]] = {"tp": ("tp.c",), "ottt": ("ottt.c",), "bptt": ("bptt.c",), "tess": ("tess.c",),
                                       "tbptt": ("bptt.c",)}
RUNTIME_SOURCES = ("runtime.c", "main.c")
#: Layer-struct fields of each rule (the order of <rule>.h's initialiser): ints, then pointers.
INT_FIELDS: dict[str, tuple[str, ...]] = {"tp": ("n_in", "n", "rec", "two_terms"), "ottt": ("n_in", "n", "rec"),
                                          "bptt": ("n_in", "n", "rec"), "tess": ("n_in", "n", "rec")}
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "tp": ("W", "R", "gW", "gR", "oW", "oR", "v", "s", "vt", "st", "eps", "epst", "sp", "spt",
           "z", "y", "sm", "d", "dt"),
    "ottt": ("W", "R", "gW", "gR", "oW", "oR", "v", "s", "tr", "trr", "u", "adj"),
    "bptt": ("W", "R", "gW", "gR", "oW", "oR", "v", "s", "sin", "su", "dl", "dr"),
    "tess": ("W", "R", "gW", "gR", "oW", "oR", "v", "s", "tri", "tro", "Bl", "pe", "dc", "dnc", "trr", "sp"),
}
NET_STRUCT_FIELDS: dict[str, tuple[str, ...]] = {"tp": ("S", "W_out", "gW_out", "oW_out", "m", "err"),
                                                  "ottt": ("W_out", "gW_out", "oW_out", "m", "epsL", "gm"),
                                                  "bptt": ("W_out", "gW_out", "oW_out", "m", "sL", "gm"),
                                                  "tess": ("W_out", "gW_out", "oW_out", "m", "epsL", "err")}
OPT_PREFIX = ("adam state ", "momentum state ")


@dataclass(frozen=True)
class Array:
    """One array of the kernel: the model term it stands for and where it lives."""

    term: str  # the analytic term's name
    symbol: str  # C symbol (persistent) or union member / arena slot (transient)
    count: int  # float32 elements
    phases: tuple[str, ...]  # () = persistent; else the model's phases in which it is live
    layer: int | None
    field: str  # the kernel's struct field
    offset: int = 0  # transients in an arena (terms live in several phases): float offset in m_phase

    @property
    def phase(self) -> str | None:
        """The one phase of a single-phase transient (None: persistent or several)."""
        return self.phases[0] if len(self.phases) == 1 else None

    @property
    def bytes(self) -> int:
        return 4 * self.count


@dataclass(frozen=True)
class Layout:
    """All arrays of one config, and the bytes the model gives for them."""

    arrays: tuple[Array, ...]
    peak_bytes: int
    total_bytes: int
    arena: int = 0  # floats of m_phase when the transients are packed by offset (0: a union of structs)

    @property
    def persistent(self) -> tuple[Array, ...]:
        return tuple(a for a in self.arrays if not a.phases)

    @property
    def transient(self) -> tuple[Array, ...]:
        return tuple(a for a in self.arrays if a.phases)

    def phases(self) -> dict[str, list[Array]]:
        """Phase → the transients live in it."""
        out: dict[str, list[Array]] = {}
        for a in self.transient:
            for p in a.phases:
                out.setdefault(p, []).append(a)
        return out

    def transient_bytes(self) -> int:
        """Bytes of m_phase: the union (largest phase) or the packed arena."""
        if self.arena:
            return 4 * self.arena
        return max((sum(a.bytes for a in arrs) for arrs in self.phases().values()), default=0)


def supported_rules() -> tuple[str, ...]:
    return tuple(LAYER_FIELDS)


def check_supported(cfg: Config) -> None:
    """One-line error for what the C kernels do not implement."""
    rule = cfg.rule
    if rule.name not in LAYER_FIELDS:
        raise UserError("rule", f"{rule.name!r} has no C kernel on the target", ", ".join(LAYER_FIELDS))
    if cfg.workload.dtype != "fp32":
        raise UserError("dtype", f"{cfg.workload.dtype!r} is not implemented on the target", "fp32")
    if any(layer.kind not in ("dense", "recurrent") for layer in cfg.net.layers):
        raise UserError("net", "conv layers are not implemented on the target", "dense and recurrent layers")
    nrn = cfg.net.neuron
    if nrn.reset != "soft" or nrn.order != "code":
        raise UserError("neuron", f"reset={nrn.reset} order={nrn.order} is not implemented on the target",
                        "reset soft, order code")
    if getattr(rule, "trainable", "all") != "all":
        raise UserError("trainable", f"{rule.trainable!r} is not implemented on the target (every layer learns)",
                        "all")
    if rule.optimizer not in ("sgd", "adam"):
        raise UserError("optimizer", f"{rule.optimizer!r} is not implemented on the target", "sgd, adam")
    if rule.name == "tess" and (rule.flavour != "paper" or rule.aux != "stored"):
        raise UserError("rule", "TESS on the target runs the paper flavour with a stored B_l",
                        "flavour paper, aux stored")
    if rule.name == "tbptt" and rule.compact:
        raise UserError("compact", "tbptt on the target saves as plain BPTT", "compact false")
    if rule.name == "tbptt" and any(layer.kind == "recurrent" for layer in cfg.net.layers):
        raise UserError("net", "tbptt on the target has dense layers only (R_l's gradient at a window's first step "
                        "reads s^{w0−1}, kept beside the state, which the model counts with the learner's "
                        "implementation terms)", "dense layers, or rule bptt")
    if rule.name == "tp":
        if rule.flavour != "paper" or rule.train_s or rule.aux != "stored" or rule.similarity != "distance" \
                or rule.s_init != "uniform":
            raise UserError("rule", "TP on the target runs the paper flavour with a stored, fixed, uniform S and "
                            "the distance similarity", "flavour paper, aux stored, train_s false, similarity distance")


def _ident(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "_", text)


def layout(cfg: Config) -> Layout:
    """The arrays of ``cfg``'s kernel, one per term of the algorithmic model."""
    check_supported(cfg)
    if cfg.workload.dtype_bytes != 4:  # pragma: no cover - check_supported allows fp32 only
        raise UserError("dtype", "the target kernels are float32", "fp32")
    bd = estimate(cfg, "algorithm")
    lf, nf = LAYER_FIELDS[cfg.rule.name], NET_FIELDS[cfg.rule.name]
    arrays = []
    for t in bd.terms:
        key = t.key
        opt = next((p for p in OPT_PREFIX if key.startswith(p)), None)
        if opt:  # optimiser state of a parameter: the struct field o<param>
            base = key[len(opt):]
            field = "o" + (lf.get(base) or nf.get(base, "?"))
        else:
            field = (lf if t.layer is not None and key in lf else nf).get(key, "")
        if t.layer is not None and key == "S (label projection)":
            field, layer = "S", None  # a net-level field of the kernel, held for layer 1
        else:
            layer = t.layer
        if not field or field.endswith("?"):
            raise UserError("rule", f"the {cfg.rule.name} kernel has no array for the model's term {t.name!r}",
                            "a config whose terms the kernel implements")
        ident = (f"l{layer}_" if layer else "") + field
        phases = () if t.persistent else tuple(t.phases)
        arrays.append(Array(t.name, ident if phases else "m_" + ident, int(t.count), phases, layer, field))
    lay = Layout(tuple(arrays), int(bd.peak_bytes), int(bd.total_bytes))
    if any(len(a.phases) > 1 for a in arrays):
        lay = pack(lay)
    return lay


def pack(lay: Layout) -> Layout:
    """Offsets for transients live in several phases: first fit, largest first, against the
    already placed terms that share a phase with it (two terms never live together may share
    memory). The arena is then at least the largest phase; ``tpprof validate`` shows any excess."""
    placed: list[Array] = []
    for a in sorted(lay.transient, key=lambda x: (-x.count, x.term)):
        clash = sorted((b.offset, b.offset + b.count) for b in placed if set(a.phases) & set(b.phases))
        off = 0
        for lo, hi in clash:
            if off + a.count <= lo:
                break
            off = max(off, hi)
        placed.append(replace(a, offset=off))
    by_term = {a.term: a for a in placed}
    arrays = tuple(by_term.get(a.term, a) for a in lay.arrays)
    arena = max((a.offset + a.count for a in placed), default=0)
    return replace(lay, arrays=arrays, arena=max(arena, 1))


def _flit(x: float) -> str:
    """A float32 constant, exactly: the double's hex literal cast to float (as torch casts a scalar)."""
    return f"((float){float(x).hex()})"


def _target_rows(cfg: Config) -> int:
    B, C = cfg.workload.batch, cfg.workload.classes
    return min(B, C) if cfg.rule.name == "tp" and cfg.rule.target_rows == "classes" else B


def kernel_name(cfg: Config) -> str:
    """The C kernel (header, struct names) that runs ``cfg``'s rule."""
    return KERNEL.get(cfg.rule.name, cfg.rule.name)


def model_h(cfg: Config) -> str:
    wl, nrn, rule = cfg.workload, cfg.net.neuron, cfg.rule
    geo = cfg.net.geometry()
    lines = [
        "/* generated by tpprof.target.generate: the sizes of one config */",
        "#ifndef MODEL_H", "#define MODEL_H", '#include "tpt.h"',
        f'#define TPT_RULE "{rule.name}"',
        f"#define NL {len(geo)}", f"#define BATCH {wl.batch}", f"#define CLASSES {wl.classes}",
        f"#define STEPS {wl.steps}", f"#define WINDOW {rule.window_for(wl.steps) if rule.name == 'tbptt' else wl.steps}",
        f"#define N_IN {geo[0].n_in}", f"#define KT {_target_rows(cfg)}",
        f"#define ALPHA {_flit(nrn.alpha)}", f"#define BETA {_flit(nrn.beta)}", f"#define VTH {_flit(nrn.v_th)}",
        f"#define SURR_K {_flit(nrn.surrogate_k)}", f"#define LR {_flit(rule.lr)}",
        f"#define TPT_OPT_ADAM {int(rule.optimizer == 'adam')}",
        f"#define TPT_CADENCE_SEQ {int(rule.cadence == 'sequence')}",
        f"#define TPT_IN_LOOP {int(rule.update == 'in-loop')}",
        f"#define TP_DEDUP {int(rule.name == 'tp' and rule.target_rows == 'classes')}",
        f"#define TESS_LAM_POST {_flit(rule.tess_factors[0])}", f"#define TESS_LAM_PRE {_flit(rule.tess_factors[1])}",
        f"#define TESS_A_POST {_flit(rule.tess_factors[2])}", f"#define TESS_A_PRE {_flit(rule.tess_factors[3])}",
        f"#define TESS_CAUSAL {int(rule.tess_factors[3] != 0.0)}",
        f"#define TESS_NONCAUSAL {int(rule.tess_factors[2] != 0.0)}",
        f"#define TPT_WEIGHT_SEED {WEIGHT_SEED}u", f"#define TPT_DATA_SEED {DATA_SEED}u",
        f"#define TPT_DENSITY24 {int(round(DENSITY * (1 << 24)))}u",
        "#ifndef TPT_DUMP", "#define TPT_DUMP 0", "#endif",
        "#ifndef TPT_FAULT_TEST", "#define TPT_FAULT_TEST 0", "#endif",
        "#ifndef TPT_HANG_TEST", "#define TPT_HANG_TEST 0", "#endif",
        f"#define TPT_N_PARAMS {len(params(cfg))}",
        "extern const tpt_param_t TPT_PARAMS[TPT_N_PARAMS];",
        "void tpt_print_phases(void);", "#endif", "",
    ]
    return "\n".join(lines)


def params(cfg: Config) -> list[tuple[str, str, int, int]]:
    """(learner name, C symbol, elements, fan-in) of every initialised tensor, in the learner's order."""
    out = []
    geo = cfg.net.geometry()
    for g in geo:
        out.append((f"layer{g.index}.W", f"m_l{g.index}_W", g.n_weights, g.n_in))
        if g.n_recurrent:
            out.append((f"layer{g.index}.R", f"m_l{g.index}_R", g.n_recurrent, g.n_neurons))
    out.append(("readout.W", "m_W_out", geo[-1].n_out * cfg.workload.classes, geo[-1].n_out))
    if cfg.rule.name == "tp":
        out.append(("S", "m_S", geo[0].n_neurons * cfg.workload.classes, cfg.workload.classes))
    return out


def model_c(cfg: Config, lay: Layout) -> str:
    rule = kernel_name(cfg)
    lines = ["/* generated by tpprof.target.generate: one array per term of the algorithmic model */",
             '#include "model.h"', f'#include "{rule}.h"', ""]
    for a in lay.persistent:
        lines.append(f"float {a.symbol}[{a.count}];  /* {a.term} */")
    phases = lay.phases()
    where: dict[tuple[int | None, str], str] = {}
    if lay.arena:  # terms live in several phases: one arena, each term at its packed offset
        lines.append(f"float m_phase[{lay.arena}];  /* the transients, packed by phase liveness: */")
        for a in lay.transient:
            lines.append(f"/*   m_phase[{a.offset}:{a.offset + a.count}] {a.term}, live in {', '.join(a.phases)} */")
            where[(a.layer, a.field)] = f"m_phase + {a.offset}"
    else:  # one struct per phase, overlaid in a union: the compiler lays out each phase
        lines.append("union tpt_phases {")
        for ph, arrs in phases.items():
            lines.append("    struct {")
            lines += [f"        float {a.symbol}[{a.count}];  /* {a.term} */" for a in arrs]
            lines.append(f"    }} {_ident(ph)};")
            for a in arrs:
                where[(a.layer, a.field)] = f"m_phase.{_ident(ph)}.{a.symbol}"
        if not phases:
            lines.append("    float none[1];")
        lines += ["};", "union tpt_phases m_phase;"]
    lines.append("")
    for a in lay.persistent:
        where[(a.layer, a.field)] = a.symbol
    lines.append("void tpt_print_phases(void) {")
    if lay.arena:
        lines.append(f'    out_str("PH arena "); out_u((uint32_t)sizeof(m_phase)); out_nl();')
    else:
        for ph in phases:
            lines.append(f'    out_str("PH {ph} "); out_u((uint32_t)sizeof(m_phase.{_ident(ph)})); out_nl();')
    lines += ["}", ""]
    lines.append(f"const {rule}_layer_t LAYERS[NL] = {{")
    for g in cfg.net.geometry():
        l = g.index
        ints = {"n_in": g.n_in, "n": g.n_neurons, "rec": int(g.n_recurrent > 0), "two_terms": int((l, "dt") in where)}
        vals = [str(ints[f]) for f in INT_FIELDS[rule]] + [where.get((l, f), "0") for f in STRUCT_FIELDS[rule]]
        lines.append("    {" + ", ".join(vals) + "},")
    lines.append("};")
    net_vals = [where.get((None, f), "0") for f in NET_STRUCT_FIELDS[rule]]
    lines.append(f"const {rule}_net_t NET = {{" + ", ".join(net_vals) + "};")
    lines.append("const tpt_param_t TPT_PARAMS[TPT_N_PARAMS] = {")
    for name, sym, n, fan in params(cfg):
        lines.append(f'    {{"{name}", {sym}, {n}u, {fan}u}},')
    lines += ["};", ""]
    return "\n".join(lines)


def ram_limit(core: Core, device: Device | None) -> tuple[int, str]:
    """RAM given to the linker: the device's SRAM (its budget), at most the machine's RAM; and a
    phrase saying which. (A device's largest contiguous block limits each buffer, checked on the
    linked ELF: :func:`tpprof.target.build.largest_buffer_check`.)"""
    if device is None:
        return core.ram_bytes, f"{core.machine} RAM"
    want = device.budget_bytes
    if want > core.ram_bytes:
        raise UserError("device", f"{device.name} has {want} B of RAM, more than {core.machine} emulates "
                        f"({core.ram_bytes} B)", f"a device with ≤ {core.ram_bytes} B on qemu:{core.name}")
    return int(want), f"{device.name} SRAM"


def linker_script(core: Core, ram_bytes: int, stack: int = STACK_RESERVE) -> str:
    return f"""/* generated by tpprof.target.generate: {core.machine} code memory, RAM = {ram_bytes} B */
MEMORY {{
  FLASH (rx) : ORIGIN = {core.flash_origin:#x}, LENGTH = {core.flash_bytes}
  RAM (rwx)  : ORIGIN = {core.ram_origin:#x}, LENGTH = {ram_bytes}
}}
ENTRY(Reset_Handler)
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  .data : {{ . = ALIGN(4); _sdata = .; *(.data*) . = ALIGN(4); _edata = .; }} > RAM AT > FLASH
  _sidata = LOADADDR(.data);
  .bss (NOLOAD) : {{ . = ALIGN(4); _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; }} > RAM
  .stack (NOLOAD) : {{ . = ALIGN(8); _stack_bottom = .; . += {stack}; _stack_top = .; }} > RAM
}}
"""


def csrc_dir() -> Path:
    """The shipped C sources (package data)."""
    return Path(str(resources.files("tpprof.target") / "csrc"))


def sources(cfg: Config) -> list[Path]:
    d = csrc_dir()
    return [d / f for f in RUNTIME_SOURCES + SOURCES[cfg.rule.name]]


def write_sources(cfg: Config, out: Path, core: Core | None = None, device: Device | None = None) -> Layout:
    """model.h, model.c (and link.ld for a core) into ``out``; returns the layout."""
    lay = layout(cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.h").write_text(model_h(cfg), encoding="utf-8")
    (out / "model.c").write_text(model_c(cfg, lay), encoding="utf-8")
    if core is not None:
        ram, _ = ram_limit(core, device)
        (out / "link.ld").write_text(linker_script(core, ram), encoding="utf-8")
    return lay


__all__ = ["Array", "Layout", "layout", "write_sources", "linker_script", "ram_limit", "params", "check_supported",
           "supported_rules", "STACK_RESERVE", "DENSITY", "WEIGHT_SEED", "DATA_SEED"] 
