"""bank controls: customer, account, card and terminal states, maintenance mode, audit log

Revision ID: 0009_bank_controls
Revises: 0008_deposit_holds
Create Date: 2026-11-30

The audit log is append-only: on PostgreSQL a trigger refuses UPDATE and DELETE on it (the
code never issues either; host.bank.audit).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_bank_controls"
down_revision: str | None = "0008_deposit_holds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSE_FUNCTION = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""
_REFUSE_TRIGGER = """
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
"""


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN: a batch "move and copy" on SQLite would drop tables
    # that other tables' foreign keys point at.
    added = {
        "customers": [sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)],
        "accounts": [
            sa.Column("status", sa.String(length=8), server_default="open", nullable=False)
        ],
        "cards": [
            sa.Column(
                "pin_change_required", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        ],
        "terminals": [
            sa.Column("in_service", sa.Boolean(), server_default=sa.true(), nullable=False),
            sa.Column("key_change_due", sa.Boolean(), server_default=sa.false(), nullable=False),
            sa.Column("last_sign_on_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("key_scheme", sa.String(length=1), server_default="", nullable=False),
            sa.Column("tpk_kcv", sa.String(length=6), server_default="", nullable=False),
            sa.Column("tak_kcv", sa.String(length=6), server_default="", nullable=False),
            sa.Column("last_network_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_network_code", sa.String(length=3), server_default="", nullable=False),
        ],
    }
    for table, columns in added.items():
        for column in columns:
            op.add_column(table, column)
    op.create_table(
        "bank_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("maintenance", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_state")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_action", ["action"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_REFUSE_FUNCTION)
        op.execute(_REFUSE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_index("ix_audit_log_action")
        batch_op.drop_index("ix_audit_log_at")
    op.drop_table("audit_log")
    op.drop_table("bank_state")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch "move and
    # copy" would drop tables that other tables' foreign keys point at.
    dropped = {
        "terminals": (
            "last_network_code",
            "last_network_at",
            "tak_kcv",
            "tpk_kcv",
            "key_scheme",
            "last_sign_on_at",
            "key_change_due",
            "in_service",
        ),
        "cards": ("pin_change_required",),
        "accounts": ("status",),
        "customers": ("active",),
    }
    for table, columns in dropped.items():
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
