"""The ``atm`` command. Each subcommand lives in ``atm/commands/<name>.py`` with a
``register(subparsers)`` function; add a module and list it in ``COMMANDS``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from atm.commands._common import CommandFailed

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = ("demo", "host", "device", "db", "statement", "link", "sim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atm",
        description="A hardware-emulating ATM: device controller, ISO-8583 host link, "
        "authorization host, device drivers and simulators.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"atm.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except CommandFailed as exc:
        print(f"atm: {exc.line}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
