"""``--trace``: the bytes on the devices' wires as hex dumps, redacted (no PAN, track data,
key or PIN block), from the real serial drivers and the simulators on pseudo-terminals."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from atm.cli import main
from atm.trace import TRACE_LOGGERS
from protocol.hexdump import parse_hexdump, redact

TRACK = b"4000001234567899=30121010000000000000"


def test_redact_hides_secrets_and_keeps_the_frame() -> None:
    frame = b"\xf2\x00\x2bQ;" + TRACK + b"?\x03"
    shown = redact(frame)
    assert b"4000" not in shown and b"7899" not in shown and b"3012" not in shown
    assert shown.startswith(b"\xf2\x00\x2bQ;*") and shown.endswith(b"*?\x03")
    assert len(shown) == len(frame)
    # A key and KCV as the PIN pad's load-key command carries them.
    load_key = b"\x02045" + b"33020" + b"0123456789ABCDEFFEDCBA9876543210ABCDEF" + b"\x0341"
    shown = redact(load_key)
    assert shown.startswith(b"\x02") and b"\x03" in shown and len(shown) == len(load_key)
    assert b"0123456789ABCDEF" not in shown and b"ABCDEF" not in shown
    # The end of a split chunk: the first part of a PAN is hidden too.
    assert redact(b"P1 40000012") == b"P1 ********"
    assert redact(b"C02") == b"C02"


@pytest.fixture
def quiet_trace_loggers() -> Iterator[None]:
    yield
    for name in TRACE_LOGGERS:  # enable_trace configured them for this process
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def test_demo_on_serial_devices_traces_redacted_bytes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], quiet_trace_loggers: None
) -> None:
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("ENVIRONMENT", "testing")
    assert main(["demo", "--devices", "serial", "--trace", "--link-log", "off"]) == 0
    err = capsys.readouterr().err
    assert "driver -> /dev/pts/" in err and "sim <- CardReaderSimulator" in err
    assert "sim -> PinPadSimulator" in err and "sim -> DispenserSimulator" in err
    # The receipt printer's bytes carry the PAN masked as on paper (400000******7899);
    # nothing carries it whole, nor the track's expiry and service data.
    for secret in ("4000001234567899", "1234567899", "=3012", "30121010"):
        assert secret not in err
    # The dumps are in the one format atm link decode reads back.
    data = parse_hexdump(err)
    assert data is not None and b"4000001234567899" not in data
