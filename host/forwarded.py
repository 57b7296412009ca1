"""The client's address of an HTTP request that may have come through proxies.

``X-Forwarded-For`` is a list each proxy appends its peer's address to, so only its right
end can be believed, and only as far as the proxies are ours: starting from the TCP peer,
walk right to left while the address is a trusted proxy (``OPS_TRUSTED_PROXIES``); the first
address that is not is the client. Without trusted proxies, or when the peer is not one,
the header is ignored: anyone can send it. Sans-IO: addresses in, an address out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["Network", "client_address", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(raw: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks (``10.0.1.0/24, 10.0.2.0/24``);
    ``ValueError`` naming the first bad one."""
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ValueError(
                f"{item!r} is not an address or a network in CIDR form such as 10.0.0.0/16 ({exc})"
            ) from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_address(peer: str | None, forwarded: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` (the TCP peer), or, when it is a trusted proxy, the
    rightmost address of the ``X-Forwarded-For`` headers (``forwarded``, in order) that is
    not a trusted proxy. A malformed entry stops the walk at the proxy that passed it on."""
    if peer is None:
        return "?"
    current = _address(peer)
    if current is None or not trusted or not _trusted(current, trusted):
        return peer
    hops = [hop for header in forwarded for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)
