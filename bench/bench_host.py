"""Host throughput benchmark (DESIGN section 10): authorizations per second over the real TCP
link on PostgreSQL with many concurrent terminals, against pgbench's built-in TPC-B-like script
on the same server in the same run; p50/p99 latency.

    .venv/bin/python bench/bench_host.py [--terminals 20] [--requests 50] [--pgbench-seconds 10]
    .venv/bin/python bench/bench_host.py --short     # CI: 4 terminals x 5, pgbench 2 s

Starts a throw-away PostgreSQL cluster (the machine's initdb/pg_ctl, as the ``postgres`` user
when run as root), migrates and seeds it, gives each terminal a card and an account of its
own, starts one ``atm host`` process and drives it with one connection per terminal, each
sending withdrawals one after the other. Each terminal's card session is opened (PIN verified
with bcrypt at the production cost, 12) before the clock starts: the figure is the steady
state of authorizations, not of bcrypt.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select, text

from host.bank.ledger import check_ledger, post
from host.bank.models import Account, Card, CardAccount, Customer, Terminal
from host.bank.pins import hash_pin
from host.bank.seed import EQUITY_ACCOUNT, seed
from host.db import create_engine_for, migrate, session_factory
from host.link.config import DEVELOPMENT_TMK
from protocol.link import LinkClient
from protocol.mac import TerminalCodec
from protocol.messages import format_transmission_time
from protocol.pinblock import encrypt_format0
from protocol.security import KeyBlock, KeyScheme
from protocol.stan import StanGenerator

ROOT = Path(__file__).resolve().parents[1]
PEPPER = "dev-pin-pepper-change-me"
PIN = "2580"
AMOUNT = 2_000


def _find(program: str) -> Path:
    versions = sorted(str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))
    for candidate in [shutil.which(program), f"/usr/local/bin/{program}", *reversed(versions)]:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise SystemExit(f"bench_host: no {program} (PostgreSQL) on this machine")


class Cluster:
    def __init__(self) -> None:
        self.bin = _find("pg_ctl").parent
        self.base = Path(tempfile.mkdtemp(prefix="atm-bench-pg-"))
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.base, user="postgres")

    def run(self, *args: str, as_owner: bool = True) -> str:
        program = self.bin / args[0]
        command = [str(program if program.exists() else _find(args[0])), *args[1:]]
        if self.root and as_owner:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise SystemExit(f"bench_host: {args[0]} failed: {done.stderr}")
        return done.stdout

    def start(self) -> None:
        data = str(self.base / "data")
        self.run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-k {self.base} -c listen_addresses= -c max_connections=200"
        self.run("pg_ctl", "-D", data, "-o", options, "-l", str(self.base / "log"), "-w", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.base}"

    def create_database(self, name: str) -> None:
        engine = create_engine_for(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()


def prepare(url: str, terminals: int) -> list[str]:
    """Seed, then one customer, account and card per terminal (money enough for the run)."""
    migrate(url)
    engine = create_engine_for(url)
    pans = [f"4000008{n:09d}" for n in range(terminals)]
    with session_factory(engine).begin() as session:
        seed(session, pin_pepper=PEPPER, bcrypt_rounds=12)
        equity = session.scalars(select(Account).where(Account.number == EQUITY_ACCOUNT)).one()
        pin_hash = hash_pin(PIN, PEPPER, 12)
        for n, pan in enumerate(pans):
            customer = Customer(name=f"Bench {n}")
            account = Account(number=f"9000-0000-{n:04d}", kind="checking", customer=customer)
            session.add_all([customer, account])
            session.flush()
            post(session, "opening", [(account, 10**9), (equity, -(10**9))])
            card = Card(pan=pan, customer=customer, expiry="3012", pin_hash=pin_hash)
            session.add(card)
            session.flush()
            session.add(CardAccount(card=card, account=account, account_type="20"))
            cash = Account(number=f"CASH-BEN{n:05d}", kind="cash")
            session.add(cash)
            session.flush()
            session.add(Terminal(terminal_id=f"BEN{n:05d}", cash_account=cash))
    engine.dispose()
    return pans


class BenchTerminal:
    """One ATM as the host sees it: one TCP connection, signed on with key exchange (working
    keys under the development terminal master key), every message MAC'd."""

    def __init__(self, port: int, terminal_id: str, pan: str) -> None:
        self.terminal_id = terminal_id
        self.pan = pan
        self.codec = TerminalCodec(KeyScheme.TDES, DEVELOPMENT_TMK)
        self.client = LinkClient("127.0.0.1", port, response_timeout=120, codec=self.codec)
        self.stan = StanGenerator()
        self.pin_block = ""

    def header(self, mti: str) -> dict[str, str]:
        return {
            "t": mti,
            "7": format_transmission_time(dt.datetime.now(dt.UTC)),
            "11": self.stan.next(),
            "41": self.terminal_id,
            "42": "ATMSIM000000001",
        }

    async def open(self) -> None:
        await self.client.connect()
        sign_on = self.header("0800")
        sign_on.update({"70": "001", "48": KeyScheme.TDES.value})
        response = await self.client.request(sign_on)
        if response["39"] != "00":
            raise SystemExit(f"bench_host: {self.terminal_id} sign-on got {response['39']}")
        keys = KeyBlock.parse(response["48"]).open(DEVELOPMENT_TMK)
        self.codec.set_mac_key(keys.tak)
        self.pin_block = encrypt_format0(PIN, self.pan, keys.tpk).hex().upper()

    async def run(self, count: int) -> list[float]:
        """A balance inquiry that opens the card session (bcrypt, not timed), then ``count``
        withdrawals one after the other; returns their latencies."""
        latencies: list[float] = []
        for n in range(count + 1):
            message = self.header("0100" if n == 0 else "0200")
            message.update(
                {
                    "2": self.pan,
                    "3": "302000" if n == 0 else "012000",
                    "4": f"{AMOUNT:012d}",
                    "49": "840",
                    "52": self.pin_block,
                }
            )
            started = time.perf_counter()
            response = await self.client.request(message)
            if response["39"] != "00":
                raise SystemExit(f"bench_host: {self.terminal_id} got {response['39']}")
            if n:
                latencies.append(time.perf_counter() - started)
        return latencies


async def drive(url: str, pans: list[str], count: int) -> tuple[float, list[float]]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ENVIRONMENT": "testing",
        "DAILY_WITHDRAWAL_LIMIT": str(10**11),
        "LOG_LEVEL": "WARNING",
    }
    host = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "host", "--port", "0", "--no-ops", "--no-worker",
        env=env, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert host.stdout is not None
    line = (await asyncio.wait_for(host.stdout.readline(), 60)).decode()
    match = re.search(r":(\d+)", line)
    if match is None:
        raise SystemExit(f"bench_host: host did not start: {line!r}")
    port = int(match.group(1))
    terminals = [BenchTerminal(port, f"BEN{n:05d}", pan) for n, pan in enumerate(pans)]
    try:
        # Sign on and open every card session first (one bcrypt each), then time the
        # steady state.
        await asyncio.gather(*(t.open() for t in terminals))
        await asyncio.gather(*(t.run(0) for t in terminals))
        started = time.perf_counter()
        results = await asyncio.gather(*(t.run(count) for t in terminals))
        elapsed = time.perf_counter() - started
    finally:
        for t in terminals:
            await t.client.close()
        host.send_signal(signal.SIGTERM)
        await host.wait()
    return elapsed, [latency for result in results for latency in result]


def pgbench(cluster: Cluster, clients: int, seconds: int) -> float:
    cluster.create_database("pgb")
    socket = str(cluster.base)
    cluster.run("pgbench", "-h", socket, "-U", "postgres", "-i", "-q", "-s", "1", "pgb")
    out = cluster.run(
        "pgbench", "-h", socket, "-U", "postgres", "-n", "-c", str(clients), "-j", "2",
        "-T", str(seconds), "pgb",
    )  # fmt: skip
    match = re.search(r"tps = ([\d.]+)", out)
    if match is None:
        raise SystemExit(f"bench_host: cannot read pgbench output: {out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="withdrawals per terminal")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument(
        "--short", action="store_true", help="a quick run for CI: 4 terminals x 5, pgbench 2 s"
    )
    args = parser.parse_args()
    if args.short:
        args.terminals, args.requests, args.pgbench_seconds = 4, 5, 2
    cluster = Cluster()
    cluster.start()
    try:
        cluster.create_database("atm")
        url = cluster.url("atm")
        pans = prepare(url, args.terminals)
        elapsed, latencies = asyncio.run(drive(url, pans, args.requests))
        engine = create_engine_for(url)
        with session_factory(engine)() as session:
            problems = check_ledger(session)
        engine.dispose()
        total = len(latencies)
        quantiles = statistics.quantiles(latencies, n=100)
        rate = total / elapsed
        print(f"cores: {os.cpu_count()}; terminals: {args.terminals}; withdrawals: {total}")
        print(f"host over TCP on PostgreSQL: {rate:.0f} authorizations/s")
        print(f"latency p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms")
        print(f"ledger check: {'clean' if not problems else problems}", flush=True)
        tps = pgbench(cluster, args.terminals, args.pgbench_seconds)
    finally:
        cluster.stop()
    print(f"pgbench TPC-B-like, {args.terminals} clients: {tps:.0f} tps")
    print(f"ratio host/pgbench: {rate / tps:.2f}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
