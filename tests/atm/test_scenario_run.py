"""``atm scenario run``: real host over TCP, simulated devices, table, JUnit XML, exit code."""

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from atm.cli import main
from atm.scenario.loader import builtin_dir

FAILING = """\
name: wrong-expectation
description: Alice withdraws $20 but the file expects $40 to leave her account
steps:
  - {screen: welcome, insert: alice}
  - {screen: enter_pin, type: "1234"}
  - {screen: main_menu, press: F1}
  - {screen: select_account, press: F1}
  - {screen: select_amount, press: F1}
  - {screen: take_cash, take: cash}
  - {screen: take_card, take: card}
expect:
  balance_changes: {"1000-0001-0001": -4000}
  taken_cents: 2000
  response_codes: ["00"]
"""


def test_run_passes_prints_a_table_and_writes_junit(tmp_path, capsys):
    for name in ("withdraw-alice", "transfer-alice"):
        shutil.copy(builtin_dir() / f"{name}.yaml", tmp_path / f"{name}.yaml")
    junit = tmp_path / "out.xml"
    code = main(["scenario", "run", str(tmp_path), "--junit", str(junit), "-j", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "transfer-alice" in out and "withdraw-alice" in out
    assert "2 scenario(s): 2 passed, 0 failed" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "0"
    names = sorted(case.get("name") or "" for case in suite.iter("testcase"))
    assert names == ["transfer-alice", "withdraw-alice"]


def test_a_failing_scenario_exits_1_with_the_numbers(tmp_path, capsys):
    path = tmp_path / "wrong.yaml"
    path.write_text(FAILING)
    junit = tmp_path / "out.xml"
    code = main(["scenario", "run", str(path), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1
    assert "wrong-expectation  FAIL" in out
    assert (
        "balance of 1000-0001-0001: expected a change of -4000 cents, saw -2000 "
        "(525000 -> 523000)" in out
    )
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and "expected a change of -4000" in (failure.get("message") or "")


def test_a_bad_file_exits_2_naming_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(FAILING.replace("take: cash", "take: money"))
    assert main(["scenario", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:9: steps[5].take: 'money' is not one of cash, card" in err


def test_check_lists_the_builtin_scenarios(capsys):
    assert main(["scenario", "check", str(builtin_dir())]) == 0
    assert "dispense-unknown" in capsys.readouterr().out


def test_the_scenario_in_the_docs_runs_and_a_changed_step_is_caught(tmp_path, capsys):
    docs = (Path(__file__).parents[2] / "docs" / "scenarios.md").read_text()
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my-withdrawal.yaml"
    path.write_text(example)
    assert main(["scenario", "run", str(path)]) == 0, capsys.readouterr().out
    # The change the docs suggest: she walks away from the cash, it is retracted and reversed.
    changed = example.replace("take: cash}", "wait: true}").replace(
        "setup:\n", "setup:\n  device: {cash_take_timeout: 0.3}\n"
    )
    path.write_text(changed)
    assert main(["scenario", "run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "balance of 2000-0001-0001: expected a change of -4000 cents, saw 0" in out
    assert "expected notes worth 4000 cents taken, saw 0" in out


def test_run_on_postgresql_with_database_url(postgres_url, capsys):
    for name in ("withdraw-alice", "cash-not-taken"):
        path = builtin_dir() / f"{name}.yaml"
        assert main(["scenario", "run", str(path), "--database-url", postgres_url]) == 0, (
            capsys.readouterr().out
        )
        assert "1 scenario(s): 1 passed" in capsys.readouterr().out


NEVER_KILLED = """\
name: kill-that-never-comes
description: Alice takes her cash, so the ATM never journals a retraction to die after
steps:
  - {screen: welcome, insert: alice, atm: kill, at: CASH_RETRACTED}
  - {screen: enter_pin, type: "1234"}
  - {screen: main_menu, press: F1}
  - {screen: select_account, press: F1}
  - {screen: select_amount, press: F1}
  - {screen: take_cash, take: cash}
  - {screen: take_card, take: card}
  - {screen: welcome, atm: restart}
"""


def test_a_kill_point_that_never_comes_fails_saying_so(tmp_path, capsys):
    path = tmp_path / "never.yaml"
    path.write_text(NEVER_KILLED)
    code = main(["scenario", "run", str(path)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "the ATM process was never killed (exit code 1)" in out
    assert "ATM PROCESS NOT KILLED: the steps ended" in out
