"""Link crypto against independent references: psec 1.3.0 (computed once, kept as golden
vectors), RFC 4493 (AES-CMAC) and ``cryptography`` used directly."""

import concurrent.futures
import sys
import threading

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from protocol import libcrypto, security
from protocol.errors import KeyMaterialError, LocalProtocolError, MessageError, PinBlockError
from protocol.pinblock import (
    clear_format4,
    decrypt_format4,
    decrypt_pin_block,
    encrypt_format0,
    encrypt_format4,
)
from protocol.security import (
    KeyBlock,
    KeyScheme,
    WorkingKeys,
    aes_cmac,
    compute_mac,
    compute_mac_ascii,
    generate_key,
    key_check_value,
    retail_mac,
    retail_mac_engine,
    signon_mac_key,
    unwrap_key,
    wrap_key,
)

TDES_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
AES_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def test_retail_mac_matches_psec():
    # psec.mac.generate_retail_mac(K1K1, K2K2, data, padding=2), psec 1.3.0.
    assert retail_mac(TDES_KEY, b"Now is the time for all ").hex().upper() == "E9086230CA3BE796"
    assert retail_mac(TDES_KEY, b"0200F23A").hex().upper() == "CE917AEE04410622"


def test_aes_cmac_rfc4493_vector():
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    assert aes_cmac(key, b"").hex() == "bb1d6929e9593728"  # leftmost 8 bytes
    msg = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert aes_cmac(key, msg).hex() == "070a16b46b4d4144"


def test_compute_mac_is_16_hex_and_key_dependent():
    mac = compute_mac(KeyScheme.TDES, TDES_KEY, b"hello")
    assert len(mac) == 16 and mac == mac.upper()
    assert compute_mac(KeyScheme.AES, AES_KEY, b"hello") != compute_mac(
        KeyScheme.AES, TDES_KEY, b"hello"
    )


def test_key_check_values():
    # TDES KCV: the classic vector of this key (encrypt 8 zero bytes).
    assert key_check_value(KeyScheme.TDES, TDES_KEY) == "08D7B4"
    direct = Cipher(algorithms.AES(AES_KEY), modes.ECB()).encryptor()
    assert direct.update(bytes(16)) != b""  # AES KCV is CMAC-based, not plain ECB:
    assert key_check_value(KeyScheme.AES, AES_KEY) == aes_cmac(AES_KEY, bytes(16))[:3].hex().upper()


@pytest.mark.parametrize("scheme", list(KeyScheme))
def test_wrap_round_trip_and_generated_keys(scheme):
    key = generate_key(scheme)
    assert len(key) == 16
    if scheme is KeyScheme.TDES:
        assert all(bin(b).count("1") % 2 == 1 for b in key)  # odd parity
        assert key[:8] != key[8:]
    wrapped = wrap_key(scheme, AES_KEY, key)
    assert len(wrapped) == scheme.wrapped_len
    assert unwrap_key(scheme, AES_KEY, wrapped) == key


def test_aes_unwrap_with_wrong_kek_fails():
    wrapped = wrap_key(KeyScheme.AES, AES_KEY, generate_key(KeyScheme.AES))
    with pytest.raises(KeyMaterialError):
        unwrap_key(KeyScheme.AES, TDES_KEY, wrapped)


def test_signon_key_is_the_tmk_encrypting_the_constant():
    direct = Cipher(algorithms.AES(AES_KEY), modes.ECB()).encryptor()
    assert signon_mac_key(KeyScheme.AES, AES_KEY) == direct.update(b"SIGNON-MAC-KEY-1")


@pytest.mark.parametrize("scheme", list(KeyScheme))
def test_key_block_round_trip(scheme):
    keys = WorkingKeys(scheme, generate_key(scheme), generate_key(scheme))
    text = KeyBlock.build(keys, AES_KEY).encode()
    assert text[:2] == f"{scheme.value}{scheme.pin_format}"
    assert len(text) == (78 if scheme is KeyScheme.TDES else 110)
    assert KeyBlock.parse(text).open(AES_KEY) == keys
    assert "tpk" not in repr(keys).replace("tpk kcv", "")  # no key bytes in repr


def test_key_block_with_wrong_kcv_or_master_key_is_refused():
    keys = WorkingKeys(KeyScheme.TDES, generate_key(KeyScheme.TDES), generate_key(KeyScheme.TDES))
    text = KeyBlock.build(keys, AES_KEY).encode()
    bad_kcv = text[:34] + ("000000" if text[34:40] != "000000" else "111111") + text[40:]
    with pytest.raises(KeyMaterialError):
        KeyBlock.parse(bad_kcv).open(AES_KEY)
    with pytest.raises(KeyMaterialError):
        KeyBlock.parse(text).open(TDES_KEY)
    for broken in ("", "X0", "T4" + text[2:], text[:-1], "T0" + "Z" * 76):
        with pytest.raises(MessageError):
            KeyBlock.parse(broken)


def test_format4_matches_psec_vector():
    # psec.pinblock.decipher_pinblock_iso_4 of this block gives 987654 (psec 1.3.0).
    block = encrypt_format4(
        "987654", "4000001234567899", AES_KEY, bytes.fromhex("0123456789ABCDEF")
    )
    assert block.hex().upper() == "36F95C451CDE788398B4CAF017A32550"
    assert clear_format4("1234", bytes(8)).hex().upper() == "441234AAAAAAAAAA0000000000000000"


def test_format4_round_trip_random_fill_and_pan_binding():
    a = encrypt_format4("1234", "4000001234567899", AES_KEY)
    b = encrypt_format4("1234", "4000001234567899", AES_KEY)
    assert a != b  # random fill
    assert decrypt_pin_block(a, "4000001234567899", AES_KEY, 4) == "1234"
    with pytest.raises(PinBlockError):
        decrypt_format4(a, "4000009876543219", AES_KEY)
    with pytest.raises(PinBlockError):
        decrypt_pin_block(
            encrypt_format0("1234", "4000001234567899", TDES_KEY), "4000001234567899", AES_KEY, 4
        )
    with pytest.raises(PinBlockError):
        decrypt_pin_block(a, "4000001234567899", AES_KEY, 3)


def _reference_retail_mac(key: bytes, data: bytes) -> bytes:
    """The retail MAC with fresh contexts for every call, as the textbook writes it."""
    padded = data + b"\x80" + bytes(-(len(data) + 1) % 8)
    cbc = Cipher(TripleDES(key[:8] * 3), modes.CBC(bytes(8))).encryptor()
    last = (cbc.update(padded) + cbc.finalize())[-8:]
    last = Cipher(TripleDES(key[8:] * 3), modes.ECB()).decryptor().update(last)
    return Cipher(TripleDES(key[:8] * 3), modes.ECB()).encryptor().update(last)


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_a_kept_mac_context_gives_every_message_its_own_mac(messages):
    # One context per key is reused across messages (its CBC chain carries on); each MAC must
    # still be the MAC of that message alone, in any order and after any length.
    for data in messages:
        assert retail_mac(TDES_KEY, data) == _reference_retail_mac(TDES_KEY, data)
        fresh = cmac.CMAC(algorithms.AES(AES_KEY))
        fresh.update(data)
        assert aes_cmac(AES_KEY, data) == fresh.finalize()[:8]


def _reference_cmac(key: bytes, data: bytes) -> bytes:
    fresh = cmac.CMAC(algorithms.AES(key))
    fresh.update(data)
    return fresh.finalize()[:8]


def test_mac_contexts_shared_by_threads_stay_correct():
    messages = [bytes([n]) * (n % 97 + 1) for n in range(200)]
    expected = [_reference_retail_mac(TDES_KEY, m) for m in messages]
    expected_cmac = [_reference_cmac(AES_KEY, m) for m in messages]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda m: retail_mac(TDES_KEY, m), messages * 4))
        got_cmac = list(pool.map(lambda m: aes_cmac(AES_KEY, m), messages * 4))
    assert got == expected * 4
    assert got_cmac == expected_cmac * 4


# Message lengths by class: empty, shorter than a block, a partial last block, a whole number
# of blocks (padding then adds a whole block for the retail MAC; CMAC uses its K1 subkey).
_LENGTHS = st.one_of(
    st.just(0),
    st.integers(1, 7),
    st.integers(1, 40).map(lambda n: 16 * n),
    st.integers(1, 40).map(lambda n: 8 * n),
    st.integers(1, 320).filter(lambda n: n % 8),
)


@given(
    st.lists(
        st.tuples(st.binary(min_size=16, max_size=16), _LENGTHS, st.randoms(use_true_random=False)),
        min_size=1,
        max_size=6,
    )
)
def test_kept_mac_contexts_match_the_textbook_for_random_keys_and_every_length_class(cases):
    # Several keys interleaved: each key's kept context carries its own chain, and every MAC is
    # still the MAC of that message alone under that key.
    for key, length, rnd in cases:
        data = rnd.randbytes(length)
        assert retail_mac(key, data) == _reference_retail_mac(key, data)
        fresh = cmac.CMAC(algorithms.AES(key))
        fresh.update(data)
        assert aes_cmac(key, data) == fresh.finalize()[:8]


# The retail MAC's engines (protocol.libcrypto): single DES from the system's libcrypto, and
# the cryptography TDES path it falls back to. They must give the same bytes, always.
_des = libcrypto.load()
needs_libcrypto = pytest.mark.skipif(_des is None, reason=f"{libcrypto.load_error()}")


@needs_libcrypto
def test_the_retail_mac_runs_on_single_des_where_libcrypto_has_it():
    assert retail_mac_engine().startswith("single DES from libcrypto.so.3 (OpenSSL 3.")
    assert isinstance(
        security._mac_context(KeyScheme.TDES, TDES_KEY), security._DesRetailMacContext
    )


@needs_libcrypto
@given(
    st.binary(min_size=16, max_size=16),
    st.binary(max_size=400),
    st.integers(0, 400),
)
def test_single_des_engine_matches_the_cryptography_tdes_path(key, data, cut):
    assert _des is not None
    fast = security._DesRetailMacContext(key, _des)
    fallback = security._TdesRetailMacContext(key)
    n = min(cut, len(data))
    for length in (len(data), n):  # the whole data, and a prefix MAC'd in place
        expected = fallback.mac(data, length)
        assert fast.mac(data, length) == expected
        assert expected == _reference_retail_mac(key, data[:length])
    # Any buffer type gives the MAC of its bytes.
    assert fast.mac(bytearray(data), len(data)) == fallback.mac(data, len(data))  # type: ignore[arg-type]


@needs_libcrypto
def test_single_des_engine_every_length_and_the_golden_vectors():
    assert _des is not None
    fast = security._DesRetailMacContext(TDES_KEY, _des)
    data = bytes(range(256)) * 2
    for n in range(401):
        assert fast.mac(data, n) == _reference_retail_mac(TDES_KEY, data[:n]), n
    assert fast.mac(b"Now is the time for all ", 24).hex().upper() == "E9086230CA3BE796"
    assert fast.mac(b"0200F23A", 8).hex().upper() == "CE917AEE04410622"


@needs_libcrypto
def test_threads_macing_under_one_key_at_once_all_get_their_own_mac():
    assert _des is not None
    context = security._DesRetailMacContext(TDES_KEY, _des)
    messages = [bytes([n % 251]) * (n % 203) + n.to_bytes(4, "big") for n in range(400)]
    expected = [_reference_retail_mac(TDES_KEY, m) for m in messages]
    threads = 8
    start = threading.Barrier(threads)

    def work(offset: int) -> list[tuple[int, bytes]]:
        start.wait()  # every thread starts at once
        out = []
        for i in range(len(messages)):
            k = (i + offset * 50) % len(messages)
            out.append((k, context.mac(messages[k], len(messages[k]))))
        return out

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns between any two bytecodes, near enough
    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(work, range(threads)))
    finally:
        sys.setswitchinterval(interval)
    for result in results:
        assert len(result) == len(messages)
        for k, mac in result:
            assert mac == expected[k]


def test_without_libcrypto_the_retail_mac_falls_back_to_cryptography(monkeypatch):
    security._mac_context.cache_clear()
    libcrypto._loaded.cache_clear()
    monkeypatch.setattr(libcrypto, "LIBRARY", "libcrypto-absent.so.3")
    try:
        assert libcrypto.load() is None
        assert "libcrypto-absent.so.3" in (libcrypto.load_error() or "")
        assert retail_mac_engine().startswith("TDES under K1K1K1 from cryptography (no single DES")
        context = security._mac_context(KeyScheme.TDES, TDES_KEY)
        assert isinstance(context, security._TdesRetailMacContext)
        assert retail_mac(TDES_KEY, b"Now is the time for all ").hex().upper() == "E9086230CA3BE796"
    finally:
        monkeypatch.undo()
        security._mac_context.cache_clear()
        libcrypto._loaded.cache_clear()
    assert (libcrypto.load() is None) == (_des is None)


@needs_libcrypto
def test_the_checked_des_calls_refuse_what_would_read_or_write_out_of_bounds():
    assert _des is not None
    k1 = _des.schedule(bytes(8))
    out = libcrypto.Block()
    for data, whole, iv in [
        (b"12345678", 16, bytes(8)),  # more than the data holds
        (b"12345678", 4, bytes(8)),  # not whole blocks
        (b"12345678", -8, bytes(8)),
        (bytearray(8), 8, bytes(8)),  # not bytes
        (b"12345678", 8, bytes(4)),  # a short IV
    ]:
        with pytest.raises(ValueError):
            _des.cbc_mac_chain(data, whole, k1, iv, out)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _des.schedule(bytes(7))
    with pytest.raises(ValueError):
        _des.ede3_cbc_block(bytes(7), k1, k1, k1, libcrypto.Block(), out)
    with pytest.raises(ValueError):  # a buffer where a key schedule goes
        _des.ede3_cbc_block(bytes(8), k1, out, k1, libcrypto.Block(), out)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _des.cbc_mac_chain(bytes(8), 8, out, bytes(8), libcrypto.Block())  # type: ignore[arg-type]
    context = security._DesRetailMacContext(TDES_KEY, _des)
    with pytest.raises(ValueError):
        context.mac(b"12345678", 9)


@pytest.mark.parametrize("scheme", list(KeyScheme))
def test_a_mac_of_a_prefix_is_the_mac_of_those_bytes(scheme):
    data = bytes(range(200))
    for n in (0, 7, 8, 64, 199, 200):
        assert compute_mac_ascii(scheme, TDES_KEY, data, n) == compute_mac_ascii(
            scheme, TDES_KEY, data[:n]
        )
    for n in (-1, 201):
        with pytest.raises(LocalProtocolError):
            compute_mac_ascii(scheme, TDES_KEY, data, n)
