"""The LCDM-4000 in the whole ATM: ``atm demo --dispenser lcdm-4000`` and ``atm device`` with
four cassettes over a pseudo-terminal against a real host; the note mix spreads a withdrawal
over the cassettes and the journal, the host and the simulator agree."""

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys

import serial
from puloon.lcdm4000 import PuloonLCDM4000

from atm.commands.device import _serve
from atm.demo import SCRIPTS, run_demo
from atm.devices import open_kit
from device.config import CassetteConfig, DeviceConfig
from drivers.interfaces import CassetteStatus
from drivers.lcdm4000 import Lcdm4000Dispenser
from host.app import Host
from simulators.lcdm4000 import Lcdm4000Simulator


async def test_demo_with_an_lcdm_4000(host_config, tmp_path):
    out = io.StringIO()
    result = await run_demo(
        SCRIPTS["withdraw-alice"],
        out=out,
        work_dir=tmp_path,
        host_config=host_config,
        dispenser_model="lcdm-4000",
    )
    assert result.ok, out.getvalue()[-2000:]
    assert result.balance_after == result.balance_before - 10_000
    assert "dispenser on a serial simulator at serial:///dev/pts/" in out.getvalue()
    assert "?model=lcdm-4000" in out.getvalue()


async def test_four_cassettes_through_atm_device(host_config, tmp_path):
    cassettes = (
        CassetteConfig(5000, 1),
        CassetteConfig(2000, 100),
        CassetteConfig(1000, 100),
        CassetteConfig(500, 100),
    )
    config = DeviceConfig(state_dir=tmp_path / "dev", cassettes=cassettes)
    kit = await open_kit({"dispenser": "pty?model=lcdm-4000"}, config)
    try:
        assert isinstance(kit.devices.dispenser, Lcdm4000Dispenser)
        sim = kit.simulators["dispenser"]
        assert isinstance(sim, Lcdm4000Simulator)
        status = await _status(kit.devices.dispenser)
        assert [(c.denomination_cents, c.count) for c in status] == [
            (5000, 1),
            (2000, 100),
            (1000, 100),
            (500, 100),
        ]
    finally:
        kit.close()

    host = Host(host_config)
    host.upgrade_and_seed()
    port = await host.start("127.0.0.1", 0)
    args = argparse.Namespace(script="withdraw-alice", repeat=1, timeout=60.0)
    urls = {"card-reader": "sim", "pin-pad": "sim", "dispenser": "pty?model=lcdm-4000"}
    try:
        config = DeviceConfig(port=port, state_dir=tmp_path / "atm", cassettes=cassettes)
        assert await _serve(config, urls, args) == 0
        assert host.balance("1000-0001-0001") == 525_000 - 10_000
    finally:
        await host.close()
    journal = "\n".join(p.read_text() for p in (tmp_path / "atm").glob("journal-*"))
    # $100 as the one $50, two $20 and a $10: three cassettes in one DISPENSE command,
    # journaled before and after, and the counters say the same.
    assert "DISPENSE_START | stan=000002 | amount=10000 | notes=0:1,1:2,2:1" in journal
    assert "DISPENSE_RESULT | stan=000002 | dispensed=10000 | notes=0:1,1:2,2:1" in journal
    counters = json.loads((tmp_path / "atm" / "cash-ATM00001.json").read_text())
    assert [counters[str(i)]["dispensed"] for i in range(4)] == [1, 2, 1, 0]


async def _status(dispenser: Lcdm4000Dispenser) -> list[CassetteStatus]:
    await dispenser.open()
    try:
        return await dispenser.status()
    finally:
        await dispenser.close()


def test_atm_sim_lcdm_4000_serves_the_puloon_library():
    """``atm sim dispenser --model lcdm-4000`` in its own process, driven by puloon."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "atm", "sim", "dispenser", "--model", "lcdm-4000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "Puloon LCDM-4000" in first, first
        match = re.search(r"on (/dev/pts/\d+)", first)
        assert match, first
        with serial.Serial(match.group(1), 9600, timeout=2) as line:
            client = PuloonLCDM4000(line)
            status = client.status().as_dict()
            assert (status["type1"], status["type2"], status["type3"]) == (1, 2, 0)
            reply = client.dispense(qty1=1, qty2=2).as_dict()
            assert (reply["exit1"], reply["exit2"]) == (1, 2)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_model_is_for_the_dispenser_only():
    proc = subprocess.run(
        [sys.executable, "-m", "atm", "sim", "printer", "--model", "lcdm-4000"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "atm sim: --model is for the dispenser, not the printer"
