"""Scenario files: the shipped ones load; a bad file gets an error naming file, line and
what is wrong."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from atm.scenario import ScenarioFileError, builtin_scenarios, load_file, load_paths
from atm.scenario.loader import builtin_dir, schema

GOOD = """\
name: my-withdrawal
description: Dora withdraws $40
setup:
  cards:
    - name: dora
      pan: "5500000000000004"
      pin: "2468"
      accounts:
        - {number: "2000-0001-0001", type: checking, balance: 10000}
  cassettes:
    - {denomination: 2000, count: 10}
steps:
  - {screen: welcome, insert: dora}
  - {screen: enter_pin, type: "2468"}
  - {screen: main_menu, press: F1}
  - {screen: select_account, press: F1}
  - {screen: select_amount, press: F2}
  - {screen: take_cash, take: cash}
  - {screen: take_card, take: card}
expect:
  balance_changes: {"2000-0001-0001": -4000}
  taken_cents: 4000
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> ScenarioFileError:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioFileError) as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}:")
    return caught.value


def test_the_builtin_scenarios_are_the_37_demo_scripts():
    scenarios = builtin_scenarios()
    assert len(scenarios) == 37
    assert "withdraw-alice" in scenarios and "dispense-unknown" in scenarios
    deposits = {"deposit-cash", "deposit-check", "deposit-check-no-envelope", "deposit-jam"}
    assert deposits | {"deposit-timeout"} <= set(scenarios)
    for scenario in scenarios.values():
        assert scenario.path.parent == builtin_dir()
        assert scenario.description


def test_deposit_steps_load_notes_envelope_and_returned_notes():
    scenarios = builtin_scenarios()
    cash = scenarios["deposit-cash"]
    assert cash.steps[4].notes == (10000, 10000, 5000, 5000) and cash.steps[4].press == ("ENTER",)
    assert cash.expect.available_changes == {"1000-0001-0001": 20000}
    assert cash.expect.held_cents == {"1000-0001-0001": 10000}
    assert scenarios["deposit-check"].steps[6].envelope
    jam = scenarios["deposit-jam"]
    assert jam.steps[5].fault is not None and jam.steps[5].fault.device == "acceptor"
    assert jam.steps[6].take == "notes"


def test_a_note_the_acceptor_does_not_know_names_the_line(tmp_path):
    text = GOOD.replace("press: F2", "press: F2, notes: [700]")
    error = error_of(tmp_path, text)
    assert "notes[0]" in str(error) and "700 is not one of" in str(error)


def test_a_good_file_loads_with_its_card_and_step_lines(tmp_path):
    scenario = load_file(write(tmp_path, GOOD))
    assert scenario.name == "my-withdrawal"
    card = scenario.setup.cards[0]
    assert card.pan == "5500000000000004" and card.accounts[0].balance_cents == 10000
    assert scenario.steps[0].insert == "5500000000000004=30121010000000000000"
    assert [s.line for s in scenario.steps][:2] == [13, 14]
    assert scenario.steps[4].press == ("F2",)
    assert scenario.expect.balance_changes == {"2000-0001-0001": -4000}


def test_the_schema_is_valid_json_schema_and_accepts_every_shipped_file():
    jsonschema.Draft202012Validator.check_schema(schema())
    validator = jsonschema.Draft202012Validator(schema())
    for path in sorted(builtin_dir().glob("*.yaml")):
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path
    # Editors read the schema as plain JSON from the package.
    assert json.loads((builtin_dir().parent / "scenario.schema.json").read_text())["title"]


def test_yaml_syntax_error_names_the_line(tmp_path):
    err = error_of(tmp_path, "name: x\nsteps:\n  - {screen: welcome, insert: alice\n")
    assert err.line == 4 or err.line == 3
    assert "not valid YAML" in err.problem


def test_unknown_key_names_its_line_and_the_allowed_keys(tmp_path):
    text = GOOD.replace("  - {screen: main_menu, press: F1}", "  - {screen: main_menu, pres: F1}")
    err = error_of(tmp_path, text)
    assert err.line == 15
    assert "steps[2].pres: unknown key 'pres'" in err.problem
    assert "press" in err.problem


def test_a_bad_key_name_in_a_press_names_the_line(tmp_path):
    err = error_of(tmp_path, GOOD.replace("press: F2}", "press: F9}"))
    assert err.line == 17
    assert "steps[4].press" in err.problem and "F9" in err.problem


def test_an_unknown_screen_is_refused(tmp_path):
    err = error_of(tmp_path, GOOD.replace("screen: take_cash", "screen: take_money"))
    assert err.line == 18
    assert "no screen 'take_money'" in err.problem and "take_cash" in err.problem


def test_an_unknown_card_is_refused(tmp_path):
    err = error_of(tmp_path, GOOD.replace("insert: dora", "insert: doris"))
    assert err.line == 13
    assert "no card named 'doris'" in err.problem and "dora" in err.problem


def test_a_fault_the_device_does_not_offer_is_refused(tmp_path):
    text = GOOD.replace("steps:\n", "faults:\n  - {device: dispenser, fault: explode}\nsteps:\n")
    err = error_of(tmp_path, text)
    assert err.line == 13
    assert "no fault 'explode'" in err.problem and "jam" in err.problem


def test_byte_faults_are_offered_by_the_serial_simulators_only(tmp_path):
    text = GOOD.replace("steps:\n", "faults:\n  - {device: dispenser, fault: garble}\nsteps:\n")
    assert "no fault 'garble'" in error_of(tmp_path, text).problem
    serial = text.replace("setup:\n", "setup:\n  devices: serial\n")
    assert load_file(write(tmp_path, serial, "b.yaml")).faults[0].fault == "garble"


def test_a_missing_required_key_and_a_wrong_type(tmp_path):
    err = error_of(tmp_path, "name: x\ndescription: no steps\n")
    assert err.line == 1 and "'steps' is a required property" in err.problem
    err = error_of(tmp_path, GOOD.replace("taken_cents: 4000", "taken_cents: lots"))
    assert err.line == 22 and "expect.taken_cents" in err.problem and "integer" in err.problem


def test_a_bad_pan_names_the_card_line(tmp_path):
    err = error_of(tmp_path, GOOD.replace('"5500000000000004"', '"55-00"'))
    assert err.line == 6 and "setup.cards[0].pan" in err.problem


def test_a_directory_and_duplicate_names(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(ScenarioFileError, match="also used by"):
        load_paths([tmp_path])
    with pytest.raises(ScenarioFileError, match="no such file"):
        load_paths([tmp_path / "missing.yaml"])


KILL = """\
name: my-kill
steps:
  - {screen: welcome, insert: alice, atm: kill, at: TXN_RESPONSE}
  - {screen: enter_pin, type: "1234"}
  - {screen: main_menu, press: F1}
  - {screen: select_account, press: F1}
  - {screen: select_amount, press: F4}
  - {screen: take_cash, take: cash}
  - {screen: take_card, take: card}
  - {screen: welcome, atm: restart}
"""


def test_an_atm_kill_scenario_loads_with_its_kill_point_and_restart(tmp_path):
    scenario = load_file(write(tmp_path, KILL))
    assert scenario.atm_process and scenario.restart_index == 7
    assert (scenario.steps[0].atm, scenario.steps[0].kill_at, scenario.steps[0].kill_nth) == (
        "kill",
        "TXN_RESPONSE",
        1,
    )


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (("  - {screen: welcome, atm: restart}\n", ""), 3, "one 'atm: kill' and, after it, one"),
        ((", at: TXN_RESPONSE", ""), 3, "'atm: kill' needs 'at'"),
        (("press: F4}", "press: F4, link: hold}"), 7, "until 'atm: restart' only the customer"),
        (("{screen: welcome, atm: restart}", "{screen: take_card, atm: restart}"), 10, "waits"),
        (("atm: restart}", "atm: restart, take: card}"), 10, "has only screen and says"),
        (("take: cash}", "take: cash, at: CASH_TAKEN}"), 8, "'at' goes with 'atm: kill'"),
    ],
)
def test_atm_kill_mistakes_name_the_line(tmp_path, change, line, message):
    error = error_of(tmp_path, KILL.replace(*change))
    assert error.line == line and message in str(error), str(error)
