"""``--trace``: show the bytes on the devices' wires (drivers and simulators), redacted as the
logs are: every run of 12 or more hex characters (PAN, track data, keys, PIN blocks, MACs) is
replaced by ``*`` (``protocol.hexdump.redact``). The dump format is the one ``atm link
decode`` reads. Host-free: the device and simulator commands use it."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

__all__ = ["TRACE_LOGGERS", "add_trace_option", "enable_trace"]

TRACE_LOGGERS = ("drivers.wire", "simulators.wire")


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace",
        action="store_true",
        help="print every chunk of bytes to and from the devices (drivers and simulators) as a "
        "hex dump on standard error, with PANs, track data, keys and PIN blocks hidden",
    )


def enable_trace(stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in TRACE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        logger.propagate = False
