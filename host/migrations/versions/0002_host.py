"""host: card sessions, statement jobs, stored outcomes for repeats, longer posting kinds

Revision ID: 0002_host
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_host"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # "withdrawal-reversal" does not fit 16 characters (PostgreSQL enforces VARCHAR lengths).
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.alter_column(
            "kind",
            existing_type=sa.String(length=16),
            type_=sa.String(length=32),
            existing_nullable=False,
        )
    with op.batch_alter_table("link_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fingerprint", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("outcome", sa.JSON(), nullable=True))
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entries_account_created", ["account_id", "created_at"], unique=False
        )

    op.create_table(
        "card_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("pin_token", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_sessions_card_id_cards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_sessions")),
        sa.UniqueConstraint("card_id", "terminal_id", name=op.f("uq_card_sessions_card_id")),
    )
    with op.batch_alter_table("card_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_card_sessions_last_used_at"), ["last_used_at"], unique=False
        )

    op.create_table(
        "statement_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(length=500), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_statement_jobs_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_jobs")),
    )
    with op.batch_alter_table("statement_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_statement_jobs_status_id", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("statement_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_statement_jobs_status_id")
    op.drop_table("statement_jobs")
    with op.batch_alter_table("card_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_sessions_last_used_at"))
    op.drop_table("card_sessions")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_account_created")
    with op.batch_alter_table("link_requests", schema=None) as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("fingerprint")
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.alter_column(
            "kind",
            existing_type=sa.String(length=32),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
