"""Damaged store-and-forward files (issue 12 items 8 and 9)."""

from __future__ import annotations

import pytest

from device.saf import SafDamaged, SafQueue
from tests.device.test_saf import ORIGINAL


def test_a_torn_tail_is_cut_before_the_next_record(tmp_path):
    """The issue's case: after a torn last line the next record was appended onto it, and
    the start after that failed until the file was fixed by hand."""
    path = tmp_path / "saf.jsonl"
    queue = SafQueue(path)
    assert queue.add(ORIGINAL, 0, "4018", "1128120100")
    with path.open("a") as f:
        f.write('{"op":"try","i')  # killed mid-write
    again = SafQueue(path)
    assert len(again) == 1
    second = dict(ORIGINAL, **{"11": "000043"})
    assert again.add(second, 0, "4017", "1128120200")
    third = SafQueue(path)  # the start after that
    assert [e.original["11"] for e in third.pending()] == ["000042", "000043"]
    assert '{"op":"try","i' in (tmp_path / "saf.jsonl.torn").read_text()


@pytest.mark.parametrize("garbage", [b"garbage", b"\xff\xfe", b'{"op":"add","id":"x"}', b"[1]"])
def test_damage_inside_names_file_and_line_and_loses_nothing(tmp_path, garbage):
    path = tmp_path / "saf.jsonl"
    queue = SafQueue(path)
    assert queue.add(ORIGINAL, 0, "4018", "1128120100")
    path.write_bytes(path.read_bytes() + garbage + b"\n" + b'{"op":"try","id":1}\n')
    with pytest.raises(SafDamaged) as caught:
        SafQueue(path)
    assert str(caught.value).startswith(f"store-and-forward file {path} line 2 is damaged (")
    SafQueue.accept_damage(caught.value)
    again = SafQueue(path)
    (entry,) = again.pending()
    assert entry.attempts == 1 and entry.original["11"] == "000042"
    assert garbage in path.read_bytes()  # kept, for the operator


def test_tolerant_queue_lists_the_damage_and_keeps_working(tmp_path):
    path = tmp_path / "saf.jsonl"
    queue = SafQueue(path)
    assert queue.add(ORIGINAL, 0, "4018", "1128120100")
    path.write_bytes(path.read_bytes() + b"garbage\n")
    path.write_bytes(path.read_bytes() + b'{"op":"try","id":1}\n')
    tolerant = SafQueue(path, tolerant=True)
    (damage,) = tolerant.damage
    assert damage.line == 2
    assert tolerant.pending()[0].attempts == 1
