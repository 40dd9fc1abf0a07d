"""The payload format: how a note file travels to one peer and back (:class:`Wire`).

Which format both sides speak, the peer's habits (CRLF, a trailing newline it adds, flat names,
ASCII only), the note fields it sent that we do not map (sent back with the note) and its own
names for notes we store under another name; a note a text peer cannot carry exactly is refused
here (:meth:`Wire.refusal`), never sent as a lossy copy.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gitsync.codec.syncml import BAD_BASE64_TYPE
from gitsync.errors import FormatError
from gitsync.formats import EXACT, NoteData, NoteFormat, format_for, negotiate, offers
from gitsync.formats.lineendings import adapt, canonical, detect, is_mixed, to_crlf, to_lf
from gitsync.formats.names import name_from_text, safe_relpath, unique_path
from gitsync.formats.text import not_text
from gitsync.protocol.messages import DevInf
from gitsync.protocol.profiles import PeerProfile
from gitsync.sync.devinf import peer_datastore
from gitsync.sync.state import Extras

__all__ = ["Wire", "parse_or_why", "unreadable_name", "verbatim"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Wire:
    """How notes travel to one peer: the negotiated format and the peer's habits."""

    fmt: NoteFormat
    crlf: bool = False
    filename_sync: bool = True
    flat: bool = False  # the peer cannot create sub-folders: "/" travels as "%2F" ...
    known_dirs: set[str] = field(default_factory=set)  # ... except into folders it already has
    extras: Extras = field(default_factory=dict)  # kept in the peer's state, never in the work tree
    trim_newline: bool = False  # the peer adds a line break to text/plain each way: take one off
    ascii_only: bool = False  # the peer takes ASCII text and names only
    #: local path → the peer's own name for it, where the two differ (a name this file system cannot
    #: hold, or a clash resolved here): that name is what the peer gets back, never ours
    names: dict[str, str] = field(default_factory=dict)
    suffixes: dict[str, int] = field(default_factory=dict)  # next "(n)" to try per name, this session
    renamed: list[str] = field(default_factory=list)  # one line per peer name stored differently here

    @classmethod
    def negotiate(
        cls, devinf: DevInf | None, uri: str, profile: PeerProfile, *, filename_sync: bool = True
    ) -> Wire:
        """Pick the best common format for the peer's datastore ``uri``: the exact one (any file,
        byte for byte) when the peer can receive it, else the first of the peer's list we speak."""
        store = peer_datastore(devinf, uri)
        fmt = EXACT if offers(store, EXACT) else negotiate(store)
        return cls(
            fmt=fmt,
            crlf=profile.crlf_text,
            filename_sync=filename_sync,
            flat=profile.flat_names,
            trim_newline=profile.adds_trailing_newline,
            ascii_only=profile.ascii_only,
        )

    @property
    def exact(self) -> bool:
        """Whether notes travel byte for byte (any file can be sent)."""
        return self.fmt.content_type == EXACT.content_type

    def refusal(self, path: str, content: bytes) -> str | None:
        """Why the note at ``path`` cannot be sent to this peer without being altered, or ``None``.

        Such a note is not sent (and reported): a text peer would store a lossy copy (U+FFFD,
        re-encoded bytes) and could send that copy back over the original.
        """
        if self.exact:
            return None
        why = not_text(content, ascii_only=self.ascii_only, controls_ok=self.fmt.content_type == "text/plain")
        if why is None and self.ascii_only and self.carries_name and not path.isascii():
            why = "non-ASCII name"
        if why is None:
            return None
        return f"{why}; {self.fmt.content_type} carries text only"

    @property
    def carries_name(self) -> bool:
        """Whether the peer learns file names from our payloads."""
        return self.fmt.carries_name and self.filename_sync

    def render(self, path: str, content: bytes) -> bytes:
        """A note file as the payload we send (with the fields the peer gave it, if any)."""
        return self.render_planned(self.plan(path), content)

    def plan(self, path: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What :meth:`render` takes from the session's state for ``path``: the name the peer sees
        and the fields kept for it.  Decided when a change is planned, the payload itself is built
        when its message is (see :mod:`gitsync.app.outgoing`)."""
        path = self.names.get(path, path)  # the peer's own name for the note, if ours differs
        folder = path.rpartition("/")[0]
        if self.flat and folder and folder not in self.known_dirs:
            name = path.replace("%", "%25").replace("/", "%2F")
        else:
            name = path
        kept = self.extras.get(path)
        return name, (kept[1] if kept is not None and kept[0] == self.fmt.content_type else ())

    def render_planned(self, plan: tuple[str, tuple[tuple[str, str], ...]], content: bytes) -> bytes:
        """The payload of a note file whose name and kept fields :meth:`plan` gave."""
        name, extra = plan
        if self.exact:
            return self.fmt.render(NoteData(name=name, body=content))
        body = to_crlf(content) if self.crlf else content
        if self.trim_newline and self.fmt.content_type == "text/plain":
            body = _drop_last_break(body)  # the peer puts it back when it stores the note
        return self.fmt.render(NoteData(name=name if self.fmt.carries_name else None, body=body, extra=extra))

    def remember(self, path: str, note: NoteData, content_type: str | None) -> None:
        """Keep the unmapped fields of a note the peer sent, to send them back with it."""
        media = (content_type or self.fmt.content_type).split(";")[0].strip().lower()
        if note.extra:
            self.extras[path] = (media, note.extra)
        elif path in self.extras and self.extras[path][0] == media:
            del self.extras[path]  # the peer dropped them itself

    def moved(self, old: str, new: str) -> None:
        """A note changed path: its kept fields follow it (a name it had at the peer does not: the
        new one is what the peer gets)."""
        if old != new and old in self.extras:
            self.extras[new] = self.extras.pop(old)
        if old != new:
            self.names.pop(old, None)

    def forget(self, path: str) -> None:
        """A note is gone: drop what was kept for it."""
        self.extras.pop(path, None)
        self.names.pop(path, None)

    def named(self, path: str, note: NoteData) -> None:
        """The peer's note is stored at ``path``: remember the peer's own name for it when it
        differs (so it is sent back unchanged), and say so once."""
        proposed = note.name
        if not (proposed and self.filename_sync and self.fmt.carries_name):
            self.names.pop(path, None)
            return
        if self.names.get(path) == proposed:
            return  # known, and said already
        self.names.pop(path, None)
        if path == proposed or path == unicodedata.normalize("NFC", proposed):
            return
        self.names[path] = proposed
        stored = safe_relpath(proposed)
        why = "this file system cannot hold that name" if stored != unicodedata.normalize(
            "NFC", proposed
        ) else "a note or folder here already has it"
        line = f"stored as {path!r}: the peer's name {proposed!r} is kept for it there ({why})"
        logger.warning("%s", line)
        self.renamed.append(line)

    def parse(self, data: bytes, content_type: str | None) -> NoteData:
        """A received payload (in the format its Meta/Type names, if we know it)."""
        fmt = self.fmt
        if content_type and content_type.split(";")[0].strip().lower() != fmt.content_type:
            fmt = format_for(content_type.split(";")[0].strip().lower())
        note = fmt.parse(data)
        if self.trim_newline and fmt.content_type == "text/plain":
            note = dataclasses.replace(note, body=_drop_last_break(note.body))
        if self.flat and note.name and "%" in note.name:
            note = dataclasses.replace(note, name=note.name.replace("%2F", "/").replace("%25", "%"))
        return note

    def saw(self, path: str) -> None:
        """The peer has ``path``, so it has its folders too."""
        folder = path.rpartition("/")[0]
        while folder:
            self.known_dirs.add(folder)
            folder = folder.rpartition("/")[0]

    def local_body(self, body: bytes, existing: bytes | None, *, exact: bool = False) -> bytes:
        """Incoming text in the local file's line-ending convention (LF for new notes).

        An ``exact`` body (:attr:`NoteData.exact`: the peer sent the file's bytes) that is not
        plain text is kept as is (see :func:`verbatim`)."""
        if exact and verbatim(body):
            return body
        if existing is not None:
            return adapt(body, detect(existing))
        return to_lf(body) if self.crlf else body

    @staticmethod
    def same_text(a: bytes, b: bytes, *, exact: bool = False) -> bool:
        """Whether two versions differ only in line endings / trailing blank lines (``exact``:
        whether they are the same bytes; a peer sending exact bytes means every byte)."""
        if a == b:
            return True
        if exact and (verbatim(a) or verbatim(b)):
            return False
        return canonical(a) == canonical(b)

    def path_for(
        self,
        note: NoteData,
        taken: Mapping[str, object] | set[str] | Callable[[str], bool],
        fallback: str | None = None,
        file_at: Callable[[str], bool] | None = None,
    ) -> str:
        """Where a new note goes: its carried name as this file system can hold it, else a name
        from its text; made unique.

        ``taken`` holds the paths in use (compared ignoring case), or is a function answering
        that for one path (see :mod:`gitsync.app.paths`: O(1) instead of a pass over every note,
        file/folder clashes included).  ``file_at`` tells whether a note (a file) is at a path:
        a folder of the name that is a note here becomes ``a (2)/`` for this note.  The next
        suffix per name is remembered for the session, so N notes of one name cost O(N).
        """
        if fallback is not None and note.name in (fallback, self.names.get(fallback, "")):
            return fallback  # the note's own name here, or the peer's name for it: not a rename
        name = safe_relpath(note.name) if (note.name and self.filename_sync) else None
        if name is None:
            name = fallback or name_from_text(note.body)
        if callable(taken):
            check = taken
        else:
            lowered = {p.lower() for p in taken}

            def check(p: str) -> bool:
                return p.lower() in lowered

        if file_at is not None and "/" in name:
            name = _free_folders(name, file_at, self.suffixes)
        return unique_path(name, check, self.suffixes)


def _free_folders(path: str, file_at: Callable[[str], bool], memo: dict[str, int]) -> str:
    """``path`` with each folder that is a note here (a file) renamed ``name (2)``...: a file and
    a folder cannot share a name, so this note goes beside that one instead of failing."""
    parts = path.split("/")
    for i in range(len(parts) - 1):
        folder = "/".join(parts[: i + 1])
        if file_at(folder):
            parts[i] = unique_path(folder, file_at, memo).rpartition("/")[2]
    return "/".join(parts)


def verbatim(body: bytes) -> bool:
    """Whether a file is not plain text (binary, not UTF-8, control characters, mixed line
    breaks): received exactly, it is written and compared byte for byte.  Plain text keeps the
    usual rules (the local file's line endings; a line-ending change alone is no change)."""
    return not_text(body) is not None or is_mixed(body)


def _drop_last_break(body: bytes) -> bytes:
    """``body`` without its final line break (CRLF, LF or CR), if it has one."""
    for end in (b"\r\n", b"\n", b"\r"):
        if body.endswith(end):
            return body[: -len(end)]
    return body


def parse_or_why(wire: Wire, data: bytes, content_type: str | None) -> NoteData | str:
    """Parse a payload; for one we cannot read (bad SIF/vNote, a type we do not speak), why."""
    if (content_type or "").strip().lower() == BAD_BASE64_TYPE:
        return "its data is marked base64 (Meta Format b64) but is not base64"
    try:
        return wire.parse(data, content_type)
    except FormatError as exc:
        return f"cannot read this {content_type or wire.fmt.content_type} payload: {exc}"


_UNREADABLE_EXT = {"text/x-s4j-sifn": ".xml", "text/x-vnote": ".vnt", "text/plain": ".txt"}


def unreadable_name(item_id: str | None, content_type: str | None) -> str:
    """Where the raw payload of an unreadable item is kept: ``unreadable-<its id>.<ext>``.

    Derived from the peer's id, so the same item gives the same name; the extension says what
    the payload is (``.xml`` for SIF-N, ``.vnt`` for vNote, ``.txt`` for text, else ``.bin``)."""
    media = (content_type or "").split(";")[0].strip().lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id or "").strip("._")[:64] or "item"
    return f"unreadable-{stem}{_UNREADABLE_EXT.get(media, '.bin')}"
