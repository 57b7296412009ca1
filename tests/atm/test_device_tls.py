"""From `atm certs dev` to a withdrawal over mutual TLS: a real `atm device` process against a
real host that requires client certificates."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
import sys
from pathlib import Path

from atm.certs import DevPki
from atm.cli import main
from atm.scripts import ALICE_CHECKING
from host.app import Host
from host.link.config import LinkConfig, LinkTls

ROOT = Path(__file__).resolve().parents[2]


async def _run_device(port: int, state_dir: Path, *tls: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm.cli", "device", "--port", str(port),
        "--terminal-id", "ATM00004", "--state-dir", str(state_dir),
        "--script", "withdraw-alice", "--timeout", "20", *tls,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def test_certs_dev_writes_a_ca_host_and_terminal_certificates(tmp_path, capsys):
    assert main(["certs", "dev", "--dir", str(tmp_path), "--terminal", "ATM00004"]) == 0
    pki = DevPki(tmp_path, ("ATM00004",))
    for path in (pki.ca, pki.host_cert, pki.terminal_cert("ATM00004")):
        assert path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    for key in (pki.host_key, pki.terminal_key("ATM00004"), tmp_path / "ca-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "LINK_TLS_CLIENT_CA=" in capsys.readouterr().out


def test_certs_dev_refuses_a_bad_terminal_id(tmp_path, capsys):
    assert main(["certs", "dev", "--dir", str(tmp_path), "--terminal", "ATM1"]) == 2
    assert capsys.readouterr().err.startswith("atm certs dev: terminal IDs are 8 characters")


async def test_device_withdraws_over_mutual_tls(host_config, tmp_path):
    assert main(["certs", "dev", "--dir", str(tmp_path / "certs"), "--terminal", "ATM00004"]) == 0
    pki = DevPki(tmp_path / "certs", ("ATM00004",))
    tls = LinkTls(str(pki.host_cert), str(pki.host_key), str(pki.ca))
    host = Host(dataclasses.replace(host_config, link=LinkConfig(tls=tls)))
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    before = host.balance(ALICE_CHECKING)
    try:
        code, out = await _run_device(
            port, tmp_path / "dev",
            "--tls-ca", str(pki.ca), "--tls-cert", str(pki.terminal_cert("ATM00004")),
            "--tls-key", str(pki.terminal_key("ATM00004")),
        )  # fmt: skip
        after = host.balance(ALICE_CHECKING)
    finally:
        await host.close()
    assert code == 0, out[-3000:]
    assert "== run 1: done" in out
    assert after == before - 10_000


def test_device_refuses_a_certificate_without_its_ca(tmp_path, capsys):
    code = main(["device", "--tls-cert", str(tmp_path / "t.pem"), "--script", "withdraw-alice"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == "atm device: a terminal certificate needs the host CA (tls_ca)\n"
