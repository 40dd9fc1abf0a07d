"""Trees of notes: listing, diffs with rename pairing, and building a tree by editing another.

Trees never change, so what is computed from them is cached (a few of each; a session asks for
the same ones several times, and each costs tens of ms at 20,000 notes).  A listing also follows
from another one plus the changes between them, so a diff or a build seeds the cache for the tree
on its other side.  Trees are edited, never rebuilt: only the folders on a changed path are
written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pygit2
from pygit2 import IndexEntry, Oid
from pygit2.enums import DeltaStatus, DiffFind, DiffOption, FileMode

from gitsync.errors import StoreError
from gitsync.model import ChangeKind
from gitsync.store import _names
from gitsync.store.objects import REGULAR, TOP_LEVEL_NON_NOTES, Objects, is_note, remember

__all__ = ["RENAME_PAIR_BUDGET", "TreeChange", "Trees"]

logger = logging.getLogger(__name__)

#: Above this many (unpaired added x unpaired deleted) notes, similar-content rename detection is
#: skipped (exact renames are always found): libgit2 compares every pair.
RENAME_PAIR_BUDGET: Final = 25_000_000
#: tree builds with more paths than this are not memoised (their keys would hold every path)
_MEMO_MAX_PATHS: Final = 5000


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


class _Node:
    """A folder (or file) of a tree edit: ``op`` is ("w", oid, mode|None) or ("d",)."""

    __slots__ = ("children", "has_writes", "op")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.op: tuple[Any, ...] | None = None
        self.has_writes = False


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
    """``notes`` (path -> blob) after a ``build`` of ``writes`` and ``deletes``."""
    out = dict(notes)
    for path in deletes:
        out.pop(path, None)
    out.update((p, b) for p, b in writes.items() if is_note(p, int(FileMode.BLOB)))
    return out


class Trees:
    """Reads and writes trees of one repository, with small caches of what was computed."""

    def __init__(self, repo: pygit2.Repository, objects: Objects) -> None:
        self._repo = repo
        self._objects = objects
        self._notes_cache: dict[Oid, dict[str, str]] = {}  # tree -> list_notes(tree)
        self._diff_cache: dict[tuple[Oid | None, Oid | None], list[TreeChange]] = {}
        self._built_cache: dict[tuple[Any, ...], str] = {}  # build arguments -> tree

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

    def build(self, base_tree: str | None, writes: Mapping[str, str], deletes: Iterable[str]) -> str:
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
            tree = self.edit(base, write_oids, delete_list, force=False)
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
        """``build(base_tree, writes, deletes)`` for a peer's synced tree, or ``like`` when that
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
        return self.build(base_tree, writes, delete_list)

    def edit(self, base: pygit2.Tree | None, writes: Mapping[str, tuple[Oid, int | None]],
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
