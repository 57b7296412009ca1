"""The journal's records carry a checksum (issue 12 item 4): a torn or unreadable record is
never read as data; a torn tail is absent and cut off before the next append; any other
damaged line names the file and line, and the operator can accept it without losing a thing
(item 9)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from device.journal import Journal, JournalDamaged, read_records, seal
from device.recovery import find_unfinished
from drivers.interfaces import CassetteState, CassetteStatus

T = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
NOW = [
    CassetteStatus(0, 2000, 500, CassetteState.OK),
    CassetteStatus(1, 5000, 200, CassetteState.OK),
]


def _journal(path: Path) -> Journal:
    return Journal(path, "ATM00001", clock=lambda: T)


def _withdrawal_sent(journal: Journal) -> None:
    journal.write(
        "TXN_REQUEST", stan="000002", type="WITHDRAWAL", mti="0200", proc="011000",
        amount=10000, time="1128120000", currency="840", acceptor="ATMSIM000000001",
        pan="400000******7899",
    )  # fmt: skip


def test_every_line_carries_a_checksum(tmp_path):
    journal = _journal(tmp_path / "j.log")
    line = journal.write("STARTUP", state="out_of_service")
    assert line == seal("2026-11-28T12:00:00+00:00 | ATM00001 | STARTUP | state=out_of_service")
    assert line.rsplit(" | ", 1)[1].startswith("crc=")
    assert read_records(tmp_path / "j.log")[0]["state"] == "out_of_service"


def test_a_torn_response_is_absent_not_a_decline(tmp_path):
    """The issue's case: ``TXN_RESPONSE | stan=000002 | co`` used to read as a declined answer
    (no reversal; customer debited without cash). Torn, it is absent: the request is still
    unanswered, so recovery reverses it."""
    path = tmp_path / "j.log"
    journal = _journal(path)
    _withdrawal_sent(journal)
    journal.close()
    with path.open("ab") as f:
        f.write(b"2026-11-28T12:00:01+00:00 | ATM00001 | TXN_RESPONSE | stan=000002 | co")
    records = read_records(path)
    assert [r["event"] for r in records] == ["TXN_REQUEST"]
    (unfinished,) = find_unfinished(records, NOW)
    assert unfinished.stan == "000002" and unfinished.reason == "4021"


def test_a_torn_tail_is_cut_before_the_next_record(tmp_path):
    path = tmp_path / "j.log"
    journal = _journal(path)
    _withdrawal_sent(journal)
    journal.close()
    torn = b"2026-11-28T12:00:01+00:00 | ATM00001 | TXN_RESPONSE | stan=000002 | co"
    with path.open("ab") as f:
        f.write(torn)
    again = _journal(path)  # the restarted controller opens it
    again.write("STARTUP", state="out_of_service")
    again.close()
    assert [r["event"] for r in read_records(path)] == ["TXN_REQUEST", "STARTUP"]
    assert torn in (tmp_path / "j.log.torn").read_bytes()  # kept for the operator


def test_a_last_line_with_a_bad_checksum_is_torn(tmp_path):
    path = tmp_path / "j.log"
    journal = _journal(path)
    _withdrawal_sent(journal)
    journal.write("TXN_RESPONSE", stan="000002", code="00", rrn="1")
    journal.close()
    data = path.read_bytes()
    path.write_bytes(data[:-5] + b"0000\n")  # the last sector half written
    assert [r["event"] for r in read_records(path)] == ["TXN_REQUEST"]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda line: line.replace(b"amount=10000", b"amount=1O000"), "checksum mismatch"),
        (lambda line: line.replace(b"WITHDRAWAL", b"WITHDR\xffWAL"), "not UTF-8"),
        (lambda line: b"\x00garbage\x00", "no checksum"),
    ],
)
def test_damage_inside_names_file_and_line_and_can_be_accepted(tmp_path, damage, why):
    path = tmp_path / "j.log"
    journal = _journal(path)
    journal.write("STARTUP", state="out_of_service")
    _withdrawal_sent(journal)
    journal.write("SESSION_END", stan="000002")
    journal.close()
    lines = path.read_bytes().split(b"\n")
    lines[1] = damage(lines[1])
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalDamaged) as caught:
        read_records(path)
    assert str(caught.value) == f"journal {path} line 2 is damaged ({caught.value.why})"
    assert caught.value.why.startswith(why)
    # The operator accepts it: that line, and only that line, is skipped; it stays on disk.
    again = _journal(path)
    again.accept_damage(caught.value)
    events = [r["event"] for r in read_records(path)]
    assert events == ["STARTUP", "SESSION_END", "JOURNAL_DAMAGE_ACCEPTED"]
    assert lines[1] in path.read_bytes()
