"""Reversing an approved transfer over the real link (0420 full), on SQLite and PostgreSQL:
both balances come back, the ledger check passes, the day's transfer limit is given back,
and the mini-statement names the reversal. For own-account transfers and for transfers to
another customer's account (DE 103)."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from host.bank.ledger import check_ledger
from host.bank.models import Posting
from host.config import HostConfig
from protocol.messages import Message, format_amount
from tests.host.link_helpers import (
    ALICE_CHECKING,
    ALICE_PAN,
    ALICE_TRACK,
    BOB_CHECKING,
    TestTerminal,
    start_host,
)

ALICE_SAVINGS = "1000-0001-0002"


@pytest.fixture
async def terminal(seeded_config: HostConfig) -> AsyncIterator[TestTerminal]:
    host = await start_host(seeded_config)
    async with TestTerminal(host.server.port) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        terminal.host = host  # type: ignore[attr-defined]
        yield terminal
    await host.close()


def transfer(terminal: TestTerminal, cents: int, *, to_number: str | None = None) -> Message:
    message = terminal.header("0200")
    message.update(
        {
            "2": ALICE_PAN,
            # 40 transfer, from checking (20) to savings (10) or to the account of DE 103.
            "3": "402000" if to_number else "402010",
            "4": format_amount(cents),
            "35": ALICE_TRACK,
            "49": "840",
            "52": terminal.pin_block("1234", ALICE_PAN),
        }
    )
    if to_number:
        message["103"] = to_number
    return message


def ledger_problems(terminal: TestTerminal) -> list[str]:
    with terminal.host.sessions() as session:  # type: ignore[attr-defined]
        return [f"{p.what}: {p.detail}" for p in check_ledger(session)]


@pytest.mark.parametrize(
    ("to_number", "target", "target_before"),
    [(None, ALICE_SAVINGS, 1_250_000), (BOB_CHECKING, BOB_CHECKING, 85_075)],
    ids=["own-account", "other-customer"],
)
async def test_reversed_transfer_keeps_the_ledger_whole_and_gives_the_limit_back(
    terminal: TestTerminal, to_number: str | None, target: str, target_before: int
) -> None:
    host = terminal.host  # type: ignore[attr-defined]
    original = transfer(terminal, 200_000, to_number=to_number)
    assert (await terminal.request(original))["39"] == "00"
    assert host.balance(target) == target_before + 200_000
    # Limit 250000 a day: 200000 used, so 100000 more is over it before the reversal.
    assert (await terminal.request(transfer(terminal, 100_000, to_number=to_number)))["39"] == "61"

    ack = await terminal.request(terminal.reversal(original))
    assert ack["t"] == "0430" and ack["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 525_000
    assert host.balance(target) == target_before
    assert ledger_problems(terminal) == []
    with host.sessions() as session:
        (reversal,) = session.scalars(select(Posting).where(Posting.reverses_id.is_not(None)))
        assert reversal.kind == "transfer-reversal"

    # The reversal gave the day's limit back: 100000 now fits.
    assert (await terminal.request(transfer(terminal, 100_000, to_number=to_number)))["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 425_000
    assert ledger_problems(terminal) == []

    inquiry = await terminal.request(terminal.balance_inquiry())
    entries = [inquiry["62"][i : i + 40] for i in range(0, len(inquiry["62"]), 40)]
    # Newest first: the new transfer out, the reversal (a credit), the first transfer out.
    assert [e[8:9] + e[21:].rstrip() for e in entries[:3]] == [
        "DTRANSFER OUT",
        "CTRANSFER REVERSAL",
        "DTRANSFER OUT",
    ]


async def test_money_received_by_transfer_does_not_raise_the_receivers_limit(
    terminal: TestTerminal,
) -> None:
    """Only money sent counts against the transfer limit: savings receives 200000 from
    checking and can still send the whole 250000 of its own day's limit."""
    assert (await terminal.request(transfer(terminal, 200_000)))["39"] == "00"
    message = transfer(terminal, 250_000)
    message["3"] = "401020"  # savings to checking
    assert (await terminal.request(message))["39"] == "00"
    over = transfer(terminal, 100)
    over["3"] = "401020"
    assert (await terminal.request(over))["39"] == "61"
    assert ledger_problems(terminal) == []
