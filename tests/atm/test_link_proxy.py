"""``atm link proxy``: a real host, the proxy in front of it, and an ATM's balance inquiry
(the device's own HostLink, via scripts/smoke_iso.py) through the proxy, over real sockets."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from atm.cli import main
from atm.commands.link import LinkProxy
from host.app import Host
from host.config import HostConfig
from scripts.smoke_iso import balance_inquiry


async def test_relays_prints_and_captures_what_atm_link_decode_reads(
    seeded_config: HostConfig, tmp_path: Path, capsys
) -> None:
    host = Host(seeded_config)
    link_port = await host.start("127.0.0.1", 0)
    out = io.StringIO()
    capture_path = tmp_path / "capture.bin"
    with capture_path.open("ab") as capture:
        proxy = LinkProxy(("127.0.0.1", link_port), out=out, capture=capture)
        port = await proxy.start("127.0.0.1", 0)
        try:
            result = await balance_inquiry("127.0.0.1", port, timeout=10)
        finally:
            await proxy.close()
            await host.close()
    assert result.signed_on and result.response_code == "00"
    assert result.balance_cents == 525_000
    shown = out.getvalue()
    assert "ATM -> HOST MTI 0800" in shown and "HOST -> ATM MTI 0810" in shown
    assert "ATM -> HOST MTI 0100" in shown and "HOST -> ATM MTI 0110" in shown
    assert "00 (Approved)" in shown
    assert "4000001234567899" not in shown  # PAN masked
    # The capture holds every frame, in order, and decodes back.
    assert main(["link", "decode", str(capture_path)]) == 0
    decoded = capsys.readouterr().out
    mtis = [line.split()[1] for line in decoded.splitlines() if line.startswith("MTI ")]
    assert mtis[:2] == ["0800", "0810"] and mtis[-2:] == ["0100", "0110"]


def _atm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atm", "link", "proxy", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )  # fmt: skip


def test_bad_options_are_one_line_each(tmp_path: Path) -> None:
    for args, line, code in (
        (["--listen", "http", "--to", "127.0.0.1:8583"], "--listen 'http' is not a port", 2),
        (["--listen", "0", "--to", "8583"], "--to '8583' is not HOST:PORT", 2),
        (
            ["--listen", "0", "--to", "h:1", "--capture", str(tmp_path / "no" / "c.bin")],
            "cannot write the capture file",
            2,
        ),
    ):
        done = _atm(*args)
        assert done.returncode == code, done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr
        (only,) = done.stderr.splitlines()
        assert only.startswith("atm link proxy: ") and line in only
