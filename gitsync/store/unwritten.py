"""Notes a sync could not write into the folder, kept in Git until they are written.

After a session's commit point the branch holds the peer's notes and the work tree follows.  When
a write fails there (disk full, permissions, a read-only mount, a file, folder or symlink in the
way, a name the filesystem refuses), the folder still holds what was there before: read back as
it is, that would be the user's deletion or revert of the note, and the next sync would send it to
every peer.  So each failed update is recorded in ``refs/gitsync/unwritten`` (a commit whose tree
lists the entries and keeps their blobs), recorded before the session's journal is dropped, and:

* whoever takes the repository lock next writes them first (``gitsync.store.checkout``);
* until then a scan reads such a path as the note it should hold (:func:`decide`);
* a change the user made there meanwhile (other bytes at that path) wins: the entry is dropped
  and the change syncs like any edit.

The model, the decision and the messages are pure; :class:`Ledger` reads and writes the ref.
"""

from __future__ import annotations

import enum
import errno
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import pygit2
from pygit2 import Oid, Signature
from pygit2.enums import FileMode

from gitsync.store._names import UNWRITTEN_COMPONENT
from gitsync.store._worktree import Blocked

__all__ = [
    "REF",
    "Found",
    "Ledger",
    "Seen",
    "Unwritten",
    "Verdict",
    "advice",
    "decide",
    "describe",
    "reason_of",
]

REF: Final = f"refs/gitsync/{UNWRITTEN_COMPONENT}"
_LIST: Final = "unwritten"
_BLOBS: Final = "blobs"


class Found(enum.Enum):
    """What the failed update left at the path."""

    OLD = "old"  # the file with the store's old content (a failed replace never removes it)
    MISSING = "missing"
    OBSTACLE = "obstacle"  # a folder, symlink or other non-file, or a non-folder on the way
    UNKNOWN = "unknown"  # it could not even be read


class Seen(enum.Enum):
    """What is at the path now (see :func:`decide`)."""

    FILE = "file"
    MISSING = "missing"
    OBSTACLE = "obstacle"
    UNREADABLE = "unreadable"


class Verdict(enum.Enum):
    """What to do with an entry, given what is at its path now."""

    DONE = "done"  # the path already holds the note (or, for a delete, no file)
    APPLY = "apply"  # untouched since the failure: write (delete) now; scans read it as done
    KEEP = "keep"  # still in the way or unreadable: stays recorded; scans read it as done
    USER = "user"  # the user changed the path meanwhile: their change wins, the entry goes


@dataclass(frozen=True, slots=True)
class Unwritten:
    """One update of the work tree that did not happen: ``path`` from ``old`` to ``new``.

    Blob ids are hex strings; ``new`` None is a delete.  ``reason`` is one of the keys of
    :data:`_ADVICE`; ``error`` is the system's message.
    """

    path: str
    old: str | None
    new: str | None
    mode: int
    found: Found
    reason: str
    error: str

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "old": self.old, "new": self.new, "mode": self.mode,
                "found": self.found.value, "reason": self.reason, "error": self.error}

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Unwritten:
        path, old, new, mode = obj["path"], obj.get("old"), obj.get("new"), obj.get("mode")
        if not isinstance(path, str) or not isinstance(mode, int):
            raise ValueError(f"bad unwritten entry {obj!r}")
        if not (old is None or isinstance(old, str)) or not (new is None or isinstance(new, str)):
            raise ValueError(f"bad unwritten entry {obj!r}")
        return cls(path, old, new, mode, Found(str(obj.get("found", "unknown"))),
                   str(obj.get("reason", "other")), str(obj.get("error", "")))


def decide(entry: Unwritten, seen: Seen, blob: str | None) -> Verdict:
    """The verdict for ``entry`` when the path now holds ``seen`` (``blob``: a file's blob id)."""
    if seen is Seen.UNREADABLE:
        return Verdict.KEEP
    if entry.new is None:  # a delete that failed
        if seen is Seen.FILE:
            return Verdict.APPLY if blob == entry.old else Verdict.USER
        return Verdict.DONE  # no file there any more (a folder or symlink is not a note)
    if seen is Seen.FILE:
        if blob == entry.new:
            return Verdict.DONE
        return Verdict.APPLY if blob == entry.old else Verdict.USER
    if seen is Seen.MISSING:
        if entry.found is Found.OLD and entry.old is not None:
            return Verdict.USER  # the old file was there after the failure: the user deleted it
        return Verdict.APPLY
    return Verdict.KEEP  # something is (still) in the way


def reason_of(exc: BaseException) -> str:
    """Classify why a write failed (a key of :data:`_ADVICE`)."""
    if isinstance(exc, Blocked):
        return "obstacle"
    code = exc.errno if isinstance(exc, OSError) else None
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "space"
    if code in (errno.EACCES, errno.EPERM):
        return "permission"
    if code == errno.EROFS:
        return "readonly"
    if code in (errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EEXIST, errno.ENOTEMPTY):
        return "obstacle"
    if code in (errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ):
        return "name"
    return "other"


_ADVICE: Final = {
    "space": "free some space on the disk of the notes folder",
    "permission": "make the folder writable for this user (check its permissions, `lsattr`/`chattr -i`)",
    "readonly": "mount the notes folder read-write",
    "obstacle": "move what is in the way elsewhere",
    "name": "this filesystem refuses the name: keep the folder on a filesystem that accepts it, or "
            "rename the note on the peer",
    "other": "fix the cause",
}


def advice(entry: Unwritten) -> str:
    """What the user can do about ``entry``."""
    return _ADVICE.get(entry.reason, _ADVICE["other"])


def describe(entry: Unwritten) -> str:
    """One line for the user: which note, why, what to do, and that nothing is lost."""
    what = "not deleted" if entry.new is None else "not written"
    tail = ("; the next sync deletes it (until then it is not read as a note you added)"
            if entry.new is None else
            "; the next sync writes it (until then the missing or old file is not read as your change)")
    return f"{entry.path}: {what} ({entry.error}): {advice(entry)}{tail}"


class Ledger:
    """Reads and replaces ``refs/gitsync/unwritten``; the caller holds the repository lock to save.

    The ref names a parentless commit whose tree has ``unwritten`` (one JSON object per line,
    sorted by path) and ``blobs/<id>`` (the notes to write, kept safe from ``git gc``).
    """

    def __init__(self, repo: pygit2.Repository,
                 cas: Callable[[str, Oid | None, Oid | None, str], None],
                 signature: Callable[[], Signature]) -> None:
        self._repo = repo
        self._cas = cas
        self._signature = signature
        self._memo: tuple[Oid, dict[str, Unwritten]] | None = None

    def target(self) -> Oid | None:
        ref = self._repo.references.get(REF)
        target = ref.target if ref is not None else None
        return target if isinstance(target, Oid) else None

    def load(self) -> tuple[Oid | None, dict[str, Unwritten]]:
        """(the ref's commit, path -> entry); empty when there is nothing to write."""
        target = self.target()
        if target is None:
            return None, {}
        if self._memo is not None and self._memo[0] == target:
            return target, dict(self._memo[1])
        commit = self._repo.get(target)
        entries: dict[str, Unwritten] = {}
        if isinstance(commit, pygit2.Commit) and _LIST in commit.tree:
            blob = self._repo.get(commit.tree[_LIST].id)
            data = bytes(blob.data) if isinstance(blob, pygit2.Blob) else b""
            for line in data.decode("utf-8", "surrogateescape").splitlines():
                if line.strip():
                    entry = Unwritten.from_json(json.loads(line))
                    entries[entry.path] = entry
        self._memo = (target, entries)
        return target, dict(entries)

    def save(self, expected: Oid | None, entries: Mapping[str, Unwritten], message: str) -> None:
        """Replace the ref's entries (compare-and-swap from ``expected``); none removes the ref."""
        if not entries:
            if expected is not None:
                self._cas(REF, expected, None, f"gitsync: {message}")
            self._memo = None
            return
        lines = "".join(json.dumps(entries[p].to_json(), ensure_ascii=True) + "\n" for p in sorted(entries))
        blobs = self._repo.TreeBuilder()
        for entry in entries.values():
            if entry.new is not None and Oid(hex=entry.new) in self._repo:
                blobs.insert(entry.new, Oid(hex=entry.new), FileMode.BLOB)
        tb = self._repo.TreeBuilder()
        tb.insert(_LIST, self._repo.create_blob(lines.encode("utf-8", "surrogateescape")), FileMode.BLOB)
        tb.insert(_BLOBS, blobs.write(), FileMode.TREE)
        sig = self._signature()
        subject = f"gitsync: notes not yet written into the folder ({len(entries)})\n"
        commit = self._repo.create_commit(None, sig, sig, subject, tb.write(), [])
        self._cas(REF, expected, commit, f"gitsync: {message}")
        self._memo = (commit, dict(entries))
