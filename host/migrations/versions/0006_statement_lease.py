"""statement jobs get a lease: worker, lease expiry and attempts

Revision ID: 0006_statement_lease
Revises: 0005_advice_processing_code
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_statement_lease"
down_revision: str | None = "0005_advice_processing_code"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("statement_jobs") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("worker", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("statement_jobs") as batch:
        batch.drop_column("worker")
        batch.drop_column("attempts")
        batch.drop_column("lease_until")
