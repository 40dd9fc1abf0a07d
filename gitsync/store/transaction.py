"""The sync transaction: one commit point per session, and recovery after a crash at any moment.

:meth:`SyncTransaction.finish_sync` commits a session in four steps, each a compare-and-swap
(:meth:`gitsync.store.refs.Refs.set_if_equals`) under the repository lock:

1. the journal ``refs/gitsync/journal/<peer>`` -> the branch commit about to be installed;
2. the state commit onto ``refs/gitsync/<peer>``: **the commit point**;
3. the branch moves, then the work tree and the user's index follow (:mod:`gitsync.store.checkout`);
4. the journal goes.

Recovery (run by ``GitStore.open`` and whenever the lock is taken while a journal exists) looks
at each journal: if the state commit's ``head`` names the journal's commit, the session committed,
and steps 3 and 4 are finished (both are idempotent); otherwise the journal is dropped and the
old state is intact.  A server may leave step 3's work-tree update for after its answer
(``defer_worktree``): until then its journal stays, so no one scans the work tree before it is
written.  Each step passes a named point of :mod:`gitsync.store.crashpoints`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2 import Oid, Signature

from gitsync.errors import BranchSwitched, StoreError
from gitsync.store import _names
from gitsync.store.checkout import Checkout, PathUpdate
from gitsync.store.crashpoints import crash
from gitsync.store.locking import RepoLock
from gitsync.store.objects import Objects
from gitsync.store.refs import JOURNAL_PREFIX, STATE_PREFIX, RefLocked, RefMoved, Refs
from gitsync.store.staterefs import StateRefs

__all__ = ["Deferred", "SyncTransaction", "subject"]

logger = logging.getLogger(__name__)


def subject(message: str) -> str:
    """The first line of a commit message, for reflogs."""
    return message.strip().splitlines()[0] if message.strip() else "(no message)"


@dataclass(frozen=True, slots=True)
class Deferred:
    """The rest of a committed session: the work-tree update ``finish_sync`` left for later."""

    branch: str
    first: Oid | None
    target: Oid
    plan: list[PathUpdate]
    reflog: str


class SyncTransaction:
    """Commits sessions into one repository and finishes the ones a crash or a server left open.

    ``hold`` takes the repository lock (raising when it is busy); ``branch`` and
    ``check_safe_state`` are the store's own.  ``deferred`` maps a journal ref to the work-tree
    update its session left for later (``defer_worktree``).
    """

    def __init__(self, repo: pygit2.Repository, root: Path, lock: RepoLock,
                 hold: Callable[[], contextlib.AbstractContextManager[None]], refs: Refs, objects: Objects,
                 states: StateRefs, checkout: Checkout, signature: Callable[[], Signature],
                 branch: Callable[[], str | None], check_safe_state: Callable[[], None]) -> None:
        self._repo = repo
        self._root = root
        self._lock = lock
        self._hold = hold
        self._refs = refs
        self._objects = objects
        self._states = states
        self._checkout = checkout
        self._signature = signature
        self._branch = branch
        self._check_safe_state = check_safe_state
        self.deferred: dict[str, Deferred] = {}  # journal ref -> work-tree update still to do

    def finish_journals(self) -> None:
        """Complete what committed sessions left to do before anyone works on the folder.

        A journal outlives its ``finish_sync`` only after a crash, or when a server deferred the
        work-tree update until after its answer (this process or another): a scan of the work tree
        before that update would take the old notes for the user's edits and undo the session.
        """
        journals = [name for name in self._repo.references if name.startswith(JOURNAL_PREFIX)]
        if not journals:
            self.deferred.clear()
            return
        for journal_ref in journals:
            job = self.deferred.pop(journal_ref, None)
            try:
                if job is not None and self._refs.target(journal_ref) == job.target:
                    self._complete(journal_ref, job.branch, job.first, job.target, job.plan,
                                   strict=False, reflog=job.reflog)
                else:
                    self._recover_journal(journal_ref)
            except StoreError as exc:
                logger.warning("could not finish an interrupted sync yet: %s", exc)

    def finish_sync(self, peer: str, *, expected_state: str | None, files: Mapping[str, bytes],
                    synced_tree: str | None, new_commit: str | None, expected_head: str | None,
                    message: str, defer_worktree: bool = False, expected_branch: str | None = None) -> str:
        """Commit a session: save the peer's state and install ``new_commit``; return the state commit.

        Steps: (1) journal ref -> ``new_commit``; (2) state commit (``files`` + ``synced`` tree +
        ``head`` + ``branch``) CAS'ed onto ``refs/gitsync/<peer>`` from ``expected_state``: the commit
        point; (3) CAS the branch ``expected_head`` -> ``new_commit`` and update the work tree and
        the user's index for the changed paths (files edited meanwhile are left alone); (4) delete
        the journal.  ``new_commit`` must be a child of ``expected_head`` (first parent).

        Raises ``StoreError`` with nothing changed when a ref is not where expected, a path is unsafe
        or an id is unknown, and ``BranchSwitched`` when ``expected_branch`` (the branch the session
        began on) is no longer checked out.  After the commit point it raises only if the branch
        cannot be moved: if its ref is locked, the journal stays and ``recover()`` finishes later;
        if it moved (a commit raced us), the state keeps ``head`` = ``new_commit`` and the caller
        must merge it.

        With ``defer_worktree`` step (3) stops once the branch moved: the work tree, the user's
        index and the journal wait for ``settle()`` (or whoever takes the lock next), so that a
        server can answer first.
        """
        state_ref = self._states.ref(peer)
        journal_ref = self._states.journal(peer)
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
        with self._hold():
            self._recover_journal(journal_ref)
            branch: str | None = None
            plan: list[PathUpdate] = []
            if expected_branch is not None and (now_on := self._branch()) != expected_branch:
                raise BranchSwitched(
                    f"the checked-out branch changed during the sync: it began on {expected_branch}, "
                    f"now {now_on or 'a detached HEAD'} is checked out; nothing was committed here")
            if new is not None:
                self._check_safe_state()
                branch = self._branch()
                assert branch is not None
                first = new.parent_ids[0] if new.parent_ids else None
                if first != exp_head:
                    raise StoreError(f"new commit {new.id} is not a child of expected head {exp_head}")
                old_tree = self._objects.commit(str(exp_head)).tree if exp_head is not None else None
                plan = self._checkout.plan(old_tree, new.tree)
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
            crash("journal-written")
            # 2. state commit: the commit point
            state: Oid | None = None
            try:
                sig = self._signature()
                head_id = new.id if new is not None else exp_head
                tree = self._states.tree(files, synced.id if synced is not None else None, head_id,
                                        branch or self._branch())
                state = self._repo.create_commit(None, sig, sig, message, tree,
                                                 [exp_state] if exp_state is not None else [])
                self._refs.set_if_equals(state_ref, exp_state, state, f"gitsync: {subject(message)}")
            except BaseException:
                # Drop the journal only if the commit point was really not reached.
                if new is not None and (state is None or self._refs.target(state_ref) != state):
                    with contextlib.suppress(StoreError):
                        self._refs.set_if_equals(journal_ref, new.id, None, "gitsync: journal dropped")
                raise
            crash("state-committed")
            logger.info("saved sync state of %s as %s", peer, str(state)[:12])
            # 3. and 4.
            if new is not None:
                assert branch is not None
                reflog = f"gitsync: {subject(message)}"
                if defer_worktree:
                    self.deferred[journal_ref] = Deferred(branch, exp_head, new.id, plan, reflog)
                self._complete(journal_ref, branch, exp_head, new.id, plan, strict=True,
                               reflog=reflog, worktree=not defer_worktree)
            return str(state)

    def _complete(self, journal_ref: str, branch: str, first: Oid | None, target: Oid,
                  plan: list[PathUpdate], *, strict: bool, reflog: str, worktree: bool = True) -> None:
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
            crash("branch-moved")
        moved_away = current != target
        if not worktree and not moved_away:
            return
        if not moved_away:
            if self._branch() == branch:
                old_tree = self._objects.commit(str(first)).tree_id if first is not None else None
                self._checkout.apply(plan, self._objects.commit(str(target)).tree, old_tree=old_tree)
            else:
                logger.warning("%s is no longer checked out: its new notes were not written to %s",
                               branch, self._root)
        crash("worktree-updated")
        self._refs.set_if_equals(journal_ref, target, None, "gitsync: journal done")
        crash("journal-deleted")
        if moved_away:
            msg = (f"sync state saved, but {branch} moved to {current} meanwhile: the peer's changes are "
                   f"in commit {target}, which the next sync merges")
            if strict:
                raise StoreError(msg)
            logger.warning("%s", msg)

    def recover_all(self) -> None:
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
            head, branch = self._states.installed(state)
            passed = head == str(target)
        if not passed:
            logger.warning("dropping the journal of an unfinished sync (%s): the old state is intact",
                           journal_ref)
            self._refs.set_if_equals(journal_ref, target, None, "gitsync: journal dropped")
            return
        logger.warning("finishing a sync that was interrupted after its commit point (%s)", journal_ref)
        branch = branch or self._branch()
        commit = self._objects.commit(str(target))
        first = commit.parent_ids[0] if commit.parent_ids else None
        if branch is None:
            logger.warning("HEAD is detached: not moving any branch to %s", target)
            self._refs.set_if_equals(journal_ref, target, None, "gitsync: journal done")
            return
        old_tree = self._objects.commit(str(first)).tree if first is not None else None
        try:
            plan = self._checkout.plan(old_tree, commit.tree)
        except StoreError as exc:
            logger.warning("not updating the work tree: %s", exc)
            plan = []
        self._complete(journal_ref, branch, first, target, plan, strict=False,
                       reflog="gitsync: finish interrupted sync")
