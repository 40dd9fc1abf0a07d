"""``application/x-gitsync-note``: a note file's bytes exactly, with its name; gitsync ↔ gitsync.

SIF-N, vNote and text/plain carry *text*: they cannot hold NUL or control characters, bytes
that are not UTF-8 (Latin-1, CP1252, UTF-16, images...), and their readers adapt line endings.
This format carries any file unchanged; we advertise it (last in our Rx/Tx, so no other peer
picks it) and send it to every peer that advertises it too (see ``Wire.negotiate``)::

    GITSYNC-NOTE 1\\n
    Name: sub/a%20b.png\\n          (optional; percent-encoded UTF-8)
    \\n
    <the file's bytes, exactly>

The SyncML codec sends a payload that is not XML-safe base64-encoded (Meta Format ``b64``) in
XML and as opaque bytes in WBXML, so every byte arrives. Unknown header lines are ignored
(room for later fields); a payload without the first line is a :class:`FormatError`.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from gitsync.errors import FormatError
from gitsync.formats.base import NoteData

__all__ = ["ExactFormat"]

_MAGIC = b"GITSYNC-NOTE 1\n"
#: Longest header block we read: a name is at most 1,024 UTF-8 bytes, ×3 when percent-encoded.
_MAX_HEADER = 16 * 1024


@dataclass(frozen=True, slots=True)
class ExactFormat:
    """The file's bytes plus its name; parse(render(n)) gives ``n`` back byte for byte."""

    version: str = "1.0"
    content_type: str = "application/x-gitsync-note"
    carries_name: bool = True

    def parse(self, data: bytes) -> NoteData:
        """Read the envelope; the body is returned as sent, marked ``exact``."""
        data = bytes(data)
        if not data.startswith(_MAGIC):
            raise FormatError(f"{self.content_type} payload does not start with {_MAGIC!r}")
        end = data.find(b"\n\n", len(_MAGIC) - 1)
        if end < 0 or end > _MAX_HEADER:
            raise FormatError(f"{self.content_type} payload has no end of header")
        name: str | None = None
        header = data[len(_MAGIC) : end]
        for line in header.split(b"\n") if header else ():
            key, sep, value = line.partition(b":")
            if not sep:
                raise FormatError(f"{self.content_type} payload has a bad header line {line[:40]!r}")
            if key.strip().lower() == b"name":
                try:
                    name = urllib.parse.unquote(value.strip().decode("ascii"), errors="surrogateescape")
                except (UnicodeDecodeError, ValueError) as exc:
                    raise FormatError(f"{self.content_type} payload has a bad name: {exc}") from None
        return NoteData(name=name, body=data[end + 2 :], exact=True)

    def render(self, note: NoteData) -> bytes:
        """The envelope; ``extra`` is not carried (gitsync keeps no unmapped fields of its own)."""
        head = _MAGIC
        if note.name is not None:
            quoted = urllib.parse.quote(note.name, safe="/", errors="surrogateescape")
            head += b"Name: " + quoted.encode("ascii") + b"\n"
        return head + b"\n" + note.body
