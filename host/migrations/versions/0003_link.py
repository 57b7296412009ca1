"""host link: terminal working keys and reversal advices

Revision ID: 0003_link
Revises: 0002_host
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_link"
down_revision: str | None = "0002_host"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_terminal_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("scheme", sa.String(length=1), nullable=False),
        sa.Column("tpk_wrapped", sa.String(length=64), nullable=False),
        sa.Column("tak_wrapped", sa.String(length=64), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_terminal_keys")),
        sa.UniqueConstraint("terminal_id", name=op.f("uq_link_terminal_keys_terminal_id")),
    )
    op.create_table(
        "link_reversal_advices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("transmission_time", sa.String(length=10), nullable=False),
        sa.Column("original_mti", sa.String(length=4), nullable=False),
        sa.Column("original_stan", sa.String(length=6), nullable=False),
        sa.Column("original_time", sa.String(length=10), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("dispensed_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reversed_cents", sa.BigInteger(), nullable=False),
        sa.Column("posting_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["postings.id"],
            name=op.f("fk_link_reversal_advices_posting_id_postings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_reversal_advices")),
        sa.UniqueConstraint(
            "terminal_id",
            "stan",
            "transmission_time",
            name=op.f("uq_link_reversal_advices_terminal_id"),
        ),
    )
    with op.batch_alter_table("link_reversal_advices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_link_reversal_advices_original_stan"), ["original_stan"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("link_reversal_advices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_reversal_advices_original_stan"))
    op.drop_table("link_reversal_advices")
    op.drop_table("link_terminal_keys")
