"""Line-ending helpers: a change of line ending alone is not a change.

Synthesis sends text/plain with CRLF plus an extra trailing CRLF, XML parsers turn CRLF
into LF, Outlook writes CRLF; comparing bytes would ping-pong every note on every sync.
Compare :func:`canonical` forms instead, and write incoming text with :func:`adapt` so a
file keeps the convention it already had.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["CRLF", "LF", "adapt", "canonical", "detect", "is_mixed", "to_crlf", "to_lf"]

CRLF = b"\r\n"
LF = b"\n"

_BREAK = re.compile(rb"\r\n?")


def detect(data: bytes) -> bytes:
    """The file's convention: ``b"\\r\\n"`` if most line breaks are CRLF, else ``b"\\n"``.

    A tie, or no line break at all, gives LF (the Git and POSIX default).
    """
    crlf = data.count(CRLF)
    lone_lf = data.count(LF) - crlf
    return CRLF if crlf > lone_lf else LF


def is_mixed(data: bytes) -> bool:
    """Whether ``data`` has more than one kind of line break (CRLF, lone LF, lone CR)."""
    crlf = data.count(CRLF)
    kinds = (crlf, data.count(LF) - crlf, data.count(b"\r") - crlf)
    return sum(1 for n in kinds if n) > 1


def to_lf(data: bytes) -> bytes:
    """CRLF and lone CR (old Mac, Palm) become LF."""
    return _BREAK.sub(LF, data)


def to_crlf(data: bytes) -> bytes:
    """Every line break becomes CRLF; existing CRLFs are not doubled."""
    return to_lf(data).replace(LF, CRLF)


def canonical(data: bytes) -> bytes:
    """The form two versions of a note are compared in.

    LF line endings, no leading UTF-8 BOM, and no trailing whitespace-only lines or
    trailing spaces/tabs at the very end, so what peers add or drop there is not a change.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return to_lf(data).rstrip(b" \t\n")


def adapt(incoming: bytes, local_style: bytes) -> bytes:
    """Convert ``incoming`` to ``local_style`` (``b"\\r\\n"`` or ``b"\\n"``, as from :func:`detect`)."""
    if local_style == CRLF:
        return to_crlf(incoming)
    if local_style == LF:
        return to_lf(incoming)
    raise ValueError(f"unknown line-ending style {local_style!r}")
