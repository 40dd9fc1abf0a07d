"""XML codec (bytes <-> Node) and the codec registry: namespaces, text fidelity, hostile input."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode, media_type, sniff
from gitsync.codec.node import DEVINF_NS, METINF_NS, Node
from gitsync.codec.xml import decode_xml, encode_xml, is_xml_safe, serialize_children
from gitsync.errors import CodecError
from gitsync.protocol.messages import Message, SyncHdr

HEADER = (
    "<SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto><SessionID>1</SessionID>"
    "<MsgID>1</MsgID></SyncHdr>"
)


def doc(body: str = "", *, xmlns: str | None = None, header: str = HEADER) -> bytes:
    ns = f' xmlns="{xmlns}"' if xmlns is not None else ""
    return f"<SyncML{ns}>{header}<SyncBody>{body}<Final/></SyncBody></SyncML>".encode()


def shape(node: Node) -> tuple[object, ...]:
    """Tag, text and children, ignoring ns: what namespace stripping must make identical."""
    return (node.tag, node.text, tuple(shape(child) for child in node.children))


# --------------------------------------------------------------------------- namespaces


ALERT = (
    '<Alert><CmdID>1</CmdID><Data>200</Data><Item><Meta><Anchor xmlns="syncml:metinf">'
    "<Last>1</Last><Next>2</Next></Anchor></Meta></Item></Alert>"
)


@pytest.mark.parametrize(
    "xmlns", [None, "SYNCML:SYNCML1.2", "syncml:syncml1.1", "SyncML:SyncML1.0", "urn:other"]
)
def test_namespace_is_stripped_whatever_the_peer_declares(xmlns: str | None) -> None:
    root = decode_xml(doc(ALERT, xmlns=xmlns))
    assert shape(root) == shape(decode_xml(doc(ALERT)))
    assert root.tag == "SyncML"
    assert root.ns is None


@pytest.mark.parametrize("metinf", ["syncml:metinf", "SYNCML:METINF"])
def test_metinf_namespace_recorded_in_any_case(metinf: str) -> None:
    body = f'<Put><CmdID>1</CmdID><Meta><Type xmlns="{metinf}">t</Type></Meta></Put>'
    root = decode_xml(doc(body, xmlns="SYNCML:SYNCML1.2"))
    put = root.children[1].children[0]
    assert put.ns is None
    type_node = put.find("Meta").find("Type")  # type: ignore[union-attr]
    assert type_node is not None and type_node.ns == METINF_NS


def test_metinf_and_devinf_inferred_when_peer_omits_namespaces() -> None:
    body = (
        "<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>1</CmdRef><Cmd>Alert</Cmd><Data>200</Data>"
        "<Item><Data><Anchor><Next>5</Next></Anchor></Data></Item></Status>"
        "<Put><CmdID>2</CmdID><Meta><Type>application/vnd.syncml-devinf+xml</Type></Meta>"
        "<Item><Data><DevInf><VerDTD>1.2</VerDTD><DataStore><SourceRef>notes</SourceRef></DataStore>"
        "</DevInf></Data></Item></Put>"
    )
    body_node = decode_xml(doc(body)).children[1]
    status, put = body_node.children[0], body_node.children[1]
    anchor = status.find("Item").find("Data").find("Anchor")  # type: ignore[union-attr]
    assert anchor is not None and anchor.ns == METINF_NS
    assert anchor.children[0].ns == METINF_NS
    assert put.find("Meta").find("Type").ns == METINF_NS  # type: ignore[union-attr]
    devinf = put.find("Item").find("Data").find("DevInf")  # type: ignore[union-attr]
    assert devinf is not None and devinf.ns == DEVINF_NS
    assert devinf.find("DataStore").find("SourceRef").ns == DEVINF_NS  # type: ignore[union-attr]
    assert status.ns is None and status.find("Data").ns is None  # type: ignore[union-attr]


# --------------------------------------------------------------------------- text fidelity


def _item_data(body: bytes) -> Node:
    root = decode_xml(body)
    data = root.children[1].children[0].find("Item").find("Data")  # type: ignore[union-attr]
    assert data is not None
    return data


def test_cdata_is_plain_text_and_whitespace_is_kept() -> None:
    body = doc("<Add><CmdID>1</CmdID><Item><Data><![CDATA[  a <b> & c\r\n\tlast  \r\n]]></Data></Item></Add>")
    assert _item_data(body).text == "  a <b> & c\n\tlast  \n"  # CRLF -> LF is the XML parser's job


def test_escaped_text_and_comments_inside_data() -> None:
    body = doc("<Add><CmdID>1</CmdID><Item><Data>&lt;note&gt;x<!-- c -->y&#13;</Data></Item></Add>")
    assert _item_data(body).text == "<note>xy\r"


def test_data_with_element_children_keeps_them() -> None:
    body = doc(
        "<Add><CmdID>1</CmdID><Item><Data>\n  <note><SIFVersion>1.1</SIFVersion>"
        "<Subject>a &amp; b</Subject><Body/></note>\n</Data></Item></Add>"
    )
    data = _item_data(body)
    assert data.text is None  # indentation around the child is not content
    assert [child.tag for child in data.children] == ["note"]
    assert (
        serialize_children(data)
        == b"<note><SIFVersion>1.1</SIFVersion><Subject>a &amp; b</Subject><Body/></note>"
    )


def test_pretty_printed_document_drops_indentation_only() -> None:
    pretty = b"""<?xml version="1.0" encoding="UTF-8"?>
<SyncML xmlns="SYNCML:SYNCML1.2">
  <SyncHdr>
    <VerDTD>1.2</VerDTD>
    <MsgID>1</MsgID>
  </SyncHdr>
  <SyncBody>
    <Add><CmdID>1</CmdID><Item><Data>  keep me
</Data></Item></Add>
  </SyncBody>
</SyncML>
"""
    root = decode_xml(pretty)
    assert root.text is None
    assert root.children[0].text is None
    assert root.children[0].findtext("MsgID") == "1"
    assert _item_data(pretty).text == "  keep me\n"


def test_other_document_encodings_are_decoded() -> None:
    latin1 = '<?xml version="1.0" encoding="ISO-8859-1"?><SyncML><SyncHdr><MsgID>é</MsgID></SyncHdr></SyncML>'
    assert decode_xml(latin1.encode("latin-1")).children[0].findtext("MsgID") == "é"
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><SyncML><SyncHdr/></SyncML>'.encode("utf-16")
    assert decode_xml(utf16).tag == "SyncML"


# --------------------------------------------------------------------------- encoding


def _tree(ver_dtd: str = "1.2") -> Node:
    root = Node("SyncML")
    header = root.add("SyncHdr")
    header.add("VerDTD", ver_dtd)
    meta = header.add("Meta")
    meta.add("MaxMsgSize", "100", ns=METINF_NS)
    body = root.add("SyncBody")
    status = body.add("Status")
    anchor = status.add("Item").add("Data").add("Anchor", ns=METINF_NS)
    anchor.add("Next", "n1", ns=METINF_NS)
    put_data = body.add("Put").add("Item").add("Data")
    devinf = put_data.add("DevInf", ns=DEVINF_NS)
    devinf.add("VerDTD", "1.2", ns=DEVINF_NS)
    devinf.add("UTC")
    body.add("Final")
    return root


@pytest.mark.parametrize(
    ("ver_dtd", "xmlns"),
    [("1.2", "SYNCML:SYNCML1.2"), ("1.1", "SYNCML:SYNCML1.1"), ("1.0", "SYNCML:SYNCML1.0")],
)
def test_encode_declares_namespaces_where_peers_expect_them(ver_dtd: str, xmlns: str) -> None:
    out = encode_xml(_tree(ver_dtd))
    assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?><SyncML xmlns="' + xmlns.encode() + b'">')
    assert b'<Meta><MaxMsgSize xmlns="syncml:metinf">100</MaxMsgSize></Meta>' in out
    assert b'<Data><Anchor xmlns="syncml:metinf"><Next>n1</Next></Anchor></Data>' in out
    assert b'<Data><DevInf xmlns="syncml:devinf"><VerDTD>1.2</VerDTD><UTC/></DevInf></Data>' in out
    assert out.endswith(b"<Final/></SyncBody></SyncML>")
    again = decode_xml(out)
    assert shape(again) == shape(_tree(ver_dtd))


def test_encode_escapes_text_and_keeps_carriage_returns() -> None:
    root = Node("SyncML")
    root.add("Data", "a<b>&c]]>\r\n\t")
    root.add("Raw", "é\r".encode())
    out = encode_xml(root)
    assert b"<Data>a&lt;b&gt;&amp;c]]&gt;&#13;\n\t</Data>" in out
    assert "<Raw>é&#13;</Raw>".encode() in out
    decoded = decode_xml(out)
    assert decoded.findtext("Data") == "a<b>&c]]>\r\n\t"
    assert decoded.findtext("Raw") == "é\r"


@pytest.mark.parametrize(
    "text",
    ["bell\x07", "nul\x00", "\ufffe", "\ud800", b"\xff\xfe", b"ok\x01", b"\xed\xa0\x80"],
    ids=["bell", "nul", "fffe", "surrogate", "bad-utf8", "bytes-control", "utf8-surrogate"],
)
def test_encode_refuses_text_xml_cannot_carry(text: str | bytes) -> None:
    root = Node("SyncML")
    root.add("Data", text)
    with pytest.raises(CodecError):
        encode_xml(root)


@pytest.mark.parametrize("tag", ["", "1abc", "a b", "x><y", "ns:tag"])
def test_encode_refuses_bad_element_names(tag: str) -> None:
    with pytest.raises(CodecError):
        encode_xml(Node("SyncML", [Node(tag)]))


@given(st.text())
def test_any_text_either_survives_exactly_or_is_refused(text: str) -> None:
    root = Node("SyncML", [Node("Data", text=text)])
    if is_xml_safe(text):
        assert decode_xml(encode_xml(root)).findtext("Data") == text
    else:
        with pytest.raises(CodecError):
            encode_xml(root)


# --------------------------------------------------------------------------- hostile input

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><SyncML><SyncHdr><SessionID>&lol9;</SessionID><MsgID>1</MsgID></SyncHdr><SyncBody/></SyncML>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<SyncML><SyncHdr><SessionID>&xxe;</SessionID><MsgID>1</MsgID></SyncHdr><SyncBody/></SyncML>"
)
EXTERNAL_DTD = b'<!DOCTYPE SyncML SYSTEM "http://127.0.0.1:9/syncml.dtd">' + doc()
UTF16_DOCTYPE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE SyncML><SyncML/>'.encode("utf-16")

HOSTILE = {
    "billion-laughs": BILLION_LAUGHS,
    "xxe": XXE,
    "external-dtd": EXTERNAL_DTD,
    "doctype-after-comment": b'<?xml version="1.0"?>\n<!-- hi -->\n<!DOCTYPE SyncML>' + doc(),
    "utf16-doctype": UTF16_DOCTYPE,
    "deep-10000": b"<SyncML>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</SyncML>",
    "deep-100": b"<SyncML>" + b"<a>" * 100 + b"</a>" * 100 + b"</SyncML>",
    "truncated": doc(ALERT)[:-20],
    "not-xml": b"<<<>>>",
    "text-only": b"hello",
    "empty": b"",
    "undefined-entity": b"<SyncML>&foo;</SyncML>",
    "nul-char-ref": b"<SyncML>&#0;</SyncML>",
    "two-roots": doc() + doc(),
    "wrong-root": b"<html><body/></html>",
    "devinf-root": b'<DevInf xmlns="syncml:devinf"><VerDTD>1.2</VerDTD></DevInf>',
    "no-synchdr": b"<SyncML><SyncBody><Final/></SyncBody></SyncML>",
    "no-syncbody": f"<SyncML>{HEADER}</SyncML>".encode(),
    "no-msgid": doc(header="<SyncHdr><SessionID>1</SessionID></SyncHdr>"),
    "no-sessionid": doc(header="<SyncHdr><MsgID>1</MsgID></SyncHdr>"),
    "msgid-word": doc(header="<SyncHdr><SessionID>1</SessionID><MsgID>one</MsgID></SyncHdr>"),
    "msgid-negative": doc(header="<SyncHdr><SessionID>1</SessionID><MsgID>-1</MsgID></SyncHdr>"),
    "msgid-huge": doc(header=f"<SyncHdr><SessionID>1</SessionID><MsgID>{'9' * 5000}</MsgID></SyncHdr>"),
    "cmdid-word": doc("<Alert><CmdID>x</CmdID><Data>200</Data></Alert>"),
    "cmdid-missing": doc("<Alert><Data>200</Data></Alert>"),
    "status-no-code": doc(
        "<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd></Status>"
    ),
    "alert-no-code": doc("<Alert><CmdID>1</CmdID></Alert>"),
    "status-no-msgref": doc(
        "<Status><CmdID>1</CmdID><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status>"
    ),
    "copy-no-cmdid": doc("<Copy/>"),
    # "bad-b64" is no longer a message error: that item alone is kept as an unreadable note
    # (issue 14 §3; tests/app/test_unreadable_items.py)
    "mapitem-no-target": doc(
        "<Map><CmdID>1</CmdID><MapItem><Source><LocURI>1</LocURI></Source></MapItem></Map>"
    ),
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_raises_codec_error_only(body: bytes) -> None:
    start = time.monotonic()
    with pytest.raises(CodecError) as info:
        decode(body, XML_TYPE)
    assert time.monotonic() - start < 2
    assert info.value.status_hint in (400, 415)
    assert str(info.value)


@pytest.mark.parametrize(
    "key", ["billion-laughs", "xxe", "external-dtd", "doctype-after-comment", "utf16-doctype"]
)
def test_any_doctype_is_refused_outright(key: str) -> None:
    with pytest.raises(CodecError, match="DOCTYPE") as info:
        decode_xml(HOSTILE[key])
    assert info.value.status_hint == 400


def test_doctype_text_inside_cdata_is_just_text() -> None:
    body = doc("<Add><CmdID>1</CmdID><Item><Data><![CDATA[<!DOCTYPE html>]]></Data></Item></Add>")
    assert _item_data(body).text == "<!DOCTYPE html>"


def test_oversized_body_is_413_before_parsing() -> None:
    big = doc("<Add><CmdID>1</CmdID><Item><Data>" + "x" * (20 * 1024 * 1024) + "</Data></Item></Add>")
    for call in (lambda: decode(big), lambda: decode_xml(big), lambda: decode(big[:1000], max_size=999)):
        with pytest.raises(CodecError) as info:
            call()
        assert info.value.status_hint == 413


def test_nesting_limit() -> None:
    ok = b"<SyncML>" + b"<a>" * 62 + b"</a>" * 62 + b"</SyncML>"
    assert decode_xml(ok).tag == "SyncML"
    too_deep = b"<SyncML>" + b"<a>" * 64 + b"</a>" * 64 + b"</SyncML>"
    with pytest.raises(CodecError, match="nesting"):
        decode_xml(too_deep)


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/vnd.syncml+xml; charset=UTF-8", XML_TYPE),
        ("Application/VND.SyncML+WBXML", WBXML_TYPE),
        ("  text/xml ;q=1", "text/xml"),
        (None, ""),
        ("", ""),
    ],
)
def test_media_type(header: str | None, expected: str) -> None:
    assert media_type(header) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<SyncML/>", XML_TYPE),
        (b"\r\n  <?xml version='1.0'?><SyncML/>", XML_TYPE),
        (b"\xef\xbb\xbf<SyncML/>", XML_TYPE),
        ("<SyncML/>".encode("utf-16"), XML_TYPE),
        (b"\x02\xa4\x01\x6a\x00", WBXML_TYPE),
        (b"\x01\x00", WBXML_TYPE),
        (b"\x03", WBXML_TYPE),
    ],
)
def test_sniff(body: bytes, expected: str) -> None:
    assert sniff(body) == expected


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\x01", b"\x04", b"{}", b"HTTP/1.1 200 OK"])
def test_sniff_refuses_unknown_bodies_with_415(body: bytes) -> None:
    with pytest.raises(CodecError) as info:
        sniff(body)
    assert info.value.status_hint == 415


MINIMAL = Message(header=SyncHdr(session_id="7", msg_id=3, target="http://server/", source="client"))


@pytest.mark.parametrize(
    "content_type", [None, XML_TYPE, "application/vnd.syncml+xml; charset=UTF-8", "text/xml", WBXML_TYPE]
)
def test_decode_trusts_the_bytes_over_the_content_type(content_type: str | None) -> None:
    message, encoding = decode(encode(MINIMAL), content_type)
    assert message == MINIMAL
    assert encoding == XML_TYPE


def test_decode_with_declared_type_but_garbage_reports_the_parse_error() -> None:
    with pytest.raises(CodecError) as info:
        decode(b"garbage", XML_TYPE)
    assert info.value.status_hint == 400
    with pytest.raises(CodecError) as info:
        decode(b"garbage", "text/plain")
    assert info.value.status_hint == 415


def test_encode_xml_output_and_unknown_content_type() -> None:
    out = encode(MINIMAL, "application/vnd.syncml+xml; charset=UTF-8")
    assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?><SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr>')
    with pytest.raises(CodecError) as info:
        encode(MINIMAL, "application/json")
    assert info.value.status_hint == 415


def test_wbxml_registry_round_trip() -> None:
    pytest.importorskip("gitsync.codec.wbxml")
    body = encode(MINIMAL, WBXML_TYPE)
    assert sniff(body) == WBXML_TYPE
    assert decode(body) == (MINIMAL, WBXML_TYPE)
    assert decode(body, XML_TYPE) == (MINIMAL, WBXML_TYPE)  # the bytes win over a wrong header
