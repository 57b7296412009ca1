import pytest

from device.cash import CashCounters, CassetteCounters, mix_notes
from device.errors import CashError
from drivers.interfaces import CassetteState, CassetteStatus

TWENTY = CassetteStatus(0, 2000, 500, CassetteState.OK)
FIFTY = CassetteStatus(1, 5000, 200, CassetteState.OK)


@pytest.mark.parametrize(
    ("amount", "mix"),
    [(2000, {0: 1}), (6000, {0: 3}), (10000, {1: 2}), (9000, {0: 2, 1: 1}), (20000, {1: 4})],
)
def test_fewest_notes(amount, mix):
    assert mix_notes(amount, [TWENTY, FIFTY]) == mix


def test_unmakeable_amounts():
    with pytest.raises(CashError):
        mix_notes(3000, [TWENTY, FIFTY])
    with pytest.raises(CashError):
        mix_notes(0, [TWENTY, FIFTY])


def test_empty_cassette_is_skipped():
    empty_fifty = CassetteStatus(1, 5000, 0, CassetteState.EMPTY)
    assert mix_notes(10000, [TWENTY, empty_fifty]) == {0: 5}


def test_counters_balance_and_survive_a_restart(tmp_path):
    from device.cash import CashCounters

    path = tmp_path / "cash.json"
    counters = CashCounters(path)
    assert counters.ensure_loaded([TWENTY, FIFTY])
    counters.add("dispensed", {1: 4})
    counters.add("rejected", {0: 1})
    counters.move({1: 2}, "dispensed", "retracted")
    again = CashCounters(path)
    c1 = again.cassettes[1]
    assert (c1.loaded, c1.dispensed, c1.retracted, c1.remaining) == (200, 2, 2, 196)
    rows = again.balancing(
        [
            CassetteStatus(0, 2000, 499, CassetteState.OK),
            CassetteStatus(1, 5000, 196, CassetteState.OK),
        ]
    )
    assert [row.difference for row in rows] == [0, 0]
    assert not again.ensure_loaded([TWENTY, FIFTY])  # nothing new


def test_damaged_counters_file_is_a_clear_error(tmp_path):
    from device.cash import CashCounters

    path = tmp_path / "cash.json"
    path.write_text("{not json")
    with pytest.raises(CashError, match="damaged"):
        CashCounters(path)


def test_levels_and_reserve():
    from device.cash import Level, cassette_level, usable_cassettes

    low = CassetteStatus(0, 2000, 30, CassetteState.OK)
    assert cassette_level(low, near_empty_notes=50, empty_notes=0) is Level.NEAR_EMPTY
    assert cassette_level(low, near_empty_notes=10, empty_notes=30) is Level.EMPTY
    missing = CassetteStatus(1, 5000, 100, CassetteState.MISSING)
    assert cassette_level(missing, 50, 0) is Level.OUT_OF_ORDER
    (usable,) = usable_cassettes([low, missing], empty_notes=10)
    assert usable.count == 20


def test_mix_keeps_small_notes_when_note_counts_tie():
    small = CassetteStatus(0, 1000, 5, CassetteState.OK)
    twenty = CassetteStatus(1, 2000, 50, CassetteState.OK)
    # $40 as 2 x $20 rather than 4 x $10 (fewest notes), and $10s stay.
    assert mix_notes(4000, [small, twenty]) == {1: 2}


def test_a_keyed_booking_counts_once_even_across_a_reload(tmp_path):
    """Issue 12 item 5: recovery replays the journal's steps of the interrupted withdrawal;
    a step the counters already booked (saved just before the kill) is not booked again."""
    path = tmp_path / "cash.json"
    counters = CashCounters(path)
    counters.cassettes = {1: CassetteCounters(5000, loaded=200)}
    assert counters.add("dispensed", {1: 2}, key="000002:dispensed")
    again = CashCounters(path)  # the restarted process
    assert not again.add("dispensed", {1: 2}, key="000002:dispensed")
    assert again.move({1: 2}, "dispensed", "retracted", key="000002:retracted")
    assert CashCounters(path).cassettes[1] == CassetteCounters(5000, 200, 0, 0, 2)
