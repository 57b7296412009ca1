"""The physical models (``drivers.physical``) on their own: their state survives a reload of
the file they own, a half-written file is never taken for a state, and no note is created or
lost whatever sequence of moves happens, with restarts in between."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.physical import (
    AcceptorNotes,
    CardSlot,
    Cassette,
    DispenserNotes,
    EnvelopeBin,
    PaperRoll,
)
from drivers.statefile import StateFileError

LOAD = [(2000, 100), (5000, 50)]


def _notes(path: Path | None) -> DispenserNotes:
    return DispenserNotes([Cassette(d, n) for d, n in LOAD], path)


def _loaded_minus_left(notes: DispenserNotes, index: int) -> int:
    return LOAD[index][1] - notes.cassettes[index].count


def test_dispenser_notes_survive_a_reload(tmp_path):
    path = tmp_path / "dispenser.json"
    notes = _notes(path)
    notes.pick(0, 3, rejected=1)  # a double note: two reach the tray, one the reject bin
    notes.pick(1, 2)
    assert notes.take() == {0: 2, 1: 2}
    notes.pick(1, 1)
    again = _notes(path)
    assert again.snapshot() == notes.snapshot()
    assert [c.count for c in again.cassettes] == [97, 47]
    assert (again.tray, again.reject_bin, again.taken) == ({1: 1}, {0: 1}, {0: 2, 1: 2})
    assert again.retract() == {1: 1}
    third = _notes(path)
    assert third.retracted == 1 and third.reject_bin == {0: 1, 1: 1} and not third.in_tray()


def test_the_configured_near_end_level_outlives_a_reload(tmp_path):
    path = tmp_path / "dispenser.json"
    DispenserNotes([Cassette(2000, 30, low_threshold=25)], path).pick(0, 6)
    again = DispenserNotes([Cassette(2000, 30, low_threshold=25)], path)
    assert again.cassettes[0].count == 24 and again.cassettes[0].state == "low"


def test_a_step_that_fails_half_way_still_records_the_notes_that_moved(tmp_path):
    path = tmp_path / "dispenser.json"
    notes = _notes(path)
    with pytest.raises(RuntimeError), notes.change():
        notes.pick(0, 2)
        raise RuntimeError("jam after the first cassette")
    assert _notes(path).tray == {0: 2}


def test_a_half_written_state_file_is_not_trusted(tmp_path):
    path = tmp_path / "dispenser.json"
    _notes(path).pick(1, 2)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # the first half, as a torn write would leave
    with pytest.raises(StateFileError, match=r"dispenser\.json is damaged"):
        _notes(path)
    path.write_text('{"device": "dispenser", "cassettes": [{"denomination": 2000}]}')
    with pytest.raises(StateFileError, match=r"dispenser\.json is damaged"):
        _notes(path)


def test_a_write_cut_short_leaves_the_previous_state(tmp_path):
    """A crash in the middle of a save leaves a partial temporary file beside the state
    file; the state file itself still holds the state before that save."""
    path = tmp_path / "dispenser.json"
    _notes(path).pick(1, 2)
    before = path.read_bytes()
    path.with_name(path.name + ".tmp").write_bytes(before[:17])
    notes = _notes(path)
    assert notes.tray == {1: 2} and path.read_bytes() == before
    notes.take()
    assert json.loads(path.read_text())["taken"] == {"1": 2}
    assert _notes(path).taken == {1: 2}


def test_an_existing_state_file_keeps_loading(tmp_path):
    """A file as the first wave wrote it (no ``counted``) reads back, and a state written
    again has the same layout."""
    path = tmp_path / "dispenser.json"
    old: dict[str, Any] = {
        "cassettes": [
            {"count": 98, "denomination": 2000, "present": True},
            {"count": 50, "denomination": 5000, "present": False},
        ],
        "device": "dispenser",
        "reject_bin": {},
        "retracted": 0,
        "taken": {"0": 2},
        "tray": {},
    }
    path.write_text(json.dumps(old, indent=1, sort_keys=True))
    notes = _notes(path)
    assert notes.cassettes[1].state == "missing" and notes.taken == {0: 2}
    notes.pick(0, 1)
    notes.take()
    written = json.loads(path.read_text())
    assert written == {
        **old,
        "cassettes": [{**old["cassettes"][0], "count": 97}, old["cassettes"][1]],
        "taken": {"0": 3},
    }


moves = st.lists(
    st.one_of(
        st.tuples(st.just("pick"), st.integers(0, 1), st.integers(0, 12), st.integers(0, 2)),
        st.tuples(st.just("take")),
        st.tuples(st.just("retract")),
        st.tuples(st.just("restart")),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(moves)
def test_dispensed_notes_are_conserved_across_restarts(steps):
    """Notes loaded = notes in the cassettes + exit tray + reject bin + taken, after any
    sequence of picks (with double notes), takes, retracts and restarts."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dispenser.json"
        notes = _notes(path)
        for step in steps:
            if step[0] == "pick":
                _, index, count, rejected = step
                count = min(count, notes.cassettes[index].count)
                notes.pick(index, count, rejected=min(rejected, count))
            elif step[0] == "take":
                notes.take()
            elif step[0] == "retract":
                notes.retract()
            else:
                notes = _notes(path)
            for index in range(len(LOAD)):
                assert notes.accounted(index) == _loaded_minus_left(notes, index)
        assert _notes(path).snapshot() == notes.snapshot()


deposits = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["hold", "refuse", "jam"]), st.sampled_from([500, 2000, 10000])),
        st.tuples(
            st.sampled_from(
                ["stack", "jam_escrow", "return", "take_returned", "clear_jam", "restart"]
            )
        ),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(deposits)
def test_inserted_notes_are_conserved_across_restarts(steps):
    """Every note inserted is in escrow, the stacker, jammed, at the entrance or taken back
    (or with the engineer who cleared a jam), whatever happens."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "acceptor.json"
        notes = AcceptorNotes(state_path=path)
        inserted: list[int] = []
        cleared: list[int] = []
        for step in steps:
            if step[0] in ("hold", "refuse", "jam"):
                getattr(notes, step[0])(step[1])
                inserted.append(step[1])
            elif step[0] == "stack":
                while notes.escrow:
                    notes.stack_next()
            elif step[0] == "jam_escrow":
                notes.jam_escrow()
            elif step[0] == "return":
                notes.return_escrow()
            elif step[0] == "take_returned":
                notes.take_returned()
            elif step[0] == "clear_jam":
                cleared += notes.clear_jam()
            else:
                notes = AcceptorNotes(state_path=path)
            assert sorted(notes.inserted() + cleared) == sorted(inserted)
        assert AcceptorNotes(state_path=path).snapshot() == notes.snapshot()


def test_acceptor_notes_survive_a_reload_and_the_stacker_fills(tmp_path):
    path = tmp_path / "acceptor.json"
    notes = AcceptorNotes(stacker_capacity=2, state_path=path)
    for cents in (10000, 5000, 2000):
        notes.hold(cents)
    with notes.change():
        assert [notes.stack_next(), notes.stack_next()] == [10000, 5000]
    again = AcceptorNotes(stacker_capacity=2, state_path=path)
    assert again.escrow == [2000] and again.stacked_cents() == 15000 and again.stacker_full()
    assert again.return_escrow() == [2000]
    assert AcceptorNotes(state_path=path).at_entrance == [2000]


def test_card_slot_and_envelope_bin_survive_a_reload(tmp_path):
    slot = CardSlot(tmp_path / "reader.json")
    slot.move("inside", "400000******7899")
    assert CardSlot(tmp_path / "reader.json").card == "400000******7899"
    slot.capture("400000******7899")
    again = CardSlot(tmp_path / "reader.json")
    assert (again.position, again.card, again.captured) == ("none", "", ["400000******7899"])

    EnvelopeBin(tmp_path / "bin.json").drop("ATM00001 CHK 1042")
    assert EnvelopeBin(tmp_path / "bin.json").envelopes == ["ATM00001 CHK 1042"]


def test_the_paper_roll_keeps_each_printers_file_layout_and_reads_the_other(tmp_path):
    """The in-process printer writes lines left and receipts printed, the ESC/POS simulator
    dots left, as before; each reads what the other wrote."""
    lines_path, dots_path = tmp_path / "printer.json", tmp_path / "escpos.json"
    roll = PaperRoll(10 * 30, lines_path, layout="lines")
    roll.feed(8 * 30)
    roll.cut()
    assert json.loads(lines_path.read_text()) == {
        "device": "printer",
        "paper_left": 2,
        "printed": 1,
    }
    dots = PaperRoll(3000 * 30, dots_path)
    dots.feed(45)
    dots.cut()
    assert json.loads(dots_path.read_text()) == {"device": "printer", "paper_dots": 89955}
    assert PaperRoll(0, lines_path).dots == 60 and PaperRoll(0, lines_path).at_most(60)
    assert PaperRoll(0, dots_path, layout="lines").lines_left() == 2998
    lines_path.write_text('{"device": "printer", "paper_left": null, "printed": 4}')
    endless = PaperRoll(300, lines_path, layout="lines")
    endless.feed(10**6)
    assert endless.lines_left() is None and not endless.at_most(0) and endless.printed == 4


def test_a_model_without_a_file_writes_nothing(tmp_path):
    notes = _notes(None)
    notes.pick(0, 1)
    notes.take()
    assert notes.taken == {0: 1} and list(tmp_path.iterdir()) == []


def test_a_pick_cannot_reject_more_notes_than_it_picked():
    with pytest.raises(ValueError, match="cannot reject 3 of 2"):
        _notes(None).pick(0, 2, rejected=3)
