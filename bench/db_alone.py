"""The database alone (issue 16): the host's one database call per withdrawal, made by
pgbench's C client, so that ``bench/run.py`` can split the host's ratio to pgbench TPC-B into
what the database function costs and what the host, the link and the terminals add.

The host authorizes a withdrawal with one call of the PL/pgSQL function ``atm_authorize``
(``host/bank/fastpath.py``: ``FastAuthorizer._parameters`` gives its 30 parameters). Here
pgbench (``-f``, prepared statements as the host's psycopg cursor uses, as many clients as
terminals, on the same cluster and database right after the closed loop) makes the same
call for the same withdrawals: client ``k`` is terminal ``k`` with its card, account and the
card session the closed loop left open, and each call is a new request (a fresh STAN per
client, the transmission time and clock of the call), so none is a repeat. The parameters
that stay the same for a terminal are those the host would pass, computed as the host does:
the card-session token (HMAC under SECRET_KEY of the terminal's PIN block, bound to card and
terminal), the request's fingerprint, the audit subject and actor, and the limits and
timeouts of the host's configuration (``HostConfig.from_env`` of the host process's
environment). pgbench has no per-client constants, so each call finds them by its client id
in a small table, in the same statement (a ``LATERAL`` call): ``lookup_script`` is that
statement without the call, run alone the same way, so its cost is known.

Every call is checked: afterwards the link requests the run added must all be answered 00,
as many as pgbench made calls, each with its withdrawal posting (and the ledger check of
``bench/run.py`` stays clean).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import bench_host  # a sibling script, not a package (bench/ is on sys.path first)
from procstat import TICK_SECONDS, process_ticks, tree_ticks
from sqlalchemy import text

from host.bank.audit import card_subject, terminal_actor
from host.bank.pins import PinVerifier
from host.bank.services import CardRequest
from host.config import HostConfig
from host.db import create_engine_for
from protocol.messages import parse_processing_code

__all__ = ["CLIENTS_TABLE", "Client", "DbAlone", "authorize_script", "lookup_script", "run"]

CLIENTS_TABLE = "bench_db_alone_clients"
# DE 3 of the bench's withdrawals (BenchTerminal): withdrawal from checking.
PROCESSING_CODE = "012000"

# The columns the host reads back (fastpath._AUTHORIZE), the same way.
_COLUMNS = (
    "a.o_status, a.o_code, a.o_rrn, a.o_auth_code, a.o_pin_hash, a.o_note, a.o_account_type, "
    "a.o_currency, a.o_ledger, a.o_available, a.o_reversal_waiting, "
    "CASE WHEN a.o_status = 'repeat' THEN a.o_outcome::text END, "
    "CASE WHEN a.o_status = 'done' THEN a.o_outcome ->> 'mini_statement' END"
)


@dataclass(frozen=True)
class Client:
    """One pgbench client: a terminal of the closed loop and what the host passes for it."""

    terminal_id: str
    pan: str
    pin_token: str
    fingerprint: str
    subject: str
    actor: str


def clients(terminals: Sequence[bench_host.BenchTerminal], env: Mapping[str, str]) -> list[Client]:
    """What the host (configured by ``env``) passes to ``atm_authorize`` for each terminal's
    withdrawals that is the same on every call, computed with the host's own code."""
    config = HostConfig.from_env(env)
    verifier = PinVerifier(pepper=config.pin_pepper, secret_key=config.secret_key, workers=1)
    transaction, from_account, to_account = parse_processing_code(PROCESSING_CODE)
    try:
        out = []
        for t in terminals:
            request = CardRequest(
                mti_class="0200",
                terminal_id=t.terminal_id,
                stan="",
                transmission_time="",
                pan=t.pan,
                transaction=transaction,
                from_account=from_account,
                to_account=to_account,
                amount_cents=bench_host.AMOUNT,
            )
            out.append(
                Client(
                    t.terminal_id,
                    t.pan,
                    verifier.session_token(t.pan, t.terminal_id, bytes.fromhex(t.pin_block)),
                    verifier.fingerprint(request.content()),
                    card_subject(t.pan)[:64],
                    terminal_actor(t.terminal_id).name,
                )
            )
        return out
    finally:
        verifier.close()


def _arguments(config: HostConfig) -> str:
    """``atm_authorize``'s 30 arguments in ``FastAuthorizer._parameters``'s order, for the
    client row ``c`` and pgbench's per-client counter ``:n``; the clock is the call's."""
    limit = config.daily_withdrawal_limit
    return ", ".join(
        [
            "c.terminal_id",
            "lpad((:n % 999999 + 1)::text, 6, '0')",  # STAN: a new one per call
            "to_char(now() AT TIME ZONE 'UTC', 'MMDDHH24MISS')",  # DE 7, the call's
            "'0200'",
            "c.pan",
            "'01'",
            "'20'",
            "'00'",
            f"{bench_host.AMOUNT}::bigint",
            "NULL::text",  # expiry: no track 2 in the bench's 0200
            "NULL::text",  # no DE 103
            "c.fingerprint",
            # RRN: YYDDD + 7 digits, as the host's; the auth code: 6 digits.
            "to_char(now() AT TIME ZONE 'UTC', 'YYDDD') "
            "|| lpad(((:client_id * 100003 + :n) % 10000000)::text, 7, '0')",
            "lpad((:n % 1000000)::text, 6, '0')",
            "now()",
            "to_char(now() AT TIME ZONE 'UTC', 'YYMM')",
            "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            "true",  # the card range is one the host takes (400000)
            "true",  # a PIN block
            "c.pin_token",
            "NULL::boolean",  # no bcrypt answer: the open session proves the PIN
            "NULL::text",
            f"now() - interval '{config.session_timeout_seconds} seconds'",
            f"{config.max_failed_pin_attempts}",
            f"now() + interval '{config.lockout_duration_seconds} seconds'",
            f"(now() + interval '{config.lockout_duration_seconds} seconds')::text",
            f"{limit}::bigint",
            "'txn.withdrawal'",
            "c.subject",
            "c.actor",
        ]
    )


def authorize_script(config: HostConfig) -> str:
    """pgbench's script: one withdrawal, the host's call with the host's parameters."""
    return (
        "\\set n :n + 1\n"
        f"SELECT {_COLUMNS} FROM {CLIENTS_TABLE} c, "
        f"LATERAL atm_authorize({_arguments(config)}) a WHERE c.client_id = :client_id;\n"
    )


def lookup_script(config: HostConfig) -> str:
    """The authorize script's statement without the call: the client row and the
    parameters computed, one round trip (what the script adds to the host's call, at most:
    the host's call has its own round trip and statement too)."""
    return (
        "\\set n :n + 1\n"
        f"SELECT {_arguments(config)} FROM {CLIENTS_TABLE} c WHERE c.client_id = :client_id;\n"
    )


@dataclass(frozen=True)
class Pgbench:
    """One pgbench run of a custom script: transactions/s, how many, and CPU seconds per
    transaction of the PostgreSQL server (every process of the cluster) and of pgbench."""

    tps: float
    transactions: int
    server_cpu: float
    client_cpu: float


@dataclass(frozen=True)
class DbAlone:
    clients: int
    authorize: Pgbench
    lookup: Pgbench
    # The withdrawals again with as many clients as the host has connections to PostgreSQL
    # (the first of the terminals): the database alone at the host's concurrency.
    pool: int
    at_pool: Pgbench
    approved: int  # link requests the run added, answered 00
    declined: int  # link requests the run added, answered otherwise
    postings: int  # withdrawal postings the run added

    @property
    def every_call_approved(self) -> bool:
        """Every call a new withdrawal, approved and posted once."""
        n = self.authorize.transactions + self.at_pool.transactions
        return self.declined == 0 and self.approved == n and self.postings == n and n > 0


def _client_backends(postmaster: int, own: int) -> list[int]:
    """The PostgreSQL processes serving a client connection, ``own`` (this process's
    connection) aside: children of ``postmaster`` whose title names a socket ("[local]")."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            title = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if parent == postmaster and pid != own and b"[local]" in title:
            found.append(pid)
    return found


def _settled(postmaster: int, own: int) -> None:
    """Wait until the backends of the last pgbench run have exited and been reaped: a backend
    ends after pgbench does, and one read neither running nor reaped would be counted in
    neither reading of ``tree_ticks``. Bounded: a backend still there after 30 s is left."""
    deadline = time.monotonic() + 30
    while _client_backends(postmaster, own) and time.monotonic() < deadline:
        time.sleep(0.01)


def _pgbench(
    cluster: bench_host.Cluster,
    database: str,
    script: str,
    name: str,
    clients: int,
    seconds: int,
    own: int,
    start: int = 0,
) -> Pgbench:
    """``script`` run by ``clients`` pgbench clients for ``seconds``; each client's counter
    ``:n`` starts at ``start`` (a later run of the withdrawals starts past the earlier one's
    calls: the same STAN in the same second would be a repeat, answered from the record)."""
    path = cluster.base / f"{name}.sql"
    path.write_text(script)
    path.chmod(0o644)
    postmaster = int((cluster.base / "data" / "postmaster.pid").read_text().split()[0])
    # pgbench is a child of this process (or of runuser, which waits for it): its CPU is
    # counted in this process's reaped children once it exits.
    _settled(postmaster, own)
    server0, client0 = tree_ticks(postmaster), _children_ticks()
    out = cluster.run(
        "pgbench", "-h", str(cluster.base), "-U", "postgres", "-n", "-M", "prepared",
        "-c", str(clients), "-j", "2", "-T", str(seconds), "-D", f"n={start}", "-f", str(path),
        database,
    )  # fmt: skip
    _settled(postmaster, own)
    server1, client1 = tree_ticks(postmaster), _children_ticks()
    tps = re.search(r"tps = ([\d.]+)", out)
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    if tps is None or done is None:
        raise SystemExit(f"db_alone: cannot read pgbench output: {out}")
    count = int(done.group(1))
    per = TICK_SECONDS / max(1, count)
    return Pgbench(float(tps.group(1)), count, (server1 - server0) * per, (client1 - client0) * per)


def _children_ticks() -> int:
    return process_ticks(reaped=True) - process_ticks()


_COUNTS = text(
    "SELECT (SELECT count(*) FROM link_requests r JOIN bench_db_alone_clients c "
    "          ON c.terminal_id = r.terminal_id WHERE r.response_code = '00'), "
    "       (SELECT count(*) FROM link_requests r JOIN bench_db_alone_clients c "
    "          ON c.terminal_id = r.terminal_id WHERE r.response_code <> '00'), "
    "       (SELECT count(*) FROM postings p JOIN bench_db_alone_clients c "
    "          ON c.terminal_id = p.terminal_id WHERE p.kind = 'withdrawal')"
)


def run(
    cluster: bench_host.Cluster,
    database: str,
    clients_: Sequence[Client],
    env: Mapping[str, str],
    seconds: int,
    pool: int,
) -> DbAlone:
    """The lookup alone, then the withdrawals, ``seconds`` each with one pgbench client per
    terminal in ``clients_``, then the withdrawals with ``pool`` clients (the host's
    connections), on ``database`` (migrated, seeded, the card sessions open and
    fresh: run it right after the closed loop); the table of clients is dropped after."""
    config = HostConfig.from_env(env)
    engine = create_engine_for(cluster.url(database), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(
                text(
                    f"CREATE TABLE {CLIENTS_TABLE} (client_id integer PRIMARY KEY, "
                    "terminal_id text, pan text, pin_token text, fingerprint text, "
                    "subject text, actor text)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO bench_db_alone_clients VALUES (:k, :terminal_id, :pan, "
                    ":pin_token, :fingerprint, :subject, :actor)"
                ),
                [{"k": k, **vars(c)} for k, c in enumerate(clients_)],
            )
            connection.execute(text(f"ANALYZE {CLIENTS_TABLE}"))
            before = connection.execute(_COUNTS).one()
            own = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            n = len(clients_)
            lookup = _pgbench(cluster, database, lookup_script(config), "lookup", n, seconds, own)
            script = authorize_script(config)
            authorize = _pgbench(cluster, database, script, "authorize", n, seconds, own)
            at_pool = _pgbench(
                cluster, database, script, "authorize", min(pool, n), seconds, own,
                start=authorize.transactions,
            )  # fmt: skip
            after = connection.execute(_COUNTS).one()
            connection.execute(text(f"DROP TABLE {CLIENTS_TABLE}"))
    finally:
        engine.dispose()
    approved, declined, postings = (a - b for a, b in zip(after, before, strict=True))
    return DbAlone(
        len(clients_), authorize, lookup, min(pool, n), at_pool, approved, declined, postings
    )
