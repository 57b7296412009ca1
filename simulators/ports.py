"""Carry a simulator's bytes over a pseudo-terminal (raw mode) or TCP.

``PtyPort`` opens a pty pair, puts it in raw mode and serves the simulator on the master side;
a driver (or any serial terminal program) opens ``path``. ``TcpPort`` serves it to one TCP
client at a time (a newer connection replaces the older one), for ``socket://host:port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pty
import tty

from simulators.base import Simulator

__all__ = ["PtyPort", "TcpPort"]

log = logging.getLogger(__name__)


class PtyPort:
    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._master = -1
        self._slave = -1
        self.path = ""
        self._pending = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> str:
        self._loop = asyncio.get_running_loop()
        self._master, self._slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._loop.add_reader(self._master, self._readable)
        self.simulator.attach(self._write, self.hangup)
        return self.path

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.simulator.receive(data)

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        assert self._loop is not None
        while self._pending and self._master >= 0:
            try:
                sent = os.write(self._master, self._pending)
            except BlockingIOError:
                self._loop.add_writer(self._master, self._flush)
                return
            del self._pending[:sent]
        if self._master >= 0:
            self._loop.remove_writer(self._master)

    def hangup(self) -> None:
        """Pull the cable: the master side closes, the driver's port sees the line drop."""
        if self._master >= 0 and self._loop is not None:
            self._loop.remove_reader(self._master)
            self._loop.remove_writer(self._master)
            os.close(self._master)
            self._master = -1
        self.simulator.detach()

    def close(self) -> None:
        self.hangup()
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1


class TcpPort:
    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = writer
        self.simulator.attach(writer.write, self.hangup)
        try:
            while data := await reader.read(4096):
                self.simulator.receive(data)
        except OSError:
            pass
        finally:
            if self._writer is writer:
                self.simulator.detach()
                self._writer = None
            writer.close()

    def hangup(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.simulator.detach()

    async def close(self) -> None:
        self.hangup()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
