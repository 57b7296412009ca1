"""The composition: device URLs, ``atm demo --devices serial`` (four serial simulators on
ptys), ``atm device --script`` against a real host, and ``atm sim`` as a separate process
answering an LCDM-2000 status command sent by a plain serial client."""

import argparse
import io
import os
import re
import select
import signal
import subprocess
import sys
import time
import tty

import pytest

from atm.commands.device import _serve
from atm.demo import SCRIPTS, run_demo
from atm.devices import open_kit
from device.config import DeviceConfig
from drivers.lcdm import LcdmDispenser
from drivers.simulated import SimulatedCardReader
from host.app import Host


async def test_demo_on_serial_simulators(host_config, tmp_path):
    out = io.StringIO()
    result = await run_demo(
        SCRIPTS["withdraw-alice"],
        out=out,
        work_dir=tmp_path,
        host_config=host_config,
        devices="serial",
    )
    assert result.ok, out.getvalue()[-2000:]
    assert result.balance_after == result.balance_before - 10_000
    assert "on a serial simulator at serial:///dev/pts/" in out.getvalue()
    assert "$50.00 x 198" in out.getvalue()  # the simulator's own cassette counters
    (receipt,) = result.receipts
    assert "400000******7899" in "\n".join(receipt)


async def test_kit_mixes_backends(tmp_path):
    kit = await open_kit({"dispenser": "pty"}, DeviceConfig(state_dir=tmp_path))
    try:
        assert isinstance(kit.devices.dispenser, LcdmDispenser)
        assert isinstance(kit.devices.card_reader, SimulatedCardReader)
        assert kit.urls["dispenser"].startswith("serial:///dev/pts/")
        assert await kit.check() == []
        assert kit.dispenser is not None
        assert kit.simulators["dispenser"] is kit.dispenser  # type: ignore[comparison-overlap]
    finally:
        kit.close()


async def test_kit_check_names_the_missing_port(tmp_path):
    kit = await open_kit({"printer": "serial:///dev/ttyNOPE1"}, DeviceConfig(state_dir=tmp_path))
    (problem,) = await kit.check()
    assert problem.startswith("printer at serial:///dev/ttyNOPE1:")


async def test_atm_device_script_against_a_host(host_config, tmp_path, capsys):
    host = Host(host_config)
    host.upgrade_and_seed()
    port = await host.start("127.0.0.1", 0)
    args = argparse.Namespace(script="withdraw-alice", repeat=2, timeout=60.0)
    config = DeviceConfig(port=port, state_dir=tmp_path / "dev")
    urls = {"card-reader": "pty", "pin-pad": "pty", "dispenser": "pty", "printer": "sim"}
    try:
        assert await _serve(config, urls, args) == 0
        assert host.balance("1000-0001-0001") == 525_000 - 2 * 10_000
    finally:
        await host.close()
    assert "== run 2: done" in capsys.readouterr().out


def test_atm_sim_dispenser_answers_a_serial_terminal(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "atm", "sim", "dispenser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"on (/dev/pts/\d+)", first)
        assert match, first
        fd = os.open(match.group(1), os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            os.write(fd, bytes.fromhex("04 50 02 46 03 13"))
            answer = b""
            deadline = time.monotonic() + 5
            # ACK + a status reply of 3 data bytes: 1 + 4 + 3 + 2 bytes
            while len(answer) < 10 and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
                if ready:
                    answer += os.read(fd, 64)
        finally:
            os.close(fd)
        assert answer[:5] == bytes.fromhex("06 01 50 02 46")
        assert answer[-2] == 0x03
        body = answer[1:-1]
        bcc = 0
        for byte in body:
            bcc ^= byte
        assert bcc == answer[-1]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--dispenser", "serial:///dev/ttyNOPE2"], "/dev/ttyNOPE2"),
        (["--card-reader", "ftp://x"], "unknown device URL"),
        (["--pin-pad", "usb://0801:0002"], "no usb backend for the pin-pad"),
    ],
)
def test_atm_device_bad_urls(argv, words, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "atm", "device", "--state-dir", str(tmp_path), *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert words in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


async def test_bill_acceptor_on_a_pty_through_the_id003_driver():
    from atm.devices import open_kit
    from device.config import DeviceConfig
    from drivers.id003 import Id003BillAcceptor
    from drivers.interfaces import NoteEscrowed

    kit = await open_kit({"bill-acceptor": "pty"}, DeviceConfig())
    try:
        acceptor = kit.devices.bill_acceptor
        assert isinstance(acceptor, Id003BillAcceptor)
        assert kit.urls["bill-acceptor"].startswith("serial:///dev/")
        await acceptor.open()
        await acceptor.enable()
        assert kit.notes is not None
        kit.notes.insert_note(2000)
        assert await acceptor.wait_note(2.0) == NoteEscrowed(2000)
        assert await acceptor.stack() == {2000: 1}
        await acceptor.close()
    finally:
        kit.close()
