"""Safety rails of the client: which mode a sync may use, the mass-delete guard, and ``--dry-run``.

Kept apart from the session driver so that ``--dry-run`` decides exactly as a real sync would
(same mode choice, same guard) without contacting the peer.

Dry run, honestly: SyncML has no read-only session.  Even a session that sends nothing changes
the peer's idea of us (anchors, pending-change lists), so a dry run never contacts the peer.  It
reports what *would be sent* (the local changes since the last sync with that peer, or every
note for a slow sync), the edits that would be committed first, the mode, and whether the
mass-delete guard would stop the sync.  What the peer would send back can only be known by
syncing.  Nothing is committed, no branch, sync state, config or work-tree file changes (the store
may refresh its stat cache, ``.git/gitsync/index`` and ``refs/gitsync/worktree``, as ``git status``
refreshes the index).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitsync.errors import GitsyncError, SafetyStop
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.profiles import profile_for
from gitsync.sync.state import PeerState

if TYPE_CHECKING:
    from gitsync.app.options import ClientOptions
    from gitsync.store.git import GitStore, SyncStateSnapshot, TreeChange

__all__ = ["DryRun", "ModeChoice", "choose_mode", "delete_guard", "dry_run", "history_rewritten"]

logger = logging.getLogger(__name__)

#: below this many notes the guard never fires (deleting 2 of 3 notes is ordinary editing)
GUARD_MIN_NOTES = 4


def history_rewritten(store: GitStore, snap: SyncStateSnapshot | None, head: str | None) -> bool:
    """Whether the branch no longer contains the commit the last sync with this peer ended on.

    That happens after ``git commit --amend``, ``git reset`` or a rebase of synced commits.
    A commit that no longer exists at all (pruned) counts as rewritten too.
    """
    if snap is None or snap.head is None:
        return False
    if head is None:
        return True
    try:
        return not store.is_ancestor(snap.head, head)
    except GitsyncError:
        return True


@dataclass(frozen=True, slots=True)
class ModeChoice:
    """The mode a client sync asks for, the anchor it sends, and why it is slow (if it is)."""

    mode: SyncMode
    last_anchor: str | None
    reason: str | None = None


def choose_mode(
    store: GitStore, opts: ClientOptions, snap: SyncStateSnapshot | None, head: str | None
) -> ModeChoice:
    """Two-way only when the last sync with this peer is known and still in the branch's history."""
    st = PeerState.load(snap.files if snap else None)
    mode = opts.mode
    last = st.our_anchor or None
    reason = None
    if snap is None:
        last, reason = None, "first sync with this peer"
    elif st.url != opts.url:
        last, reason = None, f"the server URL changed (was {st.url or 'unknown'})"
    elif history_rewritten(store, snap, head):
        # amend/reset/rebase: rather than guess whether a note missing now was deleted or merely
        # rewritten away, a slow sync compares every note with the peer and deletes nothing
        rewritten = "the branch history was rewritten since the last sync (amend, reset or rebase)"
        if profile_for(st.devinf).slow_sync_with_shared_notes:
            last, reason = None, rewritten
        else:
            logger.warning(
                "%s; %s cannot run a slow sync over notes it already has, so the changes since the last "
                "sync are sent as usual (the delete guard still applies)", rewritten, opts.name
            )
    if last is None and mode is SyncMode.TWO_WAY:
        mode = SyncMode.SLOW
    elif last is not None:
        reason = None
    return ModeChoice(mode=mode, last_anchor=last, reason=reason)


def delete_guard(opts: ClientOptions, deletes: int, total: int, where: str) -> str | None:
    """The message a sync deleting ``deletes`` of ``total`` notes must stop with, or None."""
    if opts.force_delete or opts.delete_guard is None or total < GUARD_MIN_NOTES:
        return None
    if deletes <= opts.delete_guard * total:
        return None
    share = "every one" if deletes >= total else f"{deletes} ({deletes * 100 // total}%)"
    return (
        f"this sync would delete {share} of the {total} notes {where}; nothing was changed. "
        "Re-run with --force-delete if that is what you want."
    )


def check_deletes(opts: ClientOptions, deletes: int, total: int, where: str) -> None:
    """Raise ``SafetyStop`` when the guard says so."""
    message = delete_guard(opts, deletes, total, where)
    if message is not None:
        raise SafetyStop(message)


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a sync would do on our side, worked out without contacting the peer."""

    peer: str
    url: str
    mode: SyncMode
    reason: str | None
    uncommitted: list[TreeChange]  # edits the sync would commit first
    outgoing: list[TreeChange]  # what it would send (every note, as adds, when it sends all)
    guard: str | None  # why the guard would stop the sync, if it would
    notes: list[str] = field(default_factory=list)


def dry_run(store: GitStore, opts: ClientOptions) -> DryRun:
    """Work out what ``sync_client(store, opts, ...)`` would send; write nothing, contact nobody."""
    with store.lock(wait=5.0):
        store.check_safe_state()
        head = store.head()
        head_tree = store.tree_of(head) if head else None
        now_tree = store.scan_worktree_tree()
        uncommitted = store.diff(head_tree, now_tree)
        snap = store.state_load(opts.name)
        choice = choose_mode(store, opts, snap, head)
        synced = snap.synced_tree if snap else None
        outgoing: list[TreeChange] = []
        guard = None
        remarks: list[str] = []
        mode = choice.mode
        if mode.client_sends:
            if mode.sends_all:
                from gitsync.store.git import TreeChange

                notes = store.list_notes(now_tree)
                outgoing = [
                    TreeChange(kind=ChangeKind.ADD, old_path=None, new_path=p, old_blob=None, new_blob=b)
                    for p, b in sorted(notes.items())
                ]
                if mode is SyncMode.REFRESH_FROM_CLIENT and snap is not None:
                    gone = [p for p in store.list_notes(synced) if p not in notes]
                    guard = delete_guard(opts, len(gone), len(store.list_notes(synced)), "on the server")
            else:
                outgoing = store.diff(synced, now_tree)
                deletes = sum(1 for c in outgoing if c.kind is ChangeKind.DELETE)
                guard = delete_guard(opts, deletes, len(store.list_notes(synced)), "on the server")
        if mode.server_sends:
            remarks.append(
                "what the server would send cannot be known without syncing (SyncML has no "
                "read-only session); incoming deletions are checked by the same guard during the sync"
            )
        if mode is SyncMode.REFRESH_FROM_SERVER:
            remarks.append("a refresh from the server replaces every local note with the server's")
    return DryRun(
        peer=opts.name,
        url=opts.url,
        mode=mode,
        reason=choice.reason,
        uncommitted=uncommitted,
        outgoing=outgoing,
        guard=guard,
        notes=remarks,
    )
