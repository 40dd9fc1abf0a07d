"""The store's record of notes a sync could not write (``refs/gitsync/unwritten``), below the app layer."""

from __future__ import annotations

from pathlib import Path

from gitsync.store.git import GitStore
from gitsync.store.unwritten import REF
from tests.store.helpers import git

PEER = "phone"


def _session(store: GitStore, writes: dict[str, bytes], deletes: tuple[str, ...] = (),
             state: str | None = None) -> str:
    """One committed session that brings ``writes``/``deletes`` from the peer; returns the state."""
    head = store.head()
    base = store.tree_of(head) if head else None
    tree = store.build_tree(base, {p: store.write_blob(d) for p, d in writes.items()}, list(deletes))
    commit = store.commit_tree(tree, [head] if head else [], "sync: from phone")
    return store.finish_sync(PEER, expected_state=state, files={"state": b"x"}, synced_tree=tree,
                             new_commit=commit, expected_head=head, message="sync with phone")


def test_a_name_the_filesystem_refuses_stays_recorded_not_deleted(store: GitStore, notes: Path) -> None:
    long_name = "n" * 300 + ".txt"  # longer than any Linux filesystem takes (255 bytes)
    head_before = store.head()
    _session(store, {long_name: b"from a peer with long names\n"})
    [entry] = store.unwritten()
    assert (entry.path, entry.reason) == (long_name, "name")
    assert entry.error == "File name too long"
    head = store.head()
    assert head != head_before
    # the next scan neither commits a delete nor lists a change
    assert store.commit_worktree("local changes") == head
    assert store.scan_worktree_tree() == store.tree_of(head)
    assert git(notes, "cat-file", "-t", f"{REF}:blobs/{entry.new}").strip() == "blob"  # safe from gc


def test_a_later_session_for_the_same_path_replaces_the_pending_note(store: GitStore, notes: Path) -> None:
    (notes / "x.txt").mkdir()
    state = _session(store, {"x.txt": b"one\n"})
    [first] = store.unwritten()
    assert first.found.value == "obstacle"
    state = _session(store, {"x.txt": b"two\n"}, state=state)  # still blocked: the entry follows
    [second] = store.unwritten()
    assert second.old is None and second.new != first.new
    (notes / "x.txt").rmdir()
    reopened = GitStore.open(notes)  # taking the lock writes it
    assert (notes / "x.txt").read_bytes() == b"two\n"
    assert reopened.unwritten() == []
    assert git(notes, "for-each-ref", REF) == ""
    _session(reopened, {}, ("x.txt",), state=state)
    assert not (notes / "x.txt").exists()


def test_a_peer_cannot_be_named_like_the_record(store: GitStore) -> None:
    _session(store, {"a.txt": b"a\n"})
    store.finish_sync("unwritten", expected_state=None, files={"state": b"y"}, synced_tree=None,
                      new_commit=None, expected_head=store.head(), message="sync with unwritten")
    assert store.peers() == [PEER, "unwritten"]
    snap = store.state_load("unwritten")
    assert snap is not None and snap.files == {"state": b"y"}
    assert store.unwritten() == []
