"""The ``tpprof`` command: a thin shell that parses flags and calls data functions.

Each command group lives in its own module exposing ``register(subparsers)``; a command's
handler takes the parsed namespace and returns an exit code. Command modules import torch
lazily, inside handlers, so that ``tpprof estimate`` stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Sequence

from tpprof._version import __version__
from tpprof.cli.config_flags import check_flag_texts
from tpprof.config import set_net_file_dt
from tpprof.errors import UserError

#: Command-group modules under tpprof.cli, in the order their commands appear in --help.
COMMAND_MODULES: tuple[str, ...] = ("analytic_cmds", "train_cmds", "compare_cmds", "measure_cmds", "app_cmds",
                                     "export_cmds")


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> Parser:
    parser = Parser(
        prog="tpprof",
        description="Memory and time profiler for on-device learning rules in spiking neural nets "
        "(Traces Propagation, TESS, BPTT, ...).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'tpprof COMMAND --help' for a command's flags and examples.",
    )
    parser.add_argument("--version", action="version", version=f"tpprof {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"tpprof.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # Library warnings are held back while the command runs: a failed command prints its one
    # error line only; a finished one prints them after its output, one line each.
    held: list[tuple[str, str]] = []

    def _hold(message: Warning | str, category: type[Warning], *_a: object, **_k: object) -> None:
        if len(held) < 20:  # bounded: a warning raised every step must not grow a list
            held.append((" ".join(str(message).split())[:300], category.__name__))

    with warnings.catch_warnings():
        warnings.showwarning = _hold
        rc = _run(args)
    if rc == 0:
        for msg, cat in dict.fromkeys(held):
            sys.stderr.write(f"tpprof {args.command}: warning: {msg} ({cat})\n")
    return rc


def _run(args: argparse.Namespace) -> int:
    """The handler's exit code; user, file and memory errors as one line and exit code 2."""
    try:
        check_flag_texts(args)  # NUL, empty and flag-like values, refused once for every command
        return int(args.func(args) or 0)
    except UserError as e:
        sys.stderr.write(f"tpprof {args.command}: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"tpprof {args.command}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # a file the user named: permission, I/O error, name too long, disk full
        name = str(e.filename or "")
        name = name if len(name) <= 80 else name[:40] + f"… ({len(name)} characters)"
        sys.stderr.write(f"tpprof {args.command}: error: file: {e.strerror or type(e).__name__}"
                         + (f": {name!r}" if name else "") + " (accepted: a path you may read or write)\n")
        return 2
    except MemoryError:
        sys.stderr.write(f"tpprof {args.command}: error: memory: ran out of memory "
                         "(accepted: a smaller net, batch, class count or steps)\n")
        return 2
    finally:  # --nir-dt holds for this command only (main() may run again in the same process)
        set_net_file_dt(None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
