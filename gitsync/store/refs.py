"""Refs move only by compare-and-swap: :meth:`Refs.set_if_equals` is the one way to move one.

Each move is a libgit2 ref transaction (lock, compare, set) taken under the repository lock
(:mod:`gitsync.store.locking`).  Stale lock files:

* ``refs/gitsync/**.lock`` is ours: no live gitsync can own one while we hold the repository
  lock, so it is removed once it is ``STALE_GITSYNC_LOCK_SECONDS`` old (the grace covers a
  ``git pack-refs`` that may hold it for milliseconds);
* lock files Git itself creates (``refs/heads/*.lock``, ``packed-refs.lock``) are removed only
  after ``STALE_FOREIGN_LOCK_SECONDS``, unless ``.git/gitsync/ref-claim`` shows that a gitsync
  process, now dead, was moving that ref when the lock appeared (a claim is written before each
  branch update).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pygit2
from pygit2 import Oid, Signature

from gitsync.errors import StoreError
from gitsync.store import _names
from gitsync.store.locking import RepoLock

__all__ = [
    "JOURNAL_PREFIX",
    "STALE_FOREIGN_LOCK_SECONDS",
    "STALE_GITSYNC_LOCK_SECONDS",
    "STATE_PREFIX",
    "WORKTREE_REF",
    "RefLocked",
    "RefMoved",
    "Refs",
]

logger = logging.getLogger(__name__)

STATE_PREFIX: Final = "refs/gitsync/"
JOURNAL_PREFIX: Final = f"refs/gitsync/{_names.JOURNAL_COMPONENT}/"
WORKTREE_REF: Final = f"refs/gitsync/{_names.WORKTREE_COMPONENT}"
STALE_GITSYNC_LOCK_SECONDS: Final = 5.0
STALE_FOREIGN_LOCK_SECONDS: Final = 600.0


class RefMoved(StoreError):
    """A compare-and-swap found another value than expected."""


class RefLocked(StoreError):
    """A ref's lock file is held (by a live process, or a crash too recent to call stale)."""


class Refs:
    """The refs of one repository, read freely and moved by compare-and-swap under ``lock``.

    ``signature`` is called before each move: it also sets the identity libgit2 writes into
    the reflog.
    """

    def __init__(self, repo: pygit2.Repository, git_dir: Path, lock: RepoLock,
                 signature: Callable[[], Signature]) -> None:
        self._repo = repo
        self._gitdir = git_dir
        self._lock = lock
        self._signature = signature

    def target(self, name: str) -> Oid | None:
        """The commit ``name`` points at, None when the ref does not exist."""
        ref = self._repo.references.get(name)
        if ref is None:
            return None
        target = ref.target
        if not isinstance(target, Oid):
            raise StoreError(f"{name} is a symbolic ref; expected a commit")
        return target

    def set_if_equals(self, name: str, expected: Oid | None, new: Oid | None, message: str) -> None:
        """Move ``name`` from ``expected`` to ``new`` (None: absent) or raise; nothing else changes.

        Raises ``RefMoved`` when ``name`` is elsewhere, ``RefLocked`` when its lock file is held.
        """
        self._lock.require()
        self._signature()
        if name.startswith(STATE_PREFIX):
            self._set_once(name, expected, new, message)
            return
        claim = self._claim_path
        lock = self._gitdir / f"{name}.lock"
        if lock.exists() and self._dead_claim(name, lock):
            logger.warning("removing %s: a gitsync process was killed while it moved %s", lock, name)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        try:
            claim.write_text(f"{os.getpid()}\n{name}\n", encoding="utf-8")
        except OSError:
            pass  # the claim only speeds up recovery from a crash
        try:
            self._set_once(name, expected, new, message)
        finally:
            with contextlib.suppress(OSError):
                claim.unlink()

    def foreign_lock(self, name: str) -> Path | None:
        """A lock file of ``name`` that a live Git command may hold (young, not a dead gitsync's)."""
        lock = self._gitdir / f"{name}.lock"
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return None
        if self._dead_claim(name, lock):
            return None  # a crashed gitsync's: the update removes it
        return lock if age < STALE_FOREIGN_LOCK_SECONDS else None

    @property
    def _claim_path(self) -> Path:
        return self._gitdir / "gitsync" / "ref-claim"

    def _dead_claim(self, name: str, lock: Path) -> bool:
        """Whether ``lock`` was left by a gitsync process that died while moving ``name``.

        Only a lock made within seconds of the claim counts: a lock Git makes later is Git's.
        """
        try:
            claim_mtime = self._claim_path.stat().st_mtime
            pid_text, claimed = self._claim_path.read_text(encoding="utf-8").split("\n")[:2]
            lock_mtime = lock.stat().st_mtime
            pid = int(pid_text)
        except (OSError, ValueError):
            return False
        if claimed != name or pid == os.getpid() or not -1.0 <= lock_mtime - claim_mtime <= 2.0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def _set_once(self, name: str, expected: Oid | None, new: Oid | None, message: str) -> None:
        for attempt in range(2):
            try:
                with self._repo.transaction() as tx:
                    tx.lock_ref(name)
                    current = self.target(name)
                    if current != expected:
                        raise RefMoved(f"{name} is at {current}, expected {expected}")
                    if new is None:
                        if current is not None:
                            tx.remove(name)
                    else:
                        tx.set_target(name, new, None, message)
                return
            except RefMoved:
                raise
            except (pygit2.GitError, OSError) as exc:
                if attempt == 0 and self._clear_stale_locks(name):
                    continue
                raise RefLocked(f"cannot update {name}: {exc}") from exc

    def _clear_stale_locks(self, name: str) -> bool:
        """Remove lock files of ``name`` that our rules call stale (see the module docstring)."""
        removed = False
        now = time.time()
        own = name.startswith(STATE_PREFIX)
        own_limit = STALE_GITSYNC_LOCK_SECONDS if own else STALE_FOREIGN_LOCK_SECONDS
        for lock, limit in (
            (self._gitdir / f"{name}.lock", own_limit),
            (self._gitdir / "packed-refs.lock", STALE_FOREIGN_LOCK_SECONDS),
        ):
            try:
                age = now - lock.stat().st_mtime
            except FileNotFoundError:
                continue
            if age >= limit:
                logger.warning("removing stale lock file %s (%.0f s old)", lock, age)
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                removed = True
            else:
                logger.warning("%s is locked by %s (%.1f s old)", name, lock, age)
        return removed
