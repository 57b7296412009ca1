"""PIN blocks: ISO 9564 format 0 under a TDES terminal PIN key (TPK), and ISO 9564 format 4
under an AES-128 TPK.

Format 0: PIN field ``0 || len || PIN || F...`` (16 hex digits) XOR PAN field ``0000 || 12
rightmost PAN digits excluding the check digit``. The clear block exists only inside the PIN pad
(or its simulator) and in the host's verification step; everything else carries ciphertext.

Format 4 (AES, 16 bytes): PIN field ``4 || len || PIN || A... (to 16 nibbles) || 16 random
nibbles``; PAN field ``M || PAN (left-padded with 0 to 12 digits) || 0...`` (32 nibbles,
M = PAN length - 12, 0 when shorter); block = AES(K, AES(K, PIN field) XOR PAN field).
"""

from __future__ import annotations

import secrets

from protocol.errors import PinBlockError
from protocol.security import aes_ecb, tdes_ecb

__all__ = [
    "clear_format0",
    "clear_format4",
    "decrypt_format0",
    "decrypt_format4",
    "decrypt_pin_block",
    "encrypt_format0",
    "encrypt_format4",
    "pin_from_clear_format0",
]


def _tdes(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    # The cipher lives in protocol.security; a wrong key here is a PIN block error.
    if len(key) not in (16, 24):
        raise PinBlockError(f"a TDES key is 16 or 24 bytes, got {len(key)}")
    return tdes_ecb(key, block, decrypt=decrypt)


def _pan_field(pan: str) -> bytes:
    if not pan.isdigit() or not 13 <= len(pan) <= 19:
        raise PinBlockError("PAN must be 13 to 19 digits")
    return bytes.fromhex("0000" + pan[-13:-1])


def clear_format0(pin: str, pan: str) -> bytes:
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise PinBlockError("PIN must be 4 to 12 digits")
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    return bytes(a ^ b for a, b in zip(pin_field, _pan_field(pan), strict=True))


def pin_from_clear_format0(block: bytes, pan: str) -> str:
    if len(block) != 8:
        raise PinBlockError(f"a format 0 PIN block is 8 bytes, got {len(block)}")
    pin_field = bytes(a ^ b for a, b in zip(block, _pan_field(pan), strict=True)).hex().upper()
    if pin_field[0] != "0":
        raise PinBlockError("not a format 0 PIN block")
    length = int(pin_field[1], 16)
    pin, pad = pin_field[2 : 2 + length], pin_field[2 + length :]
    if not 4 <= length <= 12 or not pin.isdigit() or set(pad) - {"F"}:
        raise PinBlockError("PIN block does not decode to a valid PIN")
    return pin


def encrypt_format0(pin: str, pan: str, key: bytes) -> bytes:
    return _tdes(key, clear_format0(pin, pan))


def decrypt_format0(block: bytes, pan: str, key: bytes) -> str:
    """Return the PIN. Only the host's verification step may call this."""
    if len(block) != 8:
        raise PinBlockError(f"a format 0 PIN block is 8 bytes, got {len(block)}")
    return pin_from_clear_format0(_tdes(key, block, decrypt=True), pan)


def _aes(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    if len(key) not in (16, 24, 32):
        raise PinBlockError(f"an AES key is 16, 24 or 32 bytes, got {len(key)}")
    return aes_ecb(key, block, decrypt=decrypt)


def _pan_field4(pan: str) -> bytes:
    if not pan.isdigit() or not 1 <= len(pan) <= 19:
        raise PinBlockError("PAN must be 1 to 19 digits")
    return bytes.fromhex((str(max(0, len(pan) - 12)) + pan.rjust(12, "0")).ljust(32, "0"))


def clear_format4(pin: str, random_fill: bytes | None = None) -> bytes:
    """The plain-text PIN field of format 4 (``random_fill``: 8 bytes, random by default)."""
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise PinBlockError("PIN must be 4 to 12 digits")
    fill = secrets.token_bytes(8) if random_fill is None else random_fill
    if len(fill) != 8:
        raise PinBlockError("format 4 random fill is 8 bytes")
    return bytes.fromhex(f"4{len(pin):X}{pin}".ljust(16, "A")) + fill


def encrypt_format4(pin: str, pan: str, key: bytes, random_fill: bytes | None = None) -> bytes:
    intermediate = _aes(key, clear_format4(pin, random_fill))
    return _aes(key, bytes(a ^ b for a, b in zip(intermediate, _pan_field4(pan), strict=True)))


def decrypt_format4(block: bytes, pan: str, key: bytes) -> str:
    """Return the PIN. Only the host's verification step may call this."""
    if len(block) != 16:
        raise PinBlockError(f"a format 4 PIN block is 16 bytes, got {len(block)}")
    intermediate = _aes(key, block, decrypt=True)
    xored = bytes(a ^ b for a, b in zip(intermediate, _pan_field4(pan), strict=True))
    field = _aes(key, xored, decrypt=True).hex().upper()[:16]
    if field[0] != "4":
        raise PinBlockError("not a format 4 PIN block")
    length = int(field[1], 16)
    pin, fill = field[2 : 2 + length], field[2 + length :]
    if not 4 <= length <= 12 or not pin.isdigit() or set(fill) - {"A"}:
        raise PinBlockError("PIN block does not decode to a valid PIN")
    return pin


def decrypt_pin_block(block: bytes, pan: str, key: bytes, fmt: int = 0) -> str:
    """Return the PIN from an encrypted PIN block of format ``fmt`` (0: TDES, 4: AES). Only
    the host's verification step may call this."""
    if fmt == 0:
        return decrypt_format0(block, pan, key)
    if fmt == 4:
        return decrypt_format4(block, pan, key)
    raise PinBlockError(f"PIN block format {fmt} is not supported")
