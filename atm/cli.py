"""The ``atm`` command. Each subcommand lives in ``atm/commands/<name>.py`` with a
``register(subparsers)`` function; add a module and list it in ``COMMANDS``.

Only the module of the command being run is imported (all of them for ``atm --help``), so a
device or simulator process never loads the authorization host (tests/test_architecture.py)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from atm.errors import CommandFailed

__all__ = ["COMMANDS", "build_parser", "main", "run"]

COMMANDS = (
    "demo",
    "console",
    "host",
    "device",
    "db",
    "statement",
    "link",
    "sim",
    "certs",
    "fleet",
    "scenario",
    "admin",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with ``only`` that one."""
    parser = argparse.ArgumentParser(
        prog="atm",
        description="A hardware-emulating ATM: device controller, ISO-8583 host link, "
        "authorization host, device drivers and simulators.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        importlib.import_module(f"atm.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in words if not word.startswith("-")), None)
    parser = build_parser(only=command)
    return run(parser.parse_args(words))


def run(
    args: argparse.Namespace, command: Callable[[argparse.Namespace], int] | None = None
) -> int:
    """Run a parsed command line (``command``: instead of the subcommand's own function, for
    a harness that wraps one, as ``atm.scenario.hostcrash`` does): logging set up, a
    ``CommandFailed`` printed as its one line with its exit code."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int((command or args.func)(args))
    except CommandFailed as exc:
        print(f"atm {exc.line}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
