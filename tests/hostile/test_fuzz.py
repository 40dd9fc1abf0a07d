"""Generated input (hypothesis) for the decoder and for the server's WSGI entry.

Seeds are real client messages: those captured from pysyncml and Synthesis (shared/reference/messages)
and our own client's packages in XML and WBXML; hypothesis mutates them (flip, cut, splice, insert
markup) or makes up bytes.  The decoder must answer a Message or a CodecError and nothing else; the
WSGI app must answer 200 with SyncML or a 4xx (never a 500, never an exception), and afterwards still
serve a well-behaved client, with nothing written outside its notes folder or into ``.git``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode
from gitsync.errors import CodecError
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.client import ClientConfig, ClientSession
from gitsync.protocol.events import OutChange
from gitsync.store.git import GitStore
from gitsync.sync.devinf import our_devinf
from gitsync.transport.inprocess import InProcessTransport
from tests.helpers import captures, read_notes, shared_path
from tests.hostile.helpers import URL, FsGuard, post, sif


def _own_messages() -> list[tuple[bytes, str]]:
    out = []
    for enc in (XML_TYPE, WBXML_TYPE):
        session = ClientSession(
            ClientConfig(
                url=URL,
                device_id="fuzz-dev",
                devinf=our_devinf("fuzz-dev", server=False),
                mode=SyncMode.SLOW,
                next_anchor="n1",
                username="u",
                password="p",
            )
        )
        out.append((encode(session.start(), enc), enc))
    sync = ClientSession(
        ClientConfig(
            url=URL,
            device_id="fuzz-dev",
            devinf=our_devinf("fuzz-dev", server=False),
            mode=SyncMode.SLOW,
            next_anchor="n1",
        )
    )
    first = sync.start()
    assert first is not None
    return out


def _captured() -> list[tuple[bytes, str]]:
    seeds = []
    for path in captures(shared_path("reference", "messages"), "**/*c2s*"):
        if path.suffix == ".xml":
            seeds.append((path.read_bytes(), XML_TYPE))
        elif path.suffix == ".wbxml":
            seeds.append((path.read_bytes(), WBXML_TYPE))
    return seeds


SEEDS = _own_messages() + _captured()
INSERTS = [
    b"<!DOCTYPE x>",
    b"<!ENTITY e SYSTEM 'file:///etc/passwd'>",
    b"&e;",
    b"<![CDATA[",
    b"]]>",
    b"\x00",
    b"\xff\xfe",
    b"<Atomic><CmdID>1</CmdID>",
    b"</SyncBody>",
    b"<MsgID>-1</MsgID>",
    b"<Data>999</Data>",
    b"<Add><CmdID>7</CmdID><Item><Source><LocURI>../../x</LocURI></Source><Data>d</Data></Item></Add>",
    b"<Format xmlns='syncml:metinf'>b64</Format>",
    b"\xc3",
    b"&#0;",
    b"&#x1F;",
    b'xmlns="urn:x"',
    b"\x03\x01",
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    body, enc = draw(st.sampled_from(SEEDS))
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(("flip", "cut", "truncate", "insert", "dup")))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(INSERTS) | st.binary(max_size=16))
        else:
            end = min(len(data), at + draw(st.integers(1, 200)))
            data[at:at] = data[at:end]
    ctype = draw(st.sampled_from((enc, XML_TYPE, WBXML_TYPE, "text/xml", None)))
    return bytes(data), ctype or ""


BODIES = mutated() | st.tuples(st.binary(max_size=512), st.sampled_from((XML_TYPE, WBXML_TYPE, "")))


@given(BODIES)
@settings(max_examples=300, deadline=None)
def test_decoder_answers_a_message_or_a_codec_error(case: tuple[bytes, str]) -> None:
    body, ctype = case
    try:
        msg, enc = decode(body, ctype or None)
    except CodecError:
        return
    assert enc in (XML_TYPE, WBXML_TYPE)
    assert msg.header is not None


@pytest.mark.parametrize("body,ctype", SEEDS[:2])
def test_seeds_decode(body: bytes, ctype: str) -> None:
    msg, _ = decode(body, ctype)
    assert msg.header.source == "fuzz-dev"


def test_wsgi_app_survives_fuzz_and_keeps_serving(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)  # thousands of "rejected a request" lines
    notes = tmp_path / "srv" / "notes"
    notes.mkdir(parents=True)
    (notes / "keep.txt").write_bytes(b"keep\n")
    server = SyncServer(GitStore.open(notes), ServerOptions(max_body=256 * 1024))
    app = server.wsgi_app()
    guard = FsGuard(tmp_path / "srv", notes)
    seen: dict[int, int] = {}

    @given(BODIES)
    @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def one(case: tuple[bytes, str]) -> None:
        body, ctype = case
        reply = post(app, body, ctype or None)
        seen[reply.status] = seen.get(reply.status, 0) + 1
        assert reply.status in (200, 400, 413, 415), (reply.status, reply.body[:200])
        if reply.status == 200:
            assert reply.message() is not None

    one()
    assert seen.get(400, 0) > 0  # the fuzzer did reach the refusals...
    # ... and whatever it did, a real client still syncs, and nothing escaped the folder
    client = tmp_path / "client"
    client.mkdir()
    (client / "mine.txt").write_bytes(b"mine\n")
    sync_client(
        GitStore.open(client), ClientOptions(url=URL, device_id="good", name="srv"), InProcessTransport(app)
    )
    assert read_notes(client)["keep.txt"] == b"keep\n"
    assert read_notes(notes)["mine.txt"] == b"mine\n"
    assert guard.problems() == []


def test_session_fuzz_second_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Mutations of a real package 3 (the one carrying notes), sent inside a real session."""
    caplog.set_level(logging.CRITICAL)
    notes = tmp_path / "srv" / "notes"
    notes.mkdir(parents=True)
    server = SyncServer(GitStore.open(notes))
    app = server.wsgi_app()
    guard = FsGuard(tmp_path / "srv", notes)
    from tests.hostile.helpers import ScriptedClient

    counter = [0]

    edits = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(INSERTS)), min_size=1, max_size=3)

    @given(st.text(max_size=40), edits)
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def one(subject: str, inserts: list[tuple[float, bytes]]) -> None:
        counter[0] += 1
        client = ScriptedClient(app, device=f"fz{counter[0]}")
        change = OutChange(
            kind=ChangeKind.ADD,
            key="k",
            data=sif(subject, "x\n"),
            content_type="text/x-s4j-sifn",
            version="1.1",
        )

        def mutate(msg_id: int, body: bytes) -> bytes:
            if msg_id != 2:
                return body
            b = bytearray(body)
            for where, text in inserts:
                at = int(where * (len(b) - 1))
                b[at:at] = text
            return bytes(b)

        try:
            client.sync([change], mutate=mutate)
        except Exception as exc:
            from gitsync.errors import GitsyncError

            assert isinstance(exc, GitsyncError), repr(exc)

    one()
    assert guard.problems() == []
