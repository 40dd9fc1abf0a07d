"""WBXML codec: binary SyncML 1.0–1.2 documents to :class:`Node` trees and back.

Phones and the Synthesis engine (SyncEvolution) speak SyncML as WBXML by default, so the
bridge must read and write it. Token tables are the OMA SyncML, MetInf and DevInf code
pages (checked against captured Synthesis traffic by tests/codec/test_wbxml.py).

The encoder makes the same choices as the Synthesis engine so that decoding and
re-encoding one of its messages gives the same bytes: WBXML 1.2, UTF-8, empty string
table, SWITCH_PAGE only when the next tag needs another page, item data as OPAQUE,
protocol values (status codes, alert codes, credentials) as inline strings, and DevInf as a
nested WBXML document inside an OPAQUE ``Data``.

The decoder is iterative and bounds every length against the input, so hostile bodies
end in :class:`~gitsync.errors.CodecError` (status 400) in linear time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gitsync.codec.limits import Budget, DecodeLimits
from gitsync.codec.node import DEVINF_NS, METINF_NS, Node
from gitsync.errors import CodecError

__all__ = [
    "DEVINF_PUBLIC_IDS",
    "DEVINF_TAGS",
    "METINF_TAGS",
    "SYNCML_PUBLIC_IDS",
    "SYNCML_TAGS",
    "decode_wbxml",
    "encode_wbxml",
]

# --- Global tokens (WBXML 1.3 section 7.1) -------------------------------------------------

SWITCH_PAGE = 0x00
END = 0x01
ENTITY = 0x02
STR_I = 0x03
STR_T = 0x83
OPAQUE = 0xC3

TAG_MASK = 0x3F
TAG_CONTENT = 0x40
TAG_ATTRIBUTES = 0x80
FIRST_TAG = 0x05  # token values below this (in the low six bits) are global tokens

# Global tokens SyncML never needs; named so the error says what the peer sent.
UNSUPPORTED_GLOBALS: Mapping[int, str] = {
    0x04: "LITERAL",
    0x40: "EXT_I_0",
    0x41: "EXT_I_1",
    0x42: "EXT_I_2",
    0x43: "PI",
    0x44: "LITERAL_C",
    0x80: "EXT_T_0",
    0x81: "EXT_T_1",
    0x82: "EXT_T_2",
    0x84: "LITERAL_A",
    0xC0: "EXT_0",
    0xC1: "EXT_1",
    0xC2: "EXT_2",
    0xC4: "LITERAL_AC",
}

WBXML_VERSION = 0x02  # what we emit: WBXML 1.2, as Synthesis does
DECODABLE_VERSIONS = frozenset({0x01, 0x02, 0x03})  # 1.0 (0x00) has no charset field
UNKNOWN_PUBLIC_ID = 0x01
UTF8_MIBENUM = 106

# IANA MIBenum -> Python codec. All are NUL-terminated single-byte-safe encodings, which is
# what STR_I parsing assumes. 0 means "unknown"; UTF-8 is the only sane guess for SyncML.
CHARSETS: Mapping[int, str] = {0: "utf-8", 3: "ascii", 4: "latin-1", UTF8_MIBENUM: "utf-8"}

# --- Code pages --------------------------------------------------------------------------

SYNCML_TAGS: Mapping[int, str] = {
    0x05: "Add",
    0x06: "Alert",
    0x07: "Archive",
    0x08: "Atomic",
    0x09: "Chal",
    0x0A: "Cmd",
    0x0B: "CmdID",
    0x0C: "CmdRef",
    0x0D: "Copy",
    0x0E: "Cred",
    0x0F: "Data",
    0x10: "Delete",
    0x11: "Exec",
    0x12: "Final",
    0x13: "Get",
    0x14: "Item",
    0x15: "Lang",
    0x16: "LocName",
    0x17: "LocURI",
    0x18: "Map",
    0x19: "MapItem",
    0x1A: "Meta",
    0x1B: "MsgID",
    0x1C: "MsgRef",
    0x1D: "NoResp",
    0x1E: "NoResults",
    0x1F: "Put",
    0x20: "Replace",
    0x21: "RespURI",
    0x22: "Results",
    0x23: "Search",
    0x24: "Sequence",
    0x25: "SessionID",
    0x26: "SftDel",
    0x27: "Source",
    0x28: "SourceRef",
    0x29: "Status",
    0x2A: "Sync",
    0x2B: "SyncBody",
    0x2C: "SyncHdr",
    0x2D: "SyncML",
    0x2E: "Target",
    0x2F: "TargetRef",
    0x31: "VerDTD",
    0x32: "VerProto",
    0x33: "NumberOfChanges",
    0x34: "MoreData",
    0x35: "Field",
    0x36: "Filter",
    0x37: "Record",
    0x38: "FilterType",
    0x39: "SourceParent",
    0x3A: "TargetParent",
    0x3B: "Move",
    0x3C: "Correlator",
}

METINF_TAGS: Mapping[int, str] = {
    0x05: "Anchor",
    0x06: "EMI",
    0x07: "Format",
    0x08: "FreeID",
    0x09: "FreeMem",
    0x0A: "Last",
    0x0B: "Mark",
    0x0C: "MaxMsgSize",
    0x0D: "Mem",
    0x0E: "MetInf",
    0x0F: "Next",
    0x10: "NextNonce",
    0x11: "SharedMem",
    0x12: "Size",
    0x13: "Type",
    0x14: "Version",
    0x15: "MaxObjSize",
    0x16: "FieldLevel",
}

DEVINF_TAGS: Mapping[int, str] = {
    0x05: "CTCap",
    0x06: "CTType",
    0x07: "DataStore",
    0x08: "DataType",
    0x09: "DevID",
    0x0A: "DevInf",
    0x0B: "DevTyp",
    0x0C: "DisplayName",
    0x0D: "DSMem",
    0x0E: "Ext",
    0x0F: "FwV",
    0x10: "HwV",
    0x11: "Man",
    0x12: "MaxGUIDSize",
    0x13: "MaxID",
    0x14: "MaxMem",
    0x15: "Mod",
    0x16: "OEM",
    0x17: "ParamName",
    0x18: "PropName",
    0x19: "Rx",
    0x1A: "Rx-Pref",
    0x1B: "SharedMem",
    0x1C: "MaxSize",
    0x1D: "SourceRef",
    0x1E: "SwV",
    0x1F: "SyncCap",
    0x20: "SyncType",
    0x21: "Tx",
    0x22: "Tx-Pref",
    0x23: "ValEnum",
    0x24: "VerCT",
    0x25: "VerDTD",
    0x26: "XNam",
    0x27: "XVal",
    0x28: "UTC",
    0x29: "SupportNumberOfChanges",
    0x2A: "SupportLargeObjs",
    0x2B: "Property",
    0x2C: "PropParam",
    0x2D: "MaxOccur",
    0x2E: "NoTruncate",
    0x30: "Filter-Rx",
    0x31: "FilterCap",
    0x32: "FilterKeyword",
    0x33: "FieldLevel",
    0x34: "SupportHierarchicalSync",
}

SYNCML_TOKENS: Mapping[str, int] = {name: token for token, name in SYNCML_TAGS.items()}
METINF_TOKENS: Mapping[str, int] = {name: token for token, name in METINF_TAGS.items()}
DEVINF_TOKENS: Mapping[str, int] = {name: token for token, name in DEVINF_TAGS.items()}

# VerDTD -> WBXML public id. SyncML 1.2 / DevInf 1.2 are verified on the wire, the rest are
# the registered values from the OMA specifications.
SYNCML_PUBLIC_IDS: Mapping[str, int] = {"1.2": 0x1201, "1.1": 0x0FD3, "1.0": 0x0FD1}
DEVINF_PUBLIC_IDS: Mapping[str, int] = {"1.2": 0x1203, "1.1": 0x0FD4, "1.0": 0x0FD2}

# Commands whose Item/Data is a status or alert annotation rather than item content: its
# text stays an inline string (Synthesis sends "Conflict resolved by server" that way).
_ANNOTATION_COMMANDS = frozenset({"Status"})

_MAX_ENCODE_DEPTH = 200  # far beyond any SyncML tree; stops cycles before RecursionError


@dataclass(frozen=True, slots=True)
class _DocType:
    """Which code pages a document uses and which root element it must have."""

    root: str
    pages: Mapping[int, tuple[Mapping[int, str], str | None]]
    public_ids: Mapping[str, int]


_SYNCML = _DocType("SyncML", {0: (SYNCML_TAGS, None), 1: (METINF_TAGS, METINF_NS)}, SYNCML_PUBLIC_IDS)
_DEVINF = _DocType("DevInf", {0: (DEVINF_TAGS, DEVINF_NS)}, DEVINF_PUBLIC_IDS)

_NUMERIC_PUBLIC_IDS: Mapping[int, _DocType] = {
    **{pid: _SYNCML for pid in SYNCML_PUBLIC_IDS.values()},
    **{pid: _DEVINF for pid in DEVINF_PUBLIC_IDS.values()},
}
# Literal (string table) public ids, compared upper-cased because peers vary the case.
_LITERAL_PUBLIC_IDS: Mapping[str, _DocType] = {
    **{f"-//SYNCML//DTD SYNCML {ver}//EN": _SYNCML for ver in SYNCML_PUBLIC_IDS},
    **{f"-//SYNCML//DTD DEVINF {ver}//EN": _DEVINF for ver in DEVINF_PUBLIC_IDS},
}
# With public id "unknown" (0x01) the root tag tells the document type.
_ROOT_TOKENS: Mapping[int, _DocType] = {
    SYNCML_TOKENS["SyncML"]: _SYNCML,
    DEVINF_TOKENS["DevInf"]: _DEVINF,
}


# --- Decoding ----------------------------------------------------------------------------


def decode_wbxml(body: bytes, *, max_depth: int = 64, limits: DecodeLimits | None = None) -> Node:
    """Decode a WBXML 1.1–1.3 SyncML (or DevInf) document into a :class:`Node` tree.

    STR_I/STR_T/ENTITY text becomes ``str``, OPAQUE becomes ``bytes``; an OPAQUE DevInf
    document inside ``Data`` becomes a ``DevInf`` child of that ``Data``. Anything else
    than a well-formed document within ``max_depth`` nested elements raises
    :class:`CodecError` with ``status_hint`` 400; more elements or decoded text than ``limits``
    allow (default: proportional to this body) 413 -- as soon as the budget is spent.
    """
    data = body if isinstance(body, bytes) else bytes(body)
    if limits is not None:
        max_depth = limits.max_depth
    budget = Budget(limits or DecodeLimits.for_body_limit(len(data)))
    return _decode_document(data, _read_header(data), max_depth, budget)


@dataclass(frozen=True, slots=True)
class _Header:
    doctype: _DocType
    codec: str
    strtbl: bytes
    body: int  # offset of the first body token


@dataclass(slots=True)
class _Open:
    """An element whose END has not been seen yet, with its text pieces so far."""

    node: Node
    pieces: list[str | bytes] = field(default_factory=list)


def _truncated(what: str, offset: int) -> CodecError:
    return CodecError(f"truncated WBXML: {what} at offset {offset}")


def _read_mb(data: bytes, pos: int) -> tuple[int, int]:
    """Read a mb_u_int32 at ``pos``; return ``(value, next_pos)``."""
    value = 0
    for index in range(pos, min(pos + 5, len(data))):
        byte = data[index]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if value > 0xFFFFFFFF:
                raise CodecError(f"WBXML mb_u_int32 at offset {pos} exceeds 32 bits")
            return value, index + 1
    if pos + 5 <= len(data):
        raise CodecError(f"WBXML mb_u_int32 at offset {pos} is longer than 5 bytes")
    raise _truncated("multi-byte integer", pos)


def _decode_str(raw: bytes, codec: str, offset: int) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise CodecError(f"WBXML string at offset {offset} is not valid {codec}: {exc.reason}") from None


def _table_string(strtbl: bytes, offset: int, codec: str) -> str:
    """The NUL-terminated string at ``offset`` in the string table."""
    if offset >= len(strtbl):
        raise CodecError(f"WBXML string table offset {offset} out of range (table has {len(strtbl)} bytes)")
    nul = strtbl.find(b"\x00", offset)
    if nul < 0:
        raise CodecError(f"WBXML string table entry at {offset} is not NUL-terminated")
    return _decode_str(strtbl[offset:nul], codec, offset)


def _read_header(data: bytes) -> _Header:
    """Parse version, public id, charset and string table; pick the code pages."""
    if not data:
        raise CodecError("empty WBXML body")
    version = data[0]
    if version not in DECODABLE_VERSIONS:
        raise CodecError(f"unsupported WBXML version byte 0x{version:02X}")
    public_id, pos = _read_mb(data, 1)
    literal_index: int | None = None
    if public_id == 0:
        literal_index, pos = _read_mb(data, pos)
    charset, pos = _read_mb(data, pos)
    codec = CHARSETS.get(charset)
    if codec is None:
        raise CodecError(f"unsupported WBXML charset MIBenum {charset}")
    table_len, pos = _read_mb(data, pos)
    if table_len > len(data) - pos:
        raise _truncated(f"string table of {table_len} bytes", pos)
    body = pos + table_len
    strtbl = data[pos:body]

    doctype: _DocType | None
    if literal_index is not None:
        literal = _table_string(strtbl, literal_index, codec)
        doctype = _LITERAL_PUBLIC_IDS.get(literal.strip().upper())
        if doctype is None:
            raise CodecError(f"unsupported WBXML public id {literal!r}")
    elif public_id == UNKNOWN_PUBLIC_ID:
        if body >= len(data):
            raise _truncated("body", body)
        doctype = _ROOT_TOKENS.get(data[body] & TAG_MASK)
        if doctype is None:
            raise CodecError("WBXML public id is unknown and the root is neither SyncML nor DevInf")
    else:
        doctype = _NUMERIC_PUBLIC_IDS.get(public_id)
        if doctype is None:
            raise CodecError(f"unsupported WBXML public id 0x{public_id:X}")
    return _Header(doctype, codec, strtbl, body)


def _devinf_header(payload: bytes) -> _Header | None:
    """The header of ``payload`` if it is a WBXML DevInf document, else ``None``."""
    if len(payload) < 4 or payload[0] not in DECODABLE_VERSIONS:
        return None
    try:
        header = _read_header(payload)
    except CodecError:
        return None
    return header if header.doctype is _DEVINF else None


def _join(pieces: list[str | bytes]) -> str | bytes:
    """Concatenate adjacent text pieces; any OPAQUE piece makes the whole text bytes."""
    if len(pieces) == 1:
        return pieces[0]
    strings = [piece for piece in pieces if isinstance(piece, str)]
    if len(strings) == len(pieces):
        return "".join(strings)
    return b"".join(piece.encode("utf-8") if isinstance(piece, str) else piece for piece in pieces)


def _decode_document(data: bytes, header: _Header, max_depth: int, budget: Budget) -> Node:
    """Decode the body of one document (iteratively: depth cannot exhaust the C stack)."""
    doctype = header.doctype
    pages = doctype.pages
    tags, ns = pages[0]
    stack: list[_Open] = []
    root: Node | None = None
    pos = header.body
    end = len(data)

    while pos < end:
        if root is not None and not stack:
            raise CodecError(f"trailing bytes after the WBXML root element at offset {pos}")
        token = data[pos]
        pos += 1

        if token == SWITCH_PAGE:
            if pos >= end:
                raise _truncated("SWITCH_PAGE", pos - 1)
            page = data[pos]
            pos += 1
            entry = pages.get(page)
            if entry is None:
                raise CodecError(f"unknown WBXML code page {page} for {doctype.root} at offset {pos - 2}")
            tags, ns = entry

        elif token == END:
            if not stack:
                raise CodecError(f"WBXML END without an open element at offset {pos - 1}")
            closed = stack.pop()
            if closed.pieces:
                closed.node.text = _join(closed.pieces)

        elif token in (STR_I, STR_T, ENTITY, OPAQUE):
            if not stack:
                raise CodecError(f"WBXML character data outside the root element at offset {pos - 1}")
            top = stack[-1]
            if token == STR_I:
                nul = data.find(b"\x00", pos)
                if nul < 0:
                    raise _truncated("inline string", pos - 1)
                budget.charge_text(nul - pos)
                top.pieces.append(_decode_str(data[pos:nul], header.codec, pos))
                pos = nul + 1
            elif token == STR_T:
                offset, pos = _read_mb(data, pos)
                text = _table_string(header.strtbl, offset, header.codec)
                budget.charge_text(len(text))  # each reference is a copy: charged each time
                top.pieces.append(text)
            elif token == ENTITY:
                start = pos - 1
                code, pos = _read_mb(data, pos)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise CodecError(f"WBXML ENTITY at offset {start} is not a character: {code:#x}")
                budget.charge_text(1)
                top.pieces.append(chr(code))
            else:
                start = pos - 1
                length, pos = _read_mb(data, pos)
                if length > end - pos:
                    raise _truncated(f"OPAQUE of {length} bytes", start)
                budget.charge_text(length)
                payload = data[pos : pos + length]
                pos += length
                nested = _devinf_header(payload) if top.node.tag == "Data" and doctype is _SYNCML else None
                if nested is not None:
                    depth = max_depth - len(stack)
                    top.node.children.append(_decode_document(payload, nested, depth, budget))
                else:
                    top.pieces.append(payload)

        elif (token & TAG_MASK) < FIRST_TAG:
            name = UNSUPPORTED_GLOBALS.get(token, f"0x{token:02X}")
            raise CodecError(f"unsupported WBXML token {name} at offset {pos - 1}")

        else:
            if token & TAG_ATTRIBUTES:
                raise CodecError(f"WBXML attributes are not used by SyncML (tag 0x{token:02X} at {pos - 1})")
            tag = tags.get(token & TAG_MASK)
            if tag is None:
                raise CodecError(f"unknown WBXML tag 0x{token & TAG_MASK:02X} at offset {pos - 1}")
            if len(stack) >= max_depth:
                raise CodecError(f"WBXML nesting deeper than {max_depth} elements at offset {pos - 1}")
            budget.element()
            node = Node(tag, ns=ns)
            if stack:
                stack[-1].node.children.append(node)
            elif tag != doctype.root:
                raise CodecError(f"WBXML {doctype.root} document has root element {tag}")
            else:
                root = node
            if token & TAG_CONTENT:
                stack.append(_Open(node))

    if root is None:
        raise _truncated("no root element", pos)
    if stack:
        raise _truncated(f"element {stack[-1].node.tag} not closed", pos)
    return root


# --- Encoding ----------------------------------------------------------------------------


def encode_wbxml(root: Node) -> bytes:
    """Encode a ``SyncML`` (or ``DevInf``) tree as WBXML 1.2, UTF-8, empty string table.

    The public id follows ``SyncHdr/VerDTD`` (or ``VerDTD`` of a DevInf root). ``bytes``
    text and the text of item ``Data`` are OPAQUE, other text is STR_I; a ``Data`` holding
    a ``DevInf`` child becomes OPAQUE with a nested DevInf document of the same version.
    Raises :class:`CodecError` for elements that have no WBXML token.
    """
    if root.tag == "SyncML" and root.ns is None:
        header = root.find("SyncHdr")
        version = header.findtext("VerDTD") if header is not None else None
        doctype = _SYNCML
    elif root.tag == "DevInf" and root.ns in (None, DEVINF_NS):
        version = root.findtext("VerDTD")
        doctype = _DEVINF
    else:
        raise CodecError(f"cannot encode a WBXML document with root element {root.tag!r}")
    if version is None:
        raise CodecError(f"{root.tag} has no VerDTD: cannot choose a WBXML public id")
    version = version.strip()
    if version not in SYNCML_PUBLIC_IDS:
        raise CodecError(f"unsupported VerDTD {version!r} for WBXML")
    return _Encoder(doctype, version).document(root, 0)


def _write_mb(out: bytearray, value: int) -> None:
    """Append ``value`` as a mb_u_int32 (big-endian 7-bit groups, high bit = more)."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    out.extend(reversed(groups))


class _Encoder:
    """Writes one document; remembers the current code page to switch lazily."""

    __slots__ = ("doctype", "out", "page", "version")

    def __init__(self, doctype: _DocType, version: str) -> None:
        self.doctype = doctype
        self.version = version
        self.out = bytearray()
        self.page = 0

    def document(self, root: Node, depth: int) -> bytes:
        out = self.out
        out.append(WBXML_VERSION)
        _write_mb(out, self.doctype.public_ids[self.version])
        _write_mb(out, UTF8_MIBENUM)
        out.append(0)  # string table length
        self.element(root, None, None, depth + 1)
        return bytes(out)

    def token(self, node: Node) -> tuple[int, int]:
        """``(page, token)`` of ``node`` in this document type."""
        token: int | None = None
        page = 0
        if self.doctype is _DEVINF:
            if node.ns in (None, DEVINF_NS):
                token = DEVINF_TOKENS.get(node.tag)
        elif node.ns is None:
            token = SYNCML_TOKENS.get(node.tag)
            if token is None:  # a MetInf element whose namespace was lost: no name clashes
                page, token = 1, METINF_TOKENS.get(node.tag)
        elif node.ns == METINF_NS:
            page, token = 1, METINF_TOKENS.get(node.tag)
        if token is None:
            raise CodecError(
                f"no WBXML token for element {node.tag!r} (ns {node.ns!r}) in {self.doctype.root}"
            )
        return page, token

    def element(self, node: Node, parent: str | None, grandparent: str | None, depth: int) -> None:
        if depth > _MAX_ENCODE_DEPTH:
            raise CodecError(f"element tree deeper than {_MAX_ENCODE_DEPTH} (a cycle?) at {node.tag!r}")
        out = self.out
        page, token = self.token(node)
        if page != self.page:
            out.append(SWITCH_PAGE)
            out.append(page)
            self.page = page
        if node.text is None and not node.children:
            out.append(token)
            return
        out.append(token | TAG_CONTENT)
        if node.tag == "Data" and self.doctype is _SYNCML and node.find("DevInf") is not None:
            if node.text is not None or len(node.children) != 1:
                raise CodecError("a Data element holding DevInf must hold nothing else")
            self.opaque(_Encoder(_DEVINF, self.version).document(node.children[0], depth))
        else:
            if node.text is not None:
                item_data = (
                    node.tag == "Data" and parent == "Item" and grandparent not in _ANNOTATION_COMMANDS
                )
                self.text(node.text, opaque=item_data)
            for child in node.children:
                self.element(child, node.tag, parent, depth + 1)
        out.append(END)

    def text(self, text: str | bytes, *, opaque: bool) -> None:
        if isinstance(text, bytes):
            self.opaque(text)
            return
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CodecError(f"text cannot be encoded as UTF-8: {exc.reason}") from None
        if opaque:
            self.opaque(raw)
        elif b"\x00" in raw:
            raise CodecError("text contains NUL, which an inline WBXML string cannot carry")
        else:
            self.out.append(STR_I)
            self.out.extend(raw)
            self.out.append(0)

    def opaque(self, raw: bytes) -> None:
        self.out.append(OPAQUE)
        _write_mb(self.out, len(raw))
        self.out.extend(raw)
