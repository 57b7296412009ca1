"""A transfer reversed by an advice is booked as ``transfer-reversal``, the kind
``check_ledger`` expects; it was ``reversal``, and check-ledger flagged the host's own posting
(found by the catalogue's transfer scenarios)."""

from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from atm.scenario import load_file
from atm.scenario.runner import run_scenario, scenario_host_config
from host.app import Host
from host.bank.ledger import check_ledger
from host.bank.models import Posting

CATALOGUE = Path(__file__).parents[1] / "scenarios"


async def test_a_reversed_transfer_keeps_the_ledger_clean(tmp_path):
    config = scenario_host_config()
    scenario = load_file(CATALOGUE / "link-transfer-reply-after-timeout.yaml")
    result = await run_scenario(scenario, host_config=config, work_dir=tmp_path, timeout=20)
    assert result.ok, result.problems
    host = Host(replace(config, database_url=f"sqlite:///{tmp_path / 'host.db'}"))
    try:
        with host.sessions() as session:
            kinds = list(session.scalars(select(Posting.kind).order_by(Posting.id)))
            assert kinds[-2:] == ["transfer", "transfer-reversal"]
            assert check_ledger(session) == []
    finally:
        await host.close()
