"""The host's RRNs (DE 37) and approval codes (DE 38), ``host.bank.codes.RandomCodes``: the
format of docs/protocol.md, every RRN of a process and UTC day different, a new day or a spent
key starting afresh, no RRN shared between threads drawing at once, and nothing in the
sequence that gives the next one away (not the counter, not the same in two processes)."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter

import pytest

from host.bank.codes import RRN_SPACE, FeistelPermutation, RandomCodes
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


def test_a_days_rrns_are_all_different_and_not_the_counter() -> None:
    codes = RandomCodes()
    suffixes = [int(codes.rrn(REQUEST, NOW)[5:]) for _ in range(50_000)]
    assert len(set(suffixes)) == len(suffixes)
    # Spread over the whole range, not counting up: each leading digit about a tenth.
    leading = Counter(s // 10**6 for s in suffixes)
    assert set(leading) == set(range(10))
    assert all(3_500 < n < 6_500 for n in leading.values()), leading
    rises = sum(b > a for a, b in itertools.pairwise(suffixes))
    assert 20_000 < rises < 30_000


def test_two_processes_draw_different_sequences() -> None:
    first, second = RandomCodes(), RandomCodes()
    a = [first.rrn(REQUEST, NOW) for _ in range(100)]
    b = [second.rrn(REQUEST, NOW) for _ in range(100)]
    assert a != b
    assert len({first.auth_code(REQUEST) for _ in range(100)}) > 90


def test_a_spent_key_and_a_new_day_start_afresh() -> None:
    """With room for 1,000 suffixes: the first 1,000 of a day are a permutation of them
    all; the 1,001st comes from a new key (a new permutation); a new day gets one too."""
    codes = RandomCodes(space=1_000)
    first = [int(codes.rrn(REQUEST, NOW)[5:]) for _ in range(1_000)]
    assert sorted(first) == list(range(1_000))
    second = [int(codes.rrn(REQUEST, NOW)[5:]) for _ in range(1_000)]
    assert sorted(second) == list(range(1_000)) and second != first
    tomorrow = NOW + dt.timedelta(days=1)
    third = [codes.rrn(REQUEST, tomorrow) for _ in range(1_000)]
    assert all(rrn.startswith("26335") for rrn in third)
    assert [int(rrn[5:]) for rrn in third] not in (first, second)


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


@pytest.mark.parametrize("domain", [1, 2, 7, 1_000, 3_163**2 - 5])
def test_the_permutation_is_one_over_its_domain(domain: int) -> None:
    permutation = FeistelPermutation(domain)
    sample = range(min(domain, 20_000))
    images = [permutation(value) for value in sample]
    assert len(set(images)) == len(images)
    assert all(0 <= image < domain for image in images)
    if domain <= 20_000:
        assert sorted(images) == list(range(domain))
    with pytest.raises(ValueError, match="outside"):
        permutation(domain)


def test_a_key_decides_the_permutation() -> None:
    key = bytes(range(256)) * (6 * 32 * 4 // 256)  # 6 rounds x radix 32 x 4 bytes
    one, two = FeistelPermutation(1_000, key), FeistelPermutation(1_000, key)
    assert [one(v) for v in range(1_000)] == [two(v) for v in range(1_000)]
    with pytest.raises(ValueError, match="bytes"):
        FeistelPermutation(1_000, key[:-4])
