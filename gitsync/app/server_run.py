"""One client session on the server: ServerSession events in, the store's notes and state out.

:class:`ServerRun` starts the sync at the device's Alert (mode, anchors, the local changes since
the last sync), applies its changes (:class:`~gitsync.app.server_apply.IncomingChanges`), runs
the outgoing plan (:mod:`gitsync.sync.plan`), and commits at the end: everything in one
``finish_sync``, on top of the branch as it is then.  Interrupted sessions resume (Alert 225)
from what :mod:`gitsync.app.carryover` kept.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Protocol

from gitsync.app.carryover import (
    GONE_CODES,
    MAX_REFUSALS,
    Refusal,
    Suspended,
    dump_refusals,
    load_refusals,
    ok_status,
)
from gitsync.app.faults import crash_point
from gitsync.app.nonces import retry_nonce
from gitsync.app.paths import PathMap, PathSet
from gitsync.app.server_apply import IncomingChanges, Item, items_of
from gitsync.app.server_options import ServerOptions
from gitsync.errors import GitsyncError, ProtocolError, RepositoryBusy
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.constants import St, ver_proto
from gitsync.protocol.events import (
    Acknowledged,
    ChangesReceived,
    Event,
    InChange,
    ItemRefused,
    ItemResult,
    MapReceived,
    OutChange,
    PeerDevInf,
    SessionComplete,
    SyncRequested,
)
from gitsync.protocol.messages import Anchor, DevInf, Message, Status, SyncHdr
from gitsync.protocol.messages import Item as MessageItem
from gitsync.protocol.profiles import profile_for
from gitsync.protocol.server import ServerConfig, ServerSession
from gitsync.store.git import GitStore, SyncStateSnapshot, TreeChange
from gitsync.sync.conflict import conflict_labels
from gitsync.sync.devinf import our_devinf
from gitsync.sync.ids import peer_ref_name
from gitsync.sync.ledger import Effect
from gitsync.sync.payload import Wire
from gitsync.sync.plan import Known, plan_outgoing
from gitsync.sync.report import SyncReport, commit_message, summary_line, too_large_line
from gitsync.sync.state import IdRow, PeerState, Role, kept

__all__ = ["ServerHost", "ServerRun", "error_reply"]

logger = logging.getLogger(__name__)

#: how many saved states back a client's Last anchor is looked for (see _ServerRun._rewind)
_REWIND_LIMIT = 16


class ServerHost(Protocol):
    """What a session needs of the server that runs it (:class:`~gitsync.app.server.SyncServer`)."""

    store: GitStore
    options: ServerOptions
    now: Callable[[], float]
    rng: Callable[[int], bytes]

    def suspended_session(self, device_id: str) -> Suspended | None:
        """The interrupted session of ``device_id`` kept for a resume, if any."""
        ...

    def stored_nonce(self, device: str, in_state: Callable[[], str]) -> bytes:
        """The MD5 nonce ``device`` must log in with now (see app/nonces.py)."""
        ...


class ServerRun(IncomingChanges):
    """The application side of one client session."""

    def __init__(self, server: ServerHost, resp_uri: str, first: Message) -> None:
        super().__init__()
        self.server = server
        self.store = server.store
        self.opts = server.options
        self.finished = False
        self.touched = server.now()
        self.device_id = first.header.source
        self.name = "device-" + peer_ref_name(self.device_id)
        self.labels = conflict_labels(first.header.target, first.header.source_name, self.device_id)
        self.report = SyncReport(peer=self.name)
        # the device's saved state is read once its client logged in (at once without users): a
        # stranger's package 1 neither reads it nor holds it (O(1), see app/admission.py)
        self.snap: SyncStateSnapshot | None = None
        self.state_commit: str | None = None  # where the state ref is (for the CAS)
        self.state = PeerState.load(None)
        self.items: dict[str, Item] = {}  # guid → item
        self.peer_devinf: DevInf | None = None
        self.refusals: dict[str, Refusal] = {}
        self.state_loaded = False
        if self.opts.users is None:
            self._load_state()
        nonce = server.stored_nonce(self.device_id, lambda: self._load_state().nonce or "")
        self.session = ServerSession(
            ServerConfig(
                devinf=our_devinf(self.opts.server_id, server=True),
                resp_uri=resp_uri,
                store_uris=self.opts.store_uris,
                users=self.opts.users,
                auth_type=self.opts.auth_type,
                nonce=nonce,
                next_nonce=base64.b64encode(server.rng(12)),
                retry_nonce=retry_nonce(self.device_id, nonce),
                peer_devinf=self.peer_devinf,
                max_msg_size=self.opts.max_msg_size,
                max_obj_size=self.opts.max_obj_size,
            )
        )
        self.mode = SyncMode.TWO_WAY
        self.head: str | None = None
        self.head_tree: str | None = None
        self.notes: PathMap = PathMap()  # path → blob; PathMap: O(1) case-insensitive name checks
        self.local: dict[str, TreeChange] = {}  # path (old or new) → local change since last sync
        self.touched_paths: PathSet = PathSet()  # settled by this session's incoming changes
        self.matched: set[str] = set()  # guids the client has (slow sync / refresh)
        self.unsent: set[str] = set()  # keys of changes the peer cannot carry (not sent)
        self.extra_out: list[OutChange] = []
        self.server_anchor = Anchor()
        self.outgoing_sent = False  # our changes are on their way: what we commit is known
        self.prebuilt = False
        self.committed = False
        # carried over between sessions (see app/carryover.py): self.refusals, and
        self.held_before: set[str] = set()  # answered 409 in the interrupted session we resume
        self.suspend: Suspended | None = None  # what a resume of this session would continue from
        self.replayed: dict[str, tuple[ChangeKind, bytes | None, int]] = {}  # luid → change, status
        self.prior_acked: dict[str, tuple[int, str]] = {}  # guid → (status, blob) before a resume
        self.pending_maps: dict[str, str] = {}  # guid → luid for items not known yet

    def _load_state(self) -> PeerState:
        """Read the device's saved state (once)."""
        if not self.state_loaded:
            self.state_loaded = True
            snap = self.store.state_load(self.name)
            self.snap, self.state_commit = snap, (snap.commit if snap else None)
            self.state = PeerState.load(snap.files if snap else None)
            self.items = items_of(self.state)
            self.peer_devinf = self.state.devinf
            self.refusals = load_refusals(self.state.refused)
            session = getattr(self, "session", None)
            if session is not None and session.peer_devinf is None and self.peer_devinf is not None:
                session.peer_devinf, session.profile = self.peer_devinf, profile_for(self.peer_devinf)
        return self.state

    # ------------------------------------------------------------------ session
    def handle(self, msg: Message) -> Message:
        session = self.session
        try:
            events = session.receive(msg)
            if session.authenticated:
                self._load_state()
            for event in events:
                self._on(event)
            reply = session.next_message()
        except (ProtocolError, GitsyncError) as exc:
            code = exc.status_hint if isinstance(exc, ProtocolError) else St.COMMAND_FAILED
            if isinstance(exc, RepositoryBusy):
                code = St.RETRY_LATER
            logger.warning("session with %s failed: %s", self.device_id, exc)
            self.finished = True
            return error_reply(msg.header, code)
        except Exception:
            logger.exception("internal error in the session with %s", self.device_id)
            self.finished = True
            return error_reply(msg.header, St.COMMAND_FAILED)
        if session.done or session.phase.value == "error":
            self.finished = True
        return reply

    def _on(self, ev: Event) -> None:
        if isinstance(ev, PeerDevInf):
            self.peer_devinf = ev.devinf
        elif isinstance(ev, SyncRequested):
            self._start(ev)
        elif isinstance(ev, ChangesReceived):
            results = [self._replayed_result(ch) or self._apply(ch) for ch in ev.changes]
            self.session.provide_results(results)
            if self.suspend is not None:
                self.suspend.keep(list(zip(ev.changes, [r.code for r in results], strict=True)))
            if ev.final:
                if self.mode is SyncMode.REFRESH_FROM_CLIENT:
                    self._refresh_deletes()
                self.session.provide_changes(self._carry_out(self._sendable(self._outgoing())))
                self.outgoing_sent = True
        elif isinstance(ev, Acknowledged):
            if self.suspend is not None:
                self.suspend.acked.update((c.key, (code, _blob_of(c))) for c, code in ev.results)
            self._acknowledged(ev.results)
        elif isinstance(ev, ItemRefused):
            self.report.refused_incoming(self.device_id, ev.source or ev.target or "", ev.size, ev.limit)
        elif isinstance(ev, MapReceived):
            for luid, guid in ev.pairs:
                if self.suspend is not None:
                    self.suspend.maps[guid] = luid
                item = self.items.get(guid)
                if item is not None:
                    item.luid = luid
                else:
                    self.pending_maps[guid] = luid
        elif isinstance(ev, SessionComplete):
            self._finish()

    # ------------------------------------------------------------------ alert
    def _start(self, ev: SyncRequested) -> None:
        store = self.store
        with store.lock(wait=self.opts.lock_wait):
            store.check_safe_state()
            self.head = store.commit_worktree(
                f"gitsync: local changes\n\nCommitted by gitsync-notes before syncing with {self.name}.\n"
            )
        self.head_tree = store.tree_of(self.head) if self.head else None
        self.notes = PathMap(store.list_notes(self.head_tree))
        mode = ev.mode
        if ev.anchor.last is not None and ev.anchor.last != self.state.peer_anchor:
            self._rewind(ev.anchor.last)
        stored = self.state.peer_anchor
        known = self.snap is not None and self.snap.synced_tree is not None
        mismatch = not known or ev.anchor.last is None or ev.anchor.last != stored
        refresh_required = False
        if (
            mode in (SyncMode.TWO_WAY, SyncMode.ONE_WAY_FROM_CLIENT, SyncMode.ONE_WAY_FROM_SERVER)
            and mismatch
        ):
            refresh_required = known and ev.anchor.last is not None
            mode = SyncMode.SLOW
        elif mode in (SyncMode.TWO_WAY, SyncMode.ONE_WAY_FROM_SERVER) and self._history_rewritten():
            # amend/reset since the last sync with this device: compare every note, do not guess
            logger.warning("history was rewritten since the last sync with %s: slow sync", self.device_id)
            self.report.notes.append("slow sync: history rewritten since the last sync")
            refresh_required = True
            mode = SyncMode.SLOW
        resumed: Suspended | None = None
        if ev.resume:
            # 200 for an Alert 225 tells the client we continue its session: it will not send again
            # what we acknowledged.  Unless we can, a slow sync (508) compares everything.
            resumed = self._suspended_session(ev) if mode is SyncMode.TWO_WAY else None
            if resumed is None:
                logger.warning("%s asked to resume a session we cannot continue: slow sync", self.device_id)
                self.report.notes.append("slow sync: the interrupted session cannot be resumed")
                mode, refresh_required = SyncMode.SLOW, True
            else:
                mode = resumed.mode
        self.mode = mode
        self.report.mode = mode.name.lower().replace("_", "-")
        self.server_anchor = Anchor(
            last=self.state.our_anchor,
            next=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.server.now()))
            + f"-{self.server.rng(2).hex()}",
        )
        self.session.accept_sync(mode=mode, anchor=self.server_anchor, refresh_required=refresh_required)
        self._wire = Wire.negotiate(
            self.peer_devinf, ev.source_uri, self.session.profile, filename_sync=self.opts.filename_sync
        )
        self.wire.extras.update(self.state.extras)
        self.wire.names.update(self.state.names)
        self.synced_tree: str | None = self.snap.synced_tree if (self.snap and not mode.sends_all) else None
        if self.wire.flat and self.snap is not None:
            for path in store.list_notes(self.snap.synced_tree):
                self.wire.saw(path)
        if not mode.sends_all or (mode is SyncMode.SLOW and self.snap is not None):
            # a slow sync too: what we changed since the last sync decides what the client's copy is
            since = self.snap.synced_tree if self.snap is not None else None
            for tc in store.diff(self.synced_tree if not mode.sends_all else since, self.head_tree):
                for changed in (tc.old_path, tc.new_path):
                    if changed is not None:
                        self.local[changed] = tc
        self.by_path = {item.path: item for item in self.items.values()}
        self.by_luid = {item.luid: item for item in self.items.values() if item.luid}
        self.suspend = Suspended(device_id=self.device_id, user=self.session.user,
                                 state_commit=self.state_commit, client_last=ev.anchor.last, mode=mode)
        if resumed is not None:
            self._replay(resumed)

    # ------------------------------------------------------------------ resume (OMA DS 1.2 Alert 225)
    def _suspended_session(self, ev: SyncRequested) -> Suspended | None:
        """The interrupted session of this device that a resume may continue, if one can be trusted."""
        rec: Suspended | None = self.server.suspended_session(self.device_id)
        if rec is None or not rec.trusted(
            user=self.session.user, state_commit=self.state_commit, client_last=ev.anchor.last
        ):
            return None
        logger.info("resuming the interrupted session of %s", self.device_id)
        self.report.notes.append("resumed the interrupted session")
        return rec

    def _replay(self, rec: Suspended) -> None:
        """Continue ``rec``: apply again the device's changes we accepted (it will not send them
        again), and remember the statuses and LUIDs it gave ours (they are not sent again)."""
        assert self.suspend is not None
        for ch, code in rec.received:
            if not ok_status(code):
                continue  # refused or unanswered: the device sends it again
            self._apply(ch)
            if ch.luid:
                self.replayed[ch.luid] = (ch.kind, ch.data, code)
            self.suspend.keep([(ch, code)])
        self.held_before |= rec.held
        self.suspend.held |= rec.held
        self.prior_acked = dict(rec.acked)
        self.suspend.acked.update(rec.acked)
        self.suspend.maps.update(rec.maps)
        self.pending_maps.update(rec.maps)

    def _replayed_result(self, ch: InChange) -> ItemResult | None:
        """A change the device sends again after a resume, unchanged: it has its status already."""
        prior = self.replayed.get(ch.luid) if ch.luid else None
        if prior is None or prior[:2] != (ch.kind, ch.data):
            return None
        return ItemResult(code=prior[2])

    def _carry_out(self, out: list[OutChange]) -> list[OutChange]:
        """Our changes minus those the device acknowledged before a resume, and minus those it
        refused ``MAX_REFUSALS`` times unchanged (each session says so)."""
        keep: list[OutChange] = []
        for change in out:
            prior = self.prior_acked.get(change.key)
            if prior is not None and ok_status(prior[0]) and prior[1] == _blob_of(change):
                self._acknowledged(((change, prior[0]),))
                continue
            refusal = self.refusals.get(change.key)
            if refusal is not None and refusal.count >= MAX_REFUSALS and refusal.blob == _blob_of(change):
                logger.warning("%s refused %s of %s %d times (status %d): not sent again until it changes",
                               self.device_id, change.kind.value, change.key, refusal.count, refusal.code)
                self.report.notes.append(f"not sent (refused {refusal.count} times): {change.key}")
                continue
            keep.append(change)
        for guid, luid in list(self.pending_maps.items()):
            item = self.items.get(guid)
            if item is not None:
                self._bind(item, luid)
                del self.pending_maps[guid]
        return keep

    def _rewind(self, last: str) -> None:
        """Continue from the saved state whose client anchor is the client's Last anchor, if any.

        The client missed the end of a session we committed (it was killed before saving, or our
        last reply was lost): it still has the state before that session.  Starting from the same
        state sends that session's changes again (and matches what the client re-sends) instead of
        a slow sync, which would bring back what was deleted and undo edits.
        """
        for depth, snap in enumerate(self.store.state_history(self.name)):
            if depth > _REWIND_LIMIT:
                return
            state = PeerState.load(snap.files)
            if depth and state.peer_anchor == last and snap.synced_tree is not None:
                logger.warning("%s did not save the end of its last %d session(s); continuing from "
                               "the state before", self.device_id, depth)
                self.snap, self.state = snap, state
                self.items = items_of(state)
                return

    def _history_rewritten(self) -> bool:
        """Whether the branch no longer contains the commit of the last sync with this device
        (for peers that can take a slow sync over notes both sides have)."""
        last = self.snap.head if self.snap is not None else None
        if last is None or self.head is None or not self.session.profile.slow_sync_with_shared_notes:
            return False
        try:
            return not self.store.is_ancestor(last, self.head)
        except GitsyncError:
            return True  # the old commit is gone (gc after a rewrite)

    def _sendable(self, out: list[OutChange]) -> list[OutChange]:
        """``out`` without the notes the client cannot carry exactly (reported, kept here)."""
        if not self.unsent:
            return out
        for key in self.unsent:
            self.effects.pop(key, None)
        return [change for change in out if change.key not in self.unsent]

    def _outgoing(self) -> list[OutChange]:
        """Our changes for the client: the planner's steps (:mod:`gitsync.sync.plan`), run."""
        if not self.mode.server_sends:
            return []
        out = list(self.extra_out)
        diff: list[TreeChange] = []
        seen: set[int] = set()
        for tc in self.local.values():
            if id(tc) not in seen:
                seen.add(id(tc))
                diff.append(tc)
        plan = plan_outgoing(
            Role.SERVER, self.mode, diff=diff, notes=self.notes, known=self._known,
            carries_name=self.wire.carries_name, settled=self.touched_paths, has=self.matched,
        )
        for step in plan.steps:
            if step.kind is ChangeKind.DELETE:
                self.wire.forget(step.path)
                gone = self.items.get(step.key) if step.key is not None else None
                if not step.send or gone is None:
                    self._agreed(step.effect.writes, step.effect.deletes)
                    if step.key is not None:
                        self.items.pop(step.key, None)
                    continue
                self.effects[gone.guid] = step.effect
                out.append(OutChange(kind=ChangeKind.DELETE, key=gone.guid, peer_key=gone.luid))
                continue
            assert step.key is not None
            item = self.items.get(step.key)
            if item is None:
                item = Item(guid=step.key, luid=None, path=step.path)
                self._register(item)
            else:
                self._move(item, step.path)
            if step.moved_from is not None:
                self.wire.moved(step.moved_from, step.path)
            if plan.everything:
                item.luid = None  # the client does not have it (it sent us everything)
            if step.send:
                out.append(self._out(step.kind, item, step.path, step.blob, step.effect))
            else:
                self._agreed(step.effect.writes, step.effect.deletes)
        return out

    def _known(self, path: str) -> Known | None:
        """Our GUID for the note at ``path``, and whether the client has it (we have its LUID)."""
        item = self.by_path.get(path)
        return Known(item.guid, at_peer=bool(item.luid)) if item is not None else None

    def _acknowledged(self, results: tuple[tuple[OutChange, int], ...]) -> None:
        for change, code in results:
            eff = self.effects.pop(change.key, None)
            if code == St.TOO_LARGE:
                self.report.too_large_out += 1  # reported; not a failure of the sync
                item = self.items.get(change.key)
                self.report.skipped.append(
                    too_large_line(f"not sent: {item.path if item else change.key}",
                                   self.session.oversized.get(change.key), self.session.peer_max_obj_size,
                                   f"{self.device_id}'s")
                )
            if change.kind is ChangeKind.MODIFY and code in GONE_CODES:
                # the device no longer has the item (it deleted it meanwhile): an Add next session
                item = self.items.get(change.key)
                if item is not None:
                    self._unbind(item)
                self._refused(change, code)
                self.report.remote.err += 1
                logger.warning("%s no longer has %s (status %d): it is sent again as a new note",
                               self.device_id, change.key, code)
                continue
            if code >= 300 and code != St.ALREADY_EXISTS:
                self._refused(change, code)
                self.report.remote.err += 1
                logger.warning(
                    "%s refused %s of %s (status %d)", self.device_id, change.kind.value, change.key, code
                )
                continue
            if eff is not None:
                self._agreed(eff.writes, eff.deletes)
            self.refusals.pop(change.key, None)
            if change.kind is ChangeKind.DELETE:
                item = self.items.pop(change.key, None)
                if item is not None:
                    self.by_path.pop(item.path, None)
            self._count_sent(change, code, eff)

    _device_had: dict[str, str] | None = None

    def _count_sent(self, change: OutChange, code: int, eff: Effect | None) -> None:
        """Count what an acknowledged change did on the device (``SyncReport.count_sent``)."""
        if not self.mode.sends_all or eff is None or len(eff.writes) != 1:
            self.report.count_sent(change.kind, code)
            return
        if self._device_had is None:
            self._device_had = self.store.list_notes(self.snap.synced_tree if self.snap else None)
        [(path, blob)] = eff.writes.items()
        refresh = self.mode is SyncMode.REFRESH_FROM_SERVER
        self.report.count_sent(
            change.kind, code, had=self._device_had.get(path), blob=blob, sent_all=True, refresh=refresh
        )

    def _refused(self, change: OutChange, code: int) -> None:
        """Count a refusal of this content (an edit of the note starts the count again)."""
        blob = _blob_of(change)
        refusal = self.refusals.get(change.key)
        if refusal is None or refusal.blob != blob:
            refusal = self.refusals[change.key] = Refusal(blob=blob, code=code, count=0)
        refusal.count += 1
        refusal.code = code

    # ------------------------------------------------------------------ commit
    def has_spare_work(self) -> bool:
        return (self.outgoing_sent and not self.prebuilt and not self.finished) or self.store.unsettled

    def spare_work(self) -> None:
        """What can wait until the client has our answer (run under the server's lock).

        Once our changes are sent, the client's are all applied, so the tree ``_finish`` commits is
        known: it is built now (the store remembers it; ``_finish`` reuses it unless the branch
        moved meanwhile).  Once the session is committed, the notes it brought are written into
        the work tree (``finish_sync(defer_worktree=True)``): its journal keeps anyone from
        scanning the folder before that, and a crash leaves it to ``recover()``.  At 20,000 notes
        with 1 % edited the two take ~0.2 s off the client's wait.
        """
        if self.outgoing_sent and not self.prebuilt and not self.finished:
            self.prebuilt = True
            try:
                self.store.build_tree(self.head_tree, self.writes, self.deletes)
            except GitsyncError as exc:  # _finish meets it again and answers with it
                logger.debug("building the new tree ahead failed: %s", exc)
        self.store.settle()

    def _finish(self) -> None:
        store = self.store
        with store.lock(wait=self.opts.lock_wait):
            head = store.commit_worktree(
                f"gitsync: local changes\n\nCommitted by gitsync-notes while syncing with {self.name}.\n"
            )
            writes, deletes = self._rebase(head)
            head_tree = store.tree_of(head) if head else None
            new_tree = store.build_tree(head_tree, writes, deletes)
            synced = self._synced_after(new_tree)
            live = store.list_notes(synced)
            if self.mode is SyncMode.REFRESH_FROM_SERVER:  # the device dropped what we did not send
                had = store.list_notes(self.snap.synced_tree if self.snap else None)
                self.report.count_refreshed(had, live)

            def keep(path: str) -> bool:
                return path in live or path in self.notes

            files = PeerState(
                role=Role.SERVER,
                device_id=self.device_id,
                peer_anchor=self.session.client_anchor.next,
                our_anchor=self.server_anchor.next,
                nonce=base64.b64encode(self.session.nonce).decode("ascii"),
                content_type=self.wire.fmt.content_type,
                mode=self.report.mode,
                user=self.session.user,
                ids=tuple(IdRow(item.guid, item.luid or None, item.path) for item in self.items.values()
                          if keep(item.path)),
                devinf=self.peer_devinf,
                extras=kept(self.wire.extras, keep),
                names=kept(self.wire.names, keep),
                refused=dump_refusals({g: r for g, r in self.refusals.items() if g in self.items}),
            ).dump()
            self.report.renamed.extend(r for r in self.wire.renamed if r not in self.report.renamed)
            report = self.report
            message = commit_message(
                report.subject(self.name),
                peer=self.name,
                device=self.device_id,
                mode=report.mode,
                session=self.session.session_id,
                anchor=self.server_anchor.next,
                conflicts=report.conflicts,
            )
            new_commit = self._commit(new_tree, head_tree, head, message)
            crash_point("server-finish")
            store.finish_sync(
                self.name,
                expected_state=self.state_commit,
                files=files,
                synced_tree=synced,
                new_commit=new_commit,
                expected_head=head,
                message=message,
                defer_worktree=True,  # written right after our answer: see spare_work
            )
        report.commit = new_commit
        self.committed = True
        if self.opts.on_report is not None:
            self.opts.on_report(report)
        logger.info("%s", summary_line(report))

    def _rebase(self, head: str | None) -> tuple[dict[str, str], set[str]]:
        """Our writes on top of the branch as it is now: merge where it moved under us."""
        if head == self.head:
            return dict(self.writes), set(self.deletes)
        store = self.store
        before = store.list_notes(self.head_tree)
        now = store.list_notes(store.tree_of(head) if head else None)
        writes: dict[str, str] = {}
        deletes: set[str] = set()
        for path, blob in self.writes.items():
            if now.get(path) == before.get(path) or now.get(path) is None:
                writes[path] = blob
                continue
            base = store.read_blob(before[path]) if path in before else None
            merged, _clean = store.merge3(base, store.read_blob(now[path]), store.read_blob(blob))
            writes[path] = store.write_blob(merged)
        for path in self.deletes:
            if now.get(path) == before.get(path):
                deletes.add(path)
        return writes, deletes


def _blob_of(change: OutChange) -> str:
    """The blob an outgoing change carries ("" for a Delete)."""
    return str(getattr(change, "_blob", "") or "")


def error_reply(hdr: SyncHdr, code: int, data: str | None = None) -> Message:
    """A reply of one SyncHdr Status; ``data``: its item (the seconds to wait, for 417)."""
    header = SyncHdr(
        ver_dtd=hdr.ver_dtd if hdr.ver_dtd in ("1.1", "1.2") else "1.2",
        ver_proto=ver_proto(hdr.ver_dtd if hdr.ver_dtd in ("1.1", "1.2") else "1.2"),
        session_id=hdr.session_id,
        msg_id=hdr.msg_id,
        target=hdr.source,
        source=hdr.target,
    )
    status = Status(
        cmd_id=1,
        msg_ref=hdr.msg_id,
        cmd_ref=0,
        cmd="SyncHdr",
        code=code,
        target_refs=(hdr.target,) if hdr.target else (),
        source_refs=(hdr.source,) if hdr.source else (),
        items=(MessageItem(data=data.encode()),) if data is not None else (),
    )
    return Message(header=header, commands=(status,), final=True)
