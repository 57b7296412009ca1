"""Working keys at sign-on as ANSI X9.143 / TR-31 key blocks, wrapped and unwrapped by ``psec``
(a maintained payments-crypto library) rather than by our own code.

DE 48 of an approved sign-on or key-change response carries the working keys in one of two
layouts, chosen per terminal (``KeyBlockFormat``; host ``TERMINAL_KEY_BLOCKS``, device
``DeviceConfig.key_block``):

* ``tr31`` (the default, ``DEFAULT_KEY_BLOCK``): two TR-31 key blocks, the PIN key's then the
  MAC key's, each protected by the terminal master key as key block protection key (KBPK). TDES
  terminals get version ``B`` (TDES key derivation), AES terminals version ``D`` (AES key
  derivation). The header binds the key's use, algorithm and mode: PIN key ``P0`` (PIN
  encryption), mode ``E`` (encrypt only: the terminal never decrypts PIN blocks); MAC key ``M3``
  (ISO 9797-1 MAC algorithm 3, TDES) or ``M6`` (CMAC, AES), mode ``C`` (generate and verify);
  exportability ``N``. An optional ``KC`` block carries the key check value (``00`` + legacy KCV
  for TDES, ``01`` + CMAC KCV for AES). The key block MAC is checked by ``psec`` on unwrap; the
  header fields and the check value by ``open_key_delivery``. Each block states its own length
  (header positions 2 to 5), so the two are simply concatenated.
* ``legacy``: our original layout, ``protocol.security.KeyBlock`` (keys encrypted under the TMK
  plus their check values), for terminals configured for it.

TR-31 is the default because it is what a bank's key management expects: the key's use is
bound to it and checked, not implied by its position in a field of ours.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from cryptography.utils import CryptographyDeprecationWarning
from psec import tr31

from protocol.errors import KeyMaterialError, MessageError
from protocol.security import KeyBlock, KeyScheme, WorkingKeys, key_check_value, macs_equal

__all__ = [
    "DEFAULT_KEY_BLOCK",
    "KeyBlockFormat",
    "Tr31Delivery",
    "encode_key_delivery",
    "open_key_delivery",
    "tr31_unwrap",
    "tr31_wrap",
]


class KeyBlockFormat(StrEnum):
    LEGACY = "legacy"
    TR31 = "tr31"


#: The layout of a terminal that is not configured otherwise, on both ends of the link.
DEFAULT_KEY_BLOCK = KeyBlockFormat.TR31


_VERSION = {KeyScheme.TDES: "B", KeyScheme.AES: "D"}
_ALGORITHM = {KeyScheme.TDES: "T", KeyScheme.AES: "A"}
_KCV_METHOD = {KeyScheme.TDES: "00", KeyScheme.AES: "01"}
# (key usage, mode of use) per role and scheme.
_TPK = {KeyScheme.TDES: ("P0", "E"), KeyScheme.AES: ("P0", "E")}
_TAK = {KeyScheme.TDES: ("M3", "C"), KeyScheme.AES: ("M6", "C")}


@contextlib.contextmanager
def _psec() -> Iterator[None]:
    # psec 1.3 reaches TripleDES through cryptography's old import path, which warns that it
    # moved to the decrepit module. The primitive is the same; silence only that warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def _header(scheme: KeyScheme, usage: str, mode: str, kcv: str) -> tr31.Header:
    header = tr31.Header(
        version_id=_VERSION[scheme],
        key_usage=usage,
        algorithm=_ALGORITHM[scheme],
        mode_of_use=mode,
        version_num="00",
        exportability="N",
    )
    header.blocks["KC"] = _KCV_METHOD[scheme] + kcv
    return header


def tr31_wrap(scheme: KeyScheme, kbpk: bytes, key: bytes, *, usage: str, mode: str) -> str:
    """One TR-31 key block holding ``key`` under ``kbpk`` (the terminal master key)."""
    header = _header(scheme, usage, mode, key_check_value(scheme, key))
    try:
        with _psec():
            return tr31.wrap(kbpk, header, key)
    except (tr31.HeaderError, tr31.KeyBlockError) as exc:
        raise KeyMaterialError(f"TR-31 wrap failed: {exc}") from exc


def tr31_unwrap(scheme: KeyScheme, kbpk: bytes, block: str, *, usage: str, mode: str) -> bytes:
    """The key in ``block``, after psec has checked the key block MAC and we have checked that
    the header binds it to ``usage``/``mode`` under ``scheme`` and carries its check value."""
    try:
        with _psec():
            header, key = tr31.unwrap(kbpk, block)
    except (tr31.HeaderError, tr31.KeyBlockError) as exc:
        raise KeyMaterialError(f"TR-31 key block refused: {exc}") from exc
    wanted = (_VERSION[scheme], usage, _ALGORITHM[scheme], mode, "N")
    got = (
        header.version_id,
        header.key_usage,
        header.algorithm,
        header.mode_of_use,
        header.exportability,
    )
    if got != wanted:
        raise KeyMaterialError(
            f"TR-31 header {'/'.join(got)} is not the expected {'/'.join(wanted)}"
        )
    kc = header.blocks["KC"] if "KC" in header.blocks else ""
    if not kc or not macs_equal(kc, _KCV_METHOD[scheme] + key_check_value(scheme, key)):
        raise KeyMaterialError("TR-31 key check value (KC block) missing or wrong")
    return key


@dataclass(frozen=True)
class Tr31Delivery:
    """DE 48 in the ``tr31`` layout: the PIN key's block then the MAC key's."""

    scheme: KeyScheme
    tpk_block: str
    tak_block: str

    @classmethod
    def build(cls, keys: WorkingKeys, tmk: bytes) -> Tr31Delivery:
        s = keys.scheme
        usage, mode = _TPK[s]
        tpk = tr31_wrap(s, tmk, keys.tpk, usage=usage, mode=mode)
        usage, mode = _TAK[s]
        return cls(s, tpk, tr31_wrap(s, tmk, keys.tak, usage=usage, mode=mode))

    def encode(self) -> str:
        return self.tpk_block + self.tak_block

    @classmethod
    def parse(cls, value: str) -> Tr31Delivery:
        version = value[:1]
        schemes = {v: s for s, v in _VERSION.items()}
        if version not in schemes:
            raise MessageError(f"not a TR-31 key block (version {version!r})", field="48")
        length = value[1:5]
        if not length.isdigit() or not 16 < int(length) < len(value):
            raise MessageError("TR-31 key block length is not readable", field="48")
        first, second = value[: int(length)], value[int(length) :]
        if second[1:5] != length or len(second) != int(length):
            raise MessageError("DE 48 does not hold two TR-31 key blocks", field="48")
        return cls(schemes[version], first, second)

    def open(self, tmk: bytes) -> WorkingKeys:
        s = self.scheme
        usage, mode = _TPK[s]
        tpk = tr31_unwrap(s, tmk, self.tpk_block, usage=usage, mode=mode)
        usage, mode = _TAK[s]
        return WorkingKeys(s, tpk, tr31_unwrap(s, tmk, self.tak_block, usage=usage, mode=mode))


def encode_key_delivery(fmt: KeyBlockFormat, keys: WorkingKeys, tmk: bytes) -> str:
    """DE 48 of an approved sign-on / key change in the terminal's layout."""
    if fmt is KeyBlockFormat.TR31:
        return Tr31Delivery.build(keys, tmk).encode()
    return KeyBlock.build(keys, tmk).encode()


def open_key_delivery(
    value: str, tmk: bytes, scheme: KeyScheme, fmt: KeyBlockFormat
) -> WorkingKeys:
    """The working keys from DE 48, which must be in layout ``fmt`` and scheme ``scheme``
    (``MessageError``/``KeyMaterialError`` otherwise: a host may not downgrade the layout)."""
    if fmt is KeyBlockFormat.TR31:
        delivery = Tr31Delivery.parse(value)
        if delivery.scheme is not scheme:
            raise KeyMaterialError(f"host sent {delivery.scheme.name} keys")
        return delivery.open(tmk)
    block = KeyBlock.parse(value)
    if block.scheme is not scheme:
        raise KeyMaterialError(f"host sent {block.scheme.name} keys")
    return block.open(tmk)
