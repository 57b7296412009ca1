"""What ``atm host`` shares between serving in one process (``atm.commands.host``) and its
``--workers N`` supervisor (``atm.commands.host_workers``): the serving options (defined once,
read once from the command line, and spelled once more only for a worker's command line, here
beside their definitions), the stop signals, the ops API's start, a port's listening error and
the start-up lines. ``HostConfig`` is loaded by the command and passed in; nothing here reads
the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.util
import socket
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from atm.commands._common import (
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandFailed,
    database_location,
)
from host.app import Host
from host.config import HostConfig

__all__ = [
    "LOOPS",
    "ServeOptions",
    "add_serve_options",
    "announce",
    "listen_error",
    "loop_factory",
    "run_loop",
    "start_ops",
]

MAX_WORKERS = 64
# --loop: auto is uvloop when it is installed (it is a dependency on Linux and macOS), else
# asyncio's own loop.
LOOPS = ("auto", "uvloop", "asyncio")


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """``atm host``'s serving options (the database URL is the subcommands' too: not here)."""
    parser.add_argument("--listen", help="address to listen on (LINK_HOST)")
    parser.add_argument("--port", help="ISO link port (LINK_PORT, default 8583; 0 = any free)")
    parser.add_argument("--ops-port", help="ops API port (OPS_PORT, default 8080; 0 = any free)")
    parser.add_argument("--no-ops", action="store_true", help="do not serve the ops API")
    parser.add_argument(
        "--ops-cert",
        metavar="FILE",
        help="serve the ops API over HTTPS with this certificate (OPS_TLS_CERT; production "
        "requires HTTPS unless OPS_ALLOW_PLAINTEXT=true). The link's certificate will do",
    )
    parser.add_argument("--ops-key", metavar="FILE", help="its private key (OPS_TLS_KEY)")
    parser.add_argument(
        "--no-worker", action="store_true", help="do not run a statement worker in this process"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N host processes sharing the link port (SO_REUSEPORT) under a supervisor "
        "that restarts them and serves the one ops API (PostgreSQL; default 1)",
    )
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="the event loop: uvloop (libuv; less CPU per authorization), asyncio's own, or "
        "auto: uvloop when installed (default)",
    )
    # A worker of `--workers N` binds the supervisor's port with SO_REUSEPORT.
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="apply the migrations before serving (off in production). Without it the host "
        "refuses a database that is missing, not migrated or behind, and says what to run",
    )
    parser.add_argument(
        "--seed",
        action="store_true",
        help="migrate, then load the seed data (idempotent) before serving (off in production)",
    )


@dataclass(frozen=True)
class ServeOptions:
    """The serving options as given (``add_serve_options``); settings that have an environment
    variable (address, ports, ops TLS) are in ``HostConfig`` instead."""

    database_url: str | None = None  # --database-url as given: a worker gets it too
    ops: bool = True
    statement_worker: bool = True
    workers: int = 1
    reuse_port: bool = False
    migrate: bool = False
    seed: bool = False
    loop: str = "auto"

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= MAX_WORKERS:
            raise CommandFailed(f"host: --workers takes 1 to {MAX_WORKERS} processes", EXIT_USAGE)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServeOptions:
        return cls(
            database_url=args.database_url,
            ops=not args.no_ops,
            statement_worker=not args.no_worker,
            workers=args.workers,
            reuse_port=args.reuse_port,
            migrate=args.migrate,
            seed=args.seed,
            loop=args.loop,
        )

    def worker_command(self, address: str, port: int) -> list[str]:
        """One worker process of ``--workers N``: ``atm host`` on the supervisor's port
        (SO_REUSEPORT), without an ops API or a statement worker (the supervisor's)."""
        command = [sys.executable, "-m", "atm", "host", "--listen", address, "--port", str(port)]
        command += ["--no-ops", "--no-worker", "--reuse-port", "--loop", self.loop]
        if self.database_url:
            command += ["--database-url", self.database_url]
        return command


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``--loop`` names (None: asyncio's own)."""
    if loop == "asyncio":
        return None
    if importlib.util.find_spec("uvloop") is None:
        if loop == "uvloop":
            raise CommandFailed("host: --loop uvloop needs the uvloop package", EXIT_USAGE)
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_loop(main: Coroutine[Any, Any, int], loop: str) -> int:
    """``asyncio.run(main)`` on the loop ``--loop`` names."""
    try:
        factory = loop_factory(loop)
    except CommandFailed:
        main.close()  # never started: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def listen_error(exc: OSError, address: str, port: int, setting: str) -> CommandFailed:
    """One line for a port the host cannot listen on, naming the ``setting`` to change."""
    where = f"{address}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return CommandFailed(
            f"host: cannot listen on {where}: the port is in use (another `atm host`?); "
            f"stop it or choose another port ({setting})",
            EXIT_UNAVAILABLE,
        )
    if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EINVAL):
        return CommandFailed(
            f"host: cannot listen on {where}: {address!r} is not an address of this machine "
            "(--listen / LINK_HOST, OPS_HOST: e.g. 127.0.0.1 or 0.0.0.0)",
            EXIT_USAGE,
        )
    return CommandFailed(f"host: cannot listen on {where}: {exc.strerror or exc}", EXIT_UNAVAILABLE)


async def start_ops(host: Host, config: HostConfig, options: ServeOptions) -> int | None:
    """Serve the ops API unless ``--no-ops``; its port, or None."""
    if not options.ops:
        return None
    try:
        return await host.start_ops()
    except OSError as exc:
        raise listen_error(
            exc, config.ops_host, config.ops_port, "--ops-port / OPS_PORT, or --no-ops"
        ) from None


def announce(config: HostConfig, port: int, ops_port: int | None, processes: str = "") -> None:
    """The start-up lines, printed once everything listens (so a failure is the only line).
    The database's resolved location (an absolute path; never the password: this line
    reaches CloudWatch), so a host started from another folder says which database it uses."""
    shown = database_location(config.database_url)
    print(f"host listening on {config.link_host}:{port} (database {shown}{processes})", flush=True)
    if ops_port is not None:
        https = " (HTTPS)" if config.ops_tls is not None else ""
        print(f"ops API{https} listening on {config.ops_host}:{ops_port}", flush=True)
