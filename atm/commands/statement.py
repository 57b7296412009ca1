"""``atm statement``: queue an account statement and (unless ``--queue-only``) produce it now."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

from atm.commands._common import load_host_config
from host.bank.models import StatementJob
from host.bank.statements import StatementStore, StatementWorker, parse_period, request_statement
from host.db import create_engine_for, session_factory
from host.errors import BadRequest, NotFound

ACCOUNT = re.compile(r"[A-Za-z0-9-]{1,34}")
WAIT_SECONDS = 120


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "statement",
        help="produce a PDF statement of an account for a period",
        description="Queue a statement job for a customer account and period (UTC calendar "
        "days, both included), then produce the PDF at once (or wait for a running host's "
        "worker to do it) and print where it is: a file in STATEMENT_OUTPUT_DIR, or s3://... "
        "when STATEMENT_S3_BUCKET is set. Bad input: one line on stderr, exit 2.",
    )
    parser.add_argument("--account", required=True, help="account number, e.g. 1000-0001-0001")
    parser.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD")
    parser.add_argument("--database-url", help="override DATABASE_URL")
    parser.add_argument("--output-dir", help="override STATEMENT_OUTPUT_DIR")
    parser.add_argument(
        "--queue-only",
        action="store_true",
        help="only queue the job (a running `atm host` or `atm host worker` produces it)",
    )
    parser.set_defaults(func=_run)


def _fail(message: str) -> int:
    print(f"atm statement: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    if not ACCOUNT.fullmatch(args.account):
        return _fail(f"not an account number: {args.account!r}")
    try:
        start, end = parse_period(args.date_from, args.date_to)
    except BadRequest as exc:
        return _fail(str(exc))
    config = load_host_config(
        {"DATABASE_URL": args.database_url, "STATEMENT_OUTPUT_DIR": args.output_dir}
    )
    if config is None:
        return 2
    engine = create_engine_for(
        config.database_url, prepared_statements=config.database_prepared_statements
    )
    sessions = session_factory(engine)
    try:
        try:
            with sessions.begin() as session:
                job_id = request_statement(session, args.account, start, end).id
        except NotFound as exc:
            return _fail(str(exc))
        if args.queue_only:
            print(f"statement job {job_id} queued")
            return 0
        worker = StatementWorker(sessions, StatementStore(config))
        if worker.claim(job_id) == job_id:
            worker.run_job(job_id)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:  # a host's worker may have claimed it first: wait for its result
            with sessions() as session:
                job = session.get(StatementJob, job_id)
                assert job is not None
                status, location, error = job.status, job.location, job.error
            if status in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        engine.dispose()
    if status == "done":
        print(f"statement written to {location}")
        return 0
    print(
        f"atm statement: job {job_id} {status}: {error or 'not finished in time'}", file=sys.stderr
    )
    return 1
