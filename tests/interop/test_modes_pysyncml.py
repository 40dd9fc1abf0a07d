"""Every sync-notes mode (``--mode``), in both roles against the real pysyncml 0.2.0 peer, and
gitsync ↔ gitsync over real HTTP (``gitsync-notes serve`` + the installed console script).

One scenario for all: a first sync makes both sides hold a, b, s, t; then the client edits a,
adds c and deletes b while the server edits s, adds u and deletes t; then one sync in the mode
under test. What each side must hold afterwards is the table ``EXPECTED`` (sync-notes' meaning
of each mode). pysyncml is ASCII-only and keeps no sub-folders, so the notes are flat ASCII.

Where pysyncml itself gets a mode wrong, the test says so and checks what we do about it:
- its server answers a slow sync (``full``) with HTTP 200 + status 500 when a note of the same
  name differs on both sides (its own client fails the same way): we print one line and change
  nothing; a slow sync that has no such note works;
- its server answers a refresh (205) with only the notes it never sent this client, so our client
  turns ``pull-over`` into a one-way pull and then resets its notes to what both sides agree on;
- its client cannot take a Replace in a slow sync, so our server keeps its newer text for the next
  sync instead of failing the session.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.codec import decode, encode
from gitsync.errors import TransportError
from gitsync.model import SyncMode
from gitsync.protocol.messages import Alert, Message
from gitsync.store.git import GitStore
from gitsync.transport.http import HttpTransport
from gitsync.transport.inprocess import InProcessTransport
from tests import peers
from tests.helpers import git, read_notes, write_notes

pytestmark = pytest.mark.interop

Notes = dict[str, bytes]

BASE_CLIENT: Notes = {"a.txt": b"a\n", "b.txt": b"b\n"}
BASE_SERVER: Notes = {"s.txt": b"s\n", "t.txt": b"t\n"}
BASE: Notes = {**BASE_CLIENT, **BASE_SERVER}
CLIENT_EDITS: dict[str, bytes | None] = {"a.txt": b"a client\n", "c.txt": b"c new\n", "b.txt": None}
SERVER_EDITS: dict[str, bytes | None] = {"s.txt": b"s server\n", "u.txt": b"u new\n", "t.txt": None}


def _edited(notes: Notes, edits: Mapping[str, bytes | None]) -> Notes:
    out = dict(notes)
    for name, data in edits.items():
        if data is None:
            out.pop(name, None)
        else:
            out[name] = data
    return out


CLIENT_AFTER = _edited(BASE, CLIENT_EDITS)  # {a client, c, s, t}
SERVER_AFTER = _edited(BASE, SERVER_EDITS)  # {a, b, s server, u}
BOTH = _edited(CLIENT_AFTER, SERVER_EDITS)  # {a client, c, s server, u}

#: mode → (client's notes, server's notes) after one sync in that mode
EXPECTED: dict[str, tuple[Notes, Notes]] = {
    "sync": (BOTH, BOTH),
    # a slow sync knows no deletions: what one side deleted comes back from the other
    "full": ({**BOTH, "b.txt": b"b\n", "t.txt": b"t\n"}, {**BOTH, "b.txt": b"b\n", "t.txt": b"t\n"}),
    "pull": (_edited(CLIENT_AFTER, SERVER_EDITS), SERVER_AFTER),
    "push": (CLIENT_AFTER, _edited(SERVER_AFTER, CLIENT_EDITS)),
    "pull-over": (SERVER_AFTER, SERVER_AFTER),
    "push-over": (CLIENT_AFTER, CLIENT_AFTER),
}

#: the Mode column of the summary table
SYMBOL = {"sync": "<>", "full": "SS", "pull": "<-", "push": "->", "pull-over": "<=", "push-over": "=>"}


# ------------------------------------------------------------------------------------------ harness
@dataclass
class Pair:
    """A client folder and a running server, whichever programs play the two roles."""

    role: str
    client: Path
    server_dir: Path
    url: str
    server: peers.PysyncmlServer | peers.GitsyncServer

    def sync(
        self, mode: str | None = None, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """One client session (the first one passes the URL and the device id)."""
        first = not (self.client / ".git").exists() and not (self.client / ".sync").exists()
        if self.role == "pysyncml-client":
            return peers.run_pysyncml_client(
                self.client,
                url=self.url if first else None,
                devid="pysyncml-modes" if first else None,
                mode=mode,
                extra=extra,
                check=check,
            )
        args: list[str] = ["sync", str(self.client)]
        if first:
            args += ["--remote", self.url, "--id", "gitsync-modes"]
        if mode is not None:
            args += ["--mode", mode]
        return peers.run_gitsync(*args, *extra, check=check)

    def client_notes(self) -> Notes:
        return read_notes(self.client)

    def server_notes(self) -> Notes:
        notes = read_notes(self.server_dir)
        return peers.unflatten(notes) if self.role == "gitsync-client" else notes

    def edit_server(self, edits: Mapping[str, bytes | None]) -> None:
        """Edits in the server's folder (both servers pick up what is in their folder)."""
        write_notes(self.server_dir, edits)


ROLES = ("gitsync-client", "pysyncml-client", "gitsync-both")


@contextmanager
def pair(role: str, tmp: Path) -> Iterator[Pair]:
    """``gitsync-client``: our console script against sync-notes --server; ``pysyncml-client``:
    sync-notes against ``gitsync-notes serve``; ``gitsync-both``: ours on both ends."""
    client, server_dir = tmp / "client", tmp / "server"
    client.mkdir()
    server_dir.mkdir()
    if role != "gitsync-both":
        peers.pysyncml_launcher()
    server: peers.PysyncmlServer | peers.GitsyncServer
    server = peers.PysyncmlServer(server_dir) if role == "gitsync-client" else peers.GitsyncServer(server_dir)
    with server:
        yield Pair(role, client, server_dir, server.url, server)
    if isinstance(server, peers.GitsyncServer):
        assert "Traceback" not in server.output()


def _first_sync(p: Pair) -> None:
    write_notes(p.client, BASE_CLIENT)
    p.edit_server(BASE_SERVER)
    p.sync()
    assert p.client_notes() == BASE
    assert p.server_notes() == BASE


def _summary_mode(output: str) -> str:
    """The Mode cell of the (last) summary table in ``output``."""
    rows = [line for line in output.splitlines() if line.startswith("|  notes |") or "| notes |" in line]
    assert rows, output
    return rows[-1].split("|")[2].strip()


# ------------------------------------------------------------------------------------------ the modes
# our client's `full` against pysyncml's server is not in this matrix: that server fails a slow sync
# over notes both sides have (its own client too); test_full_against_pysyncml_server checks what we do
@pytest.mark.parametrize(
    ("role", "mode"),
    [(r, m) for r in ROLES for m in EXPECTED if not (r == "gitsync-client" and m == "full")],
)
def test_mode(role: str, mode: str, tmp_path: Path) -> None:
    with pair(role, tmp_path) as p:
        _first_sync(p)
        edits = dict(CLIENT_EDITS)
        if role == "pysyncml-client" and mode in ("full", "push-over"):
            # its client crashes (IOError) when it sends every note right after a file was
            # deleted: it sends what its database lists. So no delete on its side here
            del edits["b.txt"]
        write_notes(p.client, edits)
        p.edit_server(SERVER_EDITS)
        res = p.sync(mode)
        assert _summary_mode(res.stdout) == SYMBOL[mode]
        if role != "gitsync-client":
            # our server logs each session's summary table, in the mode it ran
            log = p.server.output()
            assert "Synchronization Summary" in log
            assert _summary_mode(log) == SYMBOL[mode]
        want_client, want_server = EXPECTED[mode]
        if mode == "push-over" and "b.txt" not in edits:
            want_client = want_server = {**want_client, "b.txt": b"b\n"}
        if role == "pysyncml-client" and mode == "full":
            # its client takes no Replace in a slow sync: our newer s.txt waits for the next sync
            assert p.client_notes() == {**want_client, "s.txt": b"s\n"}
            assert p.server_notes() == want_server
            p.sync()
        assert p.client_notes() == want_client
        assert p.server_notes() == want_server
        if role != "pysyncml-client":
            assert git(p.client, "status", "--porcelain") == ""
        if role != "gitsync-client":
            assert git(p.server_dir, "status", "--porcelain") == ""
        if mode in ("pull", "push"):
            # one-way left the other side's changes pending: a two-way sync now brings them over
            p.sync()
            assert p.client_notes() == BOTH
            assert p.server_notes() == BOTH


@pytest.mark.parametrize("role", ["gitsync-client", "gitsync-both"])
def test_pull_over_is_one_commit_that_git_revert_undoes(role: str, tmp_path: Path) -> None:
    with pair(role, tmp_path) as p:
        _first_sync(p)
        write_notes(p.client, CLIENT_EDITS)
        git(p.client, "add", "-A")
        git(p.client, "commit", "-qm", "my edits")
        p.edit_server(SERVER_EDITS)
        before = git(p.client, "rev-parse", "HEAD").strip()
        p.sync("pull-over")
        assert p.client_notes() == SERVER_AFTER
        # exactly one commit on top of the user's: the sync, which dropped c.txt and a's edit
        assert git(p.client, "rev-parse", "HEAD~1").strip() == before
        status = git(p.client, "show", "--name-status", "--format=", "HEAD").split("\n")
        assert "D\tc.txt" in status and "M\ta.txt" in status and "A\tb.txt" in status
        git(p.client, "revert", "--no-edit", "HEAD")
        assert p.client_notes() == CLIENT_AFTER


def test_push_over_deletions_on_our_server_are_one_revertible_commit(tmp_path: Path) -> None:
    with pair("pysyncml-client", tmp_path) as p:
        _first_sync(p)
        edits = {k: v for k, v in CLIENT_EDITS.items() if v is not None}  # see test_mode
        write_notes(p.client, edits)
        p.edit_server(SERVER_EDITS)
        git(p.server_dir, "add", "-A")
        git(p.server_dir, "commit", "-qm", "server edits")
        before = git(p.server_dir, "rev-parse", "HEAD").strip()
        p.sync("push-over")
        assert p.server_notes() == p.client_notes() == _edited(BASE, edits)
        assert git(p.server_dir, "rev-parse", "HEAD~1").strip() == before
        status = git(p.server_dir, "show", "--name-status", "--format=", "HEAD").split("\n")
        assert "D\tu.txt" in status and "A\tc.txt" in status and "M\ts.txt" in status
        assert "A\tt.txt" in status  # deleted here since the last sync, but the client has it
        git(p.server_dir, "revert", "--no-edit", "HEAD")
        assert p.server_notes() == SERVER_AFTER


def test_pull_over_on_a_first_sync_with_pysyncml_server(tmp_path: Path) -> None:
    """No mappings yet: pysyncml's server sends everything, and local extras go."""
    with pair("gitsync-client", tmp_path) as p:
        p.edit_server(BASE_SERVER)
        write_notes(p.client, {"local-only.txt": b"x\n", "s.txt": b"older s\n"})
        res = p.sync("pull-over")
        assert p.client_notes() == BASE_SERVER
        assert _summary_mode(res.stdout) == "<="
        # and later syncs are ordinary two-way syncs
        write_notes(p.client, {"after.txt": b"after\n"})
        p.sync()
        assert p.server_notes() == {**BASE_SERVER, "after.txt": b"after\n"}


def test_full_against_pysyncml_server(tmp_path: Path) -> None:
    """pysyncml's server fails any slow sync in which the client sends a note whose name it has
    (its NoteItem.__eq__ reads an attribute it never loaded; its own client fails the same way).
    So a slow sync works when no name is on both sides, as on a first sync; else we print one
    line that says what to do, and nothing changes on either side."""
    with pair("gitsync-client", tmp_path) as p:
        write_notes(p.client, BASE_CLIENT)
        p.edit_server(BASE_SERVER)
        res = p.sync("full")
        assert _summary_mode(res.stdout) == "SS"
        assert p.client_notes() == p.server_notes() == BASE
        write_notes(p.client, {"c.txt": b"c new\n"})
        git(p.client, "add", "-A")
        git(p.client, "commit", "-qm", "edit")
        p.edit_server({"u.txt": b"u new\n"})
        head = git(p.client, "rev-parse", "HEAD")
        res = p.sync("full", check=False)
        assert res.returncode == 1
        assert res.stderr.count("\n") == 1 and "status 500" in res.stderr and "--mode sync" in res.stderr
        assert git(p.client, "rev-parse", "HEAD") == head
        assert p.client_notes() == {**BASE, "c.txt": b"c new\n"}
        assert p.server_notes() == {**BASE, "u.txt": b"u new\n"}
        p.sync()  # what to do instead works
        assert p.client_notes() == p.server_notes() == {**BASE, "c.txt": b"c new\n", "u.txt": b"u new\n"}


# ------------------------------------------------------------------------------------------ policies
POLICY_CASES = {
    # policy → (text both sides end with, conflicts counted, left with markers)
    "client-wins": (b"list\nclient\n", 1, False),
    "server-wins": (b"list\nserver\n", 1, False),
    "merge": (None, 1, True),
}


@pytest.mark.parametrize("policy", list(POLICY_CASES))
def test_server_policy_decides_a_conflict_with_pysyncml_client(policy: str, tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    srv, cli = tmp_path / "server", tmp_path / "client"
    srv.mkdir()
    write_notes(cli, {"n.txt": b"list\n", "other.txt": b"o\n"})
    with peers.GitsyncServer(srv, extra=["--policy", policy]) as server:
        peers.run_pysyncml_client(cli, url=server.url, devid="pysyncml-policy", check=True)
        write_notes(cli, {"n.txt": b"list\nclient\n"})
        write_notes(srv, {"n.txt": b"list\nserver\n"})
        peers.run_pysyncml_client(cli, check=True)
        text, conflicts, markers = POLICY_CASES[policy]
        ours, theirs = read_notes(srv)["n.txt"], read_notes(cli)["n.txt"]
        assert ours == theirs
        if text is not None:
            assert ours == text
        assert (b"<<<<<<<" in ours) == markers
        if markers:
            assert b"client" in ours and b"server" in ours
        assert _conflict_cells(server.output()) == (str(conflicts), "-")
    assert "Traceback" not in server.output()


def test_policy_error_keeps_both_versions_and_exits_3(tmp_path: Path) -> None:
    """gitsync ↔ gitsync: the server refuses the conflicting change (409), nothing changes on
    either side, and the client says so with exit status 3."""
    srv, cli = tmp_path / "server", tmp_path / "client"
    srv.mkdir()
    write_notes(cli, {"n.txt": b"list\n"})
    with peers.GitsyncServer(srv, extra=["--policy", "error"]) as server:
        peers.run_gitsync("sync", cli, "--remote", server.url, "--id", "dev-policy")
        write_notes(cli, {"n.txt": b"list\nclient\n"})
        write_notes(srv, {"n.txt": b"list\nserver\n"})
        res = peers.run_gitsync("sync", cli, check=False)
        assert res.returncode == 3, res.stderr
        assert "n.txt" in res.stderr
        assert read_notes(cli)["n.txt"] == b"list\nclient\n"
        assert read_notes(srv)["n.txt"] == b"list\nserver\n"


def test_keep_both_policy_keeps_a_copy(tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    srv, cli = tmp_path / "server", tmp_path / "client"
    srv.mkdir()
    write_notes(cli, {"n.txt": b"list\n"})
    with peers.GitsyncServer(srv, extra=["--policy", "keep-both"]) as server:
        peers.run_pysyncml_client(cli, url=server.url, devid="pysyncml-keep", check=True)
        write_notes(cli, {"n.txt": b"list\nclient\n"})
        write_notes(srv, {"n.txt": b"list\nserver\n"})
        peers.run_pysyncml_client(cli, check=True)
        ours, theirs = read_notes(srv), read_notes(cli)
        assert ours == theirs
        assert sorted(ours.values()) == [b"list\nclient\n", b"list\nserver\n"]


def _conflict_cells(log: str) -> tuple[str, str]:
    row = [line for line in log.splitlines() if "| notes |" in line or "|  notes |" in line][-1]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    return cells[-2], cells[-1]


# ------------------------------------------------------------------------------------------ aliases
ALIASES = ("notes", "./notes", "note", "memo", "Notes", "Memo", "pnote", "snote")


def test_remote_uri_aliases_accepted_by_our_server(tmp_path: Path) -> None:
    srv = tmp_path / "server"
    srv.mkdir()
    with peers.GitsyncServer(srv) as server:
        for n, uri in enumerate(ALIASES):
            cli = tmp_path / f"client-{n}"
            write_notes(cli, {f"from-{n}.txt": f"{uri}\n".encode()})
            res = peers.run_gitsync("sync", cli, "-r", server.url, "-i", f"dev-{n}", "--remote-uri", uri)
            assert f"from-{n}.txt" in read_notes(srv), (uri, res.stderr)
            # remembered: the next sync uses it again without the option
            assert git(cli, "config", "gitsync.remoteuri").strip() == uri
            write_notes(cli, {f"second-{n}.txt": b"2\n"})
            peers.run_gitsync("sync", cli)
            assert read_notes(srv)[f"second-{n}.txt"] == b"2\n"
        assert "Traceback" not in server.output()


def test_unknown_remote_uri_is_one_clear_line(tmp_path: Path) -> None:
    srv, cli = tmp_path / "server", tmp_path / "client"
    write_notes(cli, {"hello.txt": b"hello\n"})
    srv.mkdir()
    with peers.GitsyncServer(srv) as server:
        res = peers.run_gitsync(
            "sync", cli, "--remote", server.url, "--id", "dev-x", "--remote-uri", "calendar", check=False
        )
        assert res.returncode == 1
        assert res.stderr.count("\n") == 1 and "calendar" in res.stderr and "--remote-uri" in res.stderr
        assert read_notes(srv) == {}


# ----------------------------------------------------------------------------- 225, partial packages
class _ResumeTransport:
    """HTTP, but the sync Alert of the first message says 225 (resume) instead of its mode."""

    def __init__(self) -> None:
        self.http = HttpTransport(timeout=30)
        self.first = True

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        if self.first:
            self.first = False
            msg, _ = decode(body, content_type)
            commands = tuple(
                replace(c, code=225) if isinstance(c, Alert) and 200 <= c.code <= 205 else c
                for c in msg.commands
            )
            assert any(isinstance(c, Alert) and c.code == 225 for c in commands)
            body = encode(Message(header=msg.header, commands=commands, final=msg.final), content_type)
        return self.http.exchange(url, body, content_type)

    def close(self) -> None:
        self.http.close()


def test_resume_225_with_nothing_on_record_is_a_slow_sync(tmp_path: Path) -> None:
    srv, cli = tmp_path / "server", tmp_path / "client"
    srv.mkdir()
    cli.mkdir()
    write_notes(cli, {"a.txt": b"a\n"})
    with peers.GitsyncServer(srv) as server:
        store = GitStore.open(cli)
        opts = ClientOptions(url=server.url, device_id="dev-225", name="srv")
        report = sync_client(store, opts, _ResumeTransport())
        assert report.mode == "slow"  # first contact: the anchors cannot match
        assert read_notes(srv) == {"a.txt": b"a\n"}
        write_notes(srv, {"b.txt": b"b\n"})
        write_notes(cli, {"c.txt": b"c\n"})
        report = sync_client(GitStore.open(cli), opts, _ResumeTransport())
        # No interrupted session is on record, so what the device believes was acknowledged cannot
        # be trusted: the server answers 508 and a slow sync compares every note (nothing lost).
        assert report.mode == "slow"
        want = {"a.txt": b"a\n", "b.txt": b"b\n", "c.txt": b"c\n"}
        assert read_notes(cli) == read_notes(srv) == want
    assert "Traceback" not in server.output()


class _DyingTransport:
    """In process; fails (as a dropped connection would) on exchange number ``die_at``."""

    def __init__(self, app: object, die_at: int | None) -> None:
        self.inner = InProcessTransport(app)  # type: ignore[arg-type]
        self.die_at = die_at
        self.count = 0

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        self.count += 1
        if self.count == self.die_at:
            raise TransportError("connection lost (test)")
        return self.inner.exchange(url, body, content_type)


def _many_notes(prefix: str, n: int) -> Notes:
    return {f"{prefix}{i:02d}.txt": (f"{prefix} {i}\n" + "x" * 400 + "\n").encode() for i in range(n)}


def test_pull_over_deletes_nothing_until_the_whole_package_arrived(tmp_path: Path) -> None:
    srv, cli = tmp_path / "server", tmp_path / "client"
    srv.mkdir()
    cli.mkdir()
    server = SyncServer(GitStore.open(srv), ServerOptions())
    app = server.wsgi_app()
    write_notes(srv, _many_notes("srv", 12))
    write_notes(cli, {"mine.txt": b"only here\n"})
    opts = ClientOptions(url="http://sync.test/notes", device_id="dev-split", name="srv", max_msg_size=2048)
    sync_client(GitStore.open(cli), opts, InProcessTransport(app))
    write_notes(cli, {"later.txt": b"also only here\n"})
    git(cli, "add", "-A")
    git(cli, "commit", "-qm", "later")
    head = git(cli, "rev-parse", "HEAD")
    pull_over = replace(opts, mode=SyncMode.REFRESH_FROM_SERVER, force_delete=True)
    # how many exchanges a full refresh takes: the server's package must span several messages
    probe = tmp_path / "probe"
    subprocess.run(["git", "clone", "-q", str(cli), str(probe)], check=True)
    t = _DyingTransport(app, None)
    sync_client(GitStore.open(probe), replace(pull_over, device_id="dev-probe"), t)
    assert t.count >= 4, t.count
    for die_at in range(2, t.count):
        with pytest.raises(TransportError):
            sync_client(GitStore.open(cli), pull_over, _DyingTransport(app, die_at))
        assert git(cli, "rev-parse", "HEAD") == head
        assert "later.txt" in read_notes(cli) and "mine.txt" in read_notes(cli)
    sync_client(GitStore.open(cli), pull_over, InProcessTransport(app))
    assert read_notes(cli) == read_notes(srv)


def test_push_over_deletes_nothing_on_the_server_until_the_whole_package_arrived(tmp_path: Path) -> None:
    srv, cli = tmp_path / "server", tmp_path / "client"
    srv.mkdir()
    cli.mkdir()
    server = SyncServer(GitStore.open(srv), ServerOptions(max_msg_size=2048))
    app = server.wsgi_app()
    write_notes(cli, _many_notes("cli", 12))
    opts = ClientOptions(url="http://sync.test/notes", device_id="dev-split", name="srv")
    sync_client(GitStore.open(cli), opts, InProcessTransport(app))
    write_notes(srv, {"server-only.txt": b"s\n"})
    git(srv, "add", "-A")
    git(srv, "commit", "-qm", "server only")
    head = git(srv, "rev-parse", "HEAD")
    push_over = replace(opts, mode=SyncMode.REFRESH_FROM_CLIENT, force_delete=True)
    with pytest.raises(TransportError):
        sync_client(GitStore.open(cli), push_over, _DyingTransport(app, 3))
    assert git(srv, "rev-parse", "HEAD") == head
    assert "server-only.txt" in read_notes(srv)
    t = _DyingTransport(app, None)
    sync_client(GitStore.open(cli), push_over, t)
    assert t.count >= 4  # the client's package did span several messages
    assert read_notes(srv) == read_notes(cli)
