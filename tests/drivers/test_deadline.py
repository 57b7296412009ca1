"""``ListeningDeadline`` on an injected clock: a timed-out slice is credited with what it
asked for however late the wake-up, an answer with the time it took, and a silent device
still runs out after the configured seconds."""

from __future__ import annotations

import asyncio

import pytest

from drivers.deadline import ListeningDeadline, listen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stall_costs_one_slice_not_the_whole_timeout() -> None:
    clock = Clock()
    deadline = ListeningDeadline(0.5, clock=clock, slice_seconds=0.05)
    assert deadline.next_wait() == 0.05
    clock.now += 3.0  # the loop was blocked for 3 s: the slice's timer is long overdue
    deadline.waited(timed_out=True)
    assert not deadline.expired
    assert deadline.remaining == pytest.approx(0.45)


def test_an_early_answer_is_credited_with_the_time_it_took() -> None:
    clock = Clock()
    deadline = ListeningDeadline(0.5, clock=clock, slice_seconds=0.05)
    deadline.next_wait()
    clock.now += 0.01
    deadline.waited(timed_out=False)
    assert deadline.remaining == pytest.approx(0.49)


def test_a_silent_device_runs_out_after_the_configured_seconds_of_listening() -> None:
    clock = Clock()
    deadline = ListeningDeadline(0.2, clock=clock, slice_seconds=0.05)
    slices = 0
    while not deadline.expired:
        clock.now += deadline.next_wait()
        deadline.waited(timed_out=True)
        slices += 1
    assert slices == 4
    assert clock.now == pytest.approx(100.2)
    assert deadline.remaining == 0.0


def test_the_slice_must_be_positive() -> None:
    with pytest.raises(ValueError, match="slice_seconds"):
        ListeningDeadline(1.0, clock=Clock(), slice_seconds=0)


async def test_listen_takes_what_is_there_even_with_no_time_to_wait() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    queue.put_nowait("F4")
    assert await listen(0, queue.get) == "F4"
    with pytest.raises(TimeoutError):
        await listen(0, queue.get)
