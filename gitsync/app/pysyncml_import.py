"""Taking over a pysyncml ``sync-notes`` folder (notes plus its ``.sync`` state) without duplicates.

sync-notes keeps its state in SQLite files under ``.sync/``: ``syncml.db`` (our device id in the
local adapter row, the server's URL in the remote one, the anchors in ``pysyncml_binding``,
unsent changes in ``pysyncml_change``) and ``notes.db`` (``noteitem``: one row per note with the
item id the server knows it by, its file name and the SHA-256 of its content at the last sync).

The takeover writes a first sync state for the peer as if gitsync-notes had made that last sync:
same device id, same anchors, the item ids as LUIDs, and a synced tree in which every note whose
content still has the recorded SHA-256 is unchanged.  The first sync is then an ordinary two-way
sync: only the edits made since sync-notes last ran travel, and the server matches every item by
the id it already has, so nothing is duplicated.  A note edited since then is sent as a Replace;
its last-synced text is unknown, so the synced tree holds a placeholder for it.  ``.sync/`` itself
is never a note: it is excluded in ``.git/info/exclude``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitsync.protocol.messages import CTInfo, DevInf
from gitsync.sync.report import commit_message
from gitsync.sync.state import IdRow, PeerState, Role

if TYPE_CHECKING:
    from gitsync.store.git import GitStore

__all__ = ["PysyncmlState", "advertise_spec", "exclude_state_folder", "find", "restrict_devinf", "take_over"]

logger = logging.getLogger(__name__)

STATE_DIR = ".sync"
EXCLUDE_LINE = "/.sync/"
ITEM_DELETED = 3  # pysyncml constants.ITEM_DELETED


@dataclass(frozen=True, slots=True)
class PysyncmlState:
    """What a sync-notes client folder remembers about its server."""

    device_id: str
    url: str
    remote_uri: str = "notes"
    local_anchor: str | None = None  # binding.sourceAnchor: what the client sends as Last
    remote_anchor: str | None = None  # binding.targetAnchor: the server's anchor
    session_id: int = 0
    items: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # luid -> (name, sha256)
    pending: frozenset[str] = frozenset()  # item ids with changes sync-notes registered but never sent
    content_types: tuple[tuple[str, str], ...] = ()  # (type, version) sync-notes advertised, preferred first


def exclude_state_folder(directory: str | Path) -> None:
    """Make Git ignore ``.sync/`` in an existing repository (new ones are set up by the store)."""
    root = Path(directory)
    if not (root / STATE_DIR).is_dir() or not (root / ".git").is_dir():
        return
    exclude = root / ".git" / "info" / "exclude"
    try:
        text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
        if EXCLUDE_LINE not in text.split("\n"):
            exclude.parent.mkdir(exist_ok=True)
            with open(exclude, "a", encoding="utf-8") as fh:
                fh.write(("" if text.endswith("\n") or not text else "\n") + EXCLUDE_LINE + "\n")
    except OSError as exc:
        logger.warning("cannot exclude %s from Git in %s: %s", STATE_DIR, exclude, exc)


def _query(path: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    import sqlite3  # only for folders sync-notes used: ~15 ms every sync would pay otherwise

    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return list(db.execute(sql, args))


def find(root: Path) -> PysyncmlState | None:
    """The sync-notes client state in ``root/.sync``, or None (none, a server's, or unreadable)."""
    folder = Path(root) / STATE_DIR
    syncml, notes = folder / "syncml.db", folder / "notes.db"
    if not (syncml.is_file() and notes.is_file()):
        return None
    import sqlite3

    try:
        local = _query(syncml, 'SELECT "devID" FROM pysyncml_adapter WHERE "isLocal" = 1 ORDER BY id LIMIT 1')
        remote = _query(
            syncml,
            'SELECT id, url, "lastSessionID" FROM pysyncml_adapter '
            'WHERE "isLocal" = 0 AND url IS NOT NULL ORDER BY id LIMIT 1',
        )
        if not local or not remote:
            return None  # a sync-notes *server* folder, or one that never synced
        adapter_id, url, session = remote[0]
        bindings = _query(
            syncml,
            'SELECT s.id, b.uri, b."sourceAnchor", b."targetAnchor" FROM pysyncml_store s '
            "JOIN pysyncml_binding b ON b.store_id = s.id WHERE s.adapter_id = ? ORDER BY b.id LIMIT 1",
            (adapter_id,),
        )
        store_id, uri, source, target = bindings[0] if bindings else (None, None, None, None)
        pending = {
            str(item)
            for item, _state in _query(
                syncml, 'SELECT "itemID", state FROM pysyncml_change WHERE store_id = ?', (store_id,)
            )
        }
        types: list[tuple[str, str]] = []
        for ctype, versions, _preferred in _query(
            syncml,
            'SELECT ctype, versions, preferred FROM pysyncml_contenttypeinfo WHERE store_id = ? '
            "ORDER BY preferred DESC, id",
            (store_id,),
        ):
            for version in json.loads(str(versions or "[]")) or [""]:
                types.append((str(ctype), str(version)))
        items = {
            str(luid): (str(name), str(sha) if sha else None)
            for luid, name, sha in _query(notes, "SELECT id, name, sha256 FROM noteitem")
            if luid and name
        }
    except (sqlite3.Error, ValueError) as exc:
        logger.warning("cannot read the sync-notes state in %s: %s", folder, exc)
        return None
    return PysyncmlState(
        device_id=str(local[0][0]),
        url=str(url),
        remote_uri=str(uri or "notes"),
        local_anchor=str(source) if source else None,
        remote_anchor=str(target) if target else None,
        session_id=int(str(session)) if session is not None and str(session).isdigit() else 0,
        items=items,
        pending=frozenset(pending),
        content_types=tuple(types),
    )


def advertise_spec(types: tuple[tuple[str, str], ...]) -> str | None:
    """The ``advertise`` state value for ``types`` (None: advertise everything we support)."""
    return ",".join(f"{t}:{v}" for t, v in types) or None


def restrict_devinf(devinf: DevInf, spec: str | None) -> DevInf:
    """Our DevInf advertising exactly the content types of ``spec`` (in that order), if we support them.

    pysyncml drops a device's anchors (forcing a slow sync, which its server cannot do for notes
    it already has) when the content types in the device's DevInf change.  After a takeover we
    present the types sync-notes presented, so the first sync can stay two-way.
    """
    if not spec or not devinf.datastores:
        return devinf
    ours = {(c.ct_type, c.ver_ct or "") for ds in devinf.datastores for c in (*ds.rx_pref, *ds.rx)}
    wanted = []
    for part in spec.split(","):
        ctype, _, version = part.rpartition(":")
        if (ctype, version) in ours:
            wanted.append(CTInfo(ct_type=ctype, ver_ct=version or None))
    if not wanted:
        return devinf
    pref, rest = tuple(wanted[:1]), tuple(wanted[1:])
    stores = tuple(
        dataclasses.replace(ds, rx_pref=pref, rx=rest, tx_pref=pref, tx=rest) for ds in devinf.datastores
    )
    return dataclasses.replace(devinf, datastores=stores)


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def take_over(store: GitStore, state: PysyncmlState, peer: str, url: str) -> str:
    """Save ``state`` as the first sync state of ``peer``; return a sentence for the user.

    Only when ``url`` is the server sync-notes used; otherwise only its device id is reused (by
    the caller) and the first sync is a slow one.
    """
    if not _same_server(url, state.url):
        return (
            f"gitsync-notes: {STATE_DIR} belongs to a sync with {state.url}, not {url}: "
            "only its device id is reused"
        )
    with store.lock(wait=5.0):
        head = store.head()
        notes = store.list_notes(store.scan_worktree_tree())
        synced: dict[str, str] = {}
        rows = []
        changed = 0
        for luid, (name, sha) in sorted(state.items.items()):
            blob = notes.get(name)
            current = store.read_blob(blob) if blob else None
            same = (
                current is not None
                and sha is not None
                and hashlib.sha256(current).hexdigest() == sha
                and luid not in state.pending
            )
            if same:
                assert blob is not None
                synced[name] = blob
            else:
                # last-synced text unknown: a placeholder unique to the item, so the diff reports a
                # change (or a delete) and never pairs two placeholders as a rename
                changed += 1
                synced[name] = store.write_blob(
                    f"(last synced by sync-notes as item {luid}; text not known)\n".encode()
                )
            rows.append(IdRow(luid, None, name))
        tree = store.build_tree(None, synced, ())
        saved = PeerState(
            role=Role.CLIENT,
            url=url,
            device_id=state.device_id,
            remote_uri=state.remote_uri,
            our_anchor=state.local_anchor,
            peer_anchor=state.remote_anchor,
            session_id=str(state.session_id),
            mode="imported",
            advertise=advertise_spec(state.content_types),
            ids=tuple(rows),
        )
        message = commit_message(
            f"gitsync: took over the sync-notes state of {STATE_DIR}",
            peer=peer,
            url=url,
            device=state.device_id,
            mode="imported",
            anchor=state.local_anchor or "-",
        )
        store.finish_sync(
            peer,
            expected_state=None,
            files=saved.dump(),
            synced_tree=tree,
            new_commit=None,
            expected_head=head,
            message=message,
        )
    new = len([p for p in notes if p not in synced])
    return (
        f"gitsync-notes: took over sync-notes' state ({len(rows)} known notes, {changed} changed or "
        f"deleted and {new} new since it last synced, device id {state.device_id})"
    )
