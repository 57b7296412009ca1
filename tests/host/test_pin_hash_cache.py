"""The hot path's head start on bcrypt (host.bank.pins.PinHashCache) over the real link on
PostgreSQL: a card whose PIN this host verified before gets its next new-session request
verified at once, one database round trip instead of two; a PIN changed meanwhile is still
checked against the current hash (the stale one costs one bcrypt, never a wrong answer); the
same card session needs no bcrypt; a locked card costs no bcrypt per try."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from host.app import Host
from host.config import HostConfig
from protocol.messages import Message
from protocol.security import KeyScheme
from tests.host.link_helpers import ALICE_PAN, BOB_PAN, BOB_TRACK, TestTerminal, start_host


@pytest.fixture
async def pg_host(postgres_url: str, tmp_path) -> AsyncIterator[Host]:
    config = HostConfig.from_env(
        {
            "DATABASE_URL": postgres_url,
            "BCRYPT_ROUNDS": "4",
            "ENVIRONMENT": "testing",
            "TERMINAL_KEY_SCHEMES": "ATM00002=A",  # format 4 PIN blocks: random fill
            "STATEMENT_OUTPUT_DIR": str(tmp_path / "statements"),
        }
    )
    host = await start_host(config)
    assert host.fast is not None  # PostgreSQL: the hot path
    yield host
    await host.close()


class Counts:
    """Database round trips of the hot path and bcrypt checks, since the last ``step``."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.at = self.now()

    def now(self) -> tuple[int, int]:
        assert self.host.fast is not None
        return self.host.fast.round_trips, self.host.service.pins.verifications

    def step(self) -> tuple[int, int]:
        now = self.now()
        trips, checks = now[0] - self.at[0], now[1] - self.at[1]
        self.at = now
        return trips, checks


def pin_change(terminal: TestTerminal, old: str, new: str, pan: str = ALICE_PAN) -> Message:
    message = terminal.balance_inquiry(pan=pan, pin=old)
    message.update({"t": "0200", "3": "700000", "48": terminal.pin_block(new, pan)})
    return message


async def test_a_known_card_starts_bcrypt_without_asking_the_database(pg_host: Host) -> None:
    async with TestTerminal(pg_host.server.port, scheme=KeyScheme.AES) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        counts = Counts(pg_host)
        # Format 4 blocks carry random fill: every inquiry is a new card session.
        assert (await terminal.request(terminal.balance_inquiry()))["39"] == "00"
        assert counts.step() == (2, 1)  # the hash asked for, bcrypt, the authorization
        assert (await terminal.request(terminal.balance_inquiry()))["39"] == "00"
        assert counts.step() == (1, 1)  # bcrypt at once, the authorization
        same_session = terminal.balance_inquiry()
        assert (await terminal.request(same_session))["39"] == "00"
        counts.step()
        again = terminal.balance_inquiry()
        again["52"] = same_session["52"]  # the block of the session just opened
        assert (await terminal.request(again))["39"] == "00"
        assert counts.step() == (1, 0)  # the open session: no bcrypt, one call
        # A wrong PIN is still a wrong PIN, counted as one.
        assert (await terminal.request(terminal.balance_inquiry(pin="9999")))["39"] == "55"
        assert counts.step() == (1, 1)


async def test_a_pin_changed_meanwhile_is_checked_against_the_new_hash(pg_host: Host) -> None:
    async with TestTerminal(pg_host.server.port, scheme=KeyScheme.AES) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        assert (await terminal.request(terminal.balance_inquiry()))["39"] == "00"
        # The PIN change goes the ORM way and replaces the hash this host has seen.
        assert (await terminal.request(pin_change(terminal, "1234", "2580")))["39"] == "00"
        counts = Counts(pg_host)
        assert (await terminal.request(terminal.balance_inquiry(pin="2580")))["39"] == "00"
        # bcrypt against the old hash (wasted), the call answers with the new one, bcrypt
        # again, the authorization: no failed attempt counted.
        assert counts.step() == (2, 2)
        assert (await terminal.request(terminal.balance_inquiry(pin="1234")))["39"] == "55"
        assert (await terminal.request(terminal.balance_inquiry(pin="2580")))["39"] == "00"
        assert counts.step() == (2, 2)  # both with the new hash at once


async def test_a_locked_card_costs_no_bcrypt_per_try(pg_host: Host) -> None:
    async with TestTerminal(pg_host.server.port, scheme=KeyScheme.AES) as terminal:
        assert (await terminal.sign_on())["39"] == "00"

        def inquiry(pin: str) -> Message:
            return terminal.balance_inquiry(pan=BOB_PAN, track=BOB_TRACK, pin=pin)

        assert (await terminal.request(inquiry("5678")))["39"] == "00"
        codes = [(await terminal.request(inquiry("0000")))["39"] for _ in range(3)]
        assert codes == ["55", "55", "75"]
        counts = Counts(pg_host)
        for pin in ("0000", "5678"):
            assert (await terminal.request(inquiry(pin)))["39"] == "75"
        assert counts.step() == (2, 0)  # one call each, declined before any bcrypt
