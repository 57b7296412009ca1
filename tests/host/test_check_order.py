"""The order of the checks on a card request, over the real link (docs/protocol.md section 6):
a stolen card is captured whatever its expiry, a track-2 expiry that differs from the record
but lies in the future is an invalid card (14) rather than an expired one (54), and a request
without a PIN block is a format error (30), not a wrong PIN. On SQLite and PostgreSQL."""

from collections.abc import AsyncIterator

import pytest

from host.config import HostConfig
from tests.host.link_helpers import ALICE_CHECKING, ALICE_PAN, TestTerminal, start_host

STOLEN_PAN = "4000009999999991"


@pytest.fixture
async def terminal(seeded_config: HostConfig) -> AsyncIterator[TestTerminal]:
    host = await start_host(seeded_config)
    async with TestTerminal(host.server.port) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        terminal.host = host  # type: ignore[attr-defined]
        yield terminal
    await host.close()


@pytest.mark.parametrize("expiry", ["3012", "0112", "3506"], ids=["valid", "past", "future"])
async def test_stolen_card_is_captured_whatever_its_expiry(
    terminal: TestTerminal, expiry: str
) -> None:
    track = f"{STOLEN_PAN}={expiry}1010000000000000"
    response = await terminal.request(
        terminal.withdrawal(2_000, pan=STOLEN_PAN, track=track, pin="9012")
    )
    assert response["39"] == "43"


async def test_track_expiry_in_the_future_that_differs_from_the_record_is_an_invalid_card(
    terminal: TestTerminal,
) -> None:
    track = f"{ALICE_PAN}=32121010000000000000"  # the record says 3012
    response = await terminal.request(terminal.withdrawal(2_000, track=track))
    assert response["39"] == "14"
    past = f"{ALICE_PAN}=24011010000000000000"
    assert (await terminal.request(terminal.withdrawal(2_000, track=past)))["39"] == "54"
    assert terminal.host.balance(ALICE_CHECKING) == 525_000  # type: ignore[attr-defined]


async def test_request_without_a_pin_block_is_a_format_error(terminal: TestTerminal) -> None:
    for message in (terminal.withdrawal(2_000), terminal.balance_inquiry()):
        del message["52"]
        response = await terminal.request(message)
        assert response["39"] == "30"
    # Not counted as wrong PINs: three of them do not lock the card.
    for _ in range(3):
        message = terminal.withdrawal(2_000)
        del message["52"]
        assert (await terminal.request(message))["39"] == "30"
    assert (await terminal.request(terminal.withdrawal(2_000)))["39"] == "00"
    assert terminal.host.balance(ALICE_CHECKING) == 523_000  # type: ignore[attr-defined]
