"""Tests for gitsync.codec.wbxml against the captured Synthesis WBXML messages.

The captures (``../shared/reference/messages/synthesis/``) come with the engine's own XML
translation of each message, which is the independent oracle for the decoder; the
captured bytes are the oracle for the encoder.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitsync.codec.limits import DecodeLimits
from gitsync.codec.node import DEVINF_NS, METINF_NS, Node
from gitsync.codec.wbxml import (
    DEVINF_TAGS,
    METINF_TAGS,
    SYNCML_TAGS,
    decode_wbxml,
    encode_wbxml,
)
from gitsync.errors import CodecError
from tests.helpers import captures, shared_path

CAPTURES = shared_path("reference", "messages", "synthesis")
WBXML_FILES = captures(CAPTURES, "*/*.wbxml")
needs_captures = pytest.mark.skipif(not WBXML_FILES, reason=f"captures not found under {CAPTURES}")

# Header of a SyncML 1.2 document: WBXML 1.2, public id 0x1201, UTF-8, empty string table.
HDR12 = bytes([0x02, 0xA4, 0x01, 0x6A, 0x00])
SYNCML = 0x6D  # SyncML tag with content
FINAL = 0x12  # Final, empty


def capture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def xml_translation(wbxml: Path) -> Path:
    for candidate in (wbxml.with_suffix(".xml"), wbxml.with_name(wbxml.name + ".as-xml")):
        if candidate.exists():
            return candidate
    raise AssertionError(f"no XML translation beside {wbxml}")


Shape = tuple[str, "str | None", "str | None", "list[Shape]"]

XML_NS = {"syncml:metinf": METINF_NS, "syncml:devinf": DEVINF_NS}


def norm_text(text: str | bytes | None) -> str | None:
    """Whitespace-only text is formatting; CRLF is what the XML parser turns into LF."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if text is None or not text.strip():
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def xml_shape(elem: ET.Element) -> Shape:
    uri, _, local = elem.tag.rpartition("}")
    ns = XML_NS.get(uri.lstrip("{")) if uri else None  # SYNCML:SYNCML1.2 is the default: None
    return (local, ns, norm_text(elem.text), [xml_shape(child) for child in elem])


def node_shape(node: Node) -> Shape:
    return (node.tag, node.ns, norm_text(node.text), [node_shape(child) for child in node.children])


def el(tag: str, *children: Node, text: str | bytes | None = None, ns: str | None = None) -> Node:
    return Node(tag, list(children), text, ns)


def syncml(*body: Node, ver: str = "1.2") -> Node:
    return el("SyncML", el("SyncHdr", el("VerDTD", text=ver)), el("SyncBody", *body))


# --- The captures -----------------------------------------------------------------------


@needs_captures
@pytest.mark.parametrize("path", WBXML_FILES, ids=capture_id)
def test_decode_matches_engine_xml_translation(path: Path) -> None:
    root = decode_wbxml(path.read_bytes())
    expected = xml_shape(ET.fromstring(xml_translation(path).read_bytes()))
    assert node_shape(root) == expected


@needs_captures
@pytest.mark.parametrize("path", WBXML_FILES, ids=capture_id)
def test_reencode_is_byte_exact(path: Path) -> None:
    body = path.read_bytes()
    assert encode_wbxml(decode_wbxml(body)) == body


@needs_captures
@pytest.mark.parametrize("path", WBXML_FILES, ids=capture_id)
def test_encoder_choices_match_synthesis_from_plain_strings(path: Path) -> None:
    """A tree whose texts are all str (as the SyncML layer builds them) still gives the
    captured bytes: item data goes OPAQUE, status/alert/credential data stays STR_I."""

    def strify(node: Node) -> None:
        if isinstance(node.text, bytes):
            node.text = node.text.decode("utf-8")
        for child in node.children:
            strify(child)

    body = path.read_bytes()
    root = decode_wbxml(body)
    strify(root)
    assert encode_wbxml(root) == body


def test_there_are_22_captures() -> None:
    if not WBXML_FILES:
        pytest.skip("captures not present")
    assert len(WBXML_FILES) == 22


@needs_captures
def test_devinf_travels_as_nested_document() -> None:
    root = decode_wbxml((CAPTURES / "http-pkg1-syncevolution-client" / "m1-c2s-pkg1.wbxml").read_bytes())
    body = root.find("SyncBody")
    assert body is not None
    put = body.find("Put")
    assert put is not None
    item = put.find("Item")
    assert item is not None
    data = item.find("Data")
    assert data is not None and data.text is None
    devinf = data.find("DevInf")
    assert devinf is not None and devinf.ns == DEVINF_NS
    assert devinf.findtext("Man") == "Patrick Ohly"
    utc = devinf.find("UTC")
    assert utc is not None and utc.text is None and not utc.children
    meta = put.find("Meta")
    assert meta is not None
    mtype = meta.find("Type")
    assert mtype is not None and mtype.ns == METINF_NS
    assert mtype.text == "application/vnd.syncml-devinf+wbxml"


@needs_captures
def test_item_data_is_opaque_bytes_with_crlf() -> None:
    root = decode_wbxml((CAPTURES / "local-twoway-conflict-duplicate" / "m2-s2c-pkg4.wbxml").read_bytes())
    texts = [n.text for n in _walk(root) if n.tag == "Data"]
    assert b"Server side memo\r\nsecond line\r\nserver-role edit\r\n\r\n" in texts
    assert "Conflict resolved by server" in texts  # Status/Item/Data: STR_I
    assert "201" in texts


def _walk(node: Node) -> list[Node]:
    out = [node]
    for child in node.children:
        out.extend(_walk(child))
    return out


# --- Decoder features -------------------------------------------------------------------


def test_minimal_document() -> None:
    root = decode_wbxml(HDR12 + bytes([SYNCML, 0x6C, 0x71, 0x03]) + b"1.2\x00" + bytes([0x01, 0x01, 0x01]))
    assert root == el("SyncML", el("SyncHdr", el("VerDTD", text="1.2")))


@pytest.mark.parametrize("version", [0x01, 0x02, 0x03])
@pytest.mark.parametrize("public_id", [b"\xa4\x01", b"\x9f\x53", b"\x9f\x51"])  # 1.2, 1.1, 1.0
def test_versions_and_numeric_public_ids(version: int, public_id: bytes) -> None:
    body = bytes([version]) + public_id + b"\x6a\x00" + bytes([SYNCML, FINAL, 0x01])
    assert decode_wbxml(body) == el("SyncML", el("Final"))


@pytest.mark.parametrize("literal", [b"-//SYNCML//DTD SyncML 1.2//EN", b"-//SYNCML//DTD SyncML 1.1//EN"])
def test_literal_public_id_from_string_table(literal: bytes) -> None:
    table = b"xx\x00" + literal + b"\x00"
    body = b"\x02\x00\x03\x6a" + bytes([len(table)]) + table + bytes([SYNCML, FINAL, 0x01])
    assert decode_wbxml(body) == el("SyncML", el("Final"))


def test_unknown_public_id_is_inferred_from_the_root() -> None:
    assert decode_wbxml(b"\x02\x01\x6a\x00" + bytes([SYNCML, FINAL, 0x01])) == el("SyncML", el("Final"))
    devinf = decode_wbxml(b"\x02\x01\x6a\x00\x4a\x28\x01")
    assert devinf == el("DevInf", el("UTC", ns=DEVINF_NS), ns=DEVINF_NS)


def test_top_level_devinf_document() -> None:
    root = decode_wbxml(b"\x02\xa4\x03\x6a\x00\x4a\x65\x031.2\x00\x01\x01")
    assert root == el("DevInf", el("VerDTD", text="1.2", ns=DEVINF_NS), ns=DEVINF_NS)
    assert encode_wbxml(root) == b"\x02\xa4\x03\x6a\x00\x4a\x65\x031.2\x00\x01\x01"


def test_str_t_entity_and_str_i_concatenate() -> None:
    table = b"ab\x00hello\x00"
    body = b"\x02\xa4\x01\x6a" + bytes([len(table)]) + table
    body += bytes([SYNCML, 0x4F, 0x03]) + b"x\x00" + b"\x83\x03" + b"\x02\x81\x5c" + b"\x83\x00\x01\x01"
    data = decode_wbxml(body).find("Data")
    assert data is not None and data.text == "xhello\u00dcab"


@pytest.mark.parametrize(
    ("mib", "raw", "text"), [(4, b"caf\xe9", "café"), (3, b"plain", "plain"), (106, "é".encode(), "é")]
)
def test_charsets(mib: int, raw: bytes, text: str) -> None:
    body = b"\x02\xa4\x01" + bytes([mib, 0x00, SYNCML, 0x4F, 0x03]) + raw + b"\x00\x01\x01"
    data = decode_wbxml(body).find("Data")
    assert data is not None and data.text == text


def test_opaque_is_bytes_and_pieces_concatenate() -> None:
    body = HDR12 + bytes([SYNCML, 0x4F, 0xC3, 0x02]) + b"\r\n" + b"\xc3\x01\xff" + b"\x01\x01"
    data = decode_wbxml(body).find("Data")
    assert data is not None and data.text == b"\r\n\xff"


def test_mixed_str_and_opaque_become_bytes() -> None:
    body = HDR12 + bytes([SYNCML, 0x4F, 0x03]) + b"a\x00" + b"\xc3\x01b" + b"\x01\x01"
    data = decode_wbxml(body).find("Data")
    assert data is not None and data.text == b"ab"


def test_empty_inline_string_is_empty_text_not_none() -> None:
    body = HDR12 + bytes([SYNCML, 0x57, 0x03, 0x00, 0x01, 0x01])
    loc = decode_wbxml(body).find("LocURI")
    assert loc is not None and loc.text == ""


def test_switch_page_gives_metinf_namespace() -> None:
    body = (
        HDR12 + bytes([SYNCML, 0x5A, 0x00, 0x01, 0x53, 0x03]) + b"text/plain\x00" + bytes([0x01, 0x01, 0x01])
    )
    meta = decode_wbxml(body).find("Meta")
    assert meta == el("Meta", el("Type", text="text/plain", ns=METINF_NS))


def test_opaque_that_is_not_devinf_stays_bytes() -> None:
    syncml_doc = HDR12 + bytes([SYNCML, FINAL, 0x01])  # a WBXML document, but SyncML
    body = HDR12 + bytes([SYNCML, 0x4F, 0xC3, len(syncml_doc)]) + syncml_doc + b"\x01\x01"
    data = decode_wbxml(body).find("Data")
    assert data is not None and data.text == syncml_doc and not data.children


def test_devinf_opaque_outside_data_stays_bytes() -> None:
    devinf = b"\x02\xa4\x03\x6a\x00\x4a\x28\x01"
    body = HDR12 + bytes([SYNCML, 0x57, 0xC3, len(devinf)]) + devinf + b"\x01\x01"
    loc = decode_wbxml(body).find("LocURI")
    assert loc is not None and loc.text == devinf


def test_max_depth_is_exact() -> None:
    # SyncML > SyncBody > Put > Item > Data > DevInf > DataStore: depth 7 with nested DevInf.
    devinf = b"\x02\xa4\x03\x6a\x00\x4a\x07\x01"
    body = (
        HDR12 + bytes([SYNCML, 0x6B, 0x5F, 0x54, 0x4F, 0xC3, len(devinf)]) + devinf + b"\x01\x01\x01\x01\x01"
    )
    assert decode_wbxml(body, max_depth=7).find("SyncBody") is not None
    with pytest.raises(CodecError, match="deeper"):
        decode_wbxml(body, max_depth=6)


# --- Hostile input ----------------------------------------------------------------------


@needs_captures
def test_every_truncation_of_a_capture_is_a_codec_error() -> None:
    body = (CAPTURES / "http-pkg1-syncevolution-client" / "m1-c2s-pkg1.wbxml").read_bytes()
    for cut in range(len(body)):
        with pytest.raises(CodecError) as info:
            decode_wbxml(body[:cut])
        assert info.value.status_hint == 400


def test_truncated_nested_devinf_is_a_codec_error() -> None:
    devinf = b"\x02\xa4\x03\x6a\x00\x4a\x65\x031.2\x00\x01"  # DevInf never closed
    body = HDR12 + bytes([SYNCML, 0x4F, 0xC3, len(devinf)]) + devinf + b"\x01\x01"
    with pytest.raises(CodecError, match="not closed"):
        decode_wbxml(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"\x00\xa4\x01\x6a\x00\x6d\x01", "version"),
        (b"\x04\xa4\x01\x6a\x00\x6d\x01", "version"),
        (b"\x02\x2a\x6a\x00\x6d\x01", "public id"),
        (b"\x02\x00\x05\x6a\x00\x6d\x01", "string table offset"),
        (b"\x02\x00\x00\x6a\x04WML\x00\x6d\x01", "public id"),
        (b"\x02\xa4\x01\x85\x5f\x00\x6d\x01", "charset"),
        (b"\x02\x01\x6a\x00\x4b\x01", "unknown"),
        (HDR12 + b"\x6d\x04\x00", "LITERAL"),
        (HDR12 + b"\x6d\x43", "PI"),
        (HDR12 + b"\x6d\x40\x61\x00", "EXT_I_0"),
        (HDR12 + b"\x6d\x80\x00", "EXT_T_0"),
        (HDR12 + b"\x6d\xc0", "EXT_0"),
        (HDR12 + b"\x6d\xc4", "LITERAL_AC"),
        (HDR12 + b"\xed\x01", "attributes"),
        (HDR12 + b"\x6d\x30\x01", "unknown WBXML tag 0x30"),
        (HDR12 + b"\x6d\x00\x01\x17\x01", "unknown WBXML tag 0x17"),
        (HDR12 + b"\x6d\x00\x02\x01", "code page 2"),
        (HDR12 + b"\x01", "END without"),
        (HDR12 + b"\x03a\x00", "outside the root"),
        (HDR12 + b"\x6d\x01\x01", "trailing"),
        (HDR12 + b"\x6d\x01\x6d\x01", "trailing"),
        (HDR12 + b"\x6c\x01", "root element SyncHdr"),
        (HDR12 + b"\x6d\x4f\x03\xff\xfe\x00\x01\x01", "not valid utf-8"),
        (b"\x02\xa4\x01\x03\x00\x6d\x4f\x03\xe9\x00\x01\x01", "not valid ascii"),
        (HDR12 + b"\x6d\x4f\x02\xc4\x80\x80\x00\x01\x01", "not a character"),
        (HDR12 + b"\x6d\x4f\x02\x83\xb0\x00\x01\x01", "not a character"),
        (HDR12 + b"\x6d\x4f\x83\x00\x01\x01", "string table offset"),
        (b"\x02\xa4\x01\x6a\x02ab\x6d\x4f\x83\x00\x01\x01", "not NUL-terminated"),
        (HDR12 + b"\x6d\x4f\xc3\x8f\xff\xff\xff\x7fxx\x01\x01", "truncated"),
        (HDR12 + b"\x6d\x4f\xc3\x8f\xff\xff\xff\xff\x7f\x01\x01", "longer than 5 bytes"),
        (HDR12 + b"\x6d\x4f\xc3\xff\xff\xff\xff\x7f\x01\x01", "exceeds 32 bits"),
        (b"\x02\xa4\x01\x6a\x8f\xff\xff\xff\x7f\x6d\x01", "string table of"),
        (b"\x02\xa4\x01\x6a\x00", "no root"),
        (HDR12 + b"\x6d\x00", "SWITCH_PAGE"),
        (b"\x02\x01\x6a\x00", "body"),
    ],
)
def test_bad_input_is_a_codec_error(body: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=f"(?i){message}") as info:
        decode_wbxml(body)
    assert info.value.status_hint == 400


def test_deep_nesting_is_rejected_without_recursion() -> None:
    body = HDR12 + bytes([SYNCML]) + b"\x54" * 200_000
    with pytest.raises(CodecError, match="deeper than 64"):
        decode_wbxml(body)
    closed = HDR12 + bytes([SYNCML]) + b"\x54" * 100 + b"\x01" * 101
    with pytest.raises(CodecError, match="deeper than 64"):
        decode_wbxml(closed)
    assert decode_wbxml(closed, max_depth=101).tag == "SyncML"


def test_linear_time_on_large_input() -> None:
    """Many adjacent text pieces and many elements: quadratic joins would take minutes."""
    pieces = b"\x03abcdefgh\x00" * 200_000
    items = b"\x54\x57\x03x\x00\x01\x01" * 100_000
    blob = b"\xc3\x84\x80\x80\x00" + b"\x00" * (8 * 1024 * 1024)
    body = HDR12 + bytes([SYNCML, 0x4F]) + pieces + blob + b"\x01" + items + b"\x01"
    start = time.perf_counter()
    root = decode_wbxml(body, limits=DecodeLimits(max_elements=1_000_000, max_text=64 << 20))  # time only
    assert time.perf_counter() - start < 10
    data = root.find("Data")
    assert data is not None and isinstance(data.text, bytes) and len(data.text) == 1_600_000 + 8 * 1024 * 1024
    assert len(root.children) == 100_001
    start = time.perf_counter()
    encode_wbxml(el("SyncML", el("SyncHdr", el("VerDTD", text="1.2")), *root.children))
    assert time.perf_counter() - start < 10


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_codec_error(body: bytes) -> None:
    for candidate in (body, HDR12 + body, HDR12 + bytes([SYNCML]) + body):
        try:
            decode_wbxml(candidate)
        except CodecError:
            pass


@needs_captures
@settings(max_examples=400)
@given(st.data())
def test_mutated_captures_only_raise_codec_error(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(WBXML_FILES), label="capture")
    body = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        index = data.draw(st.integers(0, len(body) - 1), label="index")
        body[index] = data.draw(st.integers(0, 255), label="byte")
    try:
        decode_wbxml(bytes(body))
    except CodecError:
        pass


# --- Encoder ----------------------------------------------------------------------------


def test_encode_switches_pages_lazily_like_synthesis() -> None:
    tree = el(
        "SyncML",
        el(
            "SyncHdr",
            el("VerDTD", text="1.2"),
            el(
                "Meta",
                el("MaxMsgSize", text="150000", ns=METINF_NS),
                el("MaxObjSize", text="4", ns=METINF_NS),
            ),
        ),
        el("SyncBody", el("Final")),
    )
    expected = HDR12 + bytes([SYNCML, 0x6C, 0x71, 0x03]) + b"1.2\x00\x01"
    expected += b"\x5a\x00\x01\x4c\x03150000\x00\x01\x55\x034\x00\x01\x01"  # page 1 stays on
    expected += b"\x01\x00\x00\x6b\x12\x01\x01"  # switch back only before SyncBody
    assert encode_wbxml(tree) == expected


def test_encode_item_data_opaque_other_data_inline() -> None:
    tree = syncml(
        el("Alert", el("Data", text="201")),
        el("Status", el("Data", text="200"), el("Item", el("Data", text="note"))),
        el("Add", el("Item", el("Data", text="a\r\nb"))),
        el("Replace", el("Item", el("Data", text=b"\xff"))),
        el("Cred", el("Data", text="secret")),
    )
    out = encode_wbxml(tree)
    assert b"\x46\x4f\x03201\x00\x01" in out
    assert b"\x4f\x03200\x00\x01\x54\x4f\x03note\x00" in out
    assert b"\x45\x54\x4f\xc3\x04a\r\nb\x01" in out
    assert b"\x60\x54\x4f\xc3\x01\xff\x01" in out
    assert b"\x4e\x4f\x03secret\x00\x01" in out


@pytest.mark.parametrize(
    ("ver", "syncml_id", "devinf_id"),
    [("1.2", b"\xa4\x01", b"\xa4\x03"), ("1.1", b"\x9f\x53", b"\x9f\x54"), ("1.0", b"\x9f\x51", b"\x9f\x52")],
)
def test_encode_nested_devinf_follows_root_version(ver: str, syncml_id: bytes, devinf_id: bytes) -> None:
    devinf = el("DevInf", el("VerDTD", text=ver, ns=DEVINF_NS), el("UTC", ns=DEVINF_NS), ns=DEVINF_NS)
    tree = syncml(el("Put", el("Item", el("Data", devinf))), ver=ver)
    out = encode_wbxml(tree)
    assert out[:5] == b"\x02" + syncml_id + b"\x6a\x00"
    nested = b"\x02" + devinf_id + b"\x6a\x00\x4a\x65\x03" + ver.encode() + b"\x00\x01\x28\x01"
    assert b"\x4f\xc3" + bytes([len(nested)]) + nested + b"\x01" in out
    assert decode_wbxml(out) == tree


def test_encode_devinf_without_namespace_is_accepted() -> None:
    tree = syncml(el("Results", el("Item", el("Data", el("DevInf", el("UTC"))))))
    decoded = decode_wbxml(encode_wbxml(tree))
    assert decoded == syncml(
        el("Results", el("Item", el("Data", el("DevInf", el("UTC", ns=DEVINF_NS), ns=DEVINF_NS))))
    )


def test_encode_metinf_without_namespace_falls_back_to_page_1() -> None:
    tree = syncml(el("Alert", el("Meta", el("Anchor", el("Next", text="2")))))
    decoded = decode_wbxml(encode_wbxml(tree))
    meta = decoded.find("SyncBody")
    assert meta is not None
    assert meta.children[0] == el(
        "Alert", el("Meta", el("Anchor", el("Next", text="2", ns=METINF_NS), ns=METINF_NS))
    )


def test_encode_empty_text_keeps_content_bit() -> None:
    out = encode_wbxml(syncml(el("Sync", el("Source", el("LocURI", text="")))))
    assert b"\x57\x03\x00\x01" in out
    assert encode_wbxml(syncml(el("Final"))).endswith(b"\x6b\x12\x01\x01")


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        (el("Nope"), "root element"),
        (el("SyncML", el("SyncBody")), "no VerDTD"),
        (syncml(ver="1.3"), "unsupported VerDTD"),
        (syncml(el("Bogus")), "no WBXML token"),
        (syncml(el("Type", ns="urn:other")), "no WBXML token"),
        (syncml(el("DevInf", ns=DEVINF_NS)), "no WBXML token"),
        (syncml(el("Put", el("Item", el("Data", el("DevInf", el("Bogus")))))), "no WBXML token"),
        (syncml(el("Put", el("Item", el("Data", el("DevInf"), text="x")))), "nothing else"),
        (syncml(el("Put", el("Item", el("Data", el("DevInf"), el("DevInf"))))), "nothing else"),
        (syncml(el("Alert", el("Data", text="a\x00b"))), "NUL"),
        (syncml(el("Add", el("Item", el("Data", text="\ud800")))), "UTF-8"),
    ],
)
def test_encode_errors(tree: Node, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        encode_wbxml(tree)


def test_encode_cycle_is_a_codec_error() -> None:
    loop = el("Item")
    loop.children.append(loop)
    with pytest.raises(CodecError, match="deeper"):
        encode_wbxml(syncml(loop))


# --- Property: decode(encode(tree)) == tree -----------------------------------------------

_TEXT = st.one_of(
    st.none(),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20),
    st.binary(max_size=20),
)
_TAGS = st.one_of(
    st.tuples(st.sampled_from(sorted(SYNCML_TAGS.values())), st.none()),
    st.tuples(st.sampled_from(sorted(METINF_TAGS.values())), st.just(METINF_NS)),
)
_DEVINF_TAGS = st.sampled_from(sorted(set(DEVINF_TAGS.values()) - {"DevInf"}))


def _make(tag: tuple[str, str | None], text: str | bytes | None, children: list[Node]) -> Node:
    return Node(tag[0], children, text, tag[1])


_DEVINF_TREES = st.builds(
    lambda kids: Node("DevInf", kids, None, DEVINF_NS),
    st.lists(st.builds(lambda tag, text: Node(tag, [], text, DEVINF_NS), _DEVINF_TAGS, _TEXT), max_size=4),
)
_NODES = st.recursive(
    st.one_of(
        st.builds(_make, _TAGS, _TEXT, st.just([])),
        st.builds(lambda devinf: Node("Data", [devinf]), _DEVINF_TREES),
    ),
    lambda kids: st.builds(_make, _TAGS, _TEXT, st.lists(kids, max_size=4)),
    max_leaves=25,
)


def _expected(node: Node, parent: str | None = None, grandparent: str | None = None) -> Node:
    """What the decoder gives back: item data that was str comes back as OPAQUE bytes."""
    text = node.text
    if isinstance(text, str) and node.tag == "Data" and parent == "Item" and grandparent != "Status":
        text = text.encode("utf-8")
    children = [_expected(child, node.tag, parent) for child in node.children]
    return Node(node.tag, children, text, node.ns)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NODES, max_size=5), st.sampled_from(["1.0", "1.1", "1.2"]))
def test_roundtrip_property(body: list[Node], ver: str) -> None:
    tree = syncml(*body, ver=ver)
    assert decode_wbxml(encode_wbxml(tree)) == _expected(tree)
