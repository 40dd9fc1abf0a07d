"""`gitsync-notes log` (the sync history, one line per sync) and `gitsync-notes status`."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner, Result

from gitsync.app import hook
from gitsync.cli import main
from gitsync.store.git import GitStore
from tests import peers
from tests.app.helpers import Loopback
from tests.helpers import git, write_notes

LINE = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)  (?P<peer>\S+)\s+(?P<mode>\S+)\s+"
    r"(?P<counts>\+\d+ ~\d+ -\d+ in, \+\d+ ~\d+ -\d+ out)\s+(?P<commit>[0-9a-f]{10}|\(no commit\))"
    r"(?:\s+(?P<conflicts>\d+ conflicts?))?$"
)


def _cli(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _history(tmp_path: Path) -> tuple[Loopback, Path]:
    lb = Loopback(tmp_path)
    a = lb.client_dir("a")
    write_notes(a, {"one.txt": b"one\n", "two.txt": b"two\n"})
    lb.sync("a")  # slow: 2 out
    write_notes(a, {"one.txt": b"one, edited\n"})
    lb.sync("a")  # two-way: 1 modified out
    lb.sync("a")  # nothing to do: no commit on the branch, but a session all the same
    return lb, a


def test_log_shows_one_line_per_sync_newest_first(tmp_path: Path) -> None:
    _lb, a = _history(tmp_path)
    res = _cli("log", a)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert len(lines) == 3
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    newest, middle, oldest = (m.groupdict() for m in parsed if m)
    assert (newest["mode"], newest["counts"], newest["commit"]) == (
        "two-way", "+0 ~0 -0 in, +0 ~0 -0 out", "(no commit)"
    )
    assert (middle["mode"], middle["counts"]) == ("two-way", "+0 ~0 -0 in, +0 ~1 -0 out")
    assert (oldest["mode"], oldest["counts"]) == ("slow", "+0 ~0 -0 in, +2 ~0 -0 out")
    assert {m["peer"] for m in (newest, middle, oldest)} == {"server"}
    # the commit column names the sync commits on the branch, as `git log` shows them
    sync_commits = [
        line.split()[0][:10]
        for line in git(a, "log", "--format=%H %s").splitlines()
        if " sync with server: " in line
    ]
    assert [middle["commit"], oldest["commit"]] == sync_commits
    assert newest["when"] >= middle["when"] >= oldest["when"]


def test_log_filters(tmp_path: Path) -> None:
    lb, a = _history(tmp_path)
    assert len(_cli("log", a, "--changes").output.splitlines()) == 2
    assert len(_cli("log", a, "-n", "1").output.splitlines()) == 1
    assert len(_cli("log", a, "--peer", "server").output.splitlines()) == 3
    res = _cli("log", a, "--peer", "nope")
    assert res.exit_code == 1 and "no sync with a peer named 'nope'" in res.output
    # the server's history is per device
    res = _cli("log", lb.server_dir)
    assert res.output.splitlines()[0].split()[2] == "device-dev-a"


def test_log_shows_conflicts(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    a, b = lb.client_dir("a"), lb.client_dir("b")
    write_notes(a, {"n.txt": b"title\n\nline 1\nline 2\nline 3\n"})
    lb.sync("a")
    lb.sync("b")
    write_notes(a, {"n.txt": b"title, from a\n\nline 1\nline 2\nline 3\n"})
    write_notes(b, {"n.txt": b"title\n\nline 1\nline 2\nline 3, from b\n"})
    lb.sync("a")
    report = lb.sync("b")
    assert report.conflicts == 1
    first = LINE.match(_cli("log", b).output.splitlines()[0])
    assert first is not None and first["conflicts"] == "1 conflict"
    server_line = LINE.match(_cli("log", lb.server_dir, "--peer", "device-dev-b").output.splitlines()[0])
    assert server_line is not None and server_line["conflicts"] == "1 conflict"


def test_log_without_syncs(tmp_path: Path) -> None:
    root = tmp_path / "n"
    root.mkdir()
    GitStore.open(root)
    assert _cli("log", root).output == "no syncs yet\n"


def test_status_shows_the_hook_and_each_peers_last_result(tmp_path: Path) -> None:
    lb, a = _history(tmp_path)
    git(a, "config", "gitsync.remote", lb.url)
    git(a, "config", "gitsync.peer", "server")
    out = _cli("status", a).output
    assert "Hook: not installed" in out
    assert "Sync running: no" in out
    assert f"Peer server ({lb.url}):" in out
    assert re.search(r"last sync: +\S+ \S+  two-way  \+0 ~0 -0 in, \+0 ~0 -0 out", out)
    assert "waiting to be sent: 0 changes" in out
    write_notes(a, {"two.txt": b"two, edited\n", "three.txt": b"three\n"})
    assert "waiting to be sent: 2 changes" in _cli("status", a).output

    hook.install(GitStore.open(a))
    holder = GitStore.open(a)
    with holder.lock():  # another process syncing right now
        out = _cli("status", a).output
    assert "Hook: installed" in out and "Sync running: yes" in out

    # a failed attempt (the server is unreachable) is shown with its reason
    res = peers.run_gitsync(
        "sync", a, "--remote", "http://127.0.0.1:9/", "--peer", "server", "--timeout", "5", check=False
    )
    assert res.returncode != 0
    out = _cli("status", a).output
    assert re.search(r"last attempt: .*\(cli\) FAILED: .*127\.0\.0\.1", out), out
    # and the last successful sync is still there
    assert "last sync:" in out and "never" not in out


def test_status_of_a_folder_that_never_synced(tmp_path: Path) -> None:
    root = tmp_path / "n"
    root.mkdir()
    GitStore.open(root)
    out = _cli("status", root).output
    assert "Peers: none yet" in out and "Hook: not installed" in out
