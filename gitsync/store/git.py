"""The Git store: notes are files in the work tree, sync state lives in refs under ``refs/gitsync/``.

:class:`GitStore` is the facade the rest of gitsync uses; each concern lives in its own module of
``gitsync.store`` (the only package that imports pygit2), one object per repository, wired here:

=================  ===============================================================================
``locking``        ``.git/gitsync.lock`` (``flock``, re-entrant; never stale)
``refs``           compare-and-swap as the only way a ref moves; stale lock files and ref claims
``objects``        commits, trees and blobs by id; what a note is
``trees``          note listings, diffs with rename pairing, tree edits (cached)
``scan``           the private index ``.git/gitsync/index`` as the stat cache of the work tree
``userindex``      the user's ``.git/index`` under Git's ``index.lock`` protocol
``staterefs``      per-peer state commits under ``refs/gitsync/<peer>``
``checkout``       work-tree updates that never overwrite the user's edits; notes not yet written
``transaction``    ``finish_sync``'s one commit point, the journal, recovery after a crash
``merge``          three-way merge of note contents
``crashpoints``    the named steps the crash tests kill the process at
=================  ===============================================================================

Crash-safety rules (the details are in each module's docstring)
    * Refs move only by compare-and-swap inside a libgit2 ref transaction (``refs``).
    * The state ref is the commit point of a session.  The branch moves only after it, and the work
      tree and the user's index are updated only after the branch moved (``transaction``).
    * Every ref update and every write of the private index happens under the repository lock;
      holding it is what lets us call our own ``refs/gitsync/**.lock`` files stale (``refs``).
      ``.git/index.lock`` is never removed unless a killed gitsync provably left it
      (``userindex``); ``check_safe_state`` reports it instead.
    * Work-tree files are replaced via a temporary file in the same folder, and only when their
      current content is the old blob (or they are missing): a note the user edited meanwhile is
      left alone (``checkout``).  Files are not fsync'ed (like Git's default): the guarantees hold
      for a killed process, not for a power cut.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import pygit2
from pygit2 import Oid, Signature
from pygit2.enums import RepositoryOpenFlag, RepositoryState

from gitsync.atomic import atomic_write
from gitsync.errors import ConfigError, RepositoryBusy, RepositoryStateError, StoreError
from gitsync.store.checkout import Checkout
from gitsync.store.crashpoints import CRASH_POINTS, UNWRITTEN_CRASH_POINTS
from gitsync.store.locking import RepoLock, folder_lock
from gitsync.store.merge import merge3
from gitsync.store.objects import EMPTY_TREE, Objects
from gitsync.store.refs import (
    STALE_FOREIGN_LOCK_SECONDS,
    STALE_GITSYNC_LOCK_SECONDS,
    STATE_PREFIX,
    RefMoved,
    Refs,
)
from gitsync.store.scan import StatCache
from gitsync.store.staterefs import StateRefs, SyncStateSnapshot
from gitsync.store.transaction import SyncTransaction, subject
from gitsync.store.trees import TreeChange, Trees
from gitsync.store.unwritten import Ledger, Unwritten
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
        self._states = StateRefs(repo, self._refs, self._objects)
        self._index = UserIndex(repo, self._gitdir, root, self._lock, self._objects, self.head)
        self._ledger = Ledger(repo, self._refs.set_if_equals, self._signature)  # notes not yet written
        self._checkout = Checkout(repo, root, self._objects, self._trees, self._scan, self._index,
                                  self._ledger)
        self._txn = SyncTransaction(repo, root, self._lock, self.lock, self._refs, self._objects,
                                    self._states, self._checkout, self._signature, self.branch,
                                    self.check_safe_state)

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
                    store._txn.recover_all()
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
        self._txn.finish_journals()
        self._checkout.retry_unwritten()

    def settle(self) -> None:
        """Write the notes of sessions committed with ``defer_worktree`` into the work tree.

        Never waits: another process holding the lock took it after our commit, so it finished
        them on taking it.
        """
        if self._txn.deferred:
            with self._try_lock() as held:
                if not held:
                    logger.debug("repository busy: its lock holder writes the committed notes")

    @property
    def unsettled(self) -> bool:
        """Whether a session this store committed still has to update the work tree."""
        return bool(self._txn.deferred)

    # ---- notes a sync could not write (see gitsync.store.checkout) ------------------------------

    def unwritten(self) -> list[Unwritten]:
        """The notes committed by a sync but not (yet) written into the folder, by path."""
        return self._checkout.unwritten()

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

    def undo_commit(self, commit: str, parent: str, index: bytes | None, branch: str | None = None) -> bool:
        """Take back ``commit`` (made by us on ``branch``, by default the current one): the branch
        goes back to ``parent`` by compare-and-swap and the user's index file to ``index``.

        Used when a sync fails after committing the user's edits, so that the failed sync leaves
        the repository as it found it. Returns False, changing nothing, if the branch moved on or
        is no longer checked out (then the commit is the only place that holds the edits).
        """
        with self.lock():
            if branch is None:
                branch = self.branch()
            if branch is None or branch != self.branch():
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
            tree = self._checkout.overlay_unwritten(tree)
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
                new_tree = self._checkout.overlay_unwritten(new_tree)
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
                    reflog = f"commit{'' if parents else ' (initial)'}: {subject(message)}"
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

    def peers(self) -> list[str]:
        """Names of the peers that have a saved sync state, sorted."""
        return self._states.peers()

    def forget_peer(self, peer: str) -> list[str]:
        """Delete what the repository keeps about ``peer``: its state ref (with its history of
        sessions), its ``gitsync.<peer>.*`` config, and the default server if it was that peer.
        The notes and the branch are untouched.  Call under :meth:`lock`.  Returns what went."""
        gone = self._states.delete(peer)
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

    def state_load(self, peer: str) -> SyncStateSnapshot | None:
        """The latest saved state of ``peer``, or None if it never finished a session."""
        return self._states.load(peer)

    def state_history(self, peer: str) -> Iterator[SyncStateSnapshot]:
        """Every saved state of ``peer``, newest first."""
        return self._states.history(peer)

    # ---- the sync transaction (see gitsync.store.transaction) ----------------------------------

    def finish_sync(self, peer: str, *, expected_state: str | None, files: Mapping[str, bytes],
                    synced_tree: str | None, new_commit: str | None, expected_head: str | None,
                    message: str, defer_worktree: bool = False, expected_branch: str | None = None) -> str:
        """Commit a session: save the peer's state and install ``new_commit``; return the state commit.

        See :meth:`SyncTransaction.finish_sync` for the steps and what is raised when.
        """
        return self._txn.finish_sync(peer, expected_state=expected_state, files=files,
                                     synced_tree=synced_tree, new_commit=new_commit,
                                     expected_head=expected_head, message=message,
                                     defer_worktree=defer_worktree, expected_branch=expected_branch)

    # ---- recovery -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Finish or drop the sessions a crash interrupted (see the module docstring); idempotent."""
        with self.lock():
            self._txn.recover_all()
