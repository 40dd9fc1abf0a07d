"""Outgoing changes whose payload is built when it goes into a message, not when it is planned.

A slow sync hands the session every note at once (``provide_changes``), and the session sends them
over many messages of at most the peer's MaxMsgSize.  With the payload in each
:class:`~gitsync.protocol.events.OutChange`, 20,000 notes held ~60 MB of rendered payloads for the
whole session; a :class:`LazyOutChange` holds the blob id and what :meth:`Wire.plan` decided (the
name the peer sees, the kept fields) and renders from the store each time the session reads
``data`` (it does so when it builds the message that carries the change; a large object, sent in
chunks over many messages, is read once and kept by the session until its last chunk is out).  To
the session it is an ``OutChange`` like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitsync.model import ChangeKind
from gitsync.protocol.events import OutChange

if TYPE_CHECKING:
    from gitsync.store.git import GitStore
    from gitsync.sync.payload import Wire

__all__ = ["LazyOutChange"]


class LazyOutChange(OutChange):
    """An :class:`OutChange` whose ``data`` is rendered from blob ``blob`` on every read."""

    __slots__ = ("_blob", "_plan", "_store", "_wire")
    _wire: Wire
    _store: GitStore
    _plan: tuple[str, tuple[tuple[str, str], ...]]
    _blob: str

    def __init__(
        self,
        *,
        kind: ChangeKind,
        key: str,
        wire: Wire,
        store: GitStore,
        path: str,
        blob: str,
        peer_key: str | None = None,
    ) -> None:
        # OutChange is a frozen dataclass: set its fields as its own __init__ would
        for name, value in (
            ("kind", kind),
            ("key", key),
            ("peer_key", peer_key),
            ("content_type", wire.fmt.content_type),
            ("version", wire.fmt.version),
            ("_wire", wire),
            ("_store", store),
            ("_plan", wire.plan(path)),
            ("_blob", blob),
        ):
            object.__setattr__(self, name, value)

    @property
    def size_hint(self) -> int | None:
        """A lower bound of the payload's length, from the blob's header (a payload is the note
        with at most its last line break dropped): lets the session leave out a note over the
        peer's MaxObjSize without rendering it."""
        size = self._store.blob_size(self._blob)
        return None if size is None else max(size - 2, 0)

    @property
    def data(self) -> bytes | None:
        """The payload, rendered now from the store."""
        return self._wire.render_planned(self._plan, self._store.read_blob(self._blob))

    def __repr__(self) -> str:
        return f"LazyOutChange(kind={self.kind!r}, key={self.key!r}, peer_key={self.peer_key!r})"
