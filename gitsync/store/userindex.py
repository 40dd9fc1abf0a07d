"""The user's index (``.git/index``): read without locking, changed under Git's own lock protocol.

Changes are made on a private copy and installed by writing ``index.lock`` and renaming it over
``index``, as Git does (that rename is Git's protocol, so it is not :func:`gitsync.atomic.atomic_write`).
gitsync takes ``index.lock`` only under the repository lock and as a hard link of
``.git/gitsync/index.lock.<pid>``, so a lock a killed gitsync left is provably its own and removed;
any other ``index.lock`` is Git's (``git commit`` holds it while the editor is open) and is waited
for, then reported, never removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pygit2
from pygit2 import Oid

from gitsync.errors import RepositoryStateError
from gitsync.store.locking import RepoLock
from gitsync.store.objects import Objects

__all__ = ["INDEX_LOCK_WAIT_SECONDS", "IndexChanged", "IndexEdit", "UserIndex", "index_version"]

logger = logging.getLogger(__name__)

#: How long a ``.git/index.lock`` may stay before we call the index busy (``git status`` run by an
#: editor holds it for milliseconds).
INDEX_LOCK_WAIT_SECONDS: Final = 2.0


class IndexEdit:
    """The user's index, loaded from a copy (on first use) while we hold ``.git/index.lock``.

    Callers that only replace it (``replacement``) never parse its 2 MB at 20,000 notes.  ``holds``
    names the tree the installed index will hold, when the caller knows it.
    """

    def __init__(self, source: Path, copy: Path, existed: bool, version: tuple[Any, ...] | None) -> None:
        self._source = source
        self._copy = copy
        self._index: pygit2.Index | None = None
        self.existed = existed
        self.version = version
        self.dirty = False
        self.replacement: Path | None = None
        self.holds: Oid | None = None

    @property
    def index(self) -> pygit2.Index:
        if self._index is None:
            if self.existed:
                shutil.copyfile(self._source, self._copy)
            else:
                self._copy.unlink(missing_ok=True)
            try:
                self._index = pygit2.Index(str(self._copy))
            except pygit2.GitError as exc:
                raise RepositoryStateError(f"cannot read {self._source}: {exc}") from exc
        return self._index


class IndexChanged(Exception):
    """The user's index changed while we read it; read again."""


def index_version(path: Path) -> tuple[Any, ...] | None:
    """Identity of an index file's content: its trailing checksum plus stat data (None: no file).

    The stat part covers ``index.skipHash`` (zero checksum); the checksum covers a same-second
    rewrite of the same size.
    """
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_size >= 32:
                fh.seek(-20, os.SEEK_END)
                tail = fh.read(20)
            else:
                tail = b""
    except FileNotFoundError:
        return None
    return (tail, st.st_size, st.st_mtime_ns, st.st_ino)


class UserIndex:
    """The user's index of one repository, and what we know of the tree it holds.

    ``staged_cache`` is (the index file's version, the tree it holds): an unchanged index is not
    parsed again, and one we installed ourselves is known without parsing it at all.
    """

    def __init__(self, repo: pygit2.Repository, git_dir: Path, root: Path, lock: RepoLock,
                 objects: Objects, head: Callable[[], str | None]) -> None:
        self._repo = repo
        self._gitdir = git_dir
        self.root = root
        self._lock = lock
        self._objects = objects
        self._head = head
        self.staged_cache: tuple[tuple[Any, ...], Oid | None] | None = None

    def wait_lock(self) -> bool:
        """Wait up to ``INDEX_LOCK_WAIT_SECONDS`` for ``.git/index.lock`` to go; whether it went."""
        lock = self._gitdir / "index.lock"
        self.clear_own_stale_lock()
        deadline = time.monotonic() + INDEX_LOCK_WAIT_SECONDS
        while lock.exists():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _take_lock(self, lock_path: Path) -> int:
        """Create ``index.lock`` (O_EXCL semantics: FileExistsError if taken) as a hard link of
        ``.git/gitsync/index.lock.<pid>``, so a lock a killed gitsync leaves is provably its own."""
        mark = self._gitdir / "gitsync" / f"index.lock.{os.getpid()}"
        mark.parent.mkdir(exist_ok=True)
        mark.unlink(missing_ok=True)
        fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            os.link(mark, lock_path)
        except BaseException as exc:
            os.close(fd)
            mark.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):  # no hard links here
                return os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            raise
        return fd

    def clear_own_stale_lock(self) -> None:
        """Remove an ``index.lock`` that a killed gitsync process left behind.

        Only the holder of ``gitsync.lock`` judges, and only a lock that is the same file as a
        ``.git/gitsync/index.lock.<pid>`` mark: gitsync takes index.lock only under gitsync.lock, so
        such a mark belongs to a process that died.  Any other index.lock is Git's and is kept.
        """
        if not self._lock.held:
            return
        lock = self._gitdir / "index.lock"
        removed = False
        for mark in (self._gitdir / "gitsync").glob("index.lock.*"):
            try:
                if lock.exists() and os.path.samefile(lock, mark):
                    age = time.time() - lock.stat().st_mtime
                    logger.warning("removing %s left by gitsync process %s, which died %.0f s ago",
                                   lock, mark.suffix.lstrip("."), age)
                    lock.unlink()
                    removed = True
                mark.unlink()
            except FileNotFoundError:
                continue
        if removed:
            self._repair()

    def _repair(self) -> None:
        """A gitsync was killed while installing the user's index for the commit it had just made:
        if the index is exactly HEAD's parent, bring it to HEAD (else the user's staging is kept)."""
        index_path = self._gitdir / "index"
        head = self._head()
        if head is None or not index_path.is_file():
            return
        commit = self._objects.commit(head)
        if not commit.parent_ids:
            return
        try:
            staged = pygit2.Index(str(index_path)).write_tree(self._repo)
        except pygit2.GitError:
            return
        if staged != self._objects.commit(str(commit.parent_ids[0])).tree_id:
            return
        with self.edit(required=False) as user:
            if user is not None:
                user.index.read_tree(commit.tree)
                user.dirty = True
                logger.warning("the Git index was left at the commit before %s; updated it", head[:12])

    @contextlib.contextmanager
    def edit(self, *, required: bool) -> Iterator[IndexEdit | None]:
        """The user's ``.git/index`` under Git's own lock protocol (``index.lock``, then rename).

        Changes are made on a private copy and installed by writing ``index.lock`` and renaming it
        over ``index``, as Git does.  If the lock is taken: ``RepositoryStateError`` when
        ``required``, else a warning and ``None``.
        """
        index_path = self._gitdir / "index"
        lock_path = self._gitdir / "index.lock"
        self.clear_own_stale_lock()
        fd = -1
        deadline = time.monotonic() + INDEX_LOCK_WAIT_SECONDS
        while fd < 0:
            try:
                fd = self._take_lock(lock_path)
            except FileExistsError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
        if fd < 0:
            if required:
                raise RepositoryStateError(f"{lock_path} exists: another git command is running") from None
            logger.warning("%s exists: the Git index was not updated; `git status` may show the "
                           "sync's changes as staged until you run `git reset -q`", lock_path)
            yield None
            return
        tmp = self._gitdir / "gitsync" / "index.user"
        tmp.parent.mkdir(exist_ok=True)
        installed = False
        try:
            tmp.with_name("index.user.lock").unlink(missing_ok=True)
            existed = index_path.is_file()
            version = index_version(index_path)  # stable: we hold index.lock
            handle = IndexEdit(index_path, tmp, existed, version)
            yield handle
            if handle.replacement is not None or handle.dirty:
                if handle.replacement is None:
                    handle.index.write()
                    source = tmp
                else:
                    source = handle.replacement
                data = source.read_bytes()
                with os.fdopen(fd, "wb") as fh:
                    fd = -1
                    fh.write(data)
                os.replace(lock_path, index_path)
                installed = True
                installed_version = index_version(index_path)
                if handle.holds is not None and installed_version is not None:
                    self.staged_cache = (installed_version, handle.holds)  # no re-parse next time
        finally:
            if fd >= 0:
                os.close(fd)
            if not installed:
                lock_path.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
            (self._gitdir / "gitsync" / f"index.lock.{os.getpid()}").unlink(missing_ok=True)

    def read_staged(
        self, head_tree: pygit2.Tree | None
    ) -> tuple[tuple[Any, ...] | None, pygit2.Tree | None]:
        """(version, tree) of the user's index, read without locking; HEAD's tree if there is none.

        Cached by the index file's version, so an unchanged index costs one small read.
        """
        path = self._gitdir / "index"
        version = index_version(path)
        if version is None:
            return None, head_tree
        if self.staged_cache is not None and self.staged_cache[0] == version:
            cached = self.staged_cache[1]
            return version, self._objects.tree(cached) if cached is not None else head_tree
        try:
            index = pygit2.Index(str(path))
        except pygit2.GitError as exc:
            if index_version(path) != version:
                raise IndexChanged from exc
            raise RepositoryStateError(f"cannot read {path}: {exc}") from exc
        if index_version(path) != version:
            raise IndexChanged
        if index.conflicts is not None:
            raise RepositoryStateError(f"{self.root} has unmerged paths: resolve them first")
        try:
            staged_id: Oid | None = index.write_tree(self._repo)
        except pygit2.GitError as exc:
            logger.warning("cannot read what is staged in .git/index (%s); committing the work tree "
                           "on top of HEAD", exc)
            staged_id = None
        self.staged_cache = (version, staged_id)
        return version, self._objects.tree(staged_id) if staged_id is not None else head_tree

    def tree_of(self, user: IndexEdit) -> Oid | None:
        """The tree the user's index holds: known without parsing it when ``read_staged`` (or our
        own last install) saw this very version of the file."""
        cached = self.staged_cache
        if cached is not None and user.version is not None and cached[0] == user.version:
            return cached[1]
        try:
            return user.index.write_tree(self._repo)
        except pygit2.GitError:
            return None
