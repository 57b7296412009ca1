"""The link server over a real TCP socket: malformed input never stops it."""

import asyncio

import pytest

from host.app import Host
from protocol.framing import Framer, encode_frame
from protocol.messages import decode, encode


@pytest.fixture
async def running_host(host_config):
    host = Host(host_config)
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    yield host, port
    await host.close()


async def _exchange(port: int, frames: list[bytes]) -> list[dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for frame in frames:
        writer.write(frame)
    await writer.drain()
    framer = Framer()
    responses: list[dict[str, str]] = []
    while len(responses) < len(frames):
        data = await asyncio.wait_for(reader.read(4096), 10)
        if not data:
            break
        responses += [decode(f) for f in framer.feed(data)]
    writer.close()
    return responses


ECHO = {"t": "0800", "7": "1128120000", "11": "000001", "41": "ATM00002", "70": "301"}


async def test_echo(running_host):
    _, port = running_host
    (response,) = await _exchange(port, [encode_frame(encode(ECHO))])
    assert response["t"] == "0810"
    assert response["39"] == "00"
    assert response["11"] == "000001"


async def test_undecodable_request_gets_format_error(running_host):
    _, port = running_host
    (response,) = await _exchange(port, [encode_frame(b"0200" + b"Z" * 20)])
    assert response == {"t": "0210", "39": "30"}


async def test_missing_fields_get_format_error_with_stan(running_host):
    _, port = running_host
    bad = {"t": "0200", "7": "1128120000", "11": "000009", "41": "ATM00002", "3": "012000"}
    (response,) = await _exchange(port, [encode_frame(encode(bad))])
    assert response["39"] == "30"
    assert response["11"] == "000009"


async def test_bad_length_closes_only_that_connection(running_host, caplog):
    _, port = running_host
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\xff\xff" + b"x" * 10)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(100), 10) == b""
    writer.close()
    assert "exceeds the maximum" in caplog.text
    (response,) = await _exchange(port, [encode_frame(encode(ECHO))])
    assert response["39"] == "00"
