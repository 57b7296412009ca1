"""``atm sim dispenser|card-reader|pin-pad|printer``: one peripheral simulator, standalone, on
a new pseudo-terminal (its path is printed) or on TCP (``--tcp PORT``), until interrupted,
with a control channel for faults and the customer's actions (``simulators.control``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from atm.commands._signals import stop_on_signals
from atm.devices import simulator_for
from atm.steps import TRACKS
from atm.trace import add_trace_option, enable_trace
from device.config import DeviceConfig
from device.errors import DeviceConfigError
from drivers.errors import DriverError
from drivers.registry import DISPENSER_MODELS, KINDS
from protocol.security import KeyScheme
from simulators.control import HELP, ControlChannel, serve_control
from simulators.ports import PtyPort, TcpPort

PROTOCOLS = {
    "dispenser": "Puloon LCDM-2000",
    "lcdm-4000": "Puloon LCDM-4000",
    "card-reader": "Sankyo ICT3K5-style",
    "pin-pad": "ZT588-style EPP",
    "printer": "ESC/POS",
    "bill-acceptor": "JCM ID003",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="run one device simulator on a pseudo-terminal or TCP port",
        description="Run a peripheral simulator speaking the real device's protocol. It "
        "creates a pseudo-terminal in raw mode and prints its path (or listens on --tcp "
        "PORT), and serves a line-based control channel on 127.0.0.1 (printed):\n" + HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("device", choices=KINDS, help="which device to simulate")
    parser.add_argument("--tcp", type=int, metavar="PORT", help="listen on TCP instead of a pty")
    parser.add_argument(
        "--control", type=int, default=0, metavar="PORT", help="control port (default: any)"
    )
    parser.add_argument("--listen", default="127.0.0.1", help="address for --tcp and --control")
    parser.add_argument(
        "--key-scheme",
        default="T",
        type=str.upper,
        choices=("T", "A"),
        help="pin-pad: T (TDES keys, PIN block format 0; default) or A (AES keys, format 4); "
        "its master key comes from TERMINAL_MASTER_KEY (unset: the development key)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="keep the device's physical state (notes, card, paper) in FILE across restarts "
        "(docs/devices.md); default: forget it when the simulator stops",
    )
    parser.add_argument(
        "--model",
        default="lcdm-2000",
        type=str.lower,
        choices=DISPENSER_MODELS,
        help="dispenser: the Puloon model to speak (default lcdm-2000; the driver side picks "
        "it with ?model=lcdm-4000 on the device URL)",
    )
    add_trace_option(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.trace:
        enable_trace()
    master_key = os.environ.get("TERMINAL_MASTER_KEY", "").strip()
    try:
        config = DeviceConfig(
            key_scheme=KeyScheme(args.key_scheme),
        )
        if master_key:
            config = dataclasses.replace(config, terminal_master_key=master_key)
    except DeviceConfigError as exc:
        print(f"atm sim: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args, config))


async def _serve(args: argparse.Namespace, config: DeviceConfig) -> int:
    if args.model != "lcdm-2000" and args.device != "dispenser":
        print(f"atm sim: --model is for the dispenser, not the {args.device}", file=sys.stderr)
        return 2
    try:
        sim = simulator_for(args.device, config, args.state, model=args.model)
    except DriverError as exc:
        print(f"atm sim: {exc}", file=sys.stderr)
        return 2
    control = await serve_control(ControlChannel(sim, TRACKS), args.listen, args.control)
    control_port = control.sockets[0].getsockname()[1]
    protocol = PROTOCOLS[args.model if args.model != "lcdm-2000" else args.device]
    name = f"{args.device} ({protocol})"
    pty_port: PtyPort | None = None
    tcp_port: TcpPort | None = None
    try:
        if args.tcp is not None:
            tcp_port = TcpPort(sim)
            port = await tcp_port.start(args.listen, args.tcp)
            print(f"{name} on socket://{args.listen}:{port}", flush=True)
        else:
            pty_port = PtyPort(sim)
            print(f"{name} on {await pty_port.start()}", flush=True)
        print(f"control channel on {args.listen}:{control_port} (try: echo help | nc ...)")
        print("faults: " + " ".join(sim.fault_names), flush=True)
        await stop_on_signals().wait()
    except OSError as exc:
        print(f"atm sim: {exc}", file=sys.stderr)
        return 2
    finally:
        control.close()
        if pty_port is not None:
            pty_port.close()
        if tcp_port is not None:
            await tcp_port.close()
        with contextlib.suppress(Exception):
            await control.wait_closed()
    return 0
