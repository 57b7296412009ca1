"""A statement worker in a process of its own that stops for ever while writing its PDF, so a
test can SIGKILL it mid-job (tests/host/test_statement_lease.py). It prints ``WRITING`` when
it has claimed the job and rendered the PDF."""

from __future__ import annotations

import argparse
import threading

from host.bank.statements import StatementStore, StatementWorker
from host.config import HostConfig
from host.db import create_engine_for, session_factory


class StuckStore(StatementStore):
    def save(self, name: str, pdf: bytes) -> str:
        print("WRITING", flush=True)
        threading.Event().wait()  # the kill comes here
        raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--output-dir", required=True)
    args = parser.parse_args()
    config = HostConfig(database_url=args.database_url, statement_output_dir=args.output_dir)
    engine = create_engine_for(config.database_url)
    worker = StatementWorker(session_factory(engine), StuckStore(config), name="doomed")
    worker.run_pending()


if __name__ == "__main__":
    main()
