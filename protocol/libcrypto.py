"""Single DES from the system's OpenSSL (libcrypto 3) through ``ctypes``, for the retail MAC.

``cryptography`` has no single DES, so through it the retail MAC's CBC chain under K1 runs as
TDES under K1K1K1: three DES operations a block where the algorithm needs one. libcrypto has
both steps of the algorithm as they are:

* ``DES_cbc_cksum``: the CBC-MAC of whole 8-byte blocks under one key from a given IV (the
  last CBC output block; the IV itself is only read);
* ``DES_ede3_cbc_encrypt``: TDES-EDE in CBC mode, here one block under K1, K2, K1 with the
  CBC-MAC as its IV, which is the MAC's last block and output transformation in one call
  (E_K1(D_K2(E_K1(x_q xor H_q-1)))); it writes its output block into the IV buffer too.

These are OpenSSL's low-level DES functions (deprecated since OpenSSL 3.0 in favour of EVP,
still exported by libcrypto.so.3). They work on a key schedule and buffers the caller owns and
need no provider: OpenSSL's legacy provider (which EVP's DES-CBC would need) is not loaded and
no library context, configuration or other process-wide OpenSSL state is touched, so what
Python's ``ssl`` and ``hashlib`` use stays as it is. The library is the libcrypto.so.3 that
``_hashlib`` has already loaded (``dlopen`` of the same soname gives that one).

Calls: libcrypto is opened as a ``ctypes.PyDLL`` (the GIL stays held over calls of a few
microseconds, no hand-over to another thread and back). ``DES_set_key_unchecked`` and
``OpenSSL_version_num`` have argtypes and restype. The two per-MAC functions have their restype
(none read) but no argtypes: converting their 5 and 8 arguments through argtypes costs about
1 us a MAC (measured, some 15 % of one). So every argument they get is built to its exact C
type, by ``SingleDes.cbc_mac_chain`` and ``SingleDes.ede3_cbc_block`` (checked, for tests and
the benchmark) and by the retail MAC context in ``protocol.security`` (the same arguments, per
message): ``bytes`` for ``const unsigned char *`` (never shorter than the length passed),
``Block`` (``unsigned char[8]``, a ``DES_cblock``) and ``Schedule`` (the 128-byte
``DES_key_schedule``) instances or ``byref`` pointers to them, a ``c_long`` for ``long``
(``block_length``) and a Python ``int`` for ``int``. Nothing else calls them: without
argtypes ctypes would pass a Python ``int`` as a C ``int``, so none may go where a pointer or
``long`` is expected.

``load()`` returns ``None`` (and says why) where there is no such library, it is not OpenSSL 3
or it lacks a function, or it fails a known-answer test; ``protocol.security`` then falls back
to ``cryptography``'s TDES.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BLOCK_LENGTHS",
    "BLOCK_LENGTHS_UP_TO",
    "DES_ENCRYPT",
    "LIBRARY",
    "ONE_BLOCK",
    "Block",
    "Schedule",
    "SingleDes",
    "block_length",
    "load",
    "load_error",
]

LIBRARY = "libcrypto.so.3"


class Schedule(ctypes.Array[ctypes.c_uint32]):
    """A ``DES_key_schedule``: 16 rounds of ``DES_cblock`` (two 32-bit ``DES_LONG``), 128
    bytes, aligned as its ``DES_LONG``."""

    _type_ = ctypes.c_uint32
    _length_ = 32


class Block(ctypes.Array[ctypes.c_char]):
    """A ``DES_cblock``: ``unsigned char[8]``."""

    _type_ = ctypes.c_char
    _length_ = 8


ONE_BLOCK = ctypes.c_long(8)  # a long, never changed: shared by every call
DES_ENCRYPT = 1

# The ``long`` lengths of 0 to 4,096 bytes of whole blocks (a link frame's default maximum),
# made once: making a c_long costs 0.2-0.3 us, a few per cent of a MAC. Never changed, so
# shared by every call and thread; ``block_length`` makes the longer ones as they come.
BLOCK_LENGTHS_UP_TO = 4096
BLOCK_LENGTHS = tuple(ctypes.c_long(n) for n in range(0, BLOCK_LENGTHS_UP_TO + 1, 8))


def block_length(whole: int) -> ctypes.c_long:
    """``whole`` (a multiple of 8) as the ``long`` the DES functions take."""
    return BLOCK_LENGTHS[whole >> 3] if 0 <= whole <= BLOCK_LENGTHS_UP_TO else ctypes.c_long(whole)


@dataclass(frozen=True)
class SingleDes:
    """The bound functions of one libcrypto, and what it is (``version``)."""

    version: str
    _set_key: Callable[..., None]
    _cbc_cksum: Callable[..., None]
    _ede3_cbc: Callable[..., None]

    def schedule(self, key: bytes) -> Schedule:
        """The DES key schedule of an 8-byte key (parity and weak keys not checked: the
        retail MAC takes K1 and K2 as they are)."""
        if type(key) is not bytes or len(key) != 8:
            raise ValueError("a DES key is 8 bytes")
        schedule = Schedule()
        self._set_key(key, schedule)
        return schedule

    def cbc_mac_chain(
        self,
        data: bytes,
        whole: int,
        schedule: Schedule,
        iv: bytes,
        out: ctypes.Array[ctypes.c_char],
    ) -> None:
        """CBC-encrypt ``data[:whole]`` (``whole`` a multiple of 8, at most ``len(data)``)
        under ``schedule`` from ``iv`` (8 bytes) and put the last output block in ``out``
        (``iv`` itself when ``whole`` is 0)."""
        if type(data) is not bytes or not 0 <= whole <= len(data) or whole & 7:
            raise ValueError("whole blocks of a bytes object")
        if type(iv) is not bytes or len(iv) != 8 or type(out) is not Block:
            raise ValueError("an 8-byte IV and a Block")
        if type(schedule) is not Schedule:
            raise ValueError("a Schedule")
        self._cbc_cksum(data, out, block_length(whole), schedule, iv)

    def ede3_cbc_block(
        self,
        block: bytes,
        k1: Schedule,
        k2: Schedule,
        k3: Schedule,
        chain: ctypes.Array[ctypes.c_char],
        out: ctypes.Array[ctypes.c_char],
    ) -> None:
        """TDES-EDE (E_k3(D_k2(E_k1(.)))) of ``block`` (8 bytes) xor ``chain``: the result in
        ``out`` and in ``chain``."""
        if type(block) is not bytes or len(block) != 8:
            raise ValueError("one 8-byte block")
        if type(chain) is not Block or type(out) is not Block:
            raise ValueError("Block buffers")
        if not type(k1) is type(k2) is type(k3) is Schedule:
            raise ValueError("Schedules")
        self._ede3_cbc(block, out, ONE_BLOCK, k1, k2, k3, chain, DES_ENCRYPT)

    def hot_calls(self) -> tuple[Callable[..., None], Callable[..., None]]:
        """``DES_cbc_cksum`` and ``DES_ede3_cbc_encrypt`` as they are, for a caller that builds
        their arguments exactly as ``cbc_mac_chain`` and ``ede3_cbc_block`` do (with
        ``ONE_BLOCK`` and ``DES_ENCRYPT``) without their checks: the retail MAC, per message."""
        return self._cbc_cksum, self._ede3_cbc


def _bind() -> SingleDes:
    """Open libcrypto and bind the four functions; ``OSError`` or ``AttributeError`` where it
    cannot be done."""
    import _hashlib  # noqa: F401  # the libcrypto Python itself uses is loaded first

    lib = ctypes.PyDLL(LIBRARY)
    version_num = lib.OpenSSL_version_num
    version_num.argtypes = []
    version_num.restype = ctypes.c_ulong
    number = int(version_num())
    if number >> 28 != 3:
        raise OSError(f"{LIBRARY} is OpenSSL {number:#x}, not 3.x")
    set_key = lib.DES_set_key_unchecked
    set_key.argtypes = [ctypes.c_char_p, ctypes.POINTER(Schedule)]
    set_key.restype = None
    cbc_cksum = lib.DES_cbc_cksum  # hot: no argtypes, see the module docstring
    cbc_cksum.restype = None  # a DES_LONG (checksum bits) nobody reads: not converted
    ede3_cbc = lib.DES_ede3_cbc_encrypt  # hot: no argtypes, see the module docstring
    ede3_cbc.restype = None
    major, minor, patch = number >> 28, (number >> 20) & 0xFF, (number >> 4) & 0xFF
    return SingleDes(f"OpenSSL {major}.{minor}.{patch}", set_key, cbc_cksum, ede3_cbc)


# Known answers: the DES-CBC example of FIPS 81 (key 0123456789ABCDEF, IV 1234567890ABCDEF,
# "Now is the time for all ": its last ciphertext block), and TDES-EDE-CBC of "Now is t" from
# the same IV under K1 = 0123456789ABCDEF, K2 = FEDCBA9876543210, K1 (``openssl enc``).
_KAT_K1 = bytes.fromhex("0123456789ABCDEF")
_KAT_K2 = bytes.fromhex("FEDCBA9876543210")
_KAT_IV = bytes.fromhex("1234567890ABCDEF")
_KAT_DATA = b"Now is the time for all "
_KAT_CBC_LAST = bytes.fromhex("683788499A7C05F6")
_KAT_EDE3 = bytes.fromhex("F85D4AB92066789E")


def _self_test(des: SingleDes) -> None:
    k1, k2 = des.schedule(_KAT_K1), des.schedule(_KAT_K2)
    # Typed as the generic array: mypy's ctypes plugin cannot read ``.raw`` of a subclass.
    out: ctypes.Array[ctypes.c_char] = Block()
    des.cbc_mac_chain(_KAT_DATA, len(_KAT_DATA), k1, _KAT_IV, out)
    chain: ctypes.Array[ctypes.c_char] = Block.from_buffer_copy(_KAT_IV)
    last: ctypes.Array[ctypes.c_char] = Block()
    des.ede3_cbc_block(_KAT_DATA[:8], k1, k2, k1, chain, last)
    if out.raw != _KAT_CBC_LAST or last.raw != _KAT_EDE3 or chain.raw != _KAT_EDE3:
        raise OSError(f"{LIBRARY} fails the DES known-answer tests")


@functools.cache
def _loaded() -> SingleDes | str:
    try:
        des = _bind()
        _self_test(des)
    except (OSError, AttributeError, ImportError) as exc:
        return f"no single DES from {LIBRARY}: {exc}"
    return des


def load() -> SingleDes | None:
    """The system's single DES, or ``None`` (``load_error`` says why). Bound once."""
    des = _loaded()
    return des if isinstance(des, SingleDes) else None


def load_error() -> str | None:
    """Why ``load()`` gives ``None``, or ``None`` when it does not."""
    des = _loaded()
    return des if isinstance(des, str) else None
