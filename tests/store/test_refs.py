"""``Refs``: compare-and-swap is the only way a ref moves, and it needs the repository lock."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pygit2
import pytest

from gitsync.store.locking import RepoLock
from gitsync.store.refs import STALE_GITSYNC_LOCK_SECONDS, RefLocked, RefMoved, Refs
from tests.store.helpers import git


def _refs(root: Path) -> tuple[pygit2.Repository, Refs, RepoLock]:
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "two")
    repo = pygit2.Repository(str(root))
    lock = RepoLock(Path(repo.path), lambda: None)
    sig = pygit2.Signature("t", "t@t")
    return repo, Refs(repo, Path(repo.path), lock, lambda: sig), lock


def test_set_if_equals_creates_moves_and_removes_only_from_the_expected_value(tmp_path: Path) -> None:
    repo, refs, lock = _refs(tmp_path)
    two = repo.head.target
    one = repo[two].parent_ids[0]
    name = "refs/gitsync/peer"
    with lock.hold(0.0):
        refs.set_if_equals(name, None, one, "create")
        with pytest.raises(RefMoved):
            refs.set_if_equals(name, None, two, "create again")
        with pytest.raises(RefMoved):
            refs.set_if_equals(name, two, one, "from the wrong value")
        assert refs.target(name) == one
        refs.set_if_equals(name, one, two, "move")
        assert refs.target(name) == two
        refs.set_if_equals(name, two, None, "remove")
    assert refs.target(name) is None
    assert git(tmp_path, "for-each-ref", "refs/gitsync/") == ""


def test_a_stale_lock_of_our_own_ref_is_removed_a_young_one_is_not(tmp_path: Path) -> None:
    repo, refs, lock = _refs(tmp_path)
    head = repo.head.target
    name = "refs/gitsync/peer"
    lock_file = Path(repo.path) / f"{name}.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock_file.touch()
    with lock.hold(0.0):
        with pytest.raises(RefLocked):
            refs.set_if_equals(name, None, head, "young lock: kept")
        assert lock_file.exists()
        old = time.time() - STALE_GITSYNC_LOCK_SECONDS - 1
        os.utime(lock_file, (old, old))
        refs.set_if_equals(name, None, head, "stale lock: removed")
    assert refs.target(name) == head and not lock_file.exists()


def test_moving_a_ref_without_the_repository_lock_is_a_programming_error(tmp_path: Path) -> None:
    repo, refs, _ = _refs(tmp_path)
    with pytest.raises(AssertionError, match="lock not held"):
        refs.set_if_equals("refs/gitsync/peer", None, repo.head.target, "no lock")
