"""``atm admin create-operator``, ``export`` and ``import`` (the web half's subcommands) on a
seeded database (SQLite and PostgreSQL): the password never from an argument, a snapshot
round trip through a file with the ledger clean afterwards, and the audit rows they write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from atm.cli import main
from atm.commands.admin_web import PASSWORD_VARIABLE
from host.admin.models import Operator
from host.db import create_engine_for, session_factory

ALICE = "4000001234567899"


@pytest.fixture
def admin(seeded_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("ENVIRONMENT", "testing")

    def run(*words: str) -> tuple[int, str, str]:
        code = main(["admin", "--database-url", seeded_url, "--actor", "olga", *words])
        out, err = capsys.readouterr()
        return code, out, err

    run.url = seeded_url  # type: ignore[attr-defined]  # the fixture's database, for checks
    return run


def test_create_operator_takes_the_password_from_the_environment_only(admin, monkeypatch):
    with pytest.raises(SystemExit) as refused:
        admin("create-operator", "ada", "--role", "admin", "admin-password-3")
    assert refused.value.code == 2
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    code, _, err = admin("create-operator", "ada", "--role", "admin")
    assert code == 2 and PASSWORD_VARIABLE in err  # no terminal to ask on
    monkeypatch.setenv(PASSWORD_VARIABLE, "short")
    code, _, err = admin("create-operator", "ada", "--role", "admin")
    assert code == 2 and "at least 12" in err
    monkeypatch.setenv(PASSWORD_VARIABLE, "admin-password-3")
    assert admin("create-operator", "ada", "--role", "admin") == (
        0,
        "operator ada created (admin)\n",
        "",
    )
    code, _, err = admin("create-operator", "ada", "--role", "viewer")
    assert code == 2 and "exists already" in err
    engine = create_engine_for(admin.url)
    try:
        with session_factory(engine)() as session:
            stored = session.scalars(select(Operator)).one()
            assert stored.role == "admin" and "admin-password-3" not in stored.password_hash
    finally:
        engine.dispose()
    audit = admin("audit", "--action", "operator.")[1]
    assert "olga(admin, cli) operator.create operator ada" in audit
    assert "admin-password-3" not in admin("audit", "--csv", "-")[1]


def test_export_and_import_through_a_file(admin, tmp_path: Path):
    target = tmp_path / "bank.json"
    code, out, _ = admin("export", str(target))
    assert code == 0
    assert out == (f"exported 3 customers, 5 accounts, 5 cards (without PIN hashes) to {target}\n")
    document = json.loads(target.read_text())
    assert '"pin_hash"' not in target.read_text() and "$2b$" not in target.read_text()
    code, out, _ = admin("export", "-", "--pin-hashes")
    assert code == 0 and '"pin_hash": "$2b$' in out
    alice = next(c for c in document["customers"] if c["name"] == "Alice Johnson")
    alice["accounts"][0]["balance_cents"] += 1_000
    target.write_text(json.dumps(document))
    code, out, _ = admin("import", str(target), "--on-conflict", "skip")
    assert code == 0 and "0 created, 0 replaced, 10 skipped, balances moved 0 cents" in out
    code, out, _ = admin("import", str(target), "--on-conflict", "replace")
    assert code == 0 and "balances moved 1000 cents" in out
    assert "replaced account 1000-0001-0001" in out
    assert "1000-0001-0001" in admin("accounts", "--customer", "1")[1]
    assert "balance       526000" in admin("accounts", "--customer", "1")[1]
    code, out, _ = main_check_ledger(admin.url)
    assert code == 0, out
    audit = admin("audit", "--action", "bank.")[1]
    assert audit.count("bank.export") == 2 and audit.count("bank.import") == 2
    assert "'pin_hashes': True" in audit


def main_check_ledger(url: str) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["host", "--database-url", url, "check-ledger"])
    return code, out.getvalue(), err.getvalue()


def test_import_refuses_a_bad_file_and_changes_nothing(admin, tmp_path: Path):
    missing = tmp_path / "nope.json"
    code, _, err = admin("import", str(missing), "--on-conflict", "skip")
    assert code == 2 and "cannot read" in err
    junk = tmp_path / "junk.json"
    junk.write_text('{"format": "something"}')
    code, _, err = admin("import", str(junk), "--on-conflict", "replace")
    assert code == 2 and "not a bank snapshot" in err
    assert "bank.import" not in admin("audit")[1]


def test_operators_are_listed_and_changed_from_the_command_line(admin, monkeypatch):
    monkeypatch.setenv(PASSWORD_VARIABLE, "admin-password-3")
    assert admin("create-operator", "ada", "--role", "admin")[0] == 0
    assert admin("create-operator", "otto", "--role", "operator")[0] == 0
    assert admin("operators") == (0, "ada  admin, active\notto  operator, active\n", "")
    assert admin("operator", "otto", "--role", "admin") == (0, "otto  admin, active\n", "")
    code, _, err = admin("operator", "otto", "--role", "admin")
    assert code == 2 and "already admin" in err
    code, _, err = admin("operator", "nobody", "--deactivate")
    assert code == 2 and "no operator 'nobody'" in err
    assert admin("operator", "otto", "--deactivate") == (0, "otto  admin, deactivated\n", "")
    assert admin("operator", "otto", "--reactivate") == (0, "otto  admin, active\n", "")
    # The way back in for an admin who forgot the password: a reset, changed at next login.
    monkeypatch.setenv(PASSWORD_VARIABLE, "short")
    code, _, err = admin("operator", "ada", "--reset-password")
    assert code == 2 and "at least 12" in err
    monkeypatch.setenv(PASSWORD_VARIABLE, "ada-reset-password")
    assert admin("operator", "ada", "--reset-password") == (
        0,
        "ada  admin, active, password change due\n",
        "",
    )
    with pytest.raises(SystemExit):
        admin("operator", "ada", "--deactivate", "--reactivate")  # one change at a time
    audit = admin("audit", "--action", "operator.")[1]
    for line in (
        "olga(admin, cli) operator.set_role operator otto",
        "olga(admin, cli) operator.deactivate operator otto",
        "olga(admin, cli) operator.reactivate operator otto",
        "olga(admin, cli) operator.reset_password operator ada",
    ):
        assert line in audit, line
    assert "ada-reset-password" not in admin("audit", "--csv", "-")[1]
