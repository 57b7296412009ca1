"""The bench's simulated terminal over a real TCP socket to a peer that plays the host: it signs
on (working keys delivered in a key block under the master key), each withdrawal goes out as a
whole MAC'd 0200 with its own STAN, each answer is decoded and its MAC verified, and a wrong MAC
or an answer to another request fails the request, never passes."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from host.link.config import DEVELOPMENT_TMK
from protocol.errors import LinkError
from protocol.framing import Framer, encode_frame
from protocol.keyblock import DEFAULT_KEY_BLOCK, encode_key_delivery
from protocol.mac import encode_signed, verify_signed
from protocol.messages import Message, decode
from protocol.security import KeyScheme, WorkingKeys, signon_mac_key
from tests.bench.scripts import load_script

KEYS = WorkingKeys(
    KeyScheme.TDES,
    tpk=bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
    tak=bytes.fromhex("F1E2D3C4B5A69788796A5B4C3D2E1F00"),
)
PAN = "4000001234567899"
Answer = Callable[[Message], Message]


def approve(request: Message) -> Message:
    echoed = {k: request[k] for k in ("2", "3", "4", "7", "11", "41", "42", "49")}
    return {**echoed, "t": "0210", "39": "00"}


async def _host(answer: Answer, tak: bytes = KEYS.tak) -> tuple[asyncio.Server, list[Message]]:
    """A peer on a real port: signs the terminal on, then verifies each request's MAC and
    answers ``answer(request)`` MAC'd under ``tak``."""
    seen: list[Message] = []
    signon_key = signon_mac_key(KeyScheme.TDES, DEVELOPMENT_TMK)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        while data := await reader.read(4096):
            for frame in framer.feed(data):
                request = decode(frame)
                if request["t"] == "0800":
                    verify_signed(frame, request, KeyScheme.TDES, signon_key)
                    block = encode_key_delivery(DEFAULT_KEY_BLOCK, KEYS, DEVELOPMENT_TMK)
                    response = {"t": "0810", "11": request["11"], "41": request["41"],
                                "39": "00", "48": block, "70": "001"}  # fmt: skip
                    writer.write(encode_frame(encode_signed(response, KeyScheme.TDES, signon_key)))
                    continue
                verify_signed(frame, request, KeyScheme.TDES, KEYS.tak)
                seen.append(request)
                writer.write(encode_frame(encode_signed(answer(request), KeyScheme.TDES, tak)))

    return await asyncio.start_server(serve, "127.0.0.1", 0), seen


async def _signed_on(bench_host, server: asyncio.Server):
    port = server.sockets[0].getsockname()[1]
    terminal = bench_host.BenchTerminal(port, "BEN00000", PAN)
    await terminal.open()
    return terminal


async def test_each_withdrawal_is_a_macd_0200_of_its_own_and_each_answer_is_verified():
    bench_host = load_script("bench_host")
    server, seen = await _host(approve)
    async with server:
        terminal = await _signed_on(bench_host, server)
        latencies = await terminal.run(3)
        await terminal.close()
    assert len(latencies) == 3
    assert [r["11"] for r in seen] == ["000002", "000003", "000004"]  # 000001: the sign-on
    assert {(r["t"], r["3"], r["4"], r["41"]) for r in seen} == {
        ("0200", "012000", "000000002000", "BEN00000")
    }
    assert {r["52"] for r in seen} == {terminal.pin_block}  # under the delivered PIN key


async def test_an_answer_with_a_bad_mac_or_for_another_request_fails_the_request():
    bench_host = load_script("bench_host")
    server, _ = await _host(approve, tak=bytes(16))
    async with server:
        terminal = await _signed_on(bench_host, server)
        with pytest.raises(LinkError, match="MAC does not verify"):
            await terminal.request("withdrawal")
        await terminal.close()
    server, _ = await _host(lambda request: approve({**request, "11": "999999"}))
    async with server:
        terminal = await _signed_on(bench_host, server)
        with pytest.raises(LinkError, match="unmatched 0210 STAN 999999"):
            await terminal.request("withdrawal")
        await terminal.close()


def test_an_open_loop_on_uvloop_times_each_request_from_its_due_time():
    # bench_host.run: the terminals on uvloop (as make bench runs them), against the peer
    # above over a real socket; every answered request's times in order, its STAN its own.
    bench_host = load_script("bench_host")

    async def main() -> tuple[str, Any, list[Message]]:
        server, seen = await _host(approve)
        async with server:
            terminal = await _signed_on(bench_host, server)
            loop_kind = type(asyncio.get_running_loop()).__module__
            run = await bench_host.open_loop([terminal], rate=50, seconds=0.1)
            await terminal.close()
        return loop_kind, run, seen

    loop_kind, run, seen = bench_host.run(main())
    assert loop_kind.startswith("uvloop")
    assert len(run.latencies) == len(run.samples) == 5 and run.shed == 0
    assert [s.key[1] for s in run.samples] == [r["11"] for r in seen]
    for sample, latency in zip(run.samples, run.latencies, strict=True):
        # (an event loop may run a timer up to its clock resolution early: 1 ms)
        assert sample.due - 0.002 < sample.started <= sample.sent <= sample.arrived <= sample.done
        assert latency == sample.done - sample.due
    assert run.lags() == [s.sent - s.due for s in run.samples]
