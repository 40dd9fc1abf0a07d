"""Answer ``sync DIR --local`` for a folder that provably did not change, without libgit2.

Importing pygit2 alone costs more than a whole ``git status``.  So after a full ``--local`` the
CLI saves a *receipt* (``.git/gitsync/local-receipt``): the answer it printed, a key of everything
else that answer depends on (the options, HEAD, the branch, our refs, the Git config files), and
the stat data of every note and folder, taken from the stat cache (the private index) after
checking that cache against the disk.  The next ``--local`` re-checks that stat data (one
``lstat`` per file and folder, as ``git status`` does) and reprints the answer; any difference
falls back to the full scan.  The receipt is only a cache: losing it costs speed, never a change.

Safety rules, each a reason to write no receipt (the full scan then runs every time):

* a folder holding anything but notes, folders and symlinks (an ignored file, a nested
  repository, a socket): ignore rules would then matter, and they are not in the key;
* a file or folder whose ctime/mtime is not older than the stat cache (Git's "racy" entries:
  a change in the same clock tick would keep its stat data);
* an index other than version 2/3, a conflict stage, an unfinished sync (a journal ref), notes
  a sync could not write (``refs/gitsync/unwritten``).

A change after the receipt moves a file's or folder's ctime past the recorded one (adding,
removing or renaming an entry changes its folder's mtime), or changes a ref or a config file.
Only the standard library is used here; the rest of ``gitsync.store`` owns pygit2.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from collections.abc import Sequence
from itertools import chain
from operator import attrgetter

from gitsync.atomic import atomic_write
from gitsync.store._names import JOURNAL_COMPONENT, UNWRITTEN_COMPONENT, WORKTREE_COMPONENT

__all__ = ["load", "repo_key", "save"]

RECEIPT = "local-receipt"
_MAGIC = b"gitsync-local-receipt 1 " + sys.byteorder.encode() + b"\n"
_ENV_PREFIXES = ("GIT_", "GITSYNC_")
_ENV_NAMES = ("HOME", "XDG_CONFIG_HOME", "PREFIX")
_UNSAFE_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY")
_U32 = struct.Struct("=I")
_ENTRY = struct.Struct(">IIII4xII8xI20xH")  # ctime s/ns, mtime s/ns, ino, mode, size, flags
_FILE_STAT = attrgetter("st_ctime_ns", "st_ino", "st_size", "st_mtime_ns")
_DIR_STAT = attrgetter("st_ctime_ns", "st_ino", "st_mtime_ns")


def _identity(path: str) -> bytes:
    try:
        st = os.stat(path)
    except OSError:
        return b"-"
    return b"%d:%d:%d:%d" % (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b"-"


def repo_key(root: str, options: Sequence[str]) -> bytes | None:
    """What a ``--local`` answer depends on besides the work tree; None if we cannot tell cheaply.

    ``refs/gitsync/worktree`` is left out: every scan moves it.
    """
    git = os.path.join(root, ".git")
    if not os.path.isdir(git):  # a linked work tree or a .git file: leave it to libgit2
        return None
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    parts = [_MAGIC, root.encode("utf-8", "surrogateescape"), repr(tuple(options)).encode()]
    parts += [f"{k}={v}".encode("utf-8", "surrogateescape") for k, v in sorted(os.environ.items())
              if k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES]
    head = _read(os.path.join(git, "HEAD"))
    parts.append(head)
    if head.startswith(b"ref: "):
        parts.append(_read(os.path.join(git, os.fsdecode(head[5:].strip()))))
    ours = os.path.join(git, "refs", "gitsync")
    for folder, dirs, files in os.walk(ours):
        dirs.sort()
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(folder, name), ours)
            if rel != WORKTREE_COMPONENT:
                parts += [rel.encode("utf-8", "surrogateescape"), _read(os.path.join(folder, name))]
    for path in (os.path.join(git, "packed-refs"), os.path.join(git, "config"),
                 os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config"), "/etc/gitconfig"):
        parts.append(_identity(path))
    return b"\0".join(parts)


# ---- writing a receipt (after a full scan) ----------------------------------------------------

def _index_stats(path: str) -> tuple[dict[bytes, tuple[int, int, int, int]], int] | None:
    """Path -> (ctime_ns, ino, size, mtime_ns) of the index at ``path`` (as stored: inode, size
    and seconds are 32-bit) and the index's mtime; None for anything unusual."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
            index_mtime = os.fstat(fh.fileno()).st_mtime_ns
    except OSError:
        return None
    if len(data) < 12 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3):
        return None
    entries: dict[bytes, tuple[int, int, int, int]] = {}
    off = 12
    try:
        for _ in range(count):
            cs, cn, ms, mn, ino, mode, size, flags = _ENTRY.unpack_from(data, off)
            extended = 2 if version == 3 and flags & 0x4000 else 0
            if flags & 0x3000 or mode not in (0o100644, 0o100755):  # a conflict stage, a link
                return None
            start = off + 62 + extended
            end = data.index(b"\0", start)
            entries[data[start:end]] = (cs * 10**9 + cn, ino, size, ms * 10**9 + mn)
            off += ((62 + extended + end - start + 8) >> 3) << 3
    except (struct.error, ValueError):
        return None
    return entries, index_mtime


def _walk(root: bytes) -> tuple[dict[bytes, os.stat_result], list[tuple[bytes, os.stat_result]]] | None:
    """Every regular file and folder under ``root`` (not ``.git``, not following symlinks);
    None if anything else but symlinks is there."""
    files: dict[bytes, os.stat_result] = {}
    dirs: list[tuple[bytes, os.stat_result]] = []
    stack = [b""]
    while stack:
        rel = stack.pop()
        here = os.path.join(root, rel) if rel else root
        try:
            dirs.append((rel, os.lstat(here)))
            with os.scandir(here) as it:
                for entry in it:
                    name = entry.name
                    path = rel + b"/" + name if rel else name
                    if entry.is_symlink():
                        continue  # never a note
                    if entry.is_dir(follow_symlinks=False):
                        if name == b".git":
                            if rel:
                                return None  # a nested repository
                            continue
                        stack.append(path)
                    elif entry.is_file(follow_symlinks=False):
                        files[path] = entry.stat(follow_symlinks=False)
                    else:
                        return None
        except OSError:
            return None
    return files, dirs


def save(root: str, key: bytes, output: str) -> bool:
    """Record ``output`` as the ``--local`` answer for the work tree as it is now, if provably so."""
    if any(k in os.environ for k in _UNSAFE_ENV) or any(k.startswith("GITSYNC_") for k in os.environ):
        return False  # another repository layout, or fault injection: keep the full path
    gitsync_dir = os.path.join(root, ".git", "gitsync")
    journals = os.path.join(root, ".git", "refs", "gitsync", JOURNAL_COMPONENT)
    if os.path.isdir(journals) and os.listdir(journals):
        return False  # an unfinished sync: the next full open recovers it
    if os.path.exists(os.path.join(root, ".git", "refs", "gitsync", UNWRITTEN_COMPONENT)):
        return False  # notes a sync could not write: the next run tries again
    indexed = _index_stats(os.path.join(gitsync_dir, "index"))
    walked = _walk(os.fsencode(root))
    if indexed is None or walked is None:
        return False
    entries, index_mtime = indexed
    files, dirs = walked
    if files.keys() != entries.keys():
        return False  # an untracked (e.g. ignored) file, or the cache is behind
    mask = 0xFFFFFFFF
    paths: list[bytes] = []
    fstats = array("q")
    for path, st in files.items():
        want = entries[path]
        got = (st.st_ctime_ns, st.st_ino, st.st_size, st.st_mtime_ns)
        if (
            (got[0] // 10**9 & mask, got[0] % 10**9) != divmod(want[0], 10**9)
            or (got[3] // 10**9 & mask, got[3] % 10**9) != divmod(want[3], 10**9)
            or got[1] & mask != want[1]
            or got[2] & mask != want[2]
            or max(got[0], got[3]) >= index_mtime
        ):
            return False  # stat-dirty or racy: the cache does not prove this file's content
        paths.append(path)
        fstats.extend(got)
    dpaths: list[bytes] = []
    dstats = array("q")
    for path, st in dirs:
        got3 = _DIR_STAT(st)
        if max(got3[0], got3[2]) >= index_mtime:
            return False
        dpaths.append(path)
        dstats.extend(got3)
    body = [_MAGIC]
    for blob in (key, output.encode("utf-8", "surrogateescape"), b"\0".join(paths), fstats.tobytes(),
                 b"\0".join(dpaths), dstats.tobytes()):
        body += [_U32.pack(len(blob)), blob]
    try:
        atomic_write(os.path.join(gitsync_dir, RECEIPT), b"".join(body))
    except OSError:  # a read-only .git: no receipt, the full scan runs next time
        pass
        return False
    return True


# ---- using a receipt ----------------------------------------------------------------------------

def _fields(data: bytes) -> list[bytes] | None:
    if not data.startswith(_MAGIC):
        return None
    out = []
    off = len(_MAGIC)
    for _ in range(6):
        if off + 4 > len(data):
            return None
        (size,) = _U32.unpack_from(data, off)
        off += 4
        out.append(data[off : off + size])
        off += size
    return out if off == len(data) else None


def load(root: str, key: bytes) -> str | None:
    """The saved ``--local`` answer if nothing it depends on changed since; else None.

    Runs with ``root`` as the working directory (restored after): relative ``lstat`` calls are
    the cheapest Python offers, and this loop is most of the cost of an unchanged ``--local``.
    """
    try:
        with open(os.path.join(root, ".git", "gitsync", RECEIPT), "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = _fields(data)
    if fields is None or fields[0] != key:
        return None
    _, output, pathblob, fstats, dirblob, dstats = fields
    expect_files, expect_dirs = array("q"), array("q")
    expect_files.frombytes(fstats)
    expect_dirs.frombytes(dstats)
    dirs = [p or b"." for p in dirblob.split(b"\0")]
    paths = pathblob.split(b"\0") if pathblob else []
    try:
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        os.chdir(root)
        lstat = os.lstat
        if array("q", chain.from_iterable(map(_DIR_STAT, map(lstat, dirs)))) != expect_dirs:
            return None
        if array("q", chain.from_iterable(map(_FILE_STAT, map(lstat, paths)))) != expect_files:
            return None
    except OSError:
        return None  # a file or folder is gone
    finally:
        os.fchdir(cwd)
        os.close(cwd)
    return output.decode("utf-8", "surrogateescape")
