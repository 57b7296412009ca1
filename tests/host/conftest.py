"""Fixtures for the host's tests: an authorization service on a seeded database (SQLite and
PostgreSQL), an adjustable clock, and a builder of card requests with real PIN blocks."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from host.bank.pins import PinVerifier
from host.bank.services import AuthorizationService, CardRequest
from host.config import HostConfig
from host.db import create_engine_for, session_factory
from host.link.reversals import AdviceData
from protocol.messages import AccountType, TransactionType
from protocol.pinblock import encrypt_format0

ALICE = "4000001234567899"
BOB = "4000009876543219"
CHARLIE = "4000005555555557"
EXPIRED = "4000001111222238"
STOLEN = "4000009999999991"
PINS = {ALICE: "1234", BOB: "5678", CHARLIE: "9012", EXPIRED: "9012", STOLEN: "9012"}
ALICE_CHECKING, ALICE_SAVINGS = "1000-0001-0001", "1000-0001-0002"
BOB_CHECKING = "1000-0002-0001"
CHARLIE_CHECKING = "1000-0003-0001"
# A fixed working PIN key (TDES, double length) standing in for the TPK the link layer
# issues at sign-on; the host has no key of its own, so every request carries this one.
TEST_TPK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def _tomorrow_noon() -> dt.datetime:
    # After the seed's opening entries (written at the real time), at a fixed time of day.
    today = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime(today.year, today.month, today.day, 12, 0, tzinfo=dt.UTC)


@dataclass
class Clock:
    now: dt.datetime = field(default_factory=_tomorrow_noon)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class CountingPins(PinVerifier):
    """The real verifier, counting how often bcrypt ran."""

    def __init__(self, config: HostConfig) -> None:
        super().__init__(pepper=config.pin_pepper, secret_key=config.secret_key)
        self.bcrypt_runs = 0

    def verify(self, pin_block: bytes, pan: str, key: bytes, fmt: int, pin_hash: str) -> bool:
        self.bcrypt_runs += 1
        return super().verify(pin_block, pan, key, fmt, pin_hash)


@dataclass
class Requests:
    """Builds card requests as the link layer would, with fresh STANs and the terminal's
    working PIN key (``key``) in ``CardRequest.pin_key``."""

    key: bytes = TEST_TPK
    terminal_id: str = "ATM00001"
    stans: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def block(self, pan: str, pin: str | None = None) -> bytes:
        return encrypt_format0(pin or PINS[pan], pan, self.key)

    def make(
        self,
        transaction: TransactionType,
        pan: str = ALICE,
        amount: int = 0,
        *,
        pin: str | None = None,
        from_account: AccountType = AccountType.DEFAULT,
        to_account: AccountType = AccountType.DEFAULT,
        terminal_id: str | None = None,
        stan: str | None = None,
        transmission_time: str = "1128120000",
        to_account_number: str | None = None,
        new_pin: str | None = None,
        pin_block: bytes | None = None,
        without_pin_key: bool = False,
    ) -> CardRequest:
        return CardRequest(
            mti_class="0100" if transaction is TransactionType.BALANCE_INQUIRY else "0200",
            terminal_id=terminal_id or self.terminal_id,
            stan=stan or f"{next(self.stans):06d}",
            transmission_time=transmission_time,
            pan=pan,
            transaction=transaction,
            from_account=from_account,
            to_account=to_account,
            amount_cents=amount,
            pin_block=pin_block if pin_block is not None else self.block(pan, pin),
            to_account_number=to_account_number,
            new_pin_block=self.block(pan, new_pin) if new_pin else None,
            pin_key=None if without_pin_key else self.key,
            pin_format=0,
        )

    def withdrawal(self, amount: int, pan: str = ALICE, **kw: object) -> CardRequest:
        return self.make(TransactionType.WITHDRAWAL, pan, amount, **kw)  # type: ignore[arg-type]

    def balance(self, pan: str = ALICE, **kw: object) -> CardRequest:
        return self.make(TransactionType.BALANCE_INQUIRY, pan, **kw)  # type: ignore[arg-type]


def reversal_advice(
    original: CardRequest,
    stan: str,
    transmission_time: str,
    *,
    dispensed_cents: int = 0,
    reason: str = "4000",
) -> AdviceData:
    """The reversal advice (0420) a terminal sends for ``original`` under its own key
    (``stan``, ``transmission_time``), as the link layer parses it: a full reversal unless
    ``dispensed_cents`` were paid out; ``reason`` DE 25's code (4000: customer cancellation)."""
    return AdviceData(
        terminal_id=original.terminal_id,
        stan=stan,
        transmission_time=transmission_time,
        original_mti=original.mti_class,
        original_stan=original.stan,
        original_time=original.transmission_time,
        processing_code=f"{original.transaction}{original.from_account}{original.to_account}",
        amount_cents=original.amount_cents,
        dispensed_cents=dispensed_cents,
        reason=reason,
    )


@dataclass
class ServiceRig:
    service: AuthorizationService
    pins: CountingPins
    clock: Clock
    requests: Requests
    config: HostConfig

    def balance_of(self, number: str) -> int:
        from sqlalchemy import select

        from host.bank.models import Account

        with self.service._sessions() as session:
            account = session.scalar(select(Account).where(Account.number == number))
            assert account is not None
            return account.balance_cents


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rig(seeded_config: HostConfig, clock: Clock) -> Iterator[ServiceRig]:
    engine = create_engine_for(seeded_config.database_url)
    pins = CountingPins(seeded_config)
    service = AuthorizationService(session_factory(engine), seeded_config, clock, pins=pins)
    yield ServiceRig(service, pins, clock, Requests(TEST_TPK), seeded_config)
    pins.close()
    engine.dispose()
