"""A device-side process for the SIGKILL test (run with subprocess, not collected by pytest).

``queue PORT STATE_DIR``: sign on, withdraw $100.00 (approved), lose the link, queue a
reversal (cash not taken), print ``QUEUED`` and wait to be killed.
``drain PORT STATE_DIR``: start again, print the pending count, come online (which drains the
queue), print the pending count again, exit.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from device.config import DeviceConfig
from device.hostlink import HostLink, LinkTiming, ReversalReason
from drivers.simulated import SimulatedPinPad
from protocol.messages import format_amount
from protocol.stan import StanGenerator

PAN = "4000001234567899"


async def main(mode: str, port: int, state_dir: Path) -> None:
    config = DeviceConfig(port=port, state_dir=state_dir, terminal_id="ATM00004")
    pad = SimulatedPinPad(config.master_key)
    link = HostLink(
        config,
        StanGenerator(),
        on_pin_key=pad.load_working_key,
        timing=LinkTiming(echo_interval=3600, backoff_initial=3600, backoff_max=3600),
    )
    if mode == "drain":
        print(f"PENDING {link.pending_reversals()}", flush=True)
        online = await link.ensure_online()
        print(f"ONLINE {online}", flush=True)
        print(f"PENDING {link.pending_reversals()}", flush=True)
        await link.close()
        return
    assert await link.ensure_online()
    pad.type_digits("1234")
    pad.press("ENTER")
    block = await pad.read_pin(PAN, 5)
    message = link.base_message("0200")
    message.update(
        {
            "2": PAN,
            "3": "012000",
            "4": format_amount(10_000),
            "35": PAN + "=30121010000000000000",
            "49": "840",
            "52": block.ciphertext.hex().upper(),
        }
    )
    response = await link.request(message)
    print(f"RESPONSE {response['39']}", flush=True)
    await link.close()  # the link is gone before the reversal can be sent
    link.queue_reversal(message, 0, ReversalReason.CASH_NOT_TAKEN)
    print("QUEUED", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
