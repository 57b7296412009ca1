"""daily usage counter: each account's use of a day's withdrawal and transfer limits kept in
a row (``daily_usage``) instead of summed from the day's entries on every request

Revision ID: 0015_daily_usage_counter
Revises: 0014_authorize_fewer_statements
Create Date: 2026-11-30

The daily-limit check summed the account's entries of the day joined to their postings
(and a reversal's original): the costliest statement inside ``atm_authorize`` (0.14-0.19 ms
of PostgreSQL per withdrawal, growing with the day's withdrawals on the account). Now a row
per account, limited kind (``withdrawal``, ``transfer``) and UTC day holds what that kind's
postings of the day took out of the account less what their reversals gave back, booked on
the original's day whenever the reversal came: exactly what the sum counted. It is written
in the posting's transaction under the account's row lock, by ``host.bank.ledger.post`` (the
ORM path, reversals included) and by ``atm_authorize`` (in its posting statement); the
check reads the rows of today onwards (a later day's only if the clock went back, which the
sum counted too). ``check_ledger`` recomputes them from
the entries, so a drift is reported.

The upgrade fills the table from the entries already there; the downgrade drops it and puts
0014's function back.
"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_daily_usage_counter"
down_revision: str | None = "0014_authorize_fewer_statements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_0014 = importlib.import_module("host.migrations.versions.0014_authorize_fewer_statements")

# Each limited kind's money out of an account on the UTC day it was posted, and each of its
# reversals' money back to an account on its original's day (``{day}`` turns a stored time
# into its UTC day, per database).
_BACKFILL = """
INSERT INTO daily_usage (account_id, kind, day, used_cents)
SELECT used.account_id, used.kind, used.day, sum(used.cents)
  FROM (SELECT e.account_id AS account_id, p.kind AS kind, {day_entry} AS day,
               -e.amount_cents AS cents
          FROM entries e JOIN postings p ON p.id = e.posting_id
         WHERE p.kind IN ('withdrawal', 'transfer') AND e.amount_cents < 0
        UNION ALL
        SELECT e.account_id,
               CASE p.kind WHEN 'withdrawal-reversal' THEN 'withdrawal' ELSE 'transfer' END,
               {day_original}, -e.amount_cents
          FROM entries e
          JOIN postings p ON p.id = e.posting_id
          JOIN postings o ON o.id = p.reverses_id
         WHERE p.kind IN ('withdrawal-reversal', 'transfer-reversal')
           AND e.amount_cents > 0) used
 GROUP BY used.account_id, used.kind, used.day
"""
_DAY = {
    "postgresql": "(({column}) AT TIME ZONE 'UTC')::date",
    "sqlite": "date({column})",  # SQLite keeps UTC times as text
}

# atm_authorize (0014's text with these changes): the day's use read from the counter,
# with whether today's row exists ...
_SUM = """SELECT (SELECT -coalesce(sum(e.amount_cents), 0)
                  FROM entries e
                  JOIN postings p ON e.posting_id = p.id
                  LEFT JOIN postings o ON p.reverses_id = o.id
                 WHERE e.account_id = v_account.id AND e.created_at >= p_day_start
                   AND ((p.kind = v_movement AND e.amount_cents < 0)
                        OR (p.kind = v_reversal AND e.amount_cents > 0
                            AND o.created_at >= p_day_start))),
               (SELECT coalesce(sum(h.amount_cents), 0)
                  FROM holds h WHERE h.account_id = v_account.id AND h.status = 'held')
          INTO v_used, v_held;"""
_COUNTER = """v_day := (p_day_start AT TIME ZONE 'UTC')::date;
        SELECT coalesce(sum(u.used_cents), 0), coalesce(bool_or(u.day = v_day), false),
               (SELECT coalesce(sum(h.amount_cents), 0)
                  FROM holds h WHERE h.account_id = v_account.id AND h.status = 'held')
          INTO v_used, v_counted, v_held
          FROM daily_usage u
         WHERE u.account_id = v_account.id AND u.kind = v_movement AND u.day >= v_day;"""
# ... and kept by the posting statement, next to the balances: today's row grows, or is
# the first. Only a holder of the account's lock writes it, so the read above still holds;
# a plain UPDATE writes no lock record of its own, as ON CONFLICT DO UPDATE would.
_MOVED = """             WHERE a.id IN (v_account.id, v_counter_id)
        ), audit AS ("""
_MOVED_AND_COUNTED = """             WHERE a.id IN (v_account.id, v_counter_id)
        ), used AS (
            -- The day's use of this kind's limit (host.bank.ledger.post does the same).
            UPDATE daily_usage u SET used_cents = u.used_cents + p_amount
             WHERE v_counted
               AND u.account_id = v_account.id AND u.kind = v_movement AND u.day = v_day
        ), used_first AS (
            INSERT INTO daily_usage (account_id, kind, day, used_cents)
            SELECT v_account.id, v_movement, v_day, p_amount WHERE NOT v_counted
        ), audit AS ("""
_CHANGES = (
    ("        v_reversal := v_movement || '-reversal';\n", ""),
    ("    v_reversal text;\n", "    v_day date;\n    v_counted boolean;\n"),
    (
        "        -- as the lock returns it; 9. the day's use (reversals give back their "
        "original's\n        -- day) and the holds; 10. funds.",
        "        -- as the lock returns it; 9. the day's use (migration 0015's counter: "
        "reversals\n        -- give back their original's day) and the holds; 10. funds.",
    ),
    (_SUM, _COUNTER),
    (_MOVED, _MOVED_AND_COUNTED),
)


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"0015: expected one {old[:60]!r} in 0014's atm_authorize")
    return text.replace(old, new)


def authorize() -> str:
    """0015's ``atm_authorize``: 0014's with the counter read and kept."""
    text = str(_0014._AUTHORIZE)
    for old, new in _CHANGES:
        text = _replace_once(text, old, new)
    return text


def upgrade() -> None:
    op.create_table(
        "daily_usage",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_daily_usage_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "kind", "day", name=op.f("pk_daily_usage")),
    )
    dialect = op.get_bind().dialect.name
    day = _DAY["postgresql" if dialect == "postgresql" else "sqlite"]
    op.execute(
        _BACKFILL.format(
            day_entry=day.format(column="e.created_at"),
            day_original=day.format(column="o.created_at"),
        )
    )
    if dialect != "postgresql":
        return
    op.execute(authorize())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(str(_0014._AUTHORIZE))
    op.drop_table("daily_usage")
