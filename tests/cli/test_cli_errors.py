"""Errors a user can cause: one clear line on stderr, a non-zero exit status, no traceback, and
the repository exactly as it was. Each runs through click's CliRunner and the console script."""

from __future__ import annotations

import http.server
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import peers
from tests.cli.helpers import HOWS, Result, cli, gitsync_server, repo_snapshot
from tests.helpers import LOCALHOST, free_port, git, read_notes, serve_in_thread, write_notes

pytestmark = pytest.mark.parametrize("how", HOWS)


def _one_line(res: Result, code: int, *words: str) -> str:
    """The failure is one ``gitsync-notes: ...`` line naming ``words``; nothing on stdout."""
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err + res.out
    assert res.out == ""
    assert len(res.lines) == 1, res.err
    line = res.lines[0]
    assert line.startswith("gitsync-notes: "), line
    for word in words:
        assert word in line, (word, line)
    return line


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A client folder that synced once with a server that is now gone (its URL is remembered)."""
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n", "sub/b.txt": b"b\n"})
    with gitsync_server(tmp_path / "server") as srv:
        res = cli("runner", "sync", client, "-r", srv.url, "-i", "dev-err")
        assert res.code == 0, res.err
        yield client, srv.url


# ------------------------------------------------------------------------------- unreachable
def test_unreachable_server(how: str, synced: tuple[Path, str]) -> None:
    client, _ = synced
    url = f"http://127.0.0.1:{free_port()}/"
    before = repo_snapshot(client)
    res = cli(how, "sync", client, "-r", url)
    _one_line(res, 1, "cannot reach", url, "connection refused")
    assert repo_snapshot(client) == before


def test_unknown_host(how: str, synced: tuple[Path, str]) -> None:
    client, _ = synced
    before = repo_snapshot(client)
    res = cli(how, "sync", client, "-r", "http://no-such-host.invalid/")
    _one_line(res, 1, "cannot reach", "no-such-host.invalid")
    assert repo_snapshot(client) == before


@contextmanager
def _silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    sock = socket.socket()
    sock.bind((LOCALHOST, 0))
    sock.listen(5)
    try:
        yield f"http://{LOCALHOST}:{sock.getsockname()[1]}/"
    finally:
        sock.close()


def test_server_that_does_not_answer_times_out(how: str, synced: tuple[Path, str]) -> None:
    client, _ = synced
    before = repo_snapshot(client)
    with _silent_server() as url:
        t0 = time.monotonic()
        res = cli(how, "sync", client, "-r", url, "--timeout", "1")
        assert time.monotonic() - t0 < 30
    _one_line(res, 1, url, "did not answer within 1 s")
    assert repo_snapshot(client) == before


# ------------------------------------------------------------------------------- HTML
class _HtmlHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _html_server() -> Iterator[str]:
    with serve_in_thread(http.server.ThreadingHTTPServer((LOCALHOST, 0), _HtmlHandler)) as port:
        yield f"http://{LOCALHOST}:{port}/"


def test_server_that_answers_html(how: str, synced: tuple[Path, str]) -> None:
    client, _ = synced
    before = repo_snapshot(client)
    with _html_server() as url:
        res = cli(how, "sync", client, "-r", url)
    _one_line(res, 1, "not a SyncML server", "text/html")
    assert repo_snapshot(client) == before


# ------------------------------------------------------------------------------- credentials
def test_wrong_password(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    git(client, "init", "-q")
    git(client, "add", "-A")
    git(client, "commit", "-qm", "mine")
    with gitsync_server(tmp_path / "server", users={"alice": "right"}) as srv:
        before = repo_snapshot(client)
        res = cli(how, "sync", client, "-r", srv.url, "-i", "dev-pw", "-u", "alice", "-p", "wrong")
        _one_line(res, 1, "credentials")
        # a failed first sync remembers where it tried, for the retry (never the password)
        tried = repo_snapshot(client)
        assert {**tried, "config": before["config"]} == before
        assert "wrong" not in str(tried["config"]) and f"gitsync.remote={srv.url}" in str(tried["config"])
        res = cli(how, "sync", client)  # the retry: same server and user, a password is needed
        _one_line(res, 1, "a password is needed for user 'alice'")
        assert repo_snapshot(client) == tried
        assert read_notes(srv.dir) == {}
        assert srv.reports == []  # no session got anywhere


# ------------------------------------------------------------------------------- DIR
def test_dir_missing(how: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    for command in (["sync", missing / "sub", "-r", "http://127.0.0.1:9/"], ["sync", missing, "-l"],
                    ["sync", missing, "-d"]):
        res = cli(how, *command)
        _one_line(res, 2, str(missing), "does not exist")
        assert not missing.exists()  # not created


def test_dir_is_a_file(how: str, tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_bytes(b"not a folder\n")
    for command in (["sync", file, "-r", "http://127.0.0.1:9/"], ["sync", file, "-l"],
                    ["serve", file, "--listen", "0"]):
        res = cli(how, *command)
        _one_line(res, 2, str(file), "not a folder")
        assert file.read_bytes() == b"not a folder\n"


def test_dir_inside_another_repository(how: str, tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    write_notes(outer, {"x.txt": b"x\n", "inner/y.txt": b"y\n"})
    git(outer, "init", "-q")
    before = repo_snapshot(outer)
    res = cli(how, "sync", outer / "inner", "-r", "http://127.0.0.1:9/")
    _one_line(res, 2, "not its top level")
    assert repo_snapshot(outer) == before


# ------------------------------------------------------------------------------- usage
def test_unknown_mode(how: str, synced: tuple[Path, str]) -> None:
    client, _ = synced
    before = repo_snapshot(client)
    res = cli(how, "sync", client, "--mode", "sideways")
    line = _one_line(res, 2, "'sideways'", "--mode")  # one line saying what is wrong
    for mode in peers.PYSYNCML_MODES:
        assert f"'{mode}'" in line
    assert repo_snapshot(client) == before


def test_no_remote_and_a_bad_remote(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    git(client, "init", "-q")
    before = repo_snapshot(client)
    _one_line(cli(how, "sync", client), 2, "--remote URL")
    _one_line(cli(how, "sync", client, "-r", "ftp://example.org/"), 2, "http://", "ftp://example.org/")
    assert repo_snapshot(client) == before


def test_password_needed_without_a_terminal(how: str, synced: tuple[Path, str]) -> None:
    client, _ = synced
    before = repo_snapshot(client)
    res = cli(how, "sync", client, "-u", "alice")
    _one_line(res, 1, "password is needed", "alice", "GITSYNC_PASSWORD")
    assert repo_snapshot(client) == before


# ------------------------------------------------------------------------------- serve
def test_serve_port_in_use(how: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOCALHOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        res = cli(how, "serve", tmp_path / "srv", "--listen", str(port), "--host", LOCALHOST)
    _one_line(res, 2, f"cannot listen on {LOCALHOST}:{port}")


def test_serve_bad_users_file(how: str, tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    res = cli(how, "serve", srv, "--users", tmp_path / "missing-users", "--listen", "0")
    _one_line(res, 2, "cannot read users file")
    bad = tmp_path / "users"
    bad.write_text("alice-without-password\n")
    res = cli(how, "serve", srv, "--users", bad, "--listen", "0")
    _one_line(res, 2, f"{bad}:1", "user:password")


def test_serve_takes_no_password_on_the_command_line(how: str, tmp_path: Path) -> None:
    res = cli(how, "serve", tmp_path, "--password", "x", "--listen", "0")
    _one_line(res, 2, "No such option '--password'")


def test_dirty_repo_keeps_the_edits_when_the_server_is_unreachable(
    how: str, synced: tuple[Path, str]
) -> None:
    """A sync commits the user's edits first ("gitsync: local changes"); when it then fails, it
    takes that commit back: HEAD, the index, the notes and the sync state are exactly as before."""
    client, _ = synced
    write_notes(client, {"a.txt": b"a edited\n", "new.txt": b"new\n"})
    git(client, "add", "new.txt")  # something staged, something not
    files = read_notes(client)
    head = git(client, "rev-parse", "HEAD").strip()
    status = git(client, "status", "--porcelain")
    refs = ("for-each-ref", "refs/gitsync/127.0.0.1*", "--format=%(refname) %(objectname)")
    state = git(client, *refs)
    res = cli(how, "sync", client, "-r", f"http://127.0.0.1:{free_port()}/")
    _one_line(res, 1, "cannot reach")
    assert read_notes(client) == files
    assert git(client, *refs) == state
    assert git(client, "rev-parse", "HEAD").strip() == head
    assert git(client, "status", "--porcelain") == status
    assert status.splitlines() == [" M a.txt", "A  new.txt"]
