"""Bringing the work tree from one tree to another, and the notes a sync could not write.

A file is written or deleted only if its current content is the old blob (or, for a write, it is
missing or already new); otherwise it is the user's edit and is left alone.  Files are replaced
through a temporary file in the same folder (:mod:`gitsync.store._worktree`, relative to a folder
descriptor, never following a symlink) and not fsync'ed (like Git's default).  A write or delete
that fails is recorded in ``refs/gitsync/unwritten`` (:mod:`gitsync.store.unwritten`): retried
by whoever takes the repository lock next, and read as written by every scan until then.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2 import IndexEntry, Oid
from pygit2.enums import DeltaStatus, DiffOption, FileMode

from gitsync.errors import StoreError
from gitsync.store import _names
from gitsync.store._worktree import Blocked, Kind, Worktree
from gitsync.store.crashpoints import crash
from gitsync.store.objects import Objects, is_regular
from gitsync.store.scan import StatCache
from gitsync.store.trees import Trees
from gitsync.store.unwritten import Found, Ledger, Seen, Unwritten, Verdict, decide, describe, reason_of
from gitsync.store.userindex import UserIndex

__all__ = ["Checkout", "Outcome", "PathUpdate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PathUpdate:
    """One regular file to bring from ``old`` to ``new`` in the work tree (None = absent)."""

    path: str
    old: Oid | None
    new: Oid | None
    new_mode: int


class Outcome:
    """What became of one update of the work tree."""


    WRITTEN = "written"
    ALREADY = "already"
    DELETED = "deleted"
    ABSENT = "absent"
    SKIPPED = "skipped"  # the user changed the path: their change wins
    FAILED = "failed"  # the write or delete did not happen: recorded as unwritten


def _after_unwritten(update: PathUpdate, unwritten: Mapping[str, Unwritten]) -> PathUpdate:
    """``update`` as it applies to the folder when an earlier update of its path did not happen:
    the folder still holds that one's old content (or nothing, or an obstacle)."""
    entry = unwritten.get(update.path)
    if entry is None:
        return update
    target = {str(update.old) if update.old is not None else None,
              str(update.new) if update.new is not None else None}
    if entry.new not in target:
        return update  # the branch was moved elsewhere meanwhile: that entry is stale
    return PathUpdate(update.path, Oid(hex=entry.old) if entry.old else None, update.new, update.new_mode)


def _error_text(exc: BaseException) -> str:
    """The system's words for a failed write, without the path (the caller names the note)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Checkout:
    """Updates of one work tree, with the user's index and the stat cache kept in step."""

    def __init__(self, repo: pygit2.Repository, root: Path, objects: Objects, trees: Trees,
                 scan: StatCache, index: UserIndex, ledger: Ledger) -> None:
        self._repo = repo
        self.root = root
        self._objects = objects
        self._trees = trees
        self._scan = scan
        self._index = index
        self._ledger = ledger
        self._told: set[Unwritten] = set()  # unwritten notes already reported by this process

    def unwritten(self) -> list[Unwritten]:
        """The notes committed by a sync but not (yet) written into the folder, by path."""
        _, entries = self._ledger.load()
        return [entries[p] for p in sorted(entries)]

    def _seen(self, wt: Worktree, path: str) -> tuple[Seen, str | None, int]:
        """(what is at ``path``, a file's blob id, its mode) for :func:`decide`."""
        try:
            kind, data, mode = wt.read(path)
        except (OSError, StoreError) as exc:
            logger.debug("cannot read %s: %s", path, exc)
            return Seen.UNREADABLE, None, 0
        if kind is Kind.FILE and data is not None:
            return Seen.FILE, str(pygit2.hash(data)), mode
        return (Seen.MISSING if kind is Kind.MISSING else Seen.OBSTACLE), None, mode

    def _tell(self, entry: Unwritten) -> None:
        """Log ``entry`` once per process (a server retries at every session)."""
        if entry not in self._told:
            self._told.add(entry)
            logger.error("%s", describe(entry))

    def retry_unwritten(self) -> None:
        """Write what earlier syncs could not, before anyone scans the folder (lock held)."""
        if self._ledger.target() is None:
            return
        at, entries = self._ledger.load()
        left: dict[str, Unwritten] = {}
        with Worktree(self.root) as wt:
            for path, entry in entries.items():
                seen, blob, _ = self._seen(wt, path)
                verdict = decide(entry, seen, blob)
                if verdict is Verdict.USER:
                    logger.warning("%s was changed here after a sync could not write it: your version "
                                   "is kept and syncs as your change (the peer's is in `git log -- %s`)",
                                   path, path)
                elif verdict is Verdict.KEEP:
                    left[path] = entry
                elif verdict is Verdict.APPLY:
                    update = PathUpdate(path, Oid(hex=entry.old) if entry.old else None,
                                         Oid(hex=entry.new) if entry.new else None, entry.mode)
                    outcome, failure = (self._apply_delete(wt, update) if update.new is None
                                        else self._apply_write(wt, update))
                    if failure is not None:
                        left[path] = failure
                    elif outcome in (Outcome.WRITTEN, Outcome.DELETED):
                        logger.warning("%s: %s now (a sync could not do it before)", path,
                                       "deleted" if update.new is None else "written")
        crash("unwritten-retried")
        for entry in left.values():
            self._tell(entry)
        if left != entries:
            try:
                self._ledger.save(at, left, "notes written that an earlier sync could not write")
            except (pygit2.GitError, OSError, StoreError) as exc:  # decided again next time
                logger.warning("cannot update the record of notes not yet written: %s", exc)

    def overlay_unwritten(self, tree: Oid) -> Oid:
        """``tree`` (a scan of the folder) with each note not yet written read as written.

        So a failed write is never taken for the user's deletion or revert.  Whatever is in the
        way of such a note (a file ``a`` where ``a/b`` belongs) stays out of the tree, untouched
        on disk, until it is moved.  A change the user made at that path is left to win.
        """
        if self._ledger.target() is None:
            return tree
        _, entries = self._ledger.load()
        writes: dict[str, tuple[Oid, int | None]] = {}
        deletes: list[str] = []
        with Worktree(self.root) as wt:
            for path, entry in entries.items():
                seen, blob, _ = self._seen(wt, path)
                if decide(entry, seen, blob) in (Verdict.APPLY, Verdict.KEEP):
                    if entry.new is None:
                        deletes.append(path)
                    else:
                        writes[path] = (Oid(hex=entry.new), entry.mode)
        if not writes and not deletes:
            return tree
        try:
            return self._trees.edit(self._objects.tree(tree), writes, deletes, force=True)
        except (StoreError, pygit2.GitError) as exc:
            logger.warning("cannot account for the notes not yet written: %s", exc)
            return tree

    def plan(self, old: pygit2.Tree | None, new: pygit2.Tree) -> list[PathUpdate]:
        """Regular-file updates from ``old`` to ``new``; refuses (StoreError) any unsafe path."""
        if old is not None and old.id == new.id:
            return []
        diff = old.diff_to_tree(new, DiffOption.SKIP_BINARY_CHECK) if old is not None else \
            new.diff_to_tree(flags=DiffOption.SKIP_BINARY_CHECK, swap=True)
        olds: dict[str, Oid] = {}
        news: dict[str, tuple[Oid, int]] = {}
        for delta in diff.deltas:
            o, n = delta.old_file, delta.new_file
            sides = ((o, delta.status != DeltaStatus.ADDED), (n, delta.status != DeltaStatus.DELETED))
            for side, present in sides:
                if present:
                    _names.check_path(side.path)
                    if not is_regular(side.mode):
                        logger.warning("not applying %s: only regular files are written", side.path)
            if delta.status != DeltaStatus.ADDED and is_regular(o.mode):
                olds[o.path] = o.id
            if delta.status != DeltaStatus.DELETED and is_regular(n.mode):
                news[n.path] = (n.id, int(n.mode))
        plan = []
        for path in sorted(set(olds) | set(news)):
            new_id, mode = news.get(path, (None, int(FileMode.BLOB)))
            plan.append(PathUpdate(path, olds.get(path), new_id, mode))
        return plan

    def apply(self, plan: list[PathUpdate], new_tree: pygit2.Tree, *,
                  old_tree: Oid | None = None) -> None:
        """Bring the work tree, the user's index and the stat cache from the old to the new tree.

        A file is written or deleted only if its current content is the old blob (or, for a
        write, it is missing or already new); otherwise it is the user's edit and is left alone.
        When the user's index held ``old_tree`` exactly and every update applied, it now holds
        ``new_tree``: it becomes a copy of the stat cache when that holds ``new_tree`` too, else
        it is re-read from that tree; either way with stat data and a valid cache tree, without
        which the next sync's read of what is staged would rebuild every touched folder (~0.2 s
        at 20,000 notes).  The stat cache is updated first, so that it can be that copy.
        """
        if not plan:
            return
        at, unwritten = self._ledger.load()
        outcomes: list[tuple[PathUpdate, str]] = []
        failures: dict[str, Unwritten] = {}
        first = True
        with Worktree(self.root) as wt:
            for update in sorted((u for u in plan if u.new is None), key=lambda u: u.path, reverse=True):
                outcome, failure = self._apply_delete(wt, _after_unwritten(update, unwritten))
                outcomes.append((update, outcome))
                if failure is not None:
                    failures[update.path] = failure
                if first:
                    crash("worktree-partial")
                    first = False
            for update in (u for u in plan if u.new is not None):
                outcome, failure = self._apply_write(wt, _after_unwritten(update, unwritten))
                outcomes.append((update, outcome))
                if failure is not None:
                    failures[update.path] = failure
                if first:
                    crash("worktree-partial")
                    first = False
        if unwritten or failures:
            # recorded before the journal goes: a crash until then redoes this whole update
            left = {p: e for p, e in unwritten.items() if p not in {u.path for u in plan}} | failures
            if left != unwritten:
                try:
                    self._ledger.save(at, left, "notes a sync could not write into the folder")
                except (pygit2.GitError, OSError) as exc:  # the journal stays: the next run redoes this
                    raise StoreError(f"sync saved, but the notes it could not write into {self.root} "
                                     f"could not be recorded ({exc}); the next run tries again") from exc
            for entry in failures.values():
                self._tell(entry)
        _, index = self._scan.load()
        base = self._scan.tree_cached(index)
        touched: set[str] = set()
        complete = True
        for update, outcome in outcomes:
            if outcome in (Outcome.WRITTEN, Outcome.ALREADY):
                complete = self._scan.add(index, update.path) and complete
                touched.add(update.path)
            elif outcome in (Outcome.DELETED, Outcome.ABSENT):
                if update.path in index:
                    index.remove(update.path)
                touched.add(update.path)
            else:
                complete = False
        private_new = complete and base is not None and base == old_tree
        if private_new:
            # The stat cache held exactly the old tree (so regular files only) and every update
            # applied: it now holds the new tree.  Re-reading that tree keeps the fresh stat data
            # of the files just written and makes the cache tree valid, without editing trees.
            index.read_tree(new_tree)
        else:
            self._scan.tree_after(index, base, touched)  # leaves a valid cache tree for the next scan
        private_new = self._scan.persist() and private_new
        with self._index.edit(required=False) as user:
            if user is not None and not user.existed:
                user.index.read_tree(new_tree)  # no index at all (e.g. unborn branch): start one
                user.dirty = True
                user.holds = new_tree.id
            elif user is not None:
                exact = old_tree is not None and self._index.tree_of(user) == old_tree
                if exact and private_new:
                    # both held the old tree; the stat cache now holds the new one, stat data and all
                    user.replacement = self._scan.path
                    user.holds = new_tree.id
                    return
                for update in plan:
                    staged = user.index[update.path].id if update.path in user.index else None
                    if staged != update.old:
                        exact = False
                        continue  # the user staged something else there: keep it
                    if update.new is None:
                        user.index.remove(update.path)
                    else:
                        user.index.add(IndexEntry(update.path, update.new, FileMode(update.new_mode)))
                    user.dirty = True
                if exact and user.dirty:
                    user.index.read_tree(new_tree)
                    user.holds = new_tree.id

    @staticmethod
    def _failed(update: PathUpdate, found: Found, reason: str, error: str) -> tuple[str, Unwritten]:
        logger.info("cannot %s %s: %s", "delete" if update.new is None else "write", update.path, error)
        return Outcome.FAILED, Unwritten(
            update.path, str(update.old) if update.old is not None else None,
            str(update.new) if update.new is not None else None, update.new_mode, found, reason, error)

    def _apply_delete(self, wt: Worktree, update: PathUpdate) -> tuple[str, Unwritten | None]:
        try:
            kind, data, _ = wt.read(update.path)
        except OSError as exc:
            return self._failed(update, Found.UNKNOWN, reason_of(exc), _error_text(exc))
        if kind == Kind.MISSING:
            wt.prune(update.path)
            return Outcome.ABSENT, None
        if kind == Kind.FILE and data is not None and pygit2.hash(data) == update.old:
            try:
                wt.remove(update.path)
            except (OSError, Blocked) as exc:
                return self._failed(update, Found.OLD, reason_of(exc), _error_text(exc))
            return Outcome.DELETED, None
        logger.warning("%s was changed locally; not deleting it (it will sync as a local change)",
                       update.path)
        return Outcome.SKIPPED, None

    def _apply_write(self, wt: Worktree, update: PathUpdate) -> tuple[str, Unwritten | None]:
        assert update.new is not None
        try:
            kind, data, st_mode = wt.read(update.path)
        except OSError as exc:
            return self._failed(update, Found.UNKNOWN, reason_of(exc), _error_text(exc))
        if kind == Kind.FILE and data is not None:
            current = pygit2.hash(data)
            if current == update.new:
                return Outcome.ALREADY, None
            if current != update.old:
                logger.warning("%s was changed locally; not overwriting it (it will sync as a local "
                               "change)", update.path)
                return Outcome.SKIPPED, None
        elif kind == Kind.OTHER:
            what = ("a folder" if stat.S_ISDIR(st_mode) else "a symlink" if stat.S_ISLNK(st_mode)
                    else "something other than a file")
            return self._failed(update, Found.OBSTACLE, "obstacle", f"{what} is in the way")
        elif kind == Kind.BLOCKED:
            return self._failed(update, Found.OBSTACLE, "obstacle",
                                "a file or symlink is in the way of its folder")
        blob = self._repo.get(update.new)
        assert isinstance(blob, pygit2.Blob)
        try:
            wt.write(update.path, bytes(blob.data),
                     executable=update.new_mode == int(FileMode.BLOB_EXECUTABLE),
                     old_mode=st_mode if kind == Kind.FILE else 0)
        except (OSError, Blocked) as exc:
            found = Found.OBSTACLE if isinstance(exc, Blocked) else \
                Found.OLD if kind == Kind.FILE else Found.MISSING
            return self._failed(update, found, reason_of(exc), _error_text(exc))
        return Outcome.WRITTEN, None
