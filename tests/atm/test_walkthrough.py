"""The README's two-terminal walk-through, command by command, as real processes: migrate and
seed, the host, an ATM driven by typed commands, then a dispenser simulator on a
pseudo-terminal with a jam injected through its control channel. The README's commands are
run as written, plus only what isolates a test (free ports, a data and state directory of its
own, a cheap bcrypt cost)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The walk-through's commands, as the README shows them (checked against it below).
SETUP = ["atm db upgrade", "atm db seed"]
HOST = "atm host"
ATM = "atm device --link-log atm-link.log"
CUSTOMER = [
    ("Please insert your card", "insert alice"),
    ("Please enter your PIN", "pin 1234"),
    ("<F1 Withdrawal", "keys F1"),
    ("<F1 Checking", "keys F1"),
    ("Choose an amount", "keys F4"),
    ("Please take your cash", "take cash"),
    ("Please take your card", "take card"),
    ("Please insert your card", "quit"),
]
SIM = "atm sim dispenser"
JAMMED_ATM = "atm device --dispenser serial:///dev/pts/N"
INJECT = "inject jam"
JAMMED_CUSTOMER = [
    ("Please insert your card", "insert alice"),
    ("Please enter your PIN", "pin 1234"),
    ("<F1 Withdrawal", "keys F1"),
    ("<F1 Checking", "keys F1"),
    ("Choose an amount", "keys F4"),
    ("Please take your card", "take card"),
    ("Thank you", "quit"),
]


def test_the_readme_shows_these_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two terminals", 1)[1].split("\n## ", 1)[0]
    for command in [*SETUP, HOST, ATM, SIM, JAMMED_ATM]:
        assert f".venv/bin/{command}" in section, command
    for _, typed in CUSTOMER:
        assert typed in section, typed
    assert f'echo "{INJECT}" | nc 127.0.0.1' in section


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Shell:
    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path
        self.link_port, self.ops_port = free_port(), free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ATM_DATA_DIR": str(tmp_path / "data"),
            "BCRYPT_ROUNDS": "4",
            "LINK_PORT": str(self.link_port),
            "OPS_PORT": str(self.ops_port),
        }

    async def start(self, command: str, *extra: str) -> asyncio.subprocess.Process:
        words = command.split()
        assert words[0] == "atm"
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "atm", *words[1:], *extra, cwd=self.cwd, env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async def run(self, command: str) -> str:
        process = await self.start(command)
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, out.decode()
        return out.decode()


async def read_until(process: asyncio.subprocess.Process, text: str) -> str:
    assert process.stdout is not None
    seen = ""
    while text not in seen:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
        except TimeoutError:
            raise AssertionError(f"no {text!r} within 60 s:\n{seen[-3000:]}") from None
        assert line, f"ended before {text!r}:\n{seen}"
        seen += line.decode()
    return seen


async def be_the_customer(atm: asyncio.subprocess.Process, steps: list[tuple[str, str]]) -> str:
    assert atm.stdin is not None
    shown = ""
    for screen, typed in steps:
        shown += await read_until(atm, screen)
        atm.stdin.write(typed.encode() + b"\n")
        await atm.stdin.drain()
    out, _ = await asyncio.wait_for(atm.communicate(), 60)
    assert atm.returncode == 0, shown + out.decode()
    return shown + out.decode()


async def test_the_two_terminal_walk_through(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    for command in SETUP:
        await shell.run(command)
    host = await shell.start(HOST)
    try:
        started = await read_until(host, "ops API listening")
        assert f"(database SQLite file {tmp_path / 'data' / 'atm-host.db'})" in started
        # Terminal 2: one ATM, the customer typing.
        atm = await shell.start(ATM, "--port", str(shell.link_port), "--state-dir", "atm1")
        screens = await be_the_customer(atm, CUSTOMER)
        assert "Take your cash" in screens
        link_log = (tmp_path / "atm-link.log").read_text()
        assert "DE 39 Response Code                00 (Approved)" in link_log
        # Terminal 3: a dispenser on a pseudo-terminal; its control channel injects a jam.
        sim = await shell.start(SIM)
        try:
            banner = await read_until(sim, "control channel on")
            pty = re.search(r" on (/dev/pts/\d+)", banner)
            control = re.search(r"control channel on 127\.0\.0\.1:(\d+)", banner)
            assert pty and control, banner
            reader, writer = await asyncio.open_connection("127.0.0.1", int(control[1]))
            writer.write(INJECT.encode() + b"\n")
            assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"ok")
            writer.close()
            jammed = JAMMED_ATM.replace("/dev/pts/N", pty[1])
            # The same ATM as in terminal 2 (README: "the same ATM, this dispenser"): its STAN
            # goes on. A fresh state directory would send STAN 000002 again within the same
            # second, which the host rightly takes for a repeat of the first withdrawal.
            atm = await shell.start(
                jammed, "--port", str(shell.link_port), "--state-dir", "atm1", "--link-log", "off"
            )
            await be_the_customer(atm, JAMMED_CUSTOMER)
            journal = (tmp_path / "atm1" / "journal-ATM00001.log").read_text()
            assert "DISPENSE_FAULT" in journal and "reason=4017" in journal
        finally:
            sim.send_signal(signal.SIGTERM)
            await asyncio.wait_for(sim.communicate(), 30)
    finally:
        host.send_signal(signal.SIGTERM)
        await asyncio.wait_for(host.communicate(), 30)
    assert host.returncode == 0
    # The jam cost Alice nothing: the first $100 is gone, the second came back (reversal).
    ledger = await shell.run("atm host check-ledger")
    assert "ledger ok" in ledger
    from host.app import Host
    from host.config import HostConfig

    database = f"sqlite:///{tmp_path / 'data' / 'atm-host.db'}"
    bank = Host(HostConfig.from_env({"DATABASE_URL": database}))
    try:
        assert bank.balance("1000-0001-0001") == 525_000 - 10_000
    finally:
        await bank.close()
