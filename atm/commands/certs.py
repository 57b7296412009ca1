"""``atm certs dev``: make a development CA, a host certificate and terminal certificates for
TLS on the host link (see docs/deployment.md, "TLS on the host link")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from atm.certs import DEFAULT_HOST_NAMES, write_dev_pki
from host.bank.seed import SEED_TERMINALS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "certs",
        help="TLS certificates for the host link (development)",
        description="Certificates for TLS on the host link.",
    )
    sub = parser.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    dev = sub.add_parser(
        "dev",
        help="make a development CA, a host certificate and terminal certificates",
        description="Write ca.pem (+ ca-key.pem), host.pem + host-key.pem and, per terminal, "
        "terminal-ID.pem + terminal-ID-key.pem into DIR. Private keys are 0600. The terminal "
        "certificates name the terminal ID as their common name, which mutual TLS checks "
        "against DE 41. For development and tests only.",
    )
    dev.add_argument("--dir", default="var/certs", help="output directory (var/certs)")
    dev.add_argument(
        "--terminal",
        action="append",
        metavar="ID",
        help="terminal ID to certify (repeatable; default the seeded ATM00001..ATM00010)",
    )
    dev.add_argument(
        "--host-name",
        action="append",
        metavar="NAME",
        help="name or address the host is reached by (repeatable; default "
        f"{', '.join(DEFAULT_HOST_NAMES)})",
    )
    dev.set_defaults(func=_dev)


def _dev(args: argparse.Namespace) -> int:
    terminals = args.terminal or list(SEED_TERMINALS)
    bad = [t for t in terminals if len(t) != 8]
    if bad:
        print(f"atm certs dev: terminal IDs are 8 characters: {', '.join(bad)}", file=sys.stderr)
        return 2
    names = args.host_name or list(DEFAULT_HOST_NAMES)
    pki = write_dev_pki(Path(args.dir), terminals, names)
    print(f"CA:        {pki.ca}")
    print(f"host:      {pki.host_cert} + {pki.host_key} (names: {', '.join(names)})")
    print(f"terminals: {len(terminals)} in {pki.directory} (terminal-ID.pem + terminal-ID-key.pem)")
    print(
        f"host:   LINK_TLS_CERT={pki.host_cert} LINK_TLS_KEY={pki.host_key} "
        f"LINK_TLS_CLIENT_CA={pki.ca} atm host"
    )
    t = terminals[0]
    print(
        f"device: atm device --terminal-id {t} --tls-ca {pki.ca} "
        f"--tls-cert {pki.terminal_cert(t)} --tls-key {pki.terminal_key(t)}"
    )
    return 0
