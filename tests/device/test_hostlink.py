"""HostLink against the real host over TCP: sign-on with key exchange into the (simulated) PIN
pad, MAC'd requests, timeouts and late approvals reversed by the link itself, the queue drained
before any new financial request, echo when idle, reconnect after the host comes back."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import select

from device.config import DeviceConfig
from device.hostlink import HostLink, LinkTiming, ReversalReason
from drivers.simulated import SimulatedPinPad
from host.bank.ledger import check_ledger
from host.bank.models import Posting
from host.link.models import ReversalAdvice
from protocol.errors import LinkTimeout, LinkUnavailable
from protocol.messages import Message, format_amount
from protocol.stan import StanGenerator
from tests.host.link_helpers import ALICE_CHECKING, ALICE_PAN, ALICE_TRACK, start_host


class Recorder:
    """The link's tap: keeps every message and wakes waiters on the ones they want."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Message]] = []
        self._waiters: list[tuple[str, str, asyncio.Future[Message]]] = []

    def __call__(self, direction: str, message: Message) -> None:
        self.messages.append((direction, dict(message)))
        for waiter in list(self._waiters):
            if waiter[0] == direction and waiter[1] == message["t"] and not waiter[2].done():
                waiter[2].set_result(message)
                self._waiters.remove(waiter)

    def expect(self, direction: str, mti: str) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters.append((direction, mti, future))
        return future

    def mtis(self, direction: str) -> list[str]:
        return [m["t"] for d, m in self.messages if d == direction]


@pytest.fixture
async def host(host_config):
    host = await start_host(host_config)
    yield host
    with host.sessions() as session:
        assert check_ledger(session) == []
    await host.close()


@pytest.fixture
def device(tmp_path, host):
    def make(**overrides) -> tuple[HostLink, SimulatedPinPad, Recorder]:
        config = DeviceConfig(
            port=host.server.port,
            state_dir=tmp_path / "device",
            terminal_id="ATM00003",
            response_timeout=overrides.pop("response_timeout", 5.0),
            reconnect_delay=0.05,
        )
        pad = SimulatedPinPad(config.master_key)
        tap = Recorder()
        timing = overrides.pop("timing", LinkTiming(echo_interval=3600, backoff_initial=0.05))
        link = HostLink(
            config, StanGenerator(), tap=tap, on_pin_key=pad.load_working_key, timing=timing
        )
        return link, pad, tap

    return make


async def _withdrawal(link: HostLink, pad: SimulatedPinPad, cents: int) -> Message:
    pad.type_digits("1234")
    pad.press("ENTER")
    block = await pad.read_pin(ALICE_PAN, 5)
    message = link.base_message("0200")
    message.update(
        {
            "2": ALICE_PAN,
            "3": "012000",
            "4": format_amount(cents),
            "35": ALICE_TRACK,
            "49": "840",
            "52": block.ciphertext.hex().upper(),
        }
    )
    return message


async def test_sign_on_loads_the_pin_key_and_withdrawal_is_approved(host, device):
    link, pad, tap = device()
    try:
        assert await link.ensure_online()
        response = await link.request(await _withdrawal(link, pad, 10_000))
    finally:
        await link.close()
    assert response["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 515_000
    assert tap.mtis("send")[:2] == ["0800", "0200"]


async def test_timeout_and_late_approval_are_reversed_by_the_link(host, device):
    link, pad, tap = device(
        response_timeout=1.0, timing=LinkTiming(echo_interval=3600, backoff_initial=60)
    )
    gate = threading.Event()
    try:
        assert await link.ensure_online()
        request = await _withdrawal(link, pad, 10_000)
        host.executor.submit(gate.wait)  # the host's only worker is busy: the answer is late
        late = tap.expect("recv", "0210")
        with pytest.raises(LinkTimeout):
            await link.request(request)
        assert link.pending_reversals() == 1
        assert link.reversals[0].reason == ReversalReason.TIMEOUT
        assert "2" not in link.reversals[0].original  # no PAN in the queue
        gate.set()
        response = await asyncio.wait_for(late, 10)
        assert response["39"] == "00" and response["11"] == request["11"]
        assert await link.drain()
    finally:
        gate.set()
        await link.close()
    assert link.pending_reversals() == 0
    assert host.balance(ALICE_CHECKING) == 525_000
    with host.sessions() as session:
        kinds = sorted(
            p.kind for p in session.scalars(select(Posting).where(Posting.stan.is_not(None)))
        )
        applied = session.scalars(
            select(ReversalAdvice).where(ReversalAdvice.status == "applied")
        ).all()
    assert kinds == ["withdrawal", "withdrawal-reversal"]
    assert len(applied) == 1


async def test_queue_is_drained_before_a_new_financial_request(host, device):
    link, pad, tap = device()
    try:
        assert await link.ensure_online()
        original = await _withdrawal(link, pad, 10_000)
        assert (await link.request(original))["39"] == "00"
        link.queue_reversal(original, 4_000, ReversalReason.PARTIAL)
        second = await _withdrawal(link, pad, 2_000)
        assert (await link.request(second))["39"] == "00"
    finally:
        await link.close()
    sent = tap.mtis("send")
    assert sent.index("0420") < len(sent) - 1 and sent[-1] == "0200"
    assert link.pending_reversals() == 0
    assert host.balance(ALICE_CHECKING) == 525_000 - 4_000 - 2_000


async def test_financial_request_refused_while_the_host_is_down(tmp_path):
    config = DeviceConfig(port=1, state_dir=tmp_path, response_timeout=1.0)
    link = HostLink(config, StanGenerator(), timing=LinkTiming(backoff_initial=60))
    try:
        assert not await link.ensure_online()
        with pytest.raises(LinkUnavailable):
            await link.request({"t": "0200", "3": "012000", "11": "000001", "41": "ATM00001"})
    finally:
        await link.close()
    assert link.pending_reversals() == 0  # nothing was sent, nothing to reverse


async def test_echo_when_idle(host, device):
    link, _, tap = device(timing=LinkTiming(echo_interval=0.2, backoff_initial=0.05))
    try:
        assert await link.ensure_online()
        echo = tap.expect("recv", "0810")
        response = await asyncio.wait_for(echo, 10)
    finally:
        await link.close()
    assert response["70"] == "301" and response["39"] == "00"


async def test_reconnects_signs_on_and_drains_after_the_host_returns(host_config, tmp_path):
    host = await start_host(host_config)
    port = host.server.port
    config = DeviceConfig(port=port, state_dir=tmp_path, response_timeout=2.0)
    pad = SimulatedPinPad(config.master_key)
    tap = Recorder()
    link = HostLink(
        config,
        StanGenerator(),
        tap=tap,
        on_pin_key=pad.load_working_key,
        timing=LinkTiming(echo_interval=3600, backoff_initial=0.05, backoff_max=0.2),
    )
    try:
        assert await link.ensure_online()
        original = await _withdrawal(link, pad, 10_000)
        assert (await link.request(original))["39"] == "00"
        await host.close()
        link.queue_reversal(original, 0, ReversalReason.CASH_NOT_TAKEN)
        acknowledged = tap.expect("recv", "0430")
        host = await start_host(host_config)
        await host.server.close()
        await host.server.start("127.0.0.1", port)
        await asyncio.wait_for(acknowledged, 20)
        assert await link.drain()  # waits for the keeper's drain to finish
        assert link.pending_reversals() == 0
        assert tap.mtis("send").count("0420") == 1
        assert tap.mtis("send").count("0800") >= 2  # signed on again by itself
    finally:
        await link.close()
        await host.close()
    assert host.balance(ALICE_CHECKING) == 525_000


async def test_key_change_loads_new_keys_and_requests_keep_working(host, device):
    link, pad, tap = device()
    loaded: list[str] = []
    load = pad.load_working_key

    async def spy(encrypted: bytes, kcv: str) -> None:
        loaded.append(kcv)
        await load(encrypted, kcv)

    link._on_pin_key = spy
    try:
        assert await link.ensure_online()
        assert await link.change_keys()
        assert await link.echo()
        response = await link.request(await _withdrawal(link, pad, 2_000))
    finally:
        await link.close()
    assert response["39"] == "00"
    assert len(loaded) == 2 and loaded[0] != loaded[1]
    assert [m["70"] for m in (m for d, m in tap.messages if d == "send") if "70" in m] == [
        "001",
        "161",
        "301",
    ]
