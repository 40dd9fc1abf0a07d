"""Taking over a folder that pysyncml's sync-notes has been syncing: no duplicates, `.sync/` ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitsync.app import pysyncml_import
from gitsync.store.git import GitStore
from tests import peers
from tests.helpers import git, read_notes, write_notes


def test_sync_state_folder_is_never_a_note(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    write_notes(fresh, {"a.txt": b"a\n", ".sync/notes.db": b"SQLite format 3\0", ".sync/o.yaml": b"x\n"})
    store = GitStore.open(fresh)  # a new repository
    head = store.head()
    assert head is not None
    assert list(store.list_notes(store.tree_of(head))) == ["a.txt"]
    assert git(fresh, "status", "--porcelain") == ""

    existing = tmp_path / "existing"
    write_notes(existing, {"a.txt": b"a\n"})
    GitStore.open(existing)
    write_notes(existing, {".sync/syncml.db": b"SQLite format 3\0"})
    pysyncml_import.exclude_state_folder(existing)  # what `gitsync-notes sync` does first
    pysyncml_import.exclude_state_folder(existing)  # idempotent
    assert (existing / ".git" / "info" / "exclude").read_text().count("/.sync/") == 1
    assert git(existing, "status", "--porcelain") == ""


@pytest.mark.interop
def test_take_over_a_sync_notes_folder_without_duplicates(tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    client = tmp_path / "client"
    notes = {f"c{i}.txt": f"note {i}\nsecond line\n".encode() for i in range(6)}
    write_notes(client, notes)
    with peers.PysyncmlServer(tmp_path / "server") as server:
        peers.run_pysyncml_client(client, url=server.url, devid="old-pysyncml-dev", check=True)
        assert read_notes(server.dir) == notes
        # edits on both sides while nobody syncs
        write_notes(client, {"c1.txt": b"note 1, edited before the takeover\n", "c2.txt": None,
                             "c-new.txt": b"added before the takeover\n"})
        write_notes(server.dir, {"c3.txt": b"note 3, edited on the server\n"})

        res = peers.run_gitsync("sync", client)  # no --remote, no --id: both come from .sync
        assert "took over sync-notes' state (6 known notes, 2 changed or deleted and 1 new" in res.stderr
        assert "|  notes |  <>  |" in res.stdout  # a two-way sync, not a slow one
        expected = dict(notes)
        del expected["c2.txt"]
        expected.update({
            "c1.txt": b"note 1, edited before the takeover\n",
            "c-new.txt": b"added before the takeover\n",
            "c3.txt": b"note 3, edited on the server\n",
        })
        assert read_notes(server.dir) == expected  # nothing duplicated
        assert read_notes(client) == expected
        assert git(client, "config", "gitsync.deviceid").strip() == "old-pysyncml-dev"
        assert git(client, "config", "gitsync.remote").strip() == server.url
        assert not [p for p in git(client, "ls-files").splitlines() if p.startswith(".sync")]
        assert git(client, "status", "--porcelain") == ""
        res = peers.run_gitsync("sync", client)
        assert "No changes." in res.stdout
        # later edits keep flowing both ways
        write_notes(client, {"c0.txt": b"note 0, by gitsync\n"})
        peers.run_gitsync("sync", client, "-q")
        assert read_notes(server.dir)["c0.txt"] == b"note 0, by gitsync\n"
