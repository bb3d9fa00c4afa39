"""One meaning per flag name across every subcommand (tpprof.cli.flag_meanings).

Every subcommand's parser is built; each long flag must be in the register, stored under the
register's ``dest``, be a switch or take a value as the register says, and have a help text that
states the register's meaning. Independently of the register, one flag name must have one
signature (dest, switch or value, choices) in every subcommand that has it.
"""

from __future__ import annotations

import argparse
import re

import pytest

from tpprof.cli import build_parser, main
from tpprof.cli.config_flags import RULE_HELP, _NoCatalogueDevice, rule_fields
from tpprof.cli.flag_meanings import all_flag_meanings


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _flags() -> list[tuple[str, str, argparse.Action]]:
    out = []
    for cmd, p in _subcommands().items():
        for a in p._actions:
            for opt in a.option_strings:
                if opt.startswith("--") and opt != "--help":
                    out.append((cmd, opt, a))
    return out


def _takes_value(a: argparse.Action) -> bool:
    return not isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction))


def test_every_flag_has_the_registered_meaning() -> None:
    reg = all_flag_meanings()
    problems = []
    for cmd, opt, a in _flags():
        if opt not in reg:
            problems.append(f"{cmd} {opt}: not in tpprof/cli/flag_meanings.py FLAG_MEANINGS (say what it means)")
            continue
        m = reg[opt]
        if isinstance(a, _NoCatalogueDevice):  # --device refused where no catalogue device is used
            assert opt == "--device" and a.help == argparse.SUPPRESS
            continue
        if a.dest != m.dest:
            problems.append(f"{cmd} {opt}: stored as {a.dest!r}, the register says {m.dest!r}")
        if _takes_value(a) != m.takes_value:
            kind = "takes a value" if _takes_value(a) else "is a switch"
            problems.append(f"{cmd} {opt}: {kind}, unlike the register")
        if not re.search(m.help_pattern, a.help or "", re.IGNORECASE):
            problems.append(f"{cmd} {opt}: help {str(a.help)[:60]!r} does not say {m.meaning!r} "
                            f"(pattern {m.help_pattern!r})")
    assert not problems, "\n".join(problems)


def test_one_signature_per_flag_name() -> None:
    seen: dict[str, dict[tuple, list[str]]] = {}
    for cmd, opt, a in _flags():
        if isinstance(a, _NoCatalogueDevice):
            continue
        sig = (a.dest, _takes_value(a), tuple(a.choices) if a.choices else None)
        seen.setdefault(opt, {}).setdefault(sig, []).append(cmd)
    split = {opt: sigs for opt, sigs in seen.items() if len(sigs) > 1}
    assert not split, split


def test_the_register_catches_a_second_meaning() -> None:
    """The check above fails on the bug it exists for: --device as a torch device in train."""
    reg = all_flag_meanings()
    p = argparse.ArgumentParser(prog="tpprof train")
    a = p.add_argument("--device", default="cpu", help="cpu or cuda (e.g. --device cuda)")
    assert not re.search(reg["--device"].help_pattern, a.help, re.IGNORECASE)


def test_every_rule_field_says_what_it_means() -> None:
    for f in rule_fields():
        text = RULE_HELP.get(f.name, "")
        meaning = text.split("; default")[0]
        assert len(meaning) > 25 and "rule option" not in text and "None" not in text, f.name


@pytest.mark.parametrize("cmd", ["train", "measure"])
def test_device_on_a_backend_command_says_what_device_means(cmd: str, capsys) -> None:
    if cmd == "measure":  # a catalogue device there imposes its SRAM on a qemu:<core> target, else refused
        assert main([cmd, "--device", "stm32h743", "--net", "40-32-10", "--batch", "2", "--steps", "2",
                     "--out", "x"]) == 2
        code = 2
    else:
        with pytest.raises(SystemExit) as e:
            main([cmd, "--device", "stm32h743", "--out", "x"])
        code = e.value.code
    err = capsys.readouterr().err
    assert code == 2 and "catalogue device" in err and "--backend" in err and err.count("\n") == 1


def test_train_help_offers_only_what_train_accepts(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "or all" not in out and "eprop" not in out.split("--rule", 1)[1].split("--batch", 1)[0]
    assert main(["train", "--rule", "all", "--epochs", "1", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "eprop" not in err and "accepted: tp, tess, bptt" in err
