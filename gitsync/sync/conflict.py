"""Conflict outcomes as pure functions: who wins, what each side ends with, which status.

A conflict is both sides changing the same note since the last sync. The Git three-way
merge is passed in (``merge3``) so this module stays free of I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from gitsync.protocol.constants import St

__all__ = ["Outcome", "Policy", "resolve_delete_vs_modify", "resolve_modify"]

Merge3 = Callable[[bytes | None, bytes, bytes], tuple[bytes, bool]]


class Policy(enum.Enum):
    """How the server settles a conflict (``--policy``)."""

    MERGE = "merge"
    CLIENT_WINS = "client-wins"
    SERVER_WINS = "server-wins"
    KEEP_BOTH = "keep-both"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a conflict resolves to.

    ``server`` is the server's resulting content (``None``: deleted), ``send`` the content
    the server must send the client (``None``: nothing), ``copy`` a losing version kept as
    an extra note, ``unresolved`` true when conflict markers were written.
    """

    code: int
    server: bytes | None
    send: bytes | None
    copy: bytes | None = None
    unresolved: bool = False


def resolve_modify(
    base: bytes | None,
    server: bytes,
    client: bytes,
    policy: Policy,
    merge3: Merge3,
    *,
    duplicates_ok: bool,
) -> Outcome:
    """Both sides modified a note (or both added one at the same path, ``base`` None)."""
    if server == client:
        return Outcome(code=St.OK, server=server, send=None)
    if policy is Policy.CLIENT_WINS:
        return Outcome(code=St.CONFLICT_CLIENT_WON, server=client, send=None)
    if policy is Policy.SERVER_WINS:
        return Outcome(code=St.CONFLICT_SERVER_WON, server=server, send=server)
    if policy is Policy.ERROR:
        return Outcome(code=St.CONFLICT, server=server, send=None, unresolved=True)
    if policy is Policy.KEEP_BOTH:
        if duplicates_ok:
            return Outcome(code=St.CONFLICT_DUPLICATE, server=server, send=server, copy=client)
        # the peer cannot take 209: the client's version wins and ours is kept as a copy
        return Outcome(code=St.CONFLICT_CLIENT_WON, server=client, send=None, copy=server)
    merged, clean = merge3(base, server, client)
    if clean:
        return Outcome(code=St.CONFLICT_MERGED, server=merged, send=merged if merged != client else None)
    return Outcome(code=St.CONFLICT_MERGED, server=merged, send=merged, unresolved=True)


def resolve_delete_vs_modify(server_modified: bytes | None, client_modified: bytes | None) -> Outcome:
    """One side deleted, the other edited: the edit wins (it is restored on the deleting side).

    ``server_modified`` is the server's edit when the client deleted; ``client_modified``
    the client's edit when the server deleted.
    """
    if server_modified is not None:
        # client deleted, server edited: keep ours and send it back as an Add
        return Outcome(code=St.CONFLICT_SERVER_WON, server=server_modified, send=server_modified)
    assert client_modified is not None
    return Outcome(code=St.CONFLICT_CLIENT_WON, server=client_modified, send=None)
