"""Transfers, PIN change and the DE 62 mini-statement end to end: the device's flows against the
real host over TCP (the device side alone is in test_transactions.py)."""

import io

import pytest

from atm.demo import SCRIPTS, run_demo
from device.states import State
from tests.device.conftest import Atm, World

ALICE_CHECKING, ALICE_SAVINGS = "1000-0001-0001", "1000-0001-0002"


@pytest.mark.parametrize("name", ["transfer-alice", "pin-change-charlie", "balance-statement"])
async def test_script(name, host_config, tmp_path, screens_fit):
    """Also: every screen it shows fits the display, no word cut (tests/screen_fit.py)."""
    out = io.StringIO()
    result = await run_demo(
        SCRIPTS[name], out=out, work_dir=tmp_path, host_config=host_config, timeout=20
    )
    assert result.ok, out.getvalue()[-4000:]


async def finish(atm: Atm) -> None:
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)


async def test_transfer_between_the_cards_accounts(world: World) -> None:
    atm = await world.atm()
    await atm.login()
    atm.keys("F3")
    await atm.screen("select_account")
    atm.keys("F2")  # from savings
    await atm.screen("select_to_account")
    atm.keys("F1")  # to checking
    await atm.screen("transfer_amount")
    atm.customer.type("1000")
    another = await atm.screen("another")
    assert another.lines[0] == "$1,000.00 transferred"
    atm.keys("F8")
    await finish(atm)
    assert world.balance(ALICE_SAVINGS) == 1_250_000 - 100_000
    assert world.balance(ALICE_CHECKING) == 525_000 + 100_000
    (receipt,) = atm.receipts
    assert "FROM                     Savings" in receipt
    assert "TO                      Checking" in receipt


async def test_pin_change_then_only_the_new_pin_works(world: World) -> None:
    atm = await world.atm()
    await atm.login("charlie", "9012")
    atm.keys("F4")
    await atm.screen("new_pin")
    atm.customer.type("4826")
    await atm.screen("confirm_pin")
    atm.customer.type("4826")
    done = await atm.screen("another")
    assert done.lines[0] == "Your PIN has been changed"
    atm.keys("F8")
    await finish(atm)
    for pin, code in (("9012", "55"), ("4826", "00")):
        await atm.login("charlie", pin)
        atm.keys("F2")
        await atm.screen("select_account")
        atm.keys("F1")
        if code == "55":
            await atm.screen("pin_retry")
            atm.keys("CANCEL")
        else:
            await atm.screen("balance")
            atm.keys("F8")
            await atm.screen("another")
            atm.keys("F8")
        await finish(atm)
        assert atm.events("TXN_RESPONSE")[-1]["code"] == code


async def test_mini_statement_on_screen_and_receipt(world: World) -> None:
    atm = await world.atm()
    await atm.login()
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys("F1")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await finish(atm)
    await atm.login()
    atm.keys("F2")
    await atm.screen("select_account")
    atm.keys("F1")
    screen = await atm.screen("balance")
    assert "Recent transactions:" in screen.lines
    statement = screen.lines[screen.lines.index("Recent transactions:") + 1 :]
    assert statement and statement[0].endswith("-$20.00")
    atm.keys("F4")
    await atm.screen("another")
    atm.keys("F8")
    await finish(atm)
    receipt = atm.receipts[-1]
    assert "RECENT TRANSACTIONS" in receipt
    assert receipt[receipt.index("RECENT TRANSACTIONS") + 1].endswith("-$20.00")
