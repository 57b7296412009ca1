"""Duplicates and reversals over the real link: applied at most once, partial reversals credit
exactly the undispensed part and give it back to the daily limit, unknown/declined/already
reversed originals are acknowledged and change nothing, a reversal that overtakes its original
still wins."""

import pytest
from sqlalchemy import select

from host.bank.ledger import check_ledger
from host.bank.models import Posting
from host.link.models import ReversalAdvice
from tests.host.link_helpers import (
    ALICE_CHECKING,
    BOB_CHECKING,
    BOB_PAN,
    BOB_TRACK,
    TestTerminal,
    next_time,
    start_host,
)


@pytest.fixture
async def terminal(host_config):
    host = await start_host(host_config)
    async with TestTerminal(host.server.port) as terminal:
        await terminal.sign_on()
        terminal.host = host  # type: ignore[attr-defined]
        yield terminal
    with host.sessions() as session:
        assert check_ledger(session) == []
    await host.close()


def _postings(terminal, kind: str) -> list[Posting]:
    with terminal.host.sessions() as session:
        return list(session.scalars(select(Posting).where(Posting.kind == kind)))


async def test_repeated_request_returns_the_stored_response(terminal):
    request = terminal.withdrawal(10_000)
    first = await terminal.request(request)
    second = await terminal.request(dict(request))
    assert first["39"] == second["39"] == "00"
    assert first["37"] == second["37"] and first["38"] == second["38"]
    assert terminal.host.balance(ALICE_CHECKING) == 515_000


async def test_full_reversal_is_applied_once(terminal):
    original = terminal.withdrawal(10_000)
    assert (await terminal.request(original))["39"] == "00"
    advice = terminal.reversal(original)
    response = await terminal.request(advice)
    assert response["t"] == "0430" and response["39"] == "00"
    assert response["90"] == advice["90"]
    assert terminal.host.balance(ALICE_CHECKING) == 525_000
    # The repeat (0421, same STAN and DE 7) and a fresh advice for the same original.
    repeat = terminal.reversal(original, repeat=True, time=advice["7"])
    assert (await terminal.request(repeat))["39"] == "00"
    assert (await terminal.request(terminal.reversal(original)))["39"] == "00"
    assert terminal.host.balance(ALICE_CHECKING) == 525_000
    (reversal,) = _postings(terminal, "withdrawal-reversal")
    with terminal.host.sessions() as session:
        statuses = [a.status for a in session.scalars(select(ReversalAdvice).order_by("id"))]
    assert statuses == ["applied", "already-reversed"]
    assert reversal.reverses_id is not None


async def test_partial_reversal_credits_the_undispensed_part_and_the_limit(terminal):
    # Daily limit 50000: withdraw 50000, 20000 of it dispensed -> 30000 back to the limit.
    original = terminal.withdrawal(50_000)
    assert (await terminal.request(original))["39"] == "00"
    assert (await terminal.request(terminal.withdrawal(2_000)))["39"] == "61"
    advice = terminal.reversal(original, dispensed=20_000)
    assert (await terminal.request(advice))["39"] == "00"
    assert terminal.host.balance(ALICE_CHECKING) == 525_000 - 20_000
    assert (await terminal.request(terminal.withdrawal(30_000)))["39"] == "00"
    assert (await terminal.request(terminal.withdrawal(2_000)))["39"] == "61"
    (reversal,) = _postings(terminal, "withdrawal-reversal")
    assert reversal.description.endswith(original["11"])


async def test_fully_dispensed_or_overstated_dispense_changes_nothing(terminal):
    original = terminal.withdrawal(4_000)
    await terminal.request(original)
    assert (await terminal.request(terminal.reversal(original, dispensed=4_000)))["39"] == "00"
    assert (await terminal.request(terminal.reversal(original, dispensed=9_000)))["39"] == "13"
    assert terminal.host.balance(ALICE_CHECKING) == 521_000


async def test_reversal_of_unknown_or_declined_original_changes_nothing(terminal):
    unknown = terminal.withdrawal(10_000)  # never sent
    assert (await terminal.request(terminal.reversal(unknown)))["39"] == "00"
    declined = terminal.withdrawal(500_000, pan=BOB_PAN, track=BOB_TRACK, pin="5678")
    assert (await terminal.request(declined))["39"] in ("51", "61")
    assert (await terminal.request(terminal.reversal(declined)))["39"] == "00"
    assert terminal.host.balance(ALICE_CHECKING) == 525_000
    assert terminal.host.balance(BOB_CHECKING) == 85_075
    assert _postings(terminal, "withdrawal-reversal") == []


async def test_reversal_that_overtakes_its_original_still_reverses_it(terminal):
    original = terminal.withdrawal(10_000)
    assert (await terminal.request(terminal.reversal(original)))["39"] == "00"
    # The original arrives afterwards (it was stuck in the network): applied, then reversed.
    assert (await terminal.request(original))["39"] == "00"
    assert terminal.host.balance(ALICE_CHECKING) == 525_000
    assert len(_postings(terminal, "withdrawal-reversal")) == 1


async def test_malformed_advice_gets_format_error(terminal):
    original = terminal.withdrawal(1_000)
    advice = terminal.reversal(original)
    advice["90"] = "X" * 42
    response = await terminal.request(advice)
    assert response["39"] == "30"
    advice = terminal.reversal(original, time=next_time())
    del advice["4"]
    assert (await terminal.request(advice))["39"] == "30"


async def test_database_fault_answers_96_and_the_server_keeps_serving(terminal):
    """A real fault: the advice table is gone. The advice gets 96 (the terminal repeats it
    later); the connection and the server stay up."""
    original = terminal.withdrawal(1_000)
    assert (await terminal.request(original))["39"] == "00"
    with terminal.host.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE link_reversal_advices")
    assert (await terminal.request(terminal.reversal(original)))["39"] == "96"
    echo = terminal.header("0800")
    echo["70"] = "301"
    assert (await terminal.request(echo))["39"] == "00"
    assert terminal.host.balance(ALICE_CHECKING) == 524_000
