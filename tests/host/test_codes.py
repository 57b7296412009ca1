"""The host's RRNs (DE 37) and approval codes (DE 38), ``host.bank.codes.RandomCodes``: the
format of docs/protocol.md, every RRN of a process and UTC day different until the count wraps,
a new day starting afresh, no RRN shared between threads drawing at once, two processes
starting at different places, and approval codes at random."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from host.bank.codes import RRN_SPACE, RandomCodes
from tests.host.conftest import Requests

NOW = dt.datetime(2026, 11, 30, 21, 5, tzinfo=dt.UTC)
REQUEST = Requests().withdrawal(2_000)


def test_an_rrn_is_the_utc_day_and_seven_digits_and_a_code_six_digits() -> None:
    codes = RandomCodes()
    rrn = codes.rrn(REQUEST, NOW)
    assert len(rrn) == 12 and rrn.isdigit() and rrn.startswith("26334")
    assert codes.rrn(REQUEST, NOW + dt.timedelta(hours=3)).startswith("26335")
    auth = codes.auth_code(REQUEST)
    assert len(auth) == 6 and auth.isdigit()


def test_a_days_rrns_are_all_different() -> None:
    codes = RandomCodes()
    rrns = [codes.rrn(REQUEST, NOW) for _ in range(50_000)]
    assert len(set(rrns)) == len(rrns)
    assert all(len(rrn) == 12 and rrn.startswith("26334") for rrn in rrns)


def test_two_processes_draw_different_sequences() -> None:
    first, second = RandomCodes(), RandomCodes()
    a = [first.rrn(REQUEST, NOW) for _ in range(100)]
    b = [second.rrn(REQUEST, NOW) for _ in range(100)]
    assert a != b
    assert len({first.auth_code(REQUEST) for _ in range(100)}) > 90


def test_the_count_goes_through_every_suffix_before_it_wraps_and_a_new_day_starts_afresh() -> None:
    """With room for 1,000 suffixes: the first 1,000 of a day are all of them, the next
    1,000 the same again in the same order; a new day starts at a place of its own."""
    codes = RandomCodes(space=1_000)
    first = [int(codes.rrn(REQUEST, NOW)[5:]) for _ in range(1_000)]
    assert sorted(first) == list(range(1_000))
    assert [int(codes.rrn(REQUEST, NOW)[5:]) for _ in range(1_000)] == first
    tomorrow = NOW + dt.timedelta(days=1)
    starts = {int(RandomCodes(space=1_000).rrn(REQUEST, tomorrow)[5:]) for _ in range(20)}
    assert len(starts) > 1  # 20 processes' first RRN of a day: not all at one place
    assert codes.rrn(REQUEST, tomorrow).startswith("26335")


def test_a_bad_space_is_refused() -> None:
    for space in (0, RRN_SPACE + 1):
        with pytest.raises(ValueError, match="RRN space"):
            RandomCodes(space=space)


def test_threads_drawing_at_once_never_share_an_rrn() -> None:
    codes = RandomCodes(space=RRN_SPACE)
    start = threading.Barrier(4)
    drawn: list[list[str]] = [[] for _ in range(4)]

    def draw(mine: list[str]) -> None:
        start.wait()
        mine.extend(codes.rrn(REQUEST, NOW) for _ in range(10_000))

    threads = [threading.Thread(target=draw, args=(mine,)) for mine in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [rrn for mine in drawn for rrn in mine]
    assert len(every) == len(set(every)) == 40_000
