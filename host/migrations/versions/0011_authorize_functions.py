"""authorize functions: the PostgreSQL hot path (issue 16) as one PL/pgSQL function,
``atm_authorize``, doing in one call what ``AuthorizationService._authorize_once`` and
``_process`` do for a balance inquiry (30), a withdrawal (01) and a transfer (40)

Revision ID: 0011_authorize_functions
Revises: 0010_operators
Create Date: 2026-11-30

The checks, their order and their codes are those of ``host/bank/services.py`` (its module
docstring); the rows written are those the ORM writes (``host.bank.ledger.post``,
``host.bank.audit.record``, ``LinkRequest``), JSON text included. Everything that needs a
secret stays in Python and comes in as a parameter: the RRN, the auth code, the request's
fingerprint, the card-session token, and bcrypt's answer (with the hash it was checked
against). Without a usable answer the function says ``pin_first`` and applies nothing.
Times that Python derives from its clock (this month, the day's start, the session cut-off,
the lockout's end and its ISO text) come in too, so both paths compute them one way.
``host/bank/fastpath.py`` calls it; ``tests/host/test_fastpath_model.py`` keeps both equal.
A no-op on SQLite (which keeps the ORM path).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_authorize_functions"
down_revision: str | None = "0010_operators"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "text, text, text, text, text, text, text, text, bigint, text, text, text, text, text, "
    "timestamptz, text, timestamptz, boolean, boolean, text, boolean, text, timestamptz, "
    "integer, timestamptz, text, bigint, text, text, text"
)

_AUTHORIZE = r"""
CREATE FUNCTION atm_authorize(
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
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_prev record;
    v_maintenance boolean;
    v_terminal_off boolean;
    v_card record;
    v_card_dirty boolean := false;
    v_failed integer;
    v_locked_until timestamptz;
    v_session record;
    v_session_found boolean;
    v_wanted text;
    v_account record;
    v_target record;
    v_counter_id integer;
    v_balance bigint;
    v_held bigint := 0;
    v_used bigint;
    v_posting_id integer;
    v_movement text;
    v_reversal text;
    v_description text;
BEGIN
    o_reversal_waiting := false;
    -- 1. duplicate: a repeat is answered from the record; a reused key gets 94.
    SELECT lr.response_code, lr.rrn, lr.auth_code, lr.outcome, lr.fingerprint INTO v_prev
      FROM link_requests lr
     WHERE lr.terminal_id = p_terminal_id AND lr.stan = p_stan
       AND lr.transmission_time = p_transmission_time AND lr.mti_class = p_mti_class;
    IF FOUND THEN
        IF coalesce(v_prev.fingerprint, '') = '' OR v_prev.fingerprint = p_fingerprint THEN
            o_status := 'repeat';
            o_code := v_prev.response_code;
            o_rrn := v_prev.rrn;
            o_auth_code := v_prev.auth_code;
            o_outcome := v_prev.outcome;
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
        SELECT (SELECT bs.maintenance FROM bank_state bs WHERE bs.id = 1),
               (SELECT NOT t.in_service FROM terminals t WHERE t.terminal_id = p_terminal_id)
          INTO v_maintenance, v_terminal_off;
        IF v_maintenance THEN
            o_code := '90';
            EXIT checks;
        END IF;
        IF v_terminal_off THEN
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
        -- 6. PIN: no block 30, no key 55; an open card session, or bcrypt's answer.
        IF NOT p_has_pin_block THEN
            o_code := '30';
            EXIT checks;
        END IF;
        IF p_pin_token IS NULL THEN
            o_code := '55';
            EXIT checks;
        END IF;
        SELECT s.id, s.pin_token, s.last_used_at INTO v_session
          FROM card_sessions s WHERE s.card_id = v_card.id AND s.terminal_id = p_terminal_id;
        v_session_found := FOUND;
        IF v_session_found AND v_session.pin_token = p_pin_token
           AND v_session.last_used_at > p_session_since THEN
            UPDATE card_sessions SET last_used_at = p_now WHERE id = v_session.id;
        ELSIF p_pin_verified IS NULL OR p_pin_hash IS DISTINCT FROM v_card.pin_hash THEN
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
                INSERT INTO audit_log (at, actor, role, source, action, subject, before, after)
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
            SELECT coalesce(sum(h.amount_cents), 0) INTO v_held
              FROM holds h WHERE h.account_id = v_account.id AND h.status = 'held';
            v_balance := v_account.balance_cents;
            -- The mini statement's rows; Python formats them (host.bank.ministatement).
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
            )
            SELECT coalesce(array_agg(l.amount_cents ORDER BY l.created_at DESC, l.entry_id DESC), '{}'),
                   coalesce(array_agg(l.created_at ORDER BY l.created_at DESC, l.entry_id DESC), '{}'),
                   coalesce(array_agg(l.kind ORDER BY l.created_at DESC, l.entry_id DESC), '{}'),
                   coalesce(array_agg(l.description ORDER BY l.created_at DESC, l.entry_id DESC), '{}'),
                   coalesce(array_agg(hd.until ORDER BY l.created_at DESC, l.entry_id DESC), '{}')
              INTO o_mini_amounts, o_mini_at, o_mini_kinds, o_mini_descriptions,
                   o_mini_held_until
              FROM last l LEFT JOIN held hd ON hd.posting_id = l.posting_id;
            o_code := '00';
            EXIT checks;
        ELSIF p_transaction = '01' THEN
            -- 8. amount; the terminal's cash account is the other leg.
            IF p_amount <= 0 OR p_amount > 1000000000 THEN
                o_code := '13';
                EXIT checks;
            END IF;
            SELECT t.cash_account_id INTO v_counter_id
              FROM terminals t WHERE t.terminal_id = p_terminal_id;
            IF NOT FOUND THEN
                o_code := '57';
                EXIT checks;
            END IF;
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
        -- read under the lock; 9. the day's use (reversals give back their original's
        -- day) and the holds; 10. funds.
        PERFORM 1 FROM accounts a WHERE a.id IN (v_account.id, v_counter_id)
          ORDER BY a.id FOR UPDATE;
        SELECT a.balance_cents INTO v_balance FROM accounts a WHERE a.id = v_account.id;
        v_reversal := v_movement || '-reversal';
        SELECT -coalesce(sum(e.amount_cents), 0) INTO v_used
          FROM entries e
          JOIN postings p ON e.posting_id = p.id
          LEFT JOIN postings o ON p.reverses_id = o.id
         WHERE e.account_id = v_account.id AND e.created_at >= p_day_start
           AND ((p.kind = v_movement AND e.amount_cents < 0)
                OR (p.kind = v_reversal AND e.amount_cents > 0
                    AND o.created_at >= p_day_start));
        SELECT coalesce(sum(h.amount_cents), 0) INTO v_held
          FROM holds h WHERE h.account_id = v_account.id AND h.status = 'held';
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
        -- The posting as host.bank.ledger.post writes it.
        INSERT INTO postings (kind, description, terminal_id, stan, rrn, reverses_id,
                              created_at)
        VALUES (v_movement, v_description, p_terminal_id, p_stan, p_rrn, NULL, p_now)
        RETURNING id INTO v_posting_id;
        INSERT INTO entries (posting_id, account_id, amount_cents, created_at)
        VALUES (v_posting_id, v_account.id, -p_amount, p_now);
        INSERT INTO entries (posting_id, account_id, amount_cents, created_at)
        VALUES (v_posting_id, v_counter_id, p_amount, p_now);
        UPDATE accounts SET balance_cents = balance_cents - p_amount WHERE id = v_account.id;
        UPDATE accounts SET balance_cents = balance_cents + p_amount WHERE id = v_counter_id;
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
    -- The audit row (host.bank.audit.record) and the link request, JSON as json.dumps
    -- writes it.
    INSERT INTO audit_log (at, actor, role, source, action, subject, before, after)
    VALUES (p_now, p_actor, 'terminal', 'link', p_action, p_subject, 'null',
            format('{"code": %s, "amount_cents": %s, "processing_code": %s, "stan": %s, '
                   '"rrn": %s, "posting": %s}',
                   to_json(o_code), p_amount,
                   to_json(p_transaction || p_from_type || p_to_type), to_json(p_stan),
                   to_json(p_rrn), coalesce(v_posting_id::text, 'null'))::json);
    o_outcome := format(
        '{"balances": %s, "mini_statement": ""}',
        CASE WHEN o_ledger IS NULL THEN '[]'
             ELSE format('[[%s, "01", %s, %s], [%s, "02", %s, %s]]',
                         to_json(o_account_type), to_json(o_currency), o_ledger,
                         to_json(o_account_type), to_json(o_currency), o_available)
        END)::json;
    INSERT INTO link_requests (terminal_id, stan, transmission_time, mti_class,
                               processing_code, amount_cents, response_code, rrn, auth_code,
                               posting_id, created_at, fingerprint, outcome)
    VALUES (p_terminal_id, p_stan, p_transmission_time, p_mti_class,
            p_transaction || p_from_type || p_to_type, p_amount, o_code, p_rrn, o_auth_code,
            v_posting_id, p_now, p_fingerprint, o_outcome)
    RETURNING id INTO o_link_request_id;
    -- A reversal advice that overtook this approved 0200: the caller applies it
    -- (host.link.reversals.apply_waiting).
    IF o_code = '00' AND p_mti_class = '0200' THEN
        o_reversal_waiting := EXISTS (
            SELECT 1 FROM link_reversal_advices r
             WHERE r.terminal_id = p_terminal_id AND r.original_stan = p_stan
               AND r.original_time = p_transmission_time AND r.status = 'original-unknown');
    END IF;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_AUTHORIZE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION atm_authorize({SIGNATURE})")
