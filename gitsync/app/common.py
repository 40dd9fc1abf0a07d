"""Pieces both drivers share: our DevInf, note ↔ payload conversion, ids, summaries."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gitsync import __version__
from gitsync.errors import FormatError
from gitsync.formats import OUR_FORMATS, NoteData, NoteFormat, format_for, negotiate
from gitsync.formats.lineendings import adapt, canonical, detect, to_crlf, to_lf
from gitsync.formats.names import name_from_text, safe_relpath, unique_path
from gitsync.protocol.messages import CTInfo, DataStore, DevInf
from gitsync.protocol.profiles import PeerProfile

__all__ = [
    "Counts",
    "SyncReport",
    "Transport",
    "Wire",
    "make_id",
    "our_devinf",
    "peer_datastore",
    "peer_ref_name",
]

logger = logging.getLogger(__name__)


class Transport(Protocol):
    """Moves one SyncML message and its reply (see :mod:`gitsync.transport`)."""

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        """POST ``body``; return the reply body and its media type."""
        ...


def our_devinf(dev_id: str, *, server: bool) -> DevInf:
    """The DevInf we advertise: one notes store, SIF-N 1.1 preferred (pysyncml needs it)."""
    cts = tuple(CTInfo(ct_type=f.content_type, ver_ct=f.version) for f in OUR_FORMATS)
    store = DataStore(
        source_ref="notes",
        display_name="Notes",
        max_guid_size=64,
        rx_pref=cts[:1],
        rx=cts[1:],
        tx_pref=cts[:1],
        tx=cts[1:],
        sync_types=(1, 2, 3, 4, 5, 6, 7),
    )
    return DevInf(
        man="gitsync-notes",
        mod="gitsync-notes",
        oem="-",
        fw_v="-",
        sw_v=__version__,
        hw_v="-",
        dev_id=dev_id,
        dev_typ="server" if server else "workstation",
        utc=True,
        support_large_objs=False,
        support_number_of_changes=True,
        datastores=(store,),
    )


def peer_datastore(devinf: DevInf | None, uri: str) -> DataStore | None:
    """The peer's datastore named ``uri`` (``./`` and case ignored), else its only one."""
    if devinf is None or not devinf.datastores:
        return None

    def norm(u: str) -> str:
        return u.removeprefix("./").strip("/").lower()

    for ds in devinf.datastores:
        if norm(ds.source_ref) == norm(uri):
            return ds
    return devinf.datastores[0] if len(devinf.datastores) == 1 else None


def make_id(*parts: str) -> str:
    """A 32-hex id derived from what identifies a note when first seen.

    Deterministic, so a session that died and is retried offers the same ids again and
    the peer can match them instead of duplicating notes.
    """
    return hashlib.sha1("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def peer_ref_name(text: str) -> str:
    """A readable, ref-safe peer name from a URL or device id."""
    text = re.sub(r"^[a-z]+://", "", text.strip().lower())
    text = re.sub(r"[^a-z0-9._-]+", "-", text).strip("-.")
    return text[:80] or "peer"


@dataclass(frozen=True, slots=True, kw_only=True)
class Wire:
    """How notes travel to one peer: the negotiated format and the peer's habits."""

    fmt: NoteFormat
    crlf: bool = False
    filename_sync: bool = True
    flat: bool = False  # the peer cannot create sub-folders: "/" travels as "%2F" ...
    known_dirs: set[str] = field(default_factory=set)  # ... except into folders it already has

    @classmethod
    def negotiate(
        cls, devinf: DevInf | None, uri: str, profile: PeerProfile, *, filename_sync: bool = True
    ) -> Wire:
        """Pick the best common format for the peer's datastore ``uri``."""
        fmt = negotiate(peer_datastore(devinf, uri))
        return cls(fmt=fmt, crlf=profile.crlf_text, filename_sync=filename_sync, flat=profile.flat_names)

    @property
    def carries_name(self) -> bool:
        """Whether the peer learns file names from our payloads."""
        return self.fmt.carries_name and self.filename_sync

    def render(self, path: str, content: bytes) -> bytes:
        """A note file as the payload we send."""
        body = to_crlf(content) if self.crlf else content
        folder = path.rpartition("/")[0]
        if self.flat and folder and folder not in self.known_dirs:
            name = path.replace("%", "%25").replace("/", "%2F")
        else:
            name = path
        return self.fmt.render(NoteData(name=name if self.fmt.carries_name else None, body=body))

    def parse(self, data: bytes, content_type: str | None) -> NoteData:
        """A received payload (in the format its Meta/Type names, if we know it)."""
        fmt = self.fmt
        if content_type and content_type.split(";")[0].strip().lower() != fmt.content_type:
            fmt = format_for(content_type.split(";")[0].strip().lower())
        note = fmt.parse(data)
        if self.flat and note.name and "%" in note.name:
            note = dataclasses.replace(note, name=note.name.replace("%2F", "/").replace("%25", "%"))
        return note

    def saw(self, path: str) -> None:
        """The peer has ``path``, so it has its folders too."""
        folder = path.rpartition("/")[0]
        while folder:
            self.known_dirs.add(folder)
            folder = folder.rpartition("/")[0]

    def local_body(self, body: bytes, existing: bytes | None) -> bytes:
        """Incoming text in the local file's line-ending convention (LF for new notes)."""
        if existing is not None:
            return adapt(body, detect(existing))
        return to_lf(body) if self.crlf else body

    @staticmethod
    def same_text(a: bytes, b: bytes) -> bool:
        """Whether two versions differ only in line endings / trailing blank lines."""
        return a == b or canonical(a) == canonical(b)

    def path_for(
        self, note: NoteData, taken: Mapping[str, object] | set[str], fallback: str | None = None
    ) -> str:
        """Where a new note goes: its carried name made safe, else a name from its text."""
        name = safe_relpath(note.name) if (note.name and self.filename_sync) else None
        if name is None:
            name = fallback or name_from_text(note.body)
        lowered = {p.lower() for p in taken}
        return unique_path(name, lambda p: p.lower() in lowered)


@dataclass(slots=True)
class Counts:
    """Adds, modifications, deletions and errors on one side."""

    add: int = 0
    mod: int = 0
    dele: int = 0
    err: int = 0

    def total(self) -> int:
        """Number of successful changes."""
        return self.add + self.mod + self.dele


@dataclass(slots=True)
class SyncReport:
    """What a sync did, for the summary table and the commit message."""

    peer: str
    mode: str = ""
    local: Counts = field(default_factory=Counts)  # applied here (came in)
    remote: Counts = field(default_factory=Counts)  # applied at the peer (went out)
    conflicts: int = 0  # collisions
    merged: int = 0  # resolved by merge
    unresolved: list[str] = field(default_factory=list)  # notes left with conflict markers
    commit: str | None = None
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)  # human remarks

    def subject(self, name: str) -> str:
        """The sync commit's subject line."""
        i, o = self.local, self.remote
        return f"sync with {name}: +{i.add} ~{i.mod} -{i.dele} in, +{o.add} ~{o.mod} -{o.dele} out"


def parse_or_none(wire: Wire, data: bytes, content_type: str | None) -> NoteData | None:
    """Parse a payload, logging instead of raising on a bad one."""
    try:
        return wire.parse(data, content_type)
    except FormatError as exc:
        logger.warning("cannot read a note payload (%s): %s", content_type, exc)
        return None
