"""Symlink-proof file operations below the notes folder.

Every operation walks from an open descriptor of the work-tree root, one component at a time, with
``O_NOFOLLOW | O_DIRECTORY``: a symlinked folder anywhere on the way (even one swapped in while we
work) makes the call fail instead of writing outside the notes folder.  Files are replaced by
:func:`gitsync.atomic.atomic_write` relative to their folder's descriptor (a temporary file named
``TEMP_PREFIX...`` in the same folder, then ``os.replace``), so a reader (or a crash) sees the old
file or the new one, never half of one.  No pygit2 here.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import stat
from pathlib import Path

from gitsync.atomic import atomic_write
from gitsync.store._names import TEMP_PREFIX, check_path

__all__ = ["Blocked", "Kind", "Worktree"]

logger = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Blocked(Exception):
    """A folder on the way is a symlink, a file or otherwise not a plain folder."""


class Kind(enum.Enum):
    """What is at a path in the work tree."""

    MISSING = "missing"
    FILE = "file"
    OTHER = "other"  # a folder, symlink, fifo... never touched
    BLOCKED = "blocked"  # a parent is not a plain folder


class Worktree:
    """File operations confined to ``root``; use as a context manager to close the root descriptor."""

    def __init__(self, root: Path) -> None:
        self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        """Close the root descriptor."""
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def __enter__(self) -> Worktree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- walking -------------------------------------------------------------------------------

    def _walk(self, parts: list[str], *, create: bool) -> list[int] | None:
        """Open the folders ``parts`` below the root; ``None`` if one is missing and not ``create``.

        Returns the descriptors, root first; the caller closes all but the first.
        """
        fds = [self._root_fd]
        try:
            for part in parts:
                try:
                    fd = os.open(part, _DIR_FLAGS, dir_fd=fds[-1])
                except FileNotFoundError:
                    if not create:
                        self._close(fds)
                        return None
                    try:
                        os.mkdir(part, 0o777, dir_fd=fds[-1])
                    except FileExistsError:
                        pass
                    fd = os.open(part, _DIR_FLAGS, dir_fd=fds[-1])
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise Blocked(f"{'/'.join(parts)}: {part!r} is not a plain folder") from exc
                    raise
                fds.append(fd)
        except BaseException:
            self._close(fds)
            raise
        return fds

    def _close(self, fds: list[int]) -> None:
        for fd in fds[1:]:
            os.close(fd)

    @staticmethod
    def _split(path: str) -> list[str]:
        return check_path(path).split("/")

    # ---- queries -------------------------------------------------------------------------------

    def read(self, path: str) -> tuple[Kind, bytes | None, int]:
        """Return ``(kind, content, st_mode)`` of ``path``; content only for regular files."""
        parts = self._split(path)
        try:
            fds = self._walk(parts[:-1], create=False)
        except Blocked:
            return Kind.BLOCKED, None, 0
        if fds is None:
            return Kind.MISSING, None, 0
        try:
            try:
                st = os.stat(parts[-1], dir_fd=fds[-1], follow_symlinks=False)
            except FileNotFoundError:
                return Kind.MISSING, None, 0
            if not stat.S_ISREG(st.st_mode):
                return Kind.OTHER, None, st.st_mode
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fds[-1])
            with os.fdopen(fd, "rb") as fh:
                return Kind.FILE, fh.read(), st.st_mode
        finally:
            self._close(fds)

    def blocker(self, path: str) -> int | None:
        """The ``st_mode`` of the first component on the way to ``path`` that is not a plain
        folder (a symlink, a file...), None when every folder on the way is one or is missing."""
        parts = self._split(path)
        fd = os.dup(self._root_fd)
        try:
            for part in parts[:-1]:
                try:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        return st.st_mode
                    new = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    return None
                os.close(fd)
                fd = new
            return None
        finally:
            os.close(fd)

    def is_regular_file(self, path: str) -> bool:
        """Whether ``path`` is a regular file reached without following symlinks."""
        parts = self._split(path)
        try:
            fds = self._walk(parts[:-1], create=False)
        except Blocked:
            return False
        if fds is None:
            return False
        try:
            st = os.stat(parts[-1], dir_fd=fds[-1], follow_symlinks=False)
        except OSError:
            return False
        finally:
            self._close(fds)
        return stat.S_ISREG(st.st_mode)

    # ---- changes -------------------------------------------------------------------------------

    def write(self, path: str, data: bytes, *, executable: bool, old_mode: int = 0) -> None:
        """Atomically replace (or create) the file ``path`` with ``data``, creating folders.

        Keeps the permission bits of the file it replaces (``old_mode``), adjusting only the
        executable bits to ``executable``; a new file gets 0666/0777 less the umask.
        """
        parts = self._split(path)
        fds = self._walk(parts[:-1], create=True)
        assert fds is not None
        dfd = fds[-1]
        if old_mode:
            perm = stat.S_IMODE(old_mode) & 0o777
            perm = perm | ((perm & 0o444) >> 2) if executable else perm & ~0o111
            mode: int | None = perm
        else:
            mode = None  # 0666/0777 less the umask, as for any new file
        try:
            atomic_write(parts[-1], data, mode=mode, new_mode=0o777 if executable else 0o666,
                         dir_fd=dfd, temp_prefix=TEMP_PREFIX)
        finally:
            self._close(fds)

    def remove(self, path: str, *, prune: bool = True) -> None:
        """Delete the file ``path`` (not a folder) and then folders it leaves empty."""
        parts = self._split(path)
        fds = self._walk(parts[:-1], create=False)
        if fds is None:
            return
        try:
            try:
                os.unlink(parts[-1], dir_fd=fds[-1])
            except FileNotFoundError:
                pass
            if prune:
                self._prune(parts, fds)
        finally:
            self._close(fds)

    def prune(self, path: str) -> None:
        """Remove the folders of ``path`` that are empty, deepest first, never the root."""
        parts = self._split(path)
        try:
            fds = self._walk(parts[:-1], create=False)
        except Blocked:
            return
        if fds is None:
            return
        try:
            self._prune(parts, fds)
        finally:
            self._close(fds)

    @staticmethod
    def _prune(parts: list[str], fds: list[int]) -> None:
        # fds[i] is the folder parts[:i]; remove parts[i-1] from fds[i-1] while empty.
        for i in range(len(fds) - 1, 0, -1):
            try:
                os.rmdir(parts[i - 1], dir_fd=fds[i - 1])
            except OSError:
                break
