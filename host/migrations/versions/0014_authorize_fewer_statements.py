"""authorize fewer statements: ``atm_authorize`` does the same work in fewer SQL statements,
formats the mini statement itself (a balance inquiry is one round trip), and two indexes that
made every withdrawal write more go

Revision ID: 0014_authorize_fewer_statements
Revises: 0013_authorize_index_scans
Create Date: 2026-11-30

Where PostgreSQL's time per withdrawal went (pg_stat_statements with ``track = all``, perf on
the backends, 8 terminals x 40 withdrawals over the link): about 2 ms of backend CPU, two
thirds of it inside the function, spread over 20 statements and 5 foreign-key checks; each
statement pays its executor start-up and its locks (``ExecutorStart`` alone 21%), the commit
13%. So the function now does the same checks in the same order with fewer statements:

- the duplicate check, the operators' switches and the terminal's cash account: one read;
- an open card session: one ``UPDATE ... WHERE`` (the read that decides the other cases only
  when it misses);
- both accounts locked in id order with the balance read by the same statement; the day's
  use and the holds: one read;
- the posting (posting row, both entries, both balances), the audit row, the link request and
  the overtaking-reversal check: one statement with data-modifying CTEs, shared by
  withdrawals and transfers (``_POSTING``); a request that posts nothing writes its audit row
  and link request in one statement as well;
- the inquiry's mini statement (``host.bank.ministatement``: label, sign, 12-digit amount,
  19 characters) formatted here, so the record is stored once and complete: one round trip
  where there were two. An entry the SQL cannot format exactly as Python would (a posting
  description that is not printable ASCII, whose upper case Python and PostgreSQL may
  disagree on; an amount of 13 digits) raises SQLSTATE ``ATM01`` before anything is kept, and
  the caller answers that request the ORM way.

Rows written: the same, JSON text and ids included (``tests/host/test_fastpath_model.py``).
Index changes (both databases): ``ix_entries_account_id`` goes (``ix_entries_account_created_
covering`` starts with ``account_id`` and serves every lookup it did), and so does
``ix_card_sessions_last_used_at`` (read only by the ops page's count of open sessions, which
now scans the table; every request in an open session updates ``last_used_at``, and with the
column indexed that update could never be HOT: three index entries and ~280 WAL bytes each).
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0014_authorize_fewer_statements"
down_revision: str | None = "0013_authorize_index_scans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0011, which created the function: its argument types are unchanged, and the
# downgrade puts its definition back.
_0011 = importlib.import_module("host.migrations.versions.0011_authorize_functions")
SIGNATURE: str = _0011.SIGNATURE

# The audit row of a card request (host.bank.audit.record; JSON as json.dumps writes it).
_AUDIT_AFTER = """format('{"code": %s, "amount_cents": %s, "processing_code": %s, "stan": %s, '
                   '"rrn": %s, "posting": %s}',
                   to_json(o_code), p_amount,
                   to_json(p_transaction || p_from_type || p_to_type), to_json(p_stan),
                   to_json(p_rrn), coalesce({posting}::text, 'null'))::json"""

# The function, with the audit row's JSON put in twice (_with_audit_json).
_AUTHORIZE_TEMPLATE = r"""
CREATE OR REPLACE FUNCTION atm_authorize(
    p_terminal_id text, p_stan text, p_transmission_time text, p_mti_class text,
    p_pan text, p_transaction text, p_from_type text, p_to_type text, p_amount bigint,
    p_expiry text, p_to_account_number text, p_fingerprint text, p_rrn text,
    p_auth_code text, p_now timestamptz, p_this_month text, p_day_start timestamptz,
    p_range_ok boolean, p_has_pin_block boolean, p_pin_token text, p_pin_verified boolean,
    p_pin_hash text, p_session_since timestamptz, p_max_failed integer,
    p_lock_until timestamptz, p_lock_until_text text, p_daily_limit bigint,
    p_action text, p_subject text, p_actor text,
    OUT o_status text, OUT o_code text, OUT o_rrn text, OUT o_auth_code text,
    OUT o_outcome json, OUT o_pin_hash text, OUT o_account_type text, OUT o_currency text,
    OUT o_ledger bigint, OUT o_available bigint, OUT o_link_request_id integer,
    OUT o_reversal_waiting boolean, OUT o_note text, OUT o_mini_amounts bigint[],
    OUT o_mini_at timestamptz[], OUT o_mini_kinds text[], OUT o_mini_descriptions text[],
    OUT o_mini_held_until timestamptz[]
) LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
    v_head record;
    v_card record;
    v_card_dirty boolean := false;
    v_failed integer;
    v_locked_until timestamptz;
    v_session record;
    v_session_found boolean;
    v_wanted text;
    v_account record;
    v_target record;
    v_locked record;
    v_counter_id integer;
    v_balance bigint;
    v_held bigint := 0;
    v_used bigint;
    v_posting_id integer;
    v_movement text;
    v_reversal text;
    v_description text;
    v_statement text := '';
    v_unformattable boolean;
BEGIN
    o_reversal_waiting := false;
    -- 1. duplicate: a repeat is answered from the record; a reused key gets 94. The same
    -- read brings the operators' switches and the terminal's cash account (step 2, 8).
    SELECT lr.id AS request_id, lr.response_code, lr.rrn, lr.auth_code, lr.outcome,
           lr.fingerprint, bs.maintenance, t.id AS terminal_row, t.in_service,
           t.cash_account_id
      INTO v_head
      FROM (VALUES (1)) one (x)
      LEFT JOIN link_requests lr
             ON lr.terminal_id = p_terminal_id AND lr.stan = p_stan
            AND lr.transmission_time = p_transmission_time AND lr.mti_class = p_mti_class
      LEFT JOIN bank_state bs ON bs.id = 1
      LEFT JOIN terminals t ON t.terminal_id = p_terminal_id;
    IF v_head.request_id IS NOT NULL THEN
        IF coalesce(v_head.fingerprint, '') = '' OR v_head.fingerprint = p_fingerprint THEN
            o_status := 'repeat';
            o_code := v_head.response_code;
            o_rrn := v_head.rrn;
            o_auth_code := v_head.auth_code;
            o_outcome := v_head.outcome;
            RETURN;
        END IF;
        o_status := 'duplicate';
        o_code := '94';
        o_rrn := p_rrn;
        o_auth_code := '';
        RETURN;
    END IF;
    o_status := 'done';
    o_rrn := p_rrn;
    o_auth_code := '';
    <<checks>>
    BEGIN
        IF NOT p_range_ok THEN
            o_code := '15';
            EXIT checks;
        END IF;
        -- 2. operators' switches, then the card (locked) with its customer.
        IF v_head.maintenance THEN
            o_code := '90';
            EXIT checks;
        END IF;
        IF NOT v_head.in_service THEN
            o_code := '89';
            EXIT checks;
        END IF;
        SELECT c.id, c.pan, c.expiry, c.status, c.pin_hash, c.pin_change_required,
               c.failed_pin_attempts, c.locked_until, cu.active
          INTO v_card
          FROM cards c JOIN customers cu ON cu.id = c.customer_id
         WHERE c.pan = p_pan
           FOR UPDATE OF c;
        IF NOT FOUND THEN
            o_code := '14';
            EXIT checks;
        END IF;
        IF v_card.status IN ('blocked', 'replaced') THEN
            o_code := '14';
            EXIT checks;
        END IF;
        -- 3. lost and stolen before the expiry (captured whatever it says).
        IF v_card.status = 'lost' THEN
            o_code := '41';
            EXIT checks;
        END IF;
        IF v_card.status = 'stolen' THEN
            o_code := '43';
            EXIT checks;
        END IF;
        IF NOT v_card.active THEN
            o_code := '14';
            EXIT checks;
        END IF;
        -- 4. expiry: by code point, as Python compares strings.
        IF v_card.expiry COLLATE "C" < p_this_month COLLATE "C"
           OR (p_expiry IS NOT NULL AND p_expiry COLLATE "C" < p_this_month COLLATE "C") THEN
            o_code := '54';
            EXIT checks;
        END IF;
        IF p_expiry IS NOT NULL AND p_expiry <> v_card.expiry THEN
            o_note := 'expiry-mismatch';
            o_code := '14';
            EXIT checks;
        END IF;
        -- 5. lockout; an expired one is lifted (written with the card at the end).
        v_failed := v_card.failed_pin_attempts;
        v_locked_until := v_card.locked_until;
        IF v_locked_until IS NOT NULL AND v_locked_until > p_now THEN
            o_code := '75';
            EXIT checks;
        END IF;
        IF v_locked_until IS NOT NULL THEN
            v_locked_until := NULL;
            v_failed := 0;
            v_card_dirty := true;
        END IF;
        -- 6. PIN: no block 30, no key 55; an open card session (kept open by the same
        -- statement), or bcrypt's answer.
        IF NOT p_has_pin_block THEN
            o_code := '30';
            EXIT checks;
        END IF;
        IF p_pin_token IS NULL THEN
            o_code := '55';
            EXIT checks;
        END IF;
        UPDATE card_sessions s SET last_used_at = p_now
         WHERE s.card_id = v_card.id AND s.terminal_id = p_terminal_id
           AND s.pin_token = p_pin_token AND s.last_used_at > p_session_since;
        IF NOT FOUND THEN
            SELECT s.id INTO v_session
              FROM card_sessions s WHERE s.card_id = v_card.id AND s.terminal_id = p_terminal_id;
            v_session_found := FOUND;
            IF p_pin_verified IS NULL OR p_pin_hash IS DISTINCT FROM v_card.pin_hash THEN
                -- Nothing was written yet: the caller verifies this hash ahead and comes back.
                o_status := 'pin_first';
                o_code := NULL;
                o_rrn := NULL;
                o_pin_hash := v_card.pin_hash;
                RETURN;
            ELSIF p_pin_verified THEN
                INSERT INTO audit_log (at, actor, role, source, action, subject, before, after)
                VALUES (p_now, p_actor, 'terminal', 'link', 'pin.verified', p_subject,
                        'null', 'null');
                v_failed := 0;
                v_card_dirty := true;
                IF v_session_found THEN
                    UPDATE card_sessions
                       SET pin_token = p_pin_token, started_at = p_now, last_used_at = p_now
                     WHERE id = v_session.id;
                ELSE
                    INSERT INTO card_sessions (card_id, terminal_id, pin_token, started_at,
                                               last_used_at)
                    VALUES (v_card.id, p_terminal_id, p_pin_token, p_now, p_now);
                END IF;
            ELSE
                IF v_session_found THEN
                    DELETE FROM card_sessions WHERE id = v_session.id;
                END IF;
                v_failed := v_failed + 1;
                v_card_dirty := true;
                IF v_failed >= p_max_failed THEN
                    v_locked_until := p_lock_until;
                    v_failed := 0;
                    o_note := 'locked';
                    INSERT INTO audit_log (at, actor, role, source, action, subject, before,
                                           after)
                    VALUES (p_now, p_actor, 'terminal', 'link', 'pin.locked', p_subject, 'null',
                            format('{"locked_until": %s}', to_json(p_lock_until_text))::json);
                    o_code := '75';
                    EXIT checks;
                END IF;
                INSERT INTO audit_log (at, actor, role, source, action, subject, before, after)
                VALUES (p_now, p_actor, 'terminal', 'link', 'pin.failed', p_subject, 'null',
                        format('{"failed_attempts": %s}', v_failed)::json);
                o_code := '55';
                EXIT checks;
            END IF;
        END IF;
        IF v_card.pin_change_required THEN
            o_code := '77';
            EXIT checks;
        END IF;
        -- 7. the account: the requested type, or for 00 checking else the lowest type.
        IF p_from_type = '00' THEN
            SELECT CASE WHEN bool_or(ca.account_type = '20') THEN '20'
                        ELSE coalesce(min(ca.account_type COLLATE "C"), '--') END
              INTO v_wanted
              FROM card_accounts ca WHERE ca.card_id = v_card.id;
        ELSE
            v_wanted := p_from_type;
        END IF;
        SELECT a.id, a.number, a.kind, a.currency, a.balance_cents, a.status INTO v_account
          FROM card_accounts ca JOIN accounts a ON a.id = ca.account_id
         WHERE ca.card_id = v_card.id AND ca.account_type = v_wanted;
        IF NOT FOUND THEN
            o_code := '57';
            EXIT checks;
        END IF;
        IF v_account.status <> 'open' THEN
            o_code := '78';
            EXIT checks;
        END IF;
        IF p_transaction = '30' THEN
            -- The holds, and DE 62 as host.bank.ministatement formats it: the newest five
            -- entries, newest first, each date, C/D, 12-digit amount, 19 characters of label
            -- (a deposit still held: CASH DEP / CHECK DEP HOLD mm/dd).
            WITH last AS (
                SELECT e.id AS entry_id, e.amount_cents, e.created_at, p.kind, p.description,
                       p.id AS posting_id
                  FROM entries e JOIN postings p ON p.id = e.posting_id
                 WHERE e.account_id = v_account.id
                 ORDER BY e.created_at DESC, e.id DESC
                 LIMIT 5
            ), held AS (
                SELECT h.posting_id, max(h.release_at) AS until
                  FROM holds h
                 WHERE h.account_id = v_account.id AND h.status = 'held'
                   AND h.posting_id IN (SELECT l.posting_id FROM last l)
                 GROUP BY h.posting_id
            ), lines AS (
                SELECT l.entry_id, l.amount_cents, l.created_at, l.kind, hd.until,
                       CASE l.kind
                           WHEN 'transfer' THEN CASE WHEN l.amount_cents > 0
                                                     THEN 'TRANSFER IN'
                                                     ELSE 'TRANSFER OUT' END
                           WHEN 'withdrawal' THEN 'ATM WITHDRAWAL'
                           WHEN 'withdrawal-reversal' THEN 'ATM REVERSAL'
                           WHEN 'transfer-reversal' THEN 'TRANSFER REVERSAL'
                           WHEN 'deposit' THEN 'CASH DEPOSIT'
                           WHEN 'deposit-reversal' THEN 'CASH DEP REVERSAL'
                           WHEN 'check-deposit' THEN 'CHECK DEPOSIT'
                           WHEN 'check-deposit-reversal' THEN 'CHECK DEP REVERSAL'
                           WHEN 'opening' THEN 'OPENING BALANCE'
                       END AS fixed,
                       coalesce(nullif(l.description, ''), l.kind) AS own
                  FROM last l LEFT JOIN held hd ON hd.posting_id = l.posting_id
            )
            SELECT (SELECT coalesce(sum(h.amount_cents), 0)
                      FROM holds h WHERE h.account_id = v_account.id AND h.status = 'held'),
                   coalesce(string_agg(
                       to_char(n.created_at, 'YYYYMMDD')
                       || CASE WHEN n.amount_cents >= 0 THEN 'C' ELSE 'D' END
                       || lpad(abs(n.amount_cents)::text, 12, '0')
                       || rpad(CASE WHEN n.until IS NOT NULL
                                    THEN CASE WHEN n.kind = 'deposit' THEN 'CASH DEP'
                                              ELSE 'CHECK DEP' END
                                         || ' HOLD ' || to_char(n.until, 'MM/DD')
                                    ELSE coalesce(n.fixed,
                                                  translate(n.own,
                                                            'abcdefghijklmnopqrstuvwxyz',
                                                            'ABCDEFGHIJKLMNOPQRSTUVWXYZ'))
                               END, 19),
                       '' ORDER BY n.created_at DESC, n.entry_id DESC), ''),
                   coalesce(bool_or(abs(n.amount_cents) >= 1000000000000
                                    OR (n.until IS NULL AND n.fixed IS NULL
                                        AND n.own !~ '^[ -~]*$')), false)
              INTO v_held, v_statement, v_unformattable
              FROM lines n;
            IF v_unformattable THEN
                RAISE EXCEPTION 'mini statement entry needs Python''s formatting'
                      USING ERRCODE = 'ATM01';
            END IF;
            v_balance := v_account.balance_cents;
            o_code := '00';
            EXIT checks;
        ELSIF p_transaction = '01' THEN
            -- 8. amount; the terminal's cash account is the other leg.
            IF p_amount <= 0 OR p_amount > 1000000000 THEN
                o_code := '13';
                EXIT checks;
            END IF;
            IF v_head.terminal_row IS NULL THEN
                o_code := '57';
                EXIT checks;
            END IF;
            v_counter_id := v_head.cash_account_id;
            v_movement := 'withdrawal';
            v_description := 'ATM withdrawal ' || p_terminal_id;
        ELSIF p_transaction = '40' THEN
            IF p_to_account_number IS NOT NULL THEN
                SELECT a.id, a.number, a.kind, a.status INTO v_target
                  FROM accounts a WHERE a.number = p_to_account_number;
                IF NOT FOUND THEN
                    o_code := '57';
                    EXIT checks;
                END IF;
                IF v_target.kind NOT IN ('checking', 'savings') THEN
                    o_code := '57';
                    EXIT checks;
                END IF;
            ELSIF p_to_type = '00' THEN
                o_code := '12';
                EXIT checks;
            ELSE
                SELECT a.id, a.number, a.kind, a.status INTO v_target
                  FROM card_accounts ca JOIN accounts a ON a.id = ca.account_id
                 WHERE ca.card_id = v_card.id AND ca.account_type = p_to_type;
                IF NOT FOUND THEN
                    o_code := '57';
                    EXIT checks;
                END IF;
            END IF;
            IF v_target.id = v_account.id THEN
                o_code := '12';
                EXIT checks;
            END IF;
            IF v_target.status <> 'open' THEN
                o_code := '78';
                EXIT checks;
            END IF;
            IF p_amount <= 0 OR p_amount > 1000000000 THEN
                o_code := '13';
                EXIT checks;
            END IF;
            v_counter_id := v_target.id;
            v_movement := 'transfer';
            v_description := 'Transfer ' || v_account.number || ' to ' || v_target.number;
        ELSE
            o_code := '12';
            EXIT checks;
        END IF;
        -- Both accounts locked in id order (host.bank.ledger.lock_accounts), the balance
        -- as the lock returns it; 9. the day's use (reversals give back their original's
        -- day) and the holds; 10. funds.
        FOR v_locked IN
            SELECT a.id, a.balance_cents FROM accounts a
             WHERE a.id IN (v_account.id, v_counter_id) ORDER BY a.id FOR UPDATE
        LOOP
            IF v_locked.id = v_account.id THEN
                v_balance := v_locked.balance_cents;
            END IF;
        END LOOP;
        v_reversal := v_movement || '-reversal';
        SELECT (SELECT -coalesce(sum(e.amount_cents), 0)
                  FROM entries e
                  JOIN postings p ON e.posting_id = p.id
                  LEFT JOIN postings o ON p.reverses_id = o.id
                 WHERE e.account_id = v_account.id AND e.created_at >= p_day_start
                   AND ((p.kind = v_movement AND e.amount_cents < 0)
                        OR (p.kind = v_reversal AND e.amount_cents > 0
                            AND o.created_at >= p_day_start))),
               (SELECT coalesce(sum(h.amount_cents), 0)
                  FROM holds h WHERE h.account_id = v_account.id AND h.status = 'held')
          INTO v_used, v_held;
        IF v_used + p_amount > p_daily_limit THEN
            v_balance := NULL;
            o_code := '61';
            EXIT checks;
        END IF;
        IF v_balance - v_held < p_amount THEN
            v_balance := NULL;
            o_code := '51';
            EXIT checks;
        END IF;
        v_balance := v_balance - p_amount;
        o_code := '00';
    END checks;
    IF v_card_dirty THEN
        UPDATE cards SET failed_pin_attempts = v_failed, locked_until = v_locked_until
         WHERE id = v_card.id;
    END IF;
    IF o_code = '00' THEN
        o_auth_code := p_auth_code;
        -- DE 54: 01 ledger, 02 available (holds excluded).
        o_account_type := CASE v_account.kind WHEN 'checking' THEN '20'
                                              WHEN 'savings' THEN '10'
                                              ELSE p_from_type END;
        o_currency := v_account.currency;
        o_ledger := v_balance;
        o_available := v_balance - v_held;
    END IF;
    -- The record's outcome, JSON as json.dumps writes it.
    o_outcome := format(
        '{"balances": %s, "mini_statement": %s}',
        CASE WHEN o_ledger IS NULL THEN '[]'
             ELSE format('[[%s, "01", %s, %s], [%s, "02", %s, %s]]',
                         to_json(o_account_type), to_json(o_currency), o_ledger,
                         to_json(o_account_type), to_json(o_currency), o_available)
        END,
        to_json(v_statement))::json;
    IF o_code = '00' AND v_movement IS NOT NULL THEN
        -- The posting as host.bank.ledger.post writes it (withdrawal and transfer alike),
        -- then the audit row (host.bank.audit.record) and the link request.
        WITH posting AS (
            INSERT INTO postings (kind, description, terminal_id, stan, rrn, reverses_id,
                                  created_at)
            VALUES (v_movement, v_description, p_terminal_id, p_stan, p_rrn, NULL, p_now)
            RETURNING id
        ), legs AS (
            INSERT INTO entries (posting_id, account_id, amount_cents, created_at)
            SELECT posting.id, leg.account_id, leg.amount_cents, p_now
              FROM posting,
                   (VALUES (1, v_account.id, -p_amount), (2, v_counter_id, p_amount))
                       AS leg (n, account_id, amount_cents)
             ORDER BY leg.n
        ), moved AS (
            UPDATE accounts a
               SET balance_cents = a.balance_cents
                                   + CASE WHEN a.id = v_account.id THEN -p_amount
                                          ELSE p_amount END
             WHERE a.id IN (v_account.id, v_counter_id)
        ), audit AS (
            INSERT INTO audit_log (at, actor, role, source, action, subject, before, after)
            SELECT p_now, p_actor, 'terminal', 'link', p_action, p_subject, 'null',
                   {audit_posting}
              FROM posting
        ), request AS (
            INSERT INTO link_requests (terminal_id, stan, transmission_time, mti_class,
                                       processing_code, amount_cents, response_code, rrn,
                                       auth_code, posting_id, created_at, fingerprint,
                                       outcome)
            SELECT p_terminal_id, p_stan, p_transmission_time, p_mti_class,
                   p_transaction || p_from_type || p_to_type, p_amount, o_code, p_rrn,
                   o_auth_code, posting.id, p_now, p_fingerprint, o_outcome
              FROM posting
            RETURNING id
        )
        SELECT request.id,
               -- A reversal advice that overtook this approved 0200: the caller applies
               -- it (host.link.reversals.apply_waiting).
               p_mti_class = '0200' AND EXISTS (
                   SELECT 1 FROM link_reversal_advices r
                    WHERE r.terminal_id = p_terminal_id AND r.original_stan = p_stan
                      AND r.original_time = p_transmission_time
                      AND r.status = 'original-unknown')
          INTO o_link_request_id, o_reversal_waiting
          FROM request;
        RETURN;
    END IF;
    WITH audit AS (
        INSERT INTO audit_log (at, actor, role, source, action, subject, before, after)
        VALUES (p_now, p_actor, 'terminal', 'link', p_action, p_subject, 'null',
                {audit_none})
    ), request AS (
        INSERT INTO link_requests (terminal_id, stan, transmission_time, mti_class,
                                   processing_code, amount_cents, response_code, rrn,
                                   auth_code, posting_id, created_at, fingerprint, outcome)
        VALUES (p_terminal_id, p_stan, p_transmission_time, p_mti_class,
                p_transaction || p_from_type || p_to_type, p_amount, o_code, p_rrn,
                o_auth_code, NULL, p_now, p_fingerprint, o_outcome)
        RETURNING id
    )
    SELECT request.id,
           o_code = '00' AND p_mti_class = '0200' AND EXISTS (
               SELECT 1 FROM link_reversal_advices r
                WHERE r.terminal_id = p_terminal_id AND r.original_stan = p_stan
                  AND r.original_time = p_transmission_time
                  AND r.status = 'original-unknown')
      INTO o_link_request_id, o_reversal_waiting
      FROM request;
END
$fn$
"""


def _with_audit_json(template: str) -> str:
    """``template`` with the audit row's JSON where it goes: with the posting's id, and
    without a posting. Both pieces are constants of this file, nothing from a request."""
    return template.replace(
        "{audit_posting}", _AUDIT_AFTER.replace("{posting}", "posting.id")
    ).replace("{audit_none}", _AUDIT_AFTER.replace("{posting}", "NULL"))


_AUTHORIZE = _with_audit_json(_AUTHORIZE_TEMPLATE)


def _authorize_0011() -> str:
    """Migration 0011's definition of the function (the downgrade puts it back)."""
    return str(_0011._AUTHORIZE).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch_op:
        batch_op.drop_index("ix_entries_account_id")
    with op.batch_alter_table("card_sessions") as batch_op:
        batch_op.drop_index("ix_card_sessions_last_used_at")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_AUTHORIZE)


def downgrade() -> None:
    with op.batch_alter_table("card_sessions") as batch_op:
        batch_op.create_index("ix_card_sessions_last_used_at", ["last_used_at"], unique=False)
    with op.batch_alter_table("entries") as batch_op:
        batch_op.create_index("ix_entries_account_id", ["account_id"], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    # 0011's body, with 0013's setting.
    op.execute(_authorize_0011())
    op.execute(f"ALTER FUNCTION atm_authorize({SIGNATURE}) SET enable_seqscan = off")
