"""The drivers' session ledger with the store at hand: notes a peer cannot carry, payloads we cannot read."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from gitsync.app.paths import PathMap
from gitsync.formats.names import unique_path
from gitsync.model import SyncMode
from gitsync.sync.ledger import Ledger
from gitsync.sync.payload import unreadable_name
from gitsync.sync.report import SyncReport

if TYPE_CHECKING:
    from gitsync.store.git import GitStore

__all__ = ["TreeEdits"]

logger = logging.getLogger(__name__)


class TreeEdits(Ledger):
    """The ledger (:class:`~gitsync.sync.ledger.Ledger`) of a driver's session, plus the two
    decisions that need a note's bytes from the store."""

    notes: PathMap
    report: SyncReport
    store: GitStore
    mode: SyncMode
    synced_tree: str | None  # the tree both sides agreed on at the last sync

    def _synced_after(self, new_tree: str) -> str:
        """The tree both sides agree on at the end of this session: the last one (none after a
        mode that sent everything) with the edits the peer and we agreed on (``new_tree`` lends
        it the unchanged subtrees)."""
        base = self.synced_tree if not self.mode.sends_all else None
        gone = self.synced_deletes - set(self.synced_writes)
        return self.store.build_synced(base, self.synced_writes, gone, like=new_tree)

    def _commit(self, new_tree: str, head_tree: str | None, head: str | None, message: str) -> str | None:
        """The sync commit of ``new_tree`` on ``head``; ``None`` when the session changed nothing."""
        if self.report.changed() or new_tree != head_tree:
            return self.store.commit_tree(new_tree, [head] if head else [], message)
        return None

    def _unsendable(self, path: str, blob: str) -> bool:
        """Whether the note ``path`` (blob ``blob``) cannot go to this peer unaltered (then it is
        reported as skipped: it is not sent, and a refresh must not delete it here)."""
        if self.wire.exact:
            return False
        why = self.wire.refusal(path, self.store.read_blob(blob))
        if why is None:
            return False
        self.report.skip(path, why)
        return True

    def _keep_unreadable(
        self,
        item_id: str | None,
        data: bytes,
        content_type: str | None,
        why: str,
        taken: Callable[[str], bool],
    ) -> str:
        """Keep a payload we cannot read as a note of its own, byte for byte, and count it as an
        error (the sync exits non-zero).  The caller answers the peer with success, so that it
        does not send the item again every session; nothing is lost, the user sees the file."""
        path = unique_path(unreadable_name(item_id, content_type), taken)
        self._write(None, path, self.store.write_blob(data))
        self.report.local.err += 1
        self.report.unreadable.append((path, why))
        logger.warning("%s sent a note we cannot read, kept as %s: %s", self.report.peer, path, why)
        return path
