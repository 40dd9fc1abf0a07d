"""text/plain (VerCT 1.0 or 1.1, no semantic difference): the body is the payload.

The payload carries no name: callers name new notes with
:func:`gitsync.formats.names.name_from_text` and keep the existing path on Replace.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitsync.formats.base import NoteData

__all__ = ["TextFormat"]


@dataclass(frozen=True, slots=True)
class TextFormat:
    """text/plain: bytes in, bytes out, untouched (line endings are the caller's concern)."""

    version: str
    content_type: str = "text/plain"
    carries_name: bool = False

    def parse(self, data: bytes) -> NoteData:
        """Any bytes are a valid text/plain note; ``name`` is ``None``."""
        return NoteData(name=None, body=bytes(data))

    def render(self, note: NoteData) -> bytes:
        """The body as is; ``name`` and ``extra`` cannot travel and are left out."""
        return note.body
