"""One repository, several servers: each peer has its own name, state ref and anchors; a change
from one peer reaches the others at their next sync and is never echoed back to where it came from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.store.git import GitStore
from gitsync.sync.report import SyncReport
from gitsync.transport.inprocess import InProcessTransport
from tests import peers
from tests.app.helpers import Loopback
from tests.helpers import git, read_notes, write_notes
from tests.hooks.helpers import commit, wait_for_log, wait_idle


class TwoServers:
    """Servers A and B (each with its own other client), and our folder that syncs with both."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "A").mkdir()
        (tmp / "B").mkdir()
        self.a = Loopback(tmp / "A")
        self.b = Loopback(tmp / "B")
        self.me = tmp / "me"
        self.me.mkdir()

    def sync(self, peer: str) -> SyncReport:
        lb = self.a if peer == "a" else self.b
        opts = ClientOptions(url=f"http://{peer}.test/notes", device_id="dev-me", name=peer)
        return sync_client(GitStore.open(self.me), opts, InProcessTransport(lb.app))


def _out(report: SyncReport) -> tuple[int, int, int]:
    return report.remote.add, report.remote.mod, report.remote.dele


def _in(report: SyncReport) -> tuple[int, int, int]:
    return report.local.add, report.local.mod, report.local.dele


def test_a_change_from_one_peer_reaches_the_other_and_is_not_echoed(tmp_path: Path) -> None:
    t = TwoServers(tmp_path)
    write_notes(t.me, {"shared.txt": b"shared\n", "edit-me.txt": b"v1\n", "drop-me.txt": b"drop\n"})
    t.sync("a")
    t.sync("b")
    assert read_notes(t.a.server_dir) == read_notes(t.b.server_dir) == read_notes(t.me)
    assert GitStore.open(t.me).peers() == ["a", "b"]

    # someone else changes A
    t.a.sync("x")
    x = t.a.client_dir("x")
    write_notes(x, {"edit-me.txt": b"v2 from A\n", "new-on-a.txt": b"born on A\n", "drop-me.txt": None})
    t.a.sync("x")

    assert _in(t.sync("a")) == (1, 1, 1)
    a_head = git(t.a.server_dir, "rev-parse", "HEAD")
    report = t.sync("b")  # A's changes are passed on to B ...
    assert _out(report) == (1, 1, 1) and _in(report) == (0, 0, 0)
    assert read_notes(t.b.server_dir) == read_notes(t.me) == read_notes(t.a.server_dir)
    report = t.sync("a")  # ... and not echoed back to A
    assert _out(report) == (0, 0, 0) and _in(report) == (0, 0, 0)
    assert git(t.a.server_dir, "rev-parse", "HEAD") == a_head

    # and the other way round, with a local edit travelling to both
    t.b.sync("y")
    write_notes(t.b.client_dir("y"), {"shared.txt": b"shared, edited on B\n"})
    t.b.sync("y")
    write_notes(t.me, {"mine.txt": b"made here\n"})
    report = t.sync("b")
    assert _in(report) == (0, 1, 0) and _out(report) == (1, 0, 0)
    report = t.sync("a")
    assert _out(report) == (1, 1, 0) and _in(report) == (0, 0, 0)
    b_head = git(t.b.server_dir, "rev-parse", "HEAD")
    assert _out(t.sync("b")) == (0, 0, 0)
    assert git(t.b.server_dir, "rev-parse", "HEAD") == b_head
    assert read_notes(t.a.server_dir) == read_notes(t.b.server_dir) == read_notes(t.me)

    # each peer keeps its own state ref and history
    store = GitStore.open(t.me)
    for peer in ("a", "b"):
        subjects = [s.message.splitlines()[0] for s in store.state_history(peer)]
        assert all(s.startswith(f"sync with {peer}: ") for s in subjects), subjects


@pytest.mark.interop
def test_a_gitsync_server_and_a_pysyncml_server_through_the_cli_and_the_hook(tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    me = tmp_path / "me"
    me.mkdir()
    write_notes(me, {"one.txt": b"one\n", "two.txt": b"two\n"})
    with peers.GitsyncServer(tmp_path / "home") as home, peers.PysyncmlServer(tmp_path / "phone") as phone:
        peers.run_gitsync("sync", me, "--remote", home.url, "--peer", "home", "--id", "dev-me", "-q")
        peers.run_gitsync("sync", me, "--remote", phone.url, "--peer", "phone", "-q")
        # --peer alone finds that peer's own server (not the last one used)
        peers.run_gitsync("sync", me, "--peer", "home", "-q")
        assert "Gitsync-Peer: home" in git(me, "log", "-1", "--format=%B", "refs/gitsync/home")

        # a change on the phone reaches home, and is not echoed back to the phone
        write_notes(phone.dir, {"two.txt": b"two, edited on the phone\n", "three.txt": b"three\n"})
        peers.run_gitsync("sync", me, "--peer", "phone", "-q")
        peers.run_gitsync("sync", me, "--peer", "home", "-q")
        assert read_notes(home.dir) == read_notes(me)
        res = peers.run_gitsync("sync", me, "--peer", "phone")
        assert "No changes." in res.stdout
        assert read_notes(phone.dir) == read_notes(me)

        # the hook syncs every peer after a commit
        peers.run_gitsync("hook", "install", me)
        write_notes(me, {"four.txt": b"four, committed\n"})
        _, done = commit(me, "four")
        assert done.returncode == 0
        wait_for_log(me, "phone: ok")
        wait_for_log(me, "home: ok")
        wait_idle(me)
        assert git(me, "config", "gitsync.peer").strip() == "phone"  # the hook did not change the default
        assert read_notes(home.dir)["four.txt"] == b"four, committed\n"
        assert read_notes(phone.dir)["four.txt"] == b"four, committed\n"
        status = peers.run_gitsync("status", me).stdout
        assert f"Peer home ({home.url})" in status and f"Peer phone ({phone.url})" in status
        log = peers.run_gitsync("log", me, "--peer", "phone").stdout.splitlines()
        assert log and all(" phone " in line for line in log)
    assert "Traceback" not in home.output()
