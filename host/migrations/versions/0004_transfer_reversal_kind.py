"""transfer reversals carry the kind ``transfer-reversal``

Before this revision the link posted the reversal of a transfer with the kind ``reversal``,
which the ledger check reports as a mismatch and the daily transfer limit does not count.
Existing rows are renamed so that ``atm host check-ledger`` passes on a healthy ledger.

Revision ID: 0004_transfer_reversal_kind
Revises: 0003_link
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_transfer_reversal_kind"
down_revision: str | None = "0003_link"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE postings SET kind = 'transfer-reversal' WHERE kind = 'reversal' "
        "AND reverses_id IN (SELECT id FROM (SELECT id FROM postings WHERE kind = 'transfer') t)"
    )


def downgrade() -> None:
    op.execute("UPDATE postings SET kind = 'reversal' WHERE kind = 'transfer-reversal'")
