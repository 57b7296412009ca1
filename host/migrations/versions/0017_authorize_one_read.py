"""authorize one read: ``atm_authorize`` reads the request's record, the operators' switches,
the terminal, the card (locked) and the account in one statement where it took three or four

Revision ID: 0017_authorize_one_read
Revises: 0016_fewer_index_writes
Create Date: 2026-11-30

pg_stat_statements (``scripts/pg_cost.py``) over a closed loop of withdrawals: seven
statements inside the function per withdrawal, each paying its executor start-up and its
locks. Three of them only read, one after the other, by keys the request carries: the
duplicate check with the switches and the terminal; the card by PAN with its customer
(``FOR UPDATE OF`` the card); the card's account of the requested type (for type 00 one
more read first, to pick checking else the lowest type). They are one statement now: the
card in a ``LATERAL`` subquery that is locked only when the checks get to the card (a new
request, a card range we take, no maintenance, the terminal in service: no lock otherwise,
as before), the account in another (``card_accounts`` is unique by card and type, so
"checking, else the lowest type" is an ``ORDER BY ... LIMIT 1``). The checks, their order,
the codes and the rows written are 0015's (``tests/host/test_fastpath_model.py``).

The account's columns now come from the statement that takes the card's lock, so from its
snapshot: when that lock waited for another request on the same card, they are as of
before that one committed. What must be current is read again where it used to be read
after that lock: a balance inquiry takes its balance in the statement that formats its
mini statement (the two agree, as before), and a withdrawal or transfer takes the
account's status with its balance when it locks the account (closed or frozen meanwhile:
78, the status check's code; before, a freeze committed between the read and the lock went
unseen). The lock of both accounts is one ``SELECT ... INTO`` over the locked rows rather
than a cursor loop.

PostgreSQL only (SQLite has no function); the downgrade puts 0015's function back.
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0017_authorize_one_read"
down_revision: str | None = "0016_fewer_index_writes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_0014 = importlib.import_module("host.migrations.versions.0014_authorize_fewer_statements")
_0015 = importlib.import_module("host.migrations.versions.0015_daily_usage_counter")

# The function whole: 0015's (0014's text with its edits) changed as said above, with the
# audit row's JSON put in twice by 0014's _with_audit_json.
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
    v_card_dirty boolean := false;
    v_failed integer;
    v_locked_until timestamptz;
    v_session record;
    v_session_found boolean;
    v_target record;
    v_counter_id integer;
    v_balance bigint;
    v_held bigint := 0;
    v_used bigint;
    v_posting_id integer;
    v_movement text;
    v_day date;
    v_counted boolean;
    v_description text;
    v_statement text := '';
    v_unformattable boolean;
    v_open boolean;
BEGIN
    o_reversal_waiting := false;
    -- 1. duplicate: a repeat is answered from the record; a reused key gets 94. The same
    -- read brings the operators' switches and the terminal's cash account (step 2, 8), and,
    -- when the checks get that far, the card (locked) with its customer (steps 2-6) and the
    -- account (step 7: the requested type, or for 00 checking else the lowest type).
    SELECT lr.id AS request_id, lr.response_code, lr.rrn, lr.auth_code, lr.outcome,
           lr.fingerprint, bs.maintenance, t.id AS terminal_row, t.in_service,
           t.cash_account_id, c.card_id, c.card_expiry, c.card_status, c.card_pin_hash,
           c.card_pin_change_required, c.card_failed_pin_attempts, c.card_locked_until,
           c.customer_active, a.account_id, a.account_number, a.account_kind,
           a.account_currency, a.account_status
      INTO v_head
      FROM (VALUES (1)) one (x)
      LEFT JOIN link_requests lr
             ON lr.terminal_id = p_terminal_id AND lr.stan = p_stan
            AND lr.transmission_time = p_transmission_time AND lr.mti_class = p_mti_class
      LEFT JOIN bank_state bs ON bs.id = 1
      LEFT JOIN terminals t ON t.terminal_id = p_terminal_id
      -- Locked only when the checks below reach the card (a new request, a card range we
      -- take, no maintenance, the terminal in service), as the separate read was.
      LEFT JOIN LATERAL (
          SELECT c.id AS card_id, c.expiry AS card_expiry, c.status AS card_status,
                 c.pin_hash AS card_pin_hash, c.pin_change_required AS card_pin_change_required,
                 c.failed_pin_attempts AS card_failed_pin_attempts,
                 c.locked_until AS card_locked_until, cu.active AS customer_active
            FROM cards c JOIN customers cu ON cu.id = c.customer_id
           WHERE c.pan = p_pan AND lr.id IS NULL AND p_range_ok
             AND bs.maintenance IS NOT TRUE AND t.in_service IS NOT FALSE
             FOR UPDATE OF c
      ) c ON true
      -- (card_id, account_type) is unique: one account per type.
      LEFT JOIN LATERAL (
          SELECT a.id AS account_id, a.number AS account_number, a.kind AS account_kind,
                 a.currency AS account_currency, a.status AS account_status
            FROM card_accounts ca JOIN accounts a ON a.id = ca.account_id
           WHERE ca.card_id = c.card_id
             AND (ca.account_type = p_from_type OR p_from_type = '00')
           ORDER BY ca.account_type = '20' DESC, ca.account_type COLLATE "C"
           LIMIT 1
      ) a ON true;
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
        -- 2. operators' switches, then the card (locked by the first read) with its customer.
        IF v_head.maintenance THEN
            o_code := '90';
            EXIT checks;
        END IF;
        IF NOT v_head.in_service THEN
            o_code := '89';
            EXIT checks;
        END IF;
        IF v_head.card_id IS NULL THEN
            o_code := '14';
            EXIT checks;
        END IF;
        IF v_head.card_status IN ('blocked', 'replaced') THEN
            o_code := '14';
            EXIT checks;
        END IF;
        -- 3. lost and stolen before the expiry (captured whatever it says).
        IF v_head.card_status = 'lost' THEN
            o_code := '41';
            EXIT checks;
        END IF;
        IF v_head.card_status = 'stolen' THEN
            o_code := '43';
            EXIT checks;
        END IF;
        IF NOT v_head.customer_active THEN
            o_code := '14';
            EXIT checks;
        END IF;
        -- 4. expiry: by code point, as Python compares strings.
        IF v_head.card_expiry COLLATE "C" < p_this_month COLLATE "C"
           OR (p_expiry IS NOT NULL AND p_expiry COLLATE "C" < p_this_month COLLATE "C") THEN
            o_code := '54';
            EXIT checks;
        END IF;
        IF p_expiry IS NOT NULL AND p_expiry <> v_head.card_expiry THEN
            o_note := 'expiry-mismatch';
            o_code := '14';
            EXIT checks;
        END IF;
        -- 5. lockout; an expired one is lifted (written with the card at the end).
        v_failed := v_head.card_failed_pin_attempts;
        v_locked_until := v_head.card_locked_until;
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
         WHERE s.card_id = v_head.card_id AND s.terminal_id = p_terminal_id
           AND s.pin_token = p_pin_token AND s.last_used_at > p_session_since;
        IF NOT FOUND THEN
            SELECT s.id INTO v_session
              FROM card_sessions s
             WHERE s.card_id = v_head.card_id AND s.terminal_id = p_terminal_id;
            v_session_found := FOUND;
            IF p_pin_verified IS NULL OR p_pin_hash IS DISTINCT FROM v_head.card_pin_hash THEN
                -- Nothing was written yet: the caller verifies this hash ahead and comes back.
                o_status := 'pin_first';
                o_code := NULL;
                o_rrn := NULL;
                o_pin_hash := v_head.card_pin_hash;
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
                    VALUES (v_head.card_id, p_terminal_id, p_pin_token, p_now, p_now);
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
        IF v_head.card_pin_change_required THEN
            o_code := '77';
            EXIT checks;
        END IF;
        -- 7. the account (read by the first read).
        IF v_head.account_id IS NULL THEN
            o_code := '57';
            EXIT checks;
        END IF;
        IF v_head.account_status <> 'open' THEN
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
                 WHERE e.account_id = v_head.account_id
                 ORDER BY e.created_at DESC, e.id DESC
                 LIMIT 5
            ), held AS (
                SELECT h.posting_id, max(h.release_at) AS until
                  FROM holds h
                 WHERE h.account_id = v_head.account_id AND h.status = 'held'
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
            SELECT (SELECT a.balance_cents FROM accounts a WHERE a.id = v_head.account_id),
                   (SELECT coalesce(sum(h.amount_cents), 0)
                      FROM holds h
                     WHERE h.account_id = v_head.account_id AND h.status = 'held'),
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
              INTO v_balance, v_held, v_statement, v_unformattable
              FROM lines n;
            IF v_unformattable THEN
                RAISE EXCEPTION 'mini statement entry needs Python''s formatting'
                      USING ERRCODE = 'ATM01';
            END IF;
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
                 WHERE ca.card_id = v_head.card_id AND ca.account_type = p_to_type;
                IF NOT FOUND THEN
                    o_code := '57';
                    EXIT checks;
                END IF;
            END IF;
            IF v_target.id = v_head.account_id THEN
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
            v_description := 'Transfer ' || v_head.account_number || ' to ' || v_target.number;
        ELSE
            o_code := '12';
            EXIT checks;
        END IF;
        -- Both accounts locked in id order (host.bank.ledger.lock_accounts), the balance
        -- as the lock returns it; 9. the day's use (migration 0015's counter: reversals
        -- give back their original's day) and the holds; 10. funds.
        SELECT max(l.balance_cents) FILTER (WHERE l.id = v_head.account_id),
               bool_and(l.status = 'open') FILTER (WHERE l.id = v_head.account_id)
          INTO v_balance, v_open
          FROM (SELECT a.id, a.balance_cents, a.status FROM accounts a
                 WHERE a.id IN (v_head.account_id, v_counter_id) ORDER BY a.id FOR UPDATE) l;
        IF NOT v_open THEN
            v_balance := NULL;
            o_code := '78';
            EXIT checks;
        END IF;
        v_day := (p_day_start AT TIME ZONE 'UTC')::date;
        SELECT coalesce(sum(u.used_cents), 0), coalesce(bool_or(u.day = v_day), false),
               (SELECT coalesce(sum(h.amount_cents), 0)
                  FROM holds h WHERE h.account_id = v_head.account_id AND h.status = 'held')
          INTO v_used, v_counted, v_held
          FROM daily_usage u
         WHERE u.account_id = v_head.account_id AND u.kind = v_movement AND u.day >= v_day;
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
         WHERE id = v_head.card_id;
    END IF;
    IF o_code = '00' THEN
        o_auth_code := p_auth_code;
        -- DE 54: 01 ledger, 02 available (holds excluded).
        o_account_type := CASE v_head.account_kind WHEN 'checking' THEN '20'
                                              WHEN 'savings' THEN '10'
                                              ELSE p_from_type END;
        o_currency := v_head.account_currency;
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
                   (VALUES (1, v_head.account_id, -p_amount), (2, v_counter_id, p_amount))
                       AS leg (n, account_id, amount_cents)
             ORDER BY leg.n
        ), moved AS (
            UPDATE accounts a
               SET balance_cents = a.balance_cents
                                   + CASE WHEN a.id = v_head.account_id THEN -p_amount
                                          ELSE p_amount END
             WHERE a.id IN (v_head.account_id, v_counter_id)
        ), used AS (
            -- The day's use of this kind's limit (host.bank.ledger.post does the same).
            UPDATE daily_usage u SET used_cents = u.used_cents + p_amount
             WHERE v_counted
               AND u.account_id = v_head.account_id AND u.kind = v_movement AND u.day = v_day
        ), used_first AS (
            INSERT INTO daily_usage (account_id, kind, day, used_cents)
            SELECT v_head.account_id, v_movement, v_day, p_amount WHERE NOT v_counted
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

_AUTHORIZE = _0014._with_audit_json(_AUTHORIZE_TEMPLATE)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_AUTHORIZE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_0015.authorize())
