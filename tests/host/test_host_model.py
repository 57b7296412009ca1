"""A property test of the host (issue 16): hypothesis drives random sequences of withdrawals,
transfers, balance inquiries, wrong PINs, repeated requests and reversal advices through the
authorization and reversal services, on SQLite and on PostgreSQL, and checks every response
code and DE 54 ledger balance against a small model of the rules (DESIGN section 4), then the
balances, the number of postings and the ledger check against the database.

Each request goes one of the two ways the link server uses, chosen at random: ``authorize``
with bcrypt inside (callers without an event loop), or ``authorize_unless_pin`` and, when it
answers ``PinFirst``, bcrypt ahead on the PIN pool and ``authorize`` (the link server's way).
Both must give the same answers. Each example starts a day later than the previous one (the
database is kept between examples: the model starts from what it reads there).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from host.bank.ledger import check_ledger
from host.bank.models import Account, Card, Posting
from host.bank.services import CardRequest, Outcome, PinFirst
from host.link.reversals import ReversalService
from protocol.messages import AccountType, TransactionType
from protocol.response_codes import ResponseCode as RC
from tests.host.conftest import (
    ALICE,
    ALICE_CHECKING,
    ALICE_SAVINGS,
    BOB,
    BOB_CHECKING,
    ServiceRig,
    reversal_advice,
)

ACCOUNTS = (ALICE_CHECKING, ALICE_SAVINGS, BOB_CHECKING)
CHECKING_OF = {ALICE: ALICE_CHECKING, BOB: BOB_CHECKING}
# Amounts around the seed's balances and the daily limits (50,000 withdrawn, 250,000
# transferred), with the invalid ones (0) and big ones.
AMOUNTS = st.one_of(
    st.sampled_from([0, 1, 2_000, 20_000, 40_000, 50_000, 85_075, 200_000, 10**9 + 1]),
    st.integers(1, 300_000),
)
CARDS = st.sampled_from([ALICE, BOB])

OPERATIONS = st.one_of(
    st.tuples(st.just("withdraw"), CARDS, AMOUNTS, st.booleans()),
    st.tuples(st.just("transfer"), CARDS, AMOUNTS, st.booleans()),
    st.tuples(st.just("inquiry"), CARDS, st.just(0), st.booleans()),
    st.tuples(st.just("wrong-pin"), CARDS, AMOUNTS, st.booleans()),
    st.tuples(st.just("repeat"), st.integers(0, 50), st.just(0), st.booleans()),
    st.tuples(st.just("reverse"), st.integers(0, 50), st.just(0), st.booleans()),
)


@dataclass
class Sent:
    request: CardRequest
    outcome: Outcome
    # (account debited, account credited, amount, limit kind) when approved and money moved.
    moved: tuple[str, str, int, str] | None = None
    reversed: bool = False


@dataclass
class Model:
    balances: dict[str, int]
    failed: dict[str, int]
    withdrawn: dict[str, int] = field(default_factory=dict)
    transferred: dict[str, int] = field(default_factory=dict)
    locked: set[str] = field(default_factory=set)
    postings: int = 0

    def expect(
        self, kind: str, pan: str, amount: int, limits: tuple[int, int]
    ) -> tuple[RC, tuple[str, str, int, str] | None]:
        """The response code the rules give, and the money that moves."""
        if pan in self.locked:
            return RC.PIN_TRIES_EXCEEDED, None
        if kind == "wrong-pin":
            self.failed[pan] += 1
            if self.failed[pan] >= 3:
                self.failed[pan] = 0
                self.locked.add(pan)
                return RC.PIN_TRIES_EXCEEDED, None
            return RC.INCORRECT_PIN, None
        self.failed[pan] = 0
        source = CHECKING_OF[pan]
        if kind == "inquiry":
            return RC.APPROVED, None
        if amount <= 0 or amount > 10**9:
            return RC.INVALID_AMOUNT, None
        used, limit = (
            (self.withdrawn, limits[0]) if kind == "withdraw" else (self.transferred, limits[1])
        )
        if used.get(source, 0) + amount > limit:
            return RC.EXCEEDS_WITHDRAWAL_LIMIT, None
        if self.balances[source] < amount:
            return RC.INSUFFICIENT_FUNDS, None
        target = "cash" if kind == "withdraw" else _transfer_target(pan)
        return RC.APPROVED, (source, target, amount, kind)

    def apply(self, moved: tuple[str, str, int, str], sign: int) -> None:
        source, target, amount, kind = moved
        self.balances[source] -= sign * amount
        if target in self.balances:
            self.balances[target] += sign * amount
        used = self.withdrawn if kind == "withdraw" else self.transferred
        used[source] = used.get(source, 0) + sign * amount
        self.postings += 1


def _transfer_target(pan: str) -> str:
    # Alice moves money from her checking to her savings; Bob pays Alice by account number.
    return ALICE_SAVINGS if pan == ALICE else ALICE_CHECKING


class Driver:
    """Sends requests the two ways the host has, with fresh keys per request."""

    def __init__(self, rig: ServiceRig, day: int) -> None:
        self.rig = rig
        self.reversals = ReversalService(rig.service._sessions, rig.clock)
        self.day = day
        self.count = 0
        self.executor = concurrent.futures.ThreadPoolExecutor(1)

    def key(self) -> tuple[str, str]:
        self.count += 1
        return (
            f"{(self.day * 1000 + self.count) % 999_999 + 1:06d}",
            f"{self.day:04d}{self.count:06d}",
        )

    def request(self, kind: str, pan: str, amount: int) -> CardRequest:
        stan, time = self.key()
        make = self.rig.requests.make
        pin = "0000" if kind == "wrong-pin" else None
        common = {"stan": stan, "transmission_time": time, "pin": pin}
        if kind == "transfer" and pan == ALICE:
            return make(
                TransactionType.TRANSFER,
                pan,
                amount,
                from_account=AccountType.CHECKING,
                to_account=AccountType.SAVINGS,
                **common,  # type: ignore[arg-type]
            )
        if kind == "transfer":
            return make(
                TransactionType.TRANSFER,
                pan,
                amount,
                from_account=AccountType.CHECKING,
                to_account_number=ALICE_CHECKING,
                **common,  # type: ignore[arg-type]
            )
        if kind == "inquiry":
            return make(TransactionType.BALANCE_INQUIRY, pan, **common)  # type: ignore[arg-type]
        return make(TransactionType.WITHDRAWAL, pan, amount, **common)  # type: ignore[arg-type]

    def send(self, request: CardRequest, ahead: bool) -> Outcome:
        service = self.rig.service
        if not ahead:
            return service.authorize(request)
        first = service.authorize_unless_pin(request)
        if isinstance(first, Outcome):
            return first
        assert isinstance(first, PinFirst)
        check = asyncio.run(service.verify_pin_ahead(request, self.executor, first.pin_hash))
        return service.authorize(dataclasses.replace(request, pin_check=check))

    def reverse(self, sent: Sent) -> RC:
        stan, time = self.key()
        return self.reversals.handle(reversal_advice(sent.request, stan, time)).response_code


def _read_state(rig: ServiceRig) -> tuple[dict[str, int], dict[str, int], int]:
    with rig.service._sessions() as session:
        balances = {
            a.number: a.balance_cents
            for a in session.scalars(select(Account).where(Account.number.in_(ACCOUNTS)))
        }
        failed = {}
        for card in session.scalars(select(Card).where(Card.pan.in_([ALICE, BOB]))):
            # A lockout of an earlier example has expired (a day has passed): it starts over.
            failed[card.pan] = 0 if card.locked_until is not None else card.failed_pin_attempts
        postings = session.scalar(select(func.count()).select_from(Posting)) or 0
    return balances, failed, postings


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=14))
def test_random_request_sequences_follow_the_rules(
    rig: ServiceRig, operations: list[tuple[str, object, int, bool]]
) -> None:
    rig.clock.advance(86_400)  # a new day: fresh daily limits, earlier lockouts over
    day = int(rig.clock.now.timestamp() // 86_400) % 10_000
    balances, failed, postings_before = _read_state(rig)
    model = Model(balances, failed)
    limits = (rig.config.daily_withdrawal_limit, rig.config.daily_transfer_limit)
    driver = Driver(rig, day)
    sent: list[Sent] = []
    try:
        for kind, who, amount, ahead in operations:
            if kind == "repeat":
                if not sent:
                    continue
                earlier = sent[int(str(who)) % len(sent)]
                again = driver.send(earlier.request, ahead)
                # Answered from the record: the same code and balances, nothing applied.
                assert again.response_code is earlier.outcome.response_code
                assert again.balances == earlier.outcome.balances
                assert again.rrn == earlier.outcome.rrn
                continue
            if kind == "reverse":
                if not sent:
                    continue
                earlier = sent[int(str(who)) % len(sent)]
                assert driver.reverse(earlier) is RC.APPROVED
                if earlier.moved is not None and not earlier.reversed:
                    model.apply(earlier.moved, -1)
                    earlier.reversed = True
                continue
            pan = str(who)
            request = driver.request(kind, pan, amount)
            code, moved = model.expect(kind, pan, amount, limits)
            outcome = driver.send(request, ahead)
            assert outcome.response_code is code, (kind, pan, amount, outcome)
            if moved is not None:
                model.apply(moved, +1)
            if code is RC.APPROVED:
                ledger = {b.amount_type: b.cents for b in outcome.balances}
                assert ledger["01"] == model.balances[CHECKING_OF[pan]]
                assert ledger["02"] == model.balances[CHECKING_OF[pan]]  # no holds here
            sent.append(Sent(request, outcome, moved))
    finally:
        driver.executor.shutdown()
    balances_after, _, postings_after = _read_state(rig)
    assert balances_after == model.balances
    assert postings_after - postings_before == model.postings
    with rig.service._sessions() as session:
        assert check_ledger(session) == []
