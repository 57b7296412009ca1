"""``atm admin``: each operation from the command line, on a seeded database (SQLite and
PostgreSQL), as a script or an operator would run it; the audit trail as text and CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from atm.cli import main
from atm.commands.admin import PIN_ENV, SUBCOMMANDS

ALICE = "4000001234567899"


@pytest.fixture
def admin(seeded_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("ENVIRONMENT", "testing")

    def run(*words: str) -> tuple[int, str, str]:
        code = main(["admin", "--database-url", seeded_url, "--actor", "olga", *words])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_freeze_report_terminal_maintenance_and_the_audit_csv(admin, tmp_path: Path) -> None:
    assert admin("freeze-account", "1000-0001-0001")[1] == "account 1000-0001-0001 frozen\n"
    code, _, err = admin("freeze-account", "1000-0001-0001")
    assert code == 2 and "is already frozen" in err
    assert admin("report-card", ALICE, "--stolen")[1] == "card 400000******7899 reported stolen\n"
    assert admin("terminal", "ATM00003", "--out-of-service")[1] == (
        "terminal ATM00003 out of service\n"
    )
    assert admin("maintenance", "on")[1] == "maintenance mode on\n"
    assert admin("maintenance", "status")[1] == "maintenance mode on\n"
    terminals = admin("terminals")[1]
    assert "ATM00003 OUT-OF-SERVICE" in terminals and "maintenance mode" in terminals
    cards = admin("cards", "--customer", "1")[1]
    assert cards.split()[:2] == ["400000******7899", "stolen"] and ALICE not in cards
    target = tmp_path / "audit.csv"
    assert admin("audit", "--csv", str(target))[1] == f"4 audit rows written to {target}\n"
    rows = list(csv.DictReader(target.open()))
    assert [r["action"] for r in rows] == [
        "account.freeze",
        "card.report_stolen",
        "terminal.out_of_service",
        "bank.maintenance",
    ]
    assert {r["actor"] for r in rows} == {"olga"} and {r["source"] for r in rows} == {"cli"}
    assert ALICE not in target.read_text()
    assert "card.report_stolen" in admin("audit", "--action", "card.")[1]


def test_pin_comes_from_the_environment_never_an_argument(
    admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as refused:
        admin("reset-pin", ALICE, "2580")
    assert refused.value.code == 2
    monkeypatch.setenv(PIN_ENV, "1111")
    code, _, err = admin("reset-pin", ALICE)
    assert code == 2 and "may not repeat one digit" in err
    monkeypatch.setenv(PIN_ENV, "2580")
    assert "to be changed at the next use" in admin("reset-pin", ALICE)[1]
    code, out, _ = admin("issue-card", "2", "--account", "1000-0002-0001")
    assert code == 0 and out.startswith("card 400000")
    assert "2580" not in admin("audit", "--csv", "-")[1]


def test_customer_and_account_lifecycle(admin) -> None:
    code, out, _ = admin("create-customer", "Dana Evans")
    customer = out.split()[1]
    assert code == 0 and out == f"customer {customer} created: Dana Evans\n"
    opened = admin("open-account", customer, "--kind", "savings")[1]
    number = opened.split()[1]
    assert opened == f"account {number} (savings) opened\n"
    assert admin("close-account", number)[1] == f"account {number} closed\n"
    code, _, err = admin("close-account", "1000-0001-0001")
    assert code == 2 and "zero balance" in err
    code, _, err = admin("deactivate-customer", "999")
    assert code == 2 and "no customer with id 999" in err
    assert admin("deactivate-customer", customer)[1] == f"customer {customer} deactivated\n"


def test_every_subcommand_has_help() -> None:
    names = [c.name for c in SUBCOMMANDS]
    assert len(names) == len(set(names))
    for name in names:
        with pytest.raises(SystemExit) as done:
            main(["admin", name, "--help"])
        assert done.value.code == 0
