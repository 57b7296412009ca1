"""Redaction of free text and of every log record (protocol.masking): track data, PANs, PIN
blocks and keys never reach a log line, whatever the caller passed; DeviceConfig's repr hides
the terminal master key."""

import logging

import pytest

import device  # noqa: F401 - importing a package installs the log redaction
from device.config import DeviceConfig
from protocol.masking import redact_text

TRACK = "4000001234567899=30121010000000000000"
PIN_BLOCK = "8B3A1F9C0D2E4B67"
KEY = "0123456789ABCDEFFEDCBA9876543210"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"read {TRACK} ok", "read 400000******7899=**** ok"),
        # In a bytes repr the PAN may follow an escape's digits: still masked in the middle.
        ("b'\\x024000001234567899'", "b'\\x024000********7899'"),
        (f"block {PIN_BLOCK}", "block [hex redacted]"),
        (f"key={KEY}", "key=[hex redacted]"),
        ("reply b'\\x8b\\x3a\\x1f\\x9c\\x0d\\x2e\\x4b\\x67'", "reply b'[binary redacted]'"),
        ("STAN 000042 amount 000000010000 DE 7 1130051000", None),
    ],
)
def test_redact_text(text: str, kept: str | None) -> None:
    assert redact_text(text) == (text if kept is None else kept)


def test_every_log_record_is_redacted_whatever_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("drivers.anything")
    with caplog.at_level(logging.DEBUG):
        logger.debug("stale reply %r", {"track": TRACK, "block": PIN_BLOCK})
        try:
            raise ValueError(f"bad track {TRACK}")
        except ValueError:
            logger.exception("failed with key %s", KEY)
    text = caplog.text
    for secret in ("4000001234567899", "30121010000000000000", PIN_BLOCK, KEY):
        assert secret not in text
    assert "400000******7899" in text and "ValueError" in text


def test_device_config_repr_hides_the_master_key() -> None:
    config = DeviceConfig(terminal_master_key="F1E2D3C4B5A69788796A5B4C3D2E1F00")
    assert "F1E2D3C4B5A69788796A5B4C3D2E1F00" not in repr(config)
    assert config.master_key == bytes.fromhex("F1E2D3C4B5A69788796A5B4C3D2E1F00")
