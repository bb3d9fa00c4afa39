"""``requires-python >= 3.10``: TOML files load through ``tomli`` where ``tomllib`` (3.11+) is
missing, and say so in one line when neither is installed. CI also runs the 3.10 path for real
(.ci/py310-check)."""

from __future__ import annotations

import sys
import tomllib

import pytest

from tpprof.config import load_config_file
from tpprof.errors import ConfigError
from tpprof.tablefile import read_table_file

TOML = 'net = "40-16-10"\n[workload]\nbatch = 4\nclasses = 10\nsteps = 5\n[rule]\nname = "tp"\n'


class _Tomli:
    """Stands in for the tomli backport (3.10) and records that it was the parser used."""

    calls = 0

    @classmethod
    def loads(cls, text: str) -> dict:
        cls.calls += 1
        return tomllib.loads(text)


def test_tomli_used_when_tomllib_is_missing(tmp_path, monkeypatch):
    f = tmp_path / "run.toml"
    f.write_text(TOML)
    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib → ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "tomli", _Tomli)
    _Tomli.calls = 0
    cfg = load_config_file(f)
    assert _Tomli.calls == 1
    assert cfg.net.to_string() == "40-16-10" and cfg.workload.batch == 4


def test_no_toml_parser_is_one_line(tmp_path, monkeypatch):
    f = tmp_path / "run.toml"
    f.write_text(TOML)
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(ConfigError) as e:
        read_table_file(f, "config")
    msg = str(e.value)
    assert "tomli" in msg and "\n" not in msg and "does not parse" not in msg


def test_pyproject_declares_tomli_below_311():
    from pathlib import Path

    deps = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith("tomli") and 'python_version<"3.11"' in d.replace(" ", "") for d in deps)
