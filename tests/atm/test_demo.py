"""End to end: the demo scripts through the real TCP link and a real SQLite database."""

import io

from atm.demo import SCRIPTS, run_demo


async def test_withdraw_alice(host_config, tmp_path):
    out = io.StringIO()
    result = await run_demo(
        SCRIPTS["withdraw-alice"], out=out, work_dir=tmp_path, host_config=host_config
    )
    assert result.ok
    assert result.balance_before == 525_000
    assert result.balance_after == 515_000
    (receipt,) = result.receipts
    text = "\n".join(receipt)
    assert "400000******7899" in text
    assert "AMOUNT                   $100.00" in text
    assert "BALANCE                $5,150.00" in text
    assert "APPROVED" in text
    printed = out.getvalue()
    assert "$5,250.00" in printed and "$5,150.00" in printed
    assert "MTI 0200" in printed and "MTI 0210" in printed
    # No full PAN, track data or PIN block anywhere a person can see.
    journal = "\n".join(result.journal)
    for visible in (printed, journal, text):
        assert "4000001234567899" not in visible
    assert "[8 bytes hidden]" in printed
    assert "DISPENSE_START" in journal and "CASH_TAKEN" in journal


async def test_wrong_pin_moves_no_money(host_config, tmp_path):
    out = io.StringIO()
    result = await run_demo(
        SCRIPTS["wrong-pin"], out=out, work_dir=tmp_path, host_config=host_config
    )
    assert result.ok
    assert result.balance_after == result.balance_before == 525_000
    assert "pin_retry" in result.screens
    assert "Incorrect PIN." in out.getvalue()
    assert result.receipts == []


async def test_balance_inquiry_prints_balance(host_config, tmp_path):
    result = await run_demo(
        SCRIPTS["balance-bob"], out=io.StringIO(), work_dir=tmp_path, host_config=host_config
    )
    assert result.ok
    (receipt,) = result.receipts
    assert any("$850.75" in line for line in receipt)
