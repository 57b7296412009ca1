"""MAC placement and verification on encoded messages."""

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol.errors import LocalProtocolError, MacError
from protocol.framing import Framer, encode_frame
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


@pytest.mark.parametrize("scheme", list(KeyScheme))
def test_any_changed_byte_breaks_the_mac(scheme):
    """Every byte of a MAC'd 0200 set to every other printable value, one at a time: each
    change that still decodes is refused by the MAC check. The one exception is the MAC's own
    hex digit in the other case: that is the same MAC, and a lower-case MAC verifies
    (test_a_mac_in_lower_case_hex_still_verifies)."""
    payload = encode_signed(WITHDRAWAL, scheme, KEY)
    checked = 0
    for index, original in enumerate(payload):
        in_mac = index >= len(payload) - 16
        for value in range(0x20, 0x7F):
            if value == original or (in_mac and chr(value).upper() == chr(original).upper()):
                continue
            changed = payload[:index] + bytes([value]) + payload[index + 1 :]
            try:
                message = decode(changed)
            except Exception:
                continue  # no longer a message at all: never reaches the MAC check
            with pytest.raises(MacError):
                verify_signed(changed, message, scheme, KEY)
            checked += 1
    assert checked > len(payload) * 10  # most changes still decode and reach the MAC check


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


def _fresh_mac(scheme: KeyScheme, key: bytes, data: bytes) -> bytes:
    """The MAC as the textbook computes it, with new cipher contexts for this call only."""
    if scheme is KeyScheme.AES:
        mac = cmac.CMAC(algorithms.AES(key))
        mac.update(data)
        return mac.finalize()[:8]
    padded = data + b"\x80" + bytes(-(len(data) + 1) % 8)
    cbc = Cipher(TripleDES(key[:8] * 3), modes.CBC(bytes(8))).encryptor()
    last = (cbc.update(padded) + cbc.finalize())[-8:]
    last = Cipher(TripleDES(key[8:] * 3), modes.ECB()).decryptor().update(last)
    return Cipher(TripleDES(key[:8] * 3), modes.ECB()).encryptor().update(last)


@pytest.mark.parametrize("scheme", list(KeyScheme))
def test_cached_mac_contexts_give_the_fresh_mac_and_refuse_a_tampered_frame(scheme):
    codec = TerminalCodec(scheme, KEY)
    codec.set_mac_key(KEY)
    for stan in range(1, 6):  # the same kept context, message after message
        payload = codec.encode({**WITHDRAWAL, "11": f"{stan:06d}"})
        assert payload[-16:] == _fresh_mac(scheme, KEY, payload[:-16]).hex().upper().encode()
        assert codec.decode(payload)["11"] == f"{stan:06d}"
    # The amount changed in flight (DE 4 sits just before the MAC input's end): refused.
    tampered = payload.replace(b"000000010000", b"000000090000")
    assert tampered != payload
    with pytest.raises(MacError, match="does not verify"):
        codec.decode(tampered)
    # A MAC of the right message under another key: refused.
    other = encode_signed(WITHDRAWAL, scheme, bytes(reversed(KEY)))
    with pytest.raises(MacError, match="does not verify"):
        codec.decode(other)


@pytest.mark.parametrize("scheme", list(KeyScheme))
def test_a_mac_in_lower_case_hex_still_verifies(scheme):
    payload = encode_signed(WITHDRAWAL, scheme, KEY)
    lower = payload[:-16] + payload[-16:].lower()
    verify_signed(lower, decode(lower), scheme, KEY)


# The 0200 of bench/bench_link_codec.py as it goes on the wire, both schemes: the MACs were
# checked with tests/host/independent_client.py (retail MAC written out block by block, CMAC
# from cryptography), which imports nothing of ours.
BENCH_KEY = bytes.fromhex("F1E2D3C4B5A69788796A5B4C3D2E1F00")
BENCH_0200 = {
    "t": "0200",
    "2": "4000001234567899",
    "3": "012000",
    "4": "000000010000",
    "7": "1128120200",
    "11": "000004",
    "12": "120000",
    "13": "1128",
    "35": "4000001234567899=30121010000000000000",
    "41": "ATM00001",
    "42": "ATMSIM000000001",
    "49": "840",
    "52": "7886F2179A0694B3",
}
BENCH_0200_BODY = (
    b"02007238000020C09001164000001234567899012000000000010000112812020000000412000011283740"
    b"00001234567899=30121010000000000000ATM00001ATMSIM000000001840167886F2179A0694B3"
)


# The host's approval of that 0200 (fields echoed, RRN, auth code, DE 54 ledger and available
# balances), pinned the same way: body and MACs computed with tests/host/independent_client.py.
BENCH_0210 = {
    "t": "0210",
    "2": "4000001234567899",
    "3": "012000",
    "4": "000000010000",
    "7": "1128120200",
    "11": "000004",
    "12": "120000",
    "13": "1128",
    "37": "633312000004",
    "38": "A1B2C3",
    "39": "00",
    "41": "ATM00001",
    "42": "ATMSIM000000001",
    "49": "840",
    "54": "2001840C0000005150002002840C000000515000",
}
BENCH_0210_BODY = (
    b"0210723800000EC084011640000012345678990120000000000100001128120200000004120000112863331"
    b"2000004A1B2C300ATM00001ATMSIM0000000018400402001840C0000005150002002840C000000515000"
)


@pytest.mark.parametrize(
    ("message", "prefix", "body", "scheme", "mac"),
    [
        (BENCH_0200, "00B5", BENCH_0200_BODY, KeyScheme.TDES, b"60E778D6412E118C"),
        (BENCH_0200, "00B5", BENCH_0200_BODY, KeyScheme.AES, b"87DD74439361D8FB"),
        (BENCH_0210, "00BB", BENCH_0210_BODY, KeyScheme.TDES, b"B211991CA8133F05"),
        (BENCH_0210, "00BB", BENCH_0210_BODY, KeyScheme.AES, b"05277B8E3B722835"),
    ],
    ids=["0200-tdes", "0200-aes", "0210-tdes", "0210-aes"],
)
def test_the_framed_message_is_byte_for_byte_the_golden_vector(message, prefix, body, scheme, mac):
    wire = encode_frame(encode_signed(message, scheme, BENCH_KEY))
    assert wire == bytes.fromhex(prefix) + body + mac
    (frame,) = Framer().feed(wire)
    decoded = decode(frame)
    verify_signed(frame, decoded, scheme, BENCH_KEY)
    assert decoded == {**message, "64": mac.decode()}
