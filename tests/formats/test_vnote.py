"""vNote 1.1: phone and KNotes samples (QP soft breaks, folding, charsets, escapes), round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitsync.errors import FormatError
from gitsync.formats import VNOTE_11, NoteData
from tests.formats.strategies import unicode_text


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1")


PROTOCOL_SAMPLE = crlf(
    "BEGIN:VNOTE\n"
    "VERSION:1.1\n"
    "SUMMARY:Shopping\n"
    "BODY;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Shopping=0D=0Amilk=0D=0Aeggs\n"
    "DCREATED:20260101T120000Z\n"
    "LAST-MODIFIED:20260102T080000Z\n"
    "CATEGORIES:Personal\n"
    "CLASS:PUBLIC\n"
    "X-IRMC-LUID:000000000012\n"
    "END:VNOTE\n"
)


def test_attributes() -> None:
    assert (VNOTE_11.content_type, VNOTE_11.version, VNOTE_11.carries_name) == ("text/x-vnote", "1.1", True)


def test_protocol_sample() -> None:
    note = VNOTE_11.parse(PROTOCOL_SAMPLE)
    assert note == NoteData(
        name="Shopping",
        body=b"Shopping\r\nmilk\r\neggs",
        extra=(
            ("DCREATED", "20260101T120000Z"),
            ("LAST-MODIFIED", "20260102T080000Z"),
            ("CATEGORIES", "Personal"),
            ("CLASS", "PUBLIC"),
            ("X-IRMC-LUID", "000000000012"),
        ),
    )
    assert VNOTE_11.render(note) == PROTOCOL_SAMPLE


def test_sony_ericsson_iso_8859_1_quoted_printable() -> None:
    payload = crlf(
        "BEGIN:VNOTE\nVERSION:1.1\n"
        "BODY;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:K=F6ln=0D=0AStra=DFe\n"
        "END:VNOTE\n"
    )
    assert VNOTE_11.parse(payload) == NoteData(name=None, body="Köln\r\nStraße".encode())


def test_raw_8bit_with_charset() -> None:
    payload = (
        b"BEGIN:VNOTE\r\nSUMMARY;CHARSET=ISO-8859-1:Caf\xe9\r\n"
        b"BODY;CHARSET=ISO-8859-1:Caf\xe9\r\nEND:VNOTE\r\n"
    )
    assert VNOTE_11.parse(payload) == NoteData(name="Café", body="Café".encode())


def test_qp_soft_line_breaks() -> None:
    payload = crlf(
        "BEGIN:VNOTE\nVERSION:1.1\n"
        "BODY;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:first line=0D=0Aseco=\n"
        "nd line =C3=\n"
        "=BC=\n"
        "\n"
        "END:VNOTE\n"
    )
    assert VNOTE_11.parse(payload).body == "first line\r\nsecond line ü".encode()


def test_bare_quoted_printable_parameter_vcard21_style() -> None:
    payload = b"BEGIN:VNOTE\nBODY;QUOTED-PRINTABLE:a=3Db=\nc\nEND:VNOTE\n"
    assert VNOTE_11.parse(payload).body == b"a=bc"


def test_folded_lines() -> None:
    payload = crlf(
        "BEGIN:VNOTE\nVERSION:1.1\nSUMMARY:A rather long\n  summary\n"
        "BODY:folded\n\tbody\nCATEGORIES:Pers\n onal\nEND:VNOTE\n"
    )
    assert VNOTE_11.parse(payload) == NoteData(
        name="A rather long summary", body=b"foldedbody", extra=(("CATEGORIES", "Personal"),)
    )


def test_backslash_escapes() -> None:
    payload = b"BEGIN:VNOTE\nSUMMARY:a\\, b\\; c\nBODY:one\\ntwo\\Nthree \\\\ \\, \\; \\x\nEND:VNOTE\n"
    note = VNOTE_11.parse(payload)
    assert note.name == "a, b; c"
    assert note.body == b"one\ntwo\nthree \\ , ; \\x"


def test_extras_keep_escapes_and_params() -> None:
    payload = b"BEGIN:VNOTE\nBODY:x\nCATEGORIES;X-A=1:a\\,b,c\nitem1.X-FOO;TYPE=home:v\nEND:VNOTE\n"
    note = VNOTE_11.parse(payload)
    assert note.extra == (("CATEGORIES;X-A=1", "a\\,b,c"), ("item1.X-FOO;TYPE=home", "v"))
    assert VNOTE_11.parse(VNOTE_11.render(note)) == note


def test_extras_charset_and_encoding_are_undone() -> None:
    payload = (
        b"BEGIN:VNOTE\nBODY:x\n"
        b"CATEGORIES;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Pers=F6nlich\nEND:VNOTE\n"
    )
    assert VNOTE_11.parse(payload).extra == (("CATEGORIES", "Persönlich"),)


def test_base64_body() -> None:
    payload = b"BEGIN:VNOTE\nBODY;ENCODING=BASE64;CHARSET=UTF-8:w7xiZXI=\nEND:VNOTE\n"
    assert VNOTE_11.parse(payload).body == "über".encode()


def test_undecodable_bytes_are_kept() -> None:
    payload = b"BEGIN:VNOTE\r\nBODY;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:ok=FF=FE\r\nEND:VNOTE\r\n"
    assert VNOTE_11.parse(payload).body == b"ok\xff\xfe"


def test_lf_only_lowercase_names_and_junk_around() -> None:
    payload = (
        b"\xef\xbb\xbfjunk\nbegin:vnote\nversion:1.1\nsummary:s\nbody:b\nno colon here\nend:vnote\ntrailer\n"
    )
    assert VNOTE_11.parse(payload) == NoteData(name="s", body=b"b")


def test_missing_body_is_empty_and_missing_summary_is_none() -> None:
    assert VNOTE_11.parse(b"BEGIN:VNOTE\r\nVERSION:1.1\r\nEND:VNOTE\r\n") == NoteData(name=None, body=b"")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"hello",
        b"BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n",
        b"BEGIN:VNOTE\r\nBODY:truncated",
        b"BEGIN:VNOTE\r\nBODY;ENCODING=BASE64:!!!!\r\nEND:VNOTE\r\n",
    ],
)
def test_garbage_is_format_error(payload: bytes) -> None:
    with pytest.raises(FormatError):
        VNOTE_11.parse(payload)


def test_render_plain_ascii_is_not_encoded() -> None:
    assert VNOTE_11.render(NoteData(name="Hello", body=b"just text")) == (
        b"BEGIN:VNOTE\r\nVERSION:1.1\r\nSUMMARY:Hello\r\nBODY:just text\r\nEND:VNOTE\r\n"
    )


def test_render_multiline_and_unicode_use_qp_utf8() -> None:
    rendered = VNOTE_11.render(NoteData(name=None, body="a\nü".encode()))
    assert b"BODY;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:a=0A=C3=BC\r\n" in rendered
    assert b"SUMMARY" not in rendered


def test_render_only_doubles_backslashes_that_would_read_as_escapes() -> None:
    rendered = VNOTE_11.render(NoteData(name=None, body=b"C:\\temp C:\\new"))
    assert b"BODY:C:\\temp C:\\\\new\r\n" in rendered
    assert VNOTE_11.parse(rendered).body == b"C:\\temp C:\\new"


def test_render_folds_long_lines_at_75_octets() -> None:
    body = b"word " * 40 + b"end"
    name = "x" * 200
    rendered = VNOTE_11.render(NoteData(name=name, body=body + "ü".encode()))
    lines = rendered.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines)
    assert VNOTE_11.parse(rendered) == NoteData(name=name, body=body + "ü".encode())


def test_render_qp_continuation_never_starts_with_whitespace() -> None:
    rendered = VNOTE_11.render(NoteData(name=None, body=b"\n" + b" " * 300 + b"\t" * 50))
    for line in rendered.split(b"\r\n")[1:]:
        assert not line.startswith((b" ", b"\t"))
        assert not line.endswith((b" ", b"\t"))


def test_render_skips_extras_a_vnote_cannot_carry() -> None:
    note = NoteData(
        name="n",
        body=b"b",
        extra=(
            ("Color", "3"),
            ("BODY", "x"),
            ("END", "VNOTE"),
            ("bad key", "x"),
            ("X_Y", "x"),
            ("CLASS", "PUBLIC"),
        ),
    )
    assert VNOTE_11.parse(VNOTE_11.render(note)).extra == (("Color", "3"), ("CLASS", "PUBLIC"))


extra_keys = st.one_of(
    st.sampled_from(["CATEGORIES", "CLASS", "DCREATED", "LAST-MODIFIED", "X-IRMC-LUID", "Color"]),
    st.from_regex(r"(?:[A-Za-z0-9-]{1,5}\.)?X-[A-Za-z0-9-]{1,10}(?:;TYPE=[a-z]{1,5})?", fullmatch=True),
)


@given(
    name=st.one_of(st.none(), unicode_text),
    body=st.one_of(st.binary(max_size=300), unicode_text.map(str.encode)),
    extra=st.lists(st.tuples(extra_keys, unicode_text), max_size=5),
)
def test_round_trip(name: str | None, body: bytes, extra: list[tuple[str, str]]) -> None:
    note = NoteData(name=name, body=body, extra=tuple(extra))
    rendered = VNOTE_11.render(note)
    assert VNOTE_11.parse(rendered) == note
    assert rendered.startswith(b"BEGIN:VNOTE\r\nVERSION:1.1\r\n")
    assert rendered.endswith(b"\r\nEND:VNOTE\r\n")
    lines = rendered.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines)
    assert all(b"\r" not in line and b"\n" not in line for line in lines)
    assert all(byte < 0x80 for byte in rendered)


def test_quoted_parameter_with_colon() -> None:
    payload = b'BEGIN:VNOTE\r\nX-LINK;LABEL="a:b";CHARSET=UTF-8:v:w\r\nBODY:b\r\nEND:VNOTE\r\n'
    note = VNOTE_11.parse(payload)
    assert note.extra == (('X-LINK;LABEL="a:b"', "v:w"),)
    assert VNOTE_11.parse(VNOTE_11.render(note)) == note


_FRAGMENTS = st.sampled_from(
    [
        b"BEGIN:VNOTE",
        b"END:VNOTE",
        b"\r\n",
        b"\n",
        b"\r",
        b" ",
        b"\t",
        b"BODY",
        b"SUMMARY",
        b"X-A",
        b";ENCODING=QUOTED-PRINTABLE",
        b";ENCODING=BASE64",
        b";CHARSET=ISO-8859-1",
        b";CHARSET=bogus",
        b";CHARSET=utf-16",
        b":",
        b"=",
        b"=0D",
        b"=F",
        b"\\",
        b"n",
        b"QUJD",
        b'"',
        b"\xff",
    ]
)


@given(st.one_of(st.binary(max_size=200), st.lists(_FRAGMENTS, max_size=40).map(b"".join)))
def test_parse_fails_only_with_format_error(data: bytes) -> None:
    try:
        note = VNOTE_11.parse(data)
    except FormatError:
        return
    again = VNOTE_11.parse(VNOTE_11.render(note))
    assert (again.name, again.body) == (note.name, note.body)
