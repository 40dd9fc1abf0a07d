"""The client driver: Git store + ClientSession + HTTP transport = one sync.

Order of work, chosen so a crash at any point loses nothing:
1. commit the user's uncommitted edits ("local changes" commit) — nothing in the work
   tree is ever overwritten;
2. run the SyncML session, keeping everything that came in as blobs only;
3. at the very end, one ``finish_sync`` moves the peer's state ref (the commit point),
   then the branch, then the work tree.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gitsync.app.common import Counts, SyncReport, Transport, Wire, make_id, our_devinf, parse_or_none
from gitsync.codec import XML_TYPE, decode, encode
from gitsync.errors import SafetyStop
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.client import ClientConfig, ClientSession
from gitsync.protocol.constants import St
from gitsync.protocol.events import (
    Acknowledged,
    ChangesReceived,
    Event,
    InChange,
    ItemResult,
    NonceReceived,
    OutChange,
    PeerDevInf,
    SyncModeDecided,
)
from gitsync.protocol.messages import DevInf, Message
from gitsync.store.git import GitStore
from gitsync.sync.state import devinf_from_json, devinf_to_json, dump_kv, dump_rows, parse_kv, parse_rows

__all__ = ["ClientOptions", "sync_client"]

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """One client sync, as the CLI (or a test) asks for it."""

    url: str
    device_id: str
    name: str
    mode: SyncMode = SyncMode.TWO_WAY
    remote_uri: str | None = None
    local_uri: str = "notes"
    username: str | None = None
    password: str | None = None
    auth_type: str = "basic"
    filename_sync: bool = True
    encoding: str = XML_TYPE
    ver_dtd: str = "1.2"
    max_msg_size: int = 2_000_000
    delete_guard: float | None = 0.5  # stop when a sync would delete more than this share
    force_delete: bool = False


@dataclass(slots=True)
class _Effect:
    """What a change does to the synced tree once the peer has it."""

    writes: dict[str, str]
    deletes: list[str]
    kind: ChangeKind


def sync_client(
    store: GitStore,
    opts: ClientOptions,
    transport: Transport,
    *,
    now: Callable[[], float] = time.time,
    progress: Progress | None = None,
) -> SyncReport:
    """Run one sync with the server at ``opts.url``; return what it did."""
    with store.lock(wait=5.0):
        store.check_safe_state()
        return _ClientRun(store, opts, transport, now, progress).run()


class _ClientRun:
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
        self.report = SyncReport(peer=opts.name)
        self.writes: dict[str, str] = {}  # incoming: path → blob
        self.deletes: set[str] = set()
        self.synced_writes: dict[str, str] = {}
        self.synced_deletes: set[str] = set()
        self.effects: dict[str, _Effect] = {}
        self.received: set[str] = set()  # LUIDs the server sent this session
        self.nonce: str | None = None
        self.sent = 0
        self.got = 0

    # ------------------------------------------------------------------ main
    def run(self) -> SyncReport:
        store, opts = self.store, self.opts
        self.head = store.commit_worktree(
            f"gitsync: local changes\n\nCommitted by gitsync-notes before syncing with {opts.name}.\n"
        )
        self.head_tree = store.tree_of(self.head) if self.head else None
        self.notes = store.list_notes(self.head_tree)  # path → blob, as the session goes on
        snap = store.state_load(opts.name)
        self.snap = snap
        st = parse_kv(snap.files.get("state")) if snap else {}
        self.st = st
        rows = parse_rows(snap.files.get("map"), 3) if snap else []
        self.luid_path = {luid: path for luid, _guid, path in rows}
        self.guid_luid = {guid: luid for luid, guid, _path in rows if guid != "-"}
        self.luid_guid = {luid: guid for luid, guid, _path in rows if guid != "-"}
        self.peer_devinf: DevInf | None = devinf_from_json(snap.files.get("devinf")) if snap else None
        self.synced_tree = snap.synced_tree if snap else None

        mode = opts.mode
        last = st.get("local_anchor")
        if snap is None or st.get("url") != opts.url:
            last = None
        if last is None and mode is SyncMode.TWO_WAY:
            mode = SyncMode.SLOW
        self.report.mode = mode.name.lower().replace("_", "-")
        self.next_anchor = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.now()))
        if self.next_anchor == last:
            self.next_anchor += "-1"
        session_id = str(int(st.get("session_id", "0") or 0) + 1)
        self.remote_uri = opts.remote_uri or st.get("remote_uri") or "notes"
        config = ClientConfig(
            url=opts.url,
            device_id=opts.device_id,
            devinf=our_devinf(opts.device_id, server=False),
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
            nonce=st.get("nonce"),
            peer_devinf=self.peer_devinf,
            max_msg_size=opts.max_msg_size,
        )
        session = ClientSession(config)
        self.session = session
        session.use_wbxml_devinf(opts.encoding != XML_TYPE)
        msg: Message | None = session.start()
        while msg is not None:
            body = encode(msg, opts.encoding)
            logger.debug("sending message %d:\n%r", msg.header.msg_id, body[:4000])
            reply_body, media = self.transport.exchange(session.resp_uri or opts.url, body, opts.encoding)
            logger.debug("received:\n%r", reply_body[:4000])
            reply, _ = decode(reply_body, media)
            for event in session.receive(reply):
                self._on(event)
            msg = session.next_message()
        return self._finish(session_id)

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
        elif isinstance(ev, ChangesReceived):
            self.session.provide_results([self._apply(ch) for ch in ev.changes])
            if ev.final and self.mode is SyncMode.REFRESH_FROM_SERVER:
                self._refresh_deletes()

    def _tick(self, what: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(what, done, total)

    # ------------------------------------------------------------------ outgoing
    def _send_changes(self, mode: SyncMode) -> None:
        self.mode = mode
        self.report.mode = mode.name.lower().replace("_", "-")
        session = self.session
        self.wire = Wire.negotiate(
            self.peer_devinf, session.remote_uri, session.profile, filename_sync=self.opts.filename_sync
        )
        out: list[OutChange] = []
        if not mode.client_sends:
            session.provide_changes(out)
            return
        path_luid = {path: luid for luid, path in self.luid_path.items()}
        if mode.sends_all:
            for path, blob in sorted(self.notes.items()):
                luid = path_luid.get(path) or make_id(path, blob)
                self.luid_path[luid] = path
                out.append(
                    self._out(ChangeKind.ADD, luid, path, blob, _Effect({path: blob}, [], ChangeKind.ADD))
                )
        else:
            changes = self.store.diff(self.synced_tree, self.head_tree)
            deletes = sum(1 for c in changes if c.kind is ChangeKind.DELETE)
            self._guard(deletes, len(self.store.list_notes(self.synced_tree)), "on the server")
            for tc in changes:
                if tc.kind is ChangeKind.ADD:
                    assert tc.new_path and tc.new_blob
                    luid = make_id(tc.new_path, tc.new_blob)
                    self.luid_path[luid] = tc.new_path
                    eff = _Effect({tc.new_path: tc.new_blob}, [], ChangeKind.ADD)
                    out.append(self._out(ChangeKind.ADD, luid, tc.new_path, tc.new_blob, eff))
                elif tc.kind is ChangeKind.DELETE:
                    assert tc.old_path
                    luid_or_none = path_luid.get(tc.old_path)
                    if luid_or_none is None:
                        self.synced_deletes.add(tc.old_path)
                        continue
                    eff = _Effect({}, [tc.old_path], ChangeKind.DELETE)
                    self.effects[luid_or_none] = eff
                    out.append(OutChange(kind=ChangeKind.DELETE, key=luid_or_none))
                else:
                    assert tc.old_path and tc.new_path and tc.new_blob
                    luid_or_none = path_luid.get(tc.old_path)
                    eff = _Effect({tc.new_path: tc.new_blob}, [], ChangeKind.MODIFY)
                    if tc.old_path != tc.new_path:
                        eff.deletes.append(tc.old_path)
                    if luid_or_none is None:
                        luid = make_id(tc.new_path, tc.new_blob)
                        self.luid_path[luid] = tc.new_path
                        eff.kind = ChangeKind.ADD
                        out.append(self._out(ChangeKind.ADD, luid, tc.new_path, tc.new_blob, eff))
                        continue
                    self.luid_path[luid_or_none] = tc.new_path
                    renamed_only = tc.old_blob == tc.new_blob
                    if renamed_only and not self.wire.carries_name:
                        # the peer cannot see file names: nothing to tell it
                        self.synced_writes.update(eff.writes)
                        self.synced_deletes.update(eff.deletes)
                        continue
                    out.append(self._out(ChangeKind.MODIFY, luid_or_none, tc.new_path, tc.new_blob, eff))
        self.sent = len(out)
        self._tick("sending", 0, len(out))
        session.provide_changes(out)

    def _out(self, kind: ChangeKind, luid: str, path: str, blob: str, eff: _Effect) -> OutChange:
        self.effects[luid] = eff
        data = self.wire.render(path, self.store.read_blob(blob))
        return OutChange(
            kind=kind,
            key=luid,
            data=data,
            content_type=self.wire.fmt.content_type,
            version=self.wire.fmt.version,
        )

    def _guard(self, deletes: int, total: int, where: str) -> None:
        guard = self.opts.delete_guard
        if self.opts.force_delete or guard is None or total < 4:
            return
        if deletes > guard * total:
            raise SafetyStop(
                f"this sync would delete {deletes} of {total} notes {where}; "
                "nothing was changed. Re-run with --force-delete if that is what you want."
            )

    def _acknowledged(self, results: tuple[tuple[OutChange, int], ...]) -> None:
        remote = self.report.remote
        for change, code in results:
            eff = self.effects.pop(change.key, None)
            ok = code < 300 or code == St.ALREADY_EXISTS
            if code in (
                St.CONFLICT_MERGED,
                St.CONFLICT_CLIENT_WON,
                St.CONFLICT_SERVER_WON,
                St.CONFLICT_DUPLICATE,
                St.CONFLICT,
            ):
                self.report.conflicts += 1
                if code == St.CONFLICT_MERGED:
                    self.report.merged += 1
            if not ok:
                remote.err += 1
                logger.warning("the server refused %s of %s (status %d)", change.kind.value, change.key, code)
                continue
            if eff is not None:
                self.synced_writes.update(eff.writes)
                for path in eff.deletes:
                    if path not in eff.writes:
                        self.synced_deletes.add(path)
                        self.synced_writes.pop(path, None)
                if eff.kind is ChangeKind.DELETE:
                    self.luid_path.pop(change.key, None)
            _bump(remote, change.kind)

    # ------------------------------------------------------------------ incoming
    def _apply(self, ch: InChange) -> ItemResult:
        self.got += 1
        self._tick("receiving", self.got, 0)
        local = self.report.local
        try:
            if ch.kind is ChangeKind.DELETE:
                return self._apply_delete(ch)
            assert ch.data is not None
            note = parse_or_none(self.wire, ch.data, ch.content_type)
            if note is None:
                local.err += 1
                return ItemResult(code=St.UNSUPPORTED_TYPE)
            luid = ch.luid
            if ch.kind is ChangeKind.ADD and ch.guid in self.guid_luid:
                luid = self.guid_luid[ch.guid]  # re-sent Add of a note we already have
            path = self.luid_path.get(luid) if luid else None
            if path is None or path not in self.notes:
                return self._apply_add(ch, note.body, note)
            existing = self.store.read_blob(self.notes[path])
            body = self.wire.local_body(note.body, existing)
            target = path
            if self.wire.carries_name and note.name:
                wanted = self.wire.path_for(note, set(self.notes) - {path}, fallback=path)
                if note.name and wanted != path and wanted.lower() != path.lower():
                    target = wanted
            assert luid is not None
            self.received.add(luid)
            if target == path and Wire.same_text(existing, body):
                return ItemResult(code=St.OK, luid=luid)
            blob = self.store.write_blob(body)
            self._write(path, target, blob)
            self.luid_path[luid] = target
            _bump(local, ChangeKind.MODIFY)
            return ItemResult(code=St.OK, luid=luid)
        except Exception as exc:  # one bad item must not sink the session
            logger.warning("could not apply %s from the server: %s", ch.kind.value, exc)
            local.err += 1
            return ItemResult(code=St.COMMAND_FAILED)

    def _apply_add(self, ch: InChange, body: bytes, note: object) -> ItemResult:
        from gitsync.formats import NoteData

        assert isinstance(note, NoteData)
        body = self.wire.local_body(body, None)
        # the same note may already be here (a session that died after the server sent it)
        path = self.wire.path_for(note, set(), fallback=None)
        if path in self.notes and Wire.same_text(self.store.read_blob(self.notes[path]), body):
            luid = {p: lu for lu, p in self.luid_path.items()}.get(path) or make_id(path, self.notes[path])
        else:
            path = self.wire.path_for(note, set(self.notes))
            blob = self.store.write_blob(body)
            self._write(None, path, blob)
            luid = ch.luid or make_id(path, blob)
            _bump(self.report.local, ChangeKind.ADD)
        self.luid_path[luid] = path
        if ch.guid:
            self.guid_luid[ch.guid] = luid
            self.luid_guid[luid] = ch.guid
        self.received.add(luid)
        return ItemResult(code=St.ITEM_ADDED, luid=luid)

    def _apply_delete(self, ch: InChange) -> ItemResult:
        luid = ch.luid
        path = self.luid_path.get(luid) if luid else None
        if path is None or path not in self.notes:
            return ItemResult(code=St.DELETE_NOT_FOUND)
        self._delete(path)
        assert luid is not None
        self.luid_path.pop(luid, None)
        _bump(self.report.local, ChangeKind.DELETE)
        return ItemResult(code=St.OK)

    def _write(self, old: str | None, new: str, blob: str) -> None:
        if old is not None and old != new:
            self._delete(old)
        self.notes[new] = blob
        self.writes[new] = blob
        self.deletes.discard(new)
        self.synced_writes[new] = blob
        self.synced_deletes.discard(new)

    def _delete(self, path: str) -> None:
        self.notes.pop(path, None)
        self.writes.pop(path, None)
        self.deletes.add(path)
        self.synced_writes.pop(path, None)
        self.synced_deletes.add(path)

    def _refresh_deletes(self) -> None:
        """Refresh from server: after the whole package arrived, drop what it did not send."""
        keep = {self.luid_path[lu] for lu in self.received if lu in self.luid_path}
        extra = [p for p in self.notes if p not in keep]
        self._guard(len(extra), len(self.notes), "here")
        for path in extra:
            self._delete(path)
            _bump(self.report.local, ChangeKind.DELETE)

    # ------------------------------------------------------------------ commit
    def _finish(self, session_id: str) -> SyncReport:
        store, opts, report = self.store, self.opts, self.report
        new_tree = store.build_tree(self.head_tree, self.writes, self.deletes)
        incremental = not self.mode.sends_all
        base = self.synced_tree if incremental else None
        synced = store.build_tree(base, self.synced_writes, self.synced_deletes - set(self.synced_writes))
        live = store.list_notes(synced)
        rows = [
            (luid, self.luid_guid.get(luid, "-"), path)
            for luid, path in sorted(self.luid_path.items())
            if path in live or path in self.notes
        ]
        server_next = self.session.server_anchor.next
        state = {
            "url": opts.url,
            "device_id": opts.device_id,
            "remote_uri": self.session.remote_uri,
            "local_anchor": self.next_anchor,
            "remote_anchor": server_next,
            "session_id": session_id,
            "content_type": self.wire.fmt.content_type if hasattr(self, "wire") else None,
            "nonce": self.nonce or self.st.get("nonce"),
            "mode": self.report.mode,
        }
        files = {"state": dump_kv(state), "map": dump_rows(rows)}
        if self.peer_devinf is not None:
            files["devinf"] = devinf_to_json(self.peer_devinf)
        subject = report.subject(opts.name)
        trailers = (
            f"Gitsync-Peer: {opts.name}\nGitsync-Url: {opts.url}\nGitsync-Device: {opts.device_id}\n"
            f"Gitsync-Mode: {report.mode}\nGitsync-Session: {session_id}\n"
            f"Gitsync-Anchor: {self.next_anchor}\nGitsync-Conflicts: {report.conflicts}\n"
        )
        message = f"{subject}\n\n{trailers}"
        new_commit = None
        if report.local.total() + report.remote.total() > 0 or new_tree != self.head_tree:
            parents = [self.head] if self.head else []
            new_commit = store.commit_tree(new_tree, parents, message)
        store.finish_sync(
            opts.name,
            expected_state=self.snap.commit if self.snap else None,
            files=files,
            synced_tree=synced,
            new_commit=new_commit,
            expected_head=self.head,
            message=message,
        )
        report.commit = new_commit
        return report


def _bump(counts: Counts, kind: ChangeKind) -> None:
    if kind is ChangeKind.ADD:
        counts.add += 1
    elif kind is ChangeKind.MODIFY:
        counts.mod += 1
    else:
        counts.dele += 1
