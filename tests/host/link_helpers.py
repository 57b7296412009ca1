"""Helpers for the link tests: a running host on a fresh SQLite file and a test terminal that
speaks the MAC'd link with our own ``protocol`` package (the independent client does not)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import ssl

from host.app import Host
from host.config import HostConfig
from host.link.config import DEVELOPMENT_TMK, LinkConfig
from protocol.keyblock import DEFAULT_KEY_BLOCK, KeyBlockFormat, open_key_delivery
from protocol.link import LinkClient, MessageTap
from protocol.mac import TerminalCodec
from protocol.messages import Message, format_amount, format_transmission_time
from protocol.pinblock import encrypt_format0, encrypt_format4
from protocol.security import KeyScheme, WorkingKeys

ALICE_PAN = "4000001234567899"
ALICE_TRACK = "4000001234567899=30121010000000000000"
ALICE_CHECKING = "1000-0001-0001"
BOB_PAN = "4000009876543219"
BOB_TRACK = "4000009876543219=30121010000000000000"
BOB_CHECKING = "1000-0002-0001"

_stans = itertools.count(1)
_seconds = itertools.count(0)


def next_stan() -> str:
    return f"{next(_stans) % 999_999 + 1:06d}"


def next_time() -> str:
    """Distinct DE 7 values, so two tests' requests never look like repeats."""
    moment = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=next(_seconds))
    return format_transmission_time(moment)


async def start_host(
    config: HostConfig,
    link_config: LinkConfig | None = None,
    tap: MessageTap | None = None,
) -> Host:
    if link_config is not None:
        config = dataclasses.replace(config, link=link_config)
    host = Host(config, tap=tap)
    await asyncio.to_thread(host.upgrade_and_seed)
    await host.start("127.0.0.1", 0)
    return host


class TestTerminal:
    """A terminal on the real TCP link: signs on, MACs, builds requests."""

    __test__ = False

    def __init__(
        self,
        port: int,
        terminal_id: str = "ATM00002",
        scheme: KeyScheme = KeyScheme.TDES,
        tmk: bytes = DEVELOPMENT_TMK,
        timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
        key_block: KeyBlockFormat = DEFAULT_KEY_BLOCK,
    ) -> None:
        self.terminal_id = terminal_id
        self.tmk = tmk
        self.codec = TerminalCodec(scheme, tmk)
        self.unmatched: list[Message] = []
        # Requests the host sends unasked (0800/901), in arrival order.
        self.from_host: asyncio.Queue[Message] = asyncio.Queue()
        self.client = LinkClient(
            "127.0.0.1",
            port,
            response_timeout=timeout,
            codec=self.codec,
            on_unmatched=self.unmatched.append,
            on_request=self.from_host.put_nowait,
            tls=tls,
        )
        self.keys: WorkingKeys | None = None
        self.key_block = key_block

    async def __aenter__(self) -> TestTerminal:
        await self.client.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    def header(self, mti: str, stan: str | None = None, time: str | None = None) -> Message:
        return {
            "t": mti,
            "7": time or next_time(),
            "11": stan or next_stan(),
            "41": self.terminal_id,
            "42": "ATMSIM000000001",
        }

    async def sign_on(self, code: str = "001") -> Message:
        message = self.header("0800")
        message["70"] = code
        message["48"] = self.codec.scheme.value
        response = await self.client.request(message)
        if response["39"] == "00":
            self.keys = open_key_delivery(
                response["48"], self.tmk, self.codec.scheme, self.key_block
            )
            self.codec.set_mac_key(self.keys.tak)
        return response

    def pin_block(self, pin: str, pan: str) -> str:
        assert self.keys is not None
        if self.keys.scheme is KeyScheme.TDES:
            return encrypt_format0(pin, pan, self.keys.tpk).hex().upper()
        return encrypt_format4(pin, pan, self.keys.tpk).hex().upper()

    def withdrawal(
        self, cents: int, pan: str = ALICE_PAN, track: str = ALICE_TRACK, pin: str = "1234"
    ) -> Message:
        message = self.header("0200")
        message.update(
            {
                "2": pan,
                "3": "012000",
                "4": format_amount(cents),
                "35": track,
                "49": "840",
                "52": self.pin_block(pin, pan),
            }
        )
        return message

    def balance_inquiry(
        self, pan: str = ALICE_PAN, track: str = ALICE_TRACK, pin: str = "1234"
    ) -> Message:
        message = self.header("0100")
        message.update(
            {
                "2": pan,
                "3": "302000",
                "4": format_amount(0),
                "35": track,
                "49": "840",
                "52": self.pin_block(pin, pan),
            }
        )
        return message

    def reversal(
        self,
        original: Message,
        dispensed: int = 0,
        *,
        repeat: bool = False,
        time: str | None = None,
    ) -> Message:
        message = self.header("0421" if repeat else "0420", original["11"], time)
        message.update({k: original[k] for k in ("3", "4", "49")})
        message["90"] = original["t"] + original["11"] + original["7"] + "0" * 22
        message["60"] = "4004" if dispensed else "4018"
        if dispensed:
            message["95"] = f"{dispensed:012d}{dispensed:012d}C00000000C00000000"
        return message

    async def request(self, message: Message) -> Message:
        return await self.client.request(message)
