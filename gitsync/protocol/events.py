"""What the sessions tell the application, and what the application hands back.

Events are frozen dataclasses returned by ``Session.receive``; the application answers
some of them by calling a ``provide_*`` method before asking for the next message.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.messages import Anchor, Cred, DevInf

__all__ = [
    "Acknowledged",
    "AuthRequested",
    "ChangesReceived",
    "Event",
    "InChange",
    "ItemRefused",
    "ItemResult",
    "MapReceived",
    "NonceReceived",
    "OutChange",
    "PeerDevInf",
    "SessionComplete",
    "SyncModeDecided",
    "SyncRequested",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutChange:
    """A change we send. ``key`` is our id (client: LUID, server: GUID); ``peer_key`` the
    peer's id for the item when it has one (server side: the client's LUID)."""

    kind: ChangeKind
    key: str
    peer_key: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InChange:
    """A change received. ``luid`` is the client's id, ``guid`` the server's (either may be
    unknown); ``ref`` identifies the command for its Status."""

    kind: ChangeKind
    luid: str | None
    guid: str | None
    data: bytes | None
    content_type: str | None
    ref: tuple[int, int, int]  # (msg id, cmd id, item index)


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemResult:
    """The application's answer to one :class:`InChange`: a status code, and for an Add
    received by a client, the LUID it got (sent back in a Map)."""

    code: int
    luid: str | None = None


class Event:
    """Marker base of everything ``receive`` returns."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerDevInf(Event):
    """The peer's device information arrived (Put or Results)."""

    devinf: DevInf


@dataclass(frozen=True, slots=True, kw_only=True)
class NonceReceived(Event):
    """The peer gave us a nonce (base64 text) for our next MD5 credentials."""

    nonce: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthRequested(Event):
    """Server side: credentials to check, as presented (``cred`` may be ``None``)."""

    cred: Cred | None
    username_hint: str | None
    device_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRequested(Event):
    """Server side: the client asked to sync; answer with ``ServerSession.accept_sync``."""

    mode: SyncMode
    anchor: Anchor
    device_id: str
    source_uri: str
    target_uri: str
    #: Alert 225: the client asks to resume its interrupted session (``mode`` is then two-way)
    resume: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncModeDecided(Event):
    """Client side: the server confirmed the mode; answer with ``provide_changes``."""

    mode: SyncMode
    anchor: Anchor


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangesReceived(Event):
    """Changes from the peer (one message's worth); answer with ``provide_results``.
    ``final`` is true when the peer's package is complete."""

    changes: tuple[InChange, ...]
    final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledged(Event):
    """Statuses for changes we sent: (change, status code) pairs."""

    results: tuple[tuple[OutChange, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MapReceived(Event):
    """Server side: the client reports the LUIDs it gave our Adds: (luid, guid) pairs."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionComplete(Event):
    """The session finished successfully: the application may commit its state now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRefused(Event):
    """An item the peer sent was answered ``code`` (413: over our MaxObjSize) before the
    application saw it; the session goes on without it."""

    code: int
    cmd: str
    source: str | None
    target: str | None
    size: int
    limit: int | None
