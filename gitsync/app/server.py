"""The server driver: HTTP requests → ServerSession per client session → the Git store.

Each device has its own state ref (``refs/gitsync/device-<id>``). A session writes
nothing until the client's last package arrives; then, under the repository lock, its
changes are committed on top of the branch as it is *then* (other devices may have
synced meanwhile) and the device's state ref moves: all in one ``finish_sync``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gitsync.app.carryover import (
    GONE_CODES,
    MAX_REFUSALS,
    MAX_SUSPENDED,
    Refusal,
    Suspended,
    dump_refusals,
    load_refusals,
    ok_status,
)
from gitsync.app.edits import TreeEdits
from gitsync.app.faults import crash_point
from gitsync.app.outgoing import LazyOutChange
from gitsync.app.paths import PathMap, PathSet
from gitsync.app.sessions import MemoryTable, SessionTable, Strikes
from gitsync.codec import WBXML_TYPE, decode, encode
from gitsync.errors import CodecError, GitsyncError, ProtocolError, RepositoryBusy, SafetyStop
from gitsync.formats import NoteData
from gitsync.formats.lineendings import adapt, detect, to_lf
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.auth import Users
from gitsync.protocol.constants import AUTH_BASIC, St, ver_proto
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
from gitsync.protocol.server import ServerConfig, ServerSession
from gitsync.protocol.session import DEFAULT_MAX_OBJ_SIZE
from gitsync.store.git import GitStore, TreeChange
from gitsync.sync.conflict import Outcome, Policy, resolve_delete_vs_modify, resolve_modify
from gitsync.sync.devinf import DEFAULT_MAX_MSG_SIZE, our_devinf
from gitsync.sync.ids import make_id, peer_ref_name
from gitsync.sync.ledger import Effect
from gitsync.sync.payload import Wire, parse_or_why
from gitsync.sync.plan import Known, plan_outgoing
from gitsync.sync.report import SyncReport, bump, commit_message, summary_line, too_large_line
from gitsync.sync.state import IdRow, PeerState, Role, kept
from gitsync.transport.proxy import TrustedProxies
from gitsync.transport.wsgi import Request, Response, make_wsgi_app

__all__ = ["STORE_ALIASES", "ServerOptions", "SyncServer"]

logger = logging.getLogger(__name__)

#: authentication failures of one device id (of one address: more, as many devices may share
#: one behind NAT) answered normally; each further one refuses that client, without checking
#: anything, for twice as long as the one before (capped)
AUTH_FREE_FAILURES = 3
AUTH_FREE_FAILURES_PER_ADDRESS = 10
AUTH_MAX_DELAY = 300.0
#: how many saved states back a client's Last anchor is looked for (see _ServerRun._rewind)
_REWIND_LIMIT = 16
#: datastore names clients use for notes (compared without ./ and case)
STORE_ALIASES = frozenset({"notes", "note", "memo", "memos", "pnote", "snote", "notebook"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """How the server behaves."""

    users: Users | None = None
    auth_type: str = AUTH_BASIC
    policy: Policy = Policy.MERGE
    filename_sync: bool = True
    session_timeout: float = 900.0
    max_msg_size: int = DEFAULT_MAX_MSG_SIZE
    max_obj_size: int | None = DEFAULT_MAX_OBJ_SIZE  # the largest note we take (MaxObjSize)
    max_body: int = 16 * 1024 * 1024
    store_uris: frozenset[str] = STORE_ALIASES
    server_id: str = "gitsync-notes"
    on_report: Callable[[SyncReport], None] | None = None
    trusted_proxies: TrustedProxies = ()  # X-Forwarded-For/-Proto honoured from these only
    lock_wait: float = 10.0  # seconds to wait for the repository lock before answering 417


class SyncServer:
    """A SyncML notes server over one Git repository; ``wsgi_app()`` serves it."""

    def __init__(
        self,
        store: GitStore,
        options: ServerOptions | None = None,
        *,
        now: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
        sessions: SessionTable | None = None,
    ) -> None:
        self.store = store
        self.options = options or ServerOptions()
        self.now = now
        self.rng = rng
        self._table = sessions if sessions is not None else MemoryTable()
        self._lock = threading.Lock()

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """The WSGI application serving this server."""
        return make_wsgi_app(
            self.handle, max_body=self.options.max_body, trusted_proxies=self.options.trusted_proxies
        )

    # ------------------------------------------------------------------ HTTP
    def handle(self, request: Request) -> Response:
        """Answer one HTTP request carrying one SyncML message."""
        try:  # bounded by the body limit, and outside the lock: a hostile body delays nobody else
            msg, encoding = decode(request.body, request.content_type, max_size=self.options.max_body)
        except CodecError as exc:
            logger.info("rejected a request: %s", exc)
            status = exc.status_hint if exc.status_hint in (400, 413, 415) else 400
            return Response(status=status, body=f"{exc}\n".encode())
        return self.handle_message(request, msg, encoding)

    def handle_message(self, request: Request, msg: Message, encoding: str) -> Response:
        """Answer a request whose body was decoded already (``msg`` in ``encoding``)."""
        externals = {"server": self, "store": self.store, "options": self.options,
                     "users": self.options.users}
        with self._lock, self._table.transaction(externals):
            return self._handle(request, msg, encoding)

    def _handle(self, request: Request, msg: Message, encoding: str) -> Response:
        crash_point("server-recv")
        for gone in self._table.expire(self.now() - self.options.session_timeout):
            logger.info("dropped abandoned session %s", gone[:8])
        found = self._session_key(request, msg)
        existing = self._table.get(found)
        new = found is None or existing is None or existing.finished
        refuse = None
        if (new or existing is None or existing.session.user is None) and self._throttled(request, msg):
            refuse = St.RETRY_LATER
        elif existing is not None and not new and msg.header.source != existing.device_id:
            refuse = St.FORBIDDEN  # another device with this session's id: refused, the session goes on
        if refuse is not None:
            try:
                body = encode(_error_reply(msg.header, refuse), encoding)
            except CodecError:
                return Response(status=403, body=b"refused\n")
            retry = (("Retry-After", "60"),) if refuse == St.RETRY_LATER else ()
            return Response(body=body, content_type=encoding, headers=retry)
        if new:
            key = uuid.uuid4().hex
            path = request.path.split(";")[0]
            run = _ServerRun(self, f"{request.base_url}{path}?sessionid={key}", msg)
            self._table.put(key, run, touched=self.now(), device=(msg.header.session_id, msg.header.source),
                            addr=request.remote_addr)
        else:
            assert found is not None and existing is not None
            key, run = found, existing
            self._table.touch(key, self.now())
        run.touched = self.now()
        run.session.use_wbxml_devinf(encoding == WBXML_TYPE)  # DevInf type and size estimates
        reply = run.handle(msg)
        self._keep_suspended(run)
        self._count_auth(request, msg, run)
        if run.finished:
            self._table.pop(key)
        try:
            body = encode(reply, encoding)
        except CodecError as exc:  # a field we echo holds what the encoding cannot carry: the peer's fault
            logger.warning("cannot encode the reply to %s: %s", msg.header.source, exc)
            self._table.pop(key)
            return Response(status=400, body=b"message fields a reply cannot carry\n")
        # one plain cookie per session, as pysyncml's own server does: its client (requests 0.14)
        # fails on a second Set-Cookie of the same name
        headers = (("Set-Cookie", f"sessionid={key}"),) if new else ()
        crash_point("server-reply")
        after = functools.partial(self._meanwhile, run) if run.has_spare_work() else None
        return Response(body=body, content_type=encoding, headers=headers, after=after)

    def _keep_suspended(self, run: _ServerRun) -> None:
        """Remember where a device's session stands until it commits, for a resume (Alert 225)."""
        table = self._table.suspended
        if run.committed:
            table.pop(run.device_id, None)
        elif run.suspend is not None and self._table.keeps_suspended:
            table.pop(run.device_id, None)
            table[run.device_id] = run.suspend  # newest last
            while len(table) > MAX_SUSPENDED:
                table.pop(next(iter(table)))

    def _meanwhile(self, run: _ServerRun) -> None:
        """Work a session can do while the client reads our answer (after it was sent)."""
        crash_point("server-answered")
        with self._lock:
            run.spare_work()

    def close(self) -> None:
        """Finish what answered sessions left to do (call before the process exits)."""
        with self._lock:
            self.store.settle()

    def _session_key(self, request: Request, msg: Message) -> str | None:
        key = request.query.get("sessionid")
        if not key and ";sessionid=" in request.path:
            key = request.path.split(";sessionid=", 1)[1].split(";")[0]
        if self._resumable(key, request):
            return key
        key = request.cookies.get("sessionid")
        if msg.header.msg_id > 1 and self._resumable(key, request):
            return key
        if msg.header.msg_id <= 1:
            return None  # a client (re)starting a session: never resume one it abandoned
        key = self._table.by_device((msg.header.session_id, msg.header.source))
        return key if self._resumable(key, request) else None

    def _resumable(self, key: str | None, request: Request) -> bool:
        """An open session, continued from where it began: with users, a session (and the login it
        holds) is bound to the client's address, so a session id seen elsewhere skips no login."""
        if not key or self._table.get(key) is None:
            return False
        return not self.options.users or self._table.addr(key) == request.remote_addr

    # ------------------------------------------------------------------ failed logins
    def _strike_keys(self, request: Request, msg: Message) -> tuple[str, ...]:
        return (f"addr {request.remote_addr}", f"device {msg.header.source}")

    def _throttled(self, request: Request, msg: Message) -> bool:
        """Whether this client failed to log in too often lately (it gets 417 without a check)."""
        if not self.options.users:
            return False
        now = self.now()
        for who in self._strike_keys(request, msg):
            strikes = self._table.strikes.get(who)
            if strikes is not None and now < strikes.until:
                logger.warning("refusing %r for %.0f s more: %d failed logins", who, strikes.until - now,
                               strikes.count)
                return True
        return False

    def _count_auth(self, request: Request, msg: Message, run: _ServerRun) -> None:
        if not self.options.users:
            return
        table, now = self._table.strikes, self.now()
        if run.session.auth_rejected:
            if len(table) > 10_000:  # forget clients that stopped failing long ago
                for who in [k for k, v in table.items() if now - v.last > self.options.session_timeout]:
                    del table[who]
            for who in self._strike_keys(request, msg):
                strikes = table.setdefault(who, Strikes())
                if now - strikes.last > self.options.session_timeout:
                    strikes.count = 0
                strikes.count += 1
                strikes.last = now
                free = AUTH_FREE_FAILURES if who.startswith("device ") else AUTH_FREE_FAILURES_PER_ADDRESS
                if strikes.count >= free:
                    strikes.until = now + min(2.0 ** (strikes.count - free), AUTH_MAX_DELAY)
        elif run.session.user is not None:
            table.pop(f"device {msg.header.source}", None)


@dataclass(slots=True)
class _Item:
    """One note as this device knows it: our GUID, its LUID (once mapped), the path."""

    guid: str
    luid: str | None
    path: str


class _ServerRun(TreeEdits):
    """The application side of one client session."""

    def __init__(self, server: SyncServer, resp_uri: str, first: Message) -> None:
        super().__init__()
        self.server = server
        self.store = server.store
        self.opts = server.options
        self.finished = False
        self.touched = server.now()
        self.device_id = first.header.source
        self.name = "device-" + peer_ref_name(self.device_id)
        self.report = SyncReport(peer=self.name)
        snap = self.store.state_load(self.name)
        self.snap = snap
        self.state_commit = snap.commit if snap else None  # where the state ref is (for the CAS)
        self.state = PeerState.load(snap.files if snap else None)
        self.items: dict[str, _Item] = _items(self.state)  # guid → item
        self.peer_devinf: DevInf | None = self.state.devinf
        nonce = b""
        try:
            nonce = base64.b64decode(self.state.nonce or "", validate=False)
        except (binascii.Error, ValueError):
            pass
        self.session = ServerSession(
            ServerConfig(
                devinf=our_devinf(self.opts.server_id, server=True),
                resp_uri=resp_uri,
                store_uris=self.opts.store_uris,
                users=self.opts.users,
                auth_type=self.opts.auth_type,
                nonce=nonce,
                next_nonce=base64.b64encode(server.rng(12)),
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
        # carried over between sessions (see app/carryover.py)
        self.refusals: dict[str, Refusal] = load_refusals(self.state.refused)
        self.held_before: set[str] = set()  # answered 409 in the interrupted session we resume
        self.suspend: Suspended | None = None  # what a resume of this session would continue from
        self.replayed: dict[str, tuple[ChangeKind, bytes | None, int]] = {}  # luid → change, status
        self.prior_acked: dict[str, tuple[int, str]] = {}  # guid → (status, blob) before a resume
        self.pending_maps: dict[str, str] = {}  # guid → luid for items not known yet

    # ------------------------------------------------------------------ session
    def handle(self, msg: Message) -> Message:
        session = self.session
        try:
            for event in session.receive(msg):
                self._on(event)
            reply = session.next_message()
        except (ProtocolError, GitsyncError) as exc:
            code = exc.status_hint if isinstance(exc, ProtocolError) else St.COMMAND_FAILED
            if isinstance(exc, RepositoryBusy):
                code = St.RETRY_LATER
            logger.warning("session with %s failed: %s", self.device_id, exc)
            self.finished = True
            return _error_reply(msg.header, code)
        except Exception:
            logger.exception("internal error in the session with %s", self.device_id)
            self.finished = True
            return _error_reply(msg.header, St.COMMAND_FAILED)
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
            self.report.local.err += 1
            self.report.skipped.append(
                too_large_line(f"not received from {self.device_id}: {ev.source or ev.target}", ev.size,
                               ev.limit, "our")
            )
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
        rec: Suspended | None = self.server._table.suspended.get(self.device_id)
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
                self.items = _items(state)
                return

    def _here_already(self, note: NoteData) -> bool:
        """Whether we hold this added note at its path with the same text (the client repeats an Add
        whose session we committed but it did not): then it is bound, not duplicated."""
        path = self.wire.path_for(note, set())
        blob = self.notes.get(path)
        if blob is None or path in self.touched_paths:
            return False
        existing = self.store.read_blob(blob)
        body = self.wire.local_body(note.body, existing, exact=note.exact)
        return Wire.same_text(existing, body, exact=note.exact)

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

    # ------------------------------------------------------------------ incoming
    def _apply(self, ch: InChange) -> ItemResult:
        local = self.report.local
        try:
            if ch.kind is ChangeKind.DELETE:
                return self._apply_delete(ch)
            assert ch.data is not None
            note = parse_or_why(self.wire, ch.data, ch.content_type)
            item = self.by_luid.get(ch.luid) if ch.luid else None
            if isinstance(note, str):
                return self._unreadable(ch, note, item)
            if item is not None and item.path not in self.notes:
                self._follow_local_rename(item)
                gone = self.local.get(item.path)
                if (
                    ch.kind is ChangeKind.MODIFY
                    and gone is not None
                    and gone.kind is ChangeKind.DELETE
                    and item.path not in self.touched_paths
                ):
                    return self._edit_vs_delete(item, note, ch.content_type)
            if item is None or item.path not in self.notes:
                return self._apply_add(ch, note)
            return self._apply_replace(item, note, ch.content_type)
        except SafetyStop:
            raise
        except Exception as exc:  # one bad item must not sink the session
            logger.warning("could not apply %s from %s: %s", ch.kind.value, self.device_id, exc)
            local.err += 1
            return ItemResult(code=St.COMMAND_FAILED)

    def _unreadable(self, ch: InChange, why: str, item: _Item | None) -> ItemResult:
        """An item we cannot read: its payload is kept as a note of its own (an error of this
        session), and the client is told it arrived, so it does not send it again.  A new item
        is bound to that note; a Replace of a note we have leaves that note as it was."""
        assert ch.data is not None
        path = self._keep_unreadable(ch.luid, ch.data, ch.content_type, why, self._taken)
        self.wire.saw(path)
        if item is not None and item.path in self.notes:
            self.matched.add(item.guid)
            return ItemResult(code=St.OK)
        new = _Item(guid=make_id(path, self.notes[path]), luid=None, path=path)
        self._register(new)
        self._bind(new, ch.luid)
        return ItemResult(code=St.ITEM_ADDED)

    def _apply_add(self, ch: InChange, note: NoteData) -> ItemResult:
        # slow sync / refresh: is this note already here? (same name, or same text)
        if self.mode.sends_all or ch.kind is ChangeKind.MODIFY or self._here_already(note):
            proposed = self.wire.path_for(note, set())
            existing_blob = self.notes.get(proposed)
            if existing_blob is not None and proposed not in self.touched_paths:
                item = self._item_for_path(proposed)
                existing = self.store.read_blob(existing_blob)
                body = self.wire.local_body(note.body, existing, exact=note.exact)
                self._bind(item, ch.luid)
                if Wire.same_text(existing, body, exact=note.exact):
                    self.synced_writes[proposed] = existing_blob
                    self.touched_paths.add(proposed)
                    self.wire.remember(proposed, note, ch.content_type)
                    return ItemResult(code=St.OK)
                if self.mode is SyncMode.REFRESH_FROM_CLIENT:  # the client's notes replace ours
                    self._write(proposed, proposed, self.store.write_blob(body))
                    self.wire.remember(proposed, note, ch.content_type)
                    bump(self.report.local, ChangeKind.MODIFY)
                    return ItemResult(code=St.OK)
                base, ct = self._synced_blob(proposed), ch.content_type
                return self._conflict(item, existing, body, base=base, note=note, content_type=ct)
        path = self.wire.path_for(note, self._taken, file_at=self._file_at)
        body = self.wire.local_body(note.body, None, exact=note.exact)
        blob = self.store.write_blob(body)
        self._write(None, path, blob)
        self.wire.named(path, note)
        self.wire.saw(path)
        self.wire.remember(path, note, ch.content_type)
        item = _Item(guid=make_id(path, blob), luid=ch.luid, path=path)
        self._register(item)
        self.matched.add(item.guid)
        bump(self.report.local, ChangeKind.ADD)
        return ItemResult(code=St.ITEM_ADDED)

    def _apply_replace(self, item: _Item, note: NoteData, content_type: str | None) -> ItemResult:
        path = item.path
        existing = self.store.read_blob(self.notes[path])
        body = self.wire.local_body(note.body, existing, exact=note.exact)
        self.matched.add(item.guid)
        change = self.local.get(path) if path not in self.touched_paths else None
        here = change is not None and change.kind is ChangeKind.MODIFY
        renamed_here = here and change is not None and change.old_path != change.new_path
        edited_here = here and change is not None and change.old_blob != change.new_blob
        synced_path = change.old_path if (renamed_here and change is not None and change.old_path) else path
        wanted = target = path  # wanted: the path the client believes the note has
        if self.wire.carries_name and note.name:
            wanted = self.wire.path_for(
                note, lambda p: self.notes.taken(p, besides=path), fallback=path, file_at=self._file_at
            )
            client_renamed = wanted.lower() != synced_path.lower()
            if client_renamed and (not renamed_here or self.opts.policy is Policy.CLIENT_WINS):
                target = wanted  # else a rename of ours stands (both renamed: ours, unless client-wins)
                self.wire.named(target, note)
            elif wanted.lower() == target.lower():
                wanted = target
        if edited_here:
            assert change is not None
            return self._conflict(
                item,
                existing,
                body,
                base=self._synced_blob(change.old_path or path),
                note=note,
                content_type=content_type,
                target=target,
                told=wanted,
            )
        self.touched_paths.update({path, synced_path})
        if target == path and Wire.same_text(existing, body, exact=note.exact):
            self.synced_writes[path] = self.notes[path]
            self.wire.remember(path, note, content_type)
            if renamed_here and wanted != target:
                self._queue_replace(item, path, self.notes[path])  # the client still has the old name
            return ItemResult(code=St.OK)
        blob = self.store.write_blob(body)
        self._write(path, target, blob)
        self._move(item, target)
        self.wire.saw(target)
        self.wire.remember(target, note, content_type)
        if renamed_here and wanted != target:
            self._queue_replace(item, target, blob)
        bump(self.report.local, ChangeKind.MODIFY)
        return ItemResult(code=St.OK)

    def _follow_local_rename(self, item: _Item) -> None:
        """The note was renamed here since the last sync: the client's change goes to the new path."""
        tc = self.local.get(item.path)
        if (
            tc is not None
            and tc.kind is ChangeKind.MODIFY
            and tc.old_path == item.path
            and tc.new_path is not None
            and tc.new_path in self.notes
            and tc.new_path not in self.touched_paths
        ):
            self._move(item, tc.new_path)

    def _apply_delete(self, ch: InChange) -> ItemResult:
        item = self.by_luid.get(ch.luid) if ch.luid else None
        if item is not None and item.path not in self.notes:
            self._follow_local_rename(item)
        if item is None or item.path not in self.notes:
            return ItemResult(code=St.DELETE_NOT_FOUND)
        path = item.path
        change = self.local.get(path)
        code: int = St.OK
        if (
            change is not None
            and change.kind is ChangeKind.MODIFY
            and change.old_blob != change.new_blob
            and path not in self.touched_paths
        ):
            # the client deleted what we edited: by default the edit wins and goes back as an Add
            ours = self.store.read_blob(self.notes[path])
            outcome = resolve_delete_vs_modify(ours, None, self._policy(path))
            self._count(outcome, path)
            self.touched_paths.update(p for p in (change.old_path, path) if p)
            if outcome.code == St.CONFLICT:
                return ItemResult(code=outcome.code)
            if outcome.server is not None:
                self._unbind(item)
                self._queue_add(item, path)
                return ItemResult(code=outcome.code)
            code = outcome.code  # the client's delete wins; our edit stays in the history
        self._delete(path)
        self._unbind(item)
        self.items.pop(item.guid, None)
        self.by_path.pop(path, None)
        bump(self.report.local, ChangeKind.DELETE)
        return ItemResult(code=code)

    def _edit_vs_delete(self, item: _Item, note: NoteData, content_type: str | None) -> ItemResult:
        """The client edited a note we deleted since the last sync."""
        path = item.path
        body = self.wire.local_body(note.body, None, exact=note.exact)
        outcome = resolve_delete_vs_modify(None, body, self._policy(path))
        self._count(outcome, path)
        self.touched_paths.add(path)
        self.matched.add(item.guid)
        if outcome.server is not None:
            target = path
            if self.wire.carries_name and note.name:
                target = self.wire.path_for(
                    note, lambda p: self._taken(p, besides=path), fallback=path, file_at=self._file_at
                )
                self.wire.named(target, note)
            blob = self.store.write_blob(outcome.server)
            self._write(None, target, blob)
            self._move(item, target)
            self.wire.saw(target)
            self.wire.remember(target, note, content_type)
            bump(self.report.local, ChangeKind.ADD)
        elif outcome.send_delete and item.luid:
            self.effects[item.guid] = Effect({}, (path,), ChangeKind.DELETE)
            self.extra_out.append(OutChange(kind=ChangeKind.DELETE, key=item.guid, peer_key=item.luid))
        return ItemResult(code=outcome.code)

    def _policy(self, path: str) -> Policy:
        """The conflict policy for ``path``: under ``error``, a conflict answered 409 in the
        interrupted session we resume (a Synthesis client aborts on 409 and sends the note again on
        resume) is settled as under ``merge``, so the device is not stuck and nothing is lost.  A
        client that completes its session keeps its 409 until someone resolves the conflict."""
        if self.opts.policy is Policy.ERROR and path in self.held_before:
            return Policy.MERGE
        return self.opts.policy

    def _count(self, outcome: Outcome, path: str) -> None:
        if outcome.code != St.OK:
            self.report.conflicts += 1
        if outcome.code == St.CONFLICT_MERGED and not outcome.unresolved:
            self.report.merged += 1
        if outcome.code == St.CONFLICT and self.suspend is not None:
            self.suspend.held.add(path)
        if outcome.unresolved:
            self.report.unresolved.append(path)
            logger.warning(
                "conflict on %s with %s left unresolved (status %d)", path, self.device_id, outcome.code
            )

    def _merge3(self, base: bytes | None, ours: bytes, theirs: bytes) -> tuple[bytes, bool]:
        """Git's three-way merge, labelled for the user; line endings alone never conflict.

        When the versions do not share one line-ending convention (a user converted the
        file), they are merged as LF and the result takes our file's convention.
        """
        labels = ("server", "last sync", self.name)
        style = detect(ours)
        if detect(theirs) == style and (base is None or detect(base) == style):
            return self.store.merge3(base, ours, theirs, labels=labels)
        merged, clean = self.store.merge3(
            to_lf(base) if base is not None else None, to_lf(ours), to_lf(theirs), labels=labels
        )
        return adapt(merged, style), clean

    def _conflict(
        self,
        item: _Item,
        server: bytes,
        client: bytes,
        *,
        base: bytes | None,
        note: NoteData,
        content_type: str | None,
        target: str | None = None,
        told: str | None = None,
    ) -> ItemResult:
        """Both sides changed ``item``: settle it by policy, never losing a version.

        ``target`` is where the note ends (the client may have renamed it), ``told`` the
        path the client believes it has: if they differ, the client is sent the note.
        """
        path = item.path
        target = target or path
        if base is not None and Wire.same_text(base, client, exact=note.exact):
            # the client still has the last synced text (slow sync re-sends it): only we changed it
            outcome = Outcome(code=St.OK, server=server, send=server)
        else:
            outcome = resolve_modify(
                base,
                server,
                client,
                self._policy(path),
                self._merge3,
                duplicates_ok=self.session.profile.accepts_209,
            )
        self.touched_paths.update({path, target})
        self._count(outcome, target)
        if outcome.code == St.CONFLICT:
            return ItemResult(code=outcome.code)  # policy "error": nothing changes on either side
        result = outcome.server if outcome.server is not None else server
        if result != server or target != path:
            blob = self.store.write_blob(result) if result != server else self.notes[path]
            self._write(path, target, blob)
            self._move(item, target)
            self.wire.saw(target)
            bump(self.report.local, ChangeKind.MODIFY)
        else:
            self.synced_writes[path] = self.notes[path]
        self.wire.remember(target, note, content_type)
        send = outcome.send
        if send is None and self.wire.carries_name and told is not None and told != target:
            send = result
        if send is not None and self.mode is SyncMode.SLOW and not self.session.profile.replace_in_slow_sync:
            # this peer takes no Replace in a slow sync: it keeps its text now, ours goes next sync
            self.synced_writes[target] = self.store.write_blob(client)
        elif send is not None:
            blob = self.store.write_blob(send) if send != result else self.notes[target]
            self._queue_replace(item, target, blob)
        if outcome.copy is not None:
            copy_path = self.wire.path_for(
                NoteData(name=_conflict_name(target), body=outcome.copy), self._taken
            )
            blob = self.store.write_blob(outcome.copy)
            self._write(None, copy_path, blob)
            copy_item = _Item(guid=make_id(copy_path, blob), luid=None, path=copy_path)
            self._register(copy_item)
            self._queue_add(copy_item, copy_path)
        return ItemResult(code=outcome.code)

    # ------------------------------------------------------------------ bookkeeping
    def _taken(self, path: str, besides: str | None = None) -> bool:
        """Whether a note or a path settled this session (not ``besides``) is ``path``, ignoring case."""
        return self.notes.taken(path, besides) or self.touched_paths.taken(path, besides)

    def _file_at(self, path: str) -> bool:
        """Whether a note (a file) is at ``path`` or was settled there this session, ignoring case."""
        return self.notes.holds(path) or self.touched_paths.holds(path)

    def _item_for_path(self, path: str) -> _Item:
        item = self.by_path.get(path)
        if item is None:
            item = _Item(guid=make_id(path, self.notes[path]), luid=None, path=path)
            self._register(item)
        return item

    def _register(self, item: _Item) -> None:
        self.items[item.guid] = item
        self.by_path[item.path] = item
        if item.luid:
            self.by_luid[item.luid] = item

    def _bind(self, item: _Item, luid: str | None) -> None:
        if luid:
            self._unbind(item)
            old = self.by_luid.pop(luid, None)
            if old is not None and old is not item:
                old.luid = None
            item.luid = luid
            self.by_luid[luid] = item
        self.matched.add(item.guid)

    def _unbind(self, item: _Item) -> None:
        if item.luid:
            self.by_luid.pop(item.luid, None)
            item.luid = None

    def _move(self, item: _Item, target: str) -> None:
        if target != item.path:
            self.by_path.pop(item.path, None)
            item.path = target
            self.by_path[target] = item

    def _synced_blob(self, path: str) -> bytes | None:
        if self.snap is None or self.snap.synced_tree is None:
            return None
        blob = self.store.list_notes(self.snap.synced_tree).get(path)
        return self.store.read_blob(blob) if blob else None

    def _touch(self, path: str) -> None:
        self.touched_paths.add(path)

    def _refresh_deletes(self) -> None:
        """Refresh from client: after its whole package, drop what it did not send."""
        keep = {self.items[g].path for g in self.matched if g in self.items}
        extra = [
            p
            for p in self.notes
            if p not in keep and p not in self.touched_paths and not self._unsendable(p, self.notes[p])
        ]  # a note the client cannot carry was never sent to it: it stays
        total = len(self.notes)
        if total >= 4 and len(extra) > total // 2:
            logger.warning("refresh from %s deletes %d of %d notes", self.device_id, len(extra), total)
        for path in extra:
            self._delete(path)
            item = self.by_path.pop(path, None)
            if item is not None:
                self.items.pop(item.guid, None)
                self._unbind(item)
            bump(self.report.local, ChangeKind.DELETE)

    # ------------------------------------------------------------------ outgoing
    def _out(self, kind: ChangeKind, item: _Item, path: str, blob: str, eff: Effect) -> OutChange:
        if self._unsendable(path, blob):
            self.unsent.add(item.guid)
        self.effects[item.guid] = eff
        # rendered when its message is built: a slow sync holds no payloads
        peer_key = item.luid if kind is not ChangeKind.ADD else None
        return LazyOutChange(
            kind=kind,
            key=item.guid,
            peer_key=peer_key,
            wire=self.wire,
            store=self.store,
            path=path,
            blob=blob,
        )

    def _queue_add(self, item: _Item, path: str) -> None:
        blob = self.writes.get(path) or self.notes[path]
        self.extra_out.append(
            self._out(ChangeKind.ADD, item, path, blob, Effect({path: blob}, (), ChangeKind.ADD))
        )

    def _queue_replace(self, item: _Item, path: str, blob: str) -> None:
        kind = ChangeKind.MODIFY if item.luid else ChangeKind.ADD
        self.extra_out.append(self._out(kind, item, path, blob, Effect({path: blob}, (), kind)))

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
                item = _Item(guid=step.key, luid=None, path=step.path)
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
            bump(self.report.remote, change.kind)

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
            base = self.synced_tree if not self.mode.sends_all else None
            synced = store.build_synced(
                base, self.synced_writes, self.synced_deletes - set(self.synced_writes), like=new_tree
            )
            live = store.list_notes(synced)

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
            new_commit = None
            if report.local.total() + report.remote.total() > 0 or new_tree != head_tree:
                new_commit = store.commit_tree(new_tree, [head] if head else [], message)
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


def _items(state: PeerState) -> dict[str, _Item]:
    """The notes this device knows, by our GUID (from its saved id map)."""
    return {row.ours: _Item(guid=row.ours, luid=row.theirs, path=row.path) for row in state.ids}


def _blob_of(change: OutChange) -> str:
    """The blob an outgoing change carries ("" for a Delete)."""
    return str(getattr(change, "_blob", "") or "")


def _conflict_name(path: str) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem} (conflict).{ext}" if dot and "/" not in ext else f"{path} (conflict)"



def _error_reply(hdr: SyncHdr, code: int) -> Message:
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
    )
    return Message(header=header, commands=(status,), final=True)
