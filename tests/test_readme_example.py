"""The README's first example is what `tpprof estimate` prints (every column but the modelled time
per step, which is refitted whenever measurements are added)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from tpprof.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _rows(text: str) -> list[list[str]]:
    """The ranked rows of an estimate table, cut at the columns its dash line marks, without the
    time/step column."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if re.fullmatch(r"-+( +-+)+", line))
    spans = [m.span() for m in re.finditer(r"-+", lines[i])]
    spans[-1] = (spans[-1][0], None)  # the last column runs to the end of its line
    cut = [lines[i - 1][a:b].strip() for a, b in spans]
    keep = [k for k, name in enumerate(cut) if not name.startswith("time/step")]
    rows = []
    for line in lines[i + 1:]:
        if not re.match(r"^\s+\d+\s+\S", line):
            break
        cells = [line[a:b].strip() for a, b in spans]
        rows.append([cells[k] for k in keep])
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
