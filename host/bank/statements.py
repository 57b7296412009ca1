"""Account statements: a job queue in the database, a worker that claims jobs and renders a PDF
(reportlab), and storage in ``STATEMENT_OUTPUT_DIR`` or an S3 bucket (``STATEMENT_S3_BUCKET``).

Claiming is safe with several workers and several host processes: on PostgreSQL the worker
selects the oldest queued job ``FOR UPDATE SKIP LOCKED`` (workers never wait on each other);
on every database the claim is a conditional update (``status = 'queued'``) whose row count
says who won. The period is a range of UTC calendar days, both ends included.

Jobs are claimed under a lease (``StatementWorker``): a worker that dies mid-job leaves the job
to another once the lease expires; a job that fails with an error that may pass is retried, and
after the last attempt it is ``failed`` with its reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Escapes text into reportlab paragraph markup; no XML is parsed (bandit B406 is about parsing).
from xml.sax.saxutils import escape  # nosec B406

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from host.bank.holds import release_due
from host.bank.ministatement import label
from host.bank.models import (
    Account,
    Card,
    CardAccount,
    Customer,
    Entry,
    Hold,
    Posting,
    StatementJob,
)
from host.config import HostConfig
from host.errors import BadRequest, NotFound, StatementError
from protocol.masking import mask_pan

__all__ = [
    "StatementData",
    "StatementHold",
    "StatementLine",
    "StatementStore",
    "StatementWorker",
    "build_statement",
    "job_view",
    "parse_period",
    "render_pdf",
    "request_statement",
]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
MAX_PERIOD_DAYS = 366 * 5


def parse_period(date_from: str, date_to: str) -> tuple[dt.date, dt.date]:
    """Both dates as ``YYYY-MM-DD``; raises ``BadRequest`` naming the bad one."""
    dates: list[dt.date] = []
    for name, text in (("from", date_from), ("to", date_to)):
        try:
            dates.append(dt.date.fromisoformat(text))
        except (TypeError, ValueError):
            raise BadRequest(f"{name} date {text!r} is not a date (YYYY-MM-DD)") from None
    start, end = dates
    if end < start:
        raise BadRequest(f"the period ends ({end}) before it starts ({start})")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise BadRequest(f"the period is longer than {MAX_PERIOD_DAYS} days")
    return start, end


def _customer_account(session: Session, number: str) -> Account:
    account = session.scalar(select(Account).where(Account.number == number))
    if account is None or account.customer_id is None:
        raise NotFound(f"no customer account {number}")
    return account


def request_statement(
    session: Session,
    account_number: str,
    start: dt.date,
    end: dt.date,
    *,
    now: dt.datetime | None = None,
) -> StatementJob:
    """Queue a statement job (the caller commits)."""
    account = _customer_account(session, account_number)
    job = StatementJob(
        account_id=account.id,
        period_from=start,
        period_to=end,
        status="queued",
        location="",
        error="",
        requested_at=now or dt.datetime.now(dt.UTC),
    )
    session.add(job)
    session.flush()
    return job


def job_view(job: StatementJob) -> dict[str, Any]:
    return {
        "job": job.id,
        "account": job.account.number,
        "from": job.period_from.isoformat(),
        "to": job.period_to.isoformat(),
        "status": job.status,
        "error": job.error or None,
        "attempts": job.attempts,
        "ready": job.status == "done",
    }


@dataclasses.dataclass(frozen=True)
class StatementLine:
    date: dt.date
    description: str
    amount_cents: int
    balance_cents: int


@dataclasses.dataclass(frozen=True)
class StatementHold:
    """Part of a deposit still on hold at the end of the period."""

    deposited: dt.date
    kind: str  # cash | check
    amount_cents: int
    available_on: dt.date


@dataclasses.dataclass(frozen=True)
class StatementData:
    customer: str
    masked_card: str
    account_number: str
    account_kind: str
    period_from: dt.date
    period_to: dt.date
    opening_cents: int
    closing_cents: int
    lines: tuple[StatementLine, ...]
    holds: tuple[StatementHold, ...] = ()

    @property
    def held_cents(self) -> int:
        return sum(hold.amount_cents for hold in self.holds)

    @property
    def available_cents(self) -> int:
        """The closing balance less what is on hold at the end of the period."""
        return self.closing_cents - self.held_cents

    @property
    def total_debits(self) -> int:
        return -sum(line.amount_cents for line in self.lines if line.amount_cents < 0)

    @property
    def total_credits(self) -> int:
        return sum(line.amount_cents for line in self.lines if line.amount_cents > 0)


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def build_statement(
    session: Session, account_id: int, start: dt.date, end: dt.date
) -> StatementData:
    account = session.get(Account, account_id)
    if account is None or account.customer_id is None:
        raise NotFound(f"no customer account with id {account_id}")
    customer = session.get(Customer, account.customer_id)
    pan = session.scalar(
        select(Card.pan)
        .join(CardAccount, CardAccount.card_id == Card.id)
        .where(CardAccount.account_id == account.id, Card.status == "active")
        .order_by(Card.id)
    )
    begin, stop = _day_start(start), _day_start(end + dt.timedelta(days=1))
    opening = int(
        session.scalar(
            select(func.coalesce(func.sum(Entry.amount_cents), 0)).where(
                Entry.account_id == account.id, Entry.created_at < begin
            )
        )
        or 0
    )
    rows = session.execute(
        select(Entry.created_at, Entry.amount_cents, Posting.kind, Posting.description)
        .join(Posting, Entry.posting_id == Posting.id)
        .where(
            Entry.account_id == account.id,
            Entry.created_at >= begin,
            Entry.created_at < stop,
        )
        .order_by(Entry.created_at, Entry.id)
    ).all()
    balance = opening
    lines: list[StatementLine] = []
    for created_at, amount, kind, description in rows:
        balance += amount
        text = description or label(kind, amount, "")
        lines.append(StatementLine(created_at.date(), text, int(amount), balance))
    # On hold at the end of the period: placed before it ended, not yet released or
    # reversed then (released_at is set by both).
    held = session.scalars(
        select(Hold)
        .where(
            Hold.account_id == account.id,
            Hold.placed_at < stop,
            or_(Hold.released_at.is_(None), Hold.released_at >= stop),
        )
        .order_by(Hold.placed_at, Hold.release_at, Hold.id)
    ).all()
    holds = tuple(
        StatementHold(
            _utc(hold.placed_at).date(),
            hold.kind,
            int(hold.amount_cents),
            _utc(hold.release_at).date(),
        )
        for hold in held
    )
    return StatementData(
        customer=customer.name if customer else "",
        masked_card=mask_pan(pan) if pan else "(no card)",
        account_number=account.number,
        account_kind=account.kind,
        period_from=start,
        period_to=end,
        opening_cents=opening,
        closing_cents=balance,
        lines=tuple(lines),
        holds=holds,
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    """SQLite gives naive datetimes back: they were stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def render_pdf(data: StatementData) -> bytes:
    """One PDF: header (customer, masked card, account, period), opening balance, every entry
    with its running balance, totals and closing balance; then the deposits still on hold at
    the end of the period (amount and the day each becomes available) and the available
    balance."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Statement {data.account_number}",
        author="atm-simulator host",
        invariant=1,  # the same statement renders to the same bytes
    )
    styles = getSampleStyleSheet()
    story: list[Any] = [  # Paragraph reads markup: escape what comes from the database
        Paragraph("Account statement", styles["Title"]),
        Paragraph(f"Customer: {escape(data.customer)}", styles["Normal"]),
        Paragraph(f"Card: {escape(data.masked_card)}", styles["Normal"]),
        Paragraph(
            f"Account: {escape(data.account_number)} ({escape(data.account_kind)})",
            styles["Normal"],
        ),
        Paragraph(
            f"Period: {data.period_from.isoformat()} to {data.period_to.isoformat()}",
            styles["Normal"],
        ),
        Spacer(1, 12),
        Paragraph(f"Opening balance: {money(data.opening_cents)}", styles["Normal"]),
        Spacer(1, 6),
    ]
    rows: list[list[str]] = [["Date", "Description", "Debit", "Credit", "Balance"]]
    for line in data.lines:
        rows.append(
            [
                line.date.isoformat(),
                line.description[:48],
                money(-line.amount_cents) if line.amount_cents < 0 else "",
                money(line.amount_cents) if line.amount_cents > 0 else "",
                money(line.balance_cents),
            ]
        )
    if not data.lines:
        rows.append(["", "No entries in this period", "", "", ""])
    rows.append(["", "Totals", money(data.total_debits), money(data.total_credits), ""])
    table = Table(rows, repeatRows=1, colWidths=[70, 200, 70, 70, 80])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
                ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
            ]
        )
    )
    story += [
        table,
        Spacer(1, 12),
        Paragraph(f"Closing balance: {money(data.closing_cents)}", styles["Normal"]),
    ]
    if data.holds:
        held_rows: list[list[str]] = [["Deposited", "Deposit", "On hold", "Available on"]]
        for hold in data.holds:
            held_rows.append(
                [
                    hold.deposited.isoformat(),
                    "Cash deposit" if hold.kind == "cash" else "Check deposit",
                    money(hold.amount_cents),
                    hold.available_on.isoformat(),
                ]
            )
        holds_table = Table(held_rows, repeatRows=1, colWidths=[70, 200, 70, 80])
        holds_table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                    ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
                    ("FONTSIZE", (0, 0), (-1, -1), 9),
                ]
            )
        )
        story += [
            Spacer(1, 12),
            Paragraph("Funds on hold at the end of the period", styles["Heading3"]),
            holds_table,
            Spacer(1, 6),
            Paragraph(
                f"On hold: {money(data.held_cents)}. "
                f"Available balance: {money(data.available_cents)}",
                styles["Normal"],
            ),
        ]
    doc.build(story)
    return buffer.getvalue()


class StatementStore:
    """Where PDFs go: a directory, or an S3 bucket when one is configured."""

    def __init__(self, config: HostConfig) -> None:
        self.directory = Path(config.statement_output_dir)
        self.bucket = config.statement_s3_bucket
        self._s3: Any = None

    def _client(self) -> Any:
        if self._s3 is None:
            try:
                import boto3
            except ImportError as exc:
                raise StatementError(
                    "STATEMENT_S3_BUCKET is set but boto3 is not installed "
                    "(pip install 'atm-simulator[s3]')"
                ) from exc
            self._s3 = boto3.client("s3")
        return self._s3

    def save(self, name: str, pdf: bytes) -> str:
        if self.bucket:
            key = f"statements/{name}"
            try:
                self._client().put_object(
                    Bucket=self.bucket, Key=key, Body=pdf, ContentType="application/pdf"
                )
            except StatementError:
                raise
            except Exception as exc:  # botocore's errors: one root for all of them here
                raise StatementError(f"cannot store s3://{self.bucket}/{key}: {exc}") from exc
            return f"s3://{self.bucket}/{key}"
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(pdf)
        partial.replace(path)  # never a half-written PDF under the final name
        return str(path)

    def load(self, location: str) -> bytes:
        if location.startswith("s3://"):
            bucket, _, key = location.removeprefix("s3://").partition("/")
            try:
                body = self._client().get_object(Bucket=bucket, Key=key)["Body"]
                return bytes(body.read())
            except StatementError:
                raise
            except Exception as exc:
                raise StatementError(f"cannot read {location}: {exc}") from exc
        try:
            return Path(location).read_bytes()
        except OSError as exc:
            raise StatementError(f"cannot read {location}: {exc}") from exc


class StatementWorker:
    """Claims statement jobs under a lease and produces them.

    A claimed job is ``running`` with ``worker`` = this worker and ``lease_until`` = now +
    ``lease_seconds``. A worker that dies (killed, host crash) leaves its lease to expire; any
    worker then takes the job over. A job that fails with an error that may pass (an OS error
    writing the file, a storage or database fault) goes back to the queue, not to be retried
    before ``retry_seconds``; a permanent error (bad account, bad period) fails it at once. After
    ``max_attempts`` claims the job is ``failed`` with the last reason, so its download answers
    the reason instead of 409 for ever. Finishing is conditional on still holding the lease, so
    a worker that lost its job to another never overwrites the other's result.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: StatementStore,
        *,
        clock: Clock | None = None,
        name: str | None = None,
        lease_seconds: float = 300.0,
        retry_seconds: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.retry = dt.timedelta(seconds=retry_seconds)
        self.max_attempts = max_attempts
        self.wake = threading.Event()
        self._finished = threading.Condition()
        self._finished_jobs: set[int] = set()

    def claim(self, job_id: int | None = None) -> int | None:
        """Take the oldest claimable job (or ``job_id``) for this worker: queued and due, or
        running with an expired lease. None when there is none (or another worker took it
        first). A job whose lease expired ``max_attempts`` times is failed, not claimed."""
        while True:
            with self._sessions.begin() as session:
                now = self._clock()
                claimable = or_(
                    and_(
                        StatementJob.status == "queued",
                        or_(StatementJob.lease_until.is_(None), StatementJob.lease_until <= now),
                    ),
                    and_(StatementJob.status == "running", StatementJob.lease_until < now),
                )
                query = select(StatementJob).where(claimable)
                if job_id is not None:
                    query = query.where(StatementJob.id == job_id)
                job = session.scalar(
                    query.order_by(StatementJob.id).limit(1).with_for_update(skip_locked=True)
                )
                if job is None:
                    return None
                candidate, status, attempts = job.id, job.status, job.attempts
                previous, lease_until = job.worker, job.lease_until
                if status == "running" and attempts >= self.max_attempts:
                    reason = (
                        f"worker {previous} stopped without finishing "
                        f"({attempts} attempts; lease expired)"
                    )
                    values: dict[str, Any] = {
                        "status": "failed",
                        "error": reason,
                        "finished_at": now,
                        "lease_until": None,
                    }
                else:
                    values = {
                        "status": "running",
                        "started_at": now,
                        "lease_until": now + self.lease,
                        "attempts": attempts + 1,
                        "worker": self.name,
                    }
                # The row's state as read: whoever changed it since has won.
                claimed = session.execute(
                    update(StatementJob)
                    .where(
                        StatementJob.id == candidate,
                        StatementJob.status == status,
                        StatementJob.attempts == attempts,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                won = getattr(claimed, "rowcount", 0) == 1
            if not won:
                return None
            if values["status"] == "failed":
                log.error("statement job %d failed: %s", candidate, values["error"])
                if job_id is not None:
                    return None
                continue  # look for the next job
            if status == "running":
                log.warning(
                    "statement job %d taken over from worker %s (lease expired at %s)",
                    candidate,
                    previous,
                    lease_until,
                )
            return candidate

    def run_job(self, job_id: int) -> None:
        """Produce a claimed job's PDF and record where it went (or why it failed)."""
        try:
            with self._sessions() as session:
                job = session.get(StatementJob, job_id)
                assert job is not None
                attempts = job.attempts
                data = build_statement(session, job.account_id, job.period_from, job.period_to)
            name = (
                f"{data.account_number}/statement-{data.account_number}-"
                f"{data.period_from:%Y%m%d}-{data.period_to:%Y%m%d}-{job_id}.pdf"
            )
            location = self._store.save(name, render_pdf(data))
        except (StatementError, NotFound) as exc:
            log.error("statement job %d failed: %s", job_id, exc)
            self._finish(job_id, "failed", error=str(exc)[:500])
            return
        except (OSError, SQLAlchemyError) as exc:
            # May pass (disk full, a permission put right, the database back): try again
            # later, up to max_attempts, then fail with the reason.
            reason = f"{type(exc).__name__}: {exc}"[:500]
            if attempts >= self.max_attempts:
                log.error("statement job %d failed after %d attempts: %s", job_id, attempts, reason)
                self._finish(job_id, "failed", error=reason)
            else:
                log.warning(
                    "statement job %d attempt %d failed, will retry: %s", job_id, attempts, reason
                )
                self._finish(job_id, "queued", error=reason)
            return
        self._finish(job_id, "done", location=location)
        log.info("statement job %d written to %s", job_id, location)

    def _finish(self, job_id: int, status: str, *, location: str = "", error: str = "") -> None:
        now = self._clock()
        values: dict[str, Any] = {"status": status, "location": location, "error": error}
        if status == "queued":
            values["lease_until"] = now + self.retry
        else:
            values.update(finished_at=now, lease_until=None)
        with self._sessions.begin() as session:
            result = session.execute(
                update(StatementJob)
                .where(
                    StatementJob.id == job_id,
                    StatementJob.status == "running",
                    StatementJob.worker == self.name,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                log.warning(
                    "statement job %d was taken over by another worker; result dropped", job_id
                )
        with self._finished:
            self._finished_jobs.add(job_id)
            self._finished.notify_all()

    def wait_finished(self, job_id: int, timeout: float) -> bool:
        """Block until this worker has finished ``job_id`` (done or failed); False on timeout."""
        with self._finished:
            return self._finished.wait_for(lambda: job_id in self._finished_jobs, timeout)

    def release_holds(self) -> int:
        """Release the deposit holds that are due by this worker's clock; how many."""
        with self._sessions.begin() as session:
            released = release_due(session, self._clock())
        if released:
            log.info("released %d deposit hold(s)", released)
        return released

    def run_pending(self) -> int:
        """Release the holds that are due, then work through the queue; return how many
        statement jobs this worker produced."""
        self.release_holds()
        done = 0
        while (job_id := self.claim()) is not None:
            self.run_job(job_id)
            done += 1
        return done

    def serve(self, stop: threading.Event, poll_seconds: float = 2.0) -> None:
        """The worker loop (a thread of ``atm host``, or ``atm host worker``): work, then wait
        for a wake-up (a job queued in this process) or the next poll."""
        while not stop.is_set():
            try:
                self.run_pending()
            except SQLAlchemyError as exc:  # the database may be down: wait, try again
                log.warning("statement worker: database unavailable (%s)", type(exc).__name__)
            except Exception:  # a bug: say so loudly, keep the worker alive
                log.exception("statement worker: cannot work the queue")
            self.wake.wait(poll_seconds)
            self.wake.clear()
