import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from protocol.errors import PinBlockError
from protocol.pinblock import (
    clear_format0,
    decrypt_format0,
    encrypt_format0,
    pin_from_clear_format0,
)
from protocol.security import KeyScheme, key_check_value

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def test_clear_block_golden_vector():
    # Cross-checked public vector (REFERENCE.md): PIN 1234, PAN 4761739001010010.
    assert clear_format0("1234", "4761739001010010").hex().upper() == "041223C6FFEFEFFE"


def test_encrypted_block_golden_vector():
    encrypted = encrypt_format0("1234", "4761739001010010", KEY)
    assert encrypted.hex().upper() == "621F91F5470F2CFE"
    # The same value computed straight from `cryptography` with the K1K2K1 form of the key.
    direct = Cipher(TripleDES(KEY + KEY[:8]), modes.ECB()).encryptor()
    assert encrypted == direct.update(bytes.fromhex("041223C6FFEFEFFE")) + direct.finalize()


def test_round_trip_and_pan_binding():
    block = encrypt_format0("987654", "4000001234567899", KEY)
    assert decrypt_format0(block, "4000001234567899", KEY) == "987654"
    with pytest.raises(PinBlockError):
        decrypt_format0(block, "4000009876543219", KEY)


def test_bad_inputs():
    with pytest.raises(PinBlockError):
        clear_format0("12", "4000001234567899")
    with pytest.raises(PinBlockError):
        clear_format0("1234", "12")
    with pytest.raises(PinBlockError):
        pin_from_clear_format0(b"\xff" * 8, "4000001234567899")
    with pytest.raises(PinBlockError):
        encrypt_format0("1234", "4000001234567899", b"short")


def test_key_check_value():
    # Widely published KCV of this test key.
    assert key_check_value(KeyScheme.TDES, KEY) == "08D7B4"
