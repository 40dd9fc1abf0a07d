"""Replace a file in one step: a reader, or a crash, sees the old content or the new, never a mix.

Write a temporary file in the same folder (so the rename stays on one file system), then
``os.replace`` it over the target; on any failure the temporary file is removed and the target is
untouched.  Used for the small files of ``.git`` (status, receipts, the hook script, sessions) and
the users file; work-tree notes go through ``gitsync.store._worktree`` (relative to a folder
descriptor, never following a symlink).  Light on imports: the ``--local`` fast path uses it.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["atomic_write"]


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None, durable: bool = False
) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``mode``: the permission bits of the new file, exactly (0o600 for secrets, 0o755 for a
    script); None: 0o666 less the umask, as ``open`` gives.
    ``durable``: fsync the file before the rename and its folder after, so the new content
    survives a power cut too (not only a crash of this process).
    Raises OSError (the target unchanged, no temporary file left).
    """
    target = os.fspath(path)
    folder, name = os.path.split(target)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o666 if mode is None else mode & 0o600)  # never wider while written
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        with contextlib.suppress(OSError):
            dfd = os.open(folder or ".", os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
