"""A 0200 the host received twice is answered twice; the second answer is not a late
approval: the ATM must not reverse a withdrawal whose cash the customer took."""

from pathlib import Path

from atm.scenario import load_file
from atm.scenario.runner import run_scenario, scenario_host_config

CATALOGUE = Path(__file__).parents[1] / "scenarios"


async def test_a_duplicate_answer_is_ignored_not_reversed(tmp_path):
    scenario = load_file(CATALOGUE / "link-duplicate-request.yaml")
    result = await run_scenario(
        scenario, host_config=scenario_host_config(), work_dir=tmp_path, timeout=20
    )
    assert result.ok, result.problems
    assert not any("REVERSAL_QUEUED" in line for line in result.observed.journal)
    assert any(
        "second answer to STAN 000002 (a duplicate) ignored" in line
        for line in result.observed.logs
    )
    assert result.observed.balances_after["1000-0001-0001"] == 525000 - 2000
