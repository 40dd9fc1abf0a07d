"""Git as the undo: `git revert` of a sync commit, then a sync, undoes the change at the peer too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import peers
from tests.app.helpers import Loopback
from tests.helpers import git, read_notes, write_notes


def _last_sync_commit(root: Path) -> str:
    for line in git(root, "log", "--format=%H %s").splitlines():
        sha, _, subject = line.partition(" ")
        if subject.startswith("sync with "):
            return sha
    raise AssertionError("no sync commit")


def test_revert_of_an_incoming_sync_is_sent_back_as_ordinary_edits(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    a, b = lb.client_dir("a"), lb.client_dir("b")
    write_notes(a, {"keep.txt": b"keep\n", "edit.txt": b"version 1\n", "gone.txt": b"will be deleted\n"})
    lb.sync("a")
    lb.sync("b")
    # b makes three changes; a receives them in one sync commit
    write_notes(b, {"edit.txt": b"version 2\n", "gone.txt": None, "added.txt": b"added on b\n"})
    lb.sync("b")
    report = lb.sync("a")
    assert (report.local.add, report.local.mod, report.local.dele) == (1, 1, 1)
    bad = _last_sync_commit(a)
    assert git(a, "log", "-1", "--format=%s", bad).startswith("sync with server: +1 ~1 -1 in")

    git(a, "revert", "--no-edit", bad)
    expected = {"keep.txt": b"keep\n", "edit.txt": b"version 1\n", "gone.txt": b"will be deleted\n"}
    assert read_notes(a) == expected
    report = lb.sync("a")
    assert report.mode == "two-way"
    assert (report.remote.add, report.remote.mod, report.remote.dele) == (1, 1, 1)
    assert read_notes(lb.server_dir) == expected
    lb.sync("b")
    assert read_notes(b) == expected
    # and the revert itself can be reverted: history is the undo stack
    subjects = git(a, "log", "-2", "--format=%s").splitlines()
    assert subjects[0].startswith("sync with server: +0 ~0 -0 in, +1 ~1 -1 out")  # records the sending
    assert subjects[1].startswith("Revert ")
    git(a, "revert", "--no-edit", "HEAD~1")
    lb.sync("a")
    assert read_notes(lb.server_dir)["edit.txt"] == b"version 2\n"


@pytest.mark.interop
def test_revert_round_trip_through_the_cli_with_pysyncml(tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    client = tmp_path / "client"
    client.mkdir()
    write_notes(client, {"a.txt": b"a\n", "b.txt": b"b\n"})
    with peers.PysyncmlServer(tmp_path / "server") as server:
        peers.run_gitsync("sync", client, "--remote", server.url, "--id", "gs-revert", "-q")
        write_notes(server.dir, {"a.txt": b"a, edited on the server\n", "c.txt": b"c from the server\n"})
        peers.run_gitsync("sync", client, "-q")
        assert read_notes(client)["a.txt"] == b"a, edited on the server\n"
        git(client, "revert", "--no-edit", _last_sync_commit(client))
        peers.run_gitsync("sync", client, "-q")
        assert read_notes(server.dir) == {"a.txt": b"a\n", "b.txt": b"b\n"}
        log = peers.run_gitsync("log", client).stdout.splitlines()
        assert "+0 ~1 -1 out" in log[0] and "+1 ~1 -0 in" in log[1]
