"""Restart recovery from the journal (pure: journal records + cassette counts in, plan out)."""

import datetime as dt
from typing import Any

import pytest

from device.journal import Journal, JournalRecord, read_records
from device.recovery import find_unfinished, format_notes, parse_notes
from drivers.interfaces import CassetteState, CassetteStatus

REQUEST = dict(
    stan="000042",
    type="WITHDRAWAL",
    mti="0200",
    proc="012000",
    amount=10000,
    time="1128101010",
    currency="840",
    acceptor="ATMSIM000000001",
    pan="400000******7899",
)


def cassettes(twenties: int = 500, fifties: int = 200) -> list[CassetteStatus]:
    return [
        CassetteStatus(0, 2000, twenties, CassetteState.OK),
        CassetteStatus(1, 5000, fifties, CassetteState.OK),
    ]


@pytest.fixture
def journal(tmp_path):
    clock = lambda: dt.datetime(2026, 11, 28, 10, 10, 10, tzinfo=dt.UTC)  # noqa: E731
    j = Journal(tmp_path / "journal.log", "ATM00001", clock)
    yield j
    j.close()


def write(journal: Journal, *events: tuple[str, dict[str, Any]]) -> list[JournalRecord]:
    for event, fields in events:
        journal.write(event, **fields)
    return read_records(journal.path)


def approved(journal: Journal, *more: tuple[str, dict[str, Any]]) -> list[JournalRecord]:
    return write(
        journal,
        ("TXN_REQUEST", REQUEST),
        ("TXN_RESPONSE", {"stan": "000042", "code": "00", "rrn": "1"}),
        *more,
    )


START = (
    "DISPENSE_START",
    {"stan": "000042", "amount": 10000, "notes": "1:2", "before": "0:500,1:200"},
)


def test_notes_round_trip():
    assert parse_notes(format_notes({1: 2, 0: 3})) == {0: 3, 1: 2}
    assert format_notes({}) == "-" and parse_notes("-") == {}


def test_approved_but_never_dispensed(journal):
    (item,) = find_unfinished(approved(journal), cassettes())
    assert (item.dispensed_cents, item.reason) == (0, "4017")
    assert item.original == {
        "t": "0200",
        "3": "012000",
        "4": "000000010000",
        "7": "1128101010",
        "11": "000042",
        "41": "ATM00001",
        "42": "ATMSIM000000001",
        "49": "840",
    }


def test_killed_during_dispense_before_any_note(journal):
    (item,) = find_unfinished(approved(journal, START), cassettes())
    assert (item.dispensed_cents, item.reason, item.counted_out) == (0, "4017", {})


def test_killed_during_dispense_after_one_note(journal):
    (item,) = find_unfinished(approved(journal, START), cassettes(fifties=199))
    assert (item.dispensed_cents, item.reason, item.counted_out) == (5000, "4004", {1: 1})


def test_killed_after_all_notes_counted_needs_no_reversal(journal):
    (item,) = find_unfinished(approved(journal, START), cassettes(fifties=198))
    assert not item.needs_reversal


def test_dispense_fault_not_yet_reversed(journal):
    fault = ("DISPENSE_FAULT", {"stan": "000042", "code": "jam", "dispensed": 5000})
    (item,) = find_unfinished(approved(journal, START, fault), cassettes(fifties=199))
    assert (item.dispensed_cents, item.reason) == (5000, "4004")


def test_retracted_but_not_reversed(journal):
    result = ("DISPENSE_RESULT", {"stan": "000042", "dispensed": 10000})
    retract = ("CASH_RETRACTED", {"stan": "000042", "notes": 2})
    (item,) = find_unfinished(approved(journal, START, result, retract), cassettes(fifties=198))
    assert (item.dispensed_cents, item.reason) == (0, "4018")


def test_presented_outcome_unknown_counts_as_taken(journal):
    result = ("DISPENSE_RESULT", {"stan": "000042", "dispensed": 10000})
    (item,) = find_unfinished(approved(journal, START, result), cassettes(fifties=198))
    assert not item.needs_reversal


@pytest.mark.parametrize(
    "tail",
    [
        [("DISPENSE_RESULT", {"stan": "000042"}), ("CASH_TAKEN", {"stan": "000042"})],
        [("REVERSAL_QUEUED", {"stan": "000042", "dispensed": 0, "reason": "4017"})],
        [("RECOVERY_NO_REVERSAL", {"stan": "000042"})],
    ],
)
def test_finished_or_already_reversed_is_left_alone(journal, tail):
    assert find_unfinished(approved(journal, START, *tail), cassettes(fifties=198)) == []


def test_declined_and_non_cash_requests_are_ignored(journal):
    records = write(
        journal,
        ("TXN_REQUEST", REQUEST),
        ("TXN_RESPONSE", {"stan": "000042", "code": "51"}),
        ("TXN_REQUEST", {**REQUEST, "stan": "000043", "proc": "302000", "mti": "0100"}),
        ("TXN_RESPONSE", {"stan": "000043", "code": "00"}),
    )
    assert find_unfinished(records, cassettes()) == []


def test_stopped_while_waiting_for_the_host(journal):
    (item,) = find_unfinished(write(journal, ("TXN_REQUEST", REQUEST)), cassettes())
    assert (item.dispensed_cents, item.reason) == (0, "4021")
    timed_out = ("TXN_NO_RESPONSE", {"stan": "000042", "error": "timeout"})
    assert find_unfinished(write(journal, timed_out), cassettes()) == []


def test_interrupted_dispense_on_a_dispenser_without_physical_counts_is_a_suspect():
    """Issue 12 item 2: the LCDM driver lowers its counts only when a reply arrives, so after a
    kill mid-dispense its counts say nothing left even if the customer took the notes. A
    reversal would give the bank's money away: it is a suspect for the operator."""
    records = [
        JournalRecord(
            event="TXN_REQUEST", stan="000002", mti="0200", proc="011000", amount="10000",
            time="1128120000", terminal="ATM00001", acceptor="ATMSIM000000001", currency="840",
        ),
        JournalRecord(event="TXN_RESPONSE", stan="000002", code="00"),
        JournalRecord(event="DISPENSE_START", stan="000002", notes="1:2", before="0:500,1:200"),
    ]  # fmt: skip
    now = [
        CassetteStatus(0, 2000, 500, CassetteState.OK),
        CassetteStatus(1, 5000, 200, CassetteState.OK),
    ]
    (physical,) = find_unfinished(records, now)
    assert physical.needs_reversal and physical.reason == "4017"
    (lcdm,) = find_unfinished(records, now, counts_physical=False)
    assert lcdm.suspect and not lcdm.needs_reversal


TRANSFER = {**REQUEST, "stan": "000044", "type": "TRANSFER", "proc": "402010"}


def test_transfer_stopped_while_waiting_for_the_host_is_reversed_like_a_withdrawal(journal):
    """One policy (device.reversal_policy) for the live link and for recovery: a transfer the
    controller sent and never heard about is reversed in full (4021)."""
    (item,) = find_unfinished(write(journal, ("TXN_REQUEST", TRANSFER)), cassettes())
    assert (item.stan, item.dispensed_cents, item.reason) == ("000044", 0, "4021")
    assert item.original["3"] == "402010" and item.needs_reversal
    # Reversed by the link before the controller died (REVERSAL_QUEUED by=link): not again.
    queued = ("REVERSAL_QUEUED", {"stan": "000044", "by": "link"})
    assert find_unfinished(write(journal, queued), cassettes()) == []


def test_approved_or_declined_transfer_needs_nothing(journal):
    for code in ("00", "51"):
        records = write(
            journal,
            ("TXN_REQUEST", {**TRANSFER, "stan": f"0001{code}"}),
            ("TXN_RESPONSE", {"stan": f"0001{code}", "code": code, "rrn": "1"}),
        )
        assert find_unfinished(records, cassettes()) == []


@pytest.mark.parametrize(
    ("mti", "proc", "reversed_"),
    [
        ("0200", "012000", True),
        ("0200", "402010", True),
        ("0200", "702000", False),
        ("0100", "302000", False),
    ],
)
def test_link_and_recovery_share_one_policy(journal, mti, proc, reversed_):
    from device.reversal_policy import reversed_when_unanswered

    assert reversed_when_unanswered(mti, proc) is reversed_
    request = {**REQUEST, "stan": "000050", "mti": mti, "proc": proc}
    plan = find_unfinished(write(journal, ("TXN_REQUEST", request)), cassettes())
    assert bool(plan) is reversed_
