"""One ISO-8583 balance inquiry against a running host, sent the way an ATM sends it.

``python -m scripts.smoke_iso --host HOST --port 8583`` connects as a terminal through the
device's own ``HostLink`` (connect, sign on and receive the working keys into a simulated PIN
pad: without a working PIN key the pad refuses PIN entry), encrypts the test card's PIN in
that PIN pad, sends a 0100 balance inquiry for the card's checking account and checks the
0110: response code 00 and a DE 54 balance. It prints the masked PAN, the response code and
the balance; exit status 0 when approved, 1 otherwise, 2 for bad options.

It uses the seed data's test card (Alice, PIN 1234) and the development keys unless told
otherwise: ``--track2``, ``SMOKE_PIN``, ``--terminal-id``, ``--key-scheme`` (T or A) and
``--key-block`` (tr31 or legacy) as the host has them for that terminal, and its keys from
``TERMINAL_MASTER_KEYS`` (``ATM00010=<hex>,...``), the host's own variable name, so the value
from Secrets Manager can be exported as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from atm.commands.device import add_key_options
from device.config import LOCAL_HOSTS, DeviceConfig
from device.errors import DeviceConfigError
from device.hostlink import HostLink
from drivers.simulated import SimulatedPinPad
from protocol.errors import LinkError
from protocol.keyblock import DEFAULT_KEY_BLOCK, KeyBlockFormat
from protocol.masking import mask_pan
from protocol.messages import (
    AccountType,
    Mti,
    TransactionType,
    format_amount,
    format_processing_code,
    parse_balances,
)
from protocol.response_codes import ResponseCode
from protocol.security import KeyScheme
from protocol.stan import StanGenerator

__all__ = ["InquiryResult", "TerminalKeys", "balance_inquiry", "main", "terminal_keys"]

ALICE_TRACK2 = "4000001234567899=30121010000000000000"
DEFAULT_TERMINAL = "ATM00010"  # a seed terminal the compose fleet does not use


@dataclass(frozen=True)
class InquiryResult:
    signed_on: bool
    response_code: str | None
    balance_cents: int | None
    masked_pan: str

    @property
    def ok(self) -> bool:
        return self.response_code == ResponseCode.APPROVED and self.balance_cents is not None


@dataclass(frozen=True)
class TerminalKeys:
    """The terminal master key (hex) for the simulated PIN pad; None keeps
    ``DeviceConfig``'s development key. Working keys come from the host at sign-on."""

    master_key: str | None = None

    def __repr__(self) -> str:  # never print keys
        return "TerminalKeys(...)"


def terminal_keys(terminal_id: str, env: Mapping[str, str]) -> TerminalKeys:
    """The keys of ``terminal_id`` from the host's own variables, where they are set."""
    master = None
    for item in env.get("TERMINAL_MASTER_KEYS", "").split(","):
        terminal, _, value = item.strip().partition("=")
        if terminal == terminal_id and value:
            master = value.strip()
    return TerminalKeys(master)


async def balance_inquiry(
    host: str,
    port: int,
    *,
    track2: str = ALICE_TRACK2,
    pin: str = "1234",
    terminal_id: str = DEFAULT_TERMINAL,
    keys: TerminalKeys | None = None,
    timeout: float = 10.0,
    state_dir: Path | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    key_scheme: KeyScheme = KeyScheme.TDES,
    key_block: KeyBlockFormat = DEFAULT_KEY_BLOCK,
) -> InquiryResult:
    pan = track2.replace("D", "=").partition("=")[0]
    with tempfile.TemporaryDirectory(prefix="smoke-iso-") as scratch:
        config = DeviceConfig(
            terminal_id=terminal_id,
            host=host,
            port=port,
            state_dir=state_dir or Path(scratch),
            response_timeout=timeout,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            key_scheme=key_scheme,
            key_block=key_block,
            # The operator names the host to test on the command line: that is the allow-list.
            allowed_hosts=(*LOCAL_HOSTS, host),
        )
        if keys is not None and keys.master_key is not None:
            config = replace(config, terminal_master_key=keys.master_key)
        pin_pad = SimulatedPinPad(config.master_key, config.key_scheme)
        link = HostLink(config, StanGenerator(), on_pin_key=pin_pad.load_working_key)
        try:
            if not await link.ensure_online():
                return InquiryResult(False, None, None, mask_pan(pan))
            pin_pad.press(*pin, "ENTER")
            block = await pin_pad.read_pin(pan, timeout)
            message = link.base_message(Mti.AUTHORIZATION_REQUEST)
            message.update(
                {
                    "2": pan,
                    "3": format_processing_code(
                        TransactionType.BALANCE_INQUIRY, AccountType.CHECKING
                    ),
                    "4": format_amount(0),
                    "35": track2,
                    "49": config.currency,
                    "52": block.ciphertext.hex().upper(),
                }
            )
            response = await link.request(message)
        finally:
            await link.close()
    balances = parse_balances(response["54"]) if "54" in response else []
    available = [b.cents for b in balances if b.amount_type == "02"] or [b.cents for b in balances]
    return InquiryResult(
        True, response.get("39"), available[0] if available else None, mask_pan(pan)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.smoke_iso",
        description="Send one ISO-8583 balance inquiry to a running host (see the module doc).",
    )
    parser.add_argument("--host", required=True, help="host address of the ISO link")
    parser.add_argument("--port", type=int, default=8583, help="ISO link port (8583)")
    parser.add_argument("--terminal-id", default=DEFAULT_TERMINAL, help="8-character terminal")
    parser.add_argument("--track2", default=ALICE_TRACK2, help="test card's track 2")
    parser.add_argument("--timeout", type=float, default=10.0, help="response timeout, s")
    parser.add_argument("--tls-ca", help="TLS: CA file the host's certificate chains to")
    parser.add_argument("--tls-cert", help="TLS: the terminal's client certificate (mutual)")
    parser.add_argument("--tls-key", help="TLS: the client certificate's key")
    add_key_options(parser)
    args = parser.parse_args(argv)
    pin = os.environ.get("SMOKE_PIN", "1234")
    try:
        result = asyncio.run(
            balance_inquiry(
                args.host,
                args.port,
                track2=args.track2,
                pin=pin,
                terminal_id=args.terminal_id,
                keys=terminal_keys(args.terminal_id, os.environ),
                timeout=args.timeout,
                tls_ca=args.tls_ca,
                tls_cert=args.tls_cert,
                tls_key=args.tls_key,
                key_scheme=KeyScheme(args.key_scheme),
                key_block=KeyBlockFormat(args.key_block),
            )
        )
    except LinkError as exc:
        print(f"smoke_iso: FAIL link error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, DeviceConfigError) as exc:  # bad key or terminal ID
        print(f"smoke_iso: bad option: {exc}", file=sys.stderr)
        return 2
    if not result.signed_on:
        print(f"smoke_iso: FAIL no sign-on at {args.host}:{args.port}", file=sys.stderr)
        return 1
    balance = "-" if result.balance_cents is None else f"{result.balance_cents / 100:,.2f}"
    verdict = "ok" if result.ok else "FAIL"
    print(
        f"smoke_iso: {verdict} balance inquiry {result.masked_pan} via {args.terminal_id}: "
        f"response {result.response_code}, available balance {balance}"
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
