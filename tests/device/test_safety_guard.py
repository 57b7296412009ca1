"""The production-safety guard: a card outside the test ranges is refused at the card reader
before anything leaves the terminal; the ATM talks only to allow-listed hosts; the host
declines cards outside its ranges. Both ends widen only by configuration, with a warning."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from atm.cli import main
from device.config import DeviceConfig
from device.errors import DeviceConfigError
from device.events import LinkMessage
from device.states import State
from host.bank.models import LinkRequest
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal

# Luhn-valid, from a real issuer range (not ours): what a stray real card looks like.
REAL_LOOKING_PAN = "4532015112830366"
REAL_LOOKING_TRACK = f"{REAL_LOOKING_PAN}=30121010000000000000"


def _requests(world) -> int:
    with world.host.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(LinkRequest)) or 0)


async def test_a_real_looking_card_is_refused_at_the_reader(world):
    atm = await world.atm()
    sent: list[str] = []
    atm.controller.events.subscribe(
        lambda e: sent.append(e.message["t"]) if isinstance(e, LinkMessage) else None
    )
    await atm.screen("welcome")
    atm.customer.card_reader.insert(REAL_LOOKING_TRACK)
    screen = await atm.screen("take_card")
    assert screen.lines[0] == "This card is not accepted here (test cards only)"
    atm.customer.take_card()
    await atm.state(State.idle)
    assert sent == []  # nothing left the terminal: no PIN asked, no message on the link
    assert "enter_pin" not in [s.id for s in atm.all_screens]
    refused = atm.events("CARD_REFUSED")
    assert refused and refused[0]["pan"] == "453201******0366"
    assert atm.events("CARD_RETURNED")
    assert REAL_LOOKING_PAN not in atm.controller.config.journal_path.read_text()
    assert _requests(world) == 0


async def test_a_widened_atm_warns_and_the_host_still_declines(world, caplog):
    caplog.set_level(logging.WARNING, "device.controller")
    atm = await world.atm(card_ranges=("400000", "453201"))
    assert "card ranges widened beyond the test cards: 453201" in caplog.text
    assert atm.events("GUARD_WIDENED")
    await atm.screen("welcome")
    atm.customer.card_reader.insert(REAL_LOOKING_TRACK)
    await atm.screen("enter_pin")
    atm.customer.type("1234")
    await atm.screen("main_menu")
    atm.keys("F1")  # withdrawal
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.customer.type("20")
    screen = await atm.screen("take_card")
    assert screen.lines[0] == "Card not accepted here"  # response code 15 from the host
    atm.customer.take_card()
    await atm.state(State.idle)
    with world.host.sessions() as session:
        codes = session.scalars(select(LinkRequest.response_code)).all()
    assert codes == ["15"]
    assert world.balance(ALICE_CHECKING) == 525_000


async def test_the_host_declines_a_card_outside_its_ranges(world):
    async with TestTerminal(world.port) as terminal:
        await terminal.sign_on()
        request = terminal.withdrawal(2_000, pan=REAL_LOOKING_PAN, track=REAL_LOOKING_TRACK)
        assert (await terminal.request(request))["39"] == "15"
        assert (await terminal.request(terminal.withdrawal(2_000)))["39"] == "00"
    assert world.balance(ALICE_CHECKING) == 523_000


def test_only_allow_listed_hosts():
    assert DeviceConfig(host="localhost").host == "localhost"
    with pytest.raises(DeviceConfigError, match="not on the allow-list"):
        DeviceConfig(host="switch.bank.example")
    config = DeviceConfig(
        host="switch.bank.example", allowed_hosts=("localhost", "switch.bank.example")
    )
    assert config.widened == ["hosts allowed beyond localhost: switch.bank.example"]
    with pytest.raises(DeviceConfigError, match="PAN prefixes"):
        DeviceConfig(card_ranges=("4000-00",))


def test_atm_device_refuses_a_host_not_allowed(capsys):
    assert main(["device", "--host", "switch.bank.example", "--script", "withdraw-alice"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atm device: host 'switch.bank.example' is not on the allow-list")
    assert len(err.strip().splitlines()) == 1
