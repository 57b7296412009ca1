"""MAC placement and verification on encoded messages."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError, MacError
from protocol.mac import TerminalCodec, encode_signed, mac_field, uses_signon_key, verify_signed
from protocol.messages import decode, encode
from protocol.security import KeyScheme, compute_mac, signon_mac_key

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
ECHO = {"t": "0800", "7": "1128120000", "11": "000001", "41": "ATM00001", "70": "301"}
WITHDRAWAL = {
    "t": "0200",
    "3": "012000",
    "4": "000000010000",
    "7": "1128120000",
    "11": "000002",
    "41": "ATM00001",
    "49": "840",
}


@pytest.mark.parametrize("scheme", list(KeyScheme))
def test_mac_is_over_everything_before_it(scheme):
    payload = encode_signed(WITHDRAWAL, scheme, KEY)
    message = decode(payload)
    assert message["64"] == compute_mac(scheme, KEY, payload[:-16])
    verify_signed(payload, message, scheme, KEY)


def test_mac_goes_in_128_with_a_secondary_bitmap():
    assert mac_field(WITHDRAWAL) == "64"
    assert mac_field(ECHO) == "128"
    message = decode(encode_signed(ECHO, KeyScheme.TDES, KEY))
    assert "128" in message and "64" not in message


def test_missing_and_misplaced_macs_are_refused():
    plain = encode(WITHDRAWAL)
    with pytest.raises(MacError, match="no MAC"):
        verify_signed(plain, decode(plain), KeyScheme.TDES, KEY)
    misplaced = encode({**ECHO, "64": "0" * 16})
    with pytest.raises(MacError, match="secondary bitmap"):
        verify_signed(misplaced, decode(misplaced), KeyScheme.TDES, KEY)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_changed_byte_breaks_the_mac(data):
    payload = bytearray(encode_signed(WITHDRAWAL, KeyScheme.AES, KEY))
    index = data.draw(st.integers(0, len(payload) - 1))
    value = data.draw(st.integers(0x20, 0x7E).filter(lambda v: v != payload[index]))
    payload[index] = value
    try:
        message = decode(bytes(payload))
    except Exception:
        return  # no longer a message at all: never reaches the MAC check
    with pytest.raises(MacError):
        verify_signed(bytes(payload), message, KeyScheme.AES, KEY)


def test_terminal_codec_uses_signon_key_then_tak():
    codec = TerminalCodec(KeyScheme.TDES, KEY)
    sign_on = {**ECHO, "70": "001", "48": "T"}
    assert uses_signon_key(sign_on) and not uses_signon_key(ECHO)
    payload = codec.encode(sign_on)
    verify_signed(payload, decode(payload), KeyScheme.TDES, signon_mac_key(KeyScheme.TDES, KEY))
    with pytest.raises(LocalProtocolError):
        codec.encode(ECHO)
    with pytest.raises(MacError):
        codec.decode(encode_signed(ECHO, KeyScheme.TDES, KEY))
    codec.set_mac_key(KEY)
    assert codec.decode(codec.encode(ECHO))["70"] == "301"
