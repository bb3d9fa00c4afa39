"""The package carries everything `tpprof app/report/validate` read (no path relative to the cwd).

The full check, a non-editable install in a temporary venv run from an unrelated folder, is
`.ci/installed-check` (CI); these are its fast in-process counterparts.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from tpprof import resources
from tpprof.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_files_resolve_inside_the_package() -> None:
    pkg = ROOT / "tpprof"
    for p in (resources.measurements_dir() / "cpu_reference.csv", resources.default_grid(),
              resources.results_dir() / "accuracy.csv"):
        assert p.is_file(), p
        assert pkg in p.resolve().parents


def test_package_data_globs_cover_every_shipped_file() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tpprof"]
    pkg = ROOT / "tpprof"
    wanted = [p for d in ("shipped", "app") for p in (pkg / d).rglob("*")
              if p.is_file() and p.suffix in {".csv", ".toml", ".md"}]
    assert wanted
    for p in wanted:
        rel = p.relative_to(pkg).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), f"{rel} would not be installed"


def test_validate_default_works_from_an_unrelated_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TPPROF_MEASUREMENTS_DIR", raising=False)
    assert main(["validate"]) == 0
    assert "summary:" in capsys.readouterr().out


def test_app_launcher_ships_the_app_and_hides_error_details() -> None:
    from tpprof.cli.app_cmds import MAX_UPLOAD_MB, app_command

    cmd = app_command(8501, "127.0.0.1")
    assert Path(cmd[4]).is_file() and (ROOT / "tpprof" / "app") in Path(cmd[4]).parents
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"
    assert int(cmd[cmd.index("--server.maxUploadSize") + 1]) == MAX_UPLOAD_MB <= 20


def test_app_guard_catches_everything_and_shows_no_traceback() -> None:
    pytest.importorskip("streamlit")
    from tpprof.app.tpviews import common

    assert common.MAX_UPLOAD_MB <= 20
    shown: list[str] = []
    orig = common.st.error
    common.st.error = lambda msg, *a, **k: shown.append(str(msg))  # type: ignore[assignment]
    try:
        for exc in (RuntimeError("boom\n  File /srv/x.py"), MemoryError(), RecursionError("deep"), ValueError("")):
            def view(exc=exc):  # noqa: ANN001
                raise exc
            common.guard(view)
    finally:
        common.st.error = orig  # type: ignore[assignment]
    assert len(shown) == 4
    assert all("\n" not in m and "File " not in m for m in shown)


def test_fsdd_empty_data_dir_is_an_error() -> None:
    from tpprof.data.fsdd import find_fsdd
    from tpprof.errors import UserError

    with pytest.raises(UserError, match="data-dir"):
        find_fsdd("")
