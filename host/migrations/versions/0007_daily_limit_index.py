"""daily-limit sum served from the index: entries (account_id, created_at) gains posting_id and
amount_cents as trailing columns, so the sum of an account's entries made today (used_today in
host.bank.services) reads the index alone instead of one table row per entry

Revision ID: 0007_daily_limit_index
Revises: 0006_statement_lease
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_daily_limit_index"
down_revision: str | None = "0006_statement_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entries_account_created_covering",
            ["account_id", "created_at", "posting_id", "amount_cents"],
            unique=False,
        )
        batch_op.drop_index("ix_entries_account_created")


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entries_account_created", ["account_id", "created_at"], unique=False
        )
        batch_op.drop_index("ix_entries_account_created_covering")
