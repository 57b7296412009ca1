"""Link security, sans-IO: the one home of the project's cryptography. Key schemes, the block
ciphers (TDES-ECB, AES-ECB), MACs, key check values, key wrapping and unwrapping (also as a PIN
pad loads a working key), and the key block that carries working keys at sign-on. PIN blocks
(``protocol.pinblock``) encrypt with the ciphers here.

Two key schemes, chosen per terminal (``docs/protocol.md`` section "Security"):

* ``T`` (TDES): double-length TDES keys; PIN blocks ISO 9564 format 0; MAC ISO/IEC 9797-1
  MAC algorithm 3 (retail MAC) with padding method 2; working keys encrypted under the
  terminal master key (TMK) with TDES-ECB; KCV = TDES(K, 00..00)[:3].
* ``A`` (AES): AES-128 keys; PIN blocks ISO 9564 format 4; MAC AES-CMAC (NIST SP 800-38B)
  truncated to its leftmost 8 bytes; working keys wrapped under the TMK with AES key wrap
  (RFC 3394); KCV = AES-CMAC(K, 00..00 (16 bytes))[:3].

Every MAC is 8 bytes and travels as 16 upper-case hex characters. Sign-on and key-change
messages (0800/0810 with DE 70 = 001 or 161) are MAC'd under the sign-on key, derived from the
TMK by encrypting the 16 ASCII bytes ``SIGNON-MAC-KEY-1`` under it (TDES-ECB or AES-ECB); every
other message under the terminal MAC key (TAK) delivered at sign-on.

Only ``cryptography`` primitives are used, and single DES from the system's OpenSSL
(``protocol.libcrypto``) for the retail MAC, which ``cryptography`` can only run as TDES under
K1K1K1 (three DES operations a block where the algorithm needs one): where that library is
missing, the retail MAC runs on ``cryptography``'s TDES (``retail_mac_engine`` says which). No
algorithm is re-implemented beyond the CBC-MAC chaining of the retail MAC on ``cryptography``,
which does not offer it.
"""

from __future__ import annotations

import binascii
import functools
import hmac
import secrets
import threading
from ctypes import Array, byref, c_char, c_long
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from protocol import libcrypto
from protocol.errors import KeyMaterialError, LocalProtocolError, MessageError

__all__ = [
    "KEY_LEN",
    "MAC_HEX_LEN",
    "SIGNON_KEY_CONSTANT",
    "KeyBlock",
    "KeyScheme",
    "WorkingKeys",
    "aes_ecb",
    "compute_mac",
    "compute_mac_ascii",
    "generate_key",
    "key_check_value",
    "mac_bytes_equal",
    "macs_equal",
    "retail_mac_engine",
    "signon_mac_key",
    "tdes_ecb",
    "unwrap_key",
    "unwrap_working_key",
    "wrap_key",
]

KEY_LEN = 16
MAC_HEX_LEN = 16
KCV_HEX_LEN = 6
SIGNON_KEY_CONSTANT = b"SIGNON-MAC-KEY-1"


class KeyScheme(StrEnum):
    """The family of a terminal's keys; one character on the wire (sign-on DE 48)."""

    TDES = "T"
    AES = "A"

    @property
    def pin_format(self) -> int:
        """The ISO 9564 PIN block format this scheme uses."""
        return 0 if self is KeyScheme.TDES else 4

    @property
    def wrapped_len(self) -> int:
        """Bytes of a 16-byte working key once encrypted under the TMK."""
        return 16 if self is KeyScheme.TDES else 24

    @classmethod
    def parse(cls, value: str) -> KeyScheme:
        try:
            return cls(value)
        except ValueError as exc:
            raise MessageError(f"unknown key scheme {value!r}", field="48") from exc


def _check_key(key: bytes) -> None:
    if len(key) != KEY_LEN:
        raise KeyMaterialError(f"keys are {KEY_LEN} bytes, got {len(key)}")


def _check_tdes_key(key: bytes) -> None:
    if len(key) not in (16, 24):
        raise KeyMaterialError(f"a TDES key is 16 or 24 bytes, got {len(key)}", reason="key_length")


def _tdes(key: bytes) -> TripleDES:
    _check_tdes_key(key)
    # K1K2 -> K1K2K1: the same double-length cipher (cryptography deprecates 16-byte keys).
    return TripleDES(key + key[:8] if len(key) == 16 else key)


def _ecb(cipher: TripleDES | algorithms.AES, data: bytes, *, decrypt: bool = False) -> bytes:
    # ECB on single blocks (keys, KCVs, the retail MAC's last step), by design.
    engine = Cipher(cipher, modes.ECB())  # noqa: S305  # nosec B305
    ctx = engine.decryptor() if decrypt else engine.encryptor()
    return ctx.update(data) + ctx.finalize()


def tdes_ecb(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """TDES-ECB under a double (K1K2) or triple-length key; ``data`` a multiple of 8 bytes."""
    return _ecb(_tdes(key), data, decrypt=decrypt)


def aes_ecb(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """AES-ECB under a 16, 24 or 32-byte key; ``data`` a multiple of 16 bytes."""
    if len(key) not in (16, 24, 32):
        raise KeyMaterialError(
            f"an AES key is 16, 24 or 32 bytes, got {len(key)}", reason="key_length"
        )
    return _ecb(algorithms.AES(key), data, decrypt=decrypt)


# ISO 9797-1 padding method 2 of a last block holding r bytes of data (r = 0..7): 80 00...
_LAST_BLOCK_PADS = tuple(b"\x80" + bytes(7 - r) for r in range(8))


class _TdesRetailMacContext:
    """Retail MAC cipher contexts of one key from ``cryptography``, made once: building a TDES
    context costs more than MACing a whole message with it. The fallback where libcrypto has no
    single DES for us (``retail_mac_engine``). Single DES under K1 is TDES under K1K1K1 (the
    library has no single DES). The MAC's output transformation, E_K1(D_K2(H_q)) with H_q =
    E_K1(x_q xor H_q-1), is TDES-EDE under K1K2K1 of x_q xor H_q-1: so the CBC context
    chains every block but the last and one TDES block under the whole key finishes. The CBC
    context is never finalised; it carries on from its last output block, so each MAC cancels
    that chaining value in its first block and so starts from a zero IV. Contexts are not
    thread-safe: one lock per key.

    Padding method 2 puts 80 00.. after the data, so every whole 8-byte block of the data goes
    through the CBC chain as it is and only the last block (the data's 0-7 trailing bytes and
    the padding) is built: the message is never copied into a padded buffer. The TDES work
    (three DES operations a block) is most of a MAC; this keeps the Python around it short."""

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        k1 = key[:8]
        self._cbc = Cipher(TripleDES(k1 * 3), modes.CBC(bytes(8))).encryptor()
        self._chain = 0
        self._finish = Cipher(_tdes(key), modes.ECB()).encryptor()  # noqa: S305  # nosec B305
        self._lock = threading.Lock()

    def mac(self, data: bytes, n: int) -> bytes:
        """The MAC of ``data[:n]``."""
        whole = n & -8  # bytes in the whole blocks before the padded last one
        last = int.from_bytes(data[whole:n] + _LAST_BLOCK_PADS[n - whole])
        lock = self._lock
        lock.acquire()
        try:
            if whole:
                first = (int.from_bytes(data[:8]) ^ self._chain).to_bytes(8)
                chain = int.from_bytes(self._cbc.update(first + data[8:whole])[-8:])
                self._chain = chain
                last ^= chain
            return self._finish.update(last.to_bytes(8))
        finally:
            lock.release()


_ZERO_IV = bytes(8)


class _DesRetailMacContext:
    """Retail MAC of one key with single DES from libcrypto (``protocol.libcrypto``): the key
    schedules of K1 and K2 made once, then two calls a MAC. ``DES_cbc_cksum`` runs the CBC
    chain under K1 from a zero IV over every whole block of the data as it is (one DES
    operation a block) and leaves its last output block, H_q-1, in ``_chain``;
    ``DES_ede3_cbc_encrypt`` of the last block (the data's 0-7 trailing bytes and the padding)
    under K1, K2, K1 with ``_chain`` as IV is E_K1(D_K2(E_K1(x_q xor H_q-1))), the MAC, which
    it writes into ``_chain`` too. Data of fewer than 8 bytes: no whole block, ``_chain`` is the
    zero IV. The two buffers are the context's own: one lock per key.

    The two calls go without ctypes argtypes (``protocol.libcrypto``: they would cost about
    1 us a MAC); every argument is of its exact C type: the data as ``bytes`` (copied from any
    other buffer), pointers to the context's own ``Block`` and ``Schedule`` instances (``byref``
    made once: each holds its target, and passing one allocates nothing), a ``c_long`` length,
    an ``int``."""

    def __init__(self, key: bytes, des: libcrypto.SingleDes) -> None:
        _check_key(key)
        key = bytes(key)
        self._k1 = des.schedule(key[:8])
        self._k2 = des.schedule(key[8:])
        # The generic type: mypy's ctypes plugin cannot read ``.raw`` of a Block.
        self._chain: Array[c_char] = libcrypto.Block()
        self._out = libcrypto.Block()
        self._k1_ptr, self._k2_ptr = byref(self._k1), byref(self._k2)
        self._chain_ptr, self._out_ptr = byref(self._chain), byref(self._out)
        self._cbc_cksum, self._ede3_cbc = des.hot_calls()
        self._lock = threading.Lock()

    def mac(self, data: bytes, n: int) -> bytes:
        """The MAC of ``data[:n]`` (``n`` at most ``len(data)``): DES_cbc_cksum reads the
        ``n & -8`` bytes of the whole blocks from ``data`` in place."""
        if type(data) is not bytes:
            data = bytes(data)
        if not 0 <= n <= len(data):
            raise ValueError(f"cannot MAC {n} bytes of {len(data)}")
        whole = n & -8  # bytes in the whole blocks before the padded last one
        last = data[whole:n] + _LAST_BLOCK_PADS[n - whole]
        length = _BLOCK_LENGTHS[whole >> 3] if whole <= _BLOCK_LENGTHS_UP_TO else c_long(whole)
        k1, chain = self._k1_ptr, self._chain_ptr
        with self._lock:
            self._cbc_cksum(data, chain, length, k1, _ZERO_IV)
            self._ede3_cbc(
                last, self._out_ptr, _ONE_BLOCK, k1, self._k2_ptr, k1, chain, _DES_ENCRYPT
            )
            return self._chain.raw


_ONE_BLOCK = libcrypto.ONE_BLOCK
_DES_ENCRYPT = libcrypto.DES_ENCRYPT
# libcrypto.block_length, inline: the c_long lengths made once.
_BLOCK_LENGTHS = libcrypto.BLOCK_LENGTHS
_BLOCK_LENGTHS_UP_TO = libcrypto.BLOCK_LENGTHS_UP_TO


def retail_mac_engine() -> str:
    """Which block cipher the retail MAC runs on in this process (for benchmarks and logs)."""
    des = libcrypto.load()
    if des is not None:
        return f"single DES from {libcrypto.LIBRARY} ({des.version})"
    return f"TDES under K1K1K1 from cryptography ({libcrypto.load_error()})"


def _retail_context(key: bytes) -> _DesRetailMacContext | _TdesRetailMacContext:
    des = libcrypto.load()
    return _TdesRetailMacContext(key) if des is None else _DesRetailMacContext(key, des)


class _CmacContext:
    """An AES-CMAC keyed once (subkeys derived once); each MAC works on a copy of it. The
    keyed object itself is only ever copied, never updated, so threads may share it."""

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._keyed = cmac.CMAC(algorithms.AES(key))

    def mac(self, data: bytes, n: int) -> bytes:
        """The MAC of ``data[:n]``."""
        mac = self._keyed.copy()
        mac.update(data if n == len(data) else data[:n])
        return mac.finalize()[:8]


_MacContext = _DesRetailMacContext | _TdesRetailMacContext | _CmacContext


@functools.lru_cache(maxsize=8192)
def _mac_context(scheme: KeyScheme, key: bytes) -> _MacContext:
    """One context per (scheme, key): a host keeps one per signed-on terminal (two keys each)."""
    return _retail_context(key) if scheme is KeyScheme.TDES else _CmacContext(key)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3, padding method 2, double-length key K1||K2:
    CBC-MAC with single DES under K1, then the last block decrypted under K2 and encrypted
    under K1. Single DES from libcrypto, or TDES with K1K1K1 (``retail_mac_engine``)."""
    return _mac_context(KeyScheme.TDES, key).mac(data, len(data))


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B), leftmost 8 bytes."""
    return _mac_context(KeyScheme.AES, key).mac(data, len(data))


def compute_mac(scheme: KeyScheme, key: bytes, data: bytes) -> str:
    """The MAC of ``data`` as 16 upper-case hex characters."""
    return _mac_context(scheme, key).mac(data, len(data)).hex().upper()


def compute_mac_ascii(
    scheme: KeyScheme, key: bytes, data: bytes, length: int | None = None
) -> bytes:
    """``compute_mac`` as the 16 ASCII bytes that travel on the wire; of ``data[:length]``
    when ``length`` is given (a received message without its MAC, not copied for it)."""
    if length is None:
        length = len(data)
    elif not 0 <= length <= len(data):
        raise LocalProtocolError(f"cannot MAC {length} bytes of {len(data)}")
    return binascii.hexlify(_mac_context(scheme, key).mac(data, length)).upper()


def mac_bytes_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two hex MACs as ASCII bytes (case-insensitive)."""
    return hmac.compare_digest(a.upper(), b.upper())


def macs_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex MACs (case-insensitive)."""
    return hmac.compare_digest(a.upper().encode(), b.upper().encode())


def key_check_value(scheme: KeyScheme, key: bytes) -> str:
    """KCV as 6 upper-case hex characters (see the module docstring). A TDES key may be
    double or triple length; an AES key is 16 bytes."""
    if scheme is KeyScheme.TDES:
        return tdes_ecb(key, bytes(8))[:3].hex().upper()
    _check_key(key)
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()[:3].hex().upper()


def signon_mac_key(scheme: KeyScheme, tmk: bytes) -> bytes:
    """The key that MACs sign-on and key-change messages, derived from the TMK."""
    _check_key(tmk)
    if scheme is KeyScheme.TDES:
        return tdes_ecb(tmk, SIGNON_KEY_CONSTANT)
    return aes_ecb(tmk, SIGNON_KEY_CONSTANT)


def _odd_parity(key: bytes) -> bytes:
    return bytes(b & 0xFE | (bin(b & 0xFE).count("1") % 2 == 0) for b in key)


def generate_key(scheme: KeyScheme) -> bytes:
    """A fresh random 16-byte working key. TDES keys get odd parity and distinct halves (a
    TDES key with K1 == K2 would be single DES)."""
    while True:
        key = secrets.token_bytes(KEY_LEN)
        if scheme is KeyScheme.AES:
            return key
        key = _odd_parity(key)
        if key[:8] != key[8:]:
            return key


def wrap_key(scheme: KeyScheme, kek: bytes, key: bytes) -> bytes:
    """Encrypt a working key under a key-encrypting key (the TMK)."""
    _check_key(kek)
    _check_key(key)
    if scheme is KeyScheme.TDES:
        return tdes_ecb(kek, key)
    return aes_key_wrap(kek, key)


def unwrap_key(scheme: KeyScheme, kek: bytes, wrapped: bytes) -> bytes:
    _check_key(kek)
    if len(wrapped) != scheme.wrapped_len:
        raise KeyMaterialError(f"a wrapped {scheme.name} key is {scheme.wrapped_len} bytes")
    if scheme is KeyScheme.TDES:
        return tdes_ecb(kek, wrapped, decrypt=True)
    try:
        return aes_key_unwrap(kek, wrapped)
    except InvalidUnwrap as exc:
        raise KeyMaterialError("AES key unwrap failed (wrong master key?)") from exc


def unwrap_working_key(scheme: KeyScheme, kek: bytes, wrapped: bytes, check_value: str) -> bytes:
    """A working key as a PIN pad loads it: decrypted under the master key ``kek`` and checked
    against its KCV. TDES accepts a double or triple-length key encrypted block by block
    (16 or 24 bytes); AES a 16-byte key wrapped with RFC 3394 (24 bytes). ``KeyMaterialError``
    with ``reason`` ``key_length``, ``unwrap`` or ``kcv``."""
    if scheme is KeyScheme.TDES:
        if len(wrapped) not in (16, 24):
            raise KeyMaterialError("a TDES working key is 16 or 24 bytes", reason="key_length")
        clear = tdes_ecb(kek, wrapped, decrypt=True)
    else:
        if len(wrapped) != scheme.wrapped_len:
            raise KeyMaterialError(
                "an AES working key is 24 bytes (RFC 3394 wrap)", reason="key_length"
            )
        try:
            clear = unwrap_key(scheme, kek, wrapped)
        except KeyMaterialError as exc:
            raise KeyMaterialError(f"working key does not unwrap: {exc}", reason="unwrap") from exc
    if not macs_equal(key_check_value(scheme, clear), check_value):
        raise KeyMaterialError("working key check value mismatch", reason="kcv")
    return clear


@dataclass(frozen=True)
class WorkingKeys:
    """A terminal's clear working keys: PIN key (TPK) and MAC key (TAK)."""

    scheme: KeyScheme
    tpk: bytes
    tak: bytes

    def __repr__(self) -> str:  # keys never reach a log
        return f"WorkingKeys({self.scheme.name}, tpk kcv {key_check_value(self.scheme, self.tpk)})"

    __str__ = __repr__


@dataclass(frozen=True)
class KeyBlock:
    """DE 48 of an approved sign-on or key-change response: the working keys under the TMK.

    Layout (all hex upper-case): scheme (1) + PIN block format (1) + TPK under TMK
    (32 for T, 48 for A) + TPK KCV (6) + TAK under TMK (32 / 48) + TAK KCV (6).
    """

    scheme: KeyScheme
    tpk_encrypted: bytes
    tpk_kcv: str
    tak_encrypted: bytes
    tak_kcv: str

    @classmethod
    def build(cls, keys: WorkingKeys, tmk: bytes) -> KeyBlock:
        s = keys.scheme
        return cls(
            s,
            wrap_key(s, tmk, keys.tpk),
            key_check_value(s, keys.tpk),
            wrap_key(s, tmk, keys.tak),
            key_check_value(s, keys.tak),
        )

    def encode(self) -> str:
        return (
            f"{self.scheme}{self.scheme.pin_format}"
            f"{self.tpk_encrypted.hex().upper()}{self.tpk_kcv}"
            f"{self.tak_encrypted.hex().upper()}{self.tak_kcv}"
        )

    @classmethod
    def parse(cls, value: str) -> KeyBlock:
        if len(value) < 2:
            raise MessageError("key block too short", field="48")
        scheme = KeyScheme.parse(value[0])
        if value[1] != str(scheme.pin_format):
            raise MessageError(f"PIN format {value[1]!r} does not fit scheme {scheme}", field="48")
        n = scheme.wrapped_len * 2
        if len(value) != 2 + 2 * (n + KCV_HEX_LEN):
            raise MessageError(f"key block of {len(value)} characters", field="48")
        body = value[2:]
        try:
            tpk = bytes.fromhex(body[:n])
            tak = bytes.fromhex(body[n + KCV_HEX_LEN : 2 * n + KCV_HEX_LEN])
        except ValueError as exc:
            raise MessageError("key block is not hexadecimal", field="48") from exc
        return cls(scheme, tpk, body[n : n + KCV_HEX_LEN], tak, body[2 * n + KCV_HEX_LEN :])

    def open(self, tmk: bytes) -> WorkingKeys:
        """Decrypt both keys under the TMK and verify their KCVs (``KeyMaterialError`` if wrong)."""
        tpk = unwrap_key(self.scheme, tmk, self.tpk_encrypted)
        tak = unwrap_key(self.scheme, tmk, self.tak_encrypted)
        if not macs_equal(key_check_value(self.scheme, tpk), self.tpk_kcv):
            raise KeyMaterialError("TPK check value does not match")
        if not macs_equal(key_check_value(self.scheme, tak), self.tak_kcv):
            raise KeyMaterialError("TAK check value does not match")
        return WorkingKeys(self.scheme, tpk, tak)
