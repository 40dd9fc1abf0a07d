"""``sync --describe`` and ``sync --local`` as data: read the repository, write nothing, contact no one.

The CLI parses the options, calls these functions and words the answer; the store and the peer
state blobs are read here only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitsync.app.options import peer_name
from gitsync.errors import ConfigError
from gitsync.protocol.messages import DataStore, DevInf
from gitsync.store import quickscan
from gitsync.store.git import GitStore
from gitsync.sync.state import PeerState

__all__ = [
    "Description",
    "LocalChanges",
    "PeerDescription",
    "PendingChange",
    "answer_local",
    "describe",
    "local_changes",
    "open_folder",
    "resolve_peer",
]

_CHANGE_WORDS = {"add": "added", "modify": "modified", "delete": "deleted"}


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingChange:
    """One note changed since the last sync: ``kind`` is added/modified/deleted/renamed/renamed+modified."""

    kind: str
    path: str
    old_path: str | None = None  # for renames


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalChanges:
    """What changed in the folder since the last sync with ``peer``, and whether it ever synced."""

    peer: str | None
    synced: bool
    changes: tuple[PendingChange, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerDescription:
    """One peer as its state records it (``synced`` false: never synced, most fields unset)."""

    name: str
    synced: bool
    url: str | None = None
    datastore: str | None = None  # the datastore we would use (never synced) or the one it named
    devinf: DevInf | None = None
    device_id: str | None = None
    remote_uri: str | None = None
    content_type: str | None = None
    user: str | None = None
    anchor: str | None = None
    mode: str | None = None
    notes_in_common: int = 0
    mapped_ids: int = 0
    pending: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Description:
    """What would be synced and with whom: this folder, our device, each peer and its last sync."""

    root: Path
    branch: str
    notes: int
    remote: str | None
    devices: int  # devices served (peers named ``device-...``)
    filename_sync: bool
    policy: str
    device_id: str | None
    name: str | None
    user: str | None
    datastores: tuple[DataStore, ...]  # ours
    peers: tuple[PeerDescription, ...]


def open_folder(directory: Path) -> GitStore | None:
    """The notes repository at ``directory``, or ``None`` when it is no Git repository yet."""
    try:
        return GitStore.open(directory, create=False, top_level=True)
    except ConfigError as exc:
        if "not a Git repository" not in str(exc):
            raise
        return None


def resolve_peer(store: GitStore, remote: str | None, peer: str | None) -> tuple[str | None, str | None]:
    """The server URL and peer name the options or the remembered config give."""
    remote = remote or store.config_get("gitsync.remote")
    peer = peer or store.config_get("gitsync.peer") or (peer_name(remote) if remote else None)
    return remote, peer


def local_changes(store: GitStore, peer: str | None) -> LocalChanges:
    """The notes changed since the last sync with ``peer`` (every note when it never synced)."""
    snap = store.state_load(peer) if peer else None
    base = snap.synced_tree if snap else None
    out = []
    for tc in store.diff(base, store.scan_worktree_tree()):
        if tc.old_path and tc.new_path and tc.old_path != tc.new_path:
            kind = "renamed" if tc.old_blob == tc.new_blob else "renamed+modified"
            out.append(PendingChange(kind=kind, path=tc.new_path, old_path=tc.old_path))
        else:
            path = tc.new_path or tc.old_path or ""
            out.append(PendingChange(kind=_CHANGE_WORDS[tc.kind.value], path=path))
    return LocalChanges(peer=peer, synced=snap is not None, changes=tuple(out))


def answer_local(
    store: GitStore, peer: str | None, options: tuple[str, str], render: Callable[[LocalChanges], str]
) -> str:
    """The --local answer ``render`` words, with a receipt left so that the next --local on an
    unchanged folder is answered without the scan (``gitsync.__main__``); the key is taken before
    and after, so a ref that moved meanwhile (a sync, a commit) leaves no receipt."""
    root = str(store.root)
    key = quickscan.repo_key(root, options)
    answer = render(local_changes(store, peer))
    if key is not None and quickscan.repo_key(root, options) == key:
        quickscan.save(root, key, answer)
    return answer


def describe(
    store: GitStore,
    remote: str | None,
    peer: str | None,
    *,
    no_filename_sync: bool,
    policy: str | None,
    device_id: str | None,
    name: str | None,
    username: str | None,
    remote_uri: str | None,
) -> Description:
    """Gather --describe's facts; options given on the command line win over remembered config."""
    from gitsync.sync.devinf import our_devinf  # the codec it pulls in is not needed by --local

    cfg = store.config_get
    head = store.head()
    notes = store.list_notes(store.tree_of(head) if head else None)
    device_id = device_id or cfg("gitsync.deviceid")
    names = [peer] if peer else []
    names += [p for p in store.peers() if p not in names]
    return Description(
        root=store.root,
        branch=(store.branch() or "(none)").removeprefix("refs/heads/"),
        notes=len(notes),
        remote=remote,
        devices=len([p for p in store.peers() if p.startswith("device-")]),
        filename_sync=not (no_filename_sync or cfg("gitsync.nofilenamesync") == "true"),
        policy=policy or cfg("gitsync.policy") or "merge",
        device_id=device_id,
        name=name or cfg("gitsync.name"),
        user=username or cfg("gitsync.username"),
        datastores=tuple(our_devinf(device_id or "-", server=False).datastores),
        peers=tuple(
            _describe_peer(store, n, remote if n == peer else None, remote_uri) for n in names
        ),
    )


def _describe_peer(store: GitStore, name: str, remote: str | None, remote_uri: str | None) -> PeerDescription:
    snap = store.state_load(name)
    if snap is None:
        datastore = remote_uri or store.config_get("gitsync.remoteuri") or "notes"
        return PeerDescription(name=name, synced=False, url=remote, datastore=datastore)
    st = PeerState.load(snap.files)
    return PeerDescription(
        name=name,
        synced=True,
        url=st.url or None,
        datastore=st.remote_uri or "notes",
        devinf=st.devinf,
        device_id=st.device_id,
        remote_uri=st.remote_uri or None,
        content_type=st.content_type or None,
        user=st.user or None,
        anchor=st.our_anchor,
        mode=st.mode or None,
        notes_in_common=len(store.list_notes(snap.synced_tree)),
        mapped_ids=len(st.ids),
        pending=len(local_changes(store, name).changes),
    )
