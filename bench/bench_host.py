"""Host throughput benchmark (DESIGN section 10): authorizations per second over the real TCP
link on PostgreSQL with many concurrent terminals, against pgbench's built-in TPC-B-like script
on the same server in the same run; p50/p99 latency. ``bench/run.py`` (``make bench``) uses the
pieces here for every host figure; this script runs the closed loop (and, if asked, an open
loop after it) alone.

    .venv/bin/python bench/bench_host.py [--terminals 32] [--requests 50] [--pgbench-seconds 10]
    .venv/bin/python bench/bench_host.py [--open-seconds 4 --open-rate 450]  # then an open loop
    .venv/bin/python bench/bench_host.py --short     # CI: 4 x 5, open loop 1 s, pgbench 2 s

Starts a throw-away PostgreSQL cluster (the machine's initdb/pg_ctl, as the ``postgres`` user
when run as root), migrates and seeds it, gives each terminal a card and an account of its
own, starts one ``atm host`` process and drives it with one connection per terminal, each
sending withdrawals one after the other (the terminals on uvloop when it is installed, as
the host serves: ``run``). Each terminal's card session is opened (PIN verified
with bcrypt at the production cost, 12) before the clock starts: the figure is the steady
state of authorizations, not of bcrypt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import insert, select, text

from atm.commands._host_serve import loop_factory
from host.bank.ledger import check_ledger, post
from host.bank.models import Account, Card, CardAccount, Customer, Terminal
from host.bank.pins import hash_pin
from host.bank.seed import EQUITY_ACCOUNT, seed
from host.db import create_engine_for, migrate, session_factory
from host.link.config import DEVELOPMENT_TMK
from protocol.errors import LinkError, LinkUnavailable, LocalProtocolError, RemoteProtocolError
from protocol.framing import Framer, encode_frame
from protocol.keyblock import DEFAULT_KEY_BLOCK, open_key_delivery
from protocol.link import MatchKey, match_key
from protocol.mac import TerminalCodec
from protocol.messages import Message, format_transmission_time, is_request
from protocol.pinblock import encrypt_format0, encrypt_format4
from protocol.security import KeyScheme
from protocol.stan import StanGenerator

ROOT = Path(__file__).resolve().parents[1]
PEPPER = "dev-pin-pepper-change-me"
PIN = "2580"
AMOUNT = 2_000

T = TypeVar("T")


def _find(program: str) -> Path:
    versions = sorted(str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))
    for candidate in [shutil.which(program), f"/usr/local/bin/{program}", *reversed(versions)]:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise SystemExit(f"bench_host: no {program} (PostgreSQL) on this machine")


class Cluster:
    """A throw-away PostgreSQL cluster on a Unix socket, default durability (fsync and
    synchronous_commit on) for the host and pgbench alike."""

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
        options = f"-k {self.base} -c listen_addresses= -c max_connections=300"
        self.run("pg_ctl", "-D", data, "-o", options, "-l", str(self.base / "log"), "-w", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.base}"

    def checkpoint(self) -> None:
        """Write every dirty page out now (a bulk load's, say), not during what comes next."""
        engine = create_engine_for(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("CHECKPOINT"))
        engine.dispose()

    def create_database(self, name: str) -> None:
        engine = create_engine_for(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()


def prepare(url: str, terminals: int, prefix: str = "BEN") -> list[str]:
    """Seed (once), then one customer, account and card per terminal (money enough for the
    run); terminal ids are ``prefix`` + 5 digits."""
    migrate(url)
    engine = create_engine_for(url)
    digit = {"BEN": 0, "PIN": 1, "INQ": 2, "FLT": 3}.get(prefix, 9)
    pans = [f"400000{digit}{n:09d}" for n in range(terminals)]  # ACCEPTED_CARD_RANGES 400000
    with session_factory(engine).begin() as session:
        equity = session.scalars(select(Account).where(Account.number == EQUITY_ACCOUNT)).first()
        if equity is None:
            seed(session, pin_pepper=PEPPER, bcrypt_rounds=12)
            equity = session.scalars(select(Account).where(Account.number == EQUITY_ACCOUNT)).one()
        pin_hash = hash_pin(PIN, PEPPER, 12)
        for n, pan in enumerate(pans):
            customer = Customer(name=f"Bench {prefix} {n}")
            account = Account(number=f"9{digit}00-0000-{n:04d}", kind="checking", customer=customer)
            session.add_all([customer, account])
            session.flush()
            post(session, "opening", [(account, 10**9), (equity, -(10**9))])
            card = Card(pan=pan, customer=customer, expiry="3012", pin_hash=pin_hash)
            session.add(card)
            session.flush()
            session.add(CardAccount(card=card, account=account, account_type="20"))
            cash = Account(number=f"CASH-{prefix}{n:05d}", kind="cash")
            session.add(cash)
            session.flush()
            session.add(Terminal(terminal_id=f"{prefix}{n:05d}", cash_account=cash))
    engine.dispose()
    return pans


def prepare_terminals(url: str, count: int, prefix: str = "CON") -> list[str]:
    """``count`` terminals (a cash account each, no card) for sign-on only: the connection
    memory run. Written in two statements."""
    engine = create_engine_for(url)
    ids = [f"{prefix}{n:05d}" for n in range(count)]
    with session_factory(engine).begin() as session:
        session.execute(
            insert(Account),
            [{"number": f"CASH-{t}", "kind": "cash", "currency": "840", "balance_cents": 0}
             for t in ids],
        )  # fmt: skip
        rows = session.execute(
            select(Account.number, Account.id).where(Account.number.like(f"CASH-{prefix}%"))
        ).all()
        cash = {number: account_id for number, account_id in rows}
        session.execute(
            insert(Terminal),
            [{"terminal_id": t, "cash_account_id": cash[f"CASH-{t}"]} for t in ids],
        )
    engine.dispose()
    return ids


async def sign_on_all(
    port: int, terminal_ids: Sequence[str], batch: int = 50
) -> list[BenchTerminal]:
    """Connect and sign on every terminal, ``batch`` at a time (below the host's bound on
    connections not yet authenticated); the connections stay open."""
    opened: list[BenchTerminal] = []
    for start in range(0, len(terminal_ids), batch):
        chunk = [
            BenchTerminal(port, t, "4000009000000000") for t in terminal_ids[start : start + batch]
        ]
        await asyncio.gather(*(t.open() for t in chunk))
        opened += chunk
    return opened


def ledger_clean(url: str) -> bool:
    engine = create_engine_for(url)
    with session_factory(engine)() as session:
        problems = check_ledger(session)
    engine.dispose()
    if problems:
        print(f"ledger check: {problems}", file=sys.stderr)
    return not problems


class _TransmissionClock:
    """DE 7 now, as ``protocol.messages.format_transmission_time`` gives it. DE 7
    (MMDDhhmmss, UTC) changes once a second: formatted once a second, not per request."""

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self.text = format_transmission_time(dt.datetime.fromtimestamp(second, dt.UTC))
        return self.text


transmission_time = _TransmissionClock().now


class _TerminalLink(asyncio.Protocol):
    """One terminal's TCP connection as an asyncio protocol: bytes in, frames, messages
    (MAC verified by the terminal's codec), the one outstanding request's future resolved by
    the response that matches it (DE 41 + STAN + MTI class, as ``protocol.link.LinkClient``
    matches). No stream reader, read task or per-request timer: the load generator's own
    cost per request stays small beside the host's. A bad MAC, an undecodable frame or a
    response that matches nothing fails the outstanding request and closes the connection;
    a lost connection fails it too."""

    def __init__(self, codec: TerminalCodec, peer: str) -> None:
        self.codec = codec
        self.peer = peer
        self.framer = Framer()
        self.transport: asyncio.Transport | None = None
        self.waiting: asyncio.Future[Message] | None = None
        self.key: MatchKey | None = None
        # The last request's bytes handed to the socket, and its answer's first read (before
        # decoding), on the monotonic clock: the open loop's breakdown.
        self.sent = 0.0
        self.arrived = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (asyncio's or uvloop's, which does not subclass asyncio's).
        self.transport = cast(asyncio.Transport, transport)

    def request(self, message: Message) -> asyncio.Future[Message]:
        """Send ``message`` (MAC'd by the codec); the future gets its response."""
        if self.transport is None or self.transport.is_closing():
            raise LinkUnavailable(f"{self.peer}: not connected")
        if self.waiting is not None:
            raise LocalProtocolError(f"{self.peer}: a request is already outstanding")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.waiting, self.key = future, match_key(message)
        self.transport.write(encode_frame(self.codec.encode(message)))
        self.sent = time.monotonic()
        return future

    def data_received(self, data: bytes) -> None:
        self.arrived = time.monotonic()
        try:
            for frame in self.framer.feed(data):
                message = self.codec.decode(frame)
                if is_request(message["t"]):
                    continue  # a host-initiated request: no bench terminal answers one
                if self.waiting is None or match_key(message) != self.key:
                    raise LinkError(f"unmatched {message['t']} STAN {message.get('11')}")
                waiting, self.waiting = self.waiting, None
                waiting.set_result(message)
        except (RemoteProtocolError, LinkError) as exc:
            self._fail(LinkError(f"{self.peer}: {exc}"))
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(LinkError(f"{self.peer}: connection lost ({exc or 'closed by the host'})"))

    def _fail(self, error: LinkError) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(error)


class BenchTerminal:
    """One ATM as the host sees it: one TCP connection, signed on with key exchange (working
    keys under the development terminal master key), every message MAC'd and every response's
    MAC verified. Each request is a whole 0200 (or 0100) of its own: a fresh STAN and
    transmission time, encoded and MAC'd afresh; the fields that do not change for a terminal
    (PAN, terminal and acceptor ids, currency, PIN block) are made once. Scheme A terminals
    encrypt each PIN block afresh (format 4 is randomised), so every request of theirs that
    carries one costs the host a bcrypt."""

    def __init__(
        self, port: int, terminal_id: str, pan: str, scheme: KeyScheme = KeyScheme.TDES
    ) -> None:
        self.port = port
        self.terminal_id = terminal_id
        self.pan = pan
        self.scheme = scheme
        self.codec = TerminalCodec(scheme, DEVELOPMENT_TMK)
        self.link: _TerminalLink | None = None
        self.stan = StanGenerator()
        self.tpk = b""
        self.pin_block = ""
        self._fields: dict[str, Message] = {}  # per kind, the fields every request repeats

    def header(self, mti: str) -> Message:
        return {
            "t": mti,
            "7": transmission_time(),
            "11": self.stan.next(),
            "41": self.terminal_id,
            "42": "ATMSIM000000001",
        }

    async def exchange(self, message: Message) -> Message:
        """Send one request and return its response."""
        if self.link is None:
            raise LinkUnavailable(f"{self.terminal_id}: not connected")
        return await self.link.request(message)

    async def open(self) -> None:
        _, self.link = await asyncio.get_running_loop().create_connection(
            lambda: _TerminalLink(self.codec, self.terminal_id), "127.0.0.1", self.port
        )
        sign_on = self.header("0800")
        sign_on.update({"70": "001", "48": self.scheme.value})
        response = await self.exchange(sign_on)
        if response["39"] != "00":
            raise SystemExit(f"bench_host: {self.terminal_id} sign-on got {response['39']}")
        # The host's default layout (TR-31 key blocks): the bench configures no terminal.
        keys = open_key_delivery(response["48"], DEVELOPMENT_TMK, self.scheme, DEFAULT_KEY_BLOCK)
        self.codec.set_mac_key(keys.tak)
        self.tpk = keys.tpk
        self.pin_block = self.fresh_pin_block()
        fixed = {"2": self.pan, "41": self.terminal_id, "42": "ATMSIM000000001", "49": "840"}
        self._fields = {
            "withdrawal": {"t": "0200", **fixed, "3": "012000", "4": f"{AMOUNT:012d}"},
            "inquiry": {"t": "0100", **fixed, "3": "302000", "4": f"{0:012d}"},
        }

    async def close(self) -> None:
        if self.link is not None and self.link.transport is not None:
            self.link.transport.close()
        self.link = None

    def fresh_pin_block(self) -> str:
        if self.scheme is KeyScheme.AES:
            return encrypt_format4(PIN, self.pan, self.tpk).hex().upper()
        return encrypt_format0(PIN, self.pan, self.tpk).hex().upper()

    async def request(self, kind: str, pin_block: str | None = None) -> float:
        """One withdrawal (``kind`` "withdrawal") or balance inquiry ("inquiry"); returns its
        latency in seconds."""
        message = {
            **self._fields[kind],
            "7": transmission_time(),
            "11": self.stan.next(),
            "52": pin_block or self.pin_block,
        }
        started = time.perf_counter()
        response = await self.exchange(message)
        code = response["39"]
        if code == "91":
            raise Shed(f"{self.terminal_id} {kind}")
        if code != "00":
            raise SystemExit(f"bench_host: {self.terminal_id} {kind} got {code}")
        return time.perf_counter() - started

    async def run(self, count: int) -> list[float]:
        """``count`` withdrawals one after the other; their latencies in order."""
        return [await self.request("withdrawal") for _ in range(count)]


class HostProcess:
    """One ``atm host`` process (link only) on an ephemeral port; ``workers`` > 1: that many
    processes sharing the port under ``atm host --workers``; ``source``: the tree it runs
    from."""

    def __init__(
        self,
        url: str,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        source: Path = ROOT,
    ) -> None:
        self.url = url
        self.workers = workers
        # The tree whose ``atm`` runs (``python -m`` imports from the working directory
        # first): another checkout's host can be measured beside this one's.
        self.source = source
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "ENVIRONMENT": "testing",
            "DAILY_WITHDRAWAL_LIMIT": str(10**11),
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0

    async def __aenter__(self) -> HostProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "atm", "host", "--port", "0", "--no-ops", "--no-worker",
            "--workers", str(self.workers),
            env=self.env, stdout=asyncio.subprocess.PIPE, cwd=self.source,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = (await asyncio.wait_for(self.process.stdout.readline(), 300)).decode()
        match = re.search(r":(\d+)", line)
        if match is None:
            raise SystemExit(f"bench_host: host did not start: {line!r}")
        self.port = int(match.group(1))
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        await self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kb(self) -> int:
        return rss_kb(self.pid)


def rss_kb(pid: int) -> int:
    """Resident set size of a process, KB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def open_terminals(
    port: int, pans: Sequence[str], prefix: str = "BEN", scheme: KeyScheme = KeyScheme.TDES
) -> list[BenchTerminal]:
    """Sign every terminal on and open its card session (one bcrypt each, not timed)."""
    terminals = [BenchTerminal(port, f"{prefix}{n:05d}", pan, scheme) for n, pan in enumerate(pans)]
    await asyncio.gather(*(t.open() for t in terminals))
    await asyncio.gather(*(t.request("inquiry") for t in terminals))
    return terminals


async def close_terminals(terminals: Sequence[BenchTerminal]) -> None:
    for t in terminals:
        await t.close()


def raise_open_file_limit() -> int:
    """The soft RLIMIT_NOFILE up to the hard limit (host processes started after it inherit
    it); returns the soft limit now in force."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1_048_576
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def split_cores() -> tuple[set[int], set[int]] | None:
    """This machine's cores in two halves, (PostgreSQL's, everything else's), or None with
    fewer than two: the split closed loop gives the database cores of its own, as RDS does."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


@dataclass(frozen=True)
class ClosedLoop:
    elapsed: float
    latencies: list[list[float]]  # per terminal, in request order
    # CPU seconds of this process (the simulated terminals: the host and PostgreSQL are other
    # processes) over the loop: what the load generator takes from the machine under test.
    client_cpu: float = 0.0
    client_system: float = 0.0  # the part of it in the kernel (socket calls, epoll)

    @property
    def total(self) -> int:
        return sum(len(x) for x in self.latencies)

    @property
    def rate(self) -> float:
        return self.total / self.elapsed

    @property
    def client_cpu_per_request(self) -> float:
        """Seconds of the terminals' CPU per withdrawal."""
        return self.client_cpu / self.total

    @property
    def client_cores(self) -> float:
        """Cores the terminals kept busy on average over the loop."""
        return self.client_cpu / self.elapsed

    def flat(self) -> list[float]:
        return [x for per in self.latencies for x in per]


QUIET_COLLECTOR = True


@contextlib.contextmanager
def collector_quiet() -> Iterator[None]:
    """This process's garbage collector kept out of a measured loop: a full collection
    first, then every object it holds frozen (``gc.freeze``: later collections skip them)
    until the loop ends. The terminals stand in for ATMs on other machines, whose pauses
    are no part of the host's latency; without it a generation-2 collection of this
    process (its modules, the figures so far: 100-120 ms on 2 cores, measured with
    ``scripts.link_ab --breakdown``) held every request due or answered meanwhile, and
    counted as the host's latency. The loop's own objects are still collected.
    ``QUIET_COLLECTOR`` False (``scripts.link_ab --old-gc asis``): the collector as it
    comes, to measure what this costs."""
    if not QUIET_COLLECTOR:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def closed_loop(terminals: Sequence[BenchTerminal], count: int) -> ClosedLoop:
    with collector_quiet():
        started, cpu = time.perf_counter(), os.times()
        results = await asyncio.gather(*(t.run(count) for t in terminals))
        elapsed, now = time.perf_counter() - started, os.times()
    user, system = now.user - cpu.user, now.system - cpu.system
    return ClosedLoop(elapsed, list(results), user + system, system)


class Shed(Exception):
    """The host answered 91 under load: it shed the request (nothing applied)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One answered request of an open loop, on the monotonic clock (time.monotonic, s):
    when it was due, when a free terminal took it, when its bytes went to the socket, when
    its answer's first bytes were read, when its task had the verified answer; ``key``: its
    terminal, STAN and MTI class.
    ``sent - due`` is the load generator's own lag (its timer, waiting for a free terminal,
    encoding and MAC), ``done - arrived`` its own time on the answer (decoding, MAC check)."""

    due: float
    started: float  # a free terminal took it
    sent: float
    arrived: float
    done: float
    key: MatchKey


@dataclass(frozen=True)
class OpenLoop:
    offered: float
    achieved: float
    latencies: list[float]  # from each request's scheduled time, so queueing counts
    # Requests the host shed (91: no database connection free within its acquire timeout).
    shed: int = 0
    # Requests due while every terminal had one outstanding: they waited for a free one.
    waited: int = 0
    terminals: int = 0
    samples: list[Sample] = field(default_factory=list)  # the answered ones, in answer order

    def lags(self) -> list[float]:
        """The load generator's own lag per answered request: from its due time to its bytes
        handed to the socket (counted in its latency, though no host work is in it)."""
        return [s.sent - s.due for s in self.samples]


async def open_loop(
    terminals: Sequence[BenchTerminal], rate: float, seconds: float, kind: str = "withdrawal"
) -> OpenLoop:
    """Send at a fixed offered ``rate`` for ``seconds`` whatever the answers; latency counts
    from when a request was due, so a host that falls behind shows it. Like a real fleet,
    a terminal (and its card) has at most one request outstanding: a request goes to the
    terminal free longest; one due while every terminal is busy waits for the next to free
    up (counted in ``waited``; its wait is part of its latency). Several requests queued on
    one connection would instead wait on their card's row lock in the database, which no
    fleet of ATMs does."""
    count = max(1, int(rate * seconds))
    # time.monotonic, not loop.time(): uvloop's is the time its iteration began, in ms.
    clock = time.monotonic
    latencies: list[float] = []
    samples: list[Sample] = []
    shed = waited = 0
    free: asyncio.Queue[BenchTerminal] = asyncio.Queue()
    for terminal in terminals:
        free.put_nowait(terminal)

    async def one(due: float) -> None:
        nonlocal shed, waited
        if free.empty():
            waited += 1
        terminal = await free.get()
        started = clock()
        try:
            await terminal.request(kind)
            done = clock()
            link = terminal.link
            assert link is not None and link.key is not None
            samples.append(Sample(due, started, link.sent, link.arrived, done, link.key))
        except Shed:
            shed += 1
            return
        finally:
            free.put_nowait(terminal)
        latencies.append(done - due)

    tasks: list[asyncio.Task[None]] = []
    with collector_quiet():
        start = clock() + 0.05
        for n in range(count):
            due = start + n / rate
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        elapsed = clock() - start
    return OpenLoop(
        rate, len(latencies) / elapsed, latencies, shed, waited, len(terminals), samples
    )


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop when it is installed (the loop ``atm host`` serves on
    by default), else on asyncio's own: the terminals stand in for ATMs on other machines,
    and what they cost this machine (their CPU per request, ``ClosedLoop.client_cpu``) is
    taken from the host and PostgreSQL under test."""
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        return runner.run(main)


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def pgbench(
    cluster: Cluster, clients: int, seconds: int, scale: int, *, again: bool = False
) -> float:
    """pgbench's TPC-B-like script: ``clients`` clients for ``seconds`` on a database of
    ``scale`` branches (scale 1: every transaction updates one hot branch row); ``again``:
    on the database an earlier call of the same scale made."""
    name = f"pgb{scale}"
    socket = str(cluster.base)
    if not again:
        cluster.create_database(name)
        cluster.run("pgbench", "-h", socket, "-U", "postgres", "-i", "-q", "-s", str(scale), name)
        cluster.checkpoint()  # the load's dirty pages written before the timed run, not in it
    out = cluster.run(
        "pgbench", "-h", socket, "-U", "postgres", "-n", "-c", str(clients), "-j", "2",
        "-T", str(seconds), name,
    )  # fmt: skip
    match = re.search(r"tps = ([\d.]+)", out)
    if match is None:
        raise SystemExit(f"bench_host: cannot read pgbench output: {out}")
    return float(match.group(1))


async def _drive(
    url: str, pans: list[str], count: int, open_rate: float, open_seconds: float
) -> tuple[ClosedLoop, OpenLoop | None]:
    async with HostProcess(url) as host:
        terminals = await open_terminals(host.port, pans)
        try:
            closed = await closed_loop(terminals, count)
            rate = open_rate if open_rate > 0 else 0.5 * closed.rate
            opened = await open_loop(terminals, rate, open_seconds) if open_seconds > 0 else None
            return closed, opened
        finally:
            await close_terminals(terminals)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=32)
    parser.add_argument("--requests", type=int, default=50, help="withdrawals per terminal")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument(
        "--pgbench-scale",
        type=int,
        default=0,
        help="pgbench's scale (default: as many branches as terminals, at least 32: no hot row)",
    )
    parser.add_argument(
        "--open-seconds", type=float, default=0.0, help="then an open loop this long (0: none)"
    )
    parser.add_argument(
        "--open-rate", type=float, default=0.0, help="its offered rate/s (0: half the closed loop)"
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help="a quick run for CI: 4 terminals x 5, open loop 1 s, pgbench 2 s",
    )
    args = parser.parse_args()
    if args.short:
        args.terminals, args.requests, args.pgbench_seconds = 4, 5, 2
        args.open_seconds = args.open_seconds or 1.0
        args.pgbench_scale = args.pgbench_scale or 1
    scale = args.pgbench_scale or max(32, args.terminals)
    cluster = Cluster()
    cluster.start()
    try:
        cluster.create_database("atm")
        url = cluster.url("atm")
        pans = prepare(url, args.terminals)
        result, opened = run(_drive(url, pans, args.requests, args.open_rate, args.open_seconds))
        clean = ledger_clean(url)
        latencies = result.flat()
        print(f"cores: {os.cpu_count()}; terminals: {args.terminals}; withdrawals: {result.total}")
        print(f"host over TCP on PostgreSQL: {result.rate:.0f} authorizations/s")
        print(
            f"bench client (the {args.terminals} terminals, this process): "
            f"{result.client_cpu_per_request * 1000:.3f} ms CPU per withdrawal "
            f"({result.client_system / result.total * 1000:.3f} ms of it in the kernel), "
            f"{result.client_cores:.2f} cores of {os.cpu_count()}"
        )
        print(
            f"latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {quantile(latencies, 0.99) * 1000:.1f} ms"
        )
        if opened is not None:
            print(
                f"open loop {opened.offered:.0f}/s offered over {opened.terminals} terminals "
                f"(at most one request outstanding each): p50 "
                f"{statistics.median(opened.latencies or [0.0]) * 1000:.1f} ms, p99 "
                f"{quantile(opened.latencies, 0.99) * 1000:.1f} ms, achieved "
                f"{opened.achieved:.0f}/s, {opened.waited} waited for a free terminal, "
                f"{opened.shed} shed"
            )
        print(f"ledger check: {'clean' if clean else 'NOT CLEAN'}", flush=True)
        tps = pgbench(cluster, args.terminals, args.pgbench_seconds, scale=scale)
    finally:
        cluster.stop()
    print(f"pgbench TPC-B-like, {args.terminals} clients: {tps:.0f} tps (scale {scale})")
    print(f"ratio host/pgbench: {result.rate / tps:.2f}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
