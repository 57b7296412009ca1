"""Link codec benchmark: frame + MAC + encode + decode (+ verify) of a 0200, side by side with
bare pyiso8583 encode + decode of the same 0200, in one run.

    .venv/bin/python bench/bench_link_codec.py [--short]

The anchor is the same 0200 as it goes on the wire, DE 64 included (bare pyiso8583 with our
spec, no MAC computed or checked, no framing), so the ratio is the cost of framing and MAC.
Rounds are short and interleaved: each round times every variant once, in an order that
rotates from round to round, and a round's ratio compares variants timed within milliseconds of
each other. The figure is the median of the rounds' ratios, so a burst of load from another
process moves a round or two, not the verdict. Times are this process's CPU time.

What bounds the ratio is printed too: one MAC alone, the block cipher work inside one retail
MAC alone, and the ceiling, bare / (bare + two MACs alone): the ratio if framing, encoding and
decoding cost nothing beyond pyiso8583. A MAC run between encodes and decodes costs more than
one run alone in a tight loop (caches), so the same bound is measured that way too: bare
encode + decode and two MACs in one loop. The retail MAC runs on single DES from the system's
libcrypto where there is one (``protocol.libcrypto``), else on ``cryptography``'s TDES, which
has no single DES, so its CBC chain under K1 costs three DES operations a block; the first
line says which engine ran. The cipher work is timed for both: "its single-DES work" (the two
libcrypto calls of a MAC, printed only where the library is there) and "its TDES work" (what
the MAC costs on the fallback).
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import iso8583
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from protocol import libcrypto
from protocol.framing import Framer, encode_frame
from protocol.mac import encode_signed, verify_signed
from protocol.messages import decode
from protocol.pinblock import encrypt_format0
from protocol.security import KeyScheme, compute_mac_ascii, retail_mac_engine
from protocol.spec import SPEC

KEY = bytes.fromhex("F1E2D3C4B5A69788796A5B4C3D2E1F00")
PAN = "4000001234567899"
MESSAGE = {
    "t": "0200",
    "2": PAN,
    "3": "012000",
    "4": "000000010000",
    "7": "1128120200",
    "11": "000004",
    "12": "120000",
    "13": "1128",
    "35": PAN + "=30121010000000000000",
    "41": "ATM00001",
    "42": "ATMSIM000000001",
    "49": "840",
    "52": encrypt_format0("1234", PAN, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    .hex()
    .upper(),
}


def _bare(message: dict[str, str]) -> Callable[[], None]:
    def run() -> None:
        data, _ = iso8583.encode(dict(message), SPEC)
        iso8583.decode(data, SPEC)

    return run


# The 0200 as it travels: every field above plus its MAC in DE 64 (the value does not change
# the codec's work).
bare = _bare({**MESSAGE, "64": "0123456789ABCDEF"})
# The same without DE 64: the anchor of earlier runs, one field less to encode and decode.
bare_without_mac_field = _bare(MESSAGE)


def ours(scheme: KeyScheme) -> Callable[[], None]:
    framer = Framer()  # one per connection, as on the link

    def run() -> None:
        wire = encode_frame(encode_signed(MESSAGE, scheme, KEY))
        (frame,) = framer.feed(wire)
        message = decode(frame)
        verify_signed(frame, message, scheme, KEY)

    return run


def measure(fn: Callable[[], None], iterations: int) -> float:
    """CPU seconds per call over one round: this process's CPU time, not the wall clock, so
    other work on a shared machine does not land in one variant's rounds."""
    start = time.process_time()
    for _ in range(iterations):
        fn()
    return (time.process_time() - start) / iterations


BARE = "bare pyiso8583 encode+decode"
BARE_WITHOUT_MAC_FIELD = "  same, 0200 without DE 64"


def mac_only(scheme: KeyScheme) -> Callable[[], None]:
    """One MAC over the 0200's MAC input, nothing else: what bounds scheme T's ratio."""
    body = encode_signed(MESSAGE, scheme, KEY)[:-16]

    def run() -> None:
        compute_mac_ascii(scheme, KEY, body)

    return run


def mac_name(scheme: KeyScheme) -> str:
    return f"  one MAC alone, scheme {scheme.value}"


def bare_and_macs(scheme: KeyScheme) -> Callable[[], None]:
    """Bare encode + decode and two MACs over the 0200's MAC input, in one loop: all that the
    round trip must do, nothing of ours around it. A MAC costs more here than alone (each
    pushes the other's code and data out of the caches), so this, not ``ceiling``, is the
    bound that ``ours`` can approach."""
    body = encode_signed(MESSAGE, scheme, KEY)[:-16]

    def run() -> None:
        bare()
        compute_mac_ascii(scheme, KEY, body)
        compute_mac_ascii(scheme, KEY, body)

    return run


def bare_and_macs_name(scheme: KeyScheme) -> str:
    return f"  bare + two MACs, scheme {scheme.value}"


def retail_cipher_work() -> Callable[[], None]:
    """The TDES work inside one retail MAC of the 0200 on the fallback engine and nothing
    else: the CBC chain under K1K1K1 over every block but the last, one TDES block under
    K1K2K1 (kept contexts, as protocol.security keeps them)."""
    body = encode_signed(MESSAGE, KeyScheme.TDES, KEY)[:-16]
    padded = body + b"\x80" + bytes(-(len(body) + 1) % 8)
    chain = Cipher(TripleDES(KEY[:8] * 3), modes.CBC(bytes(8))).encryptor()
    finish = Cipher(TripleDES(KEY + KEY[:8]), modes.ECB()).encryptor()  # noqa: S305  # nosec B305
    blocks, last = padded[:-8], padded[-8:]

    def run() -> None:
        chain.update(blocks)
        finish.update(last)

    return run


RETAIL_CIPHER = "  its TDES work alone, scheme T"


def retail_single_des_work(des: libcrypto.SingleDes) -> Callable[[], None]:
    """The single-DES work inside one retail MAC of the 0200 and nothing else: the two
    libcrypto calls as ``protocol.security`` makes them (CBC chain under K1 over every whole
    block, then one TDES-EDE-CBC block under K1, K2, K1), key schedules made once. The rest of
    ``mac_only(TDES)`` is Python around it."""
    body = encode_signed(MESSAGE, KeyScheme.TDES, KEY)[:-16]
    whole = len(body) & -8
    last = body[whole:] + b"\x80" + bytes(7 - len(body) % 8)
    keys = des.schedule(KEY[:8]), des.schedule(KEY[8:])
    blocks = libcrypto.Block(), libcrypto.Block()
    k1, k2 = (ctypes.byref(k) for k in keys)
    chain, out = (ctypes.byref(b) for b in blocks)
    zero, length = bytes(8), libcrypto.block_length(whole)
    cbc_cksum, ede3_cbc = des.hot_calls()  # the arguments as protocol.security passes them

    def run() -> None:
        cbc_cksum(body, chain, length, k1, zero)
        ede3_cbc(last, out, libcrypto.ONE_BLOCK, k1, k2, k1, chain, libcrypto.DES_ENCRYPT)

    return run


RETAIL_SINGLE_DES = "  its single-DES work alone, scheme T"


def variant_name(scheme: KeyScheme) -> str:
    mac = "retail MAC" if scheme is KeyScheme.TDES else "AES-CMAC"
    return f"ours, scheme {scheme.value} ({mac})"


@dataclass(frozen=True)
class CodecFigures:
    """Seconds per message of every variant in every round (rounds interleaved)."""

    times: dict[str, list[float]]
    iterations: int

    @property
    def rounds(self) -> int:
        return len(self.times[BARE])

    def seconds(self, name: str) -> float:
        """Median seconds per message over the rounds."""
        return statistics.median(self.times[name])

    def ceiling(self, scheme: KeyScheme) -> float:
        """The best ratio ``scheme`` could reach if framing, encoding and decoding cost nothing
        beyond pyiso8583: per round, bare / (bare + two MACs alone), the median."""
        pairs = zip(self.times[BARE], self.times[mac_name(scheme)], strict=True)
        return statistics.median(b / (b + 2 * m) for b, m in pairs)

    def ratio(self, name: str, base: str = BARE) -> float:
        """Throughput of ``name`` against ``base``: the median over the rounds of base's time
        over name's time in the same round."""
        pairs = zip(self.times[base], self.times[name], strict=True)
        return statistics.median(b / t for b, t in pairs)


def run(iterations: int, rounds: int) -> CodecFigures:
    variants: dict[str, Callable[[], None]] = {
        BARE: bare,
        BARE_WITHOUT_MAC_FIELD: bare_without_mac_field,
        variant_name(KeyScheme.TDES): ours(KeyScheme.TDES),
        variant_name(KeyScheme.AES): ours(KeyScheme.AES),
        bare_and_macs_name(KeyScheme.TDES): bare_and_macs(KeyScheme.TDES),
        bare_and_macs_name(KeyScheme.AES): bare_and_macs(KeyScheme.AES),
        mac_name(KeyScheme.TDES): mac_only(KeyScheme.TDES),
        mac_name(KeyScheme.AES): mac_only(KeyScheme.AES),
        RETAIL_CIPHER: retail_cipher_work(),
    }
    des = libcrypto.load()
    if des is not None:
        variants[RETAIL_SINGLE_DES] = retail_single_des_work(des)
    names = list(variants)
    for fn in variants.values():  # warm-up
        measure(fn, 50)
    times: dict[str, list[float]] = {name: [] for name in names}
    for n in range(rounds):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            times[name].append(measure(variants[name], iterations))
    return CodecFigures(times, iterations)


SHORT = (200, 15)  # iterations per round, rounds
FULL = (500, 61)


def main() -> None:
    parser = argparse.ArgumentParser(description="link codec benchmark")
    parser.add_argument("--short", action="store_true", help="a quick run for CI")
    args = parser.parse_args()
    iterations, rounds = SHORT if args.short else FULL
    figures = run(iterations, rounds)
    print(
        f"0200 withdrawal, {len(encode_signed(MESSAGE, KeyScheme.TDES, KEY))} bytes; "
        f"{rounds} interleaved rounds x {iterations} messages, medians; "
        f"retail MAC on {retail_mac_engine()}"
    )
    for name in figures.times:
        seconds = figures.seconds(name)
        print(
            f"{name:<38} {1 / seconds:>10,.0f} msg/s {seconds * 1e6:>9.1f} us/msg "
            f"throughput ratio {figures.ratio(name):5.2f}x "
            f"({figures.ratio(name, BARE_WITHOUT_MAC_FIELD):4.2f}x against the 0200 without DE 64)"
        )
    for scheme in KeyScheme:
        print(
            f"ceiling, scheme {scheme.value}: {figures.ceiling(scheme):.2f}x "
            "(bare / (bare + two MACs alone): the ratio if all but the MACs cost nothing); "
            f"in one loop {figures.ratio(bare_and_macs_name(scheme)):.2f}x "
            "(bare + two MACs: the MACs as they cost beside the codec)"
        )


if __name__ == "__main__":
    main()
