"""fewer index writes again: the audit log's ``action`` index goes, and on PostgreSQL the
entries' ``posting_id`` index becomes a block-range (BRIN) index; ``atm_authorize`` is
unchanged

Revision ID: 0018_fewer_index_writes_again
Revises: 0017_authorize_one_read
Create Date: 2026-12-01

Measured with both schemas side by side on one cluster at the same time (two databases, the
host's call of ``atm_authorize`` made by 4 connections each, backend CPU per call from
/proc): every withdrawal wrote 11 btree entries; three of them bought nothing a reader uses.

- ``ix_audit_log_action``: the only reader that filters the audit log by action
  (``host.bank.audit.list_audit``, the ops page) matches a prefix (``LIKE 'pin.%'``), which
  a btree under the database's collation cannot serve (on PostgreSQL only a C-collated or
  ``text_pattern_ops`` index can; SQLite's LIKE is case-insensitive): the plan filters the
  rows the other conditions find, with or without the index. Nothing reads it by equality.
  Every request (and every PIN event and operator action) wrote an entry to it. Gone on
  both databases.
- ``ix_entries_posting_id``: a posting's entries are read by posting only off the hot path
  (a reversal finds its original's legs, ``Posting.entries``, a hold's deposit entry), and
  entries are appended in posting order (a posting's legs in its own transaction, right
  after it), so a block-range index finds them: ``pages_per_range`` 16 (about 2,000 entries
  a range) and ``autosummarize`` (a range is summarised by autovacuum once filled, so the
  unsummarised tail every lookup reads stays short). A withdrawal's two legs no longer
  write two btree entries. PostgreSQL only (as 0016's ``audit_log.at``); SQLite keeps its
  btree.

Figures (load average 4-5 from another session's work on the same 2 cores; ratios of one
run): backend CPU per withdrawal 0.993x with the action index gone, 0.973x with both; WAL
-2 btree leaf records (about 140 bytes) per withdrawal.

Tried and not kept (same method, numbers in the issue note): folding the card-session touch
and the withdrawal's account locks into the first read (one statement instead of three:
1.04-1.07x, a CTE's materialisation costs more than the two small statements it saves;
running a small statement twice costs 1.00-1.03x), one ``INSERT ... ON CONFLICT`` for the
day's use instead of the update-or-insert pair (1.00x). The tables updated in place
(accounts, daily_usage, card_sessions) already update 100% HOT in the bench
(``pg_stat_user_tables``), so their fillfactor is left alone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018_fewer_index_writes_again"
down_revision: str | None = "0017_authorize_one_read"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_index("ix_audit_log_action")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_entries_posting_id", table_name="entries")
    op.create_index(
        "ix_entries_posting_id",
        "entries",
        ["posting_id"],
        postgresql_using="brin",
        postgresql_with={"pages_per_range": 16, "autosummarize": "on"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_entries_posting_id", table_name="entries")
        op.create_index("ix_entries_posting_id", "entries", ["posting_id"])
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.create_index("ix_audit_log_action", ["action"], unique=False)
