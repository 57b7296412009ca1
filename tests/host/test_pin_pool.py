"""PIN verification never starves other work: while every bcrypt thread is busy (held by a gate
in the PIN pool, no timing involved) and more PIN verifications than there are database
workers wait for it, a balance inquiry from another terminal, whose card session is open, is
answered; the waiting PIN requests are answered once the gate opens. Both databases."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from host.bank.models import CardSession
from host.bank.pins import BCRYPT_NICENESS, THREAD_NAME, PinVerifier
from protocol.messages import Message
from tests.host.link_helpers import (
    BOB_PAN,
    BOB_TRACK,
    TestTerminal,
    start_host,
)


async def test_inquiry_is_answered_while_pin_verifications_wait(seeded_config):
    withdrawals_in = 0
    all_in = asyncio.Event()
    expected = 0

    def tap(direction: str, message: Message) -> None:  # on the event loop, as received
        nonlocal withdrawals_in
        if direction == "recv" and message["t"] == "0200":
            withdrawals_in += 1
            if withdrawals_in == expected:
                all_in.set()

    host = await start_host(seeded_config, tap=tap)
    expected = host.workers + 2
    gate = threading.Event()
    try:
        async with (
            TestTerminal(host.server.port, "ATM00001") as alice_atm,
            TestTerminal(host.server.port, "ATM00002") as bob_atm,
        ):
            assert (await alice_atm.sign_on())["39"] == "00"
            assert (await bob_atm.sign_on())["39"] == "00"
            # Bob's card session opens (one bcrypt) before the pool is held.
            first = await bob_atm.request(bob_atm.balance_inquiry(BOB_PAN, BOB_TRACK, "5678"))
            assert first["39"] == "00"

            held = [host.pins.submit(gate.wait) for _ in range(host.pins.workers)]
            waiting = [
                asyncio.create_task(alice_atm.request(alice_atm.withdrawal(2_000)))
                for _ in range(expected)
            ]
            await all_in.wait()  # every withdrawal has reached the host and been authenticated
            # More PIN requests wait than there are database workers: had any of them held
            # a worker (or Alice's row) through bcrypt, this inquiry could not be answered.
            inquiry = await bob_atm.request(bob_atm.balance_inquiry(BOB_PAN, BOB_TRACK, "5678"))
            assert inquiry["39"] == "00"
            assert inquiry["54"] == first["54"]
            assert not any(task.done() for task in waiting)

            gate.set()
            answers = await asyncio.gather(*waiting)
            assert [a["39"] for a in answers] == ["00"] * len(waiting)
            for future in held:
                future.result()
        with host.sessions() as session:
            assert session.query(CardSession).count() == 2
        assert await asyncio.to_thread(host.balance, "1000-0001-0001") == 525_000 - 2_000 * len(
            waiting
        )
    finally:
        gate.set()
        await host.close()


def test_bcrypt_threads_run_at_a_lower_priority():
    # Linux: each bcrypt thread is reniced, so other work takes a core from it when it needs one.
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pins = PinVerifier(pepper="p", secret_key="k", workers=2)
    try:
        niceness = pins.submit(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        ).result()
    finally:
        pins.close()
    assert niceness == min(19, base + BCRYPT_NICENESS)


def test_pin_pool_is_one_thread_per_core_and_only_its_threads_are_reniced():
    caller = threading.get_native_id()
    base = os.getpriority(os.PRIO_PROCESS, caller)
    pins = PinVerifier(pepper="p", secret_key="k")
    assert pins.workers == (os.cpu_count() or 1)
    gate = threading.Event()
    arrived = threading.Barrier(pins.workers + 1)

    def report() -> tuple[int, int, str]:
        thread = threading.get_native_id()
        arrived.wait()  # every pool thread is running one of these at once
        gate.wait()
        name = Path(f"/proc/self/task/{thread}/comm").read_text().strip()
        return thread, os.getpriority(os.PRIO_PROCESS, thread), name

    try:
        futures = [pins.submit(report) for _ in range(pins.workers)]
        arrived.wait()
        gate.set()
        seen = [future.result() for future in futures]
    finally:
        gate.set()
        pins.close()
    assert len({thread for thread, _, _ in seen}) == pins.workers
    assert {niceness for _, niceness, _ in seen} == {min(19, base + BCRYPT_NICENESS)}
    # The kernel knows them by name (top -H, py-spy, the bench's PIN figures).
    assert {name for _, _, name in seen} == {THREAD_NAME}
    # Renicing a pool thread leaves the thread that made the pool (the event loop's) alone.
    assert os.getpriority(os.PRIO_PROCESS, caller) == base
    assert Path(f"/proc/self/task/{caller}/comm").read_text().strip() != THREAD_NAME
