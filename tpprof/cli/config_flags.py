"""The config flags, declared once for estimate, sweep, measure and train.

``add_config_flags(parser)`` adds --net, --rule, --batch, --classes, --steps, --dtype, --config
and one flag per :class:`tpprof.config.RuleSpec` field (--optimizer, --cadence, --aux, --lr,
--similarity, --train-s, ...: a field added to RuleSpec gets its flag here without a change).
Every flag defaults to "not given", so a --config file and the preset's workload fill in;
values are checked by Config itself (one-line errors naming the field). ``config_from_args``
turns the flags into a Config; ``grid_from_args`` into a Grid (comma-separated lists as axes).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Sequence

from tpprof.config import (
    DTYPE_BYTES, PRESETS, RULES, Config, Grid, RuleSpec, load_config_file, make_config, rules_accepting,
    set_net_file_dt,
)
from tpprof.errors import UserError
from tpprof.units import parse_ascii_int, parse_real

#: Help per RuleSpec field (a field without an entry still gets a flag, described by its default).
RULE_HELP: dict[str, str] = {
    "update": "where the optimiser step is applied: buffered (a gradient buffer per parameter) or in-loop (each "
              "weight updated as its gradient element is summed over the batch: no gradient buffer; per-step rules "
              "at cadence step); default buffered",
    "optimizer": "optimiser: sgd (no state), momentum (1x params), adam (2x params); default adam",
    "cadence": "update cadence: step (every time step, as published) or sequence (gradients accumulated over T, "
               "one update per mini-batch); default step",
    "aux": "fixed random matrices (TP's S, TESS's B_l, feedback matrices): stored (memory) or regenerated from a "
           "seed (compute); default stored",
    "lr": "learning rate, a number > 0; default 1e-4",
    "similarity": "TP's similarity f in Eq. 15: distance or dot; default distance",
    "train_s": "TP: train the label projection S too (true/false); default false",
    "tess_factors": "TESS's four factors lambda_post,lambda_pre,alpha_post,alpha_pre; default 0.2,0.5,1,1",
    "flavour": "TESS/TP equations as tpprof reads the paper (paper) or as the authors' code runs them (authors; "
               "docs/tess_authors.md, docs/tp_authors.md); default paper",
    "delay_ls": "tess-authors-schedule: the last N of the T steps back-propagate the readout's loss through all "
                "blocks, 0 = fully local; default 1",
    "segment": "bptt-ckpt: steps between kept states (the segment recomputed in backward); default ceil(sqrt(T))",
    "window": "tbptt: window K, an update every K steps with gradients through at most K steps; default min(T, 25)",
    "compact": "bptt-ckpt / tbptt: save spikes bit-packed and pooling inputs compactly (true/false); default false",
    "target_rows": "TP: the target path held once per sample (batch, the paper's) or once per class present in "
                   "the mini-batch (classes, the same updates); default batch",
    "s_init": "TP: the fixed label projection S drawn uniform U(+-1/sqrt(C)), ws (the authors' 1.8 WS(S)) or "
              "c-invariant (layer-1 target drive independent of C); default uniform",
    "trainable": "which layers learn: all, readout (hidden layers frozen), or last:k (the last k hidden layers and "
                 "the readout); a frozen layer holds no gradient or optimiser state; default all",
}
#: Examples for fields whose default is "not set" (None).
RULE_EXAMPLE: dict[str, str] = {"segment": "10", "window": "25"}
#: The flags whose values may be comma-separated lists in sweep and measure (grid axes).
LIST_FIELDS: tuple[str, ...] = ("net", "rule", "batch", "classes", "steps", "dtype", "optimizer")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def rule_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(RuleSpec) if f.name != "name"]


def add_config_flags(p: argparse.ArgumentParser, *, lists: bool = False, rules: Sequence[str] = RULES,
                     config_file: bool = True, default_net: str | None = None, rule_all: bool = True) -> None:
    """Add the config flags; with ``lists`` the :data:`LIST_FIELDS` take comma-separated lists;
    ``rules`` are the rules the command accepts (``rule_all``: and ``all`` for every one)."""
    many = " (comma-separated list)" if lists else ""
    or_all = ", or all" if rule_all else ""
    p.add_argument("--net", default=default_net,
                   help=f"preset ({', '.join(PRESETS)}) or net string, e.g. 700-450-20, 700-450r-20, "
                        f"2x32x32-c64-c128p-10, vgg9:2x32x32{many} (default: {default_net or 'shd'})")
    for name, what, detail, example, list_example in (
            ("rule", "learning rule", f": {', '.join(rules)}{or_all} (default: tp)", "tess", "tp,tess,bptt"),
            ("batch", "batch size B", "; default the preset's (128 for shd) or 32", "128", "1,8,64"),
            ("classes", "classes C, resizes the readout", "; default the net's readout", "20", "10,100,1000"),
            ("steps", "time steps T per sequence", "; default the preset's (100 for shd) or 100", "100", "100"),
            ("dtype", "element type of every tensor", f": {', '.join(DTYPE_BYTES)} (default fp32)", "fp16", "fp16")):
        p.add_argument(f"--{name}", default=None,
                       help=f"{what}{many}{detail}, e.g. --{name} {list_example if lists else example}")
    for f in rule_fields():
        default = f.default if f.default is not dataclasses.MISSING else None
        text = RULE_HELP[f.name]  # every RuleSpec field says what it means (a test checks)
        many_f = many if f.name in LIST_FIELDS else ""
        switch = {"nargs": "?", "const": "true"} if isinstance(default, bool) else {}  # a bare --train-s is true
        p.add_argument(_flag(f.name), dest=f.name, default=None, metavar="VALUE", **switch,
                       help=f"{text}{many_f}, e.g. {_flag(f.name)} {RULE_EXAMPLE.get(f.name, _example(default))}")
    add_nir_dt_flag(p)
    if config_file:
        p.add_argument("--config", default=None, metavar="FILE",
                       help="TOML or JSON config file (net, [workload], [rule], [device]); flags given on the "
                            "command line override it, e.g. --config run.toml")


class _NoCatalogueDevice(argparse.Action):
    """``--device`` on a command that runs on a backend: refused in one line that says what
    ``--device`` means everywhere and which flag this command takes instead."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        cmd = parser.prog.split()[-1]
        parser.error(f"--device names a catalogue device (tpprof devices), which {cmd} does not use; where the "
                     f"steps run is --backend (cpu, cuda, cuda:N)")


def refuse_catalogue_device(p: argparse.ArgumentParser) -> None:
    """Add a hidden ``--device`` that refuses itself (see :class:`_NoCatalogueDevice`)."""
    p.add_argument("--device", action=_NoCatalogueDevice, help=argparse.SUPPRESS, dest="catalogue_device")


def add_nir_dt_flag(p: argparse.ArgumentParser) -> None:
    """``--nir-dt SECONDS``: one meaning in every subcommand that reads a net."""
    p.add_argument("--nir-dt", dest="nir_dt", type=ascii_float, default=None, metavar="SECONDS",
                   help="time step of a .nir net whose graph has no dt in its metadata (Norse, Sinabs and "
                        "SpikingJelly write none), e.g. --nir-dt 1e-3")


def apply_nir_dt(args: argparse.Namespace) -> None:
    """Hand ``--nir-dt`` to the net-file readers before any net is parsed (None clears an earlier
    command's in this process)."""
    set_net_file_dt(getattr(args, "nir_dt", None))


def _example(default: Any) -> str:
    if isinstance(default, bool):
        return "true"
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    return str(default)


def _rule_value(field: dataclasses.Field, text: str) -> Any:
    """A flag's text → the RuleSpec field's type (RuleSpec validates the value itself)."""
    t = str(text).strip()
    if not t:
        raise UserError(field.name, "is empty", "a value, or leave the flag out for the default")
    if isinstance(field.default, bool):
        if t.lower() in ("true", "yes", "1", "on"):
            return True
        if t.lower() in ("false", "no", "0", "off"):
            return False
        raise UserError(field.name, f"{text!r} is not true or false", "true or false")
    if isinstance(field.default, tuple):
        return tuple(x.strip() for x in t.split(","))
    if isinstance(field.default, int):
        if (v := parse_ascii_int(t, 30)) is None:
            raise UserError(field.name, f"{_cut(t)} is not an integer", "an integer")
        return v
    return t


def check_rules(value: str | None, rules: Sequence[str]) -> None:
    """Each rule named in ``value`` (comma-separated) is one of ``rules``, the rules this command
    can run; the error lists those, not every rule tpprof knows."""
    for r in split_list("rule", value) or []:
        if r.strip().lower() not in rules:
            raise UserError("rule", f"{r[:40]!r} is not one this command runs", ", ".join(rules))


def split_list(field: str, value: Any) -> list[str] | None:
    """A flag's comma-separated text → its items (None when the flag was not given)."""
    if value is None:
        return None
    items = [x.strip() for x in str(value).split(",")]
    if any(not x for x in items):
        raise UserError(field, f"{value!r} has an empty item", "a comma-separated list, e.g. 1,8,64")
    return items


def int_flag(field: str, value: Any) -> int | None:
    """A flag's text → a positive integer (None when not given); one-line error otherwise."""
    if value is None:
        return None
    t = str(value).strip()
    if not (t.isascii() and t.isdigit()) or len(t) > 12:
        raise UserError(field, f"{value!r} is not an integer", "an integer >= 1, e.g. 128")
    v = int(t)
    if v < 1:
        raise UserError(field, f"{v} is too small", "an integer >= 1")
    return v


_NUMBER_START = frozenset("0123456789.")


def ascii_int(text: str) -> int:
    """argparse ``type`` for integer flags: ASCII digits only (``int()`` also takes ``'٣'``), an
    optional sign, at most 30 digits (:func:`tpprof.units.parse_ascii_int`); the field's own
    check names its range."""
    v = parse_ascii_int(str(text), 30)
    if v is None:
        raise argparse.ArgumentTypeError(f"invalid integer: {_cut(str(text).strip())} (ASCII digits, e.g. 3)")
    return v


def ascii_float(text: str) -> float:
    """argparse ``type`` for real-valued flags: ASCII text (:func:`tpprof.units.parse_real`), finite."""
    try:
        v = parse_real(str(text).strip())
    except ValueError:
        v = float("nan")
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"invalid number: {_cut(str(text).strip())} (a finite number, e.g. 0.05)")
    return v


def check_flag_texts(args: argparse.Namespace) -> None:
    """Refuse, for every text value on the command line, what no flag accepts: a NUL, an empty
    text (``--budget ''`` must not silently mean "no budget") and a value that looks like a flag
    (``--net=--``, ``--out=-x``: a typo that would otherwise become a file name or a net).
    A leading minus before a digit is let through: the field's own check names the range."""
    for dest, value in vars(args).items():
        flag = _flag(dest)
        if value == []:  # argparse turns --net=-- into an empty list (it drops the "--")
            raise UserError(flag, "has no value (\"--\" is not one)", f"a value after {flag}")
        for text in (value if isinstance(value, list) else [value]):
            if not isinstance(text, str) or dest in ("command", "func"):
                continue
            if "\x00" in text:  # no path, net or number holds a NUL; refused once, not deep in os calls
                raise UserError(flag, "contains a NUL character", "text without NUL")
            t = text.strip()
            if not t:
                raise UserError(flag, "is empty", "a value, or leave the flag out for its default")
            if t.startswith("-") and not (len(t) > 1 and t[1] in _NUMBER_START):
                raise UserError(flag, f"{_cut(t)} looks like a flag, not a value",
                                f"a value after {flag} (write ./{_cut(t)} for a file of that name)")


def _cut(text: str, n: int = 30) -> str:
    return repr(text) if len(text) <= n else repr(text[:n]) + f"… ({len(text)} characters)"


def rule_changes(args: argparse.Namespace, *, skip: Sequence[str] = ()) -> dict[str, Any]:
    """The RuleSpec fields given on the command line (single values)."""
    return {f.name: _rule_value(f, getattr(args, f.name)) for f in rule_fields()
            if getattr(args, f.name, None) is not None and f.name not in skip}


def config_from_args(args: argparse.Namespace, **overrides: Any) -> Config:
    """Flags (over ``--config``, over the preset's workload) → Config; ``overrides`` (net, rule,
    batch, classes, steps, dtype or a RuleSpec field) replace the flags' values."""
    apply_nir_dt(args)
    vals = {k: getattr(args, k, None) for k in ("net", "rule", "batch", "classes", "steps", "dtype")}
    vals.update({k: v for k, v in overrides.items() if k in vals and v is not None})
    changes = rule_changes(args, skip=tuple(k for k in overrides if k not in vals))
    changes.update({k: v for k, v in overrides.items() if k not in vals and v is not None})
    if vals["rule"] is not None:
        changes["name"] = vals["rule"]
    batch, classes, steps = (int_flag(k, vals[k]) for k in ("batch", "classes", "steps"))
    if getattr(args, "config", None):
        base = load_config_file(args.config)
        wl = base.workload
        net = vals["net"]
        return make_config(net if net is not None else base.net, dataclasses.replace(base.rule, **changes),
                           batch if batch is not None else wl.batch,
                           classes if classes is not None else (wl.classes if net is None else None),
                           steps if steps is not None else wl.steps,
                           vals["dtype"] if vals["dtype"] is not None else wl.dtype, device=base.device)
    rule = RuleSpec(**{"name": "tp", **changes})
    return make_config(vals["net"] or "shd", rule, batch, classes, steps, vals["dtype"] or "fp32")


def grid_from_args(args: argparse.Namespace, *, default_rules: Sequence[str] = ("tp",),
                   rule_last: bool = True, all_rules: Sequence[str] = RULES) -> Grid:
    """The flags' Grid: the base Config from the first value of each list flag, one axis per flag
    given with several values. Axis order (slowest first): batch, classes, steps, dtype,
    optimizer, rule; a list of nets is the slowest axis of all. ``--rule all`` is every rule
    of ``all_rules``."""
    apply_nir_dt(args)
    lists = {k: split_list(k, getattr(args, k, None)) for k in LIST_FIELDS}
    rules = lists.pop("rule") or list(default_rules)
    every = rules == ["all"]
    if every:
        rules = list(all_rules)
    nets = lists.pop("net")
    first = {k: (v[0] if v else None) for k, v in lists.items()}
    base = config_from_args(args, net=nets[0] if nets else None, rule="tp" if every else rules[0], **first)
    if every:  # "all" means every rule that accepts this config (e.g. not the authors' TESS on a recurrent net)
        rules = rules_accepting(base, rules)
        base = base.with_(name=rules[0])
    axes: list[tuple[str, tuple[Any, ...]]] = []
    if nets and len(nets) > 1:
        axes.append(("net", tuple(nets)))
    axes += [(k, tuple(v)) for k, v in lists.items() if v and len(v) > 1]
    if len(rules) > 1 or rule_last:
        axes.append(("rule", tuple(rules)))
    return Grid(base, tuple(axes))


def _as_text(value: Any) -> Any:
    """A value as the text its flag would carry (``(0.2, 0.5)`` → ``"0.2,0.5"``, True → ``"true"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def config_from_values(**values: Any) -> Config:
    """The CLI's own path (:func:`config_from_args`) for values that come from elsewhere — the
    dashboard's widgets, the report's defaults: each value as if typed after its flag
    (``config_from_values(net="shd", batch=128, optimizer="sgd")``); a value that is None is a flag
    not given (the preset's workload fills it)."""
    known = ("net", "rule", "batch", "classes", "steps", "dtype", "config") + tuple(f.name for f in rule_fields())
    if bad := sorted(set(values) - set(known)):
        raise UserError("config", f"unknown field(s) {bad}", ", ".join(known))
    args = argparse.Namespace(**{k: None for k in known})
    for k, v in values.items():
        if v is not None:
            setattr(args, k, v if k == "config" else _as_text(v))
    return config_from_args(args)
