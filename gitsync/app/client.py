"""The client driver: Git store + ClientSession + HTTP transport = one sync.

Order of work, chosen so a crash at any point loses nothing:
1. commit the user's uncommitted edits ("local changes" commit) — nothing in the work
   tree is ever overwritten; this runs in a thread while the first message (alert and DevInf,
   which need no notes) travels, and is joined before anything is sent or received about notes;
2. run the SyncML session, keeping everything that came in as blobs only;
3. at the very end, one ``finish_sync`` moves the peer's state ref (the commit point),
   then the branch, then the work tree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gitsync.app.edits import TreeEdits
from gitsync.app.faults import crash_point
from gitsync.app.hook import run_again_generation
from gitsync.app.options import ClientOptions
from gitsync.app.outgoing import LazyOutChange
from gitsync.app.paths import IdMap, PathMap
from gitsync.app.pysyncml_import import restrict_devinf
from gitsync.app.safety import check_deletes, choose_mode, delete_guard
from gitsync.codec import XML_TYPE, decode, encode
from gitsync.errors import BranchSwitched, GitsyncError, RemoteProtocolError, SafetyStop, StoreError
from gitsync.formats import EXACT, offers
from gitsync.formats.lineendings import canonical
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.client import ClientConfig, ClientSession
from gitsync.protocol.constants import St
from gitsync.protocol.events import (
    Acknowledged,
    ChangesReceived,
    Event,
    InChange,
    ItemRefused,
    ItemResult,
    NonceReceived,
    OutChange,
    PeerDevInf,
    SessionComplete,
    SyncModeDecided,
)
from gitsync.protocol.messages import DevInf, Message
from gitsync.protocol.profiles import profile_for
from gitsync.protocol.session import Phase
from gitsync.store.git import GitStore, TreeChange
from gitsync.sync.conflict import has_conflict_markers
from gitsync.sync.devinf import our_devinf
from gitsync.sync.ids import make_id
from gitsync.sync.ledger import Effect
from gitsync.sync.payload import Wire, parse_or_why
from gitsync.sync.plan import Known, plan_outgoing
from gitsync.sync.report import SyncReport, bump, commit_message, too_large_line
from gitsync.sync.state import IdRow, PeerState, Role, kept
from gitsync.transport import Transport

__all__ = ["ClientOptions", "sync_client"]

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
MAX_PASSES = 3


def stale_devinf(devinf: DevInf | None) -> bool:
    """Whether a cached DevInf of a gitsync server predates the exact format (it lists no CTCap
    for it): the server's DevInf is then asked for again, so that a server upgraded since gets
    binary notes instead of having them skipped for good (an old server costs one Get a session)."""
    if devinf is None or profile_for(devinf).name != "gitsync":
        return False
    return not any(offers(store, EXACT) for store in devinf.datastores)


def sync_client(
    store: GitStore,
    opts: ClientOptions,
    transport: Transport,
    *,
    now: Callable[[], float] = time.time,
    progress: Progress | None = None,
) -> SyncReport:
    """Run one sync with the server at ``opts.url``; return what it did.

    A commit made during the sync (the post-commit hook then bumps the run-again counter) makes
    it sync once more, up to ``MAX_PASSES`` in all; the last pass's report is returned.
    """
    with store.lock(wait=5.0):
        for attempt in range(1, MAX_PASSES + 1):
            seen = run_again_generation(store)
            store.check_safe_state()
            try:
                report = _ClientRun(store, opts, transport, now, progress).run()
            except StoreError:
                # most likely the branch moved under us (a commit during the sync): retry then
                if attempt == MAX_PASSES or run_again_generation(store) == seen:
                    raise
                logger.info("the branch moved during the sync with %s: syncing again", opts.name)
                continue
            if not opts.honour_run_again or run_again_generation(store) == seen or attempt == MAX_PASSES:
                return report
            logger.info("a commit came in during the sync with %s: syncing again", opts.name)
        raise AssertionError("unreachable")


class _ClientRun(TreeEdits):
    def __init__(
        self,
        store: GitStore,
        opts: ClientOptions,
        transport: Transport,
        now: Callable[[], float],
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.opts = opts
        self.transport = transport
        self.now = now
        self.progress = progress
        super().__init__()
        self.report = SyncReport(peer=opts.name)
        self.unsent: set[str] = set()  # keys of changes the peer cannot carry (not sent)
        self.received: set[str] = set()  # LUIDs the server sent this session
        self.merged_keys: set[str] = set()  # LUIDs whose change the server merged (207)
        self.nonce: str | None = None
        self.sent = 0
        self.acked = 0  # our changes the server has answered
        self.got = 0

    # ------------------------------------------------------------------ main
    def run(self) -> SyncReport:
        """One pass; if it fails before its commit point, the repository is left as it was found."""
        store = self.store
        before, index = store.head(), store.read_user_index()
        self.branch = store.branch()  # the branch this pass syncs (and commits the user's edits on)
        self.committing = False
        self.head = before
        self.scanning: _Background | None = None
        try:
            return self._run()
        except BaseException as exc:
            if self.scanning is not None:
                self.scanning.join()  # never undo under a scan still committing
            ours = self.head  # the "local changes" commit this pass made, if any
            switched = isinstance(exc, BranchSwitched)  # raised before finish_sync changed anything
            if (switched or not self.committing) and before is not None and ours not in (None, before):
                assert ours is not None
                # take it back (only if its branch is still checked out): the user's edits stay in
                # the work tree, uncommitted, as they were
                if not store.undo_commit(ours, before, index, self.branch) and switched:
                    # another branch is checked out: that commit is the only place of the edits
                    raise BranchSwitched(f"{exc}; your edits are kept in the commit {ours[:12]} "
                                         f"(gitsync: local changes) on {self.branch}: check it out "
                                         "and sync again") from exc
            raise

    def _run(self) -> SyncReport:
        store, opts = self.store, self.opts
        snap = store.state_load(opts.name)
        self.snap = snap
        st = self.state = PeerState.load(snap.files if snap else None)
        self.peer_devinf: DevInf | None = st.devinf
        self.synced_tree = snap.synced_tree if snap else None

        # The head before committing local edits has the same ancestry as the commit made on it.
        choice = choose_mode(store, opts, snap, self.head)
        mode, last = choice.mode, choice.last_anchor
        if choice.reason and snap is not None:
            logger.warning("slow sync with %s: %s", opts.name, choice.reason)
            self.report.notes.append(f"slow sync: {choice.reason}")
        # a server that resends on refresh (205) only what it never sent us: take its changes one
        # way (204), then make our notes what both sides agree on (_reset_to_synced)
        self.emulated_refresh = (
            mode is SyncMode.REFRESH_FROM_SERVER
            and last is not None
            and not profile_for(self.peer_devinf).refresh_sends_all
        )
        if self.emulated_refresh:
            mode = SyncMode.ONE_WAY_FROM_SERVER
        # Committing local edits and the outgoing delete guard run while the first message (alert
        # and DevInf, which need no notes) travels; nothing else touches the store until then.
        scanning = self.scanning = _Background(lambda: self._scan(mode))
        self.luid_path = IdMap((row.ours, row.path) for row in st.ids)
        self.guid_luid = {row.theirs: row.ours for row in st.ids if row.theirs is not None}
        self.luid_guid = {row.ours: row.theirs for row in st.ids if row.theirs is not None}
        self.in_deletes = 0
        self.map_ahead: tuple[str, tuple[IdRow, ...]] | None = None  # (synced tree, LUID map) from _prebuild
        self.quiet_end = False
        self.report.mode = mode.name.lower().replace("_", "-")
        self.next_anchor = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.now()))
        if self.next_anchor == last:
            self.next_anchor += "-1"
        session_id = str(int(st.session_id or 0) + 1)
        self.remote_uri = opts.remote_uri or st.remote_uri or "notes"
        config = ClientConfig(
            url=opts.url,
            device_id=opts.device_id,
            devinf=restrict_devinf(
                our_devinf(opts.device_id, server=False, display_name=opts.display_name), st.advertise
            ),
            mode=mode,
            local_uri=opts.local_uri,
            remote_uri=self.remote_uri,
            last_anchor=last,
            next_anchor=self.next_anchor,
            session_id=session_id,
            ver_dtd=opts.ver_dtd,
            username=opts.username,
            password=opts.password,
            auth_type=opts.auth_type,
            nonce=st.nonce,
            peer_devinf=None if stale_devinf(self.peer_devinf) else self.peer_devinf,
            max_msg_size=opts.max_msg_size,
            max_obj_size=opts.max_obj_size,
            name=opts.display_name,
        )
        session = ClientSession(config)
        self.session = session
        session.use_wbxml_devinf(opts.encoding != XML_TYPE)
        msg: Message | None = session.start()
        while msg is not None:
            self._tick_object()
            body = encode(msg, opts.encoding)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("sending message %d:\n%r", msg.header.msg_id, _redacted(msg, body)[:4000])
            crash_point("client-send")
            reply_body, media = self.transport.exchange(session.resp_uri or opts.url, body, opts.encoding)
            crash_point("client-recv")
            scanning.wait()
            logger.debug("received:\n%r", reply_body[:4000])
            reply, _ = decode(reply_body, media)
            try:
                events = session.receive(reply)
            except RemoteProtocolError as exc:
                seconds = getattr(self.transport, "retry_after", None)  # the HTTP Retry-After
                if exc.status_hint == St.RETRY_LATER and seconds is not None and "retry later" in str(exc):
                    message = str(exc).replace("retry later", f"retry in {seconds} s", 1)
                    raise RemoteProtocolError(message, status_hint=St.RETRY_LATER) from exc
                raise
            for event in events:
                self._on(event)
            # only a bare end of session leaves what _prebuild computed as it was
            self.quiet_end = all(isinstance(event, SessionComplete) for event in events)
            msg = session.next_message()
            if msg is not None and session.phase is Phase.MAPPING:
                # the reply to this last message ends the session: build the trees _finish needs
                # meanwhile (the store memoises them; nothing else touches it until the reply)
                scanning = self.scanning = _Background(self._prebuild)
        crash_point("client-finish")
        return self._finish(session_id)

    def _scan(self, mode: SyncMode) -> None:
        store, opts = self.store, self.opts
        self.head = store.commit_worktree(
            f"gitsync: local changes\n\nCommitted by gitsync-notes before syncing with {opts.name}.\n"
        )
        self.head_tree = store.tree_of(self.head) if self.head else None
        self.notes = PathMap(store.list_notes(self.head_tree))  # path → blob, as the session goes on
        self.start_total = len(self.notes)
        self._preflight(mode)

    # ------------------------------------------------------------------ events
    def _on(self, ev: Event) -> None:
        if isinstance(ev, PeerDevInf):
            self.peer_devinf = ev.devinf
        elif isinstance(ev, NonceReceived):
            self.nonce = ev.nonce
        elif isinstance(ev, SyncModeDecided):
            self._send_changes(ev.mode)
        elif isinstance(ev, Acknowledged):
            self._acknowledged(ev.results)
        elif isinstance(ev, ItemRefused):
            self.report.refused_incoming(self.opts.name, ev.source or ev.target or "", ev.size, ev.limit)
        elif isinstance(ev, ChangesReceived):
            self._guard_incoming(ev.changes)
            self.session.provide_results([self._apply(ch) for ch in ev.changes])
            if ev.final and self.mode is SyncMode.REFRESH_FROM_SERVER:
                self._refresh_deletes()
            elif ev.final and self.emulated_refresh:
                self._reset_to_synced()

    def _tick_object(self) -> None:
        """Progress in bytes while a large object travels (its note count moves only at its end)."""
        moving = self.session.object_progress()
        if moving is not None:
            self._tick(f"{moving[0]} bytes", moving[1], moving[2])

    def _tick(self, what: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(what, done, total)

    # ------------------------------------------------------------------ outgoing
    def _send_changes(self, mode: SyncMode) -> None:
        if self.emulated_refresh and mode is not SyncMode.ONE_WAY_FROM_SERVER:
            raise SafetyStop(
                f"{self.opts.name} wants a {mode.name.lower().replace('_', '-')} sync instead of the "
                "refresh; nothing was changed. Run a normal sync first, then --mode pull-over again."
            )
        self.mode = mode
        self.report.mode = mode.name.lower().replace("_", "-")
        session = self.session
        self._wire = Wire.negotiate(
            self.peer_devinf, session.remote_uri, session.profile, filename_sync=self.opts.filename_sync
        )
        self.wire.extras.update(self.state.extras)
        self.wire.names.update(self.state.names)
        if not mode.client_sends:
            session.provide_changes([])
            return
        changes: list[TreeChange] = []
        if not mode.sends_all:
            changes = self.store.diff(self.synced_tree, self.head_tree)
            deletes = sum(1 for c in changes if c.kind is ChangeKind.DELETE)
            self._guard(deletes, len(self.store.list_notes(self.synced_tree)), "on the server")
        path_luid = {path: luid for luid, path in self.luid_path.items()}

        def known(path: str) -> Known | None:  # the server learns our LUID from our Add
            luid = path_luid.get(path)
            return Known(luid, at_peer=True) if luid is not None else None

        plan = plan_outgoing(Role.CLIENT, mode, diff=changes, notes=self.notes, known=known,
                             carries_name=self.wire.carries_name)
        out: list[OutChange] = []
        for step in plan.steps:
            if step.kind is ChangeKind.DELETE:
                self.wire.forget(step.path)
            elif step.moved_from is not None:
                self.wire.moved(step.moved_from, step.path)
            if step.key is None:
                self._agreed(step.effect.writes, step.effect.deletes)
                continue
            if step.kind is not ChangeKind.DELETE:
                self.luid_path[step.key] = step.path
            if not step.send:
                self._agreed(step.effect.writes, step.effect.deletes)
            elif step.kind is ChangeKind.DELETE:
                self.effects[step.key] = step.effect
                out.append(OutChange(kind=ChangeKind.DELETE, key=step.key))
            else:
                out.append(self._out(step.kind, step.key, step.path, step.blob, step.effect))
        if self.unsent:  # notes the server cannot carry exactly: not sent, reported, kept here
            out = [change for change in out if change.key not in self.unsent]
            for luid in self.unsent:
                self.effects.pop(luid, None)
        self.sent = len(out)
        self._tick("sending", 0, len(out))
        session.provide_changes(out)

    def _out(self, kind: ChangeKind, luid: str, path: str, blob: str, eff: Effect) -> OutChange:
        if self._unsendable(path, blob):
            self.unsent.add(luid)
        self.effects[luid] = eff
        # rendered when its message is built: a slow sync holds no payloads
        return LazyOutChange(kind=kind, key=luid, wire=self.wire, store=self.store, path=path, blob=blob)

    def _guard(self, deletes: int, total: int, where: str) -> None:
        check_deletes(self.opts, deletes, total, where)

    def _preflight(self, mode: SyncMode) -> None:
        """The outgoing mass-delete guard, before any note or change is sent."""
        if not mode.client_sends:
            return
        if mode is SyncMode.REFRESH_FROM_CLIENT:  # the server drops whatever we do not send
            synced = self.store.list_notes(self.synced_tree)
            self._guard(sum(1 for p in synced if p not in self.notes), len(synced), "on the server")
        elif not mode.sends_all:
            # the diff first: the synced notes then follow from the head's, without a tree walk
            changes = self.store.diff(self.synced_tree, self.head_tree)
            total = len(self.store.list_notes(self.synced_tree))
            self._guard(sum(1 for c in changes if c.kind is ChangeKind.DELETE), total, "on the server")

    def _guard_incoming(self, changes: tuple[InChange, ...]) -> None:
        """Stop before answering when the peer deletes too much here (did it lose its notes?)."""
        for ch in changes:
            if ch.kind is ChangeKind.DELETE and ch.luid and self.luid_path.get(ch.luid) in self.notes:
                self.in_deletes += 1
        if delete_guard(self.opts, self.in_deletes, self.start_total, "here") is not None:
            everything = "all" if self.in_deletes >= self.start_total else str(self.in_deletes)
            raise SafetyStop(
                f"{self.opts.name} deleted {everything} of the {self.start_total} notes we share: did it "
                "lose its notes? This is treated as suspect and nothing was changed here. Re-run with "
                "--force-delete if the deletions are wanted, or restore the peer with --mode push-over."
            )

    def _acknowledged(self, results: tuple[tuple[OutChange, int], ...]) -> None:
        remote = self.report.remote
        for change, code in results:
            eff = self.effects.pop(change.key, None)
            ok = code < 300 or code == St.ALREADY_EXISTS
            if self.report.settled_there(code, change.kind):
                self.merged_keys.add(change.key)
            if code == St.CONFLICT:
                # the server's policy is "error": it changed nothing and neither do we
                gone = eff.deletes[0] if eff and eff.deletes else change.key
                self.report.unresolved.append(self.luid_path.get(change.key) or gone)
            if code == St.TOO_LARGE:
                self.report.too_large_out += 1  # reported; not a failure of the sync
                path = self.luid_path.get(change.key) or change.key
                self.report.skipped.append(
                    too_large_line(f"not sent: {path}", self.session.oversized.get(change.key),
                                   self.session.peer_max_obj_size, f"{self.opts.name}'s")
                )
            if not ok:
                if code == St.CONFLICT_SERVER_WON:
                    # not an error: the server keeps its version and sends it to us
                    logger.info("the server kept its own version of %s (status 419)", change.key)
                    continue
                remote.err += 1
                logger.warning("the server refused %s of %s (status %d)", change.kind.value, change.key, code)
                if eff is not None and eff.kind is ChangeKind.MODIFY and eff.deletes:
                    self.luid_path[change.key] = eff.deletes[0]  # a refused rename: still the old name there
                continue
            if eff is not None:
                self._agreed(eff.writes, eff.deletes)
                if eff.kind is ChangeKind.DELETE:
                    self.luid_path.pop(change.key, None)
            self._count_sent(change, code, eff)
        self.acked += len(results)
        self._tick("sent", self.acked, self.sent)

    _peer_had: dict[str, str] | None = None

    def _count_sent(self, change: OutChange, code: int, eff: Effect | None) -> None:
        """Count what an acknowledged change did on the server (``SyncReport.count_sent``)."""
        if not self.mode.sends_all or eff is None or len(eff.writes) != 1:
            self.report.count_sent(change.kind, code)
            return
        if self._peer_had is None:
            self._peer_had = self.store.list_notes(self.synced_tree)
        [(path, blob)] = eff.writes.items()
        refresh = self.mode is SyncMode.REFRESH_FROM_CLIENT
        self.report.count_sent(
            change.kind, code, had=self._peer_had.get(path), blob=blob, sent_all=True, refresh=refresh
        )

    # ------------------------------------------------------------------ incoming
    def _apply(self, ch: InChange) -> ItemResult:
        self.got += 1
        self._tick("receiving", self.got, 0)
        local = self.report.local
        try:
            if ch.kind is ChangeKind.DELETE:
                return self._apply_delete(ch)
            assert ch.data is not None
            note = parse_or_why(self.wire, ch.data, ch.content_type)
            luid = ch.luid
            if ch.kind is ChangeKind.ADD and ch.guid in self.guid_luid:
                luid = self.guid_luid[ch.guid]  # re-sent Add of a note we already have
            path = self.luid_path.get(luid) if luid else None
            if isinstance(note, str):
                return self._unreadable(ch, note, None if path is None or path not in self.notes else luid)
            if path is None or path not in self.notes:
                return self._apply_add(ch, note.body, note)
            existing = self.store.read_blob(self.notes[path])
            body = self.wire.local_body(note.body, existing, exact=note.exact)
            target = path
            if self.wire.carries_name and note.name:
                wanted = self.wire.path_for(
                    note, lambda p: self.notes.taken(p, besides=path), fallback=path, file_at=self.notes.holds
                )
                if note.name and wanted != path and wanted.lower() != path.lower():
                    target = wanted
                    self.wire.named(target, note)
            assert luid is not None
            self.received.add(luid)
            if target == path and Wire.same_text(existing, body, exact=note.exact):
                self.wire.remember(path, note, ch.content_type)
                return ItemResult(code=St.OK, luid=luid)
            if luid in self.merged_keys and has_conflict_markers(body) and not has_conflict_markers(existing):
                self.report.unresolved.append(target)  # the server merged our edit with conflicts (207)
            else:
                self.report.note_arrived(target, body, existing)
            blob = self.store.write_blob(body)
            self._write(path, target, blob)
            self.wire.remember(target, note, ch.content_type)
            self.luid_path[luid] = target
            bump(local, ChangeKind.MODIFY)
            return ItemResult(code=St.OK, luid=luid)
        except Exception as exc:  # one bad item must not sink the session
            logger.warning("could not apply %s from the server: %s", ch.kind.value, exc)
            local.err += 1
            return ItemResult(code=St.COMMAND_FAILED)

    def _unreadable(self, ch: InChange, why: str, luid: str | None) -> ItemResult:
        """An item we cannot read: its payload is kept as a note of its own (an error of this
        sync), and the server is told it arrived, so it does not send it again.  A new item is
        bound to that note; a Replace of a note we have leaves that note as it was."""
        assert ch.data is not None
        path = self._keep_unreadable(ch.guid or ch.luid, ch.data, ch.content_type, why, self.notes.taken)
        if luid is not None:
            self.received.add(luid)
            return ItemResult(code=St.OK, luid=luid)
        luid = ch.luid or make_id(path, self.notes[path])
        self.luid_path[luid] = path
        if ch.guid:
            self.guid_luid[ch.guid] = luid
            self.luid_guid[luid] = ch.guid
        self.received.add(luid)
        return ItemResult(code=St.ITEM_ADDED, luid=luid)

    def _apply_add(self, ch: InChange, body: bytes, note: object) -> ItemResult:
        from gitsync.formats import NoteData

        assert isinstance(note, NoteData)
        body = self.wire.local_body(body, None, exact=note.exact)
        # the same note may already be here (a session that died after the server sent it)
        path = self.wire.path_for(note, set(), fallback=None)
        here = self.store.read_blob(self.notes[path]) if path in self.notes else None
        if here is not None and Wire.same_text(here, body, exact=note.exact):
            luid = self.luid_path.id_at(path) or make_id(path, self.notes[path])
            self._agreed({path: self.notes[path]}, ())  # both sides have it: in the synced tree
        elif self.mode is SyncMode.REFRESH_FROM_SERVER and path in self.notes and path not in self.writes:
            # refresh: the server's note of the same name replaces ours (no "(2)" copy)
            luid = self.luid_path.id_at(path) or make_id(path, self.notes[path])
            self._write(path, path, self.store.write_blob(body))
            self.report.note_arrived(path, body, here)
            bump(self.report.local, ChangeKind.MODIFY)
        elif (same := self._same_text_path(body)) is not None:
            # refresh from a peer that sends no names (text/plain): our note with this text keeps its name
            path = same
            luid = self.luid_path.id_at(path) or make_id(path, self.notes[path])
            self._agreed({path: self.notes[path]}, ())
        else:
            path = self.wire.path_for(note, self.notes.taken, file_at=self.notes.holds)
            blob = self.store.write_blob(body)
            self._write(None, path, blob)
            self.report.note_arrived(path, body, None)
            self.wire.named(path, note)
            luid = ch.luid or make_id(path, blob)
            bump(self.report.local, ChangeKind.ADD)
        self.wire.remember(path, note, ch.content_type)
        self.luid_path[luid] = path
        if ch.guid:
            self.guid_luid[ch.guid] = luid
            self.luid_guid[luid] = ch.guid
        self.received.add(luid)
        return ItemResult(code=St.ITEM_ADDED, luid=luid)

    _by_text: dict[bytes, str] | None = None

    def _same_text_path(self, body: bytes) -> str | None:
        """Refresh from the server in a format without names: a note we already hold with this text."""
        if self.mode is not SyncMode.REFRESH_FROM_SERVER or self.wire.fmt.carries_name:
            return None
        if self._by_text is None:
            self._by_text = {}
            for path, blob in sorted(self.notes.items()):
                self._by_text.setdefault(canonical(self.store.read_blob(blob)), path)
        path = self._by_text.pop(canonical(body), "")
        return path if path and path in self.notes and path not in self.writes else None

    def _apply_delete(self, ch: InChange) -> ItemResult:
        luid = ch.luid
        path = self.luid_path.get(luid) if luid else None
        if path is None or path not in self.notes:
            return ItemResult(code=St.DELETE_NOT_FOUND)
        self._delete(path)
        assert luid is not None
        self.luid_path.pop(luid, None)
        bump(self.report.local, ChangeKind.DELETE)
        return ItemResult(code=St.OK)

    def _refresh_deletes(self) -> None:
        """Refresh from server: after the whole package arrived, drop what it did not send."""
        keep = {self.luid_path[lu] for lu in self.received if lu in self.luid_path}
        # a note the server cannot carry was never sent: it is not missing there, it stays
        extra = [p for p in self.notes if p not in keep and not self._unsendable(p, self.notes[p])]
        self._guard(len(extra), len(self.notes), "here")
        for path in extra:
            self._delete(path)
            bump(self.report.local, ChangeKind.DELETE)

    def _reset_to_synced(self) -> None:
        """Emulated refresh from server: after its whole package, our notes become the ones both
        sides agree on; local edits it never got are dropped (in the sync commit: git revert undoes)."""
        self.report.mode = "refresh-from-server"
        gone = self.synced_deletes - set(self.synced_writes)
        agreed = self.store.list_notes(self.store.build_tree(self.synced_tree, self.synced_writes, gone))
        # a note the server cannot carry (never sent, or its edit never sent) stays as it is
        kept = {p for p, blob in self.notes.items() if agreed.get(p) != blob and self._unsendable(p, blob)}
        extra = [p for p in self.notes if p not in agreed and p not in kept]
        self._guard(len(extra), len(self.notes), "here")
        for path in extra:
            self._delete(path)
            bump(self.report.local, ChangeKind.DELETE)
        for path, blob in agreed.items():
            if self.notes.get(path) != blob and path not in kept:
                kind = ChangeKind.MODIFY if path in self.notes else ChangeKind.ADD
                self._write(None, path, blob)
                bump(self.report.local, kind)

    # ------------------------------------------------------------------ commit
    def _trees(self) -> tuple[str, str]:
        """The new head tree and the peer's new synced tree, as the session leaves them."""
        store = self.store
        new_tree = store.build_tree(self.head_tree, self.writes, self.deletes)
        return new_tree, self._synced_after(new_tree)

    def _prebuild(self) -> None:
        try:
            _new_tree, synced = self._trees()
            self.map_ahead = (synced, self._id_rows(synced))
        except GitsyncError as exc:  # _finish builds them again and reports it
            logger.debug("building the trees ahead failed: %s", exc)

    def _id_rows(self, synced: str) -> tuple[IdRow, ...]:
        """The LUID map to save: every note the peer or we still have (~30 ms at 20,000 notes)."""
        live = self.store.list_notes(synced)
        return tuple(
            IdRow(luid, self.luid_guid.get(luid), path)
            for luid, path in self.luid_path.items()
            if path in live or path in self.notes
        )

    def _finish(self, session_id: str) -> SyncReport:
        store, opts, report = self.store, self.opts, self.report
        new_tree, synced = self._trees()
        live = store.list_notes(synced)
        if self.mode is SyncMode.REFRESH_FROM_CLIENT:  # the server dropped what we did not send
            report.count_refreshed(store.list_notes(self.synced_tree), live)
        ahead = self.map_ahead if self.quiet_end else None
        ids = ahead[1] if ahead is not None and ahead[0] == synced else self._id_rows(synced)
        wire = self._wire

        def keep(path: str) -> bool:
            return path in live or path in self.notes

        state = PeerState(
            role=Role.CLIENT,
            url=opts.url,
            device_id=opts.device_id,
            remote_uri=self.session.remote_uri,
            our_anchor=self.next_anchor,
            peer_anchor=self.session.server_anchor.next,
            session_id=session_id,
            content_type=wire.fmt.content_type if wire is not None else None,
            nonce=self.nonce or self.state.nonce,
            mode=self.report.mode,
            advertise=self.state.advertise,  # content types kept after a sync-notes takeover
            ids=ids,
            devinf=self.peer_devinf,
            extras=kept(wire.extras, keep) if wire is not None else {},
            names=kept(wire.names, keep) if wire is not None else {},
        )
        files = state.dump()
        if wire is not None:
            report.renamed.extend(r for r in wire.renamed if r not in report.renamed)
        message = commit_message(
            report.subject(opts.name),
            peer=opts.name,
            url=opts.url,
            device=opts.device_id,
            mode=report.mode,
            session=session_id,
            anchor=self.next_anchor,
            conflicts=report.conflicts,
        )
        new_commit = self._commit(new_tree, self.head_tree, self.head, message)
        self.committing = True  # past here, finish_sync (and recover()) own the branch
        store.finish_sync(
            opts.name,
            expected_state=self.snap.commit if self.snap else None,
            files=files,
            synced_tree=synced,
            new_commit=new_commit,
            expected_head=self.head,
            message=message,
            expected_branch=self.branch,
        )
        report.commit = new_commit
        return report


class _Background:
    """``fn`` run in a thread while the session thread waits on the network; ``wait()`` joins it
    and re-raises what it raised (once).  The two never use the store at the same time: pygit2
    calls through cffi release the GIL, and a GitStore is not meant for two threads at once."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._error: BaseException | None = None
        self._fn = fn
        self._thread = threading.Thread(target=self._main, name="gitsync-scan")
        self._thread.start()

    def _main(self) -> None:
        try:
            self._fn()
        except BaseException as exc:  # handed to the session's thread by wait()
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def wait(self) -> None:
        self._thread.join()
        error, self._error = self._error, None
        if error is not None:
            raise error


def _redacted(msg: Message, body: bytes) -> bytes:
    """``body`` with its credentials blanked, for the debug log (basic Cred data is the password)."""
    cred = msg.header.cred
    return body.replace(cred.data.encode(), b"<redacted>") if cred is not None and cred.data else body

