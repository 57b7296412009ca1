"""puloon 0.1.10, the public Python library for the Puloon LCDM-4000 (not written by us), drives
our LCDM-4000 simulator over a real pseudo-terminal: status of four cassettes, a dispense across
cassettes, purge of notes left in the exit tray, the last-status command, error replies for
each device fault, and a garbled reply repaired by the library's NAK.

puloon is synchronous (pyserial), so its calls run in a worker thread while the simulator serves
on the event loop. Where puloon and the public command description differ, docs/devices.md
("LCDM-4000") says which we followed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import serial
from puloon.lcdm4000 import (
    DispenseCommand,
    DispenseResponse,
    PuloonException,
    PuloonLCDM4000,
)

from simulators.dispenser import SimCassette
from simulators.lcdm4000 import Lcdm4000Simulator
from simulators.ports import PtyPort

LOAD = [(100, 50), (500, 40), (1000, 30), (2000, 20)]


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Lcdm4000Simulator, Any]]:
    sim = Lcdm4000Simulator([SimCassette(d, n, low_threshold=5) for d, n in LOAD])
    port = PtyPort(sim)
    path = await port.start()
    line = await asyncio.to_thread(serial.Serial, path, 9600, timeout=1)
    try:
        yield sim, PuloonLCDM4000(line)
    finally:
        await asyncio.to_thread(line.close)
        port.close()


async def test_status_shows_four_cassettes(rig):
    _sim, client = rig
    status = (await asyncio.to_thread(client.status)).as_dict()
    assert status["error"] == 0
    assert [status[f"type{i}"] for i in (1, 2, 3, 4)] == [1, 2, 3, 4]  # all four present


async def test_dispense_across_cassettes_then_purge(rig):
    sim, client = rig
    reply = (await asyncio.to_thread(client.dispense, 2, 1, 0, 3)).as_dict()
    assert (reply["exit1"], reply["exit2"], reply["exit3"], reply["exit4"]) == (2, 1, 0, 3)
    assert [c.count for c in sim.cassettes] == [48, 39, 30, 17]
    assert sim.tray == {0: 2, 1: 1, 3: 3}
    # the customer walks away: purge sweeps the exit tray into the reject tray
    purged = (await asyncio.to_thread(client.purge)).as_dict()
    assert (purged["exit1"], purged["exit2"], purged["exit4"]) == (2, 1, 3)
    assert sim.tray == {} and sim.reject_bin == {0: 2, 1: 1, 3: 3}
    last = await asyncio.to_thread(client.last_status)
    assert last.as_dict()["exit4"] == 3
    assert all(sim.cassettes[i].count + sim.notes_accounted(i) == LOAD[i][1] for i in range(4))


@pytest.mark.parametrize(
    ("fault", "code"),
    [("jam", 0x02), ("partial", 0x04), ("cassette_missing", 0x24), ("cassette_empty", 0x01)],
)
async def test_device_faults_are_error_replies(rig, fault, code):
    sim, client = rig
    sim.inject(fault)
    with pytest.raises(PuloonException) as info:
        await asyncio.to_thread(client.dispense, 4)
    assert info.value.code == code
    assert info.value.response is not None  # a whole, valid reply carried the error
    # no note is ever lost: cassette + tray + reject + taken == loaded
    assert sim.cassettes[0].count + sim.notes_accounted(0) == LOAD[0][1]


async def test_garbled_reply_is_repeated_after_the_library_naks(rig):
    sim, client = rig
    sim.inject("garble", 1)
    status = (await asyncio.to_thread(client.status)).as_dict()
    assert status["error"] == 0 and status["type4"] == 4


async def test_too_many_notes_is_refused_by_the_device(rig):
    """puloon caps one call at 40 notes; the dispenser's own limit is 100 per transaction,
    sent here through puloon's command classes."""
    sim, client = rig
    too_many = DispenseCommand.from_dict(qty1=30, qty2=30, qty3=30, qty4=11)
    with pytest.raises(PuloonException) as info:
        await asyncio.to_thread(client._run, too_many, DispenseResponse)
    assert info.value.code == 0x0C
    assert sim.tray == {} and [c.count for c in sim.cassettes] == [n for _, n in LOAD]
