"""Per-peer sync state: ``refs/gitsync/<peer>`` -> a chain of state commits, one per finished session.

A state commit's tree holds the peer's state files (anchors, the LUID map, DevInf...: blobs the
caller names), ``synced`` (the notes tree both sides agreed on; a tree entry keeps it safe from
``git gc``), ``head`` (the branch commit the session installed) and ``branch``.  The journal of a
session in progress is ``refs/gitsync/journal/<peer>``.  Peer names are encoded into one ref
component by :func:`gitsync.store._names.encode_peer`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

import pygit2
from pygit2 import Oid
from pygit2.enums import FileMode

from gitsync.errors import StoreError
from gitsync.store import _names
from gitsync.store.objects import Objects, remember
from gitsync.store.refs import JOURNAL_PREFIX, STATE_PREFIX, Refs

__all__ = ["StateRefs", "SyncStateSnapshot"]

#: State files this big are remembered with their blob id, so an unchanged one is not re-hashed.
_STATE_BLOB_MEMO_MIN: Final = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncStateSnapshot:
    """One saved sync state of a peer, as stored by :meth:`GitStore.finish_sync`."""

    commit: str
    files: dict[str, bytes]
    synced_tree: str | None
    head: str | None
    message: str


class StateRefs:
    """The state refs of one repository; moved only by :meth:`Refs.set_if_equals`."""

    def __init__(self, repo: pygit2.Repository, refs: Refs, objects: Objects) -> None:
        self._repo = repo
        self._refs = refs
        self._objects = objects
        self._blobs: dict[tuple[str, int], tuple[bytes, Oid]] = {}  # big state files seen

    def ref(self, peer: str) -> str:
        """The state ref of ``peer``."""
        name = STATE_PREFIX + _names.encode_peer(peer)
        if not pygit2.reference_is_valid_name(name):  # pragma: no cover - encode_peer guarantees it
            raise StoreError(f"peer name {peer!r} cannot be stored")
        return name

    def journal(self, peer: str) -> str:
        """The journal ref of ``peer``: exists only while a session with it is being committed."""
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

    def delete(self, peer: str) -> list[str]:
        """Delete the state ref of ``peer`` (with its history of sessions); returns what went.

        By compare-and-swap like every move of a ref, so the caller holds the repository lock.
        """
        gone: list[str] = []
        if self._repo.references.get(self.journal(peer)) is not None:
            raise StoreError(f"a sync with {peer} is still being finished: run gitsync-notes status first")
        ref = self.ref(peer)
        target = self._refs.target(ref)
        if target is not None:
            self._refs.set_if_equals(ref, target, None, f"gitsync: forget {peer}")
            gone.append(ref)
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
                    files[name] = self._blob_seen(name, bytes(obj.data), obj.id)
        return SyncStateSnapshot(commit=str(commit.id), files=files, synced_tree=synced, head=head,
                                 message=commit.message)

    def load(self, peer: str) -> SyncStateSnapshot | None:
        """The latest saved state of ``peer``, or None if it never finished a session."""
        target = self._refs.target(self.ref(peer))
        if target is None:
            return None
        return self._snapshot(self._objects.commit(str(target)))

    def history(self, peer: str) -> Iterator[SyncStateSnapshot]:
        """Every saved state of ``peer``, newest first."""
        target = self._refs.target(self.ref(peer))
        while target is not None:
            commit = self._objects.commit(str(target))
            yield self._snapshot(commit)
            target = commit.parent_ids[0] if commit.parent_ids else None

    def _blob_seen(self, name: str, data: bytes, oid: Oid) -> bytes:
        if len(data) >= _STATE_BLOB_MEMO_MIN:
            remember(self._blobs, (name, len(data)), (data, oid), size=8)
        return data

    def _file_blob(self, name: str, data: bytes) -> Oid:
        """The blob of a state file; a big one (the LUID map: ~2 MB at 20,000 notes) that equals
        what was loaded or saved before is not hashed again (~20 ms)."""
        seen = self._blobs.get((name, len(data)))
        if seen is not None and seen[0] == data:
            return seen[1]
        oid = self._repo.create_blob(data)
        self._blob_seen(name, data, oid)
        return oid

    def tree(self, files: Mapping[str, bytes], synced: Oid | None, head: Oid | None,
                    branch: str | None) -> Oid:
        tb = self._repo.TreeBuilder()
        for name, data in files.items():
            tb.insert(name, self._file_blob(name, bytes(data)), FileMode.BLOB)
        if synced is not None:
            tb.insert("synced", synced, FileMode.TREE)  # a tree entry keeps it reachable (gc-safe)
        if head is not None:
            tb.insert("head", self._repo.create_blob(f"{head}\n".encode()), FileMode.BLOB)
        if branch is not None:
            tb.insert("branch", self._repo.create_blob(f"{branch}\n".encode()), FileMode.BLOB)
        return tb.write()

    def installed(self, state: Oid) -> tuple[str | None, str | None]:
        """(``head``, ``branch``) as recorded in the state commit ``state``: what it installed."""
        tree = self._objects.commit(str(state)).tree
        head: str | None = None
        branch: str | None = None
        if "head" in tree:
            head_blob = self._repo.get(tree["head"].id)
            if isinstance(head_blob, pygit2.Blob):
                head = bytes(head_blob.data).decode("ascii", "replace").strip()
        if "branch" in tree:
            branch_blob = self._repo.get(tree["branch"].id)
            if isinstance(branch_blob, pygit2.Blob):
                branch = bytes(branch_blob.data).decode("utf-8", "replace").strip() or None
        return head, branch
