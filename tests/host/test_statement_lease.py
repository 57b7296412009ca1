"""Statement jobs under a lease, on SQLite and PostgreSQL: a worker killed mid-job leaves its
job to a second worker once the lease expires; a job that fails with an OS error is retried
and, after the last attempt, failed with its reason (never ``running`` for ever)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from host.bank.models import StatementJob
from host.bank.statements import StatementStore, StatementWorker, job_view, request_statement
from host.config import HostConfig
from host.db import create_engine_for, session_factory

ROOT = Path(__file__).resolve().parents[2]
ALICE_CHECKING = "1000-0001-0001"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def sessions(seeded_config: HostConfig):
    engine = create_engine_for(seeded_config.database_url)
    yield session_factory(engine)
    engine.dispose()


def queue(sessions) -> int:
    today = dt.datetime.now(dt.UTC).date()
    with sessions.begin() as session:
        return request_statement(session, ALICE_CHECKING, today, today).id


def view(sessions, job_id: int) -> dict[str, Any]:
    with sessions() as session:
        job = session.get(StatementJob, job_id)
        assert job is not None
        return {**job_view(job), "worker": job.worker, "location": job.location}


async def test_a_worker_killed_mid_job_leaves_it_to_a_second_worker(
    seeded_config: HostConfig, sessions, tmp_path: Path
) -> None:
    job_id = queue(sessions)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.host.statement_kill_harness",
        "--database-url", seeded_config.database_url, "--output-dir", str(tmp_path / "stuck"),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line.strip() == b"WRITING", line
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    stuck = view(sessions, job_id)
    assert (stuck["status"], stuck["worker"], stuck["attempts"]) == ("running", "doomed", 1)

    clock = Clock()
    second = StatementWorker(
        sessions, StatementStore(seeded_config), clock=clock, name="second", lease_seconds=300
    )
    assert second.run_pending() == 0  # the lease still holds: nobody steals a live job
    clock.advance(301)
    assert second.run_pending() == 1
    done = view(sessions, job_id)
    assert (done["status"], done["worker"], done["attempts"]) == ("done", "second", 2)
    pdf = await asyncio.to_thread(Path(done["location"]).read_bytes)
    assert pdf.startswith(b"%PDF")


def test_an_os_error_is_retried_then_failed_with_its_reason(
    seeded_config: HostConfig, sessions, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the statements directory should be")
    store = StatementStore(
        HostConfig(database_url=seeded_config.database_url, statement_output_dir=str(blocked))
    )
    clock = Clock()
    worker = StatementWorker(sessions, store, clock=clock, retry_seconds=30, max_attempts=3)
    job_id = queue(sessions)
    assert worker.run_pending() == 1
    first = view(sessions, job_id)
    assert (first["status"], first["attempts"]) == ("queued", 1)
    assert "NotADirectoryError" in first["error"] or "FileExistsError" in first["error"]
    assert worker.run_pending() == 0  # not before the retry delay
    for _attempt in (2, 3):
        clock.advance(31)
        assert worker.run_pending() == 1
    failed = view(sessions, job_id)
    assert (failed["status"], failed["attempts"], failed["ready"]) == ("failed", 3, False)
    assert str(blocked) in failed["error"]


def test_a_retry_succeeds_once_the_cause_is_gone(
    seeded_config: HostConfig, sessions, tmp_path: Path
) -> None:
    blocked = tmp_path / "statements"
    blocked.write_text("in the way")
    config = HostConfig(database_url=seeded_config.database_url, statement_output_dir=str(blocked))
    clock = Clock()
    worker = StatementWorker(sessions, StatementStore(config), clock=clock)
    job_id = queue(sessions)
    worker.run_pending()
    assert view(sessions, job_id)["status"] == "queued"
    blocked.unlink()  # the operator clears the way
    clock.advance(31)
    assert worker.run_pending() == 1
    assert view(sessions, job_id)["status"] == "done"


def test_a_lease_that_expires_too_often_fails_the_job(seeded_config: HostConfig, sessions) -> None:
    clock = Clock()
    store = StatementStore(seeded_config)
    job_id = queue(sessions)
    for n in range(3):  # three workers claim it and die (claim, never run_job)
        worker = StatementWorker(sessions, store, clock=clock, name=f"w{n}", max_attempts=3)
        assert worker.claim() == job_id
        clock.advance(301)
    last = StatementWorker(sessions, store, clock=clock, name="last", max_attempts=3)
    assert last.run_pending() == 0
    failed = view(sessions, job_id)
    assert failed["status"] == "failed" and "w2 stopped without finishing" in failed["error"]
    with sessions() as session:
        assert session.scalars(select(StatementJob.status)).all() == ["failed"]
