"""The value every note format reads to and writes from, and the format interface.

Kept apart from ``__init__`` so the format modules can import it without a cycle;
import these names from :mod:`gitsync.formats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gitsync.errors import FormatError

__all__ = ["NoteData", "NoteFormat", "UnsupportedFormat"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteData:
    """A note as a payload carries it.

    ``name`` is the note's name/path as the payload carries it (SIF ``Subject``, vNote
    ``SUMMARY``), unsanitised, ``None`` when the format has no such field or it was
    absent. ``body`` is the file content, exactly. ``extra`` holds the fields we do not
    map, in order, so a round trip to the same kind of peer keeps them (Outlook colours).
    ``exact``: the payload carried the file's bytes, not text (``application/x-gitsync-note``),
    so the body is written and compared as is (no line-ending adaptation).
    """

    name: str | None
    body: bytes
    extra: tuple[tuple[str, str], ...] = ()
    exact: bool = False


@runtime_checkable
class NoteFormat(Protocol):
    """One content type/version pair we can read and write.

    The attributes are read-only properties so frozen dataclasses satisfy the protocol.
    """

    @property
    def content_type(self) -> str:
        """The MIME type as on the wire, e.g. ``text/x-s4j-sifn``."""
        ...

    @property
    def version(self) -> str:
        """The ``VerCT`` we advertise, e.g. ``1.1``."""
        ...

    @property
    def carries_name(self) -> bool:
        """Whether payloads carry the note's name (SIF-N, vNote) or not (text/plain)."""
        ...

    def parse(self, data: bytes) -> NoteData:
        """Read a payload; :class:`~gitsync.errors.FormatError` if it is not this format."""
        ...

    def render(self, note: NoteData) -> bytes:
        """Write a payload; fields the format cannot express are left out."""
        ...


class UnsupportedFormat(FormatError):
    """A content type we do not speak: callers answer 415."""

    def __init__(self, message: str, *, content_type: str, version: str | None = None) -> None:
        super().__init__(message)
        self.content_type = content_type
        self.version = version
