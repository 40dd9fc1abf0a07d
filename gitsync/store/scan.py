"""The scan of the work tree, with a private index as its stat cache.

``.git/gitsync/index`` is our own index file, used only to remember the stat data of the notes,
so that scanning an unchanged folder costs about what ``git status`` costs; the user's
``.git/index`` is never used for that (see :mod:`gitsync.store.userindex`).  It is seeded from a
copy of the user's index, holds regular files only, is written only under the repository lock,
and its tree is kept reachable from ``refs/gitsync/worktree`` so that ``git gc`` cannot prune the
objects it names.  :meth:`StatCache.compose` puts a scan together with what the user staged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pygit2
from pygit2 import Oid, Signature
from pygit2.enums import DeltaStatus, DiffOption, RepositoryOpenFlag

from gitsync.environ import ENV_LOCK
from gitsync.errors import StoreError
from gitsync.store import _names
from gitsync.store._worktree import Blocked, Kind, Worktree
from gitsync.store.locking import RepoLock
from gitsync.store.objects import is_regular
from gitsync.store.refs import WORKTREE_REF, Refs
from gitsync.store.trees import Trees

__all__ = ["StatCache", "open_with_index"]

logger = logging.getLogger(__name__)

#: Up to this many changed paths, the private index's tree is computed by editing its last tree.
_EDIT_TREE_MAX: Final = 5_000
_SCAN_FLAGS: Final = (
    DiffOption.INCLUDE_UNTRACKED
    | DiffOption.RECURSE_UNTRACKED_DIRS
    | DiffOption.INCLUDE_TYPECHANGE
    | DiffOption.SKIP_BINARY_CHECK
    | DiffOption.UPDATE_INDEX
)

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


def open_with_index(root: str, index_path: str) -> tuple[pygit2.Repository, pygit2.Index]:
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


class StatCache:
    """The private index of one work tree, loaded once and re-read when it changed on disk."""

    def __init__(self, repo: pygit2.Repository, root: Path, lock: RepoLock, refs: Refs, trees: Trees,
                 signature: Callable[[], Signature],
                 head_tree: Callable[[], pygit2.Tree | None]) -> None:
        self._repo = repo
        self.root = root
        self._gitdir = Path(repo.path)
        self._lock = lock
        self._refs = refs
        self._trees = trees
        self._signature = signature
        self._head_tree = head_tree
        self._private_repo: pygit2.Repository | None = None
        self._private_index: pygit2.Index | None = None
        self._told_hidden: set[str] = set()  # notes behind a symlinked folder, reported

    @property
    def path(self) -> Path:
        return self._gitdir / "gitsync" / "index"

    def load(self) -> tuple[pygit2.Repository, pygit2.Index]:
        """The repository opened on the private index, loaded fresh from disk if it changed."""
        if self._private_repo is None or self._private_index is None:
            path = self.path
            path.parent.mkdir(exist_ok=True)
            fresh = not path.exists()
            if fresh:
                self._seed(path)
            try:
                repo, index = open_with_index(str(self.root), str(path))
            except pygit2.GitError as exc:
                logger.warning("private index %s unreadable (%s); rebuilding it", path, exc)
                path.unlink(missing_ok=True)
                repo, index = open_with_index(str(self.root), str(path))
                fresh = True
            if fresh:
                self._normalise(index)
            self._private_repo, self._private_index = repo, index
        else:
            try:
                self._private_index.read(False)
            except pygit2.GitError as exc:
                logger.warning("private index unreadable (%s); rebuilding it", exc)
                self._private_index.clear()
                self._normalise(self._private_index)
        return self._private_repo, self._private_index

    def _seed(self, path: Path) -> None:
        """Start the cache from a copy of the user's index: its stat data saves a full re-hash."""
        user = self._gitdir / "index"
        if user.is_file():
            try:
                shutil.copyfile(user, path)
            except OSError as exc:
                logger.debug("cannot copy %s: %s", user, exc)

    def _normalise(self, index: pygit2.Index) -> None:
        """Keep only regular files; fall back to the HEAD tree if the seed is unusable."""
        if index.conflicts is not None or len(index) == 0:
            index.clear()
            head_tree = self._head_tree()
            if head_tree is not None:
                index.read_tree(head_tree)
        for entry in list(index):
            if not is_regular(entry.mode):
                index.remove(entry.path)

    def add(self, index: pygit2.Index, path: str) -> bool:
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

    def refresh(self, *, cleanup: bool) -> pygit2.Tree:
        """Bring the private index up to date with the work tree; return its tree (regular files).

        ``diff_to_workdir(UPDATE_INDEX)`` re-hashes only stat-dirty files and records fresh stat
        data for those whose content did not change; new, changed and deleted files are applied
        one by one.  Symlinks, ignored files, nested repositories and our own temporary files are
        never added (``cleanup`` also deletes temporary files left by a crash).
        """
        repo, index = self.load()
        for _ in range(2):
            base = self.tree_cached(index)
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
                    self.add(index, path)
                elif path in index:
                    index.remove(path)
            try:
                tree_id = self.tree_after(index, base, touched)
                if tree_id not in repo:  # a cached tree id whose object was pruned
                    raise pygit2.GitError(f"tree {tree_id} is missing")
            except pygit2.GitError as exc:
                # Objects only our index knew were pruned by `git gc` (refs/gitsync/worktree normally
                # prevents that): rebuild from HEAD and re-hash what differs.
                logger.warning("stat cache refers to pruned objects (%s); rebuilding it", exc)
                index.clear()
                self._normalise(index)
                continue
            tree = repo.get(tree_id)
            assert isinstance(tree, pygit2.Tree)
            return tree
        raise StoreError(f"cannot build a tree of the work tree {self.root}")

    def tree_cached(self, index: pygit2.Index) -> Oid | None:
        """The tree of ``index`` when its cache tree is valid (then this is O(1)), else None."""
        try:
            tree = index.write_tree()
        except pygit2.GitError:
            return None
        return tree if tree in self._repo else None

    def tree_after(self, index: pygit2.Index, base: Oid | None, touched: set[str]) -> Oid:
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
            tree = self._trees.edit(base_tree, writes, deletes, force=True)
        except (StoreError, pygit2.GitError) as exc:
            logger.debug("editing the scanned tree failed (%s): building it from the index", exc)
            return index.write_tree()
        new_tree = self._repo.get(tree)
        assert isinstance(new_tree, pygit2.Tree)
        index.read_tree(new_tree)
        return tree

    def persist(self) -> bool:
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
        stale = self.path.with_name("index.lock")
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()  # we hold gitsync.lock: nobody else writes the private index
        try:
            self._private_index.write()
        except (pygit2.GitError, OSError) as exc:
            logger.warning("cannot save the stat cache %s: %s", self.path, exc)
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

    def compose(self, base: pygit2.Tree | None, scan: pygit2.Tree) -> tuple[Oid, Oid]:
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
            _, index = self.load()
            for path in readd:
                if self.add(index, path):
                    entry = index[path]
                    writes[path] = (entry.id, int(entry.mode))
                else:
                    deletes.append(path)
            private_tree = index.write_tree()
        if not writes and not deletes:
            return base.id, private_tree
        return self._trees.edit(base, writes, deletes, force=True), private_tree

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
