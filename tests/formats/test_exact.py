"""The exact format (gitsync ↔ gitsync) and the text check that decides what a text peer gets."""

from __future__ import annotations

import codecs
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitsync.app.client import stale_devinf
from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode
from gitsync.errors import FormatError
from gitsync.formats import EXACT, SIFN_11, TEXT_10, NoteData, format_for
from gitsync.formats.text import not_text
from gitsync.protocol.messages import Add, Item, Message, Meta, Sync, SyncHdr
from gitsync.sync.conflict import Policy, resolve_modify
from gitsync.sync.devinf import our_devinf
from gitsync.sync.payload import Wire, verbatim

UNUSUAL = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    "latin1": "café crème\n".encode("latin-1"),
    "cp1252": "“quoted” – €\r\n".encode("cp1252"),
    "utf16": "Grüße\r\n".encode("utf-16"),
    "nul": b"a\x00b\x01c\x1bd\n",
    "mixed": b"one\r\ntwo\nthree\rfour\r\n",
}


def _through_codec(payload: bytes, encoding: str) -> bytes:
    """``payload`` as an Add item sent through our SyncML codec and decoded again."""
    hdr = SyncHdr(session_id="1", msg_id=1, target="http://t/", source="dev")
    item = Item(source="1", data=payload, meta=Meta(type=EXACT.content_type))
    msg = Message(header=hdr, commands=(Sync(cmd_id=1, commands=(Add(cmd_id=2, items=(item,)),)),))
    (sync,) = decode(encode(msg, encoding), encoding)[0].commands
    assert isinstance(sync, Sync)
    (add,) = sync.commands
    assert isinstance(add, Add)
    data = add.items[0].data
    assert isinstance(data, bytes)
    return data


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=300), name=st.text(max_size=30) | st.none(), wbxml=st.booleans())
def test_arbitrary_bytes_round_trip_between_gitsync_peers(body: bytes, name: str | None, wbxml: bool) -> None:
    wire = Wire(fmt=EXACT)
    payload = wire.render_planned((name or "n.bin", ()), body)
    got = wire.parse(_through_codec(payload, WBXML_TYPE if wbxml else XML_TYPE), EXACT.content_type)
    assert got.body == body and got.exact
    assert got.name == (name or "n.bin")
    # what the receiver writes: the bytes themselves, for a new note and over an existing one
    assert wire.local_body(got.body, None, exact=True) == body or not verbatim(body)
    assert wire.local_body(got.body, b"old\r\ntext\r\n", exact=True) == body or not verbatim(body)


@pytest.mark.parametrize("kind", sorted(UNUSUAL))
def test_unusual_files_arrive_exactly_and_are_not_text(kind: str) -> None:
    body = UNUSUAL[kind]
    wire = Wire(fmt=EXACT)
    for encoding in (XML_TYPE, WBXML_TYPE):
        got = wire.parse(_through_codec(wire.render_planned((f"{kind}.dat", ()), body), encoding), None)
        assert got.body == body
        assert wire.local_body(got.body, b"lf\nonly\n", exact=True) == body  # no line-ending rewrite
        assert not Wire.same_text(body, body.replace(b"\r\n", b"\n") + b"\n", exact=True)
    assert verbatim(body)
    if kind != "mixed":
        assert not_text(body) is not None
        assert Wire(fmt=SIFN_11).refusal(f"{kind}.dat", body) is not None
        assert Wire(fmt=TEXT_10).refusal(f"{kind}.dat", body) is not None
    assert Wire(fmt=EXACT).refusal(f"{kind}.dat", body) is None


def test_text_is_text() -> None:
    for body in (b"", b"plain\n", "ünïcode ☃\r\n".encode(), codecs.BOM_UTF8 + b"bom\n", b"tab\there\n"):
        assert not_text(body) is None
        assert Wire(fmt=SIFN_11).refusal("a.txt", body) is None
    assert not_text("ü\n".encode(), ascii_only=True) == "non-ASCII text"
    # text/plain travels as bytes (b64 when XML cannot hold them): controls but NUL are fine there
    assert Wire(fmt=TEXT_10).refusal("c.txt", b"bell \x07 esc \x1b\n") is None
    assert Wire(fmt=SIFN_11).refusal("c.txt", b"bell \x07 esc \x1b\n") is not None
    assert Wire(fmt=TEXT_10).refusal("c.txt", b"nul \x00\n") is not None
    assert "UTF-16" in (not_text("x".encode("utf-16")) or "")
    assert Wire(fmt=SIFN_11, ascii_only=True).refusal("é.txt", b"ascii\n") is not None


def test_the_exact_format_is_found_by_type_and_refuses_other_payloads() -> None:
    assert format_for("application/x-gitsync-note") is EXACT
    with pytest.raises(FormatError):
        EXACT.parse(b"<note><Body>x</Body></note>")
    with pytest.raises(FormatError):
        EXACT.parse(b"GITSYNC-NOTE 1\nno end of header")
    back = EXACT.parse(EXACT.render(NoteData(name=None, body=b"x")))
    assert back == NoteData(name=None, body=b"x", exact=True)


@pytest.mark.parametrize("policy", list(Policy))
def test_binary_conflicts_never_get_markers(policy: Policy) -> None:
    base, server, client = b"\x89PNG\x00base", b"\x89PNG\x00server\n", b"\x89PNG\x00client\r\n"

    def merge3(b: bytes | None, ours: bytes, theirs: bytes) -> tuple[bytes, bool]:
        raise AssertionError("binary notes are not line-merged")

    out = resolve_modify(base, server, client, policy, merge3, duplicates_ok=True)
    kept = {out.server, out.copy, out.send} - {None}
    assert kept <= {server, client}  # every version whole, never a mix with markers
    if policy in (Policy.MERGE, Policy.KEEP_BOTH):
        assert {out.server, out.copy} == {server, client} and not out.unresolved
    assert resolve_modify(base, base, client, policy, merge3, duplicates_ok=True).server == client
    assert resolve_modify(base, server, base, policy, merge3, duplicates_ok=True).send == server


def test_a_cached_devinf_of_a_gitsync_server_without_the_exact_format_is_asked_again() -> None:
    ours = our_devinf("srv", server=True)
    assert not stale_devinf(ours) and not stale_devinf(None)
    old = dataclasses.replace(ours, datastores=tuple(
        dataclasses.replace(ds, ctcaps=()) for ds in ours.datastores))
    assert stale_devinf(old)  # cached before the server was upgraded: Get it again
    phone = dataclasses.replace(old, man="Nokia", mod="6230i")
    assert not stale_devinf(phone)  # other peers: the cache stands
