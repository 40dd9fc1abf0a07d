"""Note payload formats: SIF-N, text/plain and vNote to and from :class:`NoteData`.

Pure functions and frozen values only (no I/O, stdlib only), so the sans-I/O sessions
and the store can share them. ``negotiate`` picks what we send to a peer from its DevInf;
``format_for`` maps an item's ``Meta/Type`` to a reader (``UnsupportedFormat`` → 415).
Path safety lives in :mod:`~gitsync.formats.names`, line endings in
:mod:`~gitsync.formats.lineendings`, charsets in :mod:`~gitsync.formats.text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gitsync.formats.base import NoteData, NoteFormat, UnsupportedFormat
from gitsync.formats.exact import ExactFormat
from gitsync.formats.plain import TextFormat
from gitsync.formats.sif import SifNoteFormat
from gitsync.formats.vnote import VNoteFormat


class PeerContentType(Protocol):
    """What negotiation reads of a DevInf ``CTInfo``."""

    @property
    def ct_type(self) -> str: ...

    @property
    def ver_ct(self) -> str | None: ...


class PeerDataStore(Protocol):
    """What negotiation reads of a DevInf ``DataStore``.

    Structural, so :class:`gitsync.protocol.messages.DataStore` fits without this package
    importing the protocol layer.
    """

    @property
    def rx_pref(self) -> Sequence[PeerContentType]: ...

    @property
    def rx(self) -> Sequence[PeerContentType]: ...


__all__ = [
    "EXACT",
    "OUR_FORMATS",
    "SIFN_10",
    "SIFN_11",
    "TEXT_10",
    "TEXT_11",
    "VNOTE_11",
    "ExactFormat",
    "NoteData",
    "NoteFormat",
    "PeerContentType",
    "PeerDataStore",
    "SifNoteFormat",
    "TextFormat",
    "UnsupportedFormat",
    "VNoteFormat",
    "format_for",
    "negotiate",
    "offers",
]

SIFN_11: NoteFormat = SifNoteFormat(version="1.1")
SIFN_10: NoteFormat = SifNoteFormat(version="1.0")
TEXT_10: NoteFormat = TextFormat(version="1.0")
TEXT_11: NoteFormat = TextFormat(version="1.1")
VNOTE_11: NoteFormat = VNoteFormat(version="1.1")
#: Any file, byte for byte, see :mod:`.exact`. Advertised in our DataStore's CTCap only (not in
#: Rx/Tx, so a peer going by its own list never picks it); sent to peers that list it (gitsync).
EXACT: NoteFormat = ExactFormat()

#: What we advertise (Rx and Tx), in preference order; the first is our Rx-Pref/Tx-Pref.
OUR_FORMATS: tuple[NoteFormat, ...] = (SIFN_11, SIFN_10, TEXT_10, TEXT_11, VNOTE_11)


def _media_type(content_type: str) -> str:
    """``text/plain; charset=UTF-8`` → ``text/plain`` (MIME types are case-insensitive)."""
    return content_type.split(";", 1)[0].strip().lower()


def _match(content_type: str, version: str | None) -> NoteFormat | None:
    """Our format for a type: the exact version if we have it, else our preferred one of that type.

    Versions of one type are interchangeable for notes (text/plain 1.0/1.1 differ in
    nothing; SIF-N 1.0/1.1 and vNote 1.0/1.1 carry the same fields).
    """
    media = _media_type(content_type)
    same_type = [fmt for fmt in (*OUR_FORMATS, EXACT) if fmt.content_type == media]
    wanted = version.strip() if version else None
    for fmt in same_type:
        if fmt.version == wanted:
            return fmt
    return same_type[0] if same_type else None


def format_for(content_type: str, version: str | None = None) -> NoteFormat:
    """The format to read or write ``content_type`` with; ``version`` is matched leniently.

    Raises :class:`UnsupportedFormat` (a FormatError; answer 415) for a type we do not speak.
    """
    fmt = _match(content_type, version)
    if fmt is None:
        raise UnsupportedFormat(
            f"unsupported note content type {content_type!r}", content_type=content_type, version=version
        )
    return fmt


def negotiate(peer: PeerDataStore | None) -> NoteFormat:
    """The format to send ``peer``: the first of its Rx-Pref, Rx, then CTCap entries that we speak.

    The peer's order wins (a tolerant type match on an earlier entry beats an exact one
    later). No DevInf, or nothing in common, gives SIF-N 1.1, the richest format we have.
    """
    if peer is None:
        return SIFN_11
    # CTCap (when present) describes what the device handles; some phones list types only there
    offered = (*peer.rx_pref, *peer.rx, *getattr(peer, "ctcaps", ()))
    for info in offered:
        fmt = _match(info.ct_type, info.ver_ct)
        if fmt is not None:
            return fmt
    return SIFN_11


def offers(peer: PeerDataStore | None, fmt: NoteFormat) -> bool:
    """Whether the peer lists ``fmt``'s content type in Rx-Pref, Rx or CTCap (it can receive it)."""
    if peer is None:
        return False
    offered = (*peer.rx_pref, *peer.rx, *getattr(peer, "ctcaps", ()))
    return any(_media_type(info.ct_type) == fmt.content_type for info in offered)
