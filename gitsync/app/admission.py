"""Which open session a request continues, and what sessions that have not logged in may cost.

The policy (README, *Robustness*):

- A session continues only with its **key** -- the ``sessionid`` of the RespURI we hand out, or
  the cookie we set -- which only its client has; with users configured, also only from the
  address it began at.  Or with **fresh credentials** that prove the session's user.
- The (SessionID, device id) of the SyncHdr are no secret (anyone on the path sees them, and a
  device id is often printed on the device): they find a session only on a server *without
  users*, and then only from the address the session began at (two clients behind one NAT or
  proxy are one address, but without users both may sync anyway).
- A session that has not *established* itself -- not logged in; without users, not past its first
  message -- and on a server without users *every* session (none ever authenticates) counts
  against a cap per client address (an IPv6 client: per /64 network, which one
  host usually owns): a new one beyond the cap drops the one of that address idle longest.  Such sessions
  expire after ``stranger_timeout`` (2 minutes), established ones after ``session_timeout`` idle.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gitsync.app.sessions import SessionTable
from gitsync.protocol.messages import Message
from gitsync.transport.wsgi import Request

__all__ = ["address_group", "continued_session", "established", "make_room", "request_key"]


def address_group(addr: str) -> str:
    """The address whose sessions share one cap: the IPv4 address, or the IPv6 /64 network."""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return addr
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def request_key(request: Request) -> str | None:
    """The session key the request names in its URL (RespURI ``?sessionid=`` or ``;sessionid=``)."""
    key = request.query.get("sessionid")
    if not key and ";sessionid=" in request.path:
        key = request.path.split(";sessionid=", 1)[1].split(";")[0]
    return key or None


def continued_session(table: SessionTable, request: Request, msg: Message, *, users: bool) -> str | None:
    """The key of the open session ``request`` continues, or ``None``: it starts a new one."""

    def open_here(key: str | None) -> bool:
        info = table.info(key)
        return info is not None and (not users or info.addr == request.remote_addr)

    key = request_key(request)
    if open_here(key):
        return key
    key = request.cookies.get("sessionid")
    if msg.header.msg_id > 1 and open_here(key):
        return key
    if msg.header.msg_id <= 1:
        return None  # a client (re)starting a session: never resume one it abandoned
    key = table.by_device((msg.header.session_id, msg.header.source))
    info = table.info(key)
    if key is None or info is None:
        return None
    if not users:
        return key if info.addr == request.remote_addr else None
    run: Any = table.get(key)  # with users: only credentials that prove the session's user
    return key if run is not None and run.session.proves_user(msg.header) else None


def established(run: Any, *, users: bool, first: bool) -> bool:
    """Whether a session has shown it is more than a stranger's package 1 (it is then not capped)."""
    return run.session.user is not None if users else not first


def make_room(table: SessionTable, group: str, cap: int, cap_all: int) -> list[str]:
    """Drop the sessions not established idle longest -- of ``group`` beyond ``cap``, then of
    all addresses beyond ``cap_all`` -- so that one more fits both caps."""
    waiting = table.strangers(group)
    gone = waiting[: max(0, len(waiting) - cap + 1)]
    for key in gone:
        table.pop(key)
    return gone + table.make_room_all(cap_all)
