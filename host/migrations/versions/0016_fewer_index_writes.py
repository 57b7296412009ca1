"""fewer index writes: two indexes that every withdrawal wrote an entry to (and its WAL)
for nothing

Revision ID: 0016_fewer_index_writes
Revises: 0015_daily_usage_counter
Create Date: 2026-11-30

pg_waldump over a ``bench_host`` loop (``scripts/pg_cost.py``): 12.6 btree leaf inserts per
withdrawal, 880 of its 2,650 WAL bytes, each also a descent of the index and a lock on it.
Two of them were useless:

- ``postings.reverses_id``'s unique constraint indexed every posting, with a NULL for all
  but reversals. It becomes a partial unique index of the reversals only (same name, same
  rule: a posting is reversed at most once; a lookup by ``reverses_id = x`` uses it).
  PostgreSQL only: SQLite keeps its unique constraint (the same rule), since changing it
  there means rebuilding ``postings`` under the foreign keys that point at it.
- ``audit_log.at``: on PostgreSQL a BRIN index instead of a btree. The log is appended in
  time order, so block-range summaries find a time window (``host.bank.audit.list_audit``),
  and an insert into a range not yet summarised costs the index nothing. VACUUM summarises
  only full ranges; a range of 16 pages (about 600 rows) keeps the one filling up
  unsummarised nearly all the time (the index's build summarises even a part-filled one,
  whose inserts then update its summary). SQLite keeps its btree.

A no-op on SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_fewer_index_writes"
down_revision: str | None = "0015_daily_usage_counter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("uq_postings_reverses_id", "postings", type_="unique")
    op.create_index(
        "uq_postings_reverses_id",
        "postings",
        ["reverses_id"],
        unique=True,
        postgresql_where=sa.text("reverses_id IS NOT NULL"),
    )
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.create_index(
        "ix_audit_log_at",
        "audit_log",
        ["at"],
        postgresql_using="brin",
        postgresql_with={"pages_per_range": 16},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.drop_index("uq_postings_reverses_id", table_name="postings")
    op.create_unique_constraint("uq_postings_reverses_id", "postings", ["reverses_id"])
