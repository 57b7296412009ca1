"""The host serves only a database at the newest migration: ``atm host`` refuses one that is
missing or behind (one line saying what to run) or migrates and seeds it when asked, never in
production; ``/ready`` answers 503 while the schema is behind."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from atm.cli import main
from host.app import Host
from host.config import HostConfig
from host.db import head_revision, migrate


async def _ready(url: str) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as client, client.get(f"{url}/ready") as reply:
        return reply.status, await reply.json()


async def test_ready_is_503_while_the_schema_is_behind(host_config: HostConfig) -> None:
    migrate(host_config.database_url, "0002_host")
    host = Host(host_config)
    try:
        port = await host.start_ops("127.0.0.1", 0)
        url = f"http://127.0.0.1:{port}"
        status, body = await _ready(url)
        assert status == 503
        assert body == {
            "status": "unavailable",
            "database": f"is at revision 0002_host, behind the newest ({head_revision()}): "
            "run `atm db upgrade`",
        }
        await asyncio.to_thread(migrate, host_config.database_url)
        assert await _ready(url) == (200, {"status": "ready", "database": "ok"})
    finally:
        await host.close()


def _env(database: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": f"sqlite:///{database}",
        "ENVIRONMENT": "testing",
        "BCRYPT_ROUNDS": "4",
        "STATEMENT_OUTPUT_DIR": str(tmp_path),
    }


async def test_atm_host_refuses_a_missing_database_and_creates_nothing(tmp_path: Path) -> None:
    database = tmp_path / "nowhere" / "host.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "host", "--port", "0", "--ops-port", "0",
        env=_env(database, tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 3
    assert out == b""
    assert err.decode().splitlines() == [
        f"atm host: no database at {database}: run `atm db upgrade && atm db seed` (or start with "
        "`atm host --migrate --seed`), or point DATABASE_URL (--database-url) at an existing one"
    ]
    assert not database.parent.exists()  # nothing left behind


async def test_atm_host_seed_migrates_seeds_and_serves(tmp_path: Path) -> None:
    database = tmp_path / "new.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "host", "--seed", "--port", "0", "--ops-port", "0",
        "--no-worker", env=_env(database, tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        seeded = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        listening = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        ops = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert seeded.startswith("seed: ") and "record(s) created" in seeded
        # The resolved location, absolute, whatever the working directory.
        assert listening.rstrip().endswith(f"(database SQLite file {database})"), listening
        assert await _ready(f"http://127.0.0.1:{int(ops.rsplit(':', 1)[1])}") == (
            200,
            {"status": "ready", "database": "ok"},
        )
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0


@pytest.mark.parametrize("flag", ["--migrate", "--seed"])
def test_migrate_and_seed_are_off_in_production(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "k7Q2x9Lm4Rt8Vw1Zp6Yb3Nc5Hd0Fg2Js",
        "PIN_PEPPER": "P3q8W1e6R4t9Y2u7I5o0A3s8D1f6G4h9",
        "OPS_API_TOKEN": "a-token-of-sixteen-chars",
        "TERMINAL_MASTER_KEYS": "ATM00001=" + "11" * 16,
        "LINK_ALLOW_PLAINTEXT": "true",  # production's TLS rule is not under test here
        "OPS_ALLOW_PLAINTEXT": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["host", flag]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "atm host: --migrate and --seed are off in production: migrate with `atm db upgrade` "
        "(the migration task) before starting the host"
    ]
    assert not (tmp_path / "prod.db").exists()
