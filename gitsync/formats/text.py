"""Charset helpers: turn peer text into UTF-8 without ever losing a byte.

Notes are files in Git; a peer that declares the wrong charset (or none) must not make
us drop bytes, so :func:`to_utf8` keeps what it cannot decode, and :func:`decode_text`
(for names and other ``str`` fields) guesses instead of failing.
"""

from __future__ import annotations

import codecs

__all__ = ["charset_codec", "decode_text", "to_utf8"]


def charset_codec(charset: str | None) -> str | None:
    """Python codec name for a declared charset, or ``None`` if absent or unknown.

    Accepts the spellings peers send (``UTF8``, ``"ISO-8859-1"``, ``latin1``...).
    """
    if charset is None:
        return None
    cleaned = charset.strip().strip("\"'").strip()
    if not cleaned:
        return None
    try:
        return codecs.lookup(cleaned).name
    except LookupError:
        return None


def to_utf8(data: bytes, charset: str | None) -> bytes:
    """Convert ``data`` declared as ``charset`` to UTF-8, keeping undecodable bytes as they are.

    ``None``, UTF-8 and unknown charsets return ``data`` unchanged (we cannot do better than
    keep the bytes). Bytes the declared charset cannot decode survive through
    ``surrogateescape``; if even that fails (a multi-byte codec choking on an ASCII byte)
    the input is returned unchanged rather than half-converted.
    """
    codec = charset_codec(charset)
    if codec is None or codec == "utf-8":
        return data
    if codec == "utf-8-sig":
        return data[3:] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = data.decode(codec, errors="surrogateescape")
    except UnicodeDecodeError:
        return data
    return text.encode("utf-8", errors="surrogateescape")


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Decode ``data`` to a clean ``str`` (no lone surrogates), for names and fields.

    Tries the declared charset, then UTF-8, then Windows-1252 (what Outlook and most
    phones mean when they are wrong), then ISO-8859-1, which never fails.
    """
    candidates: list[str] = []
    codec = charset_codec(charset)
    if codec is not None:
        candidates.append(codec)
    candidates += ["utf-8", "cp1252"]
    for name in candidates:
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")
