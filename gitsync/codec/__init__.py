"""Codec registry: SyncML bytes (XML or WBXML) <-> :class:`~gitsync.protocol.messages.Message`.

Peers must be answered in the encoding they used (pysyncml only reads XML, phones and
SyncEvolution default to WBXML), so :func:`decode` reports which one it decoded. The body
itself decides when the Content-Type is missing, wrong or contradicts it, because peers
do send ``text/xml`` or no type at all. The WBXML codec is imported lazily.
"""

from __future__ import annotations

from gitsync.codec.limits import DecodeLimits
from gitsync.codec.node import Node
from gitsync.codec.syncml import message_to_node, node_to_message
from gitsync.codec.xml import DEFAULT_MAX_SIZE, decode_xml, encode_xml, is_xml_safe
from gitsync.errors import CodecError
from gitsync.protocol.messages import Message

__all__ = ["WBXML_TYPE", "XML_TYPE", "decode", "encode", "media_type", "sniff"]

XML_TYPE = "application/vnd.syncml+xml"
WBXML_TYPE = "application/vnd.syncml+wbxml"

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def media_type(content_type: str | None) -> str:
    """``application/vnd.syncml+xml; charset=UTF-8`` -> ``application/vnd.syncml+xml``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def sniff(body: bytes) -> str:
    """Guess the encoding from the bytes: XML starts with ``<``, WBXML with its version byte.

    Raises:
        CodecError: neither (415).
    """
    for bom in _BOMS:
        if body.startswith(bom):
            return XML_TYPE
    stripped = body.lstrip(b" \t\r\n")
    if stripped[:1] == b"<":
        return XML_TYPE
    if body[:1] in (b"\x01", b"\x02", b"\x03"):
        return WBXML_TYPE
    raise CodecError("body is neither SyncML XML nor WBXML", status_hint=415)


def decode(
    body: bytes, content_type: str | None = None, *, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[Message, str]:
    """Decode a request or response body; returns the message and the encoding used.

    What decoding may build is bounded by ``max_size`` (elements, decoded text, depth: see
    :mod:`gitsync.codec.limits`), and every field but item data must be text a reply can carry.

    Raises:
        CodecError: too big or decodes to too much (413), not SyncML XML/WBXML (415), malformed,
            or a field with characters XML cannot carry (400).
    """
    if not body.strip():
        raise CodecError("empty body")
    if len(body) > max_size:
        raise CodecError(f"body of {len(body)} bytes exceeds the {max_size}-byte limit", status_hint=413)
    declared = media_type(content_type)
    try:
        encoding = sniff(body)
    except CodecError:
        if declared not in (XML_TYPE, WBXML_TYPE):
            raise
        encoding = declared  # let that decoder say precisely what is wrong
    limits = DecodeLimits.for_body_limit(max_size)
    if encoding == WBXML_TYPE:
        from gitsync.codec import wbxml

        root = wbxml.decode_wbxml(body, limits=limits)
    else:
        root = decode_xml(body, max_size=max_size, limits=limits)
    _check_carryable(root)
    return node_to_message(root), encoding


def _check_carryable(root: Node) -> None:
    """Refuse a message with a field XML cannot carry (NUL, other C0 controls, U+FFFE...): replies
    echo the header's and commands' fields, and one we cannot encode must not become a 500.
    Item data is exempt: it is the note's bytes, which travel base64-encoded when they must."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.tag == "Data":
            continue
        if node.text is not None and not is_xml_safe(node.text_str()):  # bytes: as fields read them
            raise CodecError(f"{node.tag} holds characters a SyncML reply cannot carry")
        stack.extend(node.children)


def encode(msg: Message, content_type: str = XML_TYPE) -> bytes:
    """Encode ``msg`` as XML or WBXML (``content_type`` may carry parameters).

    Raises:
        CodecError: unknown content type (415), or text that cannot be encoded.
    """
    kind = media_type(content_type)
    if kind == XML_TYPE:
        return encode_xml(message_to_node(msg))
    if kind == WBXML_TYPE:
        from gitsync.codec import wbxml

        return wbxml.encode_wbxml(message_to_node(msg))
    raise CodecError(f"no SyncML codec for content type {content_type!r}", status_hint=415)
