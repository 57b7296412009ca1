"""A damaged journal or store-and-forward file (issue 12 item 9): one clear line naming the
file and the line, the ATM in its fault state (visible on the screen) until the operator has
looked and accepted the damaged line through the supervisor switch, and nothing lost: the line
stays in the file, and every reversal the store-and-forward file held reaches the host."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from device.journal import read_records
from device.saf import SafQueue
from device.states import State
from tests.device.conftest import Atm, World

ALICE_CHECKING = "1000-0001-0001"


async def _withdraw_100(atm: Atm) -> None:
    await atm.login()
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys("F4")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)


async def _start_in_fault(world: World) -> Atm:
    atm = await world.atm(start=False)
    atm.task = asyncio.create_task(atm.controller.run())
    await atm.state(State.fault)
    return atm


async def _accept_and_leave(atm: Atm) -> None:
    atm.controller.enter_supervisor()
    screen = await atm.screen("supervisor")
    assert any("damaged" in line for line in screen.lines), screen
    atm.keys("ENTER")
    await atm.screen("supervisor", lambda s: any("accepted" in line for line in s.lines))
    atm.keys("F8")
    await atm.state(State.idle)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda raw: raw.replace(b"amount=10000", b"amount=abc"), "checksum mismatch"),
        (lambda raw: raw.replace(b"WITHDRAWAL", b"WITHDR\xc3\x28WAL"), "not UTF-8"),
    ],
)
async def test_damaged_journal_line_is_one_clear_fault_until_accepted(
    world: World,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[bytes], bytes],
    why: str,
) -> None:
    atm = await world.atm()
    await _withdraw_100(atm)
    await atm.stop()
    path = world.device_config().journal_path
    lines = path.read_bytes().split(b"\n")
    number = next(i for i, line in enumerate(lines, 1) if b"| TXN_REQUEST |" in line)
    lines[number - 1] = damage(lines[number - 1])
    path.write_bytes(b"\n".join(lines))
    balance = world.balance(ALICE_CHECKING)

    caplog.set_level(logging.ERROR)
    again = await _start_in_fault(world)
    expected = f"journal {path} line {number} is damaged ({why}"
    assert again.controller.screen is not None
    assert f"(journal line {number} damaged)" in again.controller.screen.lines
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage()[: len(expected)] for r in errors] == [expected]
    assert all(r.exc_info is None for r in errors)  # one line, no traceback

    await _accept_and_leave(again)
    assert lines[number - 1] in path.read_bytes()  # kept, for the auditors
    assert [r["line"] for r in again.events("JOURNAL_DAMAGE_ACCEPTED")] == [str(number)]
    assert world.balance(ALICE_CHECKING) == balance


async def test_garbage_in_the_store_and_forward_file_loses_no_reversal(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    config = world.device_config()
    atm = await world.atm()
    await _withdraw_100(atm)
    await atm.stop()
    before = world.balance(ALICE_CHECKING)
    # A reversal waits in the queue (as a retract would have queued it) when the file is hit.
    request = next(r for r in read_records(config.journal_path) if r["event"] == "TXN_REQUEST")
    original = {
        "t": "0200", "3": request["proc"], "4": f"{int(request['amount']):012d}",
        "7": request["time"], "11": request["stan"], "41": config.terminal_id,
        "42": config.acceptor_id, "49": "840",
    }  # fmt: skip
    saf = SafQueue(config.saf_path)
    assert saf.add(original, 0, "4018", "1130120000")
    config.saf_path.write_bytes(b"\x00\xffgarbage\n" + config.saf_path.read_bytes())

    caplog.set_level(logging.ERROR)
    again = await _start_in_fault(world)
    assert again.controller.screen is not None
    assert "(store-and-forward line 1 damaged)" in again.controller.screen.lines
    expected = f"store-and-forward file {config.saf_path} line 1 is damaged"
    # Only errors count (an earlier test may leave the host's loggers at INFO).
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage()[: len(expected)] for r in errors] == [expected]
    await _accept_and_leave(again)
    assert again.controller.link.pending_reversals() == 0
    assert world.balance(ALICE_CHECKING) == before + 10_000  # the reversal reached the host
    assert b"\x00\xffgarbage" in config.saf_path.read_bytes()
