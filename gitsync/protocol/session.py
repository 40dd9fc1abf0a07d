"""Machinery shared by the client and server sessions: statuses, CmdIDs, message building.

The phases live in :mod:`gitsync.protocol.phases`, the size estimates in :mod:`gitsync.protocol.budget`.

Rules (after h11):
1. No I/O here or in the role modules: messages in, messages out. Randomness and time
   come in through the constructors.
2. A session changes state only inside ``receive``, ``provide_*``, ``accept_sync`` and
   ``next_message``; its phase moves only by :meth:`SessionBase._go` through the table in
   :mod:`gitsync.protocol.phases`, and any exception moves it to ``Phase.ERROR`` for good.
3. Every command we receive gets exactly one Status in our next message.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from gitsync.errors import LocalProtocolError, RemoteProtocolError
from gitsync.model import ChangeKind
from gitsync.protocol.budget import cut_chunk, estimate_size, room_for_sync, split_queue
from gitsync.protocol.constants import DEVINF_TYPE_WBXML, DEVINF_TYPE_XML, St, devinf_uri
from gitsync.protocol.events import Event, InChange, ItemRefused, ItemResult, OutChange, PeerDevInf
from gitsync.protocol.messages import (
    Add,
    Alert,
    Atomic,
    Chal,
    Command,
    Delete,
    DevInf,
    Get,
    Item,
    Map,
    Message,
    Meta,
    Put,
    Replace,
    Results,
    Sequence,
    Status,
    StatusDraft,
    Sync,
    SyncHdr,
    Unknown,
)
from gitsync.protocol.phases import Phase, Role, Trigger, check_receive, check_send, next_phase
from gitsync.protocol.profiles import DEFAULT, PeerProfile, profile_for

__all__ = [
    "DEFAULT_MAX_OBJ_SIZE",
    "Phase",
    "SessionBase",
    "StatusDraft",
    "command_name",
]

logger = logging.getLogger(__name__)

#: The largest object (one note's payload) we take unless configured otherwise: MaxObjSize in our
#: SyncHdr.  A large object is kept whole in memory once (then parsed and stored), so this bounds
#: what one item can cost us.
DEFAULT_MAX_OBJ_SIZE = 64 * 1024 * 1024
#: Payloads at least this big are kept between the messages that carry their chunks, so a large
#: object is rendered once per session, not once per chunk.
_KEEP_RENDERED = 64 * 1024


def command_name(cmd: Command) -> str:
    """The SyncML element name of a command (for Status ``Cmd``)."""
    if isinstance(cmd, Unknown):
        return cmd.name
    return type(cmd).__name__


def _refs(items: Iterable[Item]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    targets = tuple(i.target for i in items if i.target)
    sources = tuple(i.source for i in items if i.source)
    return targets, sources


@dataclass(slots=True)
class _Pending:
    """Received sync items waiting for the application's verdict."""

    changes: list[InChange] = field(default_factory=list)
    drafts: list[StatusDraft] = field(default_factory=list)
    final: bool = False


@dataclass(slots=True)
class _Partial:
    """The chunks of a large object received so far (OMA DS RepPro §6.9 "Large object handling")."""

    cmd: str
    source: str | None
    target: str | None
    content_type: str | None
    size: int | None
    data: bytearray
    cuts: list[int] = field(default_factory=list)  # where each chunk after the first starts


class SessionBase:
    """State and helpers common to both roles."""

    role: Role  # set by each role's class

    def __init__(self, *, ver_dtd: str, session_id: str, local_uri: str) -> None:
        self.phase = Phase.INIT
        self.ver_dtd = ver_dtd
        self.session_id = session_id
        self.local_uri = local_uri
        self.remote_uri = ""
        self.profile: PeerProfile = DEFAULT
        self.peer_max_msg_size: int | None = None
        self.encoding_devinf_type = DEVINF_TYPE_XML
        self._statuses: list[StatusDraft] = []
        self._queue: list[Command] = []  # non-status commands for the next message
        self._out_changes: list[OutChange] = []  # our Sync package, not yet sent
        self._out_total = 0
        self._out_started = False
        self._sent: dict[tuple[int, int], OutChange] = {}  # (msg id, cmd id) → change
        self._pending = _Pending()
        self._received_sync = False
        self._wbxml = False
        self._partial: _Partial | None = None  # a large object arriving in chunks (MoreData)
        self._obj_sent = 0  # bytes of _out_changes[0] already sent as chunks
        self._rendered: tuple[OutChange, bytes] | None = None  # the big payload being sent
        self._skipped: list[tuple[OutChange, int]] = []  # not sent (over the peer's MaxObjSize)
        self.oversized: dict[str, int] = {}  # key → payload size of each change not sent for that
        self._refused: tuple[str, str | None, str | None] | None = None  # large object refused (413)
        self._notices: list[Event] = []  # ItemRefused events for the role to return
        self.max_obj_size: int | None = DEFAULT_MAX_OBJ_SIZE  # ours: bigger incoming items get 413
        self.peer_max_obj_size: int | None = None  # the peer's (its SyncHdr Meta)
        self.peer_devinf: DevInf | None = None

    # ---------------------------------------------------------------- statuses
    def _status(self, msg_id: int, cmd: Command, code: int, **kw: object) -> None:
        items: tuple[Item, ...] = getattr(cmd, "items", ())
        targets, sources = _refs(items)
        if isinstance(cmd, Sync):
            targets = (cmd.target,) if cmd.target else ()
            sources = (cmd.source,) if cmd.source else ()
        if isinstance(cmd, Map):
            targets = (cmd.target,) if cmd.target else ()
            sources = (cmd.source,) if cmd.source else ()
        draft = StatusDraft(
            msg_ref=msg_id,
            cmd_ref=cmd.cmd_id,
            cmd=command_name(cmd),
            code=code,
            target_refs=targets,
            source_refs=sources,
        )
        for key, value in kw.items():
            setattr(draft, key, value)
        if not cmd.no_resp:
            self._statuses.append(draft)

    def _header_status(self, hdr: SyncHdr, code: int, chal: Chal | None = None) -> None:
        self._statuses.insert(
            0,
            StatusDraft(
                msg_ref=hdr.msg_id,
                cmd_ref=0,
                cmd="SyncHdr",
                code=code,
                target_refs=(hdr.target,) if hdr.target else (),
                source_refs=(hdr.source,) if hdr.source else (),
                chal=chal,
            ),
        )

    # ---------------------------------------------------------------- devinf
    def _devinf_meta(self) -> Meta:
        return Meta(type=self.encoding_devinf_type)

    def _put_devinf(self, devinf: DevInf) -> Put:
        uri = devinf_uri(self.ver_dtd)
        return Put(
            cmd_id=0,
            meta=self._devinf_meta(),
            items=(Item(source=uri, data=dataclasses.replace(devinf, ver_dtd=self.ver_dtd)),),
        )

    def _get_devinf(self) -> Get:
        return Get(cmd_id=0, meta=self._devinf_meta(), items=(Item(target=devinf_uri(self.ver_dtd)),))

    def _results_devinf(self, msg_id: int, get: Get, devinf: DevInf) -> Results:
        uri = devinf_uri(self.ver_dtd)
        target = get.items[0].target if get.items and get.items[0].target else uri
        return Results(
            cmd_id=0,
            msg_ref=msg_id,
            cmd_ref=get.cmd_id,
            meta=self._devinf_meta(),
            items=(Item(source=target, data=dataclasses.replace(devinf, ver_dtd=self.ver_dtd)),),
        )

    def use_wbxml_devinf(self, wbxml: bool) -> None:
        """Describe DevInf as +wbxml (the driver calls this when the session speaks WBXML)."""
        self.encoding_devinf_type = DEVINF_TYPE_WBXML if wbxml else DEVINF_TYPE_XML
        self._wbxml = wbxml

    def _devinf_command(self, msg_id: int, cmd: Command, own: DevInf, events: list[Event]) -> bool:
        """Answer a Put, Get or Results (only DevInf travels that way); False for other commands.

        The same for both roles: a Put or Results carrying DevInf records the peer's, a Put
        without one is 406, a Get of ``./devinf1x`` gets our DevInf as Results, any other Get 404.
        """
        if isinstance(cmd, Put | Results):
            devinf = self._devinf_in(cmd.items)
            ok = devinf is not None or isinstance(cmd, Results)
            self._status(msg_id, cmd, St.OK if ok else St.NOT_SUPPORTED)
            if devinf is not None:
                self.peer_devinf = devinf
                self.profile = profile_for(devinf)
                events.append(PeerDevInf(devinf=devinf))
            return True
        if isinstance(cmd, Get):
            uri = cmd.items[0].target if cmd.items else None
            if uri and "devinf" in uri:
                self._status(msg_id, cmd, St.OK)
                self._queue.append(self._results_devinf(msg_id, cmd, own))
            else:
                self._status(msg_id, cmd, St.NOT_FOUND)
            return True
        return False

    @staticmethod
    def _devinf_in(items: Iterable[Item]) -> DevInf | None:
        for item in items:
            if isinstance(item.data, DevInf):
                return item.data
        return None

    # ---------------------------------------------------------------- sync items
    def _collect_sync(self, msg_id: int, sync: Sync, *, server_side: bool, allowed: bool) -> None:
        """Turn a received Sync into pending InChanges (statuses wait for the app)."""
        self._received_sync = True
        self._status(msg_id, sync, St.OK if allowed else St.NOT_ALLOWED)
        for sub in _flatten(sync.commands):
            if not isinstance(sub, Add | Replace | Delete):
                self._status(msg_id, sub, St.NOT_SUPPORTED)
                continue
            if not allowed:
                self._status(msg_id, sub, St.NOT_ALLOWED)
                continue
            if not sub.items:
                self._status(msg_id, sub, St.INCOMPLETE)
                continue
            kind = {Add: ChangeKind.ADD, Replace: ChangeKind.MODIFY, Delete: ChangeKind.DELETE}[type(sub)]
            for index, item in enumerate(sub.items):
                ctype = _meta_type(item.meta, sub.meta)
                data = item.data if isinstance(item.data, bytes) else None
                if kind is not ChangeKind.DELETE and data is None:
                    self._status(msg_id, sub, St.INCOMPLETE)
                    continue
                if data is not None and kind is not ChangeKind.DELETE:
                    joined = self._join_chunks(msg_id, sub, item, data)
                    if joined is None:
                        continue  # a chunk of a large object: answered 213 (or 424)
                    data, ctype = joined[0], joined[1] or ctype
                if server_side:
                    luid, guid = item.source, item.target
                elif kind is ChangeKind.ADD:
                    luid, guid = None, item.source
                else:
                    luid, guid = item.target, item.source
                self._pending.changes.append(
                    InChange(
                        kind=kind,
                        luid=luid,
                        guid=guid,
                        data=data,
                        content_type=ctype,
                        ref=(msg_id, sub.cmd_id, index),
                    )
                )
                targets = (item.target,) if item.target else ()
                sources = (item.source,) if item.source else ()
                self._pending.drafts.append(
                    StatusDraft(
                        msg_ref=msg_id,
                        cmd_ref=sub.cmd_id,
                        cmd=command_name(sub),
                        code=St.OK,
                        target_refs=targets,
                        source_refs=sources,
                    )
                )

    def _join_chunks(
        self, msg_id: int, sub: Command, item: Item, data: bytes
    ) -> tuple[bytes, str | None] | None:
        """Collect the chunks of a large object; the whole object (and its type) once complete.

        Every chunk with MoreData is answered 213 at once; the last one goes to the application
        like any item, unless the object's length differs from its declared Size (424).  An object
        over our MaxObjSize (declared, or as its chunks add up) is answered 413 — that chunk and
        every later one of the same object — and never buffered further: one item refused, the
        session goes on.
        """
        meta: Meta | None = getattr(sub, "meta", None)
        name = command_name(sub)
        ident = (name, item.source, item.target)
        if self._refused is not None:
            if self._refused == ident:
                if not item.more_data:
                    self._refused = None
                self._item_status(msg_id, sub, item, St.TOO_LARGE)
                return None
            self._refused = None
        partial = self._partial
        if partial is not None and (partial.cmd, partial.source, partial.target) != ident:
            logger.warning("large object %s ended without its last chunk", partial.source or partial.target)
            self._partial = partial = None
        limit = self.max_obj_size
        declared = partial.size if partial is not None else _meta_size(item.meta, meta)
        held = len(partial.data) if partial is not None else 0
        if limit is not None and max(declared or 0, held + len(data)) > limit:
            self._partial = None
            self._refused = ident if item.more_data else None
            self._refuse_item(msg_id, sub, item, max(declared or 0, held + len(data)))
            return None
        if item.more_data:
            if partial is None:
                partial = _Partial(
                    cmd=name,
                    source=item.source,
                    target=item.target,
                    content_type=_meta_type(item.meta, meta),
                    size=declared,
                    data=bytearray(),
                )
                self._partial = partial
            if partial.data:
                partial.cuts.append(len(partial.data))
            partial.data += data
            self._item_status(msg_id, sub, item, St.CHUNK_ACCEPTED)
            return None
        if partial is None:
            return data, None
        self._partial = None
        partial.cuts.append(len(partial.data))
        partial.data += data
        whole = bytes(partial.data)
        del partial.data[:]  # one copy of the object at a time
        if partial.size is not None and not _size_matches(whole, partial.size) and not self._wbxml:
            # a chunk that ended between CR and LF had its CR turned into LF by the XML parser
            fixed = bytearray(whole)
            for cut in partial.cuts:
                if fixed[cut - 1 : cut + 1] == b"\n\n":
                    fixed[cut - 1] = 0x0D
            if _size_matches(fixed, partial.size):
                whole = bytes(fixed)
            del fixed
        if partial.size is not None and not _size_matches(whole, partial.size):
            logger.warning(
                "large object %s: %d bytes received, %d announced",
                item.source or item.target,
                len(whole),
                partial.size,
            )
            self._item_status(msg_id, sub, item, St.SIZE_MISMATCH)
            return None
        return whole, partial.content_type

    def _refuse_item(self, msg_id: int, sub: Command, item: Item, size: int) -> None:
        """413 for an item over our MaxObjSize; the application hears of it (ItemRefused)."""
        logger.warning(
            "%s %s refused: %d bytes, over our MaxObjSize of %d",
            command_name(sub),
            item.source or item.target,
            size,
            self.max_obj_size or 0,
        )
        self._item_status(msg_id, sub, item, St.TOO_LARGE)
        self._notices.append(
            ItemRefused(
                code=St.TOO_LARGE,
                cmd=command_name(sub),
                source=item.source,
                target=item.target,
                size=size,
                limit=self.max_obj_size,
            )
        )

    def _take_notices(self) -> list[Event]:
        """Events the item handling raised on the way (refused items): the roles pass them on."""
        notices, self._notices = self._notices, []
        return notices

    def _item_status(self, msg_id: int, sub: Command, item: Item, code: int) -> None:
        self._statuses.append(
            StatusDraft(
                msg_ref=msg_id,
                cmd_ref=sub.cmd_id,
                cmd=command_name(sub),
                code=code,
                target_refs=(item.target,) if item.target else (),
                source_refs=(item.source,) if item.source else (),
            )
        )

    def _settle(self, results: cabc.Sequence[ItemResult]) -> list[tuple[InChange, ItemResult]]:
        """Give each pending received change its status (in our next message), in order."""
        pending = self._pending
        if len(results) != len(pending.changes):
            raise LocalProtocolError(f"{len(results)} results for {len(pending.changes)} changes")
        settled = list(zip(pending.changes, results, strict=True))
        for draft, result in zip(pending.drafts, results, strict=True):
            draft.code = result.code
            self._statuses.append(draft)
        pending.changes.clear()
        pending.drafts.clear()
        return settled

    def _acknowledge(self, status: Status) -> tuple[OutChange, int] | None:
        change = self._sent.pop((status.msg_ref, status.cmd_ref), None)
        if change is None or status.code == St.CHUNK_ACCEPTED:
            return None
        if self._obj_sent and self._out_changes and self._out_changes[0] is change:
            # the peer refused a chunk: the rest of that object would be refused too
            self._done_with(self._out_changes.pop(0))
            self._obj_sent = 0
        return change, status.code

    # ---------------------------------------------------------------- outgoing package
    def _payload(self, change: OutChange) -> bytes | None:
        """``change.data``, read once for a big payload: a large object goes out over many
        messages, and a lazily rendered change would otherwise be rendered for every chunk."""
        kept = self._rendered
        if kept is not None and kept[0] is change:
            return kept[1]
        data = change.data
        if data is not None and len(data) >= _KEEP_RENDERED:
            self._rendered = (change, data)
        return data

    def _done_with(self, change: OutChange) -> None:
        if self._rendered is not None and self._rendered[0] is change:
            self._rendered = None

    def _too_big_for_peer(self, change: OutChange, size: int) -> bool:
        """Whether a payload of ``size`` bytes is over the peer's MaxObjSize: then it is not sent
        but acknowledged as 413 locally (the application reports it as skipped), and the session
        goes on."""
        limit = self.peer_max_obj_size
        if limit is None or size <= limit:
            return False
        logger.warning(
            "%s not sent: %d bytes, over the peer's MaxObjSize of %d", change.key, size, limit
        )
        self._skipped.append((change, St.TOO_LARGE))
        self.oversized[change.key] = size
        return True

    def _drop_oversized(self, changes: list[OutChange]) -> list[OutChange]:
        """The changes to send, without those whose size (known without rendering them:
        ``size_hint``) is already over the peer's MaxObjSize (so NumberOfChanges counts only
        what is sent)."""
        if self.peer_max_obj_size is None:
            return changes
        kept = []
        for change in changes:
            size = getattr(change, "size_hint", None)
            if size is None and type(change) is OutChange and change.data is not None:
                size = len(change.data)
            if size is None or not self._too_big_for_peer(change, size):
                kept.append(change)
        return kept

    def object_progress(self) -> tuple[str, int, int] | None:
        """``("sent"|"received", bytes so far, object size)`` while a large object is on its way
        (the size is 0 when the peer did not announce it), else ``None``."""
        if self._obj_sent and self._rendered is not None:
            return "sent", self._obj_sent, len(self._rendered[1])
        if self._partial is not None:
            return "received", len(self._partial.data), self._partial.size or 0
        return None

    def _take_skipped(self) -> list[tuple[OutChange, int]]:
        """Changes not sent because of the peer's MaxObjSize, as (change, 413) acknowledgements."""
        skipped, self._skipped = self._skipped, []
        return skipped

    def _out_command(self, change: OutChange, data: bytes | None = None) -> Command:
        if data is None:
            data = change.data
        meta = Meta(type=change.content_type) if change.content_type else None
        if self.role is Role.SERVER:
            source = change.key if change.kind is ChangeKind.ADD else None
            target = change.peer_key if change.kind is not ChangeKind.ADD else None
        else:
            source, target = change.key, None
        item = Item(source=source, target=target, data=data)
        if change.kind is ChangeKind.ADD:
            return Add(cmd_id=0, meta=meta, items=(item,))
        if change.kind is ChangeKind.MODIFY:
            return Replace(cmd_id=0, meta=meta, items=(item,))
        return Delete(cmd_id=0, meta=meta if self.profile.meta_in_delete else None, items=(item,))

    def _take_sync_chunk(self, budget: int | None) -> tuple[Sync, bool]:
        """Our next Sync command and whether the package is now complete.

        Changes go in while the estimated size fits ``budget``; a change too big for a message
        on its own travels as a large object, one chunk per message (MoreData), when the peer can
        take that; otherwise it goes alone and oversized.
        """
        wbxml = self._wbxml
        taken: list[tuple[OutChange, Command]] = []
        if budget is not None:
            wrapper = Sync(cmd_id=0, source=self.local_uri, target=self.remote_uri)
            budget = max(budget - estimate_size(wrapper, wbxml=wbxml), 1)
        used = 0
        while self._out_changes:
            change = self._out_changes[0]
            data = self._payload(change) if change.kind is not ChangeKind.DELETE else None
            if data is not None and not self._obj_sent and self._too_big_for_peer(change, len(data)):
                self._done_with(self._out_changes.pop(0))
                continue
            cmd = self._out_command(change, data)
            # the rest of a large object is chunked below, never measured whole again
            size = 0 if budget is not None and self._obj_sent else estimate_size(cmd, wbxml=wbxml)
            if budget is not None and (self._obj_sent or (size > budget and self._can_chunk(change, data))):
                if taken:
                    break  # a large object starts a message of its own
                assert data is not None
                cmd, last = self._object_chunk(data, cmd, budget)
                taken.append((change, cmd))
                if last:
                    self._done_with(self._out_changes.pop(0))
                break
            if budget is not None and taken and used + size > budget:
                break
            self._done_with(self._out_changes.pop(0))
            taken.append((change, cmd))
            used += size
        number = None
        if self.profile.number_of_changes and not self._out_started:
            number = self._out_total
        self._out_started = True
        sync = Sync(
            cmd_id=0,
            source=self.local_uri,
            target=self.remote_uri,
            number_of_changes=number,
            commands=tuple(cmd for _, cmd in taken),
        )
        self._chunk_changes = [change for change, _ in taken]
        return sync, not self._out_changes

    _chunk_changes: list[OutChange]

    def _can_chunk(self, change: OutChange, data: bytes | None) -> bool:
        """Large objects only toward peers whose profile and DevInf both say they take them."""
        devinf = self.peer_devinf
        return (
            data is not None
            and change.kind is not ChangeKind.DELETE
            and self.profile.multi_message
            and self.profile.large_objects
            and devinf is not None
            and devinf.support_large_objs
        )

    def _object_chunk(self, data: bytes, cmd: Command, budget: int) -> tuple[Command, bool]:
        """The next chunk of a large object and whether it is the last one."""
        assert isinstance(cmd, Add | Replace)
        start = self._obj_sent
        item = cmd.items[0]
        bare = dataclasses.replace(cmd, items=(dataclasses.replace(item, data=b""),))
        room = max(budget - estimate_size(bare, wbxml=self._wbxml), 256)
        end = cut_chunk(data, start, room, wbxml=self._wbxml)
        more = end < len(data)
        meta = cmd.meta or Meta()
        if start == 0:
            meta = dataclasses.replace(meta, size=len(data))
        chunk = dataclasses.replace(
            cmd, meta=meta, items=(dataclasses.replace(item, data=data[start:end], more_data=more),)
        )
        self._obj_sent = end if more else 0
        return chunk, not more

    def _budget(self) -> int | None:
        """Bytes left for our Sync in the next message, or ``None`` for no limit."""
        if not self.profile.multi_message or not self.peer_max_msg_size:
            return None
        return room_for_sync(self.peer_max_msg_size, [*self._statuses, *self._queue], wbxml=self._wbxml)

    def _fit_queue(self) -> tuple[list[Command], bool]:
        """Our queued commands (DevInf, Alert...) for the next message, and whether some wait.

        All of them, unless the peer's MaxMsgSize cannot take them with the statuses: then as many
        as fit (at least one) and the rest go in the next message, which the peer asks for with
        Alert 222 (a package over several messages, like a Sync package).
        """
        queue, self._queue = self._queue, []
        if not queue or not self.profile.multi_message or not self.peer_max_msg_size:
            return queue, False
        now, self._queue = split_queue(queue, self._statuses, self.peer_max_msg_size, wbxml=self._wbxml)
        return now, bool(self._queue)

    # ---------------------------------------------------------------- building
    def _build(self, header: SyncHdr, commands: list[Command], final: bool) -> tuple[Command, ...]:
        """Number statuses and commands; remember which CmdID carries which change."""
        out: list[Command] = []
        next_id = 1
        for draft in self._statuses:
            out.append(draft.build(next_id))
            next_id += 1
        self._statuses = []
        for cmd in commands:
            if isinstance(cmd, Sync):
                subs: list[Command] = []
                sync_id = next_id
                next_id += 1
                changes = getattr(self, "_chunk_changes", [])
                for index, sub in enumerate(cmd.commands):
                    subs.append(dataclasses.replace(sub, cmd_id=next_id))
                    if index < len(changes):
                        self._sent[(header.msg_id, next_id)] = changes[index]
                    next_id += 1
                out.append(dataclasses.replace(cmd, cmd_id=sync_id, commands=tuple(subs)))
                self._chunk_changes = []
            else:
                out.append(dataclasses.replace(cmd, cmd_id=next_id))
                next_id += 1
        return tuple(out)

    def receive(self, msg: Message) -> list[Event]:
        """Digest one message from the peer; return what the application must know or answer.

        Any exception leaves the session in ``Phase.ERROR`` for good (rule 2).
        """
        try:
            check_receive(self.role, self.phase)
            return self._receive(msg)
        except Exception:
            self._go(Trigger.FAIL)
            raise

    def _receive(self, msg: Message) -> list[Event]:
        raise NotImplementedError

    def _fail(self, message: str, status: int = St.COMMAND_FAILED) -> RemoteProtocolError:
        self._go(Trigger.FAIL)
        return RemoteProtocolError(message, status_hint=status)

    def _go(self, trigger: Trigger) -> None:
        """Move to the phase the transitions table gives (the only place a phase is set)."""
        self.phase = next_phase(self.role, self.phase, trigger)

    def _check(self, trigger: Trigger) -> None:
        """Refuse, before anything changes, an application call the current phase does not allow."""
        next_phase(self.role, self.phase, trigger)

    def _check_send(self) -> None:
        check_send(self.role, self.phase)

    @property
    def done(self) -> bool:
        """Whether the session ended successfully."""
        return self.phase is Phase.DONE


def _meta_type(item_meta: Meta | None, cmd_meta: Meta | None) -> str | None:
    """The content type: the Item's Meta overrides the command's."""
    return (item_meta.type if item_meta else None) or (cmd_meta.type if cmd_meta else None)


def _meta_size(item_meta: Meta | None, cmd_meta: Meta | None) -> int | None:
    """The declared object size (first chunk of a large object)."""
    if item_meta is not None and item_meta.size is not None:
        return item_meta.size
    return cmd_meta.size if cmd_meta is not None else None


def _size_matches(data: bytes | bytearray, size: int) -> bool:
    """Whether ``data`` is ``size`` bytes long, also when an XML parser turned its CRLFs into LF."""
    return size in (len(data), len(data) + data.count(b"\n") - data.count(b"\r\n"))


def _flatten(commands: Iterable[Command]) -> list[Command]:
    out: list[Command] = []
    for cmd in commands:
        if isinstance(cmd, Atomic | Sequence):
            out.extend(_flatten(cmd.commands))
        else:
            out.append(cmd)
    return out


def alert_next_message(target: str, source: str) -> Alert:
    """Alert 222: "send me the next message of your package"."""
    return Alert(cmd_id=0, code=222, items=(Item(target=target, source=source),))
