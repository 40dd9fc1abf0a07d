"""Hostile answers to the client from a fake server.

Broken answers (garbage, HTML, XXE, truncated, huge, error statuses) end the sync with a clean
GitsyncError and leave the client's notes and sync state as they were; a server that speaks valid
SyncML but sends notes named ``../x``, ``.git/hooks/post-commit``, ``/etc/x``, NUL bytes... gets them
written inside the notes folder under safe names, never outside it or into ``.git``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.codec import decode, encode
from gitsync.errors import GitsyncError
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.events import ChangesReceived, ItemResult, OutChange, SessionComplete, SyncRequested
from gitsync.protocol.messages import Anchor
from gitsync.protocol.server import ServerConfig, ServerSession
from gitsync.store.git import GitStore
from gitsync.sync.devinf import our_devinf
from gitsync.transport.inprocess import InProcessTransport
from tests.helpers import git, read_notes, serve_in_thread
from tests.hostile.helpers import URL, FsGuard, sif

App = Callable[..., Iterable[bytes]]


def canned(*answers: tuple[int, str, bytes]) -> App:
    """A WSGI app answering the n-th request with answers[n] (the last one repeats)."""
    count = [0]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        status, ctype, body = answers[min(count[0], len(answers) - 1)]
        count[0] += 1
        start_response(f"{status} X", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    return app


class FakeServer:
    """A sans-I/O ServerSession that answers like a server, with the changes the test chooses."""

    def __init__(
        self, changes: list[OutChange], *, reply_filter: Callable[[bytes], bytes] | None = None
    ) -> None:
        self.changes = changes
        self.reply_filter = reply_filter
        self.session: ServerSession | None = None
        self.completed = False

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        msg, enc = decode(body, environ.get("CONTENT_TYPE"))
        if self.session is None:
            self.session = ServerSession(
                ServerConfig(devinf=our_devinf("evil-server", server=True), resp_uri=URL + "?sessionid=1")
            )
        session = self.session
        for event in session.receive(msg):
            if isinstance(event, SyncRequested):
                session.accept_sync(mode=SyncMode.SLOW, anchor=Anchor(next="s1"))
            elif isinstance(event, ChangesReceived):
                session.provide_results([ItemResult(code=201) for _ in event.changes])
                if event.final:
                    session.provide_changes(self.changes)
            elif isinstance(event, SessionComplete):
                self.completed = True
        out = encode(session.next_message(), enc)
        if self.reply_filter is not None:
            out = self.reply_filter(out)
        start_response("200 OK", [("Content-Type", enc), ("Content-Length", str(len(out)))])
        return [out]


def _client(tmp_path: Path) -> tuple[Path, FsGuard, Path]:
    folder = tmp_path / "box" / "notes"
    folder.mkdir(parents=True)
    (folder / "mine.txt").write_bytes(b"my own note\n")
    canary = tmp_path / "box" / "outside.txt"
    canary.write_bytes(b"canary\n")
    GitStore.open(folder)
    return folder, FsGuard(tmp_path / "box", folder), canary


def _sync(folder: Path, app: App) -> None:
    opts = ClientOptions(url=URL, device_id="victim", name="srv")
    sync_client(GitStore.open(folder), opts, InProcessTransport(app))


def _state_refs(folder: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), "for-each-ref", "refs/gitsync/srv", "refs/gitsync/journal"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b"<SyncML><SyncHdr><VerDTD>&b;</VerDTD></SyncHdr><SyncBody/></SyncML>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<SyncML><SyncHdr><VerDTD>&x;</VerDTD></SyncHdr><SyncBody/></SyncML>"
)
SYNCML = "application/vnd.syncml+xml"

BROKEN: dict[str, App] = {
    "http-500": canned((500, "text/plain", b"boom")),
    "http-401": canned((401, "text/plain", b"who are you")),
    "html": canned((200, "text/html", b"<html>captive portal</html>")),
    "garbage": canned((200, SYNCML, bytes(range(256)))),
    "empty": canned((200, SYNCML, b"")),
    "xxe": canned((200, SYNCML, XXE)),
    "billion-laughs": canned((200, SYNCML, LAUGHS)),
    "deep-nesting": canned((200, SYNCML, b"<SyncML>" + b"<x>" * 5000 + b"</x>" * 5000 + b"</SyncML>")),
    "truncated": canned((200, SYNCML, b"<SyncML><SyncHdr><VerDTD>1.2</VerDTD><SessionID>1")),
    "not-syncml": canned((200, SYNCML, b"<html/>")),
    "wbxml-garbage": canned((200, "application/vnd.syncml+wbxml", b"\x02\x00\x00\x6a\xff\xff\xff")),
    "header-status-500": FakeServer(
        [], reply_filter=lambda b: b.replace(b"<Data>200</Data>", b"<Data>500</Data>", 1)
    ).app,
    "no-synchdr": FakeServer(
        [], reply_filter=lambda b: b[: b.index(b"<SyncHdr>")] + b[b.index(b"</SyncHdr>") + 10 :]
    ).app,
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_answers_end_the_sync_cleanly(tmp_path: Path, name: str) -> None:
    folder, guard, canary = _client(tmp_path)
    before = read_notes(folder)
    with pytest.raises(GitsyncError) as failure:
        _sync(folder, BROKEN[name])
    assert str(failure.value)
    assert read_notes(folder) == before
    assert _state_refs(folder) == ""  # no session was saved
    assert canary.read_bytes() == b"canary\n"
    assert guard.problems() == []


def test_huge_answer_is_refused(tmp_path: Path) -> None:
    """The HTTP transport stops reading at its limit instead of filling memory."""
    from wsgiref.simple_server import make_server

    from gitsync.transport.http import HttpTransport
    from gitsync.transport.serve import _ThreadingServer

    big = canned((200, SYNCML, b"<SyncML>" + b" " * (3 * 1024 * 1024)))
    folder, guard, _ = _client(tmp_path)
    with serve_in_thread(make_server("127.0.0.1", 0, big, server_class=_ThreadingServer)) as port:
        transport = HttpTransport(timeout=10, max_reply=1024 * 1024)
        opts = ClientOptions(url=f"http://127.0.0.1:{port}/", device_id="victim", name="srv")
        with pytest.raises(GitsyncError, match="more than"):
            sync_client(GitStore.open(folder), opts, transport)
        transport.close()
    assert guard.problems() == []


HOSTILE_NAMES = (
    "../escaped.txt",
    "../../outside.txt",
    "/tmp/absolute-gitsync.txt",
    ".git/hooks/post-commit",
    ".git/config",
    "sub/.git/config",
    ".GIT/HEAD",
    "nul\x00byte.txt",
    "esc\x1b[2J.txt",
    "..\\..\\win.txt",
    "C:\\evil.txt",
    ".gitattributes",
    "..",
    "",
    "a/../../b.txt",
)


def test_hostile_names_from_the_server_stay_inside(tmp_path: Path) -> None:
    folder, guard, canary = _client(tmp_path)
    changes = [
        OutChange(
            kind=ChangeKind.ADD,
            key=f"g{n}",
            data=sif(name, f"hostile {n}\n"),
            content_type="text/x-s4j-sifn",
            version="1.1",
        )
        for n, name in enumerate(HOSTILE_NAMES)
    ]
    # and a payload with invalid UTF-8 and a NUL in its Subject (the codec sends it as b64)
    raw = b"<note><SIFVersion>1.1</SIFVersion><Subject>\xff/../\x00x</Subject><Body>raw</Body></note>"
    changes.append(
        OutChange(kind=ChangeKind.ADD, key="graw", data=raw, content_type="text/x-s4j-sifn", version="1.1")
    )
    server = FakeServer(changes)
    _sync(folder, server.app)
    assert server.completed
    notes = read_notes(folder, skip_hidden=False)
    notes.pop(".gitattributes", None)
    bodies = sorted(notes.values())
    for n, name in enumerate(HOSTILE_NAMES):
        if any(ord(ch) < 32 for ch in name):
            continue  # not well-formed SIF XML: refused with a status, written nowhere
        assert f"hostile {n}\n".encode() in bodies, name
    assert notes.get("mine.txt") == b"my own note\n"
    assert canary.read_bytes() == b"canary\n"
    assert not Path("/tmp/absolute-gitsync.txt").exists()
    assert guard.problems() == []
    hooks = folder / ".git" / "hooks"
    assert not (hooks / "post-commit").exists()


@pytest.mark.parametrize("name", ["garbage", "xxe", "http-500", "truncated"])
def test_cli_reports_a_broken_server_in_one_line(tmp_path: Path, name: str) -> None:
    """What a user sees: exit status 1 and one line saying what went wrong, no traceback."""
    from wsgiref.simple_server import make_server

    from gitsync.transport.serve import _ThreadingServer
    from tests.crash.harness import REPO_ROOT, child_env, gitsync_argv

    folder, guard, _ = _client(tmp_path)
    config_before = set(git(folder, "config", "--local", "--list").splitlines())
    with serve_in_thread(make_server("127.0.0.1", 0, BROKEN[name], server_class=_ThreadingServer)) as port:
        argv = gitsync_argv("sync", str(folder), "--remote", f"http://127.0.0.1:{port}/", "-q")
        proc = subprocess.run(
            argv, env=child_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("gitsync-notes: "), proc.stderr
    # A failed first sync remembers what the user typed (server, device id) for the retry, and
    # nothing the server sent: only gitsync.* keys appear, and the URL is the one given.
    added = set(git(folder, "config", "--local", "--list").splitlines()) - config_before
    assert all(line.startswith("gitsync.") for line in added), added
    urls = {line.split("=", 1)[1] for line in added if line.split("=", 1)[0].endswith(("remote", ".url"))}
    assert urls <= {f"http://127.0.0.1:{port}/"}, urls
    guard.before_git["config"] = guard._git_meta()["config"]
    assert guard.problems() == []
