"""One link connection's life in the host (host.link.server's ``_Connection`` protocol), over
real TCP: frames that share a segment, a terminal that half-closes after its requests, one
that stops reading while its answers pile up, and a frame started on an idle authenticated
connection. Timeouts are injected small and apply to connections that never complete."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

from host.config import HostConfig
from host.link.guard import LinkLimits
from protocol.framing import Framer, encode_frame
from protocol.mac import encode_signed
from protocol.messages import Message
from protocol.security import WorkingKeys
from tests.host.link_helpers import TestTerminal, start_host


def _frame(message: Message, keys: WorkingKeys) -> bytes:
    return encode_frame(encode_signed(message, keys.scheme, keys.tak))


def _echo(terminal: TestTerminal) -> Message:
    return {**terminal.header("0800"), "70": "301"}


async def test_frames_in_one_segment_are_all_answered_after_the_terminal_half_closes(
    host_config: HostConfig,
) -> None:
    host = await start_host(host_config)
    try:
        async with TestTerminal(host.server.port) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
        assert terminal.keys is not None
        echoes = [_echo(terminal) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", host.server.port)
        writer.write(b"".join(_frame(echo, terminal.keys) for echo in echoes))
        writer.write_eof()  # nothing more from this terminal: the answers must still come
        data = await asyncio.wait_for(reader.read(), 30)  # then the host closes
        writer.close()
        answers = [terminal.codec.decode(frame) for frame in Framer().feed(data)]
        assert sorted(a["11"] for a in answers) == sorted(e["11"] for e in echoes)
        assert {(a["t"], a["39"]) for a in answers} == {("0810", "00")}
        await host.server.wait_for_guard(lambda g: g.open == 0)
    finally:
        await host.close()


async def test_a_terminal_that_stops_reading_gets_every_answer_once_it_reads_again(
    host_config: HostConfig,
) -> None:
    """2,000 requests answered with a format error (no database work) from a terminal with a
    small receive buffer that reads nothing meanwhile: more answers than the sockets hold, so
    the host's transport pauses writing, its handlers wait and it reads no more requests from
    that terminal; another terminal is served in the meantime, and once the first reads, every
    answer arrives, MAC'd, none lost."""
    count = 2000
    host = await start_host(host_config)
    try:
        async with TestTerminal(host.server.port) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
        assert terminal.keys is not None
        requests = [{**terminal.header("0200"), "3": "012000"} for _ in range(count)]
        # A slow network: small socket buffers on both ends (an accepted socket inherits its
        # listener's), so the answers cannot all wait in the kernel.
        assert host.server._server is not None
        host.server._server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", host.server.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        # Not drained: the host stops reading this terminal while its answers wait.
        writer.write(b"".join(_frame(request, terminal.keys) for request in requests))
        async with TestTerminal(host.server.port, terminal_id="ATM00003") as other:
            assert (await other.sign_on())["39"] == "00"
            assert (await other.request(_echo(other)))["39"] == "00"
        framer, answers = Framer(), list[Message]()
        while len(answers) < count:
            data = await asyncio.wait_for(reader.read(65536), 30)
            assert data, f"connection closed after {len(answers)} answers"
            # The terminal's codec verifies each answer's MAC.
            answers += [terminal.codec.decode(frame) for frame in framer.feed(data)]
        writer.close()
        assert sorted(a["11"] for a in answers) == sorted(r["11"] for r in requests)
        assert {(a["t"], a["39"]) for a in answers} == {("0210", "30")}
    finally:
        await host.close()


async def test_a_frame_started_on_an_idle_authenticated_connection_must_complete_in_time(
    host_config: HostConfig,
) -> None:
    """The idle timeout is long, the frame timeout short: two bytes of a promised frame on a
    signed-on connection bring the deadline forward to the frame timeout (3 s: long enough
    for the sign-on, its first frame, on a loaded machine)."""
    limits = LinkLimits(frame_timeout=3.0, idle_timeout=600.0)
    host = await start_host(dataclasses.replace(host_config, link_limits=limits))
    try:
        async with TestTerminal(host.server.port) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
            assert terminal.client._writer is not None
            terminal.client._writer.write(b"\x00\x40" + b"08")  # 64 bytes promised, 2 sent
            await host.server.wait_for_guard(lambda g: g.open == 0)
        closed = host.metrics.link_connections_closed
        assert closed.labels(reason="frame_timeout")._value.get() == 1
        assert closed.labels(reason="idle_timeout")._value.get() == 0
    finally:
        await host.close()
