"""TR-31 key blocks for the working keys (protocol.keyblock over psec), beside the legacy
layout: both round-trip, the TR-31 blocks verify with psec itself, and a tampered block, a
wrong master key, a header for another use, a wrong check value or a downgraded layout is
refused."""

from __future__ import annotations

import pytest
from psec import tr31

from protocol.errors import KeyMaterialError, MessageError
from protocol.keyblock import (
    KeyBlockFormat,
    Tr31Delivery,
    encode_key_delivery,
    open_key_delivery,
    tr31_unwrap,
)
from protocol.security import KeyBlock, KeyScheme, WorkingKeys, generate_key, key_check_value

# The tests call psec directly (protocol.keyblock silences this itself): psec 1.3 reaches
# TripleDES through cryptography's old import path.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

TMK = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")
OTHER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def _keys(scheme: KeyScheme) -> WorkingKeys:
    return WorkingKeys(scheme, generate_key(scheme), generate_key(scheme))


@pytest.mark.parametrize("scheme", list(KeyScheme))
@pytest.mark.parametrize("fmt", list(KeyBlockFormat))
def test_both_layouts_round_trip(scheme, fmt):
    keys = _keys(scheme)
    value = encode_key_delivery(fmt, keys, TMK)
    assert open_key_delivery(value, TMK, scheme, fmt) == keys


@pytest.mark.parametrize(
    ("scheme", "version", "mac_usage"), [(KeyScheme.TDES, "B", "M3"), (KeyScheme.AES, "D", "M6")]
)
def test_tr31_blocks_verify_with_psec_and_bind_usage(scheme, version, mac_usage):
    keys = _keys(scheme)
    delivery = Tr31Delivery.parse(encode_key_delivery(KeyBlockFormat.TR31, keys, TMK))
    header, tpk = tr31.unwrap(TMK, delivery.tpk_block)  # the library's own check of the MAC
    assert tpk == keys.tpk
    assert (header.version_id, header.key_usage, header.algorithm, header.mode_of_use) == (
        version,
        "P0",
        scheme.value,
        "E",
    )
    assert header.blocks["KC"][2:] == key_check_value(scheme, keys.tpk)
    header, tak = tr31.unwrap(TMK, delivery.tak_block)
    assert tak == keys.tak and (header.key_usage, header.mode_of_use) == (mac_usage, "C")


def test_a_tampered_block_or_the_wrong_master_key_is_refused():
    value = encode_key_delivery(KeyBlockFormat.TR31, _keys(KeyScheme.TDES), TMK)
    flipped = value[:40] + ("0" if value[40] != "0" else "1") + value[41:]
    with pytest.raises(KeyMaterialError, match="MAC"):
        open_key_delivery(flipped, TMK, KeyScheme.TDES, KeyBlockFormat.TR31)
    with pytest.raises(KeyMaterialError, match="refused"):
        open_key_delivery(value, OTHER, KeyScheme.TDES, KeyBlockFormat.TR31)


def test_a_block_for_another_use_or_with_a_wrong_check_value_is_refused():
    key = generate_key(KeyScheme.TDES)
    data_key = tr31.Header("B", "D0", "T", "B", "00", "N")  # a data-encryption key
    data_key.blocks["KC"] = "00" + key_check_value(KeyScheme.TDES, key)
    block = tr31.wrap(TMK, data_key, key)
    with pytest.raises(KeyMaterialError, match="not the expected B/P0/T/E/N"):
        tr31_unwrap(KeyScheme.TDES, TMK, block, usage="P0", mode="E")
    wrong_kc = tr31.Header("B", "P0", "T", "E", "00", "N")
    wrong_kc.blocks["KC"] = "00ABCDEF"
    with pytest.raises(KeyMaterialError, match="check value"):
        tr31_unwrap(KeyScheme.TDES, TMK, tr31.wrap(TMK, wrong_kc, key), usage="P0", mode="E")


def test_a_terminal_refuses_the_other_layout():
    keys = _keys(KeyScheme.TDES)
    legacy = KeyBlock.build(keys, TMK).encode()
    with pytest.raises(MessageError, match="not a TR-31 key block"):
        open_key_delivery(legacy, TMK, KeyScheme.TDES, KeyBlockFormat.TR31)
    tr31_value = encode_key_delivery(KeyBlockFormat.TR31, keys, TMK)
    with pytest.raises(MessageError):
        open_key_delivery(tr31_value, TMK, KeyScheme.TDES, KeyBlockFormat.LEGACY)
    aes = encode_key_delivery(KeyBlockFormat.TR31, _keys(KeyScheme.AES), TMK)
    with pytest.raises(KeyMaterialError, match="host sent AES keys"):
        open_key_delivery(aes, TMK, KeyScheme.TDES, KeyBlockFormat.TR31)


def test_the_documented_example_verifies():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    section = doc[doc.index("### 7.7 TR-31 key blocks") : doc.index("## 8.")]
    blocks = [line for line in section.splitlines() if line.startswith("B0120")]
    tmk = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    keys = Tr31Delivery.parse("".join(blocks)).open(tmk)
    assert keys.tpk.hex().upper() == "0123456789ABCDEFFEDCBA9876543210"
    assert keys.tak.hex().upper() == "89ABCDEF01234567FEDCBA9801234567"
    assert key_check_value(KeyScheme.TDES, keys.tpk) == "08D7B4"
    assert key_check_value(KeyScheme.TDES, keys.tak) == "14190F"
    assert "check value `08D7B4`" in section
