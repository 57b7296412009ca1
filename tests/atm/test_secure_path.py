"""The secure path of docs/security.md, command by command as a person runs it: `atm certs dev`,
`atm host` with mutual TLS on the link and HTTPS on the ops API, `atm device` withdrawing over
mutual TLS, and the balance read back over HTTPS. Three real processes, real sockets."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from pathlib import Path

import aiohttp

from atm.certs import DevPki

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "secure-path-ops-token-0123"


async def _atm(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def test_certs_then_host_and_atm_over_mutual_tls_complete_a_withdrawal(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "BCRYPT_ROUNDS": "4",
    }
    certs = tmp_path / "certs"
    made = await _atm("certs", "dev", "--dir", str(certs), "--terminal", "ATM00001", env=env)
    out, _ = await asyncio.wait_for(made.communicate(), 60)
    assert made.returncode == 0, out.decode()
    pki = DevPki(certs, ("ATM00001",))

    host_env = {
        **env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'host.db'}",
        "STATEMENT_OUTPUT_DIR": str(tmp_path / "statements"),
        "OPS_API_TOKEN": TOKEN,
        "LINK_TLS_CERT": str(pki.host_cert),
        "LINK_TLS_KEY": str(pki.host_key),
        "LINK_TLS_CLIENT_CA": str(pki.ca),
    }
    host = await _atm(
        "host", "--seed", "--port", "0", "--ops-port", "0",
        "--ops-cert", str(pki.host_cert), "--ops-key", str(pki.host_key), env=host_env,
    )  # fmt: skip
    assert host.stdout is not None
    try:
        lines: list[str] = []
        while not any(line.startswith("ops API") for line in lines):
            line = (await asyncio.wait_for(host.stdout.readline(), 60)).decode()
            assert line, "".join(lines)
            lines.append(line)
        link_line = next(x for x in lines if x.startswith("host listening on 127.0.0.1:"))
        link_port = int(link_line.split(":")[1].split()[0])
        ops_line = next(x for x in lines if x.startswith("ops API"))
        assert ops_line.startswith("ops API (HTTPS) listening on 127.0.0.1:")
        ops_port = int(ops_line.rsplit(":", 1)[1])

        device = await _atm(
            "device", "--port", str(link_port), "--terminal-id", "ATM00001",
            "--state-dir", str(tmp_path / "atm"), "--script", "withdraw-alice",
            "--timeout", "30", "--tls-ca", str(pki.ca),
            "--tls-cert", str(pki.terminal_cert("ATM00001")),
            "--tls-key", str(pki.terminal_key("ATM00001")), env=env,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(device.communicate(), 90)
        assert device.returncode == 0, out.decode()[-3000:]
        assert "== run 1: done" in out.decode()

        trust = ssl.create_default_context(cafile=str(pki.ca))
        async with aiohttp.ClientSession() as client:
            async with client.get(
                f"https://127.0.0.1:{ops_port}/accounts/1000-0001-0001",
                headers={"Authorization": f"Bearer {TOKEN}"},
                ssl=trust,
            ) as reply:
                assert (await reply.json())["balance_cents"] == 525_000 - 10_000
    finally:
        host.terminate()
        await asyncio.wait_for(host.wait(), 30)
