""" "Do you need more time?": when a customer's wait runs out the controller asks, with a
countdown by its (injected) clock; Yes goes back where the customer was, No or the end of the
countdown returns the card. The real waits are the key timeout (short here) and the
countdown's tick; the countdown itself follows the test's clock."""

from __future__ import annotations

import datetime as dt

from atm.demo import build_devices
from device.controller import AtmController
from device.states import State
from tests.device.conftest import Atm, World


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


async def atm_with_clock(world: World, clock: Clock, **overrides: object) -> Atm:
    config = world.device_config(**{"key_timeout": 0.05, "more_time_seconds": 30, **overrides})
    devices, customer = build_devices(config)
    atm = Atm(AtmController(config, devices, clock=clock), customer)
    world.atms.append(atm)
    await atm.start()
    return atm


def seconds_left(n: int):
    unit = "second" if n == 1 else "seconds"
    return lambda screen: screen.lines[0] == f"Your session ends in {n} {unit}"


async def test_yes_goes_back_where_the_customer_was(world):
    atm = await atm_with_clock(world, Clock())
    await atm.login()
    screen = await atm.screen("more_time", seconds_left(30))
    assert screen.title == "Do you need more time?"
    assert screen.soft_keys == {"F4": "Yes", "F8": "No"}
    atm.keys("F4")
    await atm.state(State.main_menu)
    (asked, *_) = atm.events("MORE_TIME_ASKED")
    assert asked["state"] == "main_menu" and asked["seconds"] == "30"
    (given,) = atm.events("MORE_TIME_GIVEN")
    assert given["state"] == "main_menu"


async def test_the_countdown_follows_the_clock_and_ends_the_session(world):
    clock = Clock()
    atm = await atm_with_clock(world, clock)
    await atm.login()
    await atm.screen("more_time", seconds_left(30))
    clock.advance(10)
    await atm.screen("more_time", seconds_left(20))
    clock.advance(19.5)
    await atm.screen("more_time", seconds_left(1))
    clock.advance(1)
    screen = await atm.screen("take_card")
    assert screen.lines[0] == "No selection made in time"
    atm.customer.take_card()
    await atm.state(State.idle)
    assert [r["state"] for r in atm.events("TIMEOUT")] == ["main_menu", "more_time"]
    assert atm.events("CARD_RETURNED") and not atm.events("CARD_CAPTURED")


async def test_no_returns_the_card(world):
    atm = await atm_with_clock(world, Clock())
    await atm.login()
    await atm.screen("more_time")
    atm.keys("F8")
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    (cancelled,) = atm.events("CANCELLED")
    assert cancelled["state"] == "more_time"


async def test_at_the_pin_the_warning_comes_too_and_yes_restarts_the_pin(world):
    atm = await atm_with_clock(world, Clock())
    await atm.screen("welcome")
    atm.customer.insert("alice")
    await atm.screen("more_time")
    atm.keys("F4")
    await atm.screen("enter_pin")
    atm.customer.type("1234")
    await atm.state(State.main_menu)
    assert atm.events("MORE_TIME_ASKED")[0]["state"] == "pin_entry"


async def test_a_pad_that_cannot_read_keys_ends_the_session_without_spinning(world):
    atm = await atm_with_clock(world, Clock())
    await atm.login()
    atm.customer.pin_pad.inject("key_timeout")  # every read fails at once
    await atm.screen("take_card")
    assert [r["state"] for r in atm.events("TIMEOUT")][-1] == "more_time"


async def test_no_warning_when_configured_off(world):
    atm = await atm_with_clock(world, Clock(), more_time_seconds=0)
    await atm.login()
    await atm.screen("take_card")
    assert not atm.events("MORE_TIME_ASKED")
