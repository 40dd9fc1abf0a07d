"""Every option of ``gitsync-notes sync`` and ``serve`` that sync-notes users know, run both through
click's CliRunner and through the installed console script, against a real gitsync server on
127.0.0.1 (in a thread, or ``gitsync-notes serve`` itself)."""

from __future__ import annotations

import base64
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from gitsync import __version__
from gitsync.sync.conflict import Policy
from tests import peers
from tests.cli.helpers import HOWS, cli, gitsync_server, repo_snapshot
from tests.helpers import git, read_notes, write_notes

pytestmark = pytest.mark.parametrize("how", HOWS)

TABLE_ROW = re.compile(r"^\|\s+notes \|\s+(\S+)\s+\|(.*)\|$", re.M)


def _row(out: str) -> tuple[str, list[str]]:
    """The summary table's notes row: (mode symbol, the ten count cells)."""
    m = TABLE_ROW.search(out)
    assert m, out
    return m.group(1), [c.strip() for c in m.group(2).split("|")]


def _first(how: str, client: Path, url: str, *extra: str) -> None:
    res = cli(how, "sync", client, "--remote", url, "--id", "dev-opt", *extra)
    assert res.code == 0, res.err


# ------------------------------------------------------------------------------- --version / --help
def test_version_and_help(how: str) -> None:
    for flag in ("--version", "-V"):
        res = cli(how, flag)
        assert res.code == 0 and res.out.strip() == f"gitsync-notes, version {__version__}"
    res = cli(how, "--help")
    assert res.code == 0 and "sync" in res.out and "serve" in res.out
    res = cli(how, "sync", "-h")
    assert res.code == 0
    for option in ("--remote", "--mode", "--id", "--name", "--remote-uri", "--username", "--password",
                   "--no-filename-sync", "--describe", "--local", "--policy", "--quiet", "--verbose"):
        assert option in res.out, option
    for mode in peers.PYSYNCML_MODES:
        assert mode in res.out
    res = cli(how, "serve", "--help")
    assert res.code == 0
    assert "--listen" in res.out and "--host" in res.out and "--users" in res.out
    assert "--password" not in res.out  # users never come from the command line alone


# ------------------------------------------------------------------------------- sync basics
def test_remote_and_id_are_remembered_and_summary_printed(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n", "b.txt": b"b\n"})
    with gitsync_server(tmp_path / "server") as srv:
        write_notes(srv.dir, {"s.txt": b"s\n"})
        res = cli(how, "sync", client, "-r", srv.url, "-i", "my-laptop")
        assert res.code == 0, res.err
        assert "Synchronization Summary" in res.out
        assert _row(res.out) == ("SS", ["1", "-", "-", "-", "2", "-", "-", "-", "-", "-"])
        assert git(client, "config", "gitsync.remote").strip() == srv.url
        assert git(client, "config", "gitsync.deviceid").strip() == "my-laptop"
        # the server knows this device by the id we gave
        assert "refs/gitsync/device-my-laptop" in git(srv.dir, "for-each-ref", "--format=%(refname)")
        write_notes(client, {"c.txt": b"c\n"})
        res = cli(how, "sync", client)  # URL and id remembered
        assert res.code == 0, res.err
        assert _row(res.out) == ("<>", ["-", "-", "-", "-", "1", "-", "-", "-", "-", "-"])
        assert read_notes(srv.dir) == read_notes(client)
        assert srv.reports[-1].mode == "two-way"  # type: ignore[attr-defined]


def test_mode_short_option_and_peer_name(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server") as srv:
        _first(how, client, srv.url, "--peer", "office")
        assert "refs/gitsync/office" in git(client, "for-each-ref", "--format=%(refname)")
        write_notes(srv.dir, {"s.txt": b"s\n"})
        write_notes(client, {"mine.txt": b"mine\n"})
        res = cli(how, "sync", client, "-m", "pull")
        assert res.code == 0, res.err
        assert _row(res.out)[0] == "<-"
        assert "s.txt" in read_notes(client) and "mine.txt" not in read_notes(srv.dir)
        res = cli(how, "sync", client, "--mode", "push")
        assert _row(res.out)[0] == "->"
        assert "mine.txt" in read_notes(srv.dir)


def test_name_reaches_the_server(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server") as srv:
        _first(how, client, srv.url, "--name", "Kitchen Laptop")
        assert git(client, "config", "gitsync.name").strip() == "Kitchen Laptop"
        # the server keeps our DevInf, which carries the name; its --describe shows it
        res = cli(how, "sync", srv.dir, "--describe")
        assert res.code == 0, res.err
        assert 'Datastore: notes "Kitchen Laptop"' in res.out
        assert "Peer device-dev-opt:" in res.out


def test_remote_uri_short_option(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server") as srv:
        _first(how, client, srv.url, "-R", "./Memo")
        assert read_notes(srv.dir) == {"a.txt": b"a\n"}
        assert git(client, "config", "gitsync.remoteuri").strip() == "./Memo"


def test_no_filename_sync(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n", "b.txt": b"b\n"})
    with gitsync_server(tmp_path / "server") as srv:
        _first(how, client, srv.url)
        (client / "a.txt").rename(client / "renamed.txt")
        res = cli(how, "sync", client, "-F")
        assert res.code == 0, res.err
        # a rename alone is not synced: the server keeps the old name
        assert read_notes(srv.dir) == {"a.txt": b"a\n", "b.txt": b"b\n"}
        assert "renamed.txt" in read_notes(client)
        # remembered, as sync-notes does; content changes still go
        assert git(client, "config", "gitsync.nofilenamesync").strip() == "true"
        write_notes(client, {"b.txt": b"b edited\n"})
        (client / "renamed.txt").rename(client / "renamed-again.txt")
        res = cli(how, "sync", client)
        assert res.code == 0, res.err
        assert read_notes(srv.dir) == {"a.txt": b"a\n", "b.txt": b"b edited\n"}
        # with file name sync on again, a rename goes to the server
        git(client, "config", "--unset", "gitsync.nofilenamesync")
        write_notes(client, {"renamed-again.txt": b"a, edited\n"})
        res = cli(how, "sync", client)
        assert res.code == 0, res.err
        assert read_notes(srv.dir) == {"renamed-again.txt": b"a, edited\n", "b.txt": b"b edited\n"}


# ------------------------------------------------------------------------------- --describe / --local
def test_describe_says_what_and_with_whom_without_contacting_anyone(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n", "b.txt": b"b\n"})
    res = cli(how, "sync", client, "--describe")
    assert res.code == 0 and "never been synced" in res.out
    assert not (client / ".git").exists()  # describing creates nothing
    with gitsync_server(tmp_path / "server") as srv:
        _first(how, client, srv.url, "-n", "Desk", "-u", "alice", "-p", "pw")
        url = srv.url
    # the server is gone: --describe works from what the repository knows
    before = repo_snapshot(client)
    res = cli(how, "sync", client, "-d")
    assert res.code == 0, res.err
    out = res.out
    assert f"Notes folder: {client.resolve()} (branch main, 2 notes)" in out
    assert f"Role: client of {url}, mode sync (two-way)" in out
    assert "Device ID: dev-opt" in out and "Name: Desk" in out
    assert "User: alice (the password is never stored)" in out
    assert "Content types: text/x-s4j-sifn 1.1 (preferred)" in out  # ours
    assert "Device: gitsync-notes gitsync-notes" in out  # the peer, from its DevInf
    assert "Content type used: application/x-gitsync-note" in out  # byte for byte (issue 14)
    assert re.search(r"Last sync: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, slow; 2 notes in common", out), out
    assert "Pending local changes: 0" in out
    assert repo_snapshot(client) == before


def test_local_lists_pending_changes_without_contacting_anyone(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n", "b.txt": b"b\n", "c.txt": b"c\n"})
    res = cli(how, "sync", client, "-l")
    assert res.code == 0 and "never been synced" in res.out
    with gitsync_server(tmp_path / "server") as srv:
        _first(how, client, srv.url)
    res = cli(how, "sync", client, "--local")
    assert res.code == 0 and "No pending local changes" in res.out
    write_notes(client, {"a.txt": b"a edited\n", "new.txt": b"new\n", "b.txt": None})
    (client / "c.txt").rename(client / "c-renamed.txt")
    before = repo_snapshot(client)
    res = cli(how, "sync", client, "-l")  # the server is stopped: nothing is contacted
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0].startswith("Pending local changes since the last sync with")
    assert sorted(line.split() for line in lines[1:-1]) == sorted(
        [["modified", "a.txt"], ["added", "new.txt"], ["deleted", "b.txt"],
         ["renamed", "c.txt", "->", "c-renamed.txt"]]
    )
    assert lines[-1] == "4 changes."
    assert repo_snapshot(client) == before  # nothing committed, nothing staged


# ------------------------------------------------------------------------------- credentials
def _users(tmp_path: Path) -> dict[str, str]:
    return {"alice": "s3cret-Pw"}


def _assert_password_not_stored(repo: Path, password: str) -> None:
    forms = [password.encode(), base64.b64encode(f"alice:{password}".encode())]
    config = (repo / ".git" / "config").read_bytes()
    objects = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo, capture_output=True, check=True
    ).stdout
    for form in forms:
        assert form not in config
        assert form not in objects  # no commit, tree, state blob or note holds it
        for path in (repo / ".git").rglob("*"):
            if path.is_file() and "objects" not in path.parts:
                assert form not in path.read_bytes(), path


@pytest.mark.parametrize("auth", ["basic", "md5"])
def test_username_and_password(how: str, auth: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server", users=_users(tmp_path)) as srv:
        res = cli(how, "sync", client, "-r", srv.url, "-i", "dev-pw", "-u", "alice", "-p", "s3cret-Pw",
                  "--auth", auth)
        assert res.code == 0, res.err
        assert read_notes(srv.dir) == {"a.txt": b"a\n"}
        assert git(client, "config", "gitsync.username").strip() == "alice"
        # later: the user name is remembered, the password comes from the environment
        write_notes(client, {"b.txt": b"b\n"})
        res = cli(how, "sync", client, env={"GITSYNC_PASSWORD": "s3cret-Pw"})
        assert res.code == 0, res.err
        assert "b.txt" in read_notes(srv.dir)
        _assert_password_not_stored(client, "s3cret-Pw")


def _pty_run(args: list[str], answers: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run the console script on a pseudo-terminal (stdin, stdout, stderr); answer prompts."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([*peers.gitsync_command(), *args], stdin=slave, stdout=slave, stderr=slave,
                            close_fds=True, start_new_session=True)
    os.close(slave)
    out = b""
    pending = dict(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                for prompt in list(pending):
                    if prompt.encode() in out:
                        os.write(master, pending.pop(prompt).encode() + b"\n")
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out.decode("utf-8", "replace")


def test_password_is_prompted_without_echo_on_a_terminal(how: str, tmp_path: Path) -> None:
    if how == "runner":
        # CliRunner's stdin is no terminal: then the password must come from -p or the environment
        client = tmp_path / "client"
        write_notes(client, {"a.txt": b"a\n"})
        res = cli(how, "sync", client, "-r", "http://127.0.0.1:9/", "-u", "alice")
        assert res.code == 1 and res.lines == [
            "gitsync-notes: a password is needed for user 'alice' (use --password or GITSYNC_PASSWORD)"
        ]
        return
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server", users=_users(tmp_path)) as srv:
        code, transcript = _pty_run(
            ["sync", str(client), "-r", srv.url, "-i", "dev-tty", "-u", "alice"],
            {"Password for alice:": "s3cret-Pw"},
        )
        assert code == 0, transcript
        assert "Password for alice:" in transcript
        assert "s3cret-Pw" not in transcript  # not echoed
        assert read_notes(srv.dir) == {"a.txt": b"a\n"}
    _assert_password_not_stored(client, "s3cret-Pw")


# ------------------------------------------------------------------------------- progress
def test_progress_on_a_terminal_only(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {f"c{i:02d}.txt": f"client {i}\n".encode() for i in range(30)})
    with gitsync_server(tmp_path / "server") as srv:
        write_notes(srv.dir, {f"s{i:02d}.txt": f"server {i}\n".encode() for i in range(20)})
        if how == "runner":  # not a terminal: no progress at all, only the table on stdout
            res = cli(how, "sync", client, "-r", srv.url, "-i", "dev-prog")
            assert res.code == 0 and res.err == ""
            assert "\r" not in res.out and "syncing with" not in res.out
            return
        code, transcript = _pty_run(["sync", str(client), "-r", srv.url, "-i", "dev-prog"], {})
        assert code == 0, transcript
        shown = re.findall(r"syncing with [^:]+: ([^\r\n]*) notes", transcript)
        assert shown, transcript
        assert shown[-1] == "sent 30/30, received 20"
        assert "Synchronization Summary" in transcript
        # quiet: nothing at all, progress included
        write_notes(client, {"more.txt": b"more\n"})
        code, transcript = _pty_run(["sync", str(client), "-q"], {})
        assert code == 0 and transcript.strip() == "", transcript
        # piped (no terminal): the table only, no progress line
        write_notes(client, {"more2.txt": b"more\n"})
        res = cli(how, "sync", client)
        assert res.code == 0 and res.err == "" and "syncing with" not in res.out


# ------------------------------------------------------------------------------- -v / -q
def test_quiet_prints_nothing_and_verbose_says_more(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server") as srv:
        res = cli(how, "sync", client, "-r", srv.url, "-i", "dev-q", "-q")
        assert (res.code, res.out, res.err) == (0, "", "")
        assert read_notes(srv.dir) == {"a.txt": b"a\n"}
        write_notes(client, {"b.txt": b"b\n"})
        res = cli(how, "sync", client, "--quiet")
        assert (res.code, res.out, res.err) == (0, "", "")
        write_notes(client, {"c.txt": b"c\n"})
        res = cli(how, "sync", client, "-v")
        assert res.code == 0 and "INFO:" in res.err and "DEBUG:" not in res.err
        write_notes(client, {"d.txt": b"d\n"})
        res = cli(how, "sync", client, "-vv")
        assert res.code == 0 and "DEBUG:" in res.err


# ------------------------------------------------------------------------------- protocol options
def test_encoding_syncml_version_and_message_size(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    notes = {f"n{i:02d}.txt": (f"note {i}\n" + "x" * 300).encode() for i in range(25)}
    write_notes(client, notes)
    with gitsync_server(tmp_path / "server") as srv:
        res = cli(how, "sync", client, "-r", srv.url, "-i", "dev-enc", "--encoding", "wbxml",
                  "--syncml", "1.1", "--max-msg-size", "4096", "--timeout", "20")
        assert res.code == 0, res.err
        assert read_notes(srv.dir) == notes


def test_force_delete(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    notes = {f"n{i}.txt": f"{i}\n".encode() for i in range(6)}
    write_notes(client, notes)
    with gitsync_server(tmp_path / "server") as srv:
        _first(how, client, srv.url)
        write_notes(client, {f"n{i}.txt": None for i in range(5)})
        res = cli(how, "sync", client)
        assert res.code == 1 and len(res.lines) == 1 and "--force-delete" in res.err
        assert read_notes(srv.dir) == notes
        res = cli(how, "sync", client, "--force-delete")
        assert res.code == 0, res.err
        assert read_notes(srv.dir) == {"n5.txt": b"5\n"}


# ------------------------------------------------------------------------------- policy / exit 3
def test_policy_is_remembered_for_serving(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server") as srv:
        _first(how, client, srv.url, "--policy", "server-wins")
    assert git(client, "config", "gitsync.policy").strip() == "server-wins"
    assert "Conflict policy when served: server-wins" in cli(how, "sync", client, "-d").out


@pytest.mark.parametrize("policy", ["merge", "keep-both", "error"])  # the others: tests/interop
def test_server_policy_and_exit_status(how: str, policy: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"n.txt": b"list\n"})
    with gitsync_server(tmp_path / "server", policy=Policy(policy)) as srv:
        _first(how, client, srv.url)
        write_notes(client, {"n.txt": b"list\nclient\n"})
        write_notes(srv.dir, {"n.txt": b"list\nserver\n"})
        res = cli(how, "sync", client)
        ours, theirs = read_notes(client), read_notes(srv.dir)
        if policy == "client-wins":
            assert res.code == 0 and ours == theirs == {"n.txt": b"list\nclient\n"}
        elif policy == "server-wins":
            assert res.code == 0 and ours == theirs == {"n.txt": b"list\nserver\n"}
        elif policy == "keep-both":
            assert res.code == 0 and ours == theirs
            assert sorted(ours.values()) == [b"list\nclient\n", b"list\nserver\n"]
        elif policy == "merge":  # overlapping edits: markers on both sides, exit 3
            assert res.code == 3, res.err
            assert ours == theirs and b"<<<<<<<" in ours["n.txt"]
            assert "n.txt" in res.lines[-1]
        else:  # error: the server refuses, nothing changes, exit 3
            assert res.code == 3, res.err
            assert ours == {"n.txt": b"list\nclient\n"} and theirs == {"n.txt": b"list\nserver\n"}
        assert _row(res.out)[1][8] == "1"  # one collision counted in the table


# ------------------------------------------------------------------------------- serve
def test_serve_users_from_a_file_or_git_config(how: str, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# who may sync\nalice:s3cret-Pw\n")
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    srv = tmp_path / "server"
    with peers.GitsyncServer(srv, extra=["--users", str(users), "-P", "server-wins"]) as server:
        res = cli(how, "sync", client, "-r", server.url, "-i", "dev-u")
        assert res.code == 1 and len(res.lines) == 1 and "credentials" in res.err
        res = cli(how, "sync", client, "-r", server.url, "-i", "dev-u", "-u", "alice", "-p", "s3cret-Pw")
        assert res.code == 0, res.err
        log = server.output()
        assert "session with device-dev-u:" in log and "Synchronization Summary" in log  # per session
    # the users file named in the repository's git config
    git(srv, "config", "gitsync.usersfile", str(users))
    with peers.GitsyncServer(srv, extra=["-q"]) as server:
        write_notes(client, {"b.txt": b"b\n"})
        res = cli(how, "sync", client, "-r", server.url, env={"GITSYNC_PASSWORD": "wrong"})
        assert res.code == 1 and "credentials" in res.err
        res = cli(how, "sync", client, "-r", server.url, env={"GITSYNC_PASSWORD": "s3cret-Pw"})
        assert res.code == 0, res.err
        assert read_notes(srv)["b.txt"] == b"b\n"
        assert server.output() == ""  # -q: no per-session table
