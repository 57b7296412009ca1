"""reversal advices keep their DE 3, checked against the original's

Revision ID: 0005_advice_processing_code
Revises: 0004_transfer_reversal_kind
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_advice_processing_code"
down_revision: str | None = "0004_transfer_reversal_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("link_reversal_advices") as batch:
        batch.add_column(
            sa.Column("processing_code", sa.String(length=6), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("link_reversal_advices") as batch:
        batch.drop_column("processing_code")
