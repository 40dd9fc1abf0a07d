"""Charset helpers: turn peer text into UTF-8 without ever losing a byte.

Notes are files in Git; a peer that declares the wrong charset (or none) must not make
us drop bytes, so :func:`to_utf8` keeps what it cannot decode, and :func:`decode_text`
(for names and other ``str`` fields) guesses instead of failing.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["charset_codec", "decode_text", "not_text", "to_utf8"]

# What no text format can carry: C0 controls but TAB/LF/CR (XML 1.0 forbids them even as
# references), and U+FFFE/U+FFFF.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NUL = re.compile("\x00")


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


def not_text(data: bytes, *, ascii_only: bool = False, controls_ok: bool = False) -> str | None:
    """Why ``data`` is not text a text format (SIF-N, vNote, text/plain) carries exactly, or ``None``.

    Text is UTF-8 without NUL and other control characters (TAB, LF and CR are fine; line
    endings are a text peer's concern). Anything else (binary, Latin-1, CP1252, UTF-16) would
    arrive re-encoded or as U+FFFD. ``ascii_only``: the peer cannot take non-ASCII text at all.
    ``controls_ok``: control characters other than NUL are fine (text/plain travels as bytes,
    base64-encoded when XML cannot hold them, and peers keep them; SIF-N and vNote cannot).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "UTF-16 text"
        return f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}): binary or another encoding"
    bad = _NOT_TEXT.search(text) if not controls_ok else _NUL.search(text)
    if bad is not None:
        return f"control character U+{ord(bad.group()):04X} (at character {bad.start()})"
    if ascii_only and not text.isascii():
        return "non-ASCII text"
    return None
