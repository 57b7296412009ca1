"""The store-and-forward file: what it keeps, repeats, torn lines, compaction."""

import pytest

from device.saf import SafError, SafQueue

ORIGINAL = {
    "t": "0200",
    "2": "4000001234567899",
    "3": "012000",
    "4": "000000010000",
    "7": "1128120000",
    "11": "000042",
    "35": "4000001234567899=30121010000000000000",
    "41": "ATM00001",
    "42": "ATMSIM000000001",
    "49": "840",
    "52": "0123456789ABCDEF",
}


def test_entry_keeps_only_what_an_advice_needs(tmp_path):
    queue = SafQueue(tmp_path / "saf.jsonl")
    entry = queue.add(ORIGINAL, 4_000, "4004", "1128120105")
    assert entry is not None
    text = (tmp_path / "saf.jsonl").read_text()
    for secret in ("4000001234567899", "0123456789ABCDEF", "=3012"):
        assert secret not in text
    advice = entry.advice()
    assert advice["t"] == "0420"
    assert advice["90"] == "0200" + "000042" + "1128120000" + "0" * 22
    assert advice["95"] == "000000004000000000004000C00000000C00000000"
    assert advice["60"] == "4004" and advice["7"] == "1128120105"
    assert "2" not in advice and "52" not in advice


def test_persisted_in_order_with_attempts_and_acks(tmp_path):
    path = tmp_path / "saf.jsonl"
    queue = SafQueue(path)
    first = queue.add(ORIGINAL, 0, "4018", "1128120100")
    second = queue.add({**ORIGINAL, "11": "000043"}, 0, "4021", "1128120101")
    assert first and second
    assert queue.add(dict(ORIGINAL), 0, "4006", "1128120102") is None  # same original
    queue.record_attempt(first.id)
    queue.close()
    again = SafQueue(path)
    assert [e.original["11"] for e in again.pending()] == ["000042", "000043"]
    head = again.head()
    assert head is not None and head.advice()["t"] == "0421"  # it may have reached the host
    again.acknowledge(head.id, "00")
    again.close()
    third = SafQueue(path)
    assert len(third) == 1 and third.contains(ORIGINAL)  # acknowledged: not queued again
    third.close()


def test_torn_last_line_is_ignored_and_empty_queue_compacted(tmp_path):
    path = tmp_path / "saf.jsonl"
    queue = SafQueue(path)
    entry = queue.add(ORIGINAL, 0, "4018", "1128120100")
    assert entry
    queue.acknowledge(entry.id, "00")
    queue.close()
    with path.open("a") as f:
        f.write('{"op":"add","id":9,"orig')  # killed mid-write
    again = SafQueue(path)
    assert len(again) == 0
    assert path.read_text() == ""
    again.close()


def test_unreadable_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "saf.jsonl"
    path.write_text('garbage\n{"op":"ack","id":1,"code":"00"}\n')
    path.chmod(0o600)
    with pytest.raises(SafError, match="line 1 is damaged"):
        SafQueue(path)


def test_original_without_required_fields_is_refused(tmp_path):
    queue = SafQueue(tmp_path / "saf.jsonl")
    with pytest.raises(SafError):
        queue.add({"t": "0200", "11": "000001"}, 0, "4018", "1128120100")
    queue.close()
