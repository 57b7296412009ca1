"""Every demo script end to end: real host on SQLite over TCP, simulated devices.

Each script checks what a person would notice (balances in the host database, journal lines,
notes taken from the dispenser, cards retained, receipts); ``result.ok`` is those checks.
Scripts whose outcome needs the host-side transfer / PIN change / mini-statement support or
the link's reversal delivery run in ``tests/device/test_transfer_pin_change_statement.py`` and
``tests/device/test_reversals_reach_the_host.py``.
"""

import io

import pytest

from atm.demo import SCRIPTS, run_demo

NEEDS_HOST = {"transfer-alice", "pin-change-charlie", "balance-statement"}
NEEDS_LINK = {"dispenser-jam", "partial-dispense", "cash-not-taken"}
HERE = sorted(set(SCRIPTS) - NEEDS_HOST - NEEDS_LINK)


@pytest.mark.parametrize("name", HERE)
async def test_script(name, host_config, tmp_path, screens_fit):
    """Also: every screen it shows fits the display, no word cut (tests/screen_fit.py)."""
    out = io.StringIO()
    result = await run_demo(
        SCRIPTS[name], out=out, work_dir=tmp_path, host_config=host_config, timeout=20
    )
    assert result.ok, out.getvalue()[-4000:]
    text = out.getvalue()
    assert "== dispenser cassettes:" in text and "== outcome as expected" in text
    for line in [*result.journal, text]:
        for pan in ("4000001234567899", "4000009876543219", "4000005555555557"):
            assert pan not in line


def test_every_script_is_somewhere():
    assert set(HERE) | NEEDS_HOST | NEEDS_LINK == set(SCRIPTS)
