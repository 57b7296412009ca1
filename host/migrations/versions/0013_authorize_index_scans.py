"""authorize index scans: ``atm_authorize`` plans with sequential scans off

Revision ID: 0013_authorize_index_scans
Revises: 0012_operator_password_reset
Create Date: 2026-11-30

Every query in ``atm_authorize`` (migration 0011) is a lookup by a key that has an index (a
card by PAN, an account by id, today's entries of one account, a posting by id). PL/pgSQL
caches its plans; planned while the tables are small and before autoanalyze has run, the
daily-limit sum joined each of the day's entries to ``postings`` with a sequential scan, so a
withdrawal's cost grew with the day's postings (`make bench`: 341/s falling to 144/s within
60 withdrawals per terminal; ``postings`` scanned about 50 times per withdrawal). With
sequential scans off inside the function the planner takes the indexes whatever its
statistics say (the same run stayed flat). Only the function's own planning is affected.
A no-op on SQLite.
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0013_authorize_index_scans"
down_revision: str | None = "0012_operator_password_reset"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The function's argument types, as migration 0011 created it.
SIGNATURE: str = importlib.import_module(
    "host.migrations.versions.0011_authorize_functions"
).SIGNATURE


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER FUNCTION atm_authorize({SIGNATURE}) SET enable_seqscan = off")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER FUNCTION atm_authorize({SIGNATURE}) RESET enable_seqscan")
