"""vNote 1.1 (``text/x-vnote``): the vCard-2.1-style note phones and KNotes send.

Read leniently: any line ending, folded lines (line break + space/tab), QUOTED-PRINTABLE
with soft line breaks, BASE64, a ``CHARSET`` per property (Sony Ericsson sends
ISO-8859-1; bytes a charset cannot decode are kept, never dropped) and backslash escapes
(``\\n \\N \\, \\; \\\\``) in SUMMARY and BODY.

Written strictly: CRLF, lines of at most 75 octets, QUOTED-PRINTABLE with
``CHARSET=UTF-8`` whenever a value is not plain printable ASCII, and only the
backslashes that would otherwise read as an escape are doubled, so phones that do not
unescape show the text as it is.

Other properties are kept in ``extra`` as ``(name-with-params, value)``: the transfer
encoding and charset are undone (and dropped from the params), escapes are kept as sent.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass

from gitsync.errors import FormatError
from gitsync.formats.base import NoteData
from gitsync.formats.text import decode_text, to_utf8

__all__ = ["VNoteFormat"]

MAX_LINE = 75

_LINE_BREAK = re.compile(rb"\r\n|\n|\r")
_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_UNESCAPE = re.compile(rb"\\([nN,;\\])")
_ESCAPE = re.compile(rb"\\(?=[nN,;\\])")
_KEY = re.compile(
    r'(?:[A-Za-z0-9-]+\.)?[A-Za-z0-9-]+(?:;(?:[\x20\x21\x23-\x39\x3c-\x7e]|"[\x20\x21\x23-\x7e]*")*)*'
)
_PLAIN_VALUE = re.compile(rb"(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?")
_RESERVED = frozenset({"VERSION", "SUMMARY", "BODY"})
_QUOTED_PRINTABLE = ("QUOTED-PRINTABLE", "QP")
_BASE64 = ("BASE64", "B")
#: Transfer encodings vCard 2.1 allows as a bare parameter (``BODY;QUOTED-PRINTABLE:``).
_TRANSFER_WORDS = frozenset({"QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT"})
_WHITESPACE = (b" ", b"\t")
#: Bytes QUOTED-PRINTABLE must encode: all but printable ASCII, space and tab; "=" itself.
_QP_UNSAFE = re.compile(rb"[^\t\x20-\x3c\x3e-\x7e]")


def _split_line(line: bytes) -> tuple[bytes, bytes] | None:
    """Split ``name;params:value`` at the first colon outside double quotes."""
    colon = line.find(b":")
    if colon < 0:
        return None
    if b'"' in line[:colon]:
        quoted = False
        for index, byte in enumerate(line):
            if byte == 0x22:
                quoted = not quoted
            elif byte == 0x3A and not quoted:
                return line[:index], line[index + 1 :]
        return None
    return line[:colon], line[colon + 1 :]


def _base_name(name: str) -> str:
    """The property name without its group prefix, upper-cased."""
    return name.rsplit(".", 1)[-1].upper()


def _split_semicolons(head: str) -> list[str]:
    """Split a property head at semicolons outside double quotes (linear time)."""
    if '"' not in head:
        return head.split(";")
    parts: list[str] = []
    start = 0
    quoted = False
    for index, char in enumerate(head):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append(head[start:index])
            start = index + 1
    parts.append(head[start:])
    return parts


def _split_params(head: str) -> tuple[str, str | None, str | None, list[str]]:
    """``(name, transfer encoding, charset, other params)`` of a property head."""
    name, *params = _split_semicolons(head)
    encoding: str | None = None
    charset: str | None = None
    kept: list[str] = []
    for param in params:
        key, eq, value = param.partition("=")
        key = key.strip().upper()
        value = value.strip().strip('"').strip()
        if eq and key == "ENCODING":
            encoding = value.upper()
        elif eq and key == "CHARSET":
            charset = value
        elif not eq and key in _TRANSFER_WORDS:
            encoding = key
        else:
            kept.append(param)
    return name.strip(), encoding, charset, kept


def _transfer_decode(value: bytes, encoding: str | None) -> bytes:
    """Undo QUOTED-PRINTABLE (soft breaks are already joined) or BASE64."""
    if encoding in _QUOTED_PRINTABLE:
        return _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), value)
    if encoding in _BASE64:
        try:
            return base64.b64decode(b"".join(value.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FormatError(f"vNote property with bad BASE64: {exc}") from None
    return value


def _logical_lines(data: bytes) -> list[bytes]:
    """Physical lines to logical ones: QP soft breaks joined, folded lines unfolded."""
    lines: list[list[bytes]] = []
    quoted_printable = False
    for physical in _LINE_BREAK.split(data):
        if lines:
            parts = lines[-1]
            if quoted_printable and parts[-1].endswith(b"="):
                parts[-1] = parts[-1][:-1]
                if physical:
                    parts.append(physical)
                continue
            if physical[:1] in _WHITESPACE:
                if len(physical) > 1:
                    parts.append(physical[1:])
                continue
        lines.append([physical])
        split = _split_line(physical)
        quoted_printable = (
            split is not None and _split_params(split[0].decode("latin-1"))[1] in _QUOTED_PRINTABLE
        )
    return [b"".join(parts) for parts in lines]


def _encode_edges(piece: bytes) -> bytes:
    """Encode whitespace at either end of a QP line (see :func:`_qp_encode`)."""
    if piece[:1] in _WHITESPACE:
        piece = b"=%02X" % piece[0] + piece[1:]
    if piece[-1:] in _WHITESPACE:
        piece = piece[:-1] + b"=%02X" % piece[-1]
    return piece


def _qp_encode(head: bytes, value: bytes) -> list[bytes]:
    """QUOTED-PRINTABLE lines of at most 75 octets, soft-broken with ``=``.

    Whitespace at a line's edges is encoded: a continuation line starting with it would
    read as folding, and some decoders strip it at a line's end. A head too long to share
    a line is followed by a soft break at once.
    """
    encoded = _QP_UNSAFE.sub(lambda m: b"=%02X" % m.group(0)[0], value)
    size = len(encoded)
    pieces: list[bytes] = []
    limit = MAX_LINE - len(head)
    if limit < 4:
        pieces.append(b"")
        limit = MAX_LINE
    pos = 0
    while pos < size:
        end = size if size - pos <= limit else pos + limit - 1
        if end < size:
            # Never cut inside "=XX": a literal "=" is always encoded, so "=" starts a token.
            if encoded[end - 1 : end] == b"=":
                end -= 1
            elif encoded[end - 2 : end - 1] == b"=":
                end -= 2
        while True:
            piece = _encode_edges(encoded[pos:end])
            if len(piece) + (end < size) <= limit or end - pos <= 3:
                break
            end -= 3 if encoded[end - 3 : end - 2] == b"=" else 1
        pieces.append(piece)
        pos = end
        limit = MAX_LINE
    if not pieces:
        pieces.append(b"")
    pieces[0] = head + pieces[0]
    lines = [piece + b"=" for piece in pieces[:-1]] + [pieces[-1]]
    if len(lines[0]) > MAX_LINE:  # a head longer than a line: fold it (unfolding precedes QP)
        lines[0:1] = _fold(lines[0])
    return lines


def _fold(line: bytes) -> list[bytes]:
    """Fold an ASCII line at 75 octets: continuation lines start with one space."""
    out = [line[:MAX_LINE]]
    rest = line[MAX_LINE:]
    while rest:
        out.append(b" " + rest[: MAX_LINE - 1])
        rest = rest[MAX_LINE - 1 :]
    return out


def _property(head: str, value: bytes) -> list[bytes]:
    """One property as output lines: plain and folded if possible, else QP in UTF-8."""
    if _PLAIN_VALUE.fullmatch(value):
        return _fold(head.encode("ascii") + b":" + value)
    return _qp_encode(head.encode("ascii") + b";CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:", value)


def _extra_head(key: str, value: str) -> str | None:
    """The head to write an extra under, or ``None`` if a vNote cannot carry it."""
    if not _KEY.fullmatch(key):
        return None
    name, _encoding, _charset, params = _split_params(key)
    base = _base_name(name)
    if base in _RESERVED or (base in ("BEGIN", "END") and value.strip().upper() == "VNOTE"):
        return None
    return ";".join([name, *params])


@dataclass(frozen=True, slots=True)
class VNoteFormat:
    """vNote; ``version`` is the advertised VerCT and the ``VERSION`` written."""

    version: str
    content_type: str = "text/x-vnote"
    carries_name: bool = True

    def parse(self, data: bytes) -> NoteData:
        """Read ``BEGIN:VNOTE`` .. ``END:VNOTE``: SUMMARY → name, BODY → body, the rest → extra.

        Lines outside the VNOTE, lines without a colon and repeated SUMMARY/BODY are
        ignored; a payload without ``BEGIN:VNOTE`` and ``END:VNOTE`` is a FormatError.
        """
        data = bytes(data)
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        name: str | None = None
        body: bytes | None = None
        extra: list[tuple[str, str]] = []
        inside = False
        for line in _logical_lines(data):
            split = _split_line(line)
            if split is None:
                continue
            raw_head, raw_value = split
            head = raw_head.decode("latin-1")
            prop, encoding, charset, params = _split_params(head)
            base = _base_name(prop)
            if base in ("BEGIN", "END") and raw_value.strip().upper() == b"VNOTE":
                if base == "END" and inside:
                    return NoteData(name=name, body=body or b"", extra=tuple(extra))
                inside = base == "BEGIN"
                continue
            if not inside or base == "VERSION":
                continue
            value = to_utf8(_transfer_decode(raw_value, encoding), charset)
            if base == "SUMMARY":
                if name is None:
                    name = decode_text(_UNESCAPE.sub(_unescaped, value), "utf-8")
            elif base == "BODY":
                if body is None:
                    body = _UNESCAPE.sub(_unescaped, value)
            else:
                extra.append((";".join([prop, *params]), decode_text(value, "utf-8")))
        raise FormatError("not a vNote: no BEGIN:VNOTE ... END:VNOTE")

    def render(self, note: NoteData) -> bytes:
        """Write a vNote 1.1 with CRLF; SUMMARY only when ``name`` is not ``None``.

        Extras whose key is not a valid property name (or is BEGIN/END:VNOTE, VERSION,
        SUMMARY or BODY) cannot be written and are skipped.
        """
        lines: list[bytes] = [b"BEGIN:VNOTE", b"VERSION:" + self.version.encode("ascii")]
        if note.name is not None:
            lines += _property("SUMMARY", _ESCAPE.sub(rb"\\\\", note.name.encode("utf-8", "replace")))
        lines += _property("BODY", _ESCAPE.sub(rb"\\\\", note.body))
        for key, value in note.extra:
            head = _extra_head(key, value)
            if head is None:
                continue
            lines += _property(head, value.encode("utf-8", "replace"))
        lines.append(b"END:VNOTE")
        return b"\r\n".join(lines) + b"\r\n"


def _unescaped(match: re.Match[bytes]) -> bytes:
    """Replacement for one backslash escape."""
    char = match.group(1)
    return b"\n" if char in (b"n", b"N") else char
