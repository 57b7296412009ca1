"""operator password reset: an operator whose password an admin set must change it at login

Revision ID: 0012_operator_password_reset
Revises: 0010_operators
Create Date: 2026-11-30

Written while 0011_authorize_functions (another branch) was not on main yet: at merge the
integrator re-chains ``down_revision`` to ``0011_authorize_functions``. The two touch
different tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_operator_password_reset"
down_revision: str | None = "0010_operators"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite 3.35+ and PostgreSQL): a batch "move and copy" on SQLite would
    # drop the operators table that operator_sessions' foreign key points at.
    op.add_column(
        "operators",
        sa.Column(
            "password_change_required", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("operators", "password_change_required")
