"""State refs: what ``forget_peer`` removes, and that it moves the ref like every other move."""

from __future__ import annotations

import pytest

from gitsync.store.git import GitStore
from tests.store.helpers import git


def _synced(store: GitStore, peer: str) -> str:
    head = store.head()
    return store.finish_sync(peer, expected_state=None, files={"state": b"anchor=1\n"}, synced_tree=None,
                             new_commit=None, expected_head=head, message="session\n")


def test_forget_peer_removes_its_state_ref_and_settings_only(store: GitStore) -> None:
    _synced(store, "phone")
    kept = _synced(store, "laptop")
    store.config_set("gitsync.phone.remote", "https://phone.invalid/sync")
    store.config_set("gitsync.peer", "phone")
    head = store.head()
    with pytest.raises(AssertionError, match="lock not held"):
        store.forget_peer("phone")
    with store.lock():
        gone = store.forget_peer("phone")
    assert gone == ["refs/gitsync/phone", "gitsync.phone.remote", "gitsync.peer"]
    assert store.peers() == ["laptop"] and store.state_load("phone") is None
    laptop = store.state_load("laptop")
    assert laptop is not None and laptop.commit == kept
    assert store.head() == head and store.config_get("gitsync.peer") is None
    refs = git(store.root, "for-each-ref", "--format=%(refname)", "refs/gitsync/").split()
    assert "refs/gitsync/phone" not in refs and "refs/gitsync/laptop" in refs
