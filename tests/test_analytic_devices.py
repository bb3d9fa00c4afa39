"""The device catalogue: coverage, sources, user files, budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpprof.analytic.devices import get_device, load_catalogue, read_device_file, resolve_budget
from tpprof.errors import UserError


def test_catalogue_has_twelve_real_targets_across_kinds() -> None:
    devs = load_catalogue()
    assert len(devs) >= 12
    kinds = {d.kind for d in devs}
    assert {"mcu", "neuromorphic", "sbc", "edge-gpu"} <= kinds
    names = {d.name for d in devs}
    for must in ("stm32h743", "stm32f767", "nrf52840", "rp2040", "esp32-s3", "apollo4-plus", "loihi2",
                 "spinnaker2", "akd1000", "xylo-audio2", "rpi4-4gb", "rpi5-8gb", "jetson-nano",
                 "jetson-orin-nano-8gb"):
        assert must in names


def test_every_figure_has_a_source() -> None:
    for d in load_catalogue():
        assert d.budget_bytes >= 1
        assert d.on_chip_bytes or d.off_chip_bytes
        assert "on_chip:" in d.source and "off_chip:" in d.source, d.name
        assert d.budget_bytes in (d.on_chip_bytes, d.off_chip_bytes)


def test_known_figures() -> None:
    assert get_device("STM32H743").on_chip_bytes == 1060 * 1024  # 64+128+512+288+64+4 KB
    assert get_device("nrf52840").budget_bytes == 256 * 1024
    assert get_device("spinnaker2").off_chip_bytes == 2 * 2 ** 30


def test_unknown_device_is_a_user_error() -> None:
    with pytest.raises(UserError, match="not in the catalogue"):
        get_device("no-such-board")


def test_user_device_files(tmp_path: Path) -> None:
    t = tmp_path / "boards.toml"
    t.write_text('[[devices]]\nname = "myboard"\non_chip_bytes = "512KiB"\noff_chip_bytes = "8MiB"\n'
                 'budget = "on_chip"\nsource = "my datasheet"\n')
    (d,) = read_device_file(t)
    assert (d.name, d.budget_bytes, d.off_chip_bytes) == ("myboard", 512 * 1024, 8 * 2 ** 20)
    assert get_device("myboard", t).source == "my datasheet"
    j = tmp_path / "boards.json"
    j.write_text(json.dumps({"devices": [{"name": "nrf52840", "on_chip_bytes": 1000, "source": "override"}]}))
    assert get_device("nrf52840", j).budget_bytes == 1000  # a user entry replaces a shipped one


@pytest.mark.parametrize("text", ["[[devices]]\nname = 'x'\n", "devices = 3\n", "not toml [", "[[devices]]\n"
                                  "name = 'x'\non_chip_bytes = 'lots'\n", "[[devices]]\nname='x'\non_chip_bytes=1\nkind='toaster'\n"])
def test_bad_device_files(tmp_path: Path, text: str) -> None:
    p = tmp_path / "d.toml"
    p.write_text(text)
    with pytest.raises(UserError):
        read_device_file(p)


def test_resolve_budget() -> None:
    assert resolve_budget(budget="512KiB").budget_bytes == 524288
    assert resolve_budget(device="rp2040").name == "rp2040"
    assert resolve_budget() is None
    with pytest.raises(UserError):
        resolve_budget(device="rp2040", budget="1KiB")


def test_training_semantics_and_largest_block() -> None:
    from tpprof.analytic.devices import figure_sources

    assert get_device("xylo-audio2").on_chip_learning == "no" and not get_device("xylo-audio2").can_learn
    assert get_device("akd1000").on_chip_learning == "partial" and get_device("akd1000").can_learn
    assert get_device("loihi2").on_chip_learning == "yes"
    h7 = get_device("stm32h743")
    assert (h7.on_chip_bytes, h7.largest_block_bytes) == (1060 * 1024, 512 * 1024)
    for d in load_catalogue():
        assert d.on_chip_learning in ("yes", "no", "partial"), d.name  # every shipped device says
        if d.largest_block_bytes is not None:
            assert d.largest_block_bytes <= d.budget_bytes, d.name
        figs = figure_sources(d.name)
        assert {"on_chip", "off_chip", "learning"} <= set(figs), d.name
        for k, f in figs.items():
            assert f["confidence"] in ("checked", "secondary", "unverified"), (d.name, k)
            assert f["text"], (d.name, k)
            assert f["url"] is None or str(f["url"]).startswith("https://"), (d.name, k)
        if d.largest_block_bytes is not None:
            assert "largest_block" in figs, d.name


def test_budget_devices_have_unknown_learning_and_user_files_may_say(tmp_path: Path) -> None:
    assert resolve_budget(budget="1MiB").on_chip_learning == "unknown"
    t = tmp_path / "b.toml"
    t.write_text('[[devices]]\nname = "inf"\non_chip_bytes = "64KiB"\non_chip_learning = "no"\n'
                 'largest_block_bytes = "32KiB"\n')
    (d,) = read_device_file(t)
    assert (d.on_chip_learning, d.largest_block_bytes, d.can_learn) == ("no", 32768, False)
    for bad in ('on_chip_learning = "maybe"', 'on_chip_learning = 3', 'largest_block_bytes = "1MiB"'):
        t.write_text(f'[[devices]]\nname = "x"\non_chip_bytes = "64KiB"\n{bad}\n')
        with pytest.raises(UserError) as e:
            read_device_file(t)
        assert "\n" not in str(e.value)
