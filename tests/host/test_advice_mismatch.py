"""A reversal advice must describe its original: DE 3 and DE 4 are checked against the
original request found by terminal + DE 90. A mismatch is answered with its own code (12 for
DE 3, 13 for DE 4), changes nothing, and a repeat gets the same answer; a correct advice for the
same original is still applied afterwards. Over the real link, on SQLite and PostgreSQL."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from host.bank.ledger import check_ledger
from host.config import HostConfig
from host.link.models import ReversalAdvice
from protocol.messages import format_amount
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal, next_time, start_host


@pytest.fixture
async def terminal(seeded_config: HostConfig) -> AsyncIterator[TestTerminal]:
    host = await start_host(seeded_config)
    async with TestTerminal(host.server.port) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        terminal.host = host  # type: ignore[attr-defined]
        yield terminal
        with host.sessions() as session:
            assert check_ledger(session) == []
    await host.close()


@pytest.mark.parametrize(
    ("field", "value", "code", "status"),
    [
        ("4", format_amount(50_000), "13", "amount-mismatch"),
        ("3", "402010", "12", "processing-code-mismatch"),
    ],
    ids=["DE4", "DE3"],
)
async def test_advice_that_disagrees_with_its_original_moves_nothing(
    terminal: TestTerminal, field: str, value: str, code: str, status: str
) -> None:
    host = terminal.host  # type: ignore[attr-defined]
    original = terminal.withdrawal(10_000)
    assert (await terminal.request(original))["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 515_000

    advice = terminal.reversal(original)
    advice[field] = value
    answer = await terminal.request(advice)
    assert answer["t"] == "0430" and answer["39"] == code
    assert host.balance(ALICE_CHECKING) == 515_000
    repeat = terminal.reversal(original, repeat=True, time=advice["7"])
    repeat[field] = value
    assert (await terminal.request(repeat))["39"] == code
    assert host.balance(ALICE_CHECKING) == 515_000
    with host.sessions() as session:
        (record,) = session.scalars(select(ReversalAdvice))
        assert record.status == status and record.reversed_cents == 0

    # The right advice for the same original still reverses it.
    good = terminal.reversal(original, time=next_time())
    assert (await terminal.request(good))["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 525_000


async def test_mismatched_advice_that_overtook_its_original_is_not_applied_later(
    terminal: TestTerminal,
) -> None:
    host = terminal.host  # type: ignore[attr-defined]
    original = terminal.withdrawal(10_000)
    advice = terminal.reversal(original)
    advice["4"] = format_amount(90_000)
    assert (await terminal.request(advice))["39"] == "00"  # original unknown: remembered
    assert (await terminal.request(original))["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 515_000
    with host.sessions() as session:
        (record,) = session.scalars(select(ReversalAdvice))
        assert record.status == "amount-mismatch"


async def test_advice_without_processing_code_is_a_format_error(terminal: TestTerminal) -> None:
    original = terminal.withdrawal(1_000)
    assert (await terminal.request(original))["39"] == "00"
    advice = terminal.reversal(original)
    del advice["3"]
    assert (await terminal.request(advice))["39"] == "30"
    assert terminal.host.balance(ALICE_CHECKING) == 524_000  # type: ignore[attr-defined]
