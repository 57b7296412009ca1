"""Statements: the job queue, the worker, the PDF (read back with pypdf), S3 storage (moto)
and ``atm statement``."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from atm.cli import main
from host.bank.models import Account, StatementJob
from host.bank.services import AuthorizationService
from host.bank.statements import (
    StatementStore,
    StatementWorker,
    build_statement,
    parse_period,
    request_statement,
)
from host.config import HostConfig
from host.db import create_engine_for, session_factory
from host.errors import BadRequest, NotFound
from tests.host.conftest import ALICE_CHECKING, TEST_TPK, Clock, Requests


def today() -> dt.date:
    """The UTC date now, read where it is used (a date read once at import went stale for a
    run that crossed midnight UTC: the day's withdrawals fell outside the statement)."""
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture
def sessions(seeded_config: HostConfig):
    engine = create_engine_for(seeded_config.database_url)
    yield session_factory(engine)
    engine.dispose()


def _withdraw(config: HostConfig, sessions, amounts: list[int]) -> None:
    now = dt.datetime.now(dt.UTC)
    service = AuthorizationService(sessions, config, Clock(now))
    requests = Requests(TEST_TPK)
    for amount in amounts:
        assert service.authorize(requests.withdrawal(amount)).response_code == "00"
    service.close()


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _queue(
    sessions, number: str = ALICE_CHECKING, start: dt.date | None = None, end: dt.date | None = None
) -> int:
    day = today()
    with sessions.begin() as session:
        return request_statement(session, number, start or day, end or day).id


def test_statement_pdf_shows_the_header_every_entry_and_the_totals(seeded_config, sessions):
    _withdraw(seeded_config, sessions, [10_000, 2_500])
    job_id = _queue(sessions, start=today() - dt.timedelta(days=30))
    worker = StatementWorker(sessions, StatementStore(seeded_config))
    assert worker.run_pending() == 1
    with sessions() as session:
        job = session.get(StatementJob, job_id)
        assert job is not None and job.status == "done"
        location = job.location
    assert Path(location).parent == Path(seeded_config.statement_output_dir) / ALICE_CHECKING
    text = _pdf_text(Path(location).read_bytes())
    assert "Customer: Alice Johnson" in text
    assert "Card: 400000******7899" in text
    assert "4000001234567899" not in text
    assert f"Account: {ALICE_CHECKING} (checking)" in text
    assert "Opening balance: $0.00" in text
    assert "Closing balance: $5,125.00" in text
    assert re.search(r"Totals\s*\$125\.00\s*\$5,250\.00", text)
    assert text.count("ATM withdrawal ATM00001") == 2


def test_opening_balance_counts_what_came_before_the_period(seeded_config, sessions):
    _withdraw(seeded_config, sessions, [10_000])
    tomorrow = today() + dt.timedelta(days=1)
    with sessions() as session:
        account_id = session.scalars(
            select(Account.id).where(Account.number == ALICE_CHECKING)
        ).one()
        data = build_statement(session, account_id, tomorrow, tomorrow)
    assert data.opening_cents == data.closing_cents == 515_000 and data.lines == ()


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-02-30", "2026-03-01", "from date '2026-02-30' is not a date"),
        ("2026-03-01", "yesterday", "to date 'yesterday' is not a date"),
        ("2026-03-02", "2026-03-01", "ends (2026-03-01) before it starts"),
    ],
)
def test_bad_periods_are_refused(start, end, message):
    with pytest.raises(BadRequest, match=re.escape(message)):
        parse_period(start, end)


def test_unknown_or_internal_accounts_are_refused(sessions):
    for number in ("9999-9999-9999", "CASH-ATM00001"):
        with pytest.raises(NotFound), sessions.begin() as session:
            request_statement(session, number, today(), today())


def test_two_workers_produce_each_job_exactly_once(seeded_config, sessions):
    jobs = [_queue(sessions) for _ in range(6)]
    done: list[list[int]] = [[], []]

    class Recording(StatementWorker):
        def __init__(self, index: int) -> None:
            super().__init__(sessions, StatementStore(seeded_config))
            self.index = index

        def run_job(self, job_id: int) -> None:
            done[self.index].append(job_id)
            super().run_job(job_id)

    threads = [threading.Thread(target=Recording(i).run_pending) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(done[0] + done[1]) == jobs
    with sessions() as session:
        statuses = session.scalars(select(StatementJob.status)).all()
    assert statuses == ["done"] * 6


def test_a_locked_job_is_skipped_not_waited_for(postgres_url, tmp_path):
    """PostgreSQL only: SQLite has no row locks (its claim is the conditional update)."""
    config = HostConfig.from_env(
        {"DATABASE_URL": postgres_url, "STATEMENT_OUTPUT_DIR": str(tmp_path)}
    )
    engine = create_engine_for(postgres_url)
    sessions = session_factory(engine)
    first, second = _queue(sessions), _queue(sessions)
    worker = StatementWorker(sessions, StatementStore(config))
    with sessions.begin() as other:  # another worker is in the middle of claiming job 1
        other.scalars(select(StatementJob).where(StatementJob.id == first).with_for_update()).one()
        assert worker.claim() == second
    assert worker.claim() == first
    assert worker.claim() is None
    engine.dispose()


def test_statements_go_to_s3_when_a_bucket_is_configured(seeded_config, sessions, monkeypatch):
    """S3 is faked by moto (no AWS can exist here); boto3 runs for real against it."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = HostConfig(**{**seeded_config.__dict__, "statement_s3_bucket": "atm-statements"})
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="atm-statements")
        job_id = _queue(sessions)
        store = StatementStore(config)
        StatementWorker(sessions, store).run_pending()
        with sessions() as session:
            job = session.get(StatementJob, job_id)
            assert job is not None and job.status == "done"
            location = job.location
        assert location.startswith(f"s3://atm-statements/statements/{ALICE_CHECKING}/")
        key = location.removeprefix("s3://atm-statements/")
        body = boto3.client("s3").get_object(Bucket="atm-statements", Key=key)["Body"].read()
        assert "Closing balance: $5,250.00" in _pdf_text(body)
        assert store.load(location) == body


def test_a_missing_bucket_fails_the_job_with_its_reason(seeded_config, sessions, monkeypatch):
    """S3 is faked by moto (no AWS can exist here)."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = HostConfig(**{**seeded_config.__dict__, "statement_s3_bucket": "no-such-bucket"})
    with mock_aws():
        job_id = _queue(sessions)
        StatementWorker(sessions, StatementStore(config)).run_pending()
    with sessions() as session:
        job = session.get(StatementJob, job_id)
        assert job is not None and job.status == "failed"
        assert "NoSuchBucket" in job.error


def test_atm_statement_writes_the_pdf(seeded_config, sessions, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    _withdraw(seeded_config, sessions, [10_000])
    out = tmp_path / "out"
    code = main(
        [
            "statement",
            "--database-url",
            seeded_config.database_url,
            "--output-dir",
            str(out),
            "--account",
            ALICE_CHECKING,
            "--from",
            (today() - dt.timedelta(days=1)).isoformat(),
            "--to",
            today().isoformat(),
        ]
    )
    assert code == 0
    line = capsys.readouterr().out.strip()
    path = Path(line.removeprefix("statement written to "))
    assert path.parent.parent == out
    assert "Closing balance: $5,150.00" in _pdf_text(path.read_bytes())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--account", "1000;DROP", "--from", "2026-01-01", "--to", "2026-01-31"],
            "not an account",
        ),
        (
            ["--account", "1000-0001-0001", "--from", "2026-01-32", "--to", "2026-02-01"],
            "not a date",
        ),
        (["--account", "1000-0001-0001", "--from", "2026-02-01", "--to", "2026-01-01"], "before"),
        (
            ["--account", "4444-4444-4444", "--from", "2026-01-01", "--to", "2026-01-31"],
            "no customer",
        ),
    ],
)
def test_atm_statement_bad_input_is_one_line_and_exit_2(seeded_config, capsys, args, message):
    code = main(["statement", "--database-url", seeded_config.database_url, *args])
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_the_statement_shows_deposits_on_hold_and_the_available_balance(seeded_config, sessions):
    """Issue 20: $300 cash and a $500 check; $100 of the cash and all of the check are on
    hold, each part with the day it becomes available."""
    from host.bank.holds import business_day
    from protocol.messages import TransactionType

    now = dt.datetime.now(dt.UTC)
    service = AuthorizationService(sessions, seeded_config, Clock(now))
    requests = Requests(TEST_TPK)
    for kind, cents in ((TransactionType.DEPOSIT, 30_000), (TransactionType.CHECK_DEPOSIT, 50_000)):
        assert service.authorize(requests.make(kind, amount=cents)).response_code == "00"
    service.close()
    job_id = _queue(sessions)
    assert StatementWorker(sessions, StatementStore(seeded_config)).run_pending() == 1
    with sessions() as session:
        job = session.get(StatementJob, job_id)
        assert job is not None
        text = _pdf_text(Path(job.location).read_bytes())
    next_day, second_day = (business_day(now, n).date().isoformat() for n in (1, 2))
    assert "Funds on hold at the end of the period" in text
    assert re.search(rf"{now.date().isoformat()}\s*Cash deposit\s*\$100\.00\s*{next_day}", text)
    assert re.search(rf"Check deposit\s*\$200\.00\s*{next_day}", text)
    assert re.search(rf"Check deposit\s*\$300\.00\s*{second_day}", text)
    assert "Closing balance: $6,050.00" in text
    assert "On hold: $600.00. Available balance: $5,450.00" in text


def test_a_hold_released_before_the_period_ended_is_not_shown(seeded_config, sessions):
    from protocol.messages import TransactionType

    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    service = AuthorizationService(sessions, seeded_config, Clock(long_ago))
    request = Requests(TEST_TPK).make(TransactionType.DEPOSIT, amount=30_000)
    assert service.authorize(request).response_code == "00"
    service.close()
    worker = StatementWorker(sessions, StatementStore(seeded_config))
    assert worker.release_holds() == 1  # the worker's clock: now, days after the release
    with sessions() as session:
        account_id = session.scalars(
            select(Account.id).where(Account.number == ALICE_CHECKING)
        ).one()
        before = build_statement(session, account_id, long_ago.date(), long_ago.date())
        after = build_statement(session, account_id, long_ago.date(), today())
    assert [(h.amount_cents, h.kind) for h in before.holds] == [(10_000, "cash")]
    assert before.available_cents == before.closing_cents - 10_000
    assert after.holds == () and after.available_cents == after.closing_cents
