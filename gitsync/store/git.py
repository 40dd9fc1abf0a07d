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
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pygit2
from pygit2 import IndexEntry, Oid, Signature
from pygit2.enums import (
    DeltaStatus,
    DiffFind,
    DiffOption,
    FileMode,
    RepositoryOpenFlag,
    RepositoryState,
)

from gitsync.atomic import atomic_write
from gitsync.environ import ENV_LOCK
from gitsync.errors import ConfigError, RepositoryBusy, RepositoryStateError, StoreError
from gitsync.model import ChangeKind
from gitsync.store import _names
from gitsync.store._worktree import Blocked, Kind, Worktree
from gitsync.store.locking import RepoLock, folder_lock
from gitsync.store.merge import merge3
from gitsync.store.objects import (
    EMPTY_TREE,
    REGULAR,
    TOP_LEVEL_NON_NOTES,
    Objects,
    is_note,
    is_regular,
    remember,
)
from gitsync.store.refs import (
    JOURNAL_PREFIX,
    STALE_FOREIGN_LOCK_SECONDS,
    STALE_GITSYNC_LOCK_SECONDS,
    STATE_PREFIX,
    WORKTREE_REF,
    RefLocked,
    RefMoved,
    Refs,
)
from gitsync.store.unwritten import Found, Ledger, Seen, Unwritten, Verdict, decide, describe, reason_of

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
#: How long a ``.git/index.lock`` may stay before we call the index busy (``git status`` run by an
#: editor holds it for milliseconds).
INDEX_LOCK_WAIT_SECONDS: Final = 2.0
#: Above this many (unpaired added x unpaired deleted) notes, similar-content rename detection is
#: skipped (exact renames are always found): libgit2 compares every pair.
RENAME_PAIR_BUDGET: Final = 25_000_000
#: Up to this many changed paths, the private index's tree is computed by editing its last tree.
_EDIT_TREE_MAX: Final = 5_000
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

#: tree builds with more paths than this are not memoised (their keys would hold every path)
_MEMO_MAX_PATHS: Final = 5000
#: State files this big are remembered with their blob id, so an unchanged one is not re-hashed.
_STATE_BLOB_MEMO_MIN: Final = 64 * 1024
_SCAN_FLAGS: Final = (
    DiffOption.INCLUDE_UNTRACKED
    | DiffOption.RECURSE_UNTRACKED_DIRS
    | DiffOption.INCLUDE_TYPECHANGE
    | DiffOption.SKIP_BINARY_CHECK
    | DiffOption.UPDATE_INDEX
)
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
class TreeChange:
    """One note changed between two trees; a rename is MODIFY with ``old_path != new_path``."""

    kind: ChangeKind
    old_path: str | None
    new_path: str | None
    old_blob: str | None
    new_blob: str | None

    @property
    def path(self) -> str:
        """The path the change is sorted by: the new path, or the old one for a delete."""
        return self.new_path if self.new_path is not None else self.old_path or ""


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


class _Node:
    """A folder (or file) of a tree edit: ``op`` is ("w", oid, mode|None) or ("d",)."""

    __slots__ = ("children", "has_writes", "op")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.op: tuple[Any, ...] | None = None
        self.has_writes = False


class _UserIndex:
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


class _IndexChanged(Exception):
    """The user's index changed while we read it; read again."""


def _index_version(path: Path) -> tuple[Any, ...] | None:
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


# ---- module helpers ----------------------------------------------------------------------------

_FROM_ENV_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_NAMESPACE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_INDEX_FILE",
)


def _open_with_index(root: str, index_path: str) -> tuple[pygit2.Repository, pygit2.Index]:
    """Open the repository at ``root`` with ``index_path`` as its index.

    libgit2 only takes another index file through ``GIT_INDEX_FILE`` with ``FROM_ENV``, and reads it
    lazily, so the index is touched while the variable is set.  The other variables ``FROM_ENV``
    honours (``GIT_DIR``, ... as exported to hooks) are hidden meanwhile so they cannot redirect us.
    """
    with ENV_LOCK:
        saved = {k: os.environ.pop(k) for k in _FROM_ENV_VARS if k in os.environ}
        os.environ["GIT_INDEX_FILE"] = index_path
        try:
            repo = pygit2.Repository(root, RepositoryOpenFlag.FROM_ENV | RepositoryOpenFlag.NO_SEARCH)
            index = repo.index
        finally:
            os.environ.pop("GIT_INDEX_FILE", None)
            os.environ.update(saved)
    return repo, index


def _across(notes: Mapping[str, str], changes: list[TreeChange], *, forward: bool) -> dict[str, str]:
    """``notes`` (path -> blob) of one side of ``changes``, carried to the other side."""
    sides = [(c.old_path, c.new_path, c.new_blob) if forward else (c.new_path, c.old_path, c.old_blob)
             for c in changes]
    out = dict(notes)
    for gone, _, _ in sides:
        if gone is not None:
            out.pop(gone, None)
    for _, path, blob in sides:
        if path is not None and blob is not None:
            out[path] = blob
    return out


def _edited(notes: Mapping[str, str], writes: Mapping[str, str], deletes: Iterable[str]) -> dict[str, str]:
    """``notes`` (path -> blob) after a ``build_tree`` of ``writes`` and ``deletes``."""
    out = dict(notes)
    for path in deletes:
        out.pop(path, None)
    out.update((p, b) for p, b in writes.items() if is_note(p, int(FileMode.BLOB)))
    return out


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
        self._private_repo: pygit2.Repository | None = None
        self._private_index: pygit2.Index | None = None
        self._lock = RepoLock(self._gitdir, self._on_lock)
        self._refs = Refs(repo, self._gitdir, self._lock, self._signature)
        self._objects = Objects(repo, root)
        self._staged_cache: tuple[tuple[Any, ...], Oid | None] | None = None
        # Trees never change, so what is computed from them is cached (a few of each; a session asks
        # for the same ones several times, and each costs tens of ms at 20,000 notes).
        self._notes_cache: dict[Oid, dict[str, str]] = {}  # tree -> list_notes(tree)
        self._diff_cache: dict[tuple[Oid | None, Oid | None], list[TreeChange]] = {}
        self._built_cache: dict[tuple[Any, ...], str] = {}  # build_tree arguments -> tree
        self._deferred: dict[str, _Deferred] = {}  # journal ref -> work-tree update still to do
        self._state_blobs: dict[tuple[str, int], tuple[bytes, Oid]] = {}  # big state files seen
        self._ledger = Ledger(repo, self._refs.set_if_equals, self._signature)  # notes not yet written
        self._told: set[Unwritten] = set()  # unwritten notes already reported by this process
        self._told_hidden: set[str] = set()  # notes behind a symlinked folder, reported

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
        if not self._wait_index_lock():
            raise RepositoryStateError(
                f"{index_lock} exists: another git command is running; if none is, a crashed one "
                "left it behind and it can be deleted"
            )
        if str(self.config_get("core.sparseCheckout") or "").lower() == "true":
            raise RepositoryStateError(f"{self.root} uses a sparse checkout, which gitsync cannot sync")

    def _wait_index_lock(self) -> bool:
        """Wait up to ``INDEX_LOCK_WAIT_SECONDS`` for ``.git/index.lock`` to go; whether it went."""
        lock = self._gitdir / "index.lock"
        self._clear_own_stale_index_lock()
        deadline = time.monotonic() + INDEX_LOCK_WAIT_SECONDS
        while lock.exists():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _take_index_lock(self, lock_path: Path) -> int:
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

    def _clear_own_stale_index_lock(self) -> None:
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
            self._repair_user_index()

    def _repair_user_index(self) -> None:
        """A gitsync was killed while installing the user's index for the commit it had just made:
        if the index is exactly HEAD's parent, bring it to HEAD (else the user's staging is kept)."""
        index_path = self._gitdir / "index"
        head = self.head()
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
        with self._user_index(required=False) as user:
            if user is not None:
                user.index.read_tree(commit.tree)
                user.dirty = True
                logger.warning("the Git index was left at the commit before %s; updated it", head[:12])

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
            return self._edit_tree(self._objects.tree(tree), writes, deletes, force=True)
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

    # ---- trees --------------------------------------------------------------------------------

    def list_notes(self, tree: str | None) -> dict[str, str]:
        """Every note of ``tree``: path -> blob id (regular files, without the top-level dotfiles).

        The last few listings are cached (a session asks for the same trees several times; walking
        20,000 notes costs ~60 ms); callers get a copy they may change.
        """
        root = self._objects.tree(tree)
        out: dict[str, str] = {}
        if root is None:
            return out
        cached = self._notes_cache.get(root.id)
        if cached is not None:
            return dict(cached)
        stack: list[tuple[str, pygit2.Tree]] = [("", root)]
        while stack:
            prefix, node = stack.pop()
            for obj in node:
                name = obj.name
                assert name is not None
                mode = int(obj.filemode)
                if mode == int(FileMode.TREE):
                    sub = self._repo.get(obj.id)
                    if isinstance(sub, pygit2.Tree):
                        stack.append((f"{prefix}{name}/", sub))
                elif mode in REGULAR and (prefix or name not in TOP_LEVEL_NON_NOTES):
                    out[prefix + name] = str(obj.id)
        remember(self._notes_cache, root.id, out)
        return dict(out)

    def diff(self, old_tree: str | None, new_tree: str | None) -> list[TreeChange]:
        """Note changes from ``old_tree`` to ``new_tree``, renames detected, sorted by path.

        Exact renames are paired by blob id (cheap for mass moves); the rest go through libgit2's
        similarity detection with the rename limit raised to the number of candidates (its default
        of 1000 silently misses renames), unless there are more than ``RENAME_PAIR_BUDGET`` pairs.
        """
        old, new = self._objects.tree(old_tree), self._objects.tree(new_tree)
        if old is None and new is None:
            return []
        if old is not None and new is not None and old.id == new.id:
            return []
        key = (old.id if old is not None else None, new.id if new is not None else None)
        cached = self._diff_cache.get(key)
        if cached is None:
            cached = remember(self._diff_cache, key, self._diff(old, new))
            self._derive_listing(key, cached)
        return list(cached)

    def _derive_listing(self, key: tuple[Oid | None, Oid | None], changes: list[TreeChange]) -> None:
        """With the notes of one side of a diff known, the other side's follow from the changes."""
        old, new = key
        known_old = self._notes_cache.get(old) if old is not None else {}
        known_new = self._notes_cache.get(new) if new is not None else {}
        if known_old is not None and known_new is None and new is not None:
            remember(self._notes_cache, new, _across(known_old, changes, forward=True))
        elif known_new is not None and known_old is None and old is not None:
            remember(self._notes_cache, old, _across(known_new, changes, forward=False))

    def _diff(self, old: pygit2.Tree | None, new: pygit2.Tree | None) -> list[TreeChange]:
        if old is not None:
            raw = old.diff_to_tree(new, DiffOption.SKIP_BINARY_CHECK) if new is not None else \
                old.diff_to_tree(flags=DiffOption.SKIP_BINARY_CHECK)
        else:
            assert new is not None
            raw = new.diff_to_tree(flags=DiffOption.SKIP_BINARY_CHECK, swap=True)
        added: dict[str, Oid] = {}
        deleted: dict[str, Oid] = {}
        changes: list[TreeChange] = []
        for delta in raw.deltas:
            o, n = delta.old_file, delta.new_file
            o_note = delta.status != DeltaStatus.ADDED and is_note(o.path, o.mode)
            n_note = delta.status != DeltaStatus.DELETED and is_note(n.path, n.mode)
            if o_note and n_note:
                if o.id != n.id:
                    changes.append(TreeChange(kind=ChangeKind.MODIFY, old_path=o.path, new_path=n.path,
                                              old_blob=str(o.id), new_blob=str(n.id)))
            elif o_note:
                deleted[o.path] = o.id
            elif n_note:
                added[n.path] = n.id
        for old_path, new_path in self._pair_renames(old, deleted, added):
            changes.append(TreeChange(kind=ChangeKind.MODIFY, old_path=old_path, new_path=new_path,
                                      old_blob=str(deleted.pop(old_path)), new_blob=str(added.pop(new_path))))
        changes += [TreeChange(kind=ChangeKind.ADD, old_path=None, new_path=p, old_blob=None,
                               new_blob=str(b)) for p, b in added.items()]
        changes += [TreeChange(kind=ChangeKind.DELETE, old_path=p, new_path=None, old_blob=str(b),
                               new_blob=None) for p, b in deleted.items()]
        changes.sort(key=lambda c: (c.path, c.old_path or ""))
        return changes

    def _pair_renames(self, old: pygit2.Tree | None, deleted: Mapping[str, Oid],
                      added: Mapping[str, Oid]) -> list[tuple[str, str]]:
        if old is None or not deleted or not added:
            return []
        pairs: list[tuple[str, str]] = []
        by_blob: dict[Oid, list[str]] = {}
        for path in sorted(deleted):
            by_blob.setdefault(deleted[path], []).append(path)
        rest_added: dict[str, Oid] = {}
        for path in sorted(added):
            candidates = by_blob.get(added[path])
            if candidates:
                base = path.rsplit("/", 1)[-1]
                same = [c for c in candidates if c.rsplit("/", 1)[-1] == base]
                pick = same[0] if same else candidates[0]
                candidates.remove(pick)
                pairs.append((pick, path))
            else:
                rest_added[path] = added[path]
        paired_old = {p for p, _ in pairs}
        rest_deleted = {p: b for p, b in deleted.items() if p not in paired_old}
        if not rest_added or not rest_deleted:
            return pairs
        if len(rest_added) * len(rest_deleted) > RENAME_PAIR_BUDGET:
            logger.info("%d added x %d deleted notes: skipping similar-content rename detection",
                        len(rest_added), len(rest_deleted))
            return pairs
        # A diff that holds only the unpaired deletes and adds: the old tree against an in-memory
        # index of (old - deletes + adds), so no object is written just to detect renames.
        idx = pygit2.Index()
        idx.read_tree(old)
        for path in rest_deleted:
            idx.remove(path)
        for path, blob in rest_added.items():
            idx.add(IndexEntry(path, blob, FileMode.BLOB))
        sub = old.diff_to_index(idx, DiffOption.SKIP_BINARY_CHECK)
        limit = max(1000, len(rest_added), len(rest_deleted))
        sub.find_similar(DiffFind.FIND_RENAMES, rename_limit=limit)
        for delta in sub.deltas:
            if delta.status == DeltaStatus.RENAMED:
                o, n = delta.old_file.path, delta.new_file.path
                if o in rest_deleted and n in rest_added:
                    pairs.append((o, n))
                    del rest_deleted[o]
                    del rest_added[n]
        return pairs

    def build_tree(self, base_tree: str | None, writes: Mapping[str, str], deletes: Iterable[str]) -> str:
        """``base_tree`` with ``writes`` (path -> blob id) and ``deletes`` applied; returns the tree id.

        Folders are created and emptied folders pruned.  A written path keeps an executable mode it
        had.  Raises ``StoreError`` for unsafe paths, unknown blobs, a path both written and deleted,
        and file/folder clashes (writing ``a/b`` while ``a`` stays a file, or ``a`` over a folder).
        Deleting a path that does not exist is not an error.
        """
        base = self._objects.tree(base_tree)
        write_oids: dict[str, tuple[Oid, int | None]] = {}
        for path, blob in writes.items():
            _names.check_path(path)
            write_oids[path] = (self._objects.oid(blob, "blob"), None)
        delete_list = [_names.check_path(p) for p in deletes]
        both = set(write_oids) & set(delete_list)
        if both:
            raise StoreError(f"paths both written and deleted: {sorted(both)}")
        small = len(write_oids) + len(delete_list) <= _MEMO_MAX_PATHS  # keep big first syncs lean
        key = (base.id if base is not None else None, frozenset(writes.items()), frozenset(delete_list))
        built = self._built_cache.get(key) if small else None
        if built is None:
            tree = self._edit_tree(base, write_oids, delete_list, force=False)
            built = str(tree)
            if small:
                remember(self._built_cache, key, built)
            listing = self._notes_cache.get(base.id) if base is not None else {}
            if listing is not None and tree not in self._notes_cache:
                # the new tree's notes follow from the old ones: no walk of 20,000 entries later
                remember(self._notes_cache, tree, _edited(listing, writes, delete_list))
        return built

    def build_synced(self, base_tree: str | None, writes: Mapping[str, str], deletes: Iterable[str],
                     *, like: str | None) -> str:
        """``build_tree(base_tree, writes, deletes)`` for a peer's synced tree, or ``like`` when that
        tree holds exactly those notes.

        A synced tree only ever serves for note listings and diffs, which ignore what is not a note
        (``.gitattributes``, symlinks) and file modes; at the end of a sync it usually has the notes
        of the new head, which is then reused instead of rebuilding every touched folder again.
        """
        delete_list = list(deletes)
        base = self._objects.tree(base_tree)
        known = self._notes_cache.get(base.id) if base is not None else {}
        candidate = self._objects.tree(like)
        if (
            known is not None
            and candidate is not None
            and candidate.id in self._notes_cache
            and _edited(known, writes, delete_list) == self._notes_cache[candidate.id]
        ):
            return str(candidate.id)
        return self.build_tree(base_tree, writes, delete_list)

    def _edit_tree(self, base: pygit2.Tree | None, writes: Mapping[str, tuple[Oid, int | None]],
                   deletes: Iterable[str], *, force: bool) -> Oid:
        """Apply writes/deletes touching only the folders on their paths (not a full-tree rewrite)."""
        root = _Node()
        for path in deletes:
            node = root
            for part in path.split("/"):
                node = node.children.setdefault(part, _Node())
            node.op = ("d",)
        for path, (oid, mode) in writes.items():
            node = root
            parts = path.split("/")
            for i, part in enumerate(parts):
                node.has_writes = True
                node = node.children.setdefault(part, _Node())
                if i < len(parts) - 1 and node.op is not None and node.op[0] == "w":
                    raise StoreError(f"cannot write both {'/'.join(parts[:i + 1])} and {path}")
            if node.children and node.has_writes:
                raise StoreError(f"cannot write both {path} and files below it")
            node.op = ("w", oid, mode)
            node.has_writes = True
        tree = self._apply_node(base, root, "", force=force)
        if tree is None:
            return self._repo.TreeBuilder().write()
        return tree

    def _apply_node(self, base: pygit2.Tree | None, node: _Node, prefix: str, *, force: bool) -> Oid | None:
        tb = self._repo.TreeBuilder(base) if base is not None else self._repo.TreeBuilder()
        for name, child in node.children.items():
            path = prefix + name
            existing = base[name] if base is not None and name in base else None
            existing_mode = int(existing.filemode) if existing is not None else None
            is_dir = existing_mode == int(FileMode.TREE)
            if child.op is not None and child.op[0] == "w":
                _, oid, mode = child.op
                if is_dir and not force:
                    raise StoreError(f"cannot write file {path}: a folder of that name is in the way")
                if mode is None:
                    executable = existing_mode == int(FileMode.BLOB_EXECUTABLE)
                    mode = int(FileMode.BLOB_EXECUTABLE) if executable else int(FileMode.BLOB)
                tb.insert(name, oid, mode)
                continue
            if child.op is not None and child.op[0] == "d" and existing is not None:
                if is_dir:
                    if not child.children:
                        raise StoreError(f"cannot delete {path}: it is a folder")
                else:
                    tb.remove(name)
                    existing, is_dir = None, False
            if not child.children:
                continue
            if existing is not None and not is_dir:
                if not child.has_writes:
                    continue  # deletes below a file: nothing there
                if not force:
                    raise StoreError(f"cannot create {path}/...: {path} is a file")
                existing = None
            if existing is None and not child.has_writes:
                continue
            sub_base = existing if isinstance(existing, pygit2.Tree) else None
            sub = self._apply_node(sub_base, child, path + "/", force=force)
            if sub is None:
                if tb.get(name) is not None:
                    tb.remove(name)
            else:
                tb.insert(name, sub, FileMode.TREE)
        if len(tb) == 0:
            return None
        return tb.write()

    # ---- the private index (stat cache of the work tree) --------------------------------------

    @property
    def _private_index_path(self) -> Path:
        return self._gitdir / "gitsync" / "index"

    def _private(self) -> tuple[pygit2.Repository, pygit2.Index]:
        """The repository opened on the private index, loaded fresh from disk if it changed."""
        if self._private_repo is None or self._private_index is None:
            path = self._private_index_path
            path.parent.mkdir(exist_ok=True)
            fresh = not path.exists()
            if fresh:
                self._seed_private_index(path)
            try:
                repo, index = _open_with_index(str(self.root), str(path))
            except pygit2.GitError as exc:
                logger.warning("private index %s unreadable (%s); rebuilding it", path, exc)
                path.unlink(missing_ok=True)
                repo, index = _open_with_index(str(self.root), str(path))
                fresh = True
            if fresh:
                self._normalise_private(index)
            self._private_repo, self._private_index = repo, index
        else:
            try:
                self._private_index.read(False)
            except pygit2.GitError as exc:
                logger.warning("private index unreadable (%s); rebuilding it", exc)
                self._private_index.clear()
                self._normalise_private(self._private_index)
        return self._private_repo, self._private_index

    def _seed_private_index(self, path: Path) -> None:
        """Start the cache from a copy of the user's index: its stat data saves a full re-hash."""
        user = self._gitdir / "index"
        if user.is_file():
            try:
                shutil.copyfile(user, path)
            except OSError as exc:
                logger.debug("cannot copy %s: %s", user, exc)

    def _normalise_private(self, index: pygit2.Index) -> None:
        """Keep only regular files; fall back to the HEAD tree if the seed is unusable."""
        if index.conflicts is not None or len(index) == 0:
            index.clear()
            head_tree = self._head_tree()
            if head_tree is not None:
                index.read_tree(head_tree)
        for entry in list(index):
            if not is_regular(entry.mode):
                index.remove(entry.path)

    def _index_add(self, index: pygit2.Index, path: str) -> bool:
        """Hash the work-tree file ``path`` into ``index``; False if it is gone or not regular."""
        try:
            index.add(path)
        except (pygit2.GitError, OSError) as exc:
            if not os.path.lexists(self.root / path):
                if path in index:
                    index.remove(path)
                return False
            logger.warning("cannot read %s: %s (keeping what the store knew)", path, exc)
            return False
        if not is_regular(index[path].mode):  # became a symlink between the scan and the add
            index.remove(path)
            return False
        return True

    def _refresh_private(self, *, cleanup: bool) -> pygit2.Tree:
        """Bring the private index up to date with the work tree; return its tree (regular files).

        ``diff_to_workdir(UPDATE_INDEX)`` re-hashes only stat-dirty files and records fresh stat
        data for those whose content did not change; new, changed and deleted files are applied
        one by one.  Symlinks, ignored files, nested repositories and our own temporary files are
        never added (``cleanup`` also deletes temporary files left by a crash).
        """
        repo, index = self._private()
        for _ in range(2):
            base = self._index_tree_cached(index)
            touched: set[str] = set()
            diff = index.diff_to_workdir(_SCAN_FLAGS)
            for delta in diff.deltas:
                status = delta.status
                if status == DeltaStatus.DELETED:
                    if delta.old_file.path in index:
                        index.remove(delta.old_file.path)
                        touched.add(delta.old_file.path)
                    continue
                if status not in (DeltaStatus.MODIFIED, DeltaStatus.UNTRACKED, DeltaStatus.TYPECHANGE,
                                  DeltaStatus.ADDED):
                    if status == DeltaStatus.UNREADABLE:
                        logger.warning("cannot read %s; skipped", delta.new_file.path)
                    continue
                path = delta.new_file.path
                if _names.is_temp_name(path):
                    if cleanup and status == DeltaStatus.UNTRACKED:
                        self._remove_temp(path)
                    continue
                touched.add(path)
                if is_regular(delta.new_file.mode):
                    self._index_add(index, path)
                elif path in index:
                    index.remove(path)
            try:
                tree_id = self._index_tree_after(index, base, touched)
                if tree_id not in repo:  # a cached tree id whose object was pruned
                    raise pygit2.GitError(f"tree {tree_id} is missing")
            except pygit2.GitError as exc:
                # Objects only our index knew were pruned by `git gc` (refs/gitsync/worktree normally
                # prevents that): rebuild from HEAD and re-hash what differs.
                logger.warning("stat cache refers to pruned objects (%s); rebuilding it", exc)
                index.clear()
                self._normalise_private(index)
                continue
            tree = repo.get(tree_id)
            assert isinstance(tree, pygit2.Tree)
            return tree
        raise StoreError(f"cannot build a tree of the work tree {self.root}")

    def _index_tree_cached(self, index: pygit2.Index) -> Oid | None:
        """The tree of ``index`` when its cache tree is valid (then this is O(1)), else None."""
        try:
            tree = index.write_tree()
        except pygit2.GitError:
            return None
        return tree if tree in self._repo else None

    def _index_tree_after(self, index: pygit2.Index, base: Oid | None, touched: set[str]) -> Oid:
        """``index.write_tree()``, computed by editing ``base`` (the index's tree before the
        ``touched`` paths changed) and re-reading the index from the result.

        libgit2 rebuilds every folder a change invalidated from the whole index: with 1 % of
        20,000 notes edited across 200 folders that is ~0.3 s per call, and a sync made several.
        Editing only those folders of ``base`` costs a fraction; ``read_tree`` of the same entries
        keeps their stat data and makes the cache tree valid again for the next call.
        """
        if base is None or not touched or len(touched) > _EDIT_TREE_MAX:
            return index.write_tree()
        writes: dict[str, tuple[Oid, int | None]] = {}
        deletes: list[str] = []
        for path in touched:
            if path in index:
                entry = index[path]
                writes[path] = (entry.id, int(entry.mode))
            else:
                deletes.append(path)
        base_tree = self._repo.get(base)
        if not isinstance(base_tree, pygit2.Tree):
            return index.write_tree()
        try:
            tree = self._edit_tree(base_tree, writes, deletes, force=True)
        except (StoreError, pygit2.GitError) as exc:
            logger.debug("editing the scanned tree failed (%s): building it from the index", exc)
            return index.write_tree()
        new_tree = self._repo.get(tree)
        assert isinstance(new_tree, pygit2.Tree)
        index.read_tree(new_tree)
        return tree

    def _persist_private(self) -> bool:
        """Write the private index (the stat cache) to disk; failure only costs speed.

        ``git gc`` does not know our index, so its tree is first made reachable from
        ``refs/gitsync/worktree`` (a parentless commit, replaced when the tree changes): otherwise a
        prune could delete blobs and trees the cache still names.
        """
        self._lock.require()
        if self._private_index is None:
            return False
        try:
            self._keep_alive(self._private_index.write_tree())
        except (pygit2.GitError, StoreError) as exc:
            logger.warning("cannot protect the stat cache from git gc: %s", exc)
        stale = self._private_index_path.with_name("index.lock")
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()  # we hold gitsync.lock: nobody else writes the private index
        try:
            self._private_index.write()
        except (pygit2.GitError, OSError) as exc:
            logger.warning("cannot save the stat cache %s: %s", self._private_index_path, exc)
            return False
        return True

    def _keep_alive(self, tree: Oid) -> None:
        current = self._refs.target(WORKTREE_REF)
        if current is not None:
            commit = self._repo.get(current)
            if isinstance(commit, pygit2.Commit) and commit.tree_id == tree:
                return
        sig = self._signature()
        snapshot = self._repo.create_commit(None, sig, sig, "gitsync: work tree as last scanned (keeps the "
                                            "stat cache safe from git gc)\n", tree, [])
        self._refs.set_if_equals(WORKTREE_REF, current, snapshot, "gitsync: scan")

    def _remove_temp(self, path: str) -> None:
        try:
            with Worktree(self.root) as wt:
                kind, _, _ = wt.read(path)
                if kind == Kind.FILE:
                    wt.remove(path, prune=False)
                    logger.info("removed %s left behind by an interrupted sync", path)
        except (OSError, Blocked, StoreError) as exc:
            logger.debug("cannot remove %s: %s", path, exc)

    def _compose(self, base: pygit2.Tree | None, scan: pygit2.Tree) -> tuple[Oid, Oid]:
        """``base`` with its regular files replaced by the scanned ones; returns (tree, private tree).

        Symlinks and gitlinks of ``base`` are kept as they are.  A regular file of ``base`` that the
        scan lacks but that is on disk is tracked-but-ignored: it is added to the private index and
        kept rather than deleted.
        """
        if base is None:
            return scan.id, scan.id
        if base.id == scan.id:
            return base.id, scan.id
        writes: dict[str, tuple[Oid, int | None]] = {}
        deletes: list[str] = []
        readd: list[str] = []
        kept = False  # a symlink or gitlink of base that the scan (regular files only) lacks
        diff = base.diff_to_tree(scan, DiffOption.SKIP_BINARY_CHECK)
        with Worktree(self.root) as wt:
            for delta in diff.deltas:
                o, n = delta.old_file, delta.new_file
                if delta.status == DeltaStatus.DELETED:
                    if is_regular(o.mode):
                        if wt.is_regular_file(o.path):
                            readd.append(o.path)
                        elif self._behind_non_folder(wt, o.path):
                            writes[o.path] = (o.id, int(o.mode))
                            kept = True
                        else:
                            deletes.append(o.path)
                    else:
                        kept = True
                elif is_regular(n.mode):
                    writes[n.path] = (n.id, int(n.mode))
        if not kept and not readd:
            return scan.id, scan.id  # every difference is the scan's: the result is the scan itself
        private_tree = scan.id
        if readd:
            _, index = self._private()
            for path in readd:
                if self._index_add(index, path):
                    entry = index[path]
                    writes[path] = (entry.id, int(entry.mode))
                else:
                    deletes.append(path)
            private_tree = index.write_tree()
        if not writes and not deletes:
            return base.id, private_tree
        return self._edit_tree(base, writes, deletes, force=True), private_tree

    def _behind_non_folder(self, wt: Worktree, path: str) -> bool:
        """Whether ``path`` is out of sight behind a symlink (or fifo...) where its folder was.

        Such a note was not deleted by the user (a symlink is never followed, but the note may well
        be at its other end): it is kept as it was and not synced until the folder is back.  A
        regular file there is a note that replaced the folder: that is the user's change.
        """
        mode = wt.blocker(path)
        if mode is None or stat.S_ISREG(mode):
            return False
        if path not in self._told_hidden:
            self._told_hidden.add(path)
            logger.warning("%s is kept as it was: a folder on its path is not a plain folder (a symlink?); "
                           "it syncs again once that is a folder", path)
        return True

    def scan_worktree_tree(self) -> str | None:
        """The tree the work tree would be committed as right now (HEAD's symlinks etc. kept).

        Uses and, when the repository lock is free, refreshes the stat cache.
        """
        with self._try_lock() as locked:
            scan = self._refresh_private(cleanup=locked)
            tree, _ = self._compose(self._head_tree(), scan)
            tree = self._overlay_unwritten(tree)
            if locked:
                self._persist_private()
        return str(tree)

    # ---- the user's index ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _user_index(self, *, required: bool) -> Iterator[_UserIndex | None]:
        """The user's ``.git/index`` under Git's own lock protocol (``index.lock``, then rename).

        Changes are made on a private copy and installed by writing ``index.lock`` and renaming it
        over ``index``, as Git does.  If the lock is taken: ``RepositoryStateError`` when
        ``required``, else a warning and ``None``.
        """
        index_path = self._gitdir / "index"
        lock_path = self._gitdir / "index.lock"
        self._clear_own_stale_index_lock()
        fd = -1
        deadline = time.monotonic() + INDEX_LOCK_WAIT_SECONDS
        while fd < 0:
            try:
                fd = self._take_index_lock(lock_path)
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
            version = _index_version(index_path)  # stable: we hold index.lock
            handle = _UserIndex(index_path, tmp, existed, version)
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
                installed_version = _index_version(index_path)
                if handle.holds is not None and installed_version is not None:
                    self._staged_cache = (installed_version, handle.holds)  # no re-parse next time
        finally:
            if fd >= 0:
                os.close(fd)
            if not installed:
                lock_path.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
            (self._gitdir / "gitsync" / f"index.lock.{os.getpid()}").unlink(missing_ok=True)

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
            scan = self._refresh_private(cleanup=True)
            for _ in range(5):
                try:
                    version, staged = self._read_staged(head_tree)
                except _IndexChanged:
                    continue
                new_tree, private_tree = self._compose(staged, scan)
                new_tree = self._overlay_unwritten(new_tree)
                self._persist_private()
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
                        user.replacement = self._private_index_path  # same entries, fresh stat data
                    else:
                        tree = self._objects.tree(new_tree)
                        assert tree is not None
                        user.index.read_tree(tree)  # keeps stat data of unchanged entries
                        user.dirty = True
                    user.holds = new_tree
                logger.info("committed local edits as %s on %s", str(commit)[:12], branch)
                return str(commit)
            raise RepositoryStateError(f"the Git index of {self.root} keeps changing; try again")

    def _read_staged(
        self, head_tree: pygit2.Tree | None
    ) -> tuple[tuple[Any, ...] | None, pygit2.Tree | None]:
        """(version, tree) of the user's index, read without locking; HEAD's tree if there is none.

        Cached by the index file's version, so an unchanged index costs one small read.
        """
        path = self._gitdir / "index"
        version = _index_version(path)
        if version is None:
            return None, head_tree
        if self._staged_cache is not None and self._staged_cache[0] == version:
            cached = self._staged_cache[1]
            return version, self._objects.tree(cached) if cached is not None else head_tree
        try:
            index = pygit2.Index(str(path))
        except pygit2.GitError as exc:
            if _index_version(path) != version:
                raise _IndexChanged from exc
            raise RepositoryStateError(f"cannot read {path}: {exc}") from exc
        if _index_version(path) != version:
            raise _IndexChanged
        if index.conflicts is not None:
            raise RepositoryStateError(f"{self.root} has unmerged paths: resolve them first")
        try:
            staged_id: Oid | None = index.write_tree(self._repo)
        except pygit2.GitError as exc:
            logger.warning("cannot read what is staged in .git/index (%s); committing the work tree "
                           "on top of HEAD", exc)
            staged_id = None
        self._staged_cache = (version, staged_id)
        return version, self._objects.tree(staged_id) if staged_id is not None else head_tree

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
        _, index = self._private()
        base = self._index_tree_cached(index)
        touched: set[str] = set()
        complete = True
        for update, outcome in outcomes:
            if outcome in (_Outcome.WRITTEN, _Outcome.ALREADY):
                complete = self._index_add(index, update.path) and complete
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
            self._index_tree_after(index, base, touched)  # leaves a valid cache tree for the next scan
        private_new = self._persist_private() and private_new
        with self._user_index(required=False) as user:
            if user is not None and not user.existed:
                user.index.read_tree(new_tree)  # no index at all (e.g. unborn branch): start one
                user.dirty = True
                user.holds = new_tree.id
            elif user is not None:
                exact = old_tree is not None and self._user_tree(user) == old_tree
                if exact and private_new:
                    # both held the old tree; the stat cache now holds the new one, stat data and all
                    user.replacement = self._private_index_path
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

    def _user_tree(self, user: _UserIndex) -> Oid | None:
        """The tree the user's index holds: known without parsing it when ``_read_staged`` (or our
        own last install) saw this very version of the file."""
        cached = self._staged_cache
        if cached is not None and user.version is not None and cached[0] == user.version:
            return cached[1]
        try:
            return user.index.write_tree(self._repo)
        except pygit2.GitError:
            return None

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
