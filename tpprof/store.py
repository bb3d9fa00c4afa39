"""Measurement files: schema, validation, crash-safe append, resume and merge.

A measurement file is a CSV with a header and one tidy row per measured point (one rule × net
× workload × dtype × device). Rows are appended one at a time, flushed and fsync'ed, so a
crash loses at most the point being measured. Appends hold an exclusive ``flock``; a torn last
line (a writer killed mid-row) is moved to ``<file>.torn`` on the next append or resume, and a
loader that meets one reports it as a bad row by line number (never silently dropped). ``measurements/README.md`` documents every
column; :data:`COLUMNS` is the machine-readable form of the same schema.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import math
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

from tpprof.config import CATEGORIES, DTYPE_BYTES, POINT_KEY, RULES
from tpprof.errors import UserError

STATUSES: tuple[str, ...] = ("ok", "oom", "timeout", "error", "killed", "does-not-fit")
#: The counter of rows measured on a microcontroller target (tpprof.target): .data + .bss + stack.
TARGET_COUNTER = "static+stack"
#: ok-row columns that only torch rows carry (a target row has no torch, and QEMU's wall time is the
#: host's emulation, not the device's: its time is insns_per_step).
TORCH_ONLY: tuple[str, ...] = ("torch_version", "batch_s_median", "batch_s_min", "ms_per_step")


def config_of(row: Mapping[str, Any]) -> Any:
    """The Config a measurement row describes: from its ``config_json`` (lossless), or, for rows
    written before that column existed, from the flat columns (the rule's other options at
    their defaults, as those tpprof versions measured them)."""
    import json

    from tpprof.config import Config, make_config

    text = row.get("config_json")
    if isinstance(text, str) and text.strip():
        try:
            return Config.from_dict(json.loads(text))
        except ValueError as e:  # json.JSONDecodeError, ConfigError
            raise UserError("config_json", f"does not describe a Config ({str(e).splitlines()[0]})",
                            "the JSON Config.to_json writes") from None
    return make_config(row["net"], row["rule"], int(row["batch"]), int(row["classes"]), int(row["steps"]),
                       row["dtype"], optimizer=row["optimizer"], cadence=row["cadence"], aux=row["aux"])


def learner_hash() -> str:
    """SHA-256 (first 12 hex digits) of the learner sources, so a row names the code it measured."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((Path(__file__).resolve().parent / "snn").glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


@functools.cache
def kernel_hash() -> str:
    """SHA-256 (first 12 hex digits) of every C source of the target backend (tpprof/target/csrc),
    so a target row names the kernel code it measured. The whole folder, as :func:`learner_hash`
    hashes all of snn/: a kernel may be built from another rule's file (tbptt from bptt.c), and
    any file changed marks every target row as measured with other code."""
    import hashlib

    d = Path(__file__).resolve().parent / "target" / "csrc"
    h = hashlib.sha256()
    for f in sorted(p for p in d.iterdir() if p.suffix in (".c", ".h")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Column:
    """One CSV column: ``kind`` is str / int / float; ``required`` means non-empty on every row,
    ``ok_required`` non-empty on rows whose status is ``ok``."""

    name: str
    kind: str
    doc: str
    required: bool = False
    ok_required: bool = False
    signed: bool = False  # may be negative (differences of two counters)


def _c(name: str, kind: str, doc: str, req: str = "", signed: bool = False) -> Column:
    return Column(name, kind, doc, required=req == "all", ok_required=req in ("all", "ok"), signed=signed)


COLUMNS: tuple[Column, ...] = (
    # --- the point (config) ---
    _c("rule", "str", "learning rule: tp, tess, bptt", "all"),
    _c("net", "str", "net as given (preset name or net string), e.g. shd, 700-450-20", "all"),
    _c("net_string", "str", "canonical net string (NetSpec.to_string), readout = classes", "all"),
    _c("depth", "int", "hidden layers L", "all"),
    _c("batch", "int", "mini-batch size B", "all"),
    _c("classes", "int", "classes C (= readout units)", "all"),
    _c("steps", "int", "time steps T per mini-batch", "all"),
    _c("dtype", "str", "tensor dtype: fp32, fp16, bf16, fp64", "all"),
    _c("optimizer", "str", "sgd, momentum, adam", "all"),
    _c("cadence", "str", "step (optimiser step every time step) or sequence (once per mini-batch)", "all"),
    _c("aux", "str", "stored or regenerated fixed random matrices", "all"),
    _c("device", "str", "where the step ran (the backend): cpu, cuda, cuda:1, or qemu:<core> for target rows", "all"),
    # --- the protocol ---
    _c("counter", "str", "torch-profiler-cpu (CPU tensor allocations), cuda-allocator, or static+stack (target rows)", "all"),
    _c("peak_definition", "str", "what peak_bytes means (see README)", "all"),
    _c("warmup_batches", "int", "mini-batches run before measuring (creates Adam's lazy state)", "all"),
    _c("batches", "int", "mini-batches inside the measured memory window", "all"),
    _c("repeats", "int", "timed mini-batches (median taken)", "all"),
    _c("seed", "int", "seed of weights and synthetic data", "all"),
    _c("threads", "int", "torch intra-op threads", "all"),
    # --- memory (bytes) ---
    _c("input_bytes", "int", "bytes of the mini-batch x (B,T,*input) and labels y: allocated before, excluded", "ok"),
    _c("input_saved_bytes", "int", "bytes of input frames (views of x) autograd keeps for backward at the last step "
       "(BPTT: all T frames); part of x, so outside peak_bytes", "ok"),
    _c("inventory_bytes", "int", "Σ distinct storages in learner.memory_inventory() after warm-up", "ok"),
    _c("baseline_bytes", "int", "live tensor bytes when the measured window opens (counter's view)", "ok"),
    _c("peak_bytes", "int", "max live tensor bytes in the measured window, absolute (x excluded)", "ok"),
    _c("transient_bytes", "int", "peak_bytes - baseline_bytes", "ok"),
    _c("untracked_bytes", "int", "baseline_bytes - inventory_bytes (live but not in the inventory)", "ok", True),
    *(_c(f"bytes_{cat}", "int", f"measured bytes attributed to {cat} (see README: attribution)", "ok")
      for cat in CATEGORIES),
    _c("bytes_other", "int", "peak_bytes - Σ bytes_<category>: transient temporaries not saved for backward", "ok",
       True),
    _c("reserved_peak_bytes", "int", "CUDA only: max_memory_reserved (allocator cache included)"),
    _c("rss_before_bytes", "int", "CPU secondary: process RSS before the RSS window"),
    _c("rss_peak_bytes", "int", "CPU secondary: max process RSS sampled every 1 ms in the RSS window"),
    _c("rss_delta_bytes", "int", "rss_peak_bytes - rss_before_bytes (compare with transient_bytes)"),
    # --- time ---
    _c("batch_s_median", "float", "median wall seconds per mini-batch of T steps (no counter attached)", "ok"),
    _c("batch_s_min", "float", "fastest timed mini-batch, seconds", "ok"),
    _c("ms_per_step", "float", "batch_s_median * 1000 / T", "ok"),
    _c("cpu_s_median", "float", "median CPU seconds (process time of the measuring process) per timed "
       "mini-batch: the work, without the time other jobs on a shared machine took"),
    _c("step_ms_median", "float", "median interval between on_step callbacks, ms"),
    _c("build_s", "float", "seconds to construct the learner"),
    # --- outcome and provenance ---
    _c("status", "str", "ok, oom, timeout, error, killed, does-not-fit (target rows: the linker found the RAM too small)", "all"),
    _c("error", "str", "one-line reason when status is not ok"),
    _c("wall_s", "float", "seconds the whole point took (subprocess included)"),
    _c("tpprof_version", "str", "tpprof version", "all"),
    _c("learner_hash", "str", "first 12 hex digits of SHA-256 over tpprof/snn/*.py: which learner code was measured"),
    _c("torch_version", "str", "torch version (torch rows)", "ok"),
    _c("python_version", "str", "Python version", "all"),
    _c("hardware", "str", "CPU model, cores, RAM, GPU name (no host names)", "all"),
    _c("timestamp", "str", "UTC time the row was written, ISO 8601", "all"),
    _c("config_json", "str", "the whole Config as JSON (Config.to_json): validate rebuilds the point from it, "
       "learning rate, neuron and rule options included; files written before it existed still load"),
    _c("python_executable", "str", "sys.executable of the process that measured the row (a Ray worker's own "
       "interpreter, when it ran there); empty in files written before it existed"),
    _c("tpprof_path", "str", "the folder tpprof was imported from in that process (the driver's checkout, or "
       "where a worker found it); empty in files written before it existed"),
    # --- on a microcontroller target (device = qemu:<core>, counter static+stack; tpprof.target) ---
    _c("core", "str", "target rows: the Cortex-M core, e.g. cortex-m4f"),
    _c("target_device", "str", "target rows: the catalogue device whose SRAM the linker script imposed "
       "(empty: the QEMU machine's RAM); part of the point's identity"),
    _c("ram_limit_bytes", "int", "target rows: RAM given to the linker (the device's SRAM; each buffer must also fit "
       "its largest contiguous block)"),
    _c("static_bytes", "int", "target rows: .data + .bss of the linked ELF"),
    _c("stack_bytes", "int", "target rows: painted stack high-water mark"),
    _c("modelled_bytes", "int", "target rows: Σ sizes of the m_* arrays (the algorithmic terms, transients "
       "overlaid per phase); validate compares it with --accounting algorithm peak_bytes"),
    _c("data_bytes", "int", "target rows: the d_* arrays (input frame, labels, label-derived rows): not modelled"),
    _c("runtime_data_bytes", "int", "target rows: .data not in m_*/d_* arrays (the C runtime: newlib)"),
    _c("runtime_bss_bytes", "int", "target rows: .bss not in m_*/d_* arrays (output buffer, scalars, padding)"),
    _c("overflow_bytes", "int", "does-not-fit rows: the linker's 'region RAM overflowed by N bytes'"),
    _c("insns_per_step", "float", "target rows: instructions executed per time step, the mean over the mini-batch's T steps (QEMU TCG plugin; BPTT's backward runs in its last step)"),
    _c("insns_per_step_max", "int", "target rows: most instructions of one step"),
    _c("macs_per_step", "int", "target rows: multiply-accumulates per step by the analytic model"),
    _c("toolchain", "str", "target rows: arm-none-eabi-gcc and qemu-system-arm versions"),
    _c("weight_checksum", "str", "target rows: FNV-1a over the parameters' bits after the mini-batch"),
)
FIELDNAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
#: The schema before the target columns (core … weight_checksum) were added.
PRE_TARGET_FIELDNAMES: tuple[str, ...] = FIELDNAMES[:FIELDNAMES.index("tpprof_path") + 1]
#: Columns that identify a point: a rerun skips rows whose key is already in the file.
KEY_COLUMNS: tuple[str, ...] = POINT_KEY


class RowError(ValueError):
    """A row that breaks the schema (with its 1-based line number in the file)."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"line {line}: {problem}")


@dataclass
class LoadResult:
    """Rows that passed validation (typed dicts) and the bad ones as (line, problem)."""

    rows: list[dict[str, Any]]
    bad: list[tuple[str, int, str]]  # (file, line, problem)
    files: list[str]


def _parse_value(col: Column, text: str, line: int) -> Any:
    if text is None or text == "":
        return None
    if col.kind == "str":
        return text
    try:
        if col.kind == "int":
            f = float(text)
            if not f.is_integer():
                raise ValueError
            return int(f)
        v = float(text)
        if math.isnan(v):
            raise ValueError
        return v
    except ValueError:
        raise RowError(line, f"column {col.name}: {text!r} is not {'an integer' if col.kind == 'int' else 'a number'}") from None


def validate_row(raw: Mapping[str, Any], line: int) -> dict[str, Any]:
    """Type and check one row (values as text or Python values) → typed dict, or RowError."""
    row = {c.name: _parse_value(c, "" if raw.get(c.name) is None else str(raw[c.name]), line) for c in COLUMNS}
    status = row["status"]
    if status not in STATUSES:
        raise RowError(line, f"status {status!r} is not one of {', '.join(STATUSES)}")
    for col in COLUMNS:
        need = col.required or (col.ok_required and status == "ok"
                                and not (col.name in TORCH_ONLY and row["counter"] == TARGET_COUNTER))
        if need and row[col.name] is None:
            raise RowError(line, f"column {col.name} is empty")
        if col.kind in ("int", "float") and not col.signed and row[col.name] is not None and row[col.name] < 0:
            raise RowError(line, f"column {col.name}: {row[col.name]} is negative")
    if row["rule"] not in RULES:
        raise RowError(line, f"rule {row['rule']!r} is not known")
    if row["dtype"] not in DTYPE_BYTES:
        raise RowError(line, f"dtype {row['dtype']!r} is not known")
    for name in ("batch", "classes", "steps"):
        if row[name] < 1:
            raise RowError(line, f"column {name} must be >= 1")
    if status == "ok" and row["peak_bytes"] < row["baseline_bytes"]:
        raise RowError(line, "peak_bytes is below baseline_bytes")
    return row


def point_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The identity of a point (see :data:`KEY_COLUMNS`, plus the rule's non-default options
    from ``config_json``), as normalised text."""
    key = tuple(str(row.get(k, "")).strip().lower() for k in KEY_COLUMNS) + (row_rule_options(row),)
    td = row.get("target_device")  # a target row's device SRAM (absent on torch rows: their keys unchanged)
    return key + (str(td).strip().lower(),) if td else key


def row_rule_options(row: Mapping[str, Any]) -> str:
    """:func:`tpprof.config.rule_options` of the row's ``config_json`` ('' without one)."""
    text = row.get("config_json")
    if not (isinstance(text, str) and text.strip()):
        return ""
    return _rule_options_of(text)


@functools.lru_cache(maxsize=4096)
def _rule_options_of(text: str) -> str:
    # cached on the JSON text: a point's key, label and T-group each ask for it
    import json

    from tpprof.config import RuleSpec, rule_options

    try:
        return rule_options(RuleSpec(**json.loads(text).get("rule", {})))
    except (ValueError, TypeError, AttributeError):
        return "?"  # validate reports the malformed config_json itself


def point_variant(row: Mapping[str, Any]) -> str:
    """The non-default optimiser, cadence, aux and rule options of a point, e.g. ``' sgd'`` or
    ``' lr=0.003'`` (empty for defaults)."""
    cols = "".join(f" {row[k]}" for k, default in (("optimizer", "adam"), ("cadence", "step"), ("aux", "stored"))
                   if row.get(k) and row[k] != default)
    opts = row_rule_options(row)
    return cols + (f" {opts}" if opts else "")


def point_label(row: Mapping[str, Any]) -> str:
    """A point in one line, e.g. ``tp shd B=16 C=20 T=25 fp32 cpu sgd`` (non-default optimiser,
    cadence and aux appended)."""
    return (f"{row['rule']} {row['net']} B={row['batch']} C={row['classes']} T={row['steps']} {row['dtype']} "
            f"{row['device']}{point_variant(row)}")


def load(path: str | Path, strict: bool = False) -> LoadResult:
    """Read one measurement CSV. Bad rows are reported as (file, line, problem) and skipped;
    with ``strict`` the first one raises a one-line :class:`UserError` instead."""
    p = Path(path)
    if not p.is_file():
        raise UserError("measurements", f"file {str(path)!r} does not exist", "a .csv written by tpprof measure")
    rows: list[dict[str, Any]] = []
    bad: list[tuple[str, int, str]] = []
    reader = csv.reader(io.StringIO(p.read_bytes().decode("utf-8", "replace")))  # as open(newline="") reads it
    try:
        header = next(reader)
    except StopIteration:
        return LoadResult([], [], [str(p)])
    missing = [c.name for c in COLUMNS if c.required and c.name not in header]
    if missing:
        raise UserError("measurements", f"{p.name} line 1: header lacks column(s) {', '.join(missing)}",
                        "the columns in measurements/README.md")
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # a field over 131,072 characters or an unclosed quote: no resync possible
            problem = f"unreadable from here on ({e}; an edited or foreign file)"
            if strict:
                raise UserError("measurements", f"{p.name} line {reader.line_num} {problem}",
                                "rows as described in measurements/README.md") from None
            bad.append((str(p), reader.line_num, problem))
            break
        line = reader.line_num
        if not rec or (len(rec) == 1 and not rec[0].strip()):
            continue
        try:
            if len(rec) != len(header):
                raise RowError(line, f"has {len(rec)} fields, the header has {len(header)} (a torn or edited row)")
            rows.append(validate_row(dict(zip(header, rec)), line))
        except RowError as e:
            if strict:
                raise UserError("measurements", f"{p.name} {e}", "rows as described in measurements/README.md") from None
            bad.append((str(p), e.line, e.problem))
    return LoadResult(rows, bad, [str(p)])


def load_many(path: str | Path, strict: bool = False) -> LoadResult:
    """A CSV file, or every ``*.csv`` in a folder (sorted), as one :class:`LoadResult`."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.csv"))
        if not files:
            raise UserError("measurements", f"folder {str(path)!r} has no .csv file", "a folder of tpprof measure CSVs")
    elif p.is_file():
        files = [p]
    else:
        raise UserError("measurements", f"{str(path)!r} does not exist", "a .csv file or a folder of them")
    out = LoadResult([], [], [])
    for f in files:
        r = load(f, strict=strict)
        out.rows += r.rows
        out.bad += r.bad
        out.files += r.files
    return out


def _format(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(round(v, 6)) if math.isfinite(v) else ""
    return " ".join(str(v).split())  # one line: no newlines inside a cell


@contextlib.contextmanager
def _locked(f: IO[Any]) -> Iterator[None]:
    """An exclusive ``fcntl.flock`` on an open file for the block (no-op where fcntl is absent)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _os_error(path: Path, e: OSError) -> UserError:
    return UserError("out", f"cannot write {str(path)!r}: {e.strerror or type(e).__name__}",
                     "a writable file path (not a folder), e.g. --out measurements/mine.csv")


def check_out_file(path: str | Path) -> Path:
    """Fail now, before any work, when ``path`` cannot take appended rows: it is a folder, an
    existing file that is not writable, or its folder cannot be created or written."""
    p = Path(path)
    if not str(path).strip():
        raise UserError("out", "is empty", "a CSV file to append rows to, e.g. --out measurements/mine.csv")
    if p.is_dir():
        raise UserError("out", f"{str(path)!r} is a folder", "a CSV file inside it, e.g. --out {}/mine.csv".format(p))
    try:
        if p.exists():
            if not os.access(p, os.W_OK):
                raise UserError("out", f"{str(path)!r} is not writable", "a file you may write, or a new file name")
            if p.is_file():
                with p.open("rb") as f:  # before any point is measured, not after the first one
                    _check_records_parse(p, f)
            return p
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(p, e) from None
    if not os.access(p.parent, os.W_OK):
        raise UserError("out", f"folder {str(p.parent)!r} is not writable", "a folder you may write to")
    return p


def append_row(path: str | Path, row: Mapping[str, Any]) -> int:
    """Validate ``row`` and append it as one line, then flush and fsync (crash-safe). Returns the
    file's size before the append (where the row starts, unless the header came first).

    Under an exclusive ``flock`` on the file, so concurrent writers (two ``tpprof measure`` on
    the same ``--out``) never interleave rows and only the first one writes the header (the
    header is decided from the file's size *inside* the lock). A torn last line (no final
    newline, e.g. after a crash) is moved to ``<file>.torn`` (see :func:`quarantine_torn`) before
    the row is written.
    """
    validate_row(row, line=0)
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a+b") as f, _locked(f):
            names = _check_and_quarantine(p, f)
            _check_records_parse(p, f)
            data = _csv_line([_format(row.get(k)) for k in names])
            f.seek(0, os.SEEK_END)
            start = f.tell()
            if start == 0:  # decided under the lock: exactly one writer writes the header
                data = _csv_line(FIELDNAMES) + data
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            _PARSED_OK[str(p.resolve())] = _file_state(f)
            return start
    except IsADirectoryError:
        raise UserError("out", f"{str(path)!r} is a folder", "a CSV file inside it") from None
    except OSError as e:
        raise _os_error(p, e) from None


#: Per file, its (inode, size, mtime) right after this process appended to it: unchanged since,
#: it still parses, and the next append need not read it again (a sweep appends thousands of rows).
_PARSED_OK: dict[str, tuple[int, int, int]] = {}


def state_after_append(path: str | Path) -> tuple[int, int, int] | None:
    """The file's (inode, size, mtime) as this process's last :func:`append_row` left it, taken
    under the append's lock (so no other writer's row can be in it unseen); None before any."""
    return _PARSED_OK.get(str(Path(path).resolve()))


def _file_state(f: IO[bytes]) -> tuple[int, int, int]:
    st = os.fstat(f.fileno())
    return st.st_ino, st.st_size, st.st_mtime_ns


def _check_records_parse(p: Path, f: IO[bytes]) -> None:
    """With ``f`` locked: refuse to append after a record that does not parse. An unclosed quote
    (an odd number of ``"``: CSV doubles a quote inside a quoted field) would take the new row
    into the open field, and a field over the csv module's limit stops every reader there: the
    row would be written, reported measured, and never read back."""
    if _PARSED_OK.get(str(p.resolve())) == _file_state(f):
        return
    f.seek(0)
    data = f.read()
    problem = None
    if data.count(b'"') % 2:
        problem = "ends inside an unclosed quoted field"
    else:
        reader = csv.reader(io.StringIO(data.decode("utf-8", "replace")))
        try:
            for _ in reader:
                pass
        except csv.Error as e:
            problem = f"line {reader.line_num} does not parse ({e})"
    if problem:
        raise UserError("out", f"{p.name} {problem}; a row appended now could not be read back",
                        "a new file name, or repair the file (its rows up to there still load)")
    _PARSED_OK[str(p.resolve())] = _file_state(f)  # parsed once: the next append need not read it again


def _csv_line(values: Iterable[str]) -> bytes:
    """One CSV record as UTF-8 bytes, ending in a newline."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode("utf-8")


def _without(names: tuple[str, ...], drop: str) -> tuple[str, ...]:
    return tuple(n for n in names if n != drop)


#: Headers a row may be appended under: this schema, the one before the target columns (core …
#: weight_checksum), the one before ``python_executable`` and ``tpprof_path`` existed, and the one
#: before ``config_json``; each also without ``cpu_s_median`` (added in the middle) and, for older
#: files, without ``config_json`` alone (rows are written with the columns the file has).
APPENDABLE_HEADERS: tuple[tuple[str, ...], ...] = tuple(
    h for base in (FIELDNAMES, PRE_TARGET_FIELDNAMES, _without(FIELDNAMES, "cpu_s_median"),
                   _without(PRE_TARGET_FIELDNAMES, "cpu_s_median"))
    for h in (base, base[:-2], base[:-3], _without(base, "config_json")))


def _check_and_quarantine(p: Path, f: IO[bytes]) -> tuple[str, ...]:
    """With ``f`` locked: refuse a file that is not ours (other header) before touching it, then
    quarantine a torn last line. A file holding only part of our header (killed while the
    first row was written) counts as torn. Returns the columns a new row is written with."""
    f.seek(0, os.SEEK_END)
    if f.tell() == 0:
        return FIELDNAMES
    f.seek(0)
    first = f.readline()
    if first.endswith(b"\n"):
        names = tuple(first.decode("utf-8", "replace").strip().split(","))
        ours = names in APPENDABLE_HEADERS
    else:
        names, ours = FIELDNAMES, _csv_line(FIELDNAMES).startswith(first)
    if not ours:
        raise UserError("out", f"{p.name} has a different header (another schema or not a tpprof file)",
                        "a new file name, or a file written by this tpprof version")
    _quarantine_locked(p, f)
    return names


def _quarantine_locked(p: Path, f: IO[bytes]) -> str | None:
    """With ``f`` (opened a+b) locked: cut a torn last line (no final newline) off the file and
    append it, with a newline, to ``<file>.torn``. Returns the fragment or None."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    if size == 0:
        return None
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return None
    pos = size
    while True:  # find the last newline (rows are short; read backwards in 1 MiB chunks)
        lo = max(0, pos - (1 << 20))
        f.seek(lo)
        i = f.read(pos - lo).rfind(b"\n")
        if i >= 0 or lo == 0:
            cut = lo + i + 1  # 0 when no newline at all
            break
        pos = lo
    f.seek(cut)
    fragment = f.read()
    with open(f"{p}.torn", "ab") as q:
        q.write(fragment + b"\n")
        q.flush()
        os.fsync(q.fileno())
    f.truncate(cut)
    f.flush()
    os.fsync(f.fileno())
    return fragment.decode("utf-8", "replace")


def quarantine_torn(path: str | Path) -> str | None:
    """Move a torn last row of ``path`` (written by a process killed mid-line) to
    ``<path>.torn`` so a resumed run neither keeps it as a bad line forever nor appends after
    it. The ``.torn`` name is not ``*.csv``, so folder loaders skip it. Returns the fragment
    (None when the file ends cleanly or does not exist)."""
    p = Path(path)
    if not p.is_file():
        return None
    with p.open("r+b") as f, _locked(f):
        return _check_and_quarantine(p, f)


def atomic_write(path: str | Path, writer: Callable[[Path], Any]) -> Path:
    """Write ``path`` all or nothing: ``writer(tmp)`` writes a temporary file in the same folder,
    which is fsync'ed and renamed over ``path`` (``os.replace``, atomic on POSIX and Windows).
    A crash or an exception leaves the old ``path`` (or none) and no temporary file behind,
    except after SIGKILL: then a ``.<name>.*.tmp`` may stay, which :func:`clean_stale_tmp` removes.
    Returns ``path``. Errors of the folder become one-line :class:`UserError` (field ``out``)."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_tmp(p.parent, p.name)  # what a SIGKILLed earlier write of this file left
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.{os.getpid()}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise _os_error(p, e) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fchmod(f.fileno(), _plain_write_mode(p))  # mkstemp's 0600 → what open(p, "w") gives
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return p


def _plain_write_mode(p: Path) -> int:
    """The mode a plain ``open(p, "w")`` leaves: the existing file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(p).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """This process's umask, read without changing it where Linux shows it (``os.umask`` sets it:
    briefly wrong for other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def clean_stale_tmp(folder: str | Path, name: str) -> list[Path]:
    """Remove ``.<name>.<pid>.*.tmp`` files that :func:`atomic_write` left behind after a
    SIGKILL, when process ``<pid>`` no longer runs (a live writer's file is kept). Returns them."""
    out: list[Path] = []
    d = Path(folder)
    if not d.is_dir():
        return out
    for t in d.glob(f".{name}.*.tmp"):
        pid_text = t.name[len(name) + 2:].split(".", 1)[0]
        try:
            pid = int(pid_text)
            os.kill(pid, 0)
            continue  # its writer still runs
        except (ProcessLookupError, ValueError, OverflowError):
            pass  # its writer is gone, or an old-style name not ours to judge by pid: remove as stale
        except PermissionError:
            continue
        with contextlib.suppress(OSError):
            t.unlink()
            out.append(t)
    return out


def finished_keys(path: str | Path, retry_failed: bool = False) -> set[tuple[str, ...]]:
    """Keys of points already in ``path`` (all statuses, or only ``ok`` with ``retry_failed``).
    A torn last row is quarantined first (see :func:`quarantine_torn`)."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return set()
    try:
        quarantine_torn(p)
    except OSError as e:
        raise _os_error(p, e) from None
    res = load(p)
    return {point_key(r) for r in res.rows if not retry_failed or r["status"] == "ok"}


def merge(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per point key: an ``ok`` row beats a failed one, then the latest timestamp wins."""
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in rows:
        k = point_key(r)
        cur = best.get(k)
        rank = (r["status"] == "ok", str(r.get("timestamp") or ""))
        if cur is None or rank >= (cur["status"] == "ok", str(cur.get("timestamp") or "")):
            best[k] = dict(r)
    return list(best.values())


def write_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows to a new file (header + rows; used by merge). Returns the number written."""
    p = Path(path)
    if p.exists():
        raise UserError("out", f"{p.name} exists", "a new file name (merge never overwrites)")
    n = 0
    for r in rows:
        append_row(p, r)
        n += 1
    return n
