"""Bank snapshots: export (PIN hashes only when asked), import with skip and replace through
the ledger (check-ledger clean afterwards), all-or-nothing on bad input, a card without its PIN
hash imported blocked, S3 storage (moto stands in for AWS, which cannot exist here), and the
admin API's export and import routes."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from host.admin.snapshot import (
    SnapshotError,
    export_bank,
    import_bank,
    read_snapshot,
    write_snapshot,
)
from host.bank.holds import check_holds
from host.bank.ledger import LedgerProblem, check_ledger
from host.bank.models import Account, Card, Posting
from host.db import create_engine_for, migrate, session_factory
from host.errors import BadRequest
from tests.host.admin.conftest import AdminRig
from tests.host.conftest import ALICE, ALICE_CHECKING, BOB_CHECKING

NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def sessions(seeded_config):
    engine = create_engine_for(seeded_config.database_url)
    yield session_factory(engine)
    engine.dispose()


def export(sessions: sessionmaker[Session], **kw: bool) -> dict[str, Any]:
    with sessions() as session:
        return export_bank(session, now=NOW, **kw)


def balances(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return dict(session.execute(select(Account.number, Account.balance_cents)).all())


def ledger_problems(sessions: sessionmaker[Session]) -> list[LedgerProblem]:
    with sessions() as session:
        return check_ledger(session) + check_holds(session)


def test_export_holds_the_bank_and_pin_hashes_only_when_asked(sessions):
    document = export(sessions)
    assert document["format"] == "atm-simulator bank snapshot"
    assert document["pin_hashes"] is False
    alice = next(c for c in document["customers"] if c["name"] == "Alice Johnson")
    assert alice["active"] is True
    assert alice["accounts"][0] == {
        "number": ALICE_CHECKING,
        "kind": "checking",
        "currency": "840",
        "status": "open",
        "balance_cents": 525_000,
    }
    assert alice["cards"][0] == {
        "pan": ALICE,
        "expiry": "3012",
        "status": "active",
        "pin_change_required": False,
        "accounts": {"10": "1000-0001-0002", "20": ALICE_CHECKING},
    }
    assert "$2b$" not in json.dumps(document)
    with_hashes = export(sessions, with_pin_hashes=True)
    assert with_hashes["pin_hashes"] is True
    assert all(
        card["pin_hash"].startswith("$2b$")
        for customer in with_hashes["customers"]
        for card in customer["cards"]
    )


def test_round_trip_into_an_empty_bank(sessions, tmp_path):
    document = export(sessions, with_pin_hashes=True)
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate(url)
    engine = create_engine_for(url)
    empty = session_factory(engine)
    try:
        with empty.begin() as session:
            report = import_bank(session, document, policy="skip")
        assert report.skipped == []
        assert "account 1000-0001-0001" in report.created
        customer_cents = sum(
            a["balance_cents"] for c in document["customers"] for a in c["accounts"]
        )
        assert report.moved_cents == customer_cents == 1_870_075
        assert balances(empty)["EQUITY-OPENING"] == -customer_cents
        copy_back = export(empty, with_pin_hashes=True)
        assert copy_back["customers"] == document["customers"]
        assert ledger_problems(empty) == []
        with empty() as session:
            kinds = set(session.scalars(select(Posting.kind)))
        assert kinds == {"snapshot-import"}
    finally:
        engine.dispose()


def test_skip_leaves_existing_records_and_replace_posts_the_difference(sessions):
    document = export(sessions)
    changed = copy.deepcopy(document)
    alice = next(c for c in changed["customers"] if c["name"] == "Alice Johnson")
    alice["accounts"][0]["balance_cents"] = 600_000
    alice["cards"][0]["status"] = "blocked"
    alice["accounts"][1]["status"] = "frozen"
    before = balances(sessions)
    with sessions.begin() as session:
        report = import_bank(session, changed, policy="skip")
    assert report.created == [] and report.replaced == []
    assert f"account {ALICE_CHECKING}" in report.skipped
    assert "card 400000******7899" in report.skipped
    assert balances(sessions) == before
    with sessions.begin() as session:
        report = import_bank(session, changed, policy="replace")
    assert report.moved_cents == 75_000
    after = balances(sessions)
    assert after[ALICE_CHECKING] == 600_000
    assert after["EQUITY-OPENING"] == before["EQUITY-OPENING"] - 75_000
    assert {n: c for n, c in after.items() if n not in (ALICE_CHECKING, "EQUITY-OPENING")} == {
        n: c for n, c in before.items() if n not in (ALICE_CHECKING, "EQUITY-OPENING")
    }
    assert ledger_problems(sessions) == []
    with sessions() as session:
        card = session.scalars(select(Card).where(Card.pan == ALICE)).one()
        assert card.status == "blocked"
        assert card.pin_hash.startswith("$2b$")  # kept: the snapshot had no hash
        savings = session.scalars(select(Account).where(Account.number == "1000-0001-0002")).one()
        assert savings.status == "frozen"
    # The same snapshot again changes nothing.
    with sessions.begin() as session:
        assert import_bank(session, changed, policy="replace").moved_cents == 0


def test_a_new_card_without_its_pin_hash_is_imported_blocked(sessions):
    document = export(sessions)
    bob = next(c for c in document["customers"] if c["name"] == "Bob Williams")
    bob["cards"].append(
        {"pan": "4000001230000008", "expiry": "3012", "status": "active",
         "accounts": {"20": BOB_CHECKING}}
    )  # fmt: skip
    with sessions.begin() as session:
        report = import_bank(session, document, policy="skip")
    assert report.created == ["card 400000******0008"]
    with sessions() as session:
        card = session.scalars(select(Card).where(Card.pan == "4000001230000008")).one()
        assert card.status == "blocked"
        assert card.pin_hash.startswith("$2b$")


BAD = [
    ({"format": "something else"}, "not a bank snapshot"),
    ({"version": 9}, "snapshot version 9"),
    ({"customers": {}}, "'customers' must be a list"),
    ({"customers": [{"name": ""}]}, r"customers\[0\]: 'name'"),
    (
        {"customers": [{"name": "X", "accounts": [{"number": "9-1", "kind": "cash",
                                                   "balance_cents": 1}]}]},
        r"customers\[0\].accounts\[0\]: 'kind'",
    ),
    (
        {"customers": [{"name": "X", "accounts": [{"number": "9-1", "kind": "savings",
                                                   "balance_cents": -5}]}]},
        "'balance_cents' must be a whole number of cents >= 0",
    ),
    (
        {"customers": [{"name": "X", "accounts": [{"number": "9-1", "kind": "savings",
                                                   "balance_cents": 1.5}]}]},
        "'balance_cents'",
    ),
    (
        {"customers": [{"name": "X", "cards": [{"pan": "12ab", "expiry": "3012"}]}]},
        "'pan' must be 12 to 19 digits",
    ),
    (
        {"customers": [{"name": "X", "cards": [{"pan": "400000123400001", "expiry": "3012",
                                                "accounts": {"20": "no-such"}}]}]},
        "names account no-such, which is nowhere",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("change", "problem"), BAD)
def test_a_bad_snapshot_changes_nothing(sessions, change, problem):
    document = {**export(sessions), **change}
    before = export(sessions, with_pin_hashes=True)
    with pytest.raises(BadRequest, match=problem), sessions.begin() as session:
        import_bank(session, document, policy="replace")
    assert export(sessions, with_pin_hashes=True) == before


def test_an_unknown_policy_is_refused(sessions):
    with pytest.raises(BadRequest, match="unknown conflict policy 'merge'"), sessions() as s:
        import_bank(s, export(sessions), policy="merge")


def test_snapshots_in_a_file_and_in_s3(sessions, tmp_path, monkeypatch):
    """S3 is faked by moto (no AWS can exist here); boto3 runs for real against it."""
    import boto3
    from moto import mock_aws

    document = export(sessions)
    path = tmp_path / "out" / "bank.json"
    assert write_snapshot(document, str(path)) == str(path)
    assert path.stat().st_mode & 0o077 == 0  # PANs inside: owner only
    assert read_snapshot(str(path)) == document
    with pytest.raises(SnapshotError, match="cannot read"):
        read_snapshot(str(tmp_path / "missing.json"))
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(SnapshotError, match="not JSON"):
        read_snapshot(str(tmp_path / "junk.json"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="atm-snapshots")
        location = "s3://atm-snapshots/daily/bank.json"
        assert write_snapshot(document, location) == location
        assert read_snapshot(location) == document
        with pytest.raises(SnapshotError, match=r"s3://no-such-bucket/x\.json: cannot write"):
            write_snapshot(document, "s3://no-such-bucket/x.json")
        with pytest.raises(SnapshotError, match="s3://BUCKET/KEY"):
            read_snapshot("s3://atm-snapshots")


async def test_export_and_import_over_the_admin_api(admin: AdminRig):
    ada = await admin.client("ada")
    otto = await admin.client("otto")
    assert (await otto.get("/admin/api/snapshot"))[0] == 403
    status, document = await ada.get("/admin/api/snapshot")
    assert status == 200
    assert "$2b$" not in json.dumps(document)
    status, with_hashes = await ada.get("/admin/api/snapshot?pin_hashes=1")
    assert status == 200 and with_hashes["pin_hashes"] is True
    bob = next(c for c in document["customers"] if c["name"] == "Bob Williams")
    bob["accounts"][0]["balance_cents"] = 100_000
    status, report = await ada.post(
        "/admin/api/snapshot", {"policy": "replace", "snapshot": document}
    )
    assert status == 200, report
    assert report["moved_cents"] == 100_000 - 85_075
    assert admin.host.balance(BOB_CHECKING) == 100_000
    status, body = await ada.post("/admin/api/snapshot", {"policy": "merge", "snapshot": document})
    assert status == 400 and "unknown conflict policy" in body["error"]
    with admin.host.sessions() as session:
        assert check_ledger(session) == []
        assert session.scalar(select(func.count()).select_from(Posting).where(
            Posting.kind == "snapshot-import")) == 1  # fmt: skip
