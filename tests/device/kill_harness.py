"""A controller in its own process, for the kill-and-restart test (run with ``python -m``).

Alice asks for $100 (2 x $50). The dispenser counts ``--notes-before-block`` notes out of the
cassettes, writes the cassette counts to ``--counts`` (the notes' physical reality, which
survives the process), prints ``DISPENSING`` and then blocks, so the test can SIGKILL the
process in the middle of the dispense.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from device.config import DeviceConfig
from device.controller import AtmController, Devices
from drivers.interfaces import DispenseResult
from drivers.simulated import (
    Cassette,
    SimulatedCardReader,
    SimulatedDispenser,
    SimulatedPinPad,
    SimulatedPrinter,
)

ALICE = "4000001234567899=30121010000000000000"


def save_counts(path: Path, cassettes: list[Cassette]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([[c.denomination_cents, c.count] for c in cassettes]))
    with open(tmp) as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_cassettes(path: Path, config: DeviceConfig) -> list[Cassette]:
    if path.exists():
        return [Cassette(d, n) for d, n in json.loads(path.read_text())]
    return [Cassette(c.denomination_cents, c.count) for c in config.cassettes]


class BlockingDispenser(SimulatedDispenser):
    def __init__(self, cassettes: list[Cassette], counts: Path, notes_before_block: int) -> None:
        super().__init__(cassettes)
        self.counts = counts
        self.notes_before_block = notes_before_block

    async def dispense(self, notes: Mapping[int, int]) -> DispenseResult:
        left = self.notes_before_block
        for index, count in sorted(notes.items()):
            take = min(count, left)
            self.cassettes[index].count -= take
            left -= take
        save_counts(self.counts, self.cassettes)
        print("DISPENSING", flush=True)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def main(args: argparse.Namespace) -> None:
    config = DeviceConfig(port=args.port, state_dir=Path(args.state_dir))
    counts = Path(args.counts)
    dispenser = BlockingDispenser(load_cassettes(counts, config), counts, args.notes_before_block)
    save_counts(counts, dispenser.cassettes)
    reader = SimulatedCardReader()
    pin_pad = SimulatedPinPad(config.master_key)
    controller = AtmController(config, Devices(reader, pin_pad, dispenser, SimulatedPrinter()))
    reader.insert(ALICE)
    pin_pad.press(*"1234", "ENTER", "F1", "F1", "F4")  # withdrawal, checking, $100
    await controller.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--counts", required=True)
    parser.add_argument("--notes-before-block", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
