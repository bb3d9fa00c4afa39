"""The README's first example is what `tpprof estimate` prints (rank, rule, peak, total, ratio to
TP, fits; the modelled time per step is left out: it is refitted whenever measurements are added)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from tpprof.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _rows(text: str) -> list[list[str]]:
    """The ranked rows of an estimate table, without the time/step column."""
    rows = []
    for line in text.splitlines():
        if re.match(r"^\s+\d+\s+\S", line):
            f = line.split()
            rows.append(f[:6] + f[-3:-1])  # rank, rule, peak, total (value, unit) | peak / TP, fits
    return rows


def test_readme_first_example_is_the_cli_output() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split("```console\n", 1)[1].split("```", 1)[0]
    argv = block.splitlines()[0].removeprefix("$ tpprof ").split()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    shown, printed = block.splitlines()[1:3], out.getvalue().splitlines()[:2]
    assert shown == printed  # the title and the config line
    assert _rows(block) and _rows(block) == _rows(out.getvalue())
