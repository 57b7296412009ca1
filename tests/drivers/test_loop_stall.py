"""A stalled event loop is not a silent device. Every serial driver here shares its event loop
with the simulator at the other end of the pty (and, in the demo, with the host and the
controller); on a loaded machine that loop can stop for longer than a device's ACK or reply
timeout (a thread pre-empted while it holds the GIL, more work than cores). The device
answered in time; only this process was not running to read it. The drivers count the time
they listened (``drivers.deadline``), so the answer is read, once, and nothing is sent
twice; before, the first wake-up after the stall found the timer due and the answer not yet
read: a ``DeviceTimeout``, or the request sent again and its second answer read as the
answer to the next request (the double-counted note of the cash deposit demo).

The stall is made on purpose: ``time.sleep`` inside the simulator's receive blocks the loop
(it is the condition under test, not a wait for something to happen)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from drivers.errors import DeviceTimeout
from drivers.simulated import SimulatedPinPad
from tests.drivers.conftest import FAST, MASTER_KEY, Rig, make_rig
from tests.drivers.test_serial_faults import ask

# Longer than every timeout the rigs use (FAST: ACK 0.3 s, reply 0.4 s; printer and ID003
# 0.3 s), so a wall clock would have run out while the loop was blocked.
STALL = max(FAST["ack_timeout"], FAST["reply_timeout"]) + 0.3


def record(rig: Rig, *, stall: bool) -> list[bytes]:
    """From now on the simulator keeps what it receives (returned list). With ``stall``, the
    first request finds the event loop blocked for STALL seconds before the simulator sees
    it; the simulator answers at once when the loop runs again, in the same turn of the loop
    as the driver's timer (had it run on the wall clock) comes due."""
    sim: Any = rig.customer
    receive = type(sim).receive.__get__(sim)
    loop = asyncio.get_running_loop()
    received: list[bytes] = []

    def answer_after_a_stall(data: bytes) -> None:
        time.sleep(STALL)  # the loop stops: nobody runs, the driver's clock goes on
        loop.call_soon(receive, data)

    def spy(data: bytes) -> None:
        first = not received
        received.append(data)
        if stall and first:
            loop.call_soon(answer_after_a_stall, data)
        else:
            receive(data)

    sim.receive = spy
    return received


@pytest.mark.parametrize(
    ("kind", "backend"),
    [
        ("dispenser", "serial"),
        ("dispenser", "lcdm-4000"),
        ("card-reader", "serial"),
        ("pin-pad", "serial"),
        ("bill-acceptor", "serial"),
        ("printer", "serial"),
    ],
)
async def test_an_answer_read_late_because_the_loop_stalled_is_still_the_answer(
    kind: str, backend: str
) -> None:
    rig = await make_rig(kind, backend)
    try:
        plain = record(rig, stall=False)
        expected = await ask(rig)
        stalled = record(rig, stall=True)
        started = time.monotonic()
        assert await ask(rig) == expected
        assert time.monotonic() - started >= STALL  # the stall did happen, mid-request
        # Nothing was sent again: the device saw exactly the bytes of an unstalled request.
        assert b"".join(stalled) == b"".join(plain)
    finally:
        await rig.device.close()
        assert rig.port is not None
        rig.port.close()


async def test_the_in_process_pin_pad_reads_a_key_pressed_as_a_stall_ends() -> None:
    """The in-process devices wait for their customer the same way: a key pressed just
    after the loop was blocked for longer than the whole key timeout is still read (the
    device tests use short customer timeouts and press keys as screens appear). Before,
    ``asyncio.wait_for`` ran out in the first turn after the stall."""
    pad = SimulatedPinPad(MASTER_KEY)
    await pad.open()
    loop = asyncio.get_running_loop()

    def stall_then_press() -> None:
        time.sleep(0.5)  # the loop stops for longer than the 0.2 s wait
        loop.call_later(0.02, pad.press, "F4")  # the customer, a moment after it runs again

    loop.call_soon(stall_then_press)
    started = time.monotonic()
    assert await pad.read_key(0.2) == "F4"
    assert time.monotonic() - started >= 0.5


async def test_the_in_process_pin_pad_still_times_out_when_nobody_presses() -> None:
    pad = SimulatedPinPad(MASTER_KEY)
    await pad.open()
    with pytest.raises(DeviceTimeout, match=r"no key pressed within 0\.1s"):
        await pad.read_key(0.1)
