"""``atm host`` as a real process: link and ops API up, clean exit on SIGTERM; and
``.env.example`` naming every setting the host reads."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

import host.config
from host.config import HostConfig

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_and_is_valid():
    # Every configuration module of the host: host/config.py, host/environment.py and
    # host/link/config.py (and any host/**/*config*.py added later).
    read: set[str] = set()
    package = Path(host.config.__file__).parent
    for path in sorted({*package.rglob("*config*.py"), package / "environment.py"}):
        read |= set(
            re.findall(r'(?:env\.get|env\[|integer\()\(?\s*"([A-Z][A-Z0-9_]+)"', path.read_text())
        )
    assert {"DATABASE_URL", "SECRET_KEY", "OPS_API_TOKEN", "BCRYPT_ROUNDS"} <= read
    assert {"TERMINAL_MASTER_KEYS", "TERMINAL_KEY_SCHEMES"} <= read  # host/link/config.py
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert read <= set(example), read - set(example)
    assert set(example) <= read, set(example) - read  # nothing the host does not read
    config = HostConfig.from_env(example)
    assert config == HostConfig.from_env({})


async def test_atm_host_serves_link_and_ops_and_stops_on_sigterm(sqlite_url, tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": sqlite_url,
        "ENVIRONMENT": "testing",
        "STATEMENT_OUTPUT_DIR": str(tmp_path),
        "OPS_API_TOKEN": "a-token-of-sixteen-chars",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "host", "--port", "0", "--ops-port", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        link_line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        ops_line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert link_line.startswith("host listening on 127.0.0.1:")
        ops_port = int(ops_line.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{ops_port}/ready") as reply:
                assert reply.status == 200
            headers = {"Authorization": "Bearer a-token-of-sixteen-chars"}
            async with client.get(
                f"http://127.0.0.1:{ops_port}/accounts/1000-0002-0001", headers=headers
            ) as reply:
                assert (await reply.json())["balance_cents"] == 85_075
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
