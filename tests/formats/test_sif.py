"""SIF-N: golden payloads from pysyncml, Outlook/Funambol variants, hostile XML, round trips."""

from __future__ import annotations

import codecs
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitsync.errors import FormatError
from gitsync.formats import SIFN_10, SIFN_11, NoteData
from tests.formats.captured import needs_fixtures, sif_payloads
from tests.formats.strategies import xml_text

ZETA = (
    b'<note><SIFVersion>1.1</SIFVersion><Subject>zeta.txt</Subject><Body>Zeta: &lt;tags&gt; &amp; "quotes"\n'
    b"line2\n</Body></note>"
)


def test_attributes() -> None:
    assert (SIFN_11.content_type, SIFN_11.version, SIFN_11.carries_name) == ("text/x-s4j-sifn", "1.1", True)
    assert (SIFN_10.content_type, SIFN_10.version) == ("text/x-s4j-sifn", "1.0")


def test_protocol_example() -> None:
    note = SIFN_11.parse(ZETA)
    assert note == NoteData(name="zeta.txt", body=b'Zeta: <tags> & "quotes"\nline2\n')
    assert SIFN_11.render(note) == ZETA


@needs_fixtures
def test_captured_payloads_parse_and_render_byte_exact() -> None:
    payloads = sif_payloads()
    assert len(payloads) >= 20
    names = set()
    for where, payload in payloads:
        note = SIFN_11.parse(payload)
        assert note.name, where
        assert note.extra == (), where
        assert note.body.endswith(b"\n"), where
        assert SIFN_11.render(note) == payload, where
        names.add(note.name)
    assert {"zeta.txt", "sub/gamma.txt", "alpha.txt"} <= names


@needs_fixtures
def test_captured_subdir_subject_is_a_path() -> None:
    bodies = {SIFN_11.parse(p).name: SIFN_11.parse(p).body for _, p in sif_payloads()}
    assert bodies["sub/gamma.txt"] == b"Gamma in subdir\n"


def test_outlook_payload_with_declaration_crlf_and_extras() -> None:
    payload = (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n<note>\r\n<SIFVersion>1.1</SIFVersion>\r\n'
        b"<Subject>Einkauf</Subject>\r\n<Body>Milch\r\nEier\r\n</Body>\r\n<Categories>Privat</Categories>\r\n"
        b"<Color>3</Color>\r\n<Height>200</Height>\r\n<Width>180</Width>\r\n<Left>10</Left>\r\n<Top>20</Top>\r\n"
        b"</note>\r\n"
    )
    note = SIFN_11.parse(payload)
    assert note.name == "Einkauf"
    assert note.body == b"Milch\r\nEier\r\n"
    assert note.extra == (
        ("Categories", "Privat"),
        ("Color", "3"),
        ("Height", "200"),
        ("Width", "180"),
        ("Left", "10"),
        ("Top", "20"),
    )
    rendered = SIFN_11.render(note)
    assert rendered == (
        b"<note><SIFVersion>1.1</SIFVersion><Subject>Einkauf</Subject><Body>Milch&#13;\nEier&#13;\n</Body>"
        b"<Categories>Privat</Categories><Color>3</Color><Height>200</Height><Width>180</Width>"
        b"<Left>10</Left><Top>20</Top></note>"
    )
    assert SIFN_11.parse(rendered) == note
    # Any XML parser (pysyncml's ElementTree) reads the CR back.
    assert ET.fromstring(rendered).findtext("Body") == "Milch\r\nEier\r\n"


def test_bom_and_declaration_accepted() -> None:
    payload = codecs.BOM_UTF8 + b"<?xml version='1.0'?><note><Subject>\xc3\xa4</Subject><Body>b</Body></note>"
    assert SIFN_11.parse(payload) == NoteData(name="ä", body=b"b")


def test_utf16_with_bom() -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?><note><Subject>n</Subject><Body>ü\r\n</Body></note>'
    assert SIFN_11.parse(codecs.BOM_UTF16_LE + text.encode("utf-16-le")).body == "ü\r\n".encode()


def test_declared_latin1_is_converted_to_utf8() -> None:
    payload = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?><note><Subject>K\xf6ln</Subject><Body>\xdf</Body></note>'
    )
    assert SIFN_11.parse(payload) == NoteData(name="Köln", body="ß".encode())


def test_undeclared_windows_1252_does_not_fail() -> None:
    payload = b"<note><Subject>x</Subject><Body>\x93quoted\x94 \x80</Body></note>"
    assert SIFN_11.parse(payload).body == "\u201cquoted\u201d €".encode()


def test_character_references_as_pysyncml_writes_them() -> None:
    payload = (
        b"<note><SIFVersion>1.1</SIFVersion><Subject>&#252;.txt</Subject><Body>&#8364;&#13;\n</Body></note>"
    )
    assert SIFN_11.parse(payload) == NoteData(name="ü.txt", body="€\r\n".encode())


def test_cdata_and_lone_cr_preserved() -> None:
    payload = b"<note><Subject>c</Subject><Body><![CDATA[a <b> & c\r\nd\re]]></Body></note>"
    assert SIFN_11.parse(payload).body == b"a <b> & c\r\nd\re"


def test_body_of_only_crlf() -> None:
    assert SIFN_11.parse(b"<note><Body>\r\n</Body></note>").body == b"\r\n"


def test_pretty_printed_whitespace_between_elements_ignored() -> None:
    payload = b"<note>\n  <Subject>s</Subject>\n  <Body>b</Body>\n  <Color>1</Color>\n</note>\n"
    assert SIFN_11.parse(payload) == NoteData(name="s", body=b"b", extra=(("Color", "1"),))


def test_missing_subject_and_body() -> None:
    assert SIFN_11.parse(b"<note><SIFVersion>1.1</SIFVersion></note>") == NoteData(name=None, body=b"")
    assert SIFN_11.parse(b"<note><Subject/><Body /></note>") == NoteData(name="", body=b"")


def test_duplicate_mapped_fields_first_wins() -> None:
    payload = b"<note><Subject>a</Subject><Subject>b</Subject><Body>1</Body><Body>2</Body></note>"
    assert SIFN_11.parse(payload) == NoteData(name="a", body=b"1")


def test_namespaced_children() -> None:
    payload = b'<note xmlns="urn:x"><Subject>s</Subject><Body>b</Body><Color>2</Color></note>'
    assert SIFN_11.parse(payload) == NoteData(name="s", body=b"b", extra=(("Color", "2"),))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not xml",
        b"<note><Body>unclosed</note>",
        b"<contact><Body>x</Body></contact>",
        b"<note><Body>&#0;</Body></note>",
        b'<!DOCTYPE note [<!ENTITY x "boom">]><note><Body>&x;</Body></note>',
        b'<!DOCTYPE note SYSTEM "file:///etc/passwd"><note><Body>x</Body></note>',
        b'<note><!ENTITY x "y"><Body>x</Body></note>',
        b"<note><Body>&undefined;</Body></note>",
    ],
)
def test_garbage_and_dtds_are_format_errors(payload: bytes) -> None:
    with pytest.raises(FormatError):
        SIFN_11.parse(payload)


def test_render_without_name_has_no_subject() -> None:
    assert (
        SIFN_11.render(NoteData(name=None, body=b"")) == b"<note><SIFVersion>1.1</SIFVersion><Body /></note>"
    )


def test_render_sifn10_writes_its_version() -> None:
    assert SIFN_10.render(NoteData(name="a", body=b"b")).startswith(b"<note><SIFVersion>1.0</SIFVersion>")


def test_render_escapes_and_replaces_what_xml_cannot_carry() -> None:
    rendered = SIFN_11.render(NoteData(name="a]]>b", body=b"x\x00y\x1bz\tw"))
    assert b"a]]&gt;b" in rendered
    assert SIFN_11.parse(rendered).body == "x\ufffdy\ufffdz\tw".encode()


def test_render_non_utf8_body_is_read_as_windows_1252() -> None:
    assert SIFN_11.parse(SIFN_11.render(NoteData(name="a", body=b"caf\xe9"))).body == "café".encode()


def test_render_skips_extras_it_cannot_write() -> None:
    note = NoteData(
        name="a",
        body=b"b",
        extra=(("Color", "1"), ("X-FOO;TYPE=a", "no"), ("Subject", "dup"), ("1bad", "no"), ("Top", "")),
    )
    assert SIFN_11.parse(SIFN_11.render(note)).extra == (("Color", "1"), ("Top", ""))


extra_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,12}", fullmatch=True).filter(
    lambda key: key not in ("SIFVersion", "Subject", "Body")
)


@given(
    name=st.one_of(st.none(), xml_text),
    body=xml_text,
    extra=st.lists(st.tuples(extra_keys, xml_text), max_size=5),
)
def test_round_trip(name: str | None, body: str, extra: list[tuple[str, str]]) -> None:
    note = NoteData(name=name, body=body.encode("utf-8"), extra=tuple(extra))
    for fmt in (SIFN_11, SIFN_10):
        rendered = fmt.render(note)
        assert fmt.parse(rendered) == note
        # Well-formed for any XML parser, and no XML declaration, like pysyncml.
        ET.fromstring(rendered)
        assert rendered.startswith(b"<note>")


_FRAGMENTS = st.sampled_from(
    [
        b"<note>",
        b"</note>",
        b"<Body>",
        b"</Body>",
        b"<Subject>",
        b"</Subject>",
        b"<Color a='>'>",
        b"</Color>",
        b"<X/>",
        b"\r",
        b"\n",
        b"<![CDATA[",
        b"]]>",
        b"&#13;",
        b"&amp;",
        b"<?xml version='1.0' encoding='latin-1'?>",
        b"\xef\xbb\xbf",
        b"<!--",
        b"-->",
        b"\x00",
        b"\xe9",
        b"text",
    ]
)


@given(st.one_of(st.binary(max_size=200), st.lists(_FRAGMENTS, max_size=25).map(b"".join)))
def test_parse_fails_only_with_format_error(data: bytes) -> None:
    try:
        note = SIFN_11.parse(data)
    except FormatError:
        return
    assert SIFN_11.parse(SIFN_11.render(note)) == note
