"""Link codec benchmark: frame + MAC + encode + decode (+ verify) of a 0200, side by side with
bare pyiso8583 encode + decode of the same message, in one run.

    .venv/bin/python bench/bench_link_codec.py [--short] [--seconds N]

Prints messages per second and microseconds per message for each, and the ratio (the cost of
our framing and MAC over the bare codec). Rounds alternate between the variants so that machine
noise hits them alike; the best round of each is reported.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import iso8583

from protocol.framing import Framer, encode_frame
from protocol.mac import encode_signed, verify_signed
from protocol.messages import decode
from protocol.pinblock import encrypt_format0
from protocol.security import KeyScheme
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


def bare() -> None:
    data, _ = iso8583.encode(dict(MESSAGE), SPEC)
    iso8583.decode(data, SPEC)


def ours(scheme: KeyScheme) -> Callable[[], None]:
    def run() -> None:
        wire = encode_frame(encode_signed(MESSAGE, scheme, KEY))
        (frame,) = Framer().feed(wire)
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


def variant_name(scheme: KeyScheme) -> str:
    mac = "retail MAC" if scheme is KeyScheme.TDES else "AES-CMAC"
    return f"ours, scheme {scheme.value} ({mac})"


def run(iterations: int, rounds: int) -> dict[str, float]:
    """Best seconds per message of each variant (bare, then both key schemes)."""
    variants: dict[str, Callable[[], None]] = {
        BARE: bare,
        variant_name(KeyScheme.TDES): ours(KeyScheme.TDES),
        variant_name(KeyScheme.AES): ours(KeyScheme.AES),
    }
    for fn in variants.values():  # warm-up
        measure(fn, 50)
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, fn in variants.items():
            best[name] = min(best[name], measure(fn, iterations))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description="link codec benchmark")
    parser.add_argument("--short", action="store_true", help="a quick run for CI")
    args = parser.parse_args()
    iterations, rounds = (300, 3) if args.short else (5_000, 7)
    best = run(iterations, rounds)
    base = best[BARE]
    print(
        f"0200 withdrawal, {len(encode_signed(MESSAGE, KeyScheme.TDES, KEY))} bytes; "
        f"{rounds} rounds x {iterations} messages, best round"
    )
    for name, seconds in best.items():
        print(
            f"{name:<30} {1 / seconds:>10,.0f} msg/s {seconds * 1e6:>9.1f} us/msg "
            f"throughput ratio {base / seconds:5.2f}x"
        )


if __name__ == "__main__":
    main()
