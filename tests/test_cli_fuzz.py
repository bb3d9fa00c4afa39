"""Property-based fuzz of the subcommands' flags and files (hypothesis): whatever a user types,
``tpprof`` exits 0, 1 or 2 with at most one error line, never a traceback, never a hang.

Each example swaps one flag of a working command line for a hostile value (huge integers,
Unicode digits, empty strings, NaN/inf, paths that are folders or absent, odd CSV/TOML
files). Commands that would do real work are kept tiny (a 24-sample .npz, one epoch, a
dry-run grid), so the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import contextlib
import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpprof.cli import main

HOSTILE = st.one_of(
    st.sampled_from(["", " ", "9" * 5000, "-1", "0", "²", "٣", "1_000", "nan", "inf", "-inf", "1e400", "10" * 30,
                     "1,,2", ",", "--", "-", "../", "/", "/dev/null", "\x00", "a" * 300, "tp,tp", "🙂",
                     "700-" + "9" * 5000 + "-20", "1e-400", "0x10", "True", "[1]", "{}", "'", '"']),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)


def _run(argv: list[str], cwd: Path) -> tuple[int, str]:
    import torch

    threads = torch.get_num_threads()  # a fuzzed --threads must not slow every later in-process test
    try:
        return _run_cli(argv, cwd)
    finally:
        torch.set_num_threads(threads)


def _run_cli(argv: list[str], cwd: Path) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), redirect_stderr(err), redirect_stdout(out):  # relative --out lands in tmp
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse: --help or a bad flag
            rc = int(e.code or 0)
    return rc, err.getvalue()


def _check(argv: list[str], cwd: Path) -> None:
    rc, err = _run(argv, cwd)
    assert rc in (0, 1, 2), (argv, rc, err[-500:])
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning" not in ln.lower() and "%|" not in ln]
    assert len(lines) <= 1 or rc == 0, (argv, err[-800:])
    assert "Traceback" not in err, (argv, err[-800:])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    np.savez(d / "ok.npz", x=(rng.random((24, 5, 12)) < 0.2).astype(np.float32), y=np.arange(24) % 3)
    (d / "adir").mkdir()
    (d / "bad.csv").write_text('rule,net\n"unclosed,' + "x" * 200_000 + "\n")
    (d / "grid.toml").write_text('[[grid]]\nrule = ["tp"]\nnet = ["shd"]\nbatch = [2]\nsteps = [3]\n')
    return {k: d / v for k, v in (("npz", "ok.npz"), ("dir", "adir"), ("csv", "bad.csv"), ("grid", "grid.toml"))} | {
        "root": d}


def _commands(f: dict[str, Path]) -> dict[str, tuple[list[str], list[str]]]:
    """name → (a working argv, the flags that may be replaced)."""
    out = str(f["root"] / "out")
    return {
        "measure": (["measure", "--net", "shd", "--rule", "tp", "--batch", "2", "--steps", "3", "--dry-run"],
                    ["--net", "--rule", "--batch", "--steps", "--classes", "--dtype", "--backend", "--timeout"]),
        "measure-grid": (["measure", "--grid", str(f["grid"]), "--dry-run"], ["--grid"]),
        "validate": (["validate", "--measurements", str(f["csv"])], ["--measurements", "--tolerance"]),
        "train": (["train", "--data", str(f["npz"]), "--net", "12-8-3", "--batch", "8", "--epochs", "1",
                   "--no-progress", "--threads", "1", "--out", out],
                  # --steps and --epochs are left out: a valid large T or epoch count trains for minutes
                  # (their bounds: test_train_inputs, test_fuzz_user)
                  ["--data", "--net", "--batch", "--seed", "--limit", "--lr", "--out", "--threads"]),
        "evaluate": (["evaluate", "--checkpoint", str(f["npz"]), "--data", str(f["npz"])], ["--checkpoint", "--data"]),
        "devices": (["devices"], ["--devices"]),
        "compare": (["compare", "--data", str(f["npz"]), "--net", "12-8-3", "--batch", "8", "--rule", "tp",
                     "--seeds", "1", "--epochs", "1", "--device", "stm32h743", "--out", out],
                    # --seeds and --epochs left out for the same reason as train's --epochs
                    ["--data", "--net", "--batch", "--rule", "--device", "--jobs", "--out", "--results", "--task"]),
    }


@pytest.mark.parametrize("name", ["measure", "measure-grid", "validate", "train", "evaluate", "devices", "compare"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_one_hostile_flag_value_never_crashes(files, name, data) -> None:
    argv, flags = _commands(files)[name]
    flag = data.draw(st.sampled_from(flags), label="flag")
    value = data.draw(st.one_of(HOSTILE, st.sampled_from([str(files["dir"]), str(files["csv"]),
                                                          str(files["root"] / "absent")])), label="value")
    argv = list(argv)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    _check(argv, files["root"])


@pytest.mark.parametrize("name", ["train", "compare"])
def test_batch_of_one_is_one_line_naming_batch(files, name) -> None:
    """B = 1 is refused before any progress line, naming --batch (not the data, which has 24 samples);
    found by the fuzz above on compare."""
    argv, _ = _commands(files)[name]
    argv = list(argv)
    argv[argv.index("--batch") + 1] = "1"
    rc, err = _run(argv, files["root"])
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning" not in ln.lower()]
    assert rc == 2 and len(lines) == 1 and "error: batch: 1 is too small" in lines[0], (rc, err[-500:])


@pytest.mark.parametrize("name", ["train", "compare"])
def test_a_net_too_large_for_memory_is_one_line(files, name) -> None:
    """A net whose peak exceeds the memory available is refused before any progress line (compare
    runs every learner's checks first; found by the fuzz above on compare)."""
    argv, _ = _commands(files)[name]
    argv = list(argv)
    argv[argv.index("--net") + 1] = "12-10000000r-3"  # R alone is 10^14 weights
    rc, err = _run(argv, files["root"])
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning" not in ln.lower()]
    assert rc == 2 and len(lines) == 1 and "is available" in lines[0], (rc, err[-500:])
