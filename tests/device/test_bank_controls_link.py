"""Operators' changes (host.bank.controls) felt by a real ATM (controller, simulated devices)
on its next message to the real host over TCP: freeze, stolen card, terminal out of service,
maintenance mode, PIN reset, forced key change; each leaves its audit rows."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from device.events import DeviceEvent, LinkMessage
from device.states import State
from host.bank import controls
from host.bank.audit import Actor, list_audit
from host.bank.models import Terminal
from tests.device.conftest import Atm, World
from tests.device.test_faults import withdraw

ALICE_PAN = "4000001234567899"
ALICE_CHECKING = "1000-0001-0001"
CASH = "CASH-ATM00001"
OPERATOR = Actor("olga", "operator", "cli")


def operate(world: World, fn: object, *args: object) -> object:
    with world.host.sessions.begin() as session:
        return fn(session, OPERATOR, *args)  # type: ignore[operator]


async def finish(atm: Atm) -> None:
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)


async def test_frozen_account_declines_and_nothing_moves_until_unfrozen(world: World) -> None:
    atm = await world.atm()
    operate(world, controls.freeze_account, ALICE_CHECKING)
    await atm.login()
    await withdraw(atm, "F1")
    declined = await atm.screen("another")
    assert declined.lines[0] == "Account not available, please contact your bank"
    atm.keys("F8")
    await finish(atm)
    assert atm.events("TXN_RESPONSE")[-1]["code"] == "78"
    assert world.balance(ALICE_CHECKING) == 525_000 and world.balance(CASH) == 0
    assert atm.customer.dispenser.taken_total == {}

    operate(world, controls.unfreeze_account, ALICE_CHECKING)
    await atm.login()
    await withdraw(atm, "F1")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await finish(atm)
    assert atm.events("TXN_RESPONSE")[-1]["code"] == "00"
    assert world.balance(ALICE_CHECKING) == 525_000 - 2_000
    with world.host.sessions() as session:
        actions = [r.action for r in list_audit(session)]
        rows = list_audit(session, action="txn.withdrawal")
    assert actions[0] == "account.freeze" and "account.unfreeze" in actions
    assert [r.after["code"] for r in rows if r.after] == ["78", "00"]
    assert all(r.subject == "card 400000******7899" for r in rows)
    assert "pin.verified" in actions


async def test_card_reported_stolen_is_captured_at_its_next_use(world: World) -> None:
    atm = await world.atm()
    operate(world, controls.report_card_stolen, ALICE_PAN)
    await atm.login()
    await withdraw(atm, "F1")
    screen = await atm.screen("card_retained")
    assert screen.lines[0] == "Stolen card, card retained"
    await atm.state(State.idle)
    assert atm.customer.card_reader.captured == ["card"]
    assert world.balance(ALICE_CHECKING) == 525_000
    with world.host.sessions() as session:
        (row,) = list_audit(session, action="card.report_stolen")
    assert row.before == {"status": "active", "pin_change_required": False}
    assert row.after == {"status": "stolen", "pin_change_required": False}


async def test_terminal_out_of_service_then_back(world: World) -> None:
    # The default echo interval (60 s): the host's own 0800/901 stops the idle ATM.
    atm = await world.atm()
    seen: list[tuple[str, dict[str, str]]] = []
    atm.controller.events.subscribe(
        lambda e: (
            seen.append((e.direction, dict(e.message))) if isinstance(e, LinkMessage) else None
        )
    )
    operate(world, controls.terminal_out_of_service, "ATM00001")
    await world.host.server.push_switches()
    await atm.screen("out_of_service")
    await atm.state(State.out_of_service)
    pushed = [m for d, m in seen if d == "recv" and m["t"] == "0800"]
    assert pushed and pushed[0]["70"] == "901" and pushed[0]["48"] == "89"
    assert pushed[0]["41"] == "ATM00001" and len(pushed[0]["128"]) == 16  # MAC'd (TAK)
    answer = next(m for d, m in seen if d == "send" and m["t"] == "0810")
    assert answer["39"] == "00" and answer["11"] == pushed[0]["11"]
    operate(world, controls.terminal_in_service, "ATM00001")
    await atm.state(State.idle)
    await atm.login()
    await withdraw(atm, "F1")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await finish(atm)
    with world.host.sessions() as session:
        (terminal,) = [t for t in controls.list_terminals(session) if t.terminal_id == "ATM00001"]
    assert terminal.in_service and terminal.key_scheme == "T" and len(terminal.tpk_kcv) == 6
    assert terminal.last_sign_on_at is not None and terminal.last_message.startswith("0200")


async def test_echo_carries_out_of_service_when_nothing_was_pushed(world: World) -> None:
    await world.host.server.stop_switch_poller()  # a host that never pushes: the echo tells
    atm = await world.atm(idle_echo_interval=0.05)
    operate(world, controls.terminal_out_of_service, "ATM00001")
    await atm.state(State.out_of_service)
    assert atm.events("LINK_DOWN")[-1]["reason"] == "echo test failed"
    operate(world, controls.terminal_in_service, "ATM00001")
    await atm.state(State.idle)


async def test_out_of_service_during_a_session_ends_it_then_the_atm_stops(world: World) -> None:
    atm = await world.atm()
    await atm.login()
    operate(world, controls.terminal_out_of_service, "ATM00001")
    await withdraw(atm, "F1")
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.out_of_service)
    assert atm.events("TXN_RESPONSE")[-1]["code"] == "89"
    assert world.balance(ALICE_CHECKING) == 525_000


async def test_maintenance_mode_stops_every_atm_until_it_ends(world: World) -> None:
    first = await world.atm(idle_echo_interval=0.05)
    second = await world.atm(
        idle_echo_interval=0.05,
        terminal_id="ATM00002",
        state_dir=world.tmp_path / "second",
    )
    operate(world, controls.set_maintenance, True)
    for atm in (first, second):
        await atm.state(State.out_of_service)
    operate(world, controls.set_maintenance, False)
    for atm in (first, second):
        await atm.state(State.idle)
    with world.host.sessions() as session:
        (row,) = list_audit(session, action="bank.maintenance", limit=1)
    assert row.after == {"maintenance": True}


async def test_pin_reset_forces_a_pin_change_then_the_new_pin_works(world: World) -> None:
    setting = controls.PinSetting(world.config.pin_pepper, world.config.bcrypt_rounds)
    with world.host.sessions.begin() as session:
        controls.reset_pin(session, OPERATOR, ALICE_PAN, "2580", setting)
    atm = await world.atm()
    await atm.login(pin="2580")
    await withdraw(atm, "F1")
    prompt = await atm.screen("new_pin")
    assert "Please choose a new PIN" in prompt.lines
    atm.customer.type("4826")
    await atm.screen("confirm_pin")
    atm.customer.type("4826")
    done = await atm.screen("another")
    assert done.lines[0] == "Your PIN has been changed"
    atm.keys("F8")
    await finish(atm)
    assert [e["code"] for e in atm.events("TXN_RESPONSE")] == ["77", "00"]
    await atm.login(pin="4826")
    await withdraw(atm, "F1")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await finish(atm)
    assert atm.events("TXN_RESPONSE")[-1]["code"] == "00"
    assert world.balance(ALICE_CHECKING) == 525_000 - 2_000
    with world.host.sessions() as session:
        (card,) = [c for c in controls.list_cards(session) if c.pan == ALICE_PAN]
        actions = [r.action for r in list_audit(session)]
    assert not card.pin_change_required
    assert actions[:3] == ["card.reset_pin", "pin.verified", "txn.withdrawal"]
    assert "txn.pin_change" in actions


async def test_forced_key_change_gives_the_atm_new_keys(world: World) -> None:
    atm = await world.atm(idle_echo_interval=0.05)
    with world.host.sessions() as session:
        before = session.scalars(
            select(Terminal.tak_kcv).where(Terminal.terminal_id == "ATM00001")
        ).one()
    changed = asyncio.Event()

    def on_event(event: DeviceEvent) -> None:
        message = event.message if isinstance(event, LinkMessage) else {}
        if event_is_key_change(message):
            changed.set()

    atm.controller.events.subscribe(on_event)
    operate(world, controls.force_key_change, "ATM00001")
    await asyncio.wait_for(changed.wait(), 10)
    with world.host.sessions() as session:
        (terminal,) = [t for t in controls.list_terminals(session) if t.terminal_id == "ATM00001"]
    assert terminal.tak_kcv != before and not terminal.key_change_due
    await atm.login()
    await withdraw(atm, "F1")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await finish(atm)


def event_is_key_change(message: dict[str, str]) -> bool:
    return message.get("t") == "0810" and message.get("70") == "161" and message.get("39") == "00"
