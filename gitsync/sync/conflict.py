"""Conflict outcomes as pure functions: who wins, what each side ends with, which status.

A conflict is both sides changing the same note since the last sync. The Git three-way
merge is passed in (``merge3``) so this module stays free of I/O. A clean merge settles
a conflict whatever the policy; the policy only decides overlapping edits and
edit-versus-delete, and no outcome destroys a version that is not already in Git history
(the losing side's text was committed before the sync started).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from gitsync.formats.text import not_text
from gitsync.protocol.constants import St

__all__ = [
    "Outcome",
    "Policy",
    "conflict_labels",
    "has_conflict_markers",
    "resolve_delete_vs_modify",
    "resolve_modify",
]

Merge3 = Callable[[bytes | None, bytes, bytes], tuple[bytes, bool]]

_MARKERS = (
    re.compile(rb"(?m)^<{7}(?: |\r?$)"),
    re.compile(rb"(?m)^={7}\r?$"),
    re.compile(rb"(?m)^>{7}(?: |\r?$)"),
)


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
    the server must send the client (``None``: nothing), ``send_delete`` whether the
    client must delete its copy, ``copy`` a losing version kept as an extra note,
    ``unresolved`` true when the conflict is left for a human (markers written, or
    nothing done under policy ``error``).
    """

    code: int
    server: bytes | None
    send: bytes | None
    send_delete: bool = False
    copy: bytes | None = None
    unresolved: bool = False


def conflict_labels(server_url: str, device_name: str | None, device_id: str) -> tuple[str, str, str]:
    """The (server, base, device) labels of the markers a merge leaves (``<<<<<<< LABEL``).

    The same text lands in the server's folder and on the device, so each side is named as both
    people know it, never "ours"/"local" (wrong on one of the two sides) nor a state ref name:
    the server by the host (and port) the device reached it at, the device by the name it sent
    (``sync --name``, or its user name), else by its device id."""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(server_url).netloc.rpartition("@")[2]
    except ValueError:
        host = ""
    device = " ".join((device_name or device_id or "").split())[:60]
    return (f"server {host}".strip(), "last sync", f"device {device}".strip())


def has_conflict_markers(text: bytes) -> bool:
    """Whether ``text`` holds a whole set of conflict markers (``<<<<<<<``, ``=======``, ``>>>>>>>``)."""
    return all(marker.search(text) for marker in _MARKERS)


def resolve_modify(
    base: bytes | None,
    server: bytes,
    client: bytes,
    policy: Policy,
    merge3: Merge3,
    *,
    duplicates_ok: bool,
) -> Outcome:
    """Both sides modified a note (or both added one at the same path, ``base`` None).

    A clean three-way merge wins in every policy (207, the merged text goes to both
    sides). Overlapping edits go by ``policy``: ``merge`` keeps diff3 markers on both
    sides (207, unresolved), ``client-wins`` 208, ``server-wins`` 419, ``keep-both`` the
    client's version becomes a second note (209; 208 plus the server's version as the
    second note when the peer cannot take 209), ``error`` 409 and nothing changes.
    Versions that are not text are never line-merged: ``merge`` keeps both of them.
    """
    if server == client:
        return Outcome(code=St.OK, server=server, send=None)
    if any(not_text(blob, controls_ok=True) is not None for blob in (base or b"", server, client)):
        # not text (binary, another encoding): no line merge and no markers, which would alter
        # every byte; one side unchanged since the last sync means the other side's edit wins
        if base == server:
            return Outcome(code=St.CONFLICT_MERGED, server=client, send=None)
        if base == client:
            return Outcome(code=St.CONFLICT_MERGED, server=server, send=server)
        if policy is Policy.MERGE:
            policy = Policy.KEEP_BOTH  # both versions kept whole: the user picks
        merged, clean = server, False
    else:
        merged, clean = merge3(base, server, client)
    if clean:
        return Outcome(code=St.CONFLICT_MERGED, server=merged, send=merged if merged != client else None)
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
    return Outcome(code=St.CONFLICT_MERGED, server=merged, send=merged, unresolved=True)


def resolve_delete_vs_modify(
    server_modified: bytes | None, client_modified: bytes | None, policy: Policy = Policy.MERGE
) -> Outcome:
    """One side deleted, the other edited.

    ``server_modified`` is the server's edit when the client deleted; ``client_modified``
    the client's edit when the server deleted. The edit wins (it is restored on the
    deleting side) unless the policy names the deleting side the winner (``client-wins``
    for a client's delete, ``server-wins`` for the server's); ``error`` changes nothing.
    """
    if server_modified is not None:
        # the client deleted what the server edited
        if policy is Policy.ERROR:
            return Outcome(code=St.CONFLICT, server=server_modified, send=None, unresolved=True)
        if policy is Policy.CLIENT_WINS:
            return Outcome(code=St.CONFLICT_CLIENT_WON, server=None, send=None)
        # keep ours and send it back as an Add
        return Outcome(code=St.CONFLICT_SERVER_WON, server=server_modified, send=server_modified)
    assert client_modified is not None
    # the client edited what the server deleted
    if policy is Policy.ERROR:
        return Outcome(code=St.CONFLICT, server=None, send=None, unresolved=True)
    if policy is Policy.SERVER_WINS:
        return Outcome(code=St.CONFLICT_SERVER_WON, server=None, send=None, send_delete=True)
    return Outcome(code=St.CONFLICT_CLIENT_WON, server=client_modified, send=None)
