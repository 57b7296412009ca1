"""The host as its own process (``atm host``), for scenarios that kill it: started on a given
port, SIGKILLed at a step, started again on the same port and database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from atm.scenario.errors import ScenarioError

__all__ = ["HostProcess"]


class HostProcess:
    """``crash_file``: run the host with crash points (``atm.scenario.hostcrash``), armed by
    writing a point's name into that file."""

    def __init__(
        self, env: dict[str, str], port: int, log_path: Path, crash_file: Path | None = None
    ) -> None:
        self.env, self.port, self.log_path = env, port, log_path
        self.crash_file = crash_file
        self.armed = False
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0
        self._pump: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.returncode is None:
            return
        if self.crash_file is not None:
            command = ["-m", "atm.scenario.hostcrash"]
            extra = {"ATM_SCENARIO_HOST_CRASH_FILE": str(self.crash_file)}
        else:
            command, extra = ["-m", "atm", "host"], {}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *command,
            "--port",
            str(self.port),
            "--listen",
            "127.0.0.1",
            "--no-ops",
            "--no-worker",
            env={**os.environ, **self.env, **extra},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self.starts += 1
        assert self.process.stdout is not None
        stdout = self.process.stdout
        log = self.log_path.open("a")
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = (await stdout.readline()).decode(errors="replace")
                    log.write(line)
                    if not line:
                        raise ScenarioError(
                            f"atm host exited before listening (see {self.log_path})"
                        )
                    if line.startswith("host listening on"):
                        break
        except TimeoutError as exc:
            raise ScenarioError(f"atm host did not listen within {timeout:g} s") from exc
        finally:
            log.flush()
        self._pump = asyncio.create_task(self._keep_log(stdout, log))

    async def _keep_log(self, stdout: asyncio.StreamReader, log: TextIO) -> None:
        with log:
            while line := await stdout.readline():
                log.write(line.decode(errors="replace"))
                log.flush()

    @property
    def answering(self) -> bool:
        """Running, and not armed to die at its next request."""
        running = self.process is not None and self.process.returncode is None
        return running and not self.armed

    def arm(self, point: str) -> None:
        """The host kills itself at ``point`` of the next financial request."""
        assert self.crash_file is not None
        self.crash_file.write_text(point)
        self.armed = True

    async def crashed(self, timeout: float) -> None:
        """Wait until the armed host has killed itself."""
        if self.process is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await self.process.wait()
        except TimeoutError as exc:
            raise ScenarioError(f"the host never reached its crash point in {timeout:g} s") from exc
        self.armed = False
        self.kills += 1
        await self._end_pump()

    async def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, as a power cut would do."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.kills += 1
        await self._end_pump()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._end_pump()

    async def _end_pump(self) -> None:
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

    def log_lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()
