"""The link server over a real TCP socket: malformed input never stops it, and nothing without
a valid MAC is processed."""

import asyncio

import pytest

from protocol.framing import Framer, encode_frame
from protocol.mac import encode_signed
from protocol.messages import decode, encode
from tests.host.link_helpers import TestTerminal, next_stan, next_time, start_host


@pytest.fixture
async def running_host(host_config):
    host = await start_host(host_config)
    yield host, host.server.port
    await host.close()


async def _raw(port: int, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection; return everything until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    received = b""
    while chunk := await asyncio.wait_for(reader.read(4096), 10):
        received += chunk
    writer.close()
    return received


async def test_echo_after_sign_on(running_host):
    _, port = running_host
    async with TestTerminal(port) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        echo = terminal.header("0800")
        echo["70"] = "301"
        response = await terminal.request(echo)
    assert response["t"] == "0810"
    assert response["39"] == "00"
    assert response["11"] == echo["11"]


async def test_unmacd_echo_closes_the_connection(running_host, caplog):
    _, port = running_host
    echo = {"t": "0800", "7": next_time(), "11": next_stan(), "41": "ATM00002", "70": "301"}
    assert await _raw(port, encode_frame(encode(echo))) == b""
    assert "security: rejected 0800" in caplog.text


async def test_undecodable_request_on_an_unauthenticated_link_closes_it(running_host):
    _, port = running_host
    assert await _raw(port, encode_frame(b"0200" + b"Z" * 20)) == b""


async def test_undecodable_request_after_sign_on_gets_a_macd_format_error(running_host):
    _, port = running_host
    async with TestTerminal(port) as terminal:
        await terminal.sign_on()
        assert terminal.client._writer is not None
        terminal.client._writer.write(encode_frame(b"0200" + b"Z" * 20))
        await terminal.client._writer.drain()
        # The answer has no STAN to match: it arrives as unmatched, MAC verified.
        echo = terminal.header("0800")
        echo["70"] = "301"
        await terminal.request(echo)
    assert terminal.unmatched == [
        {"t": "0210", "39": "30", "41": "ATM00002", "64": terminal.unmatched[0]["64"]}
    ]


async def test_missing_fields_get_format_error_with_stan(running_host):
    _, port = running_host
    async with TestTerminal(port) as terminal:
        await terminal.sign_on()
        bad = terminal.header("0200")
        bad["3"] = "012000"
        response = await terminal.request(bad)
    assert response["39"] == "30"
    assert response["11"] == bad["11"]


async def test_bad_length_closes_only_that_connection(running_host, caplog):
    _, port = running_host
    assert await _raw(port, b"\xff\xff" + b"x" * 10) == b""
    assert "exceeds the maximum" in caplog.text
    async with TestTerminal(port) as terminal:
        assert (await terminal.sign_on())["39"] == "00"


async def test_response_frames_are_length_prefixed_and_macd(running_host):
    _, port = running_host
    async with TestTerminal(port) as terminal:
        await terminal.sign_on()
        assert terminal.keys is not None
        echo = terminal.header("0800")
        echo["70"] = "301"
        payload = encode_signed(echo, terminal.keys.scheme, terminal.keys.tak)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_frame(payload))
    await writer.drain()
    framer = Framer()
    frames: list[bytes] = []
    while not frames:
        data = await asyncio.wait_for(reader.read(4096), 10)
        assert data, "connection closed without an answer"
        frames = framer.feed(data)
    writer.close()
    response = decode(frames[0])
    assert response["39"] == "00" and len(response["128"]) == 16


async def test_response_mti_from_a_terminal_is_logged_counted_and_not_answered(
    running_host, caplog
):
    """docs/protocol.md section 3: a MAC'd 0210 from a terminal gets no answer, one warning
    naming terminal, MTI and STAN, and a count in the metrics; the link stays up."""
    host, port = running_host
    async with TestTerminal(port) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        stray = terminal.header("0210")
        stray.update({"3": "012000", "4": "000000002000", "39": "00"})
        await terminal.client.send(stray)
        echo = terminal.header("0800")
        echo["70"] = "301"
        assert (await terminal.request(echo))["39"] == "00"  # the connection still serves
        assert terminal.unmatched == []  # nothing came back for the 0210
    counted = host.metrics.unsolicited_messages.labels(mti="0210")._value.get()
    assert counted == 1
    lines = [r.getMessage() for r in caplog.records if "response MTI 0210" in r.getMessage()]
    assert lines == [
        f"terminal ATM00002 sent a response MTI 0210 (STAN {stray['11']}): a terminal sends "
        "only requests and advices; not answered"
    ]
