"""Input gaps closed at the root: empty values, flag-like values, ``app --address``, and a
``[net]`` table in a --config file meeting the same caps as a net string."""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import pytest

from tpprof.cli import main
from tpprof.config import ConfigError, load_config_file, make_config, parse_net


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = int(e.code or 0)
    return rc, err.getvalue()


@pytest.mark.parametrize("argv, field", [
    (["estimate", "--budget", ""], "--budget"),
    (["estimate", "--budget", "   "], "--budget"),
    (["sweep", "--budget", ""], "--budget"),
    (["report", "--out", "/tmp/x", "--budget", ""], "--budget"),
    (["estimate", "--net", ""], "--net"),
    (["estimate", "--net=--"], "--net"),
    (["estimate", "--net=-x"], "--net"),
    (["sweep", "--rule=--batch"], "--rule"),
    (["measure", "--out=--", "--dry-run"], "--out"),
    (["estimate", "--net", "shd\x00"], "--net"),
])
def test_empty_and_flag_like_values_are_one_line_errors(argv, field) -> None:
    rc, err = _run(argv)
    assert rc == 2, err
    assert err.count("\n") == 1 and field in err and "accepted" in err, err


def test_negative_numbers_reach_their_field_check() -> None:
    rc, err = _run(["estimate", "--lr=-1"])  # not "looks like a flag": the field names its range
    assert rc == 2 and "lr" in err and "flag" not in err, err


@pytest.mark.parametrize("address", ["a b", "999.1.1.1", "-host", "host_name", "x" * 300, "1.2.3", "", "http://x"])
def test_app_address_is_validated(address) -> None:
    rc, err = _run(["app", "--address", address])
    assert rc == 2 and err.count("\n") == 1 and "address" in err, err


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "::1", "localhost", "my-box.local"])
def test_app_address_accepts_hosts_and_ips(address) -> None:
    from tpprof.cli import build_parser

    assert build_parser().parse_args(["app", "--address", address]).address == address


def _net_table(net: str) -> dict:
    d = make_config(net).to_dict()["net"]
    d.pop("string")
    return d


def _toml(path: Path, net: dict) -> Path:
    lines = [f"[net]\ninput_shape = {list(net['input_shape'])}\nreadout = {net['readout']}\nname = ''"]
    for layer in net["layers"]:
        lines.append("[[net.layers]]\n" + "\n".join(
            f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}" for k, v in layer.items()))
    lines.append("[workload]\nbatch = 4\nclasses = %d\nsteps = 10" % net["readout"])
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("change, field", [
    (lambda n: n["layers"][0].update(width=10**8), "channels"),
    (lambda n: n["layers"][0].update(kernel=4), "kernel"),
    (lambda n: n["layers"][0].update(kernel=17), "kernel"),
    (lambda n: n.update(readout=10**8), "classes"),  # the workload's cap (= the net string's)
    (lambda n: n.update(input_shape=[2, 32, 10**8]), "net input"),
    (lambda n: n["layers"][0].update(weight_std="no"), "weight_std"),
    (lambda n: n.update(layers=[n["layers"][0]] * 1100), "net"),
])
def test_net_table_in_config_meets_the_net_string_caps(tmp_path, change, field) -> None:
    net = copy.deepcopy(_net_table("2x32x32-c64p-10"))
    change(net)
    with pytest.raises(ConfigError) as e:
        load_config_file(_toml(tmp_path / "run.toml", net))
    assert e.value.field == field, str(e.value)
    rc, err = _run(["estimate", "--config", str(tmp_path / "run.toml")])
    assert rc == 2 and err.count("\n") == 1 and field in err, err


def test_net_table_round_trips_when_valid(tmp_path) -> None:
    cfg = load_config_file(_toml(tmp_path / "ok.toml", _net_table("2x32x32-c64p-c32k5-10")))
    assert cfg.net.to_string() == "2x32x32-c64p-c32k5-10"


@pytest.mark.parametrize("text, field", [("700-99999999-20", "layer width"), ("2x32x32-c2000000-10", "channels"),
                                         ("2x32x32-c64k4-10", "kernel"), ("0-450-20", "net input")])
def test_net_string_caps_come_from_the_same_place(text, field) -> None:
    with pytest.raises(ConfigError) as e:
        parse_net(text)
    assert e.value.field == field
