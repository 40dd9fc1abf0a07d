"""The repository lock: ``flock`` of ``.git/gitsync.lock``, re-entrant within one store object.

Every ref update and every write of the private index happens under it.  The kernel drops an
``flock`` when its holder dies, so the lock is never stale; holding it is also what lets the
store call its own ``refs/gitsync/**.lock`` files stale (see :mod:`gitsync.store.refs`).  Whoever
takes it first runs ``on_acquire`` (finish the work-tree update of committed sessions, write the
notes an earlier sync could not) before doing anything else with the folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["RepoLock", "folder_lock"]


class RepoLock:
    """``.git/gitsync.lock`` for one store object (one process, one thread)."""

    def __init__(self, git_dir: Path, on_acquire: Callable[[], None]) -> None:
        self._path = git_dir / "gitsync.lock"
        self._on_acquire = on_acquire
        self._fd: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._depth > 0

    def require(self) -> None:
        """Fail loudly when a caller that must hold the lock does not."""
        if not self._depth:  # pragma: no cover - programming error
            raise AssertionError("GitStore internal: repository lock not held")

    @contextlib.contextmanager
    def hold(self, wait: float) -> Iterator[bool]:
        """Hold the lock, waiting up to ``wait`` seconds; yields whether we hold it."""
        if self._depth:
            self._depth += 1
            try:
                yield True
            finally:
                self._depth -= 1
            return
        fd = self._acquire(wait)
        if fd is None:
            yield False
            return
        self._fd, self._depth = fd, 1
        try:
            self._on_acquire()
            yield True
        finally:
            self._fd, self._depth = None, 0
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _acquire(self, wait: float) -> int | None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            left = deadline - time.monotonic()
            if left <= 0:
                os.close(fd)
                return None
            time.sleep(min(0.05, left))


@contextlib.contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """``flock`` of the folder itself, for creating a repository there: two processes (the hook
    and a manual sync) creating the same repository at once would fight over ``.git/config.lock``."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
