"""The Git store: notes are files in the work tree, sync state lives in refs under ``refs/gitsync/``.

This is the only module of gitsync that imports pygit2.

Terminology
    *work tree*: the notes folder.  *note*: a regular file in it (symlinks, gitlinks and the top-level
    ``.gitattributes``/``.gitignore``/``.gitmodules`` are not notes).  *private index*:
    ``.git/gitsync/index``, our own index file used only as a stat cache of the work tree, so that
    scanning an unchanged folder costs about what ``git status`` costs; the user's ``.git/index`` is
    never used for that.  *state ref*: ``refs/gitsync/<peer>`` -> a chain of state commits, one per
    finished session.  *journal*: ``refs/gitsync/journal/<peer>`` -> the branch commit a session is
    about to install; it exists only while :meth:`GitStore.finish_sync` runs (or after it crashed).

Crash-safety rules
    * Refs move only by compare-and-swap inside a libgit2 ref transaction (lock, compare, set).
    * The state ref is the commit point of a session.  The branch moves only after it, and the work
      tree and the user's index are updated only after the branch moved.  ``recover()`` (run by
      ``open()``, and whenever the lock is taken while a journal exists) looks at each journal: if
      the state commit's ``head`` blob names the journal's commit, the session committed, and the
      branch move and work-tree update are finished (both are idempotent); otherwise the journal is
      dropped and the old state is intact.  A server may leave the work-tree update of a session
      it committed for after its answer (``finish_sync(defer_worktree=True)``, then ``settle()``):
      until then its journal stays, so no one scans the work tree before it is written.
    * Every ref update and every write of the private index happens under ``.git/gitsync.lock``
      (``flock``; the kernel releases it when the process dies, so it is never stale).  Holding it
      is what lets us call a ``refs/gitsync/**.lock`` file stale: no live gitsync process can own it.
      Such a lock file is removed once it is ``STALE_GITSYNC_LOCK_SECONDS`` old (the grace covers a
      ``git pack-refs`` that may hold it for milliseconds).  Lock files that Git itself creates
      (``refs/heads/*.lock``, ``packed-refs.lock``) are removed only after
      ``STALE_FOREIGN_LOCK_SECONDS``, unless ``.git/gitsync/ref-claim`` shows that a gitsync process,
      now dead, was moving that ref when the lock appeared (it writes the claim before each branch
      update); ``.git/index.lock`` is never removed (``git commit`` holds it while the editor is
      open): ``check_safe_state`` reports it instead.
    * Work-tree files are replaced via a temporary file in the same folder and ``os.replace``, and
      only when their current content is the old blob (or they are missing): a note the user
      edited meanwhile is left alone.  Files are not fsync'ed (like Git's default): the guarantees
      hold for a killed process, not for a power cut.

Testing seam: the module attribute ``_crash_point`` is called with a step name at each step of
``finish_sync`` (see ``CRASH_POINTS``); tests replace it with a function that calls ``os._exit``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pygit2
from pygit2 import IndexEntry, Oid, Signature
from pygit2.enums import (
    DeltaStatus,
    DiffOption,
    FileMode,
    RepositoryOpenFlag,
    RepositoryState,
)

from gitsync.atomic import atomic_write
from gitsync.errors import ConfigError, RepositoryBusy, RepositoryStateError, StoreError
from gitsync.store import _names
from gitsync.store._worktree import Blocked, Kind, Worktree
from gitsync.store.locking import RepoLock, folder_lock
from gitsync.store.merge import merge3
from gitsync.store.objects import (
    EMPTY_TREE,
    Objects,
    is_regular,
    remember,
)
from gitsync.store.refs import (
    JOURNAL_PREFIX,
    STALE_FOREIGN_LOCK_SECONDS,
    STALE_GITSYNC_LOCK_SECONDS,
    STATE_PREFIX,
    RefLocked,
    RefMoved,
    Refs,
)
from gitsync.store.scan import StatCache
from gitsync.store.trees import TreeChange, Trees
from gitsync.store.unwritten import Found, Ledger, Seen, Unwritten, Verdict, decide, describe, reason_of
from gitsync.store.userindex import IndexChanged, IndexEdit, UserIndex

__all__ = [
    "CRASH_POINTS",
    "EMPTY_TREE",
    "STALE_FOREIGN_LOCK_SECONDS",
    "STALE_GITSYNC_LOCK_SECONDS",
    "UNWRITTEN_CRASH_POINTS",
    "GitStore",
    "SyncStateSnapshot",
    "TreeChange",
]

logger = logging.getLogger(__name__)

DEFAULT_NAME: Final = "gitsync-notes"
DEFAULT_EMAIL: Final = "gitsync@localhost"
CRASH_POINTS: Final = (
    "journal-written",
    "state-committed",
    "branch-moved",
    "worktree-partial",
    "worktree-updated",
    "journal-deleted",
)
#: Steps of writing the notes an earlier sync left unwritten (``_retry_unwritten``): after the
#: files were written, before the record of them was updated.
UNWRITTEN_CRASH_POINTS: Final = ("unwritten-retried",)

#: State files this big are remembered with their blob id, so an unchanged one is not re-hashed.
_STATE_BLOB_MEMO_MIN: Final = 64 * 1024
_STATE_NAMES: Final = {
    RepositoryState.MERGE: "a merge is in progress (finish it with `git commit` or run `git merge --abort`)",
    RepositoryState.REVERT: "a revert is in progress (`git revert --continue` or `--abort`)",
    RepositoryState.REVERT_SEQUENCE: "a revert is in progress (`git revert --continue` or `--abort`)",
    RepositoryState.CHERRYPICK: "a cherry-pick is in progress (`git cherry-pick --abort` to stop)",
    RepositoryState.CHERRYPICK_SEQUENCE: "a cherry-pick is in progress (`git cherry-pick --abort` to stop)",
    RepositoryState.BISECT: "a bisect is in progress (`git bisect reset`)",
    RepositoryState.REBASE: "a rebase is in progress (`git rebase --continue` or `--abort`)",
    RepositoryState.REBASE_INTERACTIVE: "a rebase is in progress (`git rebase --continue` or `--abort`)",
    RepositoryState.REBASE_MERGE: "a rebase is in progress (`git rebase --continue` or `--abort`)",
    RepositoryState.APPLY_MAILBOX: "`git am` is in progress (`git am --continue` or `--abort`)",
    RepositoryState.APPLY_MAILBOX_OR_REBASE: "`git am` or a rebase is in progress",
}


def _no_crash(point: str) -> None:
    """Default crash hook: do nothing."""


#: Test seam: called with each name in ``CRASH_POINTS`` as ``finish_sync``/``recover`` pass it.
_crash_point: Callable[[str], None] = _no_crash


def _crash(point: str) -> None:
    _crash_point(point)


# ---- public records ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncStateSnapshot:
    """One saved sync state of a peer, as stored by :meth:`GitStore.finish_sync`."""

    commit: str
    files: dict[str, bytes]
    synced_tree: str | None
    head: str | None
    message: str


# ---- internal records --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PathUpdate:
    """One regular file to bring from ``old`` to ``new`` in the work tree (None = absent)."""

    path: str
    old: Oid | None
    new: Oid | None
    new_mode: int


@dataclass(frozen=True, slots=True)
class _Deferred:
    """The rest of a committed session: the work-tree update ``finish_sync`` left for later."""

    branch: str
    first: Oid | None
    target: Oid
    plan: list[_PathUpdate]
    reflog: str


class _Outcome:
    WRITTEN = "written"
    ALREADY = "already"
    DELETED = "deleted"
    ABSENT = "absent"
    SKIPPED = "skipped"  # the user changed the path: their change wins
    FAILED = "failed"  # the write or delete did not happen: recorded as unwritten


# ---- module helpers ----------------------------------------------------------------------------

def _after_unwritten(update: _PathUpdate, unwritten: Mapping[str, Unwritten]) -> _PathUpdate:
    """``update`` as it applies to the folder when an earlier update of its path did not happen:
    the folder still holds that one's old content (or nothing, or an obstacle)."""
    entry = unwritten.get(update.path)
    if entry is None:
        return update
    target = {str(update.old) if update.old is not None else None,
              str(update.new) if update.new is not None else None}
    if entry.new not in target:
        return update  # the branch was moved elsewhere meanwhile: that entry is stale
    return _PathUpdate(update.path, Oid(hex=entry.old) if entry.old else None, update.new, update.new_mode)


def _error_text(exc: BaseException) -> str:
    """The system's words for a failed write, without the path (the caller names the note)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _subject(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "(no message)"


# ---- the store ---------------------------------------------------------------------------------


def _synced_before(repo: pygit2.Repository) -> bool:
    """Whether gitsync-notes ever synced this repository (a device id, or a peer's state ref)."""
    try:
        if "gitsync.deviceid" in repo.config:
            return True
    except (ValueError, pygit2.GitError):
        return False
    return any(ref.startswith(STATE_PREFIX) for ref in repo.references)


class GitStore:
    """Notes in a Git work tree plus per-peer sync state in ``refs/gitsync/``.

    One instance per process and thread; methods that change state take the repository lock
    themselves (re-entrantly), callers that need several calls to be atomic hold :meth:`lock`.
    """

    root: Path

    def __init__(self, repo: pygit2.Repository, root: Path) -> None:
        """Wrap an opened repository; use :meth:`open`."""
        self._repo = repo
        self.root = root
        self._gitdir = Path(repo.path)
        self._lock = RepoLock(self._gitdir, self._on_lock)
        self._refs = Refs(repo, self._gitdir, self._lock, self._signature)
        self._objects = Objects(repo, root)
        self._trees = Trees(repo, self._objects)
        self._scan = StatCache(repo, root, self._lock, self._refs, self._trees, self._signature,
                               self._head_tree)
        self._index = UserIndex(repo, self._gitdir, root, self._lock, self._objects, self.head)
        self._deferred: dict[str, _Deferred] = {}  # journal ref -> work-tree update still to do
        self._state_blobs: dict[tuple[str, int], tuple[bytes, Oid]] = {}  # big state files seen
        self._ledger = Ledger(repo, self._refs.set_if_equals, self._signature)  # notes not yet written
        self._told: set[Unwritten] = set()  # unwritten notes already reported by this process

    @property
    def git_dir(self) -> Path:
        """The repository's Git directory (``.git``), where the lock and the hook's files live."""
        return self._gitdir

    # ---- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True, top_level: bool = False) -> GitStore:
        """Open the notes folder ``path`` (its top level must be a Git work tree), or create one.

        ``top_level``: a sub-folder of a notes repository that synced before opens that repository
        (as git finds its top level); a sub-folder of any other repository is still refused.

        A folder that is no repository is initialised (branch ``main``, ``.gitattributes`` with
        ``* -text`` so Git never rewrites CRLF in notes) and its notes committed.  Unfinished
        sessions are recovered when the repository lock is free.
        """
        given = Path(path)
        if not given.exists():
            raise ConfigError(f"notes folder {given} does not exist")
        if not given.is_dir():
            raise ConfigError(f"notes folder {given} is not a folder")
        root = given.resolve()
        found = pygit2.discover_repository(str(root))
        if found is None:
            if not create:
                raise ConfigError(f"{root} is not a Git repository")
            store = cls._init_once(root)
        else:
            try:
                repo = pygit2.Repository(found, RepositoryOpenFlag.NO_SEARCH)
            except pygit2.GitError as exc:
                raise ConfigError(f"cannot open the Git repository at {found}: {exc}") from exc
            if repo.is_bare or repo.workdir is None:
                raise ConfigError(f"{found} is a bare Git repository: it has no work tree for notes")
            workdir = Path(repo.workdir).resolve()
            if workdir != root and top_level and _synced_before(repo):
                logger.info("%s is inside the notes folder %s: syncing all of it", root, workdir)
                root = workdir
            if workdir != root:
                raise ConfigError(
                    f"{root} is inside the Git repository {workdir} but is not its top level; "
                    f"use {workdir} itself or a folder outside it"
                )
            store = cls(repo, root)
        with store._try_lock() as locked:
            if not locked:
                logger.debug("repository busy: recovery left to the lock holder")
            else:
                try:
                    store._recover_all()
                except StoreError as exc:
                    logger.warning("could not finish an interrupted sync yet: %s", exc)
        return store

    @staticmethod
    def enclosing_work_tree(path: str | os.PathLike[str]) -> Path | None:
        """The work tree of the Git repository ``path`` is (or would be, once created) inside."""
        here = Path(path).resolve()
        while not here.exists():
            here = here.parent
        found = pygit2.discover_repository(str(here))
        if found is None:
            return None
        try:
            workdir = pygit2.Repository(found, RepositoryOpenFlag.NO_SEARCH).workdir
        except pygit2.GitError:
            return None
        return Path(workdir).resolve() if workdir else None

    @classmethod
    def _init_once(cls, root: Path) -> GitStore:
        """``_init`` under an ``flock`` of the folder (see :func:`folder_lock`)."""
        with folder_lock(root):
            if pygit2.discover_repository(str(root)) is not None:
                return cls.open(root, create=False)  # the other process created it meanwhile
            return cls._init(root)

    @classmethod
    def _init(cls, root: Path) -> GitStore:
        repo = pygit2.init_repository(str(root), initial_head="main")
        attributes = root / ".gitattributes"
        if not os.path.lexists(attributes):
            attributes.write_bytes(b"* -text\n")
        else:
            logger.warning("%s exists; not adding '* -text' to it: Git may rewrite line endings",
                           attributes)
        if (root / ".sync").is_dir():  # a pysyncml sync-notes folder: its state is never a note
            with open(Path(repo.path) / "info" / "exclude", "a", encoding="utf-8") as fh:
                fh.write("\n/.sync/\n")
        store = cls(repo, root)
        store.commit_worktree(f"gitsync: start tracking notes in {root}")
        logger.info("created a Git repository for the notes in %s", root)
        return store

    # ---- config and identity ------------------------------------------------------------------

    def config_get(self, key: str) -> str | None:
        """The value of git config ``key`` as Git would read it (local over global), or None."""
        try:
            value = self._repo.config[key]
        except KeyError:
            return None
        except (ValueError, pygit2.GitError) as exc:
            raise ConfigError(f"cannot read git config {key!r}: {exc}") from exc
        return str(value)

    def config_set(self, key: str, value: str) -> None:
        """Set ``key`` in the repository's own ``.git/config``.

        A ``config.lock`` older than ``STALE_FOREIGN_LOCK_SECONDS`` is a crashed writer's: removed.
        """
        for attempt in range(2):
            try:
                self._repo.config[key] = value
                return
            except (ValueError, pygit2.GitError) as exc:
                lock = self._gitdir / "config.lock"
                with contextlib.suppress(FileNotFoundError):
                    age = time.time() - lock.stat().st_mtime
                    if attempt == 0 and age >= STALE_FOREIGN_LOCK_SECONDS:
                        logger.warning("removing stale lock file %s (%.0f s old)", lock, age)
                        lock.unlink()
                        continue
                raise ConfigError(f"cannot set git config {key!r}: {exc}") from exc

    def _signature(self) -> Signature:
        """Author/committer of our commits; also the identity libgit2 writes into reflogs."""
        name = self.config_get("user.name") or DEFAULT_NAME
        email = self.config_get("user.email") or DEFAULT_EMAIL
        self._repo.set_ident(name, email)
        return Signature(name, email)

    # ---- locks and safety ---------------------------------------------------------------------

    def check_safe_state(self) -> None:
        """Raise ``RepositoryStateError`` when syncing now could fight with the user's Git work."""
        state = self._repo.state()  # first: a rebase detaches HEAD, and must be named as such
        if state != RepositoryState.NONE:
            what = _STATE_NAMES.get(state, f"a Git operation is in progress ({state!r})")
            raise RepositoryStateError(f"cannot sync {self.root}: {what}")
        if self._repo.head_is_detached:
            raise RepositoryStateError(
                f"HEAD is detached in {self.root}: check out a branch (e.g. `git switch main`) first"
            )
        index_lock = self._gitdir / "index.lock"
        if not self._index.wait_lock():
            raise RepositoryStateError(
                f"{index_lock} exists: another git command is running; if none is, a crashed one "
                "left it behind and it can be deleted"
            )
        if str(self.config_get("core.sparseCheckout") or "").lower() == "true":
            raise RepositoryStateError(f"{self.root} uses a sparse checkout, which gitsync cannot sync")

    @contextlib.contextmanager
    def lock(self, *, wait: float = 0.0) -> Iterator[None]:
        """Hold ``.git/gitsync.lock`` (``flock``; re-entrant within this store object).

        Raises ``RepositoryBusy`` if another process still holds it after ``wait`` seconds.  The
        kernel drops the lock when its holder dies, so it can never be stale.
        """
        with self._lock.hold(wait) as held:
            if not held:
                raise RepositoryBusy(f"another gitsync process is working on {self.root}; try again later")
            yield

    @contextlib.contextmanager
    def _try_lock(self) -> Iterator[bool]:
        """Hold the lock if it is free right now; yields whether we hold it."""
        with self._lock.hold(0.0) as held:
            yield held

    def _on_lock(self) -> None:
        """What the first holder of the repository lock does before anything else."""
        self._finish_journals()
        self._retry_unwritten()

    def _finish_journals(self) -> None:
        """Complete what committed sessions left to do before anyone works on the folder.

        A journal outlives its ``finish_sync`` only after a crash, or when a server deferred the
        work-tree update until after its answer (this process or another): a scan of the work tree
        before that update would take the old notes for the user's edits and undo the session.
        """
        journals = [name for name in self._repo.references if name.startswith(JOURNAL_PREFIX)]
        if not journals:
            self._deferred.clear()
            return
        for journal_ref in journals:
            job = self._deferred.pop(journal_ref, None)
            try:
                if job is not None and self._refs.target(journal_ref) == job.target:
                    self._complete(journal_ref, job.branch, job.first, job.target, job.plan,
                                   strict=False, reflog=job.reflog)
                else:
                    self._recover_journal(journal_ref)
            except StoreError as exc:
                logger.warning("could not finish an interrupted sync yet: %s", exc)

    def settle(self) -> None:
        """Write the notes of sessions committed with ``defer_worktree`` into the work tree.

        Never waits: another process holding the lock took it after our commit, so it finished
        them on taking it.
        """
        if self._deferred:
            with self._try_lock() as held:
                if not held:
                    logger.debug("repository busy: its lock holder writes the committed notes")

    @property
    def unsettled(self) -> bool:
        """Whether a session this store committed still has to update the work tree."""
        return bool(self._deferred)

    # ---- notes a sync could not write (see gitsync.store.unwritten) -------------------------

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

    def _retry_unwritten(self) -> None:
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
                    update = _PathUpdate(path, Oid(hex=entry.old) if entry.old else None,
                                         Oid(hex=entry.new) if entry.new else None, entry.mode)
                    outcome, failure = (self._apply_delete(wt, update) if update.new is None
                                        else self._apply_write(wt, update))
                    if failure is not None:
                        left[path] = failure
                    elif outcome in (_Outcome.WRITTEN, _Outcome.DELETED):
                        logger.warning("%s: %s now (a sync could not do it before)", path,
                                       "deleted" if update.new is None else "written")
        _crash("unwritten-retried")
        for entry in left.values():
            self._tell(entry)
        if left != entries:
            try:
                self._ledger.save(at, left, "notes written that an earlier sync could not write")
            except (pygit2.GitError, OSError, StoreError) as exc:  # decided again next time
                logger.warning("cannot update the record of notes not yet written: %s", exc)

    def _overlay_unwritten(self, tree: Oid) -> Oid:
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

    # ---- refs ---------------------------------------------------------------------------------

    def head(self) -> str | None:
        """The commit HEAD points at (the current branch tip), or None on an unborn branch."""
        if self._repo.head_is_unborn:
            return None
        return str(self._repo.head.target)

    def branch(self) -> str | None:
        """The full name of the checked-out branch (``refs/heads/...``), None when detached."""
        if self._repo.head_is_detached:
            return None
        target = self._repo.references["HEAD"].target
        return target if isinstance(target, str) else None

    # ---- objects ------------------------------------------------------------------------------

    def _head_tree(self) -> pygit2.Tree | None:
        head = self.head()
        return None if head is None else self._objects.commit(head).tree

    def tree_of(self, commit: str) -> str:
        """The root tree id of ``commit``."""
        return str(self._objects.commit(commit).tree_id)

    def read_blob(self, blob: str) -> bytes:
        """The content of blob ``blob`` (one object lookup: a big note is inflated once)."""
        return self._objects.read_blob(blob)

    def blob_size(self, blob: str) -> int | None:
        """The length of blob ``blob`` from its header (no content read), ``None`` if unknown."""
        return self._objects.blob_size(blob)

    def write_blob(self, data: bytes) -> str:
        """Store ``data`` as a blob and return its id."""
        return str(self._repo.create_blob(bytes(data)))

    def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        """Create a commit object (our identity, now) without moving any ref."""
        tree_oid = self._objects.oid(tree, "tree")
        parent_oids = [self._objects.commit(p).id for p in parents]
        sig = self._signature()
        return str(self._repo.create_commit(None, sig, sig, message, tree_oid, parent_oids))

    def read_user_index(self) -> bytes | None:
        """The user's index file as it is (to put back with :meth:`undo_commit`), or None."""
        try:
            return (self._gitdir / "index").read_bytes()
        except FileNotFoundError:
            return None

    def undo_commit(self, commit: str, parent: str, index: bytes | None) -> bool:
        """Take back ``commit`` (made by us on the current branch): the branch goes back to
        ``parent`` by compare-and-swap and the user's index file to ``index``.

        Used when a sync fails after committing the user's edits, so that the failed sync leaves
        the repository as it found it. Returns False, changing nothing, if the branch moved on.
        """
        with self.lock():
            branch = self.branch()
            if branch is None:
                return False
            try:
                self._refs.set_if_equals(branch, Oid(hex=commit), Oid(hex=parent),
                                         "gitsync: sync failed, commit undone")
            except StoreError:
                return False
            if index is not None:
                atomic_write(self._gitdir / "index", index)
            logger.info("the sync failed: took back the local-changes commit %s", commit[:12])
            return True

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ``ancestor`` is ``descendant`` or one of its ancestors (like merge-base --is-ancestor)."""
        a, d = self._objects.commit(ancestor).id, self._objects.commit(descendant).id
        return a == d or bool(self._repo.descendant_of(d, a))

    # ---- trees (see gitsync.store.trees) ------------------------------------------------------

    def list_notes(self, tree: str | None) -> dict[str, str]:
        """Every note of ``tree``: path -> blob id (see :meth:`Trees.list_notes`)."""
        return self._trees.list_notes(tree)

    def diff(self, old_tree: str | None, new_tree: str | None) -> list[TreeChange]:
        """Note changes from ``old_tree`` to ``new_tree``, renames paired (see :meth:`Trees.diff`)."""
        return self._trees.diff(old_tree, new_tree)

    def build_tree(self, base_tree: str | None, writes: Mapping[str, str], deletes: Iterable[str]) -> str:
        """``base_tree`` with ``writes`` and ``deletes`` applied (see :meth:`Trees.build`)."""
        return self._trees.build(base_tree, writes, deletes)

    def build_synced(self, base_tree: str | None, writes: Mapping[str, str], deletes: Iterable[str],
                     *, like: str | None) -> str:
        """A peer's synced tree after a session (see :meth:`Trees.build_synced`)."""
        return self._trees.build_synced(base_tree, writes, deletes, like=like)

    # ---- the scan (see gitsync.store.scan) -----------------------------------------------------

    def _compose(self, base: pygit2.Tree | None, scan: pygit2.Tree) -> tuple[Oid, Oid]:
        """``base`` with its regular files replaced by the scanned ones (see :meth:`StatCache.compose`)."""
        return self._scan.compose(base, scan)

    def scan_worktree_tree(self) -> str | None:
        """The tree the work tree would be committed as right now (HEAD's symlinks etc. kept).

        Uses and, when the repository lock is free, refreshes the stat cache.
        """
        with self._try_lock() as locked:
            scan = self._scan.refresh(cleanup=locked)
            tree, _ = self._compose(self._head_tree(), scan)
            tree = self._overlay_unwritten(tree)
            if locked:
                self._scan.persist()
        return str(tree)

    # ---- the user's index (see gitsync.store.userindex) -----------------------------------------

    def _user_index(self, *, required: bool) -> contextlib.AbstractContextManager[IndexEdit | None]:
        """The user's ``.git/index`` under Git's own lock protocol (see :meth:`UserIndex.edit`)."""
        return self._index.edit(required=required)

    # ---- committing local edits ---------------------------------------------------------------

    def commit_worktree(self, message: str) -> str | None:
        """Commit the user's uncommitted edits as one commit on the current branch; return the head.

        The commit is the user's index (so anything they staged, symlinks included, goes in) with
        every regular file replaced by its work-tree content: like ``git add -A && git commit``,
        except that new symlinks, ignored files and non-regular files are not added.  Where a staged
        version differs from the work-tree file, the work-tree file wins (as with ``git commit -a``).
        Afterwards the user's index equals the new commit, so ``git status`` is clean.  Returns the
        unchanged head when nothing changed, None when the branch is unborn and nothing is there.

        When nothing changed, the user's index is only read (never locked), so an editor running
        ``git status`` meanwhile is not disturbed.
        """
        with self.lock():
            self.check_safe_state()
            head = self.head()
            branch = self.branch()
            assert branch is not None
            head_commit = self._objects.commit(head) if head is not None else None
            head_tree = head_commit.tree if head_commit is not None else None
            head_tree_id = head_tree.id if head_tree is not None else Oid(hex=EMPTY_TREE)
            scan = self._scan.refresh(cleanup=True)
            for _ in range(5):
                try:
                    version, staged = self._index.read_staged(head_tree)
                except IndexChanged:
                    continue
                new_tree, private_tree = self._compose(staged, scan)
                new_tree = self._overlay_unwritten(new_tree)
                self._scan.persist()
                if new_tree == head_tree_id:
                    return head
                # Hold .git/index.lock only for the few milliseconds of commit + index update.
                with self._user_index(required=True) as user:
                    assert user is not None
                    if user.version != version:
                        continue  # staged content changed since we read it: start over
                    sig = self._signature()
                    parents = [head_commit.id] if head_commit is not None else []
                    commit = self._repo.create_commit(None, sig, sig, message, new_tree, parents)
                    reflog = f"commit{'' if parents else ' (initial)'}: {_subject(message)}"
                    try:
                        self._refs.set_if_equals(branch, head_commit.id if head_commit else None, commit,
                                                 reflog)
                    except RefMoved as exc:
                        raise StoreError(f"{branch} moved while committing local edits: {exc}") from exc
                    if new_tree == private_tree:
                        user.replacement = self._scan.path  # same entries, fresh stat data
                    else:
                        tree = self._objects.tree(new_tree)
                        assert tree is not None
                        user.index.read_tree(tree)  # keeps stat data of unchanged entries
                        user.dirty = True
                    user.holds = new_tree
                logger.info("committed local edits as %s on %s", str(commit)[:12], branch)
                return str(commit)
            raise RepositoryStateError(f"the Git index of {self.root} keeps changing; try again")

    # ---- merging ------------------------------------------------------------------------------

    def merge3(self, base: bytes | None, ours: bytes, theirs: bytes, *,
               labels: tuple[str, str, str] = ("local", "base", "peer")) -> tuple[bytes, bool]:
        """Three-way merge of note contents: ``(merged, clean)``; conflicts get diff3 markers.

        ``labels`` are (ours, base, theirs), as for ``git merge-file -L``.  Trivial cases (a side
        unchanged, both sides equal) resolve without libgit2, even for binary content.  Binary
        content (a NUL byte) that really changed on both sides returns ``(ours, False)``.
        """
        return merge3(self._repo, base, ours, theirs, labels)

    # ---- sync state ---------------------------------------------------------------------------

    def _state_ref(self, peer: str) -> str:
        name = STATE_PREFIX + _names.encode_peer(peer)
        if not pygit2.reference_is_valid_name(name):  # pragma: no cover - encode_peer guarantees it
            raise StoreError(f"peer name {peer!r} cannot be stored")
        return name

    def _journal_ref(self, peer: str) -> str:
        return JOURNAL_PREFIX + _names.encode_peer(peer)

    def peers(self) -> list[str]:
        """Names of the peers that have a saved sync state, sorted."""
        names = []
        for ref in self._repo.references:
            if ref.startswith(STATE_PREFIX):
                rest = ref[len(STATE_PREFIX):]
                if "/" not in rest and rest not in (_names.WORKTREE_COMPONENT, _names.UNWRITTEN_COMPONENT):
                    names.append(_names.decode_peer(rest))
        return sorted(names)

    def forget_peer(self, peer: str) -> list[str]:
        """Delete what the repository keeps about ``peer``: its state ref (with its history of
        sessions), its ``gitsync.<peer>.*`` config, and the default server if it was that peer.
        The notes and the branch are untouched.  Call under :meth:`lock`.  Returns what went."""
        gone: list[str] = []
        if self._repo.references.get(self._journal_ref(peer)) is not None:
            raise StoreError(f"a sync with {peer} is still being finished: run gitsync-notes status first")
        ref = self._state_ref(peer)
        if self._repo.references.get(ref) is not None:
            self._repo.references.delete(ref)
            gone.append(ref)
        config = self._repo.config
        prefix = f"gitsync.{peer}."
        keys = [e.name for e in config if e.name.startswith(prefix) and "." not in e.name[len(prefix):]]
        default = self.config_get("gitsync.peer")
        remote = self.config_get("gitsync.remote")
        if default == peer or (default is None and remote and remote == self.config_get(f"{prefix}remote")):
            keys += [k for k in ("gitsync.peer", "gitsync.remote") if self.config_get(k) is not None]
        for key in dict.fromkeys(keys):
            try:
                del config[key]
            except KeyError:
                continue  # set globally, not in .git/config: not ours to remove
            except (ValueError, pygit2.GitError) as exc:
                raise ConfigError(f"cannot unset git config {key!r}: {exc}") from exc
            gone.append(key)
        return gone

    def _snapshot(self, commit: pygit2.Commit) -> SyncStateSnapshot:
        files: dict[str, bytes] = {}
        synced: str | None = None
        head: str | None = None
        for obj in commit.tree:
            name = obj.name
            if name == "synced" and int(obj.filemode) == int(FileMode.TREE):
                synced = str(obj.id)
            elif isinstance(obj, pygit2.Blob) and name is not None:
                if name == "head":
                    head = bytes(obj.data).decode("ascii").strip() or None
                elif name != "branch":
                    files[name] = self._state_blob_seen(name, bytes(obj.data), obj.id)
        return SyncStateSnapshot(commit=str(commit.id), files=files, synced_tree=synced, head=head,
                                 message=commit.message)

    def state_load(self, peer: str) -> SyncStateSnapshot | None:
        """The latest saved state of ``peer``, or None if it never finished a session."""
        target = self._refs.target(self._state_ref(peer))
        if target is None:
            return None
        return self._snapshot(self._objects.commit(str(target)))

    def state_history(self, peer: str) -> Iterator[SyncStateSnapshot]:
        """Every saved state of ``peer``, newest first."""
        target = self._refs.target(self._state_ref(peer))
        while target is not None:
            commit = self._objects.commit(str(target))
            yield self._snapshot(commit)
            target = commit.parent_ids[0] if commit.parent_ids else None

    def _state_blob_seen(self, name: str, data: bytes, oid: Oid) -> bytes:
        if len(data) >= _STATE_BLOB_MEMO_MIN:
            remember(self._state_blobs, (name, len(data)), (data, oid), size=8)
        return data

    def _state_file_blob(self, name: str, data: bytes) -> Oid:
        """The blob of a state file; a big one (the LUID map: ~2 MB at 20,000 notes) that equals
        what was loaded or saved before is not hashed again (~20 ms)."""
        seen = self._state_blobs.get((name, len(data)))
        if seen is not None and seen[0] == data:
            return seen[1]
        oid = self._repo.create_blob(data)
        self._state_blob_seen(name, data, oid)
        return oid

    def _state_tree(self, files: Mapping[str, bytes], synced: Oid | None, head: Oid | None,
                    branch: str | None) -> Oid:
        tb = self._repo.TreeBuilder()
        for name, data in files.items():
            tb.insert(name, self._state_file_blob(name, bytes(data)), FileMode.BLOB)
        if synced is not None:
            tb.insert("synced", synced, FileMode.TREE)  # a tree entry keeps it reachable (gc-safe)
        if head is not None:
            tb.insert("head", self._repo.create_blob(f"{head}\n".encode()), FileMode.BLOB)
        if branch is not None:
            tb.insert("branch", self._repo.create_blob(f"{branch}\n".encode()), FileMode.BLOB)
        return tb.write()

    def _checkout_plan(self, old: pygit2.Tree | None, new: pygit2.Tree) -> list[_PathUpdate]:
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
            plan.append(_PathUpdate(path, olds.get(path), new_id, mode))
        return plan

    def finish_sync(self, peer: str, *, expected_state: str | None, files: Mapping[str, bytes],
                    synced_tree: str | None, new_commit: str | None, expected_head: str | None,
                    message: str, defer_worktree: bool = False) -> str:
        """Commit a session: save the peer's state and install ``new_commit``; return the state commit.

        Steps: (1) journal ref -> ``new_commit``; (2) state commit (``files`` + ``synced`` tree +
        ``head`` + ``branch``) CAS'ed onto ``refs/gitsync/<peer>`` from ``expected_state``: the commit
        point; (3) CAS the branch ``expected_head`` -> ``new_commit`` and update the work tree and
        the user's index for the changed paths (files edited meanwhile are left alone); (4) delete
        the journal.  ``new_commit`` must be a child of ``expected_head`` (first parent).

        Raises ``StoreError`` with nothing changed when a ref is not where expected, a path is unsafe
        or an id is unknown.  After the commit point it raises only if the branch cannot be moved:
        if its ref is locked, the journal stays and ``recover()`` finishes later; if it moved (a
        commit raced us), the state keeps ``head`` = ``new_commit`` and the caller must merge it.

        With ``defer_worktree`` step (3) stops once the branch moved: the work tree, the user's
        index and the journal wait for ``settle()`` (or whoever takes the lock next), so that a
        server can answer first.
        """
        state_ref = self._state_ref(peer)
        journal_ref = self._journal_ref(peer)
        for name, data in files.items():
            _names.check_state_name(name)
            if not isinstance(data, bytes | bytearray | memoryview):
                raise StoreError(f"sync state file {name!r} must be bytes")
        exp_state = self._objects.commit(expected_state).id if expected_state is not None else None
        synced = self._objects.tree(synced_tree)
        exp_head = self._objects.commit(expected_head).id if expected_head is not None else None
        new = self._objects.commit(new_commit) if new_commit is not None else None
        if new is not None and new.id == exp_head:
            new = None
        with self.lock():
            self._recover_journal(journal_ref)
            branch: str | None = None
            plan: list[_PathUpdate] = []
            if new is not None:
                self.check_safe_state()
                branch = self.branch()
                assert branch is not None
                first = new.parent_ids[0] if new.parent_ids else None
                if first != exp_head:
                    raise StoreError(f"new commit {new.id} is not a child of expected head {exp_head}")
                old_tree = self._objects.commit(str(exp_head)).tree if exp_head is not None else None
                plan = self._checkout_plan(old_tree, new.tree)
                current = self._refs.target(branch)
                if current != exp_head:
                    raise StoreError(f"{branch} moved during the sync: it is at {current}, "
                                     f"expected {exp_head}")
                busy = self._refs.foreign_lock(branch)
                if busy is not None:
                    raise StoreError(f"{busy} exists: a git command is updating {branch}; try again")
            current_state = self._refs.target(state_ref)
            if current_state != exp_state:
                raise StoreError(f"sync state of {peer!r} moved: it is at {current_state}, "
                                 f"expected {exp_state}")
            pending = self._refs.target(journal_ref)
            if pending is not None:
                raise StoreError(f"the previous sync with {peer!r} is not finished: the branch still has to "
                                 f"move to {pending}; try again when its ref is no longer locked")
            # 1. journal
            if new is not None:
                self._refs.set_if_equals(journal_ref, None, new.id, "gitsync: journal")
            _crash("journal-written")
            # 2. state commit: the commit point
            state: Oid | None = None
            try:
                sig = self._signature()
                head_id = new.id if new is not None else exp_head
                tree = self._state_tree(files, synced.id if synced is not None else None, head_id,
                                        branch or self.branch())
                state = self._repo.create_commit(None, sig, sig, message, tree,
                                                 [exp_state] if exp_state is not None else [])
                self._refs.set_if_equals(state_ref, exp_state, state, f"gitsync: {_subject(message)}")
            except BaseException:
                # Drop the journal only if the commit point was really not reached.
                if new is not None and (state is None or self._refs.target(state_ref) != state):
                    with contextlib.suppress(StoreError):
                        self._refs.set_if_equals(journal_ref, new.id, None, "gitsync: journal dropped")
                raise
            _crash("state-committed")
            logger.info("saved sync state of %s as %s", peer, str(state)[:12])
            # 3. and 4.
            if new is not None:
                assert branch is not None
                reflog = f"gitsync: {_subject(message)}"
                if defer_worktree:
                    self._deferred[journal_ref] = _Deferred(branch, exp_head, new.id, plan, reflog)
                self._complete(journal_ref, branch, exp_head, new.id, plan, strict=True,
                               reflog=reflog, worktree=not defer_worktree)
            return str(state)

    def _complete(self, journal_ref: str, branch: str, first: Oid | None, target: Oid,
                  plan: list[_PathUpdate], *, strict: bool, reflog: str, worktree: bool = True) -> None:
        """Steps 3 and 4 of a session whose commit point passed; idempotent (used by recover).

        Without ``worktree`` it only moves the branch and leaves the journal for the rest.
        """
        current = self._refs.target(branch)
        if current == first:
            try:
                self._refs.set_if_equals(branch, first, target, reflog)
                current = target
            except RefLocked as exc:
                msg = (f"sync state saved, but {branch} could not be moved to {target} yet ({exc}); "
                       "it will be completed when gitsync next opens the folder")
                if strict:
                    raise StoreError(msg) from exc
                logger.warning("%s", msg)
                return
            except RefMoved:
                current = self._refs.target(branch)
            _crash("branch-moved")
        moved_away = current != target
        if not worktree and not moved_away:
            return
        if not moved_away:
            if self.branch() == branch:
                old_tree = self._objects.commit(str(first)).tree_id if first is not None else None
                self._checkout(plan, self._objects.commit(str(target)).tree, old_tree=old_tree)
            else:
                logger.warning("%s is no longer checked out: its new notes were not written to %s",
                               branch, self.root)
        _crash("worktree-updated")
        self._refs.set_if_equals(journal_ref, target, None, "gitsync: journal done")
        _crash("journal-deleted")
        if moved_away:
            msg = (f"sync state saved, but {branch} moved to {current} meanwhile: the peer's changes are "
                   f"in commit {target}, which the next sync merges")
            if strict:
                raise StoreError(msg)
            logger.warning("%s", msg)

    def _checkout(self, plan: list[_PathUpdate], new_tree: pygit2.Tree, *,
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
        outcomes: list[tuple[_PathUpdate, str]] = []
        failures: dict[str, Unwritten] = {}
        first = True
        with Worktree(self.root) as wt:
            for update in sorted((u for u in plan if u.new is None), key=lambda u: u.path, reverse=True):
                outcome, failure = self._apply_delete(wt, _after_unwritten(update, unwritten))
                outcomes.append((update, outcome))
                if failure is not None:
                    failures[update.path] = failure
                if first:
                    _crash("worktree-partial")
                    first = False
            for update in (u for u in plan if u.new is not None):
                outcome, failure = self._apply_write(wt, _after_unwritten(update, unwritten))
                outcomes.append((update, outcome))
                if failure is not None:
                    failures[update.path] = failure
                if first:
                    _crash("worktree-partial")
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
            if outcome in (_Outcome.WRITTEN, _Outcome.ALREADY):
                complete = self._scan.add(index, update.path) and complete
                touched.add(update.path)
            elif outcome in (_Outcome.DELETED, _Outcome.ABSENT):
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
        with self._user_index(required=False) as user:
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
    def _failed(update: _PathUpdate, found: Found, reason: str, error: str) -> tuple[str, Unwritten]:
        logger.info("cannot %s %s: %s", "delete" if update.new is None else "write", update.path, error)
        return _Outcome.FAILED, Unwritten(
            update.path, str(update.old) if update.old is not None else None,
            str(update.new) if update.new is not None else None, update.new_mode, found, reason, error)

    def _apply_delete(self, wt: Worktree, update: _PathUpdate) -> tuple[str, Unwritten | None]:
        try:
            kind, data, _ = wt.read(update.path)
        except OSError as exc:
            return self._failed(update, Found.UNKNOWN, reason_of(exc), _error_text(exc))
        if kind == Kind.MISSING:
            wt.prune(update.path)
            return _Outcome.ABSENT, None
        if kind == Kind.FILE and data is not None and pygit2.hash(data) == update.old:
            try:
                wt.remove(update.path)
            except (OSError, Blocked) as exc:
                return self._failed(update, Found.OLD, reason_of(exc), _error_text(exc))
            return _Outcome.DELETED, None
        logger.warning("%s was changed locally; not deleting it (it will sync as a local change)",
                       update.path)
        return _Outcome.SKIPPED, None

    def _apply_write(self, wt: Worktree, update: _PathUpdate) -> tuple[str, Unwritten | None]:
        assert update.new is not None
        try:
            kind, data, st_mode = wt.read(update.path)
        except OSError as exc:
            return self._failed(update, Found.UNKNOWN, reason_of(exc), _error_text(exc))
        if kind == Kind.FILE and data is not None:
            current = pygit2.hash(data)
            if current == update.new:
                return _Outcome.ALREADY, None
            if current != update.old:
                logger.warning("%s was changed locally; not overwriting it (it will sync as a local "
                               "change)", update.path)
                return _Outcome.SKIPPED, None
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
        return _Outcome.WRITTEN, None

    # ---- recovery -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Finish or drop the sessions a crash interrupted (see the module docstring); idempotent."""
        with self.lock():
            self._recover_all()

    def _recover_all(self) -> None:
        journals = [r for r in self._repo.references if r.startswith(JOURNAL_PREFIX)]
        errors: list[StoreError] = []
        for journal_ref in journals:
            try:
                self._recover_journal(journal_ref)
            except StoreError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def _recover_journal(self, journal_ref: str) -> None:
        self._lock.require()
        target = self._refs.target(journal_ref)
        if target is None:
            return
        state_ref = STATE_PREFIX + journal_ref[len(JOURNAL_PREFIX):]
        state = self._refs.target(state_ref)
        passed = False
        branch: str | None = None
        if state is not None:
            tree = self._objects.commit(str(state)).tree
            if "head" in tree:
                head_blob = self._repo.get(tree["head"].id)
                passed = isinstance(head_blob, pygit2.Blob) and \
                    bytes(head_blob.data).decode("ascii", "replace").strip() == str(target)
            if "branch" in tree:
                branch_blob = self._repo.get(tree["branch"].id)
                if isinstance(branch_blob, pygit2.Blob):
                    branch = bytes(branch_blob.data).decode("utf-8", "replace").strip() or None
        if not passed:
            logger.warning("dropping the journal of an unfinished sync (%s): the old state is intact",
                           journal_ref)
            self._refs.set_if_equals(journal_ref, target, None, "gitsync: journal dropped")
            return
        logger.warning("finishing a sync that was interrupted after its commit point (%s)", journal_ref)
        branch = branch or self.branch()
        commit = self._objects.commit(str(target))
        first = commit.parent_ids[0] if commit.parent_ids else None
        if branch is None:
            logger.warning("HEAD is detached: not moving any branch to %s", target)
            self._refs.set_if_equals(journal_ref, target, None, "gitsync: journal done")
            return
        old_tree = self._objects.commit(str(first)).tree if first is not None else None
        try:
            plan = self._checkout_plan(old_tree, commit.tree)
        except StoreError as exc:
            logger.warning("not updating the work tree: %s", exc)
            plan = []
        self._complete(journal_ref, branch, first, target, plan, strict=False,
                       reflog="gitsync: finish interrupted sync")
