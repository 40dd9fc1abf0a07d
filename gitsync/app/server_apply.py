"""A server session's incoming side: the device's changes applied to our notes, conflicts settled
by policy, and the id map of the device's notes (our GUID, its LUID, the path).

:class:`IncomingChanges` is the part of :class:`~gitsync.app.server_run.ServerRun` that applies
what the device sends; the conflict outcomes themselves are decided in
:mod:`gitsync.sync.conflict`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gitsync.app.carryover import Suspended
from gitsync.app.edits import TreeEdits
from gitsync.app.outgoing import LazyOutChange
from gitsync.app.paths import PathSet
from gitsync.app.server_options import ServerOptions
from gitsync.errors import SafetyStop
from gitsync.formats import NoteData
from gitsync.formats.lineendings import adapt, detect, to_lf
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.constants import St
from gitsync.protocol.events import InChange, ItemResult, OutChange
from gitsync.protocol.server import ServerSession
from gitsync.store.git import SyncStateSnapshot, TreeChange
from gitsync.sync.conflict import Outcome, Policy, resolve_delete_vs_modify, resolve_modify
from gitsync.sync.ids import make_id
from gitsync.sync.ledger import Effect
from gitsync.sync.payload import Wire, parse_or_why
from gitsync.sync.report import bump
from gitsync.sync.state import PeerState

__all__ = ["IncomingChanges", "Item"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Item:
    """One note as this device knows it: our GUID, its LUID (once mapped), the path."""

    guid: str
    luid: str | None
    path: str


class IncomingChanges(TreeEdits):
    """Applies the device's changes (see :class:`~gitsync.app.server_run.ServerRun`, which sets
    every attribute declared here)."""

    opts: ServerOptions
    session: ServerSession
    device_id: str
    name: str
    mode: SyncMode
    snap: SyncStateSnapshot | None
    items: dict[str, Item]
    by_path: dict[str, Item]
    by_luid: dict[str, Item]
    local: dict[str, TreeChange]
    touched_paths: PathSet
    matched: set[str]
    unsent: set[str]
    extra_out: list[OutChange]
    held_before: set[str]
    suspend: Suspended | None
    labels: tuple[str, str, str]  # of conflict markers: sync.conflict.conflict_labels

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

    def _unreadable(self, ch: InChange, why: str, item: Item | None) -> ItemResult:
        """An item we cannot read: its payload is kept as a note of its own (an error of this
        session), and the client is told it arrived, so it does not send it again.  A new item
        is bound to that note; a Replace of a note we have leaves that note as it was."""
        assert ch.data is not None
        path = self._keep_unreadable(ch.luid, ch.data, ch.content_type, why, self._taken)
        self.wire.saw(path)
        if item is not None and item.path in self.notes:
            self.matched.add(item.guid)
            return ItemResult(code=St.OK)
        new = Item(guid=make_id(path, self.notes[path]), luid=None, path=path)
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
        self._marked(path, body, None)
        self.wire.named(path, note)
        self.wire.saw(path)
        self.wire.remember(path, note, ch.content_type)
        item = Item(guid=make_id(path, blob), luid=ch.luid, path=path)
        self._register(item)
        self.matched.add(item.guid)
        bump(self.report.local, ChangeKind.ADD)
        return ItemResult(code=St.ITEM_ADDED)

    def _marked(self, path: str, body: bytes, before: bytes | None) -> None:
        """Say it in the log when the device sends a note with conflict markers it did not have."""
        if self.report.note_arrived(path, body, before):
            logger.warning("%s arrived from %s with conflict markers in it: a person must resolve them",
                           path, self.device_id)

    def _apply_replace(self, item: Item, note: NoteData, content_type: str | None) -> ItemResult:
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
        self._marked(target, body, existing)
        self._move(item, target)
        self.wire.saw(target)
        self.wire.remember(target, note, content_type)
        if renamed_here and wanted != target:
            self._queue_replace(item, target, blob)
        bump(self.report.local, ChangeKind.MODIFY)
        return ItemResult(code=St.OK)

    def _follow_local_rename(self, item: Item) -> None:
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

    def _edit_vs_delete(self, item: Item, note: NoteData, content_type: str | None) -> ItemResult:
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
        self.report.settled_here(outcome.code, unresolved=outcome.unresolved, path=path)
        if outcome.code == St.CONFLICT and self.suspend is not None:
            self.suspend.held.add(path)
        if outcome.unresolved:
            logger.warning(
                "conflict on %s with %s left unresolved (status %d)", path, self.device_id, outcome.code
            )

    def _merge3(self, base: bytes | None, ours: bytes, theirs: bytes) -> tuple[bytes, bool]:
        """Git's three-way merge, labelled for the user; line endings alone never conflict.

        When the versions do not share one line-ending convention (a user converted the
        file), they are merged as LF and the result takes our file's convention.
        """
        labels = self.labels
        style = detect(ours)
        if detect(theirs) == style and (base is None or detect(base) == style):
            return self.store.merge3(base, ours, theirs, labels=labels)
        merged, clean = self.store.merge3(
            to_lf(base) if base is not None else None, to_lf(ours), to_lf(theirs), labels=labels
        )
        return adapt(merged, style), clean

    def _conflict(
        self,
        item: Item,
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
            copy_item = Item(guid=make_id(copy_path, blob), luid=None, path=copy_path)
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

    def _item_for_path(self, path: str) -> Item:
        item = self.by_path.get(path)
        if item is None:
            item = Item(guid=make_id(path, self.notes[path]), luid=None, path=path)
            self._register(item)
        return item

    def _register(self, item: Item) -> None:
        self.items[item.guid] = item
        self.by_path[item.path] = item
        if item.luid:
            self.by_luid[item.luid] = item

    def _bind(self, item: Item, luid: str | None) -> None:
        if luid:
            self._unbind(item)
            old = self.by_luid.pop(luid, None)
            if old is not None and old is not item:
                old.luid = None
            item.luid = luid
            self.by_luid[luid] = item
        self.matched.add(item.guid)

    def _unbind(self, item: Item) -> None:
        if item.luid:
            self.by_luid.pop(item.luid, None)
            item.luid = None

    def _move(self, item: Item, target: str) -> None:
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

    # ------------------------------------------------------------------ queued for the device
    def _out(self, kind: ChangeKind, item: Item, path: str, blob: str, eff: Effect) -> OutChange:
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

    def _queue_add(self, item: Item, path: str) -> None:
        blob = self.writes.get(path) or self.notes[path]
        self.extra_out.append(
            self._out(ChangeKind.ADD, item, path, blob, Effect({path: blob}, (), ChangeKind.ADD))
        )

    def _queue_replace(self, item: Item, path: str, blob: str) -> None:
        kind = ChangeKind.MODIFY if item.luid else ChangeKind.ADD
        self.extra_out.append(self._out(kind, item, path, blob, Effect({path: blob}, (), kind)))


def items_of(state: PeerState) -> dict[str, Item]:
    """The notes this device knows, by our GUID (from its saved id map)."""
    return {row.ours: Item(guid=row.ours, luid=row.theirs, path=row.path) for row in state.ids}


def _conflict_name(path: str) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem} (conflict).{ext}" if dot and "/" not in ext else f"{path} (conflict)"



