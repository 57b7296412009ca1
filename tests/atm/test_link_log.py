"""``atm demo --link-log``: the decoded host-link messages on standard output (default), in a
file, or nowhere, so the screens stay readable; response codes carry their meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from atm.cli import main


@pytest.fixture(autouse=True)
def cheap_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("ENVIRONMENT", "testing")


def test_default_off_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--script", "balance-bob"]) == 0
    out = capsys.readouterr().out
    assert "-- ATM -> HOST  MTI 0100" in out
    assert "DE 39 Response Code                00 (Approved)" in out

    assert main(["demo", "--script", "balance-bob", "--link-log", "off"]) == 0
    out = capsys.readouterr().out
    assert "ATM -> HOST" not in out and "HOST -> ATM" not in out
    assert "available balance" in out  # the screens are all still there

    log = tmp_path / "link.log"
    assert main(["demo", "--script", "wrong-pin", "--link-log", str(log)]) == 0
    assert "ATM -> HOST" not in capsys.readouterr().out
    assert "DE 39 Response Code                55 (Incorrect PIN)" in log.read_text()


def test_an_unwritable_link_log_is_one_line(tmp_path: Path, capsys) -> None:
    target = tmp_path / "no-such-dir" / "link.log"
    assert main(["demo", "--link-log", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"atm demo: cannot write the link log {target}: No such file or directory\n"
