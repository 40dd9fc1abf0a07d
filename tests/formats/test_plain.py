"""text/plain: the payload is the body, byte for byte (Synthesis CRLF memos included)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gitsync.formats import TEXT_10, TEXT_11, NoteData
from gitsync.formats.lineendings import canonical
from tests.formats.captured import needs_fixtures, synthesis_text_payloads


def test_attributes() -> None:
    assert (TEXT_10.content_type, TEXT_10.version, TEXT_10.carries_name) == ("text/plain", "1.0", False)
    assert (TEXT_11.content_type, TEXT_11.version, TEXT_11.carries_name) == ("text/plain", "1.1", False)


@needs_fixtures
def test_synthesis_memos_are_kept_exactly() -> None:
    payloads = synthesis_text_payloads()
    assert payloads
    for where, payload in payloads:
        note = TEXT_10.parse(payload)
        assert note == NoteData(name=None, body=payload), where
        assert TEXT_11.render(note) == payload, where
    bodies = {payload for _, payload in payloads}
    assert b"Server side memo\r\nsecond line\r\n\r\n" in bodies
    # What makes it the same note as the LF file we would store.
    assert canonical(b"Server side memo\r\nsecond line\r\n\r\n") == canonical(
        b"Server side memo\nsecond line\n"
    )


def test_render_drops_name_and_extra() -> None:
    assert TEXT_10.render(NoteData(name="x.txt", body=b"body\n", extra=(("a", "b"),))) == b"body\n"


@given(st.binary())
def test_round_trip(body: bytes) -> None:
    for fmt in (TEXT_10, TEXT_11):
        note = NoteData(name=None, body=body)
        assert fmt.parse(fmt.render(note)) == note
