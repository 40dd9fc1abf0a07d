"""Who is the client: the one function that turns a WSGI environ into the client's address and URL
scheme, honouring ``X-Forwarded-For``/``X-Forwarded-Proto`` only from trusted reverse proxies.

Session binding and login throttling key on this address, so a header anyone can send must not
decide it: without trusted proxies the address is the TCP peer's; with them, ``X-Forwarded-For``
is read from the right, skipping trusted proxies, and the first address that is not one is the
client (the leftmost entries were written by the client itself and prove nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["TrustedProxies", "client_origin", "parse_trusted"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TrustedProxies = tuple[Network, ...]


def parse_trusted(specs: Iterable[str]) -> TrustedProxies:
    """Addresses or networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``); ``ValueError`` names a bad one."""
    out: list[Network] = []
    for spec in specs:
        for part in spec.split(","):
            if part.strip():
                try:
                    out.append(ipaddress.ip_network(part.strip(), strict=False))
                except ValueError:
                    raise ValueError(f"not an IP address or network: {part.strip()!r}") from None
    return tuple(out)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None, trusted: TrustedProxies) -> bool:
    return addr is not None and any(addr in net for net in trusted)


def client_origin(environ: Mapping[str, Any], trusted: TrustedProxies = ()) -> tuple[str, str]:
    """(client address, URL scheme) of a request: see the module docstring."""
    peer = str(environ.get("REMOTE_ADDR") or "")
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    if not trusted or not _trusted(_ip(peer), trusted):
        return peer, scheme
    proto = str(environ.get("HTTP_X_FORWARDED_PROTO") or "").split(",")[0].strip().lower()
    if proto in ("http", "https"):
        scheme = proto
    hops = [h for h in str(environ.get("HTTP_X_FORWARDED_FOR") or "").split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        addr = _ip(hop)
        if addr is None:  # garbage: the last proxy we trust is the client we know
            break
        client = str(addr)
        if not _trusted(addr, trusted):
            break
    return client, scheme
