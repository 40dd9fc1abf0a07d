"""A server (or a proxy in front of one) that answers the client's sync Alert with a mode the
client did not ask for: refused before anything changes, through the installed console script.

Only a slow sync may be forced on the client (it compares every note and deletes nothing); a
refresh from the server answering a two-way Alert would otherwise replace every note here.
"""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gitsync.codec import decode, encode
from gitsync.model import SyncMode
from gitsync.protocol.events import ChangesReceived, ItemResult, SyncRequested
from gitsync.protocol.messages import Anchor
from gitsync.protocol.server import ServerConfig, ServerSession
from gitsync.sync.devinf import our_devinf
from tests import peers
from tests.app.helpers import write_notes
from tests.cli.helpers import cli, repo_snapshot
from tests.helpers import serve_in_thread


class _Hostile:
    """Speaks valid SyncML; its first session is an honest slow sync, every later one answers the
    client's Alert with ``answer`` and sends no notes (a refresh that would empty the client)."""

    def __init__(self, answer: SyncMode) -> None:
        self.answer = answer
        self.sessions = 0
        self.session: ServerSession | None = None
        self.alerts: list[int] = []  # the mode the client asked for, per session

    def reply(self, body: bytes, ctype: str | None) -> tuple[bytes, str]:
        msg, enc = decode(body, ctype)
        if msg.header.msg_id == 1:
            self.sessions += 1
            self.session = ServerSession(
                ServerConfig(devinf=our_devinf("hostile", server=True), resp_uri=None)
            )
        session = self.session
        assert session is not None
        for event in session.receive(msg):
            if isinstance(event, SyncRequested):
                self.alerts.append(int(event.mode))
                mode = SyncMode.SLOW if self.sessions == 1 else self.answer
                session.accept_sync(mode=mode, anchor=Anchor(next=f"s{self.sessions}"))
            elif isinstance(event, ChangesReceived):
                session.provide_results([ItemResult(code=200) for _ in event.changes])
                if event.final:
                    session.provide_changes([])
        return encode(session.next_message(), enc), enc


@contextmanager
def _hostile_server(answer: SyncMode) -> Iterator[tuple[str, _Hostile]]:
    hostile = _Hostile(answer)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            out, ctype = hostile.reply(body, self.headers.get("Content-Type"))
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serve_in_thread(http.server.ThreadingHTTPServer((peers.LOCALHOST, 0), Handler)) as port:
        yield f"http://{peers.LOCALHOST}:{port}/", hostile


NOTES = {f"note{n}.txt": f"note {n}\n".encode() for n in range(6)}


@pytest.mark.parametrize(
    "answer",
    [SyncMode.REFRESH_FROM_SERVER, SyncMode.REFRESH_FROM_CLIENT, SyncMode.ONE_WAY_FROM_SERVER,
     SyncMode.ONE_WAY_FROM_CLIENT],
)
def test_two_way_answered_with_another_mode_is_refused(tmp_path: Path, answer: SyncMode) -> None:
    client = tmp_path / "client"
    write_notes(client, NOTES)
    with _hostile_server(answer) as (url, hostile):
        first = cli("script", "sync", client, "-r", url, "-i", "dev-modes")
        assert first.code == 0, first.err  # the honest slow sync
        write_notes(client, {"note0.txt": b"edited, not yet synced\n"})
        before = repo_snapshot(client)
        res = cli("script", "sync", client)
        assert hostile.alerts == [int(SyncMode.SLOW), int(SyncMode.TWO_WAY)]
    assert res.code == 1, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    assert len(res.lines) == 1, res.err
    line = res.lines[0]
    assert line.startswith("gitsync-notes: the server answered our two-way request with a "), line
    assert f"({int(answer)})" in line and "refused, nothing was changed" in line
    assert repo_snapshot(client) == before  # notes, refs, HEAD, config, index: untouched
    assert peers.read_notes(client) == {**NOTES, "note0.txt": b"edited, not yet synced\n"}


def test_a_forced_slow_sync_is_accepted(tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, NOTES)
    with _hostile_server(SyncMode.SLOW) as (url, hostile):
        assert cli("script", "sync", client, "-r", url, "-i", "dev-modes").code == 0
        res = cli("script", "sync", client)
        assert hostile.alerts == [int(SyncMode.SLOW), int(SyncMode.TWO_WAY)]
    assert res.code == 0, res.err
    assert peers.read_notes(client) == NOTES  # a slow sync deletes nothing
