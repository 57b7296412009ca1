"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "postings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=True),
        sa.Column("stan", sa.String(length=6), nullable=True),
        sa.Column("rrn", sa.String(length=12), nullable=True),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reverses_id"], ["postings.id"], name=op.f("fk_postings_reverses_id_postings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postings")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_postings_reverses_id")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=34), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_accounts_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("number", name=op.f("uq_accounts_number")),
    )
    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pan", sa.String(length=19), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("expiry", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pin_hash", sa.String(length=128), nullable=False),
        sa.Column("failed_pin_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_cards_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
        sa.UniqueConstraint("pan", name=op.f("uq_cards_pan")),
    )
    op.create_table(
        "link_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("transmission_time", sa.String(length=10), nullable=False),
        sa.Column("mti_class", sa.String(length=4), nullable=False),
        sa.Column("processing_code", sa.String(length=6), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("response_code", sa.String(length=2), nullable=False),
        sa.Column("rrn", sa.String(length=12), nullable=False),
        sa.Column("auth_code", sa.String(length=6), nullable=False),
        sa.Column("posting_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["posting_id"], ["postings.id"], name=op.f("fk_link_requests_posting_id_postings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_requests")),
        sa.UniqueConstraint(
            "terminal_id",
            "stan",
            "transmission_time",
            "mti_class",
            name=op.f("uq_link_requests_terminal_id"),
        ),
    )
    op.create_table(
        "card_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("account_type", sa.String(length=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_card_accounts_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_accounts_card_id_cards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_accounts")),
        sa.UniqueConstraint("card_id", "account_type", name=op.f("uq_card_accounts_card_id")),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("posting_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_entries_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"], ["postings.id"], name=op.f("fk_entries_posting_id_postings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entries_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_posting_id"), ["posting_id"], unique=False)

    op.create_table(
        "terminals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("cash_account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cash_account_id"], ["accounts.id"], name=op.f("fk_terminals_cash_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminals")),
        sa.UniqueConstraint("terminal_id", name=op.f("uq_terminals_terminal_id")),
    )


def downgrade() -> None:

    op.drop_table("terminals")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entries_posting_id"))
        batch_op.drop_index(batch_op.f("ix_entries_account_id"))

    op.drop_table("entries")
    op.drop_table("card_accounts")
    op.drop_table("link_requests")
    op.drop_table("cards")
    op.drop_table("accounts")
    op.drop_table("postings")
    op.drop_table("customers")
