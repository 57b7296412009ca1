"""Development certificates for the host link's TLS (``atm certs dev``), made with
``cryptography``: a CA, the host's server certificate and one client certificate per terminal
whose subject common name is the terminal ID (mutual TLS binds it to DE 41).

For local use and tests only: the CA key sits next to the certificates. Every private key file
is created 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DevPki", "Issued", "issue", "make_ca", "write_dev_pki"]

DEFAULT_HOST_NAMES = ("localhost", "127.0.0.1", "::1")
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    certificate: bytes
    key: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "atm-simulator development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(common_name: str | None = None, *, now: dt.datetime | None = None) -> Issued:
    # A name of its own per CA: two development CAs never look like one to a verifier.
    common_name = common_name or f"atm-simulator development CA {secrets.token_hex(4)}"
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 3650 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(
    ca: Issued,
    common_name: str,
    *,
    server_names: Sequence[str] = (),
    client: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A leaf certificate signed by ``ca``: a server certificate for ``server_names`` (DNS
    names or IP addresses), or with ``client`` a terminal's client certificate."""
    now = dt.datetime.now(dt.UTC)
    ca_cert = ca.cert
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - _DAY)
        .not_valid_after(not_after or now + 825 * _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server_names:
        alt: list[x509.GeneralName] = []
        for entry in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(entry)))
            except ValueError:
                alt.append(x509.DNSName(entry))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclass(frozen=True)
class DevPki:
    """Where ``write_dev_pki`` put everything."""

    directory: Path
    terminals: tuple[str, ...]

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def host_cert(self) -> Path:
        return self.directory / "host.pem"

    @property
    def host_key(self) -> Path:
        return self.directory / "host-key.pem"

    def terminal_cert(self, terminal_id: str) -> Path:
        return self.directory / f"terminal-{terminal_id}.pem"

    def terminal_key(self, terminal_id: str) -> Path:
        return self.directory / f"terminal-{terminal_id}-key.pem"


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def write_dev_pki(
    directory: Path, terminals: Sequence[str], host_names: Sequence[str] = DEFAULT_HOST_NAMES
) -> DevPki:
    """A fresh CA, host certificate and terminal certificates in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = DevPki(directory, tuple(terminals))
    ca = make_ca()
    _write(pki.ca, ca.certificate, secret=False)
    _write(directory / "ca-key.pem", ca.key, secret=True)
    host = issue(ca, host_names[0] if host_names else "localhost", server_names=host_names)
    _write(pki.host_cert, host.certificate, secret=False)
    _write(pki.host_key, host.key, secret=True)
    for terminal in terminals:
        leaf = issue(ca, terminal, client=True)
        _write(pki.terminal_cert(terminal), leaf.certificate, secret=False)
        _write(pki.terminal_key(terminal), leaf.key, secret=True)
    return pki
