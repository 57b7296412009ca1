"""``atm console``: operate one ATM from a terminal (Textual), as customer, engineer and
operator, against a host in this process (default) or a running one (``--host``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from atm.commands._common import load_host_config
from atm.commands._signals import stop_on_signals
from atm.commands.device import DEVICE_OPTIONS, URL_HELP, add_tls_options
from atm.frontpanel import Bench, BenchError, BenchOptions, FrontPanel
from device.config import LOCAL_HOSTS, DeviceConfig
from device.errors import DeviceConfigError
from host.config import HostConfig
from protocol.security import KeyScheme

__all__ = ["register", "run_console"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "console",
        help="operate one ATM from the terminal: customer, engineer and operator views",
        description="The ATM in a terminal: its screen and soft keys, PIN pad (keyboard or "
        "mouse), card slot, cash tray and receipt roll; the engineer's view (state, devices, "
        "decoded host-link log, journal); a fault panel; the operator's view (supervisor "
        "switch, replenish, balancing). With no options it starts a host in this process on a "
        "fresh SQLite database (migrated and seeded) and simulated devices.\n\n" + URL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", metavar="HOST:PORT", help="a running host's ISO link (default: one in here)"
    )
    for option, kind in DEVICE_OPTIONS:
        parser.add_argument(option, default="sim", metavar="URL", help=f"{kind} (default sim)")
    parser.add_argument(
        "--control",
        action="append",
        default=[],
        metavar="KIND=HOST:PORT",
        help="the control channel of an external simulator (`atm sim KIND` prints it), so "
        "the console can act as the customer and inject faults; repeat per device",
    )
    parser.add_argument("--terminal-id", default="ATM00001", help="8-character terminal ID")
    parser.add_argument(
        "--key-scheme", default="T", type=str.upper, choices=("T", "A"), help="T or A"
    )
    add_tls_options(parser)  # with --host: the console's link to that host
    parser.add_argument(
        "--allow-host",
        action="append",
        metavar="NAME",
        help="allow --host to name NAME as well as localhost (repeatable; warned about)",
    )
    parser.add_argument(
        "--state-dir", help="keep the journal (and the embedded host's database) here"
    )
    parser.add_argument(
        "--web",
        type=int,
        metavar="PORT",
        help="serve the front panel in a browser on PORT instead of the terminal console",
    )
    parser.add_argument(
        "--web-listen",
        default="127.0.0.1",
        metavar="ADDR",
        help="address for --web (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--no-faults", action="store_true", help="--web: no fault panel (faults are refused)"
    )
    parser.set_defaults(func=_run)


def _options(args: argparse.Namespace) -> BenchOptions:
    controls = {}
    for item in args.control:
        kind, sep, address = item.partition("=")
        if not sep:
            raise BenchError(f"--control is KIND=HOST:PORT, got {item!r}")
        controls[kind.strip()] = address.strip()
    device: dict[str, Any] = {
        "terminal_id": args.terminal_id,
        "key_scheme": KeyScheme(args.key_scheme),
    }
    if args.allow_host:
        device["allowed_hosts"] = LOCAL_HOSTS + tuple(args.allow_host)
    master_key = os.environ.get("TERMINAL_MASTER_KEY", "").strip()
    if master_key:
        device["terminal_master_key"] = master_key
    try:
        DeviceConfig(**device)
    except DeviceConfigError as exc:
        raise BenchError(str(exc)) from exc
    urls = {kind: getattr(args, option[2:].replace("-", "_")) for option, kind in DEVICE_OPTIONS}
    return BenchOptions(
        host=args.host,
        urls=urls,
        controls=controls,
        work_dir=Path(args.state_dir) if args.state_dir else None,
        device=device,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_server_name=args.tls_server_name,
    )


def web_port(value: int, command: str) -> int | None:
    """A --web port, checked; None (after one line on stderr) when it is not one."""
    if not 0 <= value < 65536:
        print(f"{command}: --web takes a TCP port 0-65535, got {value}", file=sys.stderr)
        return None
    return value


def _run(args: argparse.Namespace) -> int:
    if args.web is not None:
        try:
            options = _options(args)
        except BenchError as exc:
            print(f"atm console: {exc}", file=sys.stderr)
            return 2
        port = web_port(args.web, "atm console")
        host_config = load_host_config() if options.host is None else None
        if port is None or (options.host is None and host_config is None):
            return 2
        return asyncio.run(
            run_web(options, host_config, port, listen=args.web_listen, faults=not args.no_faults)
        )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("atm console: needs an interactive terminal", file=sys.stderr)
        return 2
    try:
        options = _options(args)
    except BenchError as exc:
        print(f"atm console: {exc}", file=sys.stderr)
        return 2
    host_config = None
    if options.host is None:
        host_config = load_host_config()
        if host_config is None:
            return 2
    return asyncio.run(run_console(options, host_config))


class _NoticeHandler(logging.Handler):
    def __init__(self, panel: FrontPanel) -> None:
        super().__init__(logging.WARNING)
        self.panel = panel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.name}: {record.getMessage()}"
            self.panel.notify(text, error=record.levelno >= logging.ERROR)
        except Exception:
            self.handleError(record)


def _host_config_for(options: BenchOptions, host_config: HostConfig | None) -> HostConfig | None:
    """The embedded host learns the terminal's key scheme (TERMINAL_KEY_SCHEMES)."""
    if options.host is None and host_config is not None:
        schemes = {**host_config.link.schemes}
        device = DeviceConfig(**dict(options.device))
        schemes[device.terminal_id] = device.key_scheme
        return dataclasses.replace(
            host_config, link=dataclasses.replace(host_config.link, schemes=schemes)
        )
    return host_config


async def run_web(
    options: BenchOptions,
    host_config: HostConfig | None,
    port: int,
    *,
    listen: str = "127.0.0.1",
    faults: bool = True,
) -> int:
    """Start the bench and serve its front panel in a browser until SIGINT or SIGTERM, then
    close the bench as the console does (the session is finished first)."""
    from atm.web import start_web

    def say(text: str) -> None:
        print(f"atm web: {text}", file=sys.stderr, flush=True)

    bench = Bench(options, _host_config_for(options, host_config), say=say)
    try:
        panel = await bench.start()
    except BenchError as exc:
        for line in str(exc).splitlines():
            say(line)
        return 2
    try:
        runner, bound = await start_web(panel, port, listen=listen, faults=faults)
    except OSError as exc:
        say(f"cannot serve on {listen}:{port}: {exc.strerror or exc} (pick another --web port)")
        await bench.close()
        return 3
    print(f"ATM front panel on http://{listen}:{bound}/ (Ctrl-C to stop)", flush=True)
    stop = stop_on_signals()
    loop = asyncio.get_running_loop()
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        say("closing: finishing the session and delivering queued reversals")
        for line in await bench.close():
            say(line)
    return 0


async def run_console(options: BenchOptions, host_config: HostConfig | None) -> int:
    """Start the bench, run the console until the user quits, then close the bench (the
    session is finished first: see ``Bench.close``). Exit 2 with one clear line when the bench
    cannot start."""
    from atm.console import ConsoleApp  # Textual loads only when the console runs

    def say(text: str) -> None:
        print(f"atm console: {text}", file=sys.stderr, flush=True)

    bench = Bench(options, _host_config_for(options, host_config), say=say)
    try:
        panel = await bench.start()
    except BenchError as exc:
        for line in str(exc).splitlines():
            say(line)
        return 2
    # While the console draws the terminal, log lines become the console's notices (a line
    # written to the terminal would tear the picture).
    handler = _NoticeHandler(panel)
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [handler]
    try:
        await ConsoleApp(panel).run_async()
    finally:
        root.handlers[:] = saved
        say("closing: finishing the session and delivering queued reversals")
        for line in await bench.close():
            say(line)
    return 0
