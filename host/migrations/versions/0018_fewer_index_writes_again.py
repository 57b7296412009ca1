"""fewer index writes again: the audit log's ``action`` index goes, and on PostgreSQL the
entries' ``posting_id`` index becomes a block-range (BRIN) index; ``atm_authorize`` is
unchanged

Revision ID: 0018_fewer_index_writes_again
Revises: 0017_authorize_one_read
Create Date: 2026-12-01

pg_waldump over a ``bench_host`` loop (``scripts/pg_cost.py``): every withdrawal wrote 10.8
btree leaf entries (770 of its 2,370 WAL bytes); three of them bought nothing on the hot path
and nothing a reader needs a btree for.

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

Figures, 2 cores shared with another session's work (load average 3.5-5), so CPU ratios
within +-3% are noise: WAL per withdrawal 2,285 -> 2,143 bytes (``scripts/pg_cost.py
--baseline 0017_authorize_one_read --rounds 6``, medians; -2 btree leaf records); backend
CPU per call of the function alone (two databases side by side, 4 connections each calling
``atm_authorize`` as the host does) 0.993x without the action index, 0.973x with both
changes; through the host (``--side-by-side``, 6 rounds of 32 x 40) 1.007x (0.97-1.04): a
btree entry is about 0.4% of PostgreSQL's CPU per withdrawal (perf), below what these runs
resolve.

Tried and not kept (function-alone runs as above, new/old of backend CPU): folding the
card-session touch and the withdrawal's account locks into the first read (one statement
instead of three, data-modifying CTE and ``FOR UPDATE`` in a ``LATERAL``): 1.04-1.07x, the
CTE's materialisation and aggregate cost more than the two small statements they save (the
same statement run twice costs: the first read 1.09x, the session touch 1.03x, the
accounts' lock 1.02x, the day's use 1.03x; a one-row ``PERFORM`` 1.00x, so a statement's
fixed cost is small and its plan's size is what counts); one ``INSERT ... ON CONFLICT`` for
the day's use instead of the update-or-insert pair: 1.00x; the outcome JSON not built at
all: 0.98-0.99x (not worth a change of text). The tables updated in place (accounts,
daily_usage, card_sessions) already update 100% HOT in these runs (``pg_stat_user_tables``
``n_tup_hot_upd`` = ``n_tup_upd``), so their fillfactor is left alone. ``atm_authorize``
is 0017's.
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
