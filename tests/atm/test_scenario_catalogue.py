"""The fast part of the fault catalogue (``tags: [fast]`` in ``tests/scenarios``) in
``make test``; the whole catalogue runs in ``make scenarios`` (CI, after ``make test``)."""

from pathlib import Path

import pytest

from atm.scenario import load_paths
from atm.scenario.loader import builtin_dir
from atm.scenario.runner import run_scenario, scenario_host_config

CATALOGUE = Path(__file__).parents[1] / "scenarios"
ALL = load_paths([CATALOGUE])
FAST = [s for s in ALL if "fast" in s.tags]


def test_the_catalogue_loads_and_covers_the_fault_families():
    names = {s.name for s in ALL} | {s.name for s in load_paths([builtin_dir()])}
    for wanted in (
        "host-timeout",
        "link-reply-after-timeout",
        "host-down-at-start",
        "link-connection-drop",
        "link-bad-mac-from-host",
        "link-bad-mac-from-atm",
        "link-duplicate-request",
        "dispenser-jam",
        "partial-dispense",
        "cassette-empty",
        "dispenser-cassette-missing",
        "cash-not-taken",
        "card-not-taken",
        "card-jam",
        "unreadable-card",
        "wrong-pin",
        "wrong-pin-3",
        "pin-lockout-expiry",
        "expired-card",
        "stolen-card",
        "insufficient-funds",
        "daily-limit",
        "printer-out-of-paper",
        "pinpad-timeout",
        "serial-dispenser-garble",
        "serial-reader-split",
        "link-slow-host",
        "host-kill-withdrawal-after-posting",
        "host-kill-transfer-after-posting",
        "deposit-timeout",
        "deposit-host-declines",
        "deposit-reply-after-timeout",
        "deposit-stack-jam",
        "deposit-stacker-full",
        "deposit-jam",
        "deposit-check-no-envelope",
        "deposit-check-envelope-never-inserted",
        "deposit-notes-rejected",
        "deposit-notes-not-taken",
    ):
        assert wanted in names
    # The ATM process killed at each step of a withdrawal and of a transfer, and restarted.
    for step in ("card-read", "pin", "request-sent", "response-received", "receipt"):
        assert f"atm-kill-withdrawal-{step}" in names and f"atm-kill-transfer-{step}" in names
    for step in ("dispense-started", "notes-counted", "cash-presented", "cash-taken"):
        assert f"atm-kill-withdrawal-{step}" in names
    assert "atm-kill-withdrawal-card-returned" in names
    assert "atm-kill-transfer-card-returned" in names
    # The host process killed at each of its steps of a withdrawal and of a transfer.
    for point in ("received", "posted", "sent"):
        for kind in ("withdrawal", "transfer"):
            assert f"host-kill-{kind}-at-{point}" in names
    assert len(FAST) >= 3


@pytest.mark.parametrize("scenario", FAST, ids=[s.name for s in FAST])
async def test_fast_catalogue_scenario(scenario, tmp_path):
    result = await run_scenario(
        scenario, host_config=scenario_host_config(), work_dir=tmp_path, timeout=20
    )
    assert result.ok, result.problems
