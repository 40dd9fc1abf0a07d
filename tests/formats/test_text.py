"""Charset conversion never loses a byte."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gitsync.formats.text import charset_codec, decode_text, to_utf8


def test_declared_charsets_convert() -> None:
    assert to_utf8(b"K\xf6ln", "ISO-8859-1") == "Köln".encode()
    assert to_utf8(b"\x93x\x94", "windows-1252") == "\u201cx\u201d".encode()
    assert to_utf8("ü".encode("utf-16-le"), "UTF-16LE") == "ü".encode()
    assert to_utf8(b"\x82\xa0", "shift_jis") == "あ".encode()


def test_utf8_none_and_unknown_keep_bytes() -> None:
    for charset in (None, "UTF-8", "utf8", "x-unknown-charset", ""):
        assert to_utf8(b"ok \xff\xfe", charset) == b"ok \xff\xfe"


def test_undecodable_bytes_kept() -> None:
    assert to_utf8(b"a\x81b", "cp1252") == b"a\x81b"
    assert to_utf8(b"\xff\x41", "utf-16-le") == "\u41ff".encode()
    # A codec that cannot even escape the bad byte leaves the data alone.
    assert to_utf8(b"\x41", "utf-16-le") == b"\x41"


def test_charset_spellings() -> None:
    assert charset_codec('"UTF-8"') == "utf-8"
    assert charset_codec("ISO_8859-1") == charset_codec("latin1") == "iso8859-1"
    assert charset_codec("nope") is None


def test_decode_text_falls_back() -> None:
    assert decode_text(b"\xc3\xbc") == "ü"
    assert decode_text(b"\xfc") == "ü"
    assert decode_text(b"\x81") == "\x81"
    assert decode_text(b"\xfc", "ISO-8859-1") == "ü"


@given(st.binary(), st.sampled_from([None, "UTF-8", "ISO-8859-1", "cp1252", "koi8-r", "bogus"]))
def test_to_utf8_is_lossless(data: bytes, charset: str | None) -> None:
    converted = to_utf8(data, charset)
    codec = charset_codec(charset)
    if codec in (None, "utf-8"):
        assert converted == data
    else:
        text = converted.decode("utf-8", errors="surrogateescape")
        assert text.encode(codec, errors="surrogateescape") == data


@given(st.binary())
def test_to_utf8_multibyte_codecs_never_raise(data: bytes) -> None:
    for charset in ("utf-16-le", "shift_jis", "gb18030", "utf-32"):
        converted = to_utf8(data, charset)
        assert converted == data or converted.decode("utf-8", errors="surrogateescape")


@given(st.binary())
def test_decode_text_never_fails_nor_yields_surrogates(data: bytes) -> None:
    decode_text(data).encode("utf-8")
