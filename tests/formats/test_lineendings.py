"""Line endings: a change of line ending alone is not a change."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitsync.formats.lineendings import adapt, canonical, detect, to_crlf, to_lf

texts = st.lists(
    st.sampled_from([b"a", b"b c", b" ", b"\t", b"\r\n", b"\n", b"\r", "ü".encode()]), max_size=30
).map(b"".join)


def test_detect() -> None:
    assert detect(b"") == b"\n"
    assert detect(b"one line") == b"\n"
    assert detect(b"a\r\nb\r\nc\n") == b"\r\n"
    assert detect(b"a\r\nb\nc\n") == b"\n"
    assert detect(b"a\r\nb\n") == b"\n"


def test_to_lf_and_to_crlf() -> None:
    assert to_lf(b"a\r\nb\rc\nd") == b"a\nb\nc\nd"
    assert to_crlf(b"a\r\nb\nc\r") == b"a\r\nb\r\nc\r\n"
    assert to_crlf(b"a\r\n\r\n") == b"a\r\n\r\n"


def test_canonical_synthesis_trailing_crlf() -> None:
    assert canonical(b"Server side memo\r\nsecond line\r\n\r\n") == b"Server side memo\nsecond line"
    assert canonical(b"\xef\xbb\xbfx  \n \n\t\n") == b"x"
    assert canonical(b"  indented\n\nkept\n") == b"  indented\n\nkept"


def test_adapt() -> None:
    assert adapt(b"a\nb\n", b"\r\n") == b"a\r\nb\r\n"
    assert adapt(b"a\r\nb\r\n", b"\n") == b"a\nb\n"
    with pytest.raises(ValueError):
        adapt(b"a", b"\r")


@given(texts)
def test_properties(data: bytes) -> None:
    assert b"\r" not in to_lf(data)
    assert to_lf(to_crlf(data)) == to_lf(data)
    assert to_crlf(to_crlf(data)) == to_crlf(data)
    assert canonical(to_crlf(data)) == canonical(data) == canonical(to_lf(data) + b"\n\n  ")
    assert canonical(canonical(data)) == canonical(data)
    assert detect(adapt(data, b"\r\n")) == b"\r\n" or b"\n" not in to_lf(data)
    assert adapt(data, detect(data)) in (to_lf(data), to_crlf(data))
