"""``atm host --workers N``: N host processes sharing the link port (SO_REUSEPORT: the kernel
spreads new connections over them), under a pre-fork supervisor.

The supervisor migrates/seeds once (when asked), reserves the link port (a bound socket with
SO_REUSEPORT that never listens, so ``--port 0`` resolves to one port for every worker), then
starts N ``atm host`` processes that bind that port with SO_REUSEPORT, without an ops API or a
statement worker of their own. The supervisor serves the one ops API (and the statement
worker), prints ``host listening on ...`` once every worker listens, restarts a worker that
exits (one line each, after a second, so a worker that cannot start does not spin), and on
SIGTERM/SIGINT stops every worker with SIGTERM (SIGKILL after ``STOP_GRACE`` seconds) and exits.

The host keeps no state of its own outside PostgreSQL (keys, card sessions, repeats and
reversals are rows), so a terminal may reconnect to any worker. On SQLite the workers share
one file and its single writer: use PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from asyncio import FIRST_COMPLETED
from dataclasses import dataclass, field

from atm.commands._common import EXIT_FAILED, CommandFailed
from atm.commands._host_serve import (
    ServeOptions,
    announce,
    listen_error,
    start_ops,
)
from atm.commands._signals import stop_on_signals
from host.app import Host
from host.config import HostConfig

__all__ = ["serve_workers"]

log = logging.getLogger("atm.host")

STOP_GRACE = 10.0
RESTART_DELAY = 1.0
START_TIMEOUT = 120.0


@dataclass
class _Worker:
    number: int
    process: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: int = 0
    failed: int = 0  # the exit code of a first start that never listened


def reserve_port(address: str, port: int) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket on ``address``:``port``: it holds the port
    for the workers (port 0: the one the kernel picked) and receives no connections."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


async def _run_worker(
    worker: _Worker, command: list[str], stopping: asyncio.Event, out: asyncio.Queue[str]
) -> None:
    """Keep worker ``worker.number`` running until ``stopping``."""
    while not stopping.is_set():
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        worker.process = process
        assert process.stdout is not None
        # Its stdout: the "host listening" line means it accepts; the rest is drained.
        async for raw in process.stdout:
            if raw.startswith(b"host listening on") and not worker.ready.is_set():
                worker.ready.set()
                if worker.restarts:
                    await out.put(f"worker {worker.number} restarted (pid {process.pid})")
        code = await process.wait()
        started = worker.ready.is_set()
        worker.ready.clear()
        if stopping.is_set():
            return
        if not started and not worker.restarts:
            # It never served (bad configuration, database unreachable: it said why on
            # stderr): restarting would only repeat that, so the supervisor stops.
            worker.failed = code or 1
            stopping.set()
            return
        worker.restarts += 1
        await out.put(f"worker {worker.number} (pid {process.pid}) exited with {code}; restarting")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RESTART_DELAY):
                await stopping.wait()


async def _stop(workers: list[_Worker]) -> None:
    running = [w.process for w in workers if w.process and w.process.returncode is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_GRACE):
            await asyncio.gather(*(p.wait() for p in running))
    except TimeoutError:
        for process in running:
            if process.returncode is None:
                log.warning("worker pid %d did not stop in %.0f s: killed", process.pid, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        await asyncio.gather(*(p.wait() for p in running))


async def serve_workers(config: HostConfig, options: ServeOptions) -> int:
    """The supervisor's life (the database is ready: migrated and seeded when asked)."""
    try:
        reserved = reserve_port(config.link_host, config.link_port)
    except OSError as exc:
        raise listen_error(exc, config.link_host, config.link_port, "--port / LINK_PORT") from None
    port = int(reserved.getsockname()[1])
    stopping = stop_on_signals()
    host = Host(config)  # the ops API and statement worker only: the link is the workers'
    workers = [_Worker(n + 1) for n in range(options.workers)]
    lines: asyncio.Queue[str] = asyncio.Queue()
    command = options.worker_command(config.link_host, port)
    tasks = [asyncio.create_task(_run_worker(w, command, stopping, lines)) for w in workers]
    try:
        ops_port = await start_ops(host, config, options)

        async def all_ready() -> bool:
            await asyncio.gather(*(w.ready.wait() for w in workers))
            return True

        stopped = asyncio.create_task(stopping.wait())
        ready = asyncio.create_task(all_ready())
        await asyncio.wait([ready, stopped], timeout=START_TIMEOUT, return_when=FIRST_COMPLETED)
        ready.cancel()
        if not ready.done() or ready.cancelled():
            if not stopping.is_set():
                raise CommandFailed(
                    f"host: the workers did not listen within {START_TIMEOUT:.0f} s", EXIT_FAILED
                )
        if not stopping.is_set():
            pids = " ".join(str(w.process.pid) for w in workers if w.process)
            announce(config, port, ops_port, f"; {options.workers} worker processes: {pids}")
            if options.statement_worker:
                host.start_worker()
        while not stopping.is_set():
            line = asyncio.create_task(lines.get())
            await asyncio.wait([line, stopped], return_when=asyncio.FIRST_COMPLETED)
            if line.done():
                print(line.result(), flush=True)
            else:
                line.cancel()
    finally:
        stopping.set()
        await _stop(workers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        reserved.close()
        await host.close()
    failed = [w for w in workers if w.failed]
    if failed:
        raise CommandFailed(
            f"host: worker {failed[0].number} could not start (exit {failed[0].failed}); "
            "its error is above",
            failed[0].failed,
        )
    return 0
