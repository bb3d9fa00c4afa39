"""`tpprof estimate / sweep / devices` on real argv: exit codes, JSON schema, one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpprof.analytic import CATEGORIES, estimate
from tpprof.cli import main
from tpprof.config import make_config


def run(*argv: str) -> tuple[int, str, str]:
    """main() in-process on a real argv list → (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_estimate_subprocess_real_argv() -> None:
    p = subprocess.run([sys.executable, "-m", "tpprof", "estimate", "--net", "shd", "--rule", "tp", "--batch", "128",
                        "--classes", "20", "--steps", "100", "--dtype", "fp32", "--optimizer", "adam", "--json"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["peak_bytes"] == estimate(make_config("shd", "tp")).peak_bytes
    bad = subprocess.run([sys.executable, "-m", "tpprof", "estimate", "--batch", "zero"], capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "batch" in bad.stderr


def test_estimate_json_schema() -> None:
    code, out, _ = run("estimate", "--net", "shd", "--rule", "tess", "--json", "--budget", "512KiB")
    assert code == 0
    doc = json.loads(out)
    for key in ("rule", "total_bytes", "peak_bytes", "terms", "macs_per_step", "not_modelled"):
        assert key in doc
    assert doc["rule"] == "tess"
    for t in doc["terms"]:
        assert set(t) >= {"name", "category", "count", "bytes", "persistent", "source"}
        assert t["category"] in CATEGORIES
        assert isinstance(t["count"], int) and isinstance(t["bytes"], int) and isinstance(t["persistent"], bool)
    assert doc["total_bytes"] == sum(t["bytes"] for t in doc["terms"])
    assert doc["not_modelled"] and isinstance(doc["macs_per_step"], int)
    assert doc["fit"]["budget_bytes"] == 524288 and doc["fit"]["fits"] is False


def test_estimate_table_has_percent_peak_total_compute_and_not_modelled() -> None:
    code, out, _ = run("estimate", "--net", "shd", "--rule", "tp", "--batch", "128", "--classes", "20",
                       "--steps", "100", "--dtype", "fp32", "--optimizer", "adam", "--device", "rpi4-4gb")
    assert code == 0
    assert "%" in out and "peak" in out and "total" in out and "not modelled:" in out
    assert "MAC" in out and "fits" in out
    bd = estimate(make_config("shd", "tp"))
    assert f"{bd.peak_bytes:,} B" in out and f"{bd.total_bytes:,} B" in out


@pytest.mark.parametrize("acc", ["paper", "paper+s"])
def test_estimate_paper_accounting(acc: str) -> None:
    code, out, _ = run("estimate", "--net", "shd", "--rule", "tp", "--accounting", acc, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["accounting"] == acc
    assert all(t["source"].startswith("paper") for t in doc["terms"])
    assert doc["total_bytes"] == (2 * 128 * 450 + (20 * 450 if acc == "paper+s" else 0)) * 4


def test_estimate_config_file_and_override(tmp_path: Path) -> None:
    p = tmp_path / "run.toml"
    p.write_text('net = "40-64-10"\n[workload]\nbatch = 8\nsteps = 20\n[rule]\nname = "bptt"\n')
    code, out, _ = run("estimate", "--config", str(p), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["rule"] == "bptt" and doc["config"]["workload"]["batch"] == 8
    code, out, _ = run("estimate", "--config", str(p), "--batch", "16", "--rule", "tp", "--json")
    doc = json.loads(out)
    assert doc["rule"] == "tp" and doc["config"]["workload"]["batch"] == 16 and doc["config"]["workload"]["steps"] == 20


@pytest.mark.parametrize("argv,field", [
    (["estimate", "--batch", "0"], "batch"),
    (["estimate", "--batch", "1.5"], "batch"),
    (["estimate", "--classes", "-3"], "classes"),
    (["estimate", "--steps", "many"], "steps"),
    (["estimate", "--net", "700-abc-20"], "net"),
    (["estimate", "--net", "vgg9:2x32"], "net"),
    (["estimate", "--rule", "backprop"], "rule"),
    (["estimate", "--dtype", "fp8"], "dtype"),
    (["estimate", "--optimizer", "lion"], "optimizer"),
    (["estimate", "--cadence", "sometimes"], "cadence"),
    (["estimate", "--aux", "cloud"], "aux"),
    (["estimate", "--budget", "12 parsecs"], "budget"),
    (["estimate", "--budget", "-5MB"], "budget"),
    (["estimate", "--device", "toaster"], "device"),
    (["estimate", "--device", "rp2040", "--budget", "1KiB"], "budget"),
    (["estimate", "--config", "/nonexistent/run.toml"], "config"),
    (["estimate", "--accounting", "creative"], "accounting"),
    (["sweep", "--batch", "1,,8"], "batch"),
    (["sweep", "--batch", "1,x"], "batch"),
    (["sweep", "--out", "grid.xlsx"], "out"),
    (["sweep", "--rule", "tp,nope"], "rule"),
    (["devices", "--kind", "toaster"], "kind"),
    (["devices", "--devices", "/nonexistent.json"], "devices"),
    (["estimate", "--bogus-flag"], "bogus"),
])
def test_bad_input_is_one_line_exit_2(argv: list[str], field: str) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert field in err


def test_bad_config_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("net = [\n")
    code, _, err = run("estimate", "--config", str(p))
    assert code == 2 and err.count("\n") == 1 and "config" in err


def test_sweep_csv_and_parquet(tmp_path: Path) -> None:
    csv = tmp_path / "g.csv"
    code, _, _ = run("sweep", "--net", "shd", "--rule", "tp,tess,bptt", "--batch", "1,8,64",
                     "--classes", "10,100,1000", "--steps", "100", "--out", str(csv))
    assert code == 0
    df = pd.read_csv(csv)
    assert len(df) == 27
    for col in ("rule", "net", "batch", "classes", "steps", "dtype", "optimizer", "total_bytes", "peak_bytes"):
        assert col in df.columns
    for cat in CATEGORIES:
        assert f"{cat}_bytes" in df.columns
    row = df[(df.rule == "tess") & (df.batch == 8) & (df.classes == 100)].iloc[0]
    assert row.peak_bytes == estimate(make_config("shd", "tess", batch=8, classes=100)).peak_bytes
    pq = tmp_path / "g.parquet"
    code, _, _ = run("sweep", "--net", "40-64-10", "--rule", "tp", "--dtype", "fp32,fp16", "--out", str(pq),
                     "--budget", "1MiB")
    df = pd.read_parquet(pq)
    assert code == 0 and len(df) == 2 and set(df.dtype) == {"fp32", "fp16"} and "fits" in df.columns


def test_user_device_file_on_the_command_line(tmp_path: Path) -> None:
    f = tmp_path / "boards.json"
    f.write_text(json.dumps({"devices": [{"name": "myboard", "on_chip_bytes": "64MiB", "source": "bench"}]}))
    code, out, _ = run("estimate", "--net", "40-64-10", "--devices", str(f), "--device", "myboard", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["device"]["name"] == "myboard" and doc["fit"]["fits"] is True
    code, out, _ = run("devices", "--devices", str(f), "--json")
    assert any(d["name"] == "myboard" and d["budget_bytes"] == 64 * 2 ** 20 for d in json.loads(out))
    code, _, err = run("estimate", "--devices", str(f))
    assert code == 2 and "devices" in err


def test_devices_table_and_json() -> None:
    code, out, _ = run("devices")
    assert code == 0 and "stm32h743" in out and "loihi2" in out
    code, out, _ = run("devices", "--json")
    doc = json.loads(out)
    assert len(doc) >= 12
    for d in doc:
        assert {"name", "source", "budget_bytes", "on_chip_bytes", "off_chip_bytes"} <= set(d)
    code, out, _ = run("devices", "--json", "--kind", "neuromorphic")
    assert all(d["kind"] == "neuromorphic" for d in json.loads(out))


@pytest.mark.parametrize("cmd", ["estimate", "sweep", "devices"])
def test_help_explains_every_flag_with_an_example(cmd: str) -> None:
    code, out, _ = run(cmd, "--help")
    assert code == 0 and "example" in out
    for flag in {"estimate": ["--net", "--rule", "--batch", "--budget", "--device", "--accounting", "--config",
                              "--json"],
                 "sweep": ["--out", "--rule", "--batch"], "devices": ["--json", "--kind"]}[cmd]:
        assert flag in out


FLAGS = ["--net", "--rule", "--batch", "--classes", "--steps", "--dtype", "--optimizer", "--budget", "--device",
         "--cadence", "--aux", "--accounting"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FLAGS), st.text(max_size=25).filter(lambda s: not s.startswith("-")))
def test_random_flag_values_never_trace(flag: str, value: str) -> None:
    code, out, err = run("estimate", flag, value, "--steps" if flag != "--steps" else "--batch", "3")
    assert code in (0, 2)
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1
    else:
        assert "peak" in out


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=5))
def test_random_argv_never_traces(argv: list[str]) -> None:
    code, _, err = run("estimate", *argv)
    assert "Traceback" not in err
    assert code in (0, 2)


def test_estimate_rule_all_ranks_every_rule() -> None:
    from tpprof.config import RULES

    code, out, err = run("estimate", "--net", "40-64-10", "--rule", "all", "--batch", "8", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert sorted(d["rule"] for d in doc) == sorted(RULES)
    peaks = [d["peak_bytes"] for d in doc]
    assert peaks == sorted(peaks)
    for d in doc:
        assert d["peak_bytes"] == estimate(make_config("40-64-10", d["rule"], batch=8)).peak_bytes
    code, out, _ = run("estimate", "--net", "40-64-10", "--rule", "all", "--budget", "1MiB")
    assert code == 0 and "rank" in out and "algorithm only" in out


def test_rule_options_are_flags() -> None:
    code, out, _ = run("estimate", "--net", "40-64-10", "--rule", "tp", "--train-s", "--json")
    assert code == 0 and json.loads(out)["peak_bytes"] == estimate(make_config("40-64-10", "tp", train_s=True)).peak_bytes
    code, _, err = run("estimate", "--net", "40-64-10", "--train-s", "maybe")
    assert code == 2 and "train_s" in err
