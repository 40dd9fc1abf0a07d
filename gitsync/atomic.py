"""Replace a file in one step: a reader, or a crash, sees the old content or the new, never a mix.

Write a temporary file in the same folder (so the rename stays on one file system), then
``os.replace`` it over the target; on any failure the temporary file is removed and the target is
untouched.  The one write-then-rename helper of gitsync: the small files of ``.git`` (status,
receipts, the hook script, sessions), the users file, and the notes themselves
(``gitsync.store._worktree`` passes the folder as a descriptor, so no symlink on the way is
followed, and names the temporary file so that a scan knows it is not a note).  Not for Git's own
lock protocol (``index.lock`` renamed over ``index``), where the lock file is the temporary file.
Light on imports: the ``--local`` fast path uses it.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["atomic_write"]


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None, durable: bool = False,
    dir_fd: int | None = None, new_mode: int = 0o666, temp_prefix: str | None = None,
) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``mode``: the permission bits of the new file, exactly (0o600 for secrets, 0o755 for a
    script); None: ``new_mode`` (0o666) less the umask, as ``open`` gives.
    ``durable``: fsync the file before the rename and its folder after, so the new content
    survives a power cut too (not only a crash of this process).
    ``dir_fd``: ``path`` is a plain name in the folder open as ``dir_fd``.
    ``temp_prefix``: the temporary file is ``<temp_prefix><pid>-<random>`` instead of
    ``.<name>.<pid>.<random>.tmp``.
    Raises OSError (the target unchanged, no temporary file left).
    """
    target = os.fspath(path)
    folder, name = os.path.split(target)
    if dir_fd is not None and folder:
        raise ValueError(f"with dir_fd, {target!r} must be a plain name")
    token = f"{os.getpid()}.{os.urandom(4).hex()}" if temp_prefix is None else \
        f"{os.getpid()}-{os.urandom(4).hex()}"
    tmp = os.path.join(folder, f".{name}.{token}.tmp" if temp_prefix is None else temp_prefix + token)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, new_mode if mode is None else mode & 0o600,  # never wider while written
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if dir_fd is None:
            os.replace(tmp, target)
        else:
            os.replace(tmp, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    if durable:
        if dir_fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)
            return
        with contextlib.suppress(OSError):
            dfd = os.open(folder or ".", os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
