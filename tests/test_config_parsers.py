"""Property-based tests (hypothesis) of the config parsers: parse_net, parse_bytes, parse_dtype,
load_config_file. Anything a user can type either parses or raises a one-line ConfigError."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tpprof.config import (
    DTYPE_ALIASES, DTYPE_BYTES, PRESETS, Config, LayerSpec, NetSpec, config_from_mapping, load_config_file,
    make_config, parse_dtype, parse_net,
)
from tpprof.errors import ConfigError
from tpprof.units import parse_bytes

T = TypeVar("T")

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
NETISH = st.text(alphabet="0123456789xcrkpva-: ", max_size=30)
SIZEISH = st.text(alphabet="0123456789.eE+- kKmMgGtTiIbB", max_size=16)


def _parsed_or_none(fn: Callable[..., T], *args: Any) -> T | None:
    """fn(*args), or None when it raised a ConfigError, which must be one non-empty line."""
    try:
        return fn(*args)
    except ConfigError as e:
        assert "\n" not in str(e) and str(e)
        return None


# ---------------------------------------------------------------------------------------
# parse_bytes
# ---------------------------------------------------------------------------------------


@given(st.integers(1, 2 ** 50))
def test_bytes_plain_integers_round_trip(n: int) -> None:
    assert parse_bytes(str(n)) == n
    assert parse_bytes(n) == n


@given(st.integers(1, 2 ** 20), st.sampled_from([("KiB", 2 ** 10), ("MiB", 2 ** 20), ("GiB", 2 ** 30),
                                                  ("KB", 10 ** 3), ("MB", 10 ** 6), ("GB", 10 ** 9),
                                                  ("kib", 2 ** 10), ("B", 1)]), st.sampled_from(["", " "]))
def test_bytes_units(n: int, unit: tuple[str, int], space: str) -> None:
    assert parse_bytes(f"{n}{space}{unit[0]}") == n * unit[1]


def test_bytes_examples() -> None:
    assert parse_bytes("256KiB") == 262144
    assert parse_bytes("1.5 MB") == 1_500_000
    assert parse_bytes("8GiB") == 8 * 2 ** 30


@given(st.one_of(TEXT, SIZEISH))
def test_bytes_never_crashes(text: str) -> None:
    v = _parsed_or_none(parse_bytes, text)
    assert v is None or (isinstance(v, int) and 1 <= v <= 2 ** 62)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 0), st.booleans()))
def test_bytes_numbers(x: float) -> None:
    v = _parsed_or_none(parse_bytes, x)
    assert v is None or (isinstance(v, int) and v >= 1)


# ---------------------------------------------------------------------------------------
# parse_dtype
# ---------------------------------------------------------------------------------------


@given(st.sampled_from(sorted(DTYPE_BYTES) + sorted(DTYPE_ALIASES)), st.sampled_from(["", " "]),
       st.booleans())
def test_dtype_known_names(name: str, pad: str, upper: bool) -> None:
    text = pad + (name.upper() if upper else name) + pad
    assert parse_dtype(text) in DTYPE_BYTES


@given(TEXT)
def test_dtype_never_crashes(text: str) -> None:
    v = _parsed_or_none(parse_dtype, text)
    assert v is None or v in DTYPE_BYTES


# ---------------------------------------------------------------------------------------
# parse_net
# ---------------------------------------------------------------------------------------

DENSE = st.builds(lambda w, r: LayerSpec("recurrent" if r else "dense", w), st.integers(1, 5000), st.booleans())
CONV = st.builds(lambda w, k, p: LayerSpec("conv", w, kernel=k, pool=p), st.integers(1, 600),
                 st.sampled_from([1, 3, 5, 7]), st.sampled_from(["none", "max2", "avg2", "adapt2"]))


@st.composite
def netspecs(draw: st.DrawFn) -> NetSpec:
    if draw(st.booleans()):
        shape: tuple[int, ...] = (draw(st.integers(1, 5000)),)
        layers = draw(st.lists(DENSE, min_size=1, max_size=4))
    else:
        shape = (draw(st.integers(1, 8)), draw(st.integers(1, 64)), draw(st.integers(1, 64)))
        convs = draw(st.lists(CONV, min_size=1, max_size=4))
        dense = draw(st.lists(st.builds(lambda w: LayerSpec("dense", w), st.integers(1, 500)), max_size=2))
        layers = convs + dense
    readout = draw(st.integers(1, 5000))
    try:
        return NetSpec(shape, tuple(layers), readout)
    except ConfigError:
        assume(False)
        raise


@settings(max_examples=150)
@given(netspecs())
def test_net_string_round_trip(net: NetSpec) -> None:
    back = parse_net(net.to_string())
    assert back.input_shape == net.input_shape
    assert back.layers == net.layers
    assert back.readout == net.readout
    assert back.geometry() == net.geometry()


@settings(max_examples=300)
@given(st.one_of(NETISH, TEXT))
def test_parse_net_never_crashes(text: str) -> None:
    net = _parsed_or_none(parse_net, text)
    if net is not None:
        assert net.n_params() >= 1
        assert parse_net(net.to_string()).geometry() == net.geometry()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_parse(name: str) -> None:
    assert parse_net(name) == PRESETS[name].net
    assert parse_net(name.upper()) == PRESETS[name].net


@pytest.mark.parametrize("text", ["", "700", "700-20", "700-0-20", "700-450-0", "a-b-c", "2x32-10-10",
                                  "700-c64-10", "vgg9:", "vgg9:2x32x32-1-2", "1x1x1-c4p-2", "700-450-20-",
                                  "700--20", "7²-4-2", "٣-٣-٣x"])
def test_bad_net_strings(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_net(text)


# ---------------------------------------------------------------------------------------
# load_config_file / config_from_mapping
# ---------------------------------------------------------------------------------------


def test_config_file_toml_and_json(tmp_path: Path) -> None:
    p = tmp_path / "run.toml"
    p.write_text('net = "700-450-20"\n[workload]\nbatch = 16\nsteps = 50\n[rule]\nname = "tess"\n'
                 '[device]\nname = "board"\nbudget_bytes = "512KiB"\n')
    cfg = load_config_file(p)
    assert (cfg.workload.batch, cfg.workload.steps, cfg.rule.name) == (16, 50, "tess")
    assert cfg.device.budget_bytes == 512 * 1024
    j = tmp_path / "run.json"
    j.write_text(cfg.to_json())
    assert load_config_file(j) == cfg
    assert Config.from_dict(json.loads(cfg.to_json())) == cfg


TOMLISH_VALUES = st.one_of(st.integers(-3, 10 ** 6), st.floats(allow_nan=False, allow_infinity=False), TEXT,
                           st.booleans(), st.lists(st.integers(0, 5), max_size=3))


@st.composite
def mappings(draw: st.DrawFn) -> dict:
    d: dict = {}
    if draw(st.booleans()):
        d["net"] = draw(st.one_of(NETISH, st.sampled_from(sorted(PRESETS)), TOMLISH_VALUES,
                                  st.fixed_dictionaries({"string": NETISH}),
                                  st.fixed_dictionaries({"input_shape": st.one_of(TOMLISH_VALUES, st.just([700])),
                                                         "layers": st.one_of(TOMLISH_VALUES, st.lists(
                                                             st.dictionaries(st.sampled_from(
                                                                 ["kind", "width", "kernel", "pool", "x"]),
                                                                 st.one_of(TOMLISH_VALUES, st.just("dense")),
                                                                 max_size=3), max_size=2)),
                                                         "readout": TOMLISH_VALUES},
                                                        optional={"neuron": st.dictionaries(st.sampled_from(
                                                            ["v_th", "alpha", "beta", "reset"]), TOMLISH_VALUES,
                                                            max_size=2)})))
    if draw(st.booleans()):
        d["workload"] = draw(st.one_of(TOMLISH_VALUES, st.dictionaries(
            st.sampled_from(["batch", "classes", "steps", "dtype", "bogus"]), TOMLISH_VALUES, max_size=4)))
    if draw(st.booleans()):
        d["rule"] = draw(st.one_of(TEXT, st.dictionaries(
            st.sampled_from(["name", "optimizer", "cadence", "aux", "lr", "similarity", "train_s", "tess_factors"]),
            TOMLISH_VALUES, max_size=4)))
    if draw(st.booleans()):
        d["device"] = draw(st.one_of(TOMLISH_VALUES, st.dictionaries(
            st.sampled_from(["name", "budget_bytes", "source"]), TOMLISH_VALUES, max_size=3)))
    if draw(st.integers(0, 9)) == 0:
        d[draw(TEXT)] = 1
    return d


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mappings())
def test_config_mapping_never_crashes(data: dict) -> None:
    cfg = _parsed_or_none(config_from_mapping, data)
    assert cfg is None or isinstance(cfg, Config)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(TEXT, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))), st.sampled_from([".toml", ".json"]))
def test_config_file_never_crashes(tmp_path: Path, text: str, suffix: str) -> None:
    p = tmp_path / f"c{suffix}"
    p.write_text(text, encoding="utf-8")
    _parsed_or_none(load_config_file, p)


def test_config_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "nope.toml")


def test_make_config_fills_preset_workload() -> None:
    cfg = make_config("shd", "tp")
    assert (cfg.workload.batch, cfg.workload.classes, cfg.workload.steps) == (128, 20, 100)
    assert make_config("shd", "tp", classes=100).net.readout == 100
    assert math.prod(cfg.net.input_shape) == 700


# --- input robustness roots (issue 9: F01 huge integers, F02 Unicode digits, F03 sizes, W01 empty) ---

HUGE = "9" * 5000  # beyond Python's 4,300-digit int-string limit


def _id(v: Any) -> str:
    if isinstance(v, int) and v.bit_length() > 64:
        return f"int{v.bit_length()}bits"
    return repr(v)[:12]


@pytest.mark.parametrize("text", [
    f"700-{HUGE}-20", f"{HUGE}-450-20", f"700-450-{HUGE}", f"700-c{HUGE}-10", f"2x{HUGE}x3-c8-10",
    "700-450-2²", "700-²-20", "７00-450-20", "700-450-٣", "700-1_000-20",
], ids=_id)
def test_net_strings_with_huge_or_unicode_digits_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_net(text)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400 and msg.startswith("net:")


@pytest.mark.parametrize("value", [HUGE, f"1e{HUGE}", f"{HUGE}KiB", 10**5000, 10**400, "1e400", float("inf"), "²",
                                   "", "  "], ids=_id)
def test_sizes_huge_unicode_or_empty_are_one_line_errors(value: Any) -> None:
    with pytest.raises(ConfigError) as e:
        parse_bytes(value)
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def test_format_bytes_never_raises_on_a_number() -> None:
    from tpprof.units import format_bytes

    assert format_bytes(262144) == "256.0 KiB"
    assert format_bytes(5 * 2**60) == "5.00 EiB" and format_bytes(1060 * 1024) == "1.04 MiB"
    assert format_bytes(10**400).endswith("EiB") and "e+" in format_bytes(10**400)  # > 1.8e308: no float
    assert format_bytes(10**5000).endswith("EiB")  # > 4,300 digits: no str()
    assert format_bytes(float("inf")) == "inf B" and format_bytes(float("nan")) == "nan B"


@pytest.mark.parametrize("field,value", [("batch", "²"), ("batch", "٣"), ("steps", ""), ("steps", " "),
                                         ("batch", HUGE), ("batch", 10**5000), ("classes", 10**30),
                                         ("batch", 10**9 + 1), ("steps", 10**9 + 1), ("classes", 10**7 + 1),
                                         ("batch", True), ("batch", 2.5), ("batch", float("nan")), ("batch", "1_0")],
                         ids=_id)
def test_workload_counts_are_bounded_ascii_integers(field: str, value: Any) -> None:
    from tpprof.config import Workload

    kw = {"batch": 1, "classes": 2, "steps": 3, field: value}
    with pytest.raises(ConfigError) as e:
        Workload(**kw)
    assert str(e.value).startswith(f"{field}:") and "\n" not in str(e.value) and len(str(e.value)) < 300


def test_workload_upper_bounds_are_inclusive() -> None:
    from tpprof.config import Workload
    from tpprof.units import MAX_COUNT

    w = Workload(batch=MAX_COUNT, classes=10**7, steps="1000000000")
    assert (w.batch, w.classes, w.steps) == (10**9, 10**7, 10**9)
    assert Workload(batch=" 16 ", classes=2.0, steps="+25").batch == 16


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=12))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_pos_int_accepts_only_ascii_integers(text: str) -> None:
    from tpprof.units import pos_int as _pos_int

    try:
        v = _pos_int("batch", text)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert text.strip().lstrip("+").isascii() and text.strip().lstrip("+").isdigit() and 1 <= v <= 10**9
