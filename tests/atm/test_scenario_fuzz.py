"""``atm scenario fuzz``: random customers on several ATMs sharing one host; the invariants
hold on this build, and a broken build fails with a shrunk replay file that fails again."""

import random
from dataclasses import replace
from pathlib import Path

from atm.cli import main
from atm.scenario import fuzz as fuzz_module
from atm.scenario import load_file
from atm.scenario.fuzz import FuzzAgent, _lane, fuzz, kill_lane, scenario_to_yaml
from atm.scenario.runner import run_scenario, scenario_host_config
from device.screens import Screen
from host.link.reversals import ReversalService


def test_fuzz_passes_on_this_build(tmp_path, capsys):
    code = main(
        [
            "scenario",
            "fuzz",
            "--seed",
            "7",
            "--sessions",
            "12",
            "--terminals",
            "2",
            "--kills",
            "1",
            "--replay-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "fuzz seed 7: 12 sessions on 2 terminal(s) and 1 killed ATM process(es), invariants hold"
        in out
    )
    assert not list(tmp_path.iterdir())


async def test_a_broken_build_fails_with_a_shrunk_replay(tmp_path, monkeypatch):
    def acknowledge_only(self, session, record):
        record.status = "applied"  # the bug: the reversal is answered but not applied

    monkeypatch.setattr(ReversalService, "_apply", acknowledge_only)
    report = await fuzz(
        2, 12, 1, host_config=scenario_host_config(), replay_dir=tmp_path, shrink_attempts=12
    )
    assert not report.ok
    # Seed 2 has partial dispenses: their reversals never reach the ledger.
    assert any(p.startswith("invariant approvals ATM00001") for p in report.problems)
    assert report.replays == [tmp_path / "fuzz-seed-2-atm00001.yaml"]
    assert report.shrunk is not None
    full, shrunk = load_file(report.replays[0]), load_file(report.shrunk)
    sessions = [s for s in shrunk.steps if s.insert is not None]
    assert 1 <= len(sessions) < len([s for s in full.steps if s.insert is not None])
    result = await run_scenario(shrunk, host_config=scenario_host_config(), work_dir=tmp_path / "r")
    assert any(p.startswith("invariant") for p in result.problems), result.problems


def test_the_replay_file_is_a_scenario_file(tmp_path):
    agent = FuzzAgent(random.Random(5), 1)
    agent.step_for(Screen("welcome", "Welcome"))
    agent.step_for(Screen("enter_pin", "PIN"))
    agent.step_for(Screen("main_menu", "Menu", soft_keys={"F1": "Withdrawal", "F8": "Cancel"}))
    path = Path(tmp_path / "r.yaml")
    path.write_text(scenario_to_yaml(replace(_lane(1, 5), steps=tuple(agent.recorded))))
    loaded = load_file(path)
    assert [s.screen for s in loaded.steps] == ["welcome", "enter_pin", "main_menu"]
    assert loaded.expect.cards_retained is None


def test_kill_lanes_are_seeded_scenario_files_with_a_card_of_their_own(tmp_path):
    first = kill_lane(5, 7, 1, tmp_path / "a")
    again = kill_lane(5, 7, 1, tmp_path / "b")
    assert first.path.read_text() == again.path.read_text()  # the same seed, the same file
    loaded = load_file(first.path)
    assert loaded.atm_process and loaded.steps[-1].atm == "restart"
    assert loaded.setup.terminal_id == "ATM00005"
    assert loaded.setup.cards[0].pan.startswith("400000") and loaded.steps[0].kill_at


def test_kills_need_terminals_of_their_own(capsys):
    code = main(["scenario", "fuzz", "--seed", "1", "--terminals", "8", "--kills", "3"])
    assert code == 2
    assert "--terminals + --kills at most 10" in capsys.readouterr().err


async def test_the_shrinker_keeps_no_step_whose_failure_does_not_repeat(tmp_path, monkeypatch):
    # Four sessions; only bob's makes the replay fail. One run of a replay without bob fails
    # too, once, as a stalled machine can make a real replay fail (a customer's 0.3 s to take
    # the cash running out): the shrunk replay must still be bob's session, not that fluke.
    path = tmp_path / "lane.yaml"
    path.write_text(
        scenario_to_yaml(_lane(1, 5)).split("steps:")[0]
        + "steps:\n"
        + "".join(
            f"  - {{insert: {card}, screen: welcome}}\n  - {{screen: take_card, take: card}}\n"
            for card in ("alice", "charlie", "bob", "alice")
        )
    )
    scenario = load_file(path)
    flukes = [True]
    runs: list[list[str]] = []

    async def fails(replay, config):
        cards = [s.insert_name for s in replay.steps if s.insert is not None]
        runs.append(cards)
        if "bob" in cards:
            return True
        return flukes.pop() if flukes else False

    monkeypatch.setattr(fuzz_module, "_fails", fails)
    shrunk = await fuzz_module.shrink(scenario, scenario_host_config(), 12, lambda _: None)
    assert shrunk is not None
    assert [s.insert_name for s in shrunk.steps if s.insert is not None] == ["bob"]
    assert not flukes  # the fluke happened, and was not kept
