"""TLS for the host link, on the standard library's ``ssl``: the contexts both ends use and the
terminal identity a client certificate carries.

* TLS 1.2 is the minimum; 1.3 is negotiated when both ends have it (``ssl`` prefers it).
* The ATM verifies the host's certificate against a CA file and checks the host name.
* Mutual TLS (optional): the host asks every terminal for a client certificate issued by its
  client CA; the certificate's subject common name is the terminal ID, which must equal DE 41
  of every message on that connection (the host's link server enforces it).

Certificates and keys are given as a file path or as the PEM text itself (a value starting
with ``-----BEGIN``), so a container can take them from a secret store through the
environment. PEM text is written to a private temporary directory only for as long as
``ssl`` needs to read it.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from protocol.errors import ProtocolError

__all__ = [
    "TlsError",
    "certificate_terminal_id",
    "client_context",
    "is_pem",
    "server_context",
]

_PEM = "-----BEGIN"


class TlsError(ProtocolError):
    """A certificate, key or CA that cannot be loaded (the message says which and why)."""


def is_pem(value: str) -> bool:
    return value.lstrip().startswith(_PEM)


@contextlib.contextmanager
def _as_file(value: str, what: str) -> Iterator[str]:
    """A path ``ssl`` can read: ``value`` itself, or a 0600 file holding its PEM text."""
    if not is_pem(value):
        if not Path(value).is_file():
            raise TlsError(f"{what}: no such file: {value}")
        yield value
        return
    with tempfile.TemporaryDirectory(prefix="atm-tls-") as directory:
        path = Path(directory) / "pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value.strip() + "\n")
        yield str(path)


def _base(protocol: ssl._SSLMethod) -> ssl.SSLContext:
    # Not create_default_context(): it would also trust the system's CAs, and the link trusts
    # only the CA it is given. PROTOCOL_TLS_CLIENT verifies the peer and its host name.
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _load_chain(context: ssl.SSLContext, cert: str, key: str, what: str) -> None:
    with _as_file(cert, f"{what} certificate") as cert_path, _as_file(key, f"{what} key") as kp:
        try:
            context.load_cert_chain(cert_path, kp)
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(f"{what} certificate and key do not load: {exc}") from exc


def _load_ca(context: ssl.SSLContext, ca: str, what: str) -> None:
    with _as_file(ca, what) as path:
        try:
            context.load_verify_locations(cafile=path)
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(f"{what} does not load: {exc}") from exc


def server_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """The host's context: its certificate and key; with ``client_ca``, every terminal must
    present a certificate issued by that CA (mutual TLS)."""
    context = _base(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(context, cert, key, "host")
    if client_ca:
        _load_ca(context, client_ca, "client CA")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(ca: str, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """The terminal's context: the host is verified against ``ca`` (chain and host name);
    ``cert`` and ``key`` are the terminal's own certificate for mutual TLS."""
    context = _base(ssl.PROTOCOL_TLS_CLIENT)
    _load_ca(context, ca, "host CA")
    if cert or key:
        if not (cert and key):
            raise TlsError("a terminal certificate needs its key (and the key its certificate)")
        _load_chain(context, cert, key, "terminal")
    return context


def certificate_terminal_id(peer_certificate: dict[str, Any] | None) -> str | None:
    """The terminal ID a verified client certificate names: its subject common name."""
    if not peer_certificate:
        return None
    for rdn in peer_certificate.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None
