"""The keyed digests of ``host.bank.pins.PinVerifier``: the card-session token and a request's
fingerprint are HMAC-SHA256 under SECRET_KEY exactly as before they were computed from one
prepared key (a record stored by an older host must still match a repeat), the same however
many are made (a token is kept for the next look-ups, and the kept ones stay bounded), from
several threads at once too, and different under another key."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac

from host.bank.pins import TOKENS_KEPT, PinVerifier

SECRET = "test-secret-key-for-the-digests"
BLOCK = bytes.fromhex("0412ac89abcdef67")


def _verifier(secret: str = SECRET) -> PinVerifier:
    return PinVerifier(pepper="pepper", secret_key=secret, workers=1)


def test_the_digests_are_hmac_sha256_under_the_secret_key() -> None:
    pins = _verifier()
    try:
        token = pins.session_token("4000001234567899", "ATM00001", BLOCK)
        expected = hmac.new(
            SECRET.encode(), b"ATM00001|4000001234567899|" + BLOCK, hashlib.sha256
        ).hexdigest()
        assert token == expected
        assert (
            pins.fingerprint("content")
            == hmac.new(SECRET.encode(), b"content", hashlib.sha256).hexdigest()
        )
        # The prepared key is copied, never fed: the second digest equals the first.
        assert pins.session_token("4000001234567899", "ATM00001", BLOCK) == token
        assert pins.fingerprint("content") == pins.fingerprint("content")
    finally:
        pins.close()


def test_threads_at_once_get_the_same_digests() -> None:
    pins = _verifier()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as threads:
            texts = [f"request {n}" for n in range(2_000)]
            got = list(threads.map(pins.fingerprint, texts))
        assert got == [
            hmac.new(SECRET.encode(), t.encode(), hashlib.sha256).hexdigest() for t in texts
        ]
    finally:
        pins.close()


def test_another_key_gives_other_digests() -> None:
    one, two = _verifier(), _verifier("another-secret-key-for-the-test")
    try:
        assert one.fingerprint("content") != two.fingerprint("content")
        assert one.session_token("4000001234567899", "ATM00001", BLOCK) != two.session_token(
            "4000001234567899", "ATM00001", BLOCK
        )
    finally:
        one.close()
        two.close()


def test_tokens_kept_stay_right_and_bounded() -> None:
    pins = _verifier()
    try:
        pans = [f"40000012345{n:05d}" for n in range(TOKENS_KEPT + 500)]
        for _ in range(2):  # the second pass finds some kept, computes the others again
            for pan in pans[::97] + pans:
                assert (
                    pins.session_token(pan, "ATM00001", BLOCK)
                    == hmac.new(
                        SECRET.encode(), f"ATM00001|{pan}|".encode() + BLOCK, hashlib.sha256
                    ).hexdigest()
                )
        assert 0 < len(pins._tokens) <= TOKENS_KEPT
    finally:
        pins.close()
