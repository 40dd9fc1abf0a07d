"""Our server (``gitsync-notes serve``) against the SyncEvolution 2.0 command-line client over real HTTP.

SyncEvolution's client is the Synthesis engine many phones' SyncML stacks descend from.  It keeps
text/plain notes as files (received ones named 1, 2, ...) with CRLF line ends, so texts are compared
with line ends and trailing line breaks normalised (``peers.normalise_text``); our server's folder
must end with the note bytes exactly as they were written on either side otherwise.

Every test starts its own server process and client state; a session takes ~0.15 s, a server start
~0.4 s.  The long matrix parts are ``slow``; each named case runs at least once in the default run.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitsync.app import carryover
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.store.git import GitStore
from gitsync.transport.serve import make_http_server
from tests import peers
from tests.helpers import serve_in_thread

pytestmark = pytest.mark.interop

USER, PASSWORD = "phone-user", "pa55-wörd"


# ------------------------------------------------------------------------------------------ helpers


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def server_texts(folder: Path) -> Counter[bytes]:
    return Counter(peers.normalise_notes(peers.read_notes(folder)).values())


def client_texts(client: peers.SyncEvolutionClient) -> Counter[bytes]:
    return Counter(client.notes().values())


def assert_same(folder: Path, client: peers.SyncEvolutionClient) -> None:
    """Both sides hold the same note texts, each once."""
    ours, theirs = server_texts(folder), client_texts(client)
    assert ours == theirs
    assert all(n == 1 for n in ours.values()), f"duplicated: {ours}"


def write(folder: Path, rel: str, text: bytes) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)


def norm(text: bytes) -> bytes:
    return peers.normalise_text(text)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[object]:
    """``serving(*serve_options)`` starts ``gitsync-notes serve tmp/server`` (stopped at the end)."""
    started: list[peers.GitsyncServer] = []

    def start(*extra: str, folder: str = "server") -> peers.GitsyncServer:
        server = peers.GitsyncServer(tmp_path / folder, extra=extra).__enter__()
        started.append(server)
        return server

    start.started = started  # type: ignore[attr-defined]
    yield start
    for server in started:
        server.__exit__(None, None, None)


def make_client(tmp_path: Path, server: peers.GitsyncServer, name: str = "phone",
                **kw: object) -> peers.SyncEvolutionClient:
    return peers.SyncEvolutionClient(tmp_path / name, server.url, **kw).configure()  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ tests


def test_first_sync_then_changes_each_way(tmp_path: Path, serving: object) -> None:
    """Nested and non-ASCII notes on a first sync; then edits, deletes and renames on each side."""
    folder = tmp_path / "server"
    write(folder, "plain.txt", b"plain note\nsecond line\n")
    write(folder, "sub/deeper/Grüße.txt", "Grüße aus Köln\nçà va? 日本語\n".encode())
    write(folder, "sub/other.txt", b"other\n")
    write(folder, "to-rename.txt", b"rename me on the server\n")
    server = serving()  # type: ignore[operator]
    phone = make_client(tmp_path, server)
    phone.write("mine", "Notiz vom Telefon ✓\nzweite Zeile\n".encode())
    phone.write("phone-rename", b"rename me on the phone\n")
    phone.write("phone-del", b"delete me on the phone\n")
    phone.write("server-del", b"delete me on the server\n")
    phone.write("phone-edit", b"edit me on the phone\nold\n")
    phone.sync()
    assert_same(folder, phone)
    assert len(phone.notes()) == 9
    # the server's notes arrive byte for byte (CRLF, one line break added by the client's format)
    (got,) = [v for v in peers.read_notes(phone.notes_dir).values() if v.startswith("Grüße".encode())]
    assert got == "Grüße aus Köln\r\nçà va? 日本語\r\n".encode()
    notes = peers.read_notes(folder)
    assert notes["sub/deeper/Grüße.txt"] == "Grüße aus Köln\nçà va? 日本語\n".encode()

    # edits, deletes and renames on both sides
    phone.write(phone.file_of(b"edit me on the phone"), b"edit me on the phone\nnew\n")
    (phone.notes_dir / phone.file_of(b"delete me on the phone")).unlink()
    old = phone.file_of(b"rename me on the phone")
    (phone.notes_dir / old).rename(phone.notes_dir / "renamed-on-phone")
    write(folder, "plain.txt", b"plain note\nedited on the server\n")
    server_del = [p for p, b in peers.read_notes(folder).items() if b.startswith(b"delete me on the server")]
    (folder / server_del[0]).unlink()
    (folder / "to-rename.txt").rename(folder / "sub" / "renamed.txt")
    phone.sync()
    assert_same(folder, phone)
    texts = set(phone.notes().values())
    assert b"edit me on the phone\nnew" in texts
    assert b"plain note\nedited on the server" in texts
    assert b"rename me on the server" in texts and b"rename me on the phone" in texts
    assert not any(t.startswith((b"delete me",)) for t in texts)
    assert peers.read_notes(folder)["sub/renamed.txt"] == b"rename me on the server\n"
    # a further session changes nothing
    before = git(folder, "rev-parse", "HEAD")
    phone.sync()
    assert git(folder, "rev-parse", "HEAD") == before
    assert_same(folder, phone)


# mode → (server texts, client texts) after: synced {A, B}; server edits A, adds D; phone edits B, adds C
_A, _A2, _B, _B2, _C, _D = (b"note A", b"note A\nserver edit", b"note B", b"note B\nphone edit",
                            b"note C from the phone", b"note D from the server")
MODES = {
    "two-way": ({_A2, _B2, _C, _D}, {_A2, _B2, _C, _D}),
    "slow": ({_A2, _B2, _C, _D}, {_A2, _B2, _C, _D}),
    "refresh-from-server": ({_A2, _B, _D}, {_A2, _B, _D}),
    "refresh-from-client": ({_A, _B2, _C}, {_A, _B2, _C}),
    "one-way-from-server": ({_A2, _B, _D}, {_A2, _B2, _C, _D}),
    "one-way-from-client": ({_A2, _B2, _C, _D}, {_A, _B2, _C}),
}


@pytest.mark.parametrize("mode", [pytest.param(m, id=m.replace("slow", "slow-sync")) for m in MODES])
def test_modes(tmp_path: Path, serving: object, mode: str) -> None:
    folder = tmp_path / "server"
    write(folder, "a.txt", _A + b"\n")
    write(folder, "b.txt", _B + b"\n")
    server = serving()  # type: ignore[operator]
    phone = make_client(tmp_path, server)
    phone.sync()
    write(folder, "a.txt", _A2 + b"\n")
    write(folder, "d.txt", _D + b"\n")
    phone.write(phone.file_of(_B), _B2 + b"\n")
    phone.write("c", _C + b"\n")
    phone.sync(mode)
    want_server, want_client = MODES[mode]
    assert server_texts(folder) == Counter(want_server)
    assert client_texts(phone) == Counter(want_client)
    if mode == "one-way-from-server":
        # the client drops its local changes from its change tracking in this mode (they stay in its
        # files, never sent): a slow sync brings both sides together, merging its edit of B
        phone.sync("slow")
        assert _B2 in client_texts(phone)
    elif mode.startswith(("refresh", "one-way")):
        phone.sync()  # the next two-way session brings both sides together
    assert_same(folder, phone)


# ------------------------------------------------------------------------------------ conflicts

_CLEAN0 = b"clean merge\nl1\nl2\nl3\nl4\nl5\n"
_CLEAN_S, _CLEAN_C = _CLEAN0.replace(b"l1", b"L1 server"), _CLEAN0.replace(b"l5", b"L5 phone")
_CLEAN_M = _CLEAN0.replace(b"l1", b"L1 server").replace(b"l5", b"L5 phone")
_OVER0, _OVER_S, _OVER_C = b"overlap\nbase\n", b"overlap\nserver side\n", b"overlap\nphone side\n"
_PDEL0, _PDEL_S = b"phone deletes\ntext\n", b"phone deletes\nserver edit\n"
_SDEL0, _SDEL_C = b"server deletes\ntext\n", b"server deletes\nphone edit\n"


def _conflict_pair(tmp_path: Path, serving: object, policy: str) -> tuple[Path, peers.SyncEvolutionClient,
                                                                         subprocess.CompletedProcess[str]]:
    """Four conflicts in one session under ``policy``: edit/edit clean and overlapping, edit/delete
    both ways."""
    folder = tmp_path / "server"
    starts = (("clean.txt", _CLEAN0), ("over.txt", _OVER0), ("pdel.txt", _PDEL0), ("sdel.txt", _SDEL0))
    for name, text in starts:
        write(folder, name, text)
    server = serving("-P", policy)  # type: ignore[operator]
    phone = make_client(tmp_path, server)
    phone.sync()
    write(folder, "clean.txt", _CLEAN_S)
    write(folder, "over.txt", _OVER_S)
    write(folder, "pdel.txt", _PDEL_S)
    (folder / "sdel.txt").unlink()
    phone.write(phone.file_of(b"clean merge"), _CLEAN_C)
    phone.write(phone.file_of(b"overlap"), _OVER_C)
    (phone.notes_dir / phone.file_of(b"phone deletes")).unlink()
    phone.write(phone.file_of(b"server deletes"), _SDEL_C)
    return folder, phone, phone.sync(check=False)


# policy → the texts both sides end with (besides the clean merge, which every policy makes)
POLICIES = {
    "merge": {_PDEL_S, _SDEL_C},  # + the overlapping note with conflict markers on both sides
    "client-wins": {_OVER_C, _SDEL_C},
    "server-wins": {_OVER_S, _PDEL_S},
    "keep-both": {_OVER_S, _OVER_C, _PDEL_S, _SDEL_C},
}


@pytest.mark.parametrize("policy", list(POLICIES))
def test_policies_with_conflicts(tmp_path: Path, serving: object, policy: str) -> None:
    folder, phone, res = _conflict_pair(tmp_path, serving, policy)
    assert res.returncode == 0, res.stdout
    want = {norm(t) for t in POLICIES[policy]} | {norm(_CLEAN_M)}
    texts = set(server_texts(folder))
    if policy == "merge":
        (marked,) = [t for t in texts if t.startswith(b"overlap")]
        assert b"<<<<<<<" in marked and b"server side" in marked and b"phone side" in marked
        texts.discard(marked)
    assert texts == want
    assert_same(folder, phone)
    phone.sync()  # settled: nothing moves any more
    assert_same(folder, phone)
    assert set(server_texts(folder)) - {t for t in server_texts(folder) if b"<<<<<<<" in t} == want


def test_policy_error_reports_once_then_settles(tmp_path: Path, serving: object) -> None:
    """``-P error``: 409 for the overlapping edits and both edit/delete pairs, nothing of the phone's
    taken (this client aborts its session on a 409 and resumes it next time).  Later sessions do not
    repeat the 409: the notes it sends again are settled as under ``merge`` (both versions kept), and
    the note it deleted comes back to it as an Add (it answers 404 to a Replace for it)."""
    folder, phone, res = _conflict_pair(tmp_path, serving, "error")
    assert res.returncode != 0
    assert set(server_texts(folder)) == {norm(_CLEAN_S), norm(_OVER_S), norm(_PDEL_S)}
    assert set(client_texts(phone)) == {norm(_CLEAN_C), norm(_OVER_C), norm(_SDEL_C)}
    codes = []
    for _ in range(3):
        codes.append(phone.sync(check=False).returncode)
    assert codes[-2:] == [0, 0], codes  # settled: no session fails any more
    assert_same(folder, phone)
    texts = set(server_texts(folder))
    (marked,) = [t for t in texts if t.startswith(b"overlap")]
    assert b"<<<<<<<" in marked and b"server side" in marked and b"phone side" in marked
    assert texts - {marked} == {norm(_CLEAN_M), norm(_PDEL_S), norm(_SDEL_C)}
    server = serving.started[0]  # type: ignore[attr-defined]
    assert server.output().count("left unresolved (status 409)") == 3  # once per conflict


# ------------------------------------------------------------------- encodings, versions, auth

COMBOS = [
    pytest.param(wbxml, ver, auth, id=f"{'wbxml' if wbxml else 'xml'}-{ver}-{auth}",
                 marks=() if (wbxml, ver, auth) in _DEFAULT_COMBOS else pytest.mark.slow)
    for _DEFAULT_COMBOS in [{(False, "1.1", "basic"), (True, "1.2", "md5")}]  # each value once
    for wbxml in (False, True)
    for ver in ("1.1", "1.2")
    for auth in ("basic", "md5")
]


def _users(tmp_path: Path) -> Path:
    users = tmp_path / "users"
    users.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
    return users


@pytest.mark.parametrize(("wbxml", "ver", "auth"), COMBOS)
def test_encodings_versions_auth(tmp_path: Path, serving: object, wbxml: bool, ver: str, auth: str) -> None:
    folder = tmp_path / "server"
    write(folder, "n/ünïcode.txt", "ünïcode & <markup> ]]> \x01 tab\there\n".encode())
    server = serving("--users", str(_users(tmp_path)), "--auth", auth)  # type: ignore[operator]
    phone = make_client(tmp_path, server, username=USER, password=PASSWORD, auth=auth, wbxml=wbxml,
                        syncml=ver)
    phone.write("p", "vom Gerät: <b>&amp; ]]>\n".encode())
    phone.sync()
    assert_same(folder, phone)
    phone.write(phone.file_of("ünïcode".encode()), "ünïcode edited on the phone\n".encode())
    write(folder, "x.txt", b"new on the server\n")
    phone.sync()
    assert_same(folder, phone)
    assert peers.read_notes(folder)["n/ünïcode.txt"] == "ünïcode edited on the phone\n".encode()


def test_wrong_password(tmp_path: Path, serving: object) -> None:
    folder = tmp_path / "server"
    write(folder, "a.txt", b"secret note\n")
    server = serving("--users", str(_users(tmp_path)))  # type: ignore[operator]
    phone = make_client(tmp_path, server, username=USER, password="wrong")
    phone.write("mine", b"phone note\n")
    res = phone.sync(check=False)
    assert res.returncode != 0
    assert phone.notes() == {"mine": b"phone note"}  # nothing came from the server
    assert server_texts(folder) == Counter({b"secret note": 1})
    assert "refs/gitsync/device-" not in git(folder, "for-each-ref", "refs/gitsync/")  # no session
    # (its retries count as failed logins: this device id is refused for a while, see tests/hostile)
    right = make_client(tmp_path, server, "right", username=USER, password=PASSWORD)
    right.sync()
    assert_same(folder, right)


def test_large_objects_both_ways(tmp_path: Path, serving: object) -> None:
    """400 KB notes each way under a 20 KB MaxMsgSize: they travel as large objects, byte-exact."""
    folder = tmp_path / "server"
    big_server = "".join(f"server line {i} äöü\n" for i in range(20_000)).encode()
    big_phone = "".join(f"phone line {i} ✓\n" for i in range(20_000)).encode()
    write(folder, "big.txt", big_server)
    server = serving()  # type: ignore[operator]
    phone = make_client(tmp_path, server, max_msg_size=20_000)
    phone.write("big", big_phone)
    phone.sync()
    assert_same(folder, phone)
    notes = peers.read_notes(folder)
    assert notes["big.txt"] == big_server
    assert [b for b in notes.values() if b.startswith(b"phone line")] == [big_phone]


def test_two_devices_through_one_server(tmp_path: Path, serving: object) -> None:
    folder = tmp_path / "server"
    write(folder, "shared.txt", b"shared\n")
    server = serving()  # type: ignore[operator]
    one = make_client(tmp_path, server, "one")
    two = make_client(tmp_path, server, "two")
    assert one.device_id != two.device_id
    one.write("a", b"from one\n")
    one.sync()
    two.write("b", b"from two\n")
    two.sync()
    one.sync()
    assert_same(folder, one)
    assert_same(folder, two)
    assert set(server_texts(folder)) == {b"shared", b"from one", b"from two"}
    one.write(one.file_of(b"from two"), b"from two\nedited on one\n")
    (two.notes_dir / two.file_of(b"from one")).unlink()
    one.sync()
    two.sync()
    one.sync()
    assert_same(folder, one)
    assert_same(folder, two)
    assert set(server_texts(folder)) == {b"shared", b"from two\nedited on one"}


# --------------------------------------------------------------------------- interrupted sessions


class _Tap:
    """WSGI middleware: counts requests and runs ``on_request(n)`` (in a thread) as request n arrives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self.bodies: list[bytes] = []
        self.on_request: Callable[[int], None] | None = None
        self.rewrite: Callable[[bytes], bytes] | None = None  # edits what the client sent
        self.replies: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.count += 1
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        if self.rewrite is not None:
            body = self.rewrite(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        self.bodies.append(body)
        environ["wsgi.input"] = io.BytesIO(body)
        if self.on_request is not None:
            threading.Thread(target=self.on_request, args=(self.count,), daemon=True).start()
            time.sleep(0.3)  # the signal arrives while this message is at the server
        result = self.app(environ, start_response)
        reply = b"".join(result)
        self.replies.append(reply)
        return _Closing(reply, result)


class _Closing(list[bytes]):
    """A WSGI body that closes the application's own body when the server closes it (our server
    writes the notes a session brought from that close, after the answer has gone out)."""

    def __init__(self, reply: bytes, inner: Any) -> None:
        super().__init__([reply])
        self.inner = inner

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


@contextlib.contextmanager
def tapped_server(folder: Path, **options: Any) -> Iterator[tuple[str, _Tap]]:
    """Our server in this process (the same code and HTTP server as ``serve``), with a tap."""
    folder.mkdir(parents=True, exist_ok=True)
    store = GitStore.open(folder)
    server = SyncServer(store, ServerOptions(**options))
    tap = _Tap(server.wsgi_app())
    try:
        with serve_in_thread(make_http_server(tap, peers.LOCALHOST, 0)) as port:
            yield f"http://{peers.LOCALHOST}:{port}/", tap
    finally:
        server.close()


def _many(prefix: str, n: int) -> dict[str, bytes]:
    return {f"{prefix}{i:03d}": (f"{prefix} note {i}\n" + "x" * 3000 + "\n").encode() for i in range(n)}


@pytest.mark.parametrize(
    ("how", "at", "resumable"),
    [
        pytest.param("term", 3, True, id="term-while-client-sends", marks=pytest.mark.slow),
        pytest.param("kill", 3, True, id="kill-while-client-sends"),
        pytest.param("term", 9, True, id="term-while-server-sends"),
        pytest.param("kill", 9, True, id="kill-while-server-sends", marks=pytest.mark.slow),
        pytest.param("term", 9, False, id="term-too-big-to-resume"),
    ],
)
def test_interrupted_session_then_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, at: int, resumable: bool
) -> None:
    """The client is stopped (SIGTERM: it suspends) or killed (SIGKILL) in the middle of a session
    that moves 20 notes each way in ~12 messages; the next session ends with both sides equal,
    nothing lost or duplicated.  A session too big to keep is not resumed: a slow sync instead."""
    if not resumable:
        monkeypatch.setattr(carryover, "MAX_KEPT_BYTES", 10_000)
    folder = tmp_path / "server"
    for name, text in _many("server", 20).items():
        write(folder, f"{name}.txt", text)
    with tapped_server(folder) as (url, tap):
        phone = peers.SyncEvolutionClient(tmp_path / "phone", url, max_msg_size=8000).configure()
        phone.write("seed", b"seed\n")
        phone.sync()
        tap.count = 0
        for name, text in _many("phone", 20).items():
            phone.write(name, text)
        for name in _many("server", 20):
            write(folder, f"{name}.txt", (f"{name} edited\n" + "y" * 3000 + "\n").encode())
        phone.begin()
        stop = phone.stop if how == "term" else phone.kill
        tap.on_request = lambda n: stop(reap=False) if n == at else None
        res = phone.wait(timeout=60)
        tap.on_request = None
        assert res.returncode != 0, "the session was not interrupted"
        sent_before = sum(r.count(b" edited") for r in tap.replies)
        tap.replies.clear()
        tap.bodies.clear()
        for _ in range(2):
            again = phone.sync(check=False)
            if again.returncode == 0:
                break
        assert again.returncode == 0, again.stdout
        assert_same(folder, phone)
        assert len(phone.notes()) == 41
        sent_after = sum(r.count(b" edited") for r in tap.replies)
        phone_after = sum(b.count(b"phone note") for b in tap.bodies)
        print(f"server edits sent before the interruption: {sent_before}, after: {sent_after}; "
              f"phone notes after: {phone_after}")
        if not resumable:
            assert phone_after >= 20  # the slow sync: the phone sends every note again
        elif how == "term":
            # it suspended, and we resumed: the phone notes we had acknowledged do not come again
            # (a slow sync, the fallback, would bring all 20), nor do ours it had acknowledged
            assert phone_after < 20
            assert sent_before + sent_after <= 20 + 4, (sent_before, sent_after)


def test_serve_max_msg_size(tmp_path: Path, serving: object) -> None:
    """``serve --max-msg-size``: the client sees our MaxMsgSize and splits what it sends to fit it
    (30 notes of 3 KB in several messages); a small MaxMsgSize of its own (its minimum, 10 KB) splits
    what we send.  (Package 2 split under a tiny MaxMsgSize: tests/protocol/test_package_split.py.)"""
    folder = tmp_path / "server"
    for name, text in _many("server", 30).items():
        write(folder, f"{name}.txt", text)
    server = serving("--max-msg-size", "12000")  # type: ignore[operator]
    phone = make_client(tmp_path, server, max_msg_size=10240, loglevel=4, wbxml=False)
    for name, text in _many("phone", 30).items():
        phone.write(name, text)
    phone.sync()
    assert_same(folder, phone)
    assert len(phone.notes()) == 60
    (log,) = (tmp_path / "phone" / "cache" / "syncevolution").glob("client-*/syncevolution-log.html")
    assert "MaxMsgSize found in SyncHdr: 12000" in log.read_text(errors="replace")
    sent = sorted(log.parent.glob("*_outgoing.xml"))
    received = sorted(log.parent.glob("*_incoming.xml"))
    assert len(sent) >= 6 and len(received) >= 6  # split both ways
    assert max(p.stat().st_size for p in sent) <= 12000
    assert max(p.stat().st_size for p in received) <= 10240


def test_a_refused_note_is_not_sent_forever(tmp_path: Path) -> None:
    """A device that refuses our Add of one note every time (its statuses rewritten to 510 on the
    way): the note is offered in three sessions, then no more while it is unchanged, and each
    session says so; an edit of the note offers it again."""
    folder = tmp_path / "server"
    write(folder, "refused.txt", b"refuse me\n")
    with tapped_server(folder) as (url, tap):
        phone = peers.SyncEvolutionClient(tmp_path / "phone", url, wbxml=False).configure()
        tap.rewrite = lambda body: re.sub(
            rb"(<Cmd>Add</Cmd>(?:(?!</Status>).)*?<Data>)2\d\d(</Data>)", rb"\g<1>510\2", body, flags=re.S)
        offered = []
        for _ in range(5):
            tap.replies.clear()
            phone.sync(check=False)
            offered.append(sum(r.count(b"refuse me") for r in tap.replies))
        assert offered == [1, 1, 1, 0, 0]
        write(folder, "refused.txt", b"refuse me, edited\n")
        tap.replies.clear()
        phone.sync(check=False)
        assert sum(r.count(b"refuse me, edited") for r in tap.replies) == 1
