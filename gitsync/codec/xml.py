"""SyncML XML bytes <-> :class:`~gitsync.codec.node.Node` (the lxml boundary).

Decoding is hardened because the body comes from an unauthenticated peer: no DTD at all
(a DOCTYPE is refused outright, so no entity expansion or external fetch is possible),
bounded size and nesting depth, and every parser failure becomes a :class:`CodecError`.
Namespaces are stripped so peers that send none, ``SYNCML:SYNCML1.2`` or
``syncml:syncml1.1`` all decode alike; MetInf/DevInf membership survives in ``Node.ns``.

Encoding is a small hand-written serialiser rather than lxml so the namespace
declarations (root, ``syncml:metinf`` on Meta children, ``syncml:devinf`` on DevInf) and
the escaping are exactly what peers expect, and so ``\\r`` survives as ``&#13;`` (a literal
CR would be folded into LF by the peer's parser).
"""

from __future__ import annotations

import re

from lxml import etree

from gitsync.codec.limits import Budget, DecodeLimits
from gitsync.codec.node import DEVINF_NS, METINF_NS, Node
from gitsync.errors import CodecError

__all__ = ["DEFAULT_MAX_SIZE", "MAX_DEPTH", "decode_xml", "encode_xml", "is_xml_safe", "serialize_children"]

DEFAULT_MAX_SIZE = 8 * 1024 * 1024
MAX_DEPTH = 64

_SYNCML_NS = {"1.0": "SYNCML:SYNCML1.0", "1.1": "SYNCML:SYNCML1.1", "1.2": "SYNCML:SYNCML1.2"}
# Characters XML 1.0 forbids anywhere (C0 controls except TAB/LF/CR, surrogates, U+FFFE/U+FFFF).
_ILLEGAL_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
# A DOCTYPE can only come before the root element, after the XML declaration, comments and PIs.
# Written so that each prolog item has exactly one way to match (no catastrophic backtracking).
_PROLOG_DOCTYPE = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<\?(?:[^?]|\?(?!>))*\?>\s*|<!--(?:[^-]|-(?!->))*-->\s*)*<!DOCTYPE"
)
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def _syncml_namespace(ver_dtd: str | None) -> str:
    """The SyncML namespace URI for a VerDTD, defaulting to 1.2."""
    return _SYNCML_NS.get((ver_dtd or "").strip(), _SYNCML_NS["1.2"])


# --------------------------------------------------------------------------- decoding


def decode_xml(body: bytes, *, max_size: int = DEFAULT_MAX_SIZE, limits: DecodeLimits | None = None) -> Node:
    """Parse an XML SyncML document into a namespace-free :class:`Node` tree.

    Raises:
        CodecError: too big, or more elements than ``limits`` allow (413); not well-formed, has a
            DOCTYPE, or nests too deeply (400).
    """
    if len(body) > max_size:
        raise CodecError(f"XML body of {len(body)} bytes exceeds the {max_size}-byte limit", status_hint=413)
    # Checked before parsing (ASCII-compatible bodies) and again after (UTF-16 bodies).
    if _PROLOG_DOCTYPE.match(body, 0, 65536):
        raise CodecError("XML with a DOCTYPE/ENTITY declaration is refused")
    if limits is None:
        limits = DecodeLimits.for_body_limit(max(len(body), 1 << 16))
    repaired: bytes | None = None
    try:
        root = _parse(body, limits)
    except (etree.LxmlError, ValueError) as exc:
        repaired = _mark_raw_bytes(body)
        if repaired is None:
            raise CodecError(f"malformed XML: {exc}") from exc
        try:
            root = _parse(repaired, limits)
        except (etree.LxmlError, ValueError):
            raise CodecError(f"malformed XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise CodecError("XML with a DOCTYPE/ENTITY declaration is refused")
    node = _to_node(root, 1, None, "", min(MAX_DEPTH, limits.max_depth))
    if repaired is not None:
        _restore_raw_bytes(node)
    return node


_FEED = 1 << 16  # bytes parsed between two looks at the element count


def _parse(body: bytes, limits: DecodeLimits) -> etree._Element:
    """Parse incrementally, counting elements as libxml2 builds them, so that a body of millions
    of empty elements stops at the cap instead of after building them all."""
    parser = etree.XMLPullParser(
        events=("start",),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,  # libxml2's own caps: depth 256, text nodes 10 MB, no entity expansion
        collect_ids=False,
        strip_cdata=True,
        remove_comments=True,
        remove_pis=True,
    )
    budget = Budget(limits)
    view = memoryview(body)
    for at in range(0, len(body), _FEED):
        parser.feed(bytes(view[at : at + _FEED]))
        for _ in parser.read_events():
            budget.element()
    root: etree._Element = parser.close()
    for _ in parser.read_events():
        budget.element()
    return root


# Synthesis cuts large objects into chunks at byte offsets, inside UTF-8 sequences, and sends
# each chunk as CDATA: such a message is not UTF-8. Bytes that are not UTF-8 are parsed as
# private-use stand-ins and come back as the exact bytes in the element's (bytes) text.
_RAW_BASE = 0x10FE00
_RAW_MARK = re.compile("([\U0010FE80-\U0010FEFF])")


def _mark_raw_bytes(body: bytes) -> bytes | None:
    """``body`` with non-UTF-8 bytes replaced by stand-ins, or ``None`` when that cannot help."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    try:
        body.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", "surrogateescape")
    return re.sub("[\udc80-\udcff]", lambda m: chr(_RAW_BASE + ord(m.group()) - 0xDC00), text).encode()


def _restore_raw_bytes(node: Node) -> None:
    """Turn text holding stand-ins back into the original bytes."""
    if isinstance(node.text, str) and _RAW_MARK.search(node.text):
        parts = _RAW_MARK.split(node.text)
        node.text = b"".join(
            bytes([ord(part) - _RAW_BASE]) if i % 2 else part.encode("utf-8") for i, part in enumerate(parts)
        )
    for child in node.children:
        _restore_raw_bytes(child)


def _to_node(
    element: etree._Element, depth: int, parent_ns: str | None, parent_tag: str, max_depth: int = MAX_DEPTH
) -> Node:
    """Convert one lxml element (recursively); ``parent_ns``/``parent_tag`` drive the ns heuristics."""
    if depth > max_depth:
        raise CodecError(f"XML nesting deeper than {max_depth} elements")
    qname = etree.QName(element)
    tag = qname.localname
    node = Node(tag, ns=_namespace_hint(qname.namespace, tag, parent_ns, parent_tag))
    chunks: list[str] = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            node.children.append(_to_node(child, depth + 1, node.ns, tag, max_depth))
        # Comments and PIs vanish, but the text after them belongs to this element.
        chunks.append(child.tail or "")
    text = "".join(chunks)
    if node.children and not text.strip():
        text = ""  # indentation between child elements, not content
    node.text = text or None
    return node


def _namespace_hint(namespace: str | None, tag: str, parent_ns: str | None, parent_tag: str) -> str | None:
    """MetInf/DevInf membership from the declared namespace, or from position when peers omit it."""
    declared = (namespace or "").strip().lower()
    if declared == METINF_NS:
        return METINF_NS
    if declared == DEVINF_NS:
        return DEVINF_NS
    if tag == "DevInf":
        return DEVINF_NS
    if parent_tag in ("Meta", "MetInf") or (parent_tag == "Data" and tag == "Anchor"):
        return METINF_NS
    return parent_ns


# --------------------------------------------------------------------------- encoding


def encode_xml(root: Node) -> bytes:
    """Serialise a Node tree as a UTF-8 SyncML XML document.

    Raises:
        CodecError: a tag is not an XML name, or some text cannot be written as XML 1.0.
    """
    default_ns = None
    if root.tag == "SyncML":
        header = root.find("SyncHdr")
        default_ns = _syncml_namespace(header.findtext("VerDTD") if header is not None else None)
    parts: list[str] = []
    _write(root, parts, None, default_ns)
    return _DECLARATION + "".join(parts).encode("utf-8")


def serialize_children(node: Node) -> bytes:
    """The XML text of ``node``'s content, for Data that holds foreign elements (e.g. SIF as elements)."""
    parts: list[str] = []
    if node.text:
        parts.append(_escape(_checked_text(node.text)))
    for child in node.children:
        _write(child, parts, None, None)
    return "".join(parts).encode("utf-8")


def _write(node: Node, parts: list[str], inherited_ns: str | None, own_ns: str | None) -> None:
    """Append ``node`` to ``parts``; a ``None`` namespace means "same as the parent"."""
    if not _NAME.match(node.tag):
        raise CodecError(f"cannot encode element name {node.tag!r}")
    ns = own_ns or node.ns or inherited_ns
    parts.append("<" + node.tag)
    if ns is not None and ns != inherited_ns:
        parts.append(f' xmlns="{ns}"')
    if node.text is None and not node.children:
        parts.append("/>")
        return
    parts.append(">")
    if node.text is not None:
        parts.append(_escape(_checked_text(node.text)))
    for child in node.children:
        _write(child, parts, ns, None)
    parts.append(f"</{node.tag}>")


def is_xml_safe(text: str | bytes) -> bool:
    """Whether ``text`` (bytes: as UTF-8) can be written as XML 1.0 character data unchanged."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return _ILLEGAL_XML.search(text) is None


def _checked_text(text: str | bytes) -> str:
    """``text`` as str if XML 1.0 can carry it verbatim, else CodecError (callers pick b64 first)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError("element data is not valid UTF-8; it must be sent as b64") from exc
    bad = _ILLEGAL_XML.search(text)
    if bad is not None:
        raise CodecError(f"character U+{ord(bad.group()):04X} cannot appear in XML 1.0")
    return text


def _escape(text: str) -> str:
    """Escape character data; CR becomes a reference so it is not normalised away."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
