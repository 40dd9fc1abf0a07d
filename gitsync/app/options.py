"""What a client sync is asked to do, and with which peer: shared by ``gitsync-notes sync`` and the hook.

The command line parses into a :class:`SyncRequest` (only what the user typed); the post-commit
hook builds one for each peer.  :func:`resolve_client` fills the gaps from what the repository
remembers (``git config gitsync.*``, the peers' saved state, a ``sync-notes`` folder taken over)
and gives the :class:`ClientOptions` the client driver runs with.  No click, no printing here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitsync.codec import WBXML_TYPE, XML_TYPE
from gitsync.errors import ConfigError, UserError
from gitsync.model import MODE_NAMES, SyncMode
from gitsync.protocol.session import DEFAULT_MAX_OBJ_SIZE
from gitsync.sync.devinf import DEFAULT_MAX_MSG_SIZE
from gitsync.sync.ids import peer_ref_name
from gitsync.sync.state import PeerState
from gitsync.transport.urls import parse_server_url

if TYPE_CHECKING:
    from gitsync.app.pysyncml_import import PysyncmlState
    from gitsync.store.git import GitStore

__all__ = [
    "ClientOptions",
    "PasswordPrompt",
    "ResolvedSync",
    "SyncRequest",
    "client_peers",
    "peer_name",
    "peer_remote",
    "resolve_client",
    "resolve_peer",
    "take_userinfo",
]

#: Asked for the password of a user when none was given; None when nobody can be asked.
PasswordPrompt = Callable[[str], "str | None"]


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
    max_msg_size: int = DEFAULT_MAX_MSG_SIZE
    max_obj_size: int | None = DEFAULT_MAX_OBJ_SIZE  # the largest note we take (MaxObjSize)
    delete_guard: float | None = 0.5  # stop when a sync would delete more than this share
    force_delete: bool = False
    honour_run_again: bool = True  # sync again when a commit came in meanwhile (see app/hook.py)
    display_name: str | None = None  # --name: our DevInf DisplayName and SyncHdr LocName


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRequest:
    """What was asked for one client sync (the ``sync`` options); None: use what is remembered."""

    remote: str | None = None
    peer: str | None = None
    mode: str = "sync"  # a key of MODE_NAMES
    device_id: str | None = None
    name: str | None = None
    remote_uri: str | None = None
    username: str | None = None
    password: str | None = None
    auth: str | None = None  # "basic" or "md5"
    no_filename_sync: bool = False
    policy: str | None = None  # remembered for when this folder is served
    encoding: str = "xml"  # "xml" or "wbxml"
    syncml_version: str = "1.2"
    max_msg_size: int | None = None
    max_obj_size: int | None = None
    force_delete: bool = False
    dry_run: bool = False
    timeout: float = 60.0
    ca_file: str | None = None  # PEM file of a private CA for an https:// server


@dataclass(frozen=True, slots=True)
class ResolvedSync:
    """A request with the gaps filled: the driver's options and what to do around the sync."""

    options: ClientOptions
    taken: PysyncmlState | None  # a sync-notes folder (``.sync/``) found in the notes folder
    take_over: bool  # its state becomes this peer's first sync state
    remember: dict[str, str | None]  # git config to set once the sync worked (None: leave)


def take_userinfo(req: SyncRequest) -> SyncRequest:
    """``--remote http://alice:pw@host/`` is ``--remote http://host/ -u alice -p pw``: the URL is
    checked (ConfigError), and what is remembered or named (config, peer ref, commit trailers)
    carries no password.  Cheap and idempotent: the CLI calls it before creating anything."""
    if not req.remote:
        return req
    server = parse_server_url(req.remote)
    if server.username and req.username and req.username != server.username:
        raise ConfigError(
            f"the URL names the user {server.username!r} but --username says {req.username!r}"
        )
    return dataclasses.replace(
        req,
        remote=server.url,
        username=req.username or server.username,
        password=req.password if req.password is not None else server.password,
    )


def peer_name(url: str) -> str:
    """The peer name made from a server URL (when ``--peer`` is not given)."""
    return peer_ref_name(url)


def peer_remote(store: GitStore, peer: str) -> str | None:
    """The server a peer was last synced with: its own config key, else its saved state."""
    remote = store.config_get(f"gitsync.{peer}.remote")
    if remote:
        return remote
    snap = store.state_load(peer)
    return (PeerState.load(snap.files).url or None) if snap else None


def resolve_peer(store: GitStore, remote: str | None, peer: str | None) -> tuple[str | None, str | None]:
    """(URL, peer name) from --remote/--peer and what was remembered, for several peers per folder.

    No option: the default peer (the last one synced).  --peer alone: that peer's own server.
    --remote alone: the peer already synced with that URL, else a name made from the URL.
    """
    cfg = store.config_get
    default_peer, default_remote = cfg("gitsync.peer"), cfg("gitsync.remote")
    if default_peer is None and default_remote:
        default_peer = peer_name(default_remote)
    if remote is None and peer is None:
        peer = default_peer
        remote = (peer_remote(store, peer) if peer else None) or default_remote
    elif peer is None:
        assert remote is not None
        peer = next((p for p in store.peers() if peer_remote(store, p) == remote), None)
        if peer is None and default_peer and default_remote == remote:
            peer = default_peer
    elif remote is None:
        remote = peer_remote(store, peer) or (default_remote if peer == default_peer else None)
    return remote, peer or (peer_name(remote) if remote else None)


def client_peers(store: GitStore) -> list[tuple[str, str]]:
    """(peer, URL) of every server this folder syncs with as a client; the default peer first."""
    out: list[tuple[str, str]] = []
    _remote, default_peer = resolve_peer(store, None, None)
    for name in [default_peer, *store.peers()]:
        if not name or any(name == p for p, _ in out):
            continue
        remote, _ = resolve_peer(store, None, name)
        if remote:
            out.append((name, remote))
    return out


def resolve_client(
    store: GitStore, req: SyncRequest, *, origin: str = "cli", ask_password: PasswordPrompt | None = None
) -> ResolvedSync:
    """Fill ``req`` from what the repository remembers; raise ConfigError/UserError when it cannot run.

    ``origin`` is "cli" or "hook": the hook syncs every peer in turn, so it neither changes which
    peer is the default nor runs again itself for a commit made meanwhile.
    """
    from gitsync.app import pysyncml_import

    cfg = store.config_get
    taken = pysyncml_import.find(store.root)
    req = take_userinfo(req)
    remote, peer = resolve_peer(store, req.remote, req.peer)
    if not remote and taken is not None and taken.url and not req.peer:
        remote = taken.url  # a sync-notes folder taken over: its server
    if not remote:
        raise ConfigError("no server given: use --remote URL, which is remembered for later syncs")
    remote = parse_server_url(remote).url  # a remembered one too (older versions kept userinfo)
    device_id = (
        req.device_id
        or cfg("gitsync.deviceid")
        or (taken.device_id if taken is not None else None)
        or f"gitsync-notes:{uuid.uuid4().hex[:16]}"
    )
    username = req.username or cfg("gitsync.username")
    password = req.password
    if username and password is None and not req.dry_run:
        password = ask_password(username) if ask_password is not None else None
        if password is None:
            where = (
                "the hook asks no one: set GITSYNC_PASSWORD where git commit runs, or sync by hand"
                if origin == "hook"
                else "use --password or GITSYNC_PASSWORD"
            )
            raise UserError(f"a password is needed for user {username!r} ({where})")
    peer = peer or peer_name(remote)
    opts = ClientOptions(
        url=remote,
        device_id=device_id,
        name=peer,
        display_name=req.name or cfg("gitsync.name"),
        mode=MODE_NAMES[req.mode],
        remote_uri=req.remote_uri or cfg("gitsync.remoteuri"),
        username=username,
        password=password,
        auth_type=req.auth or cfg("gitsync.auth") or "basic",
        filename_sync=not (req.no_filename_sync or cfg("gitsync.nofilenamesync") == "true"),
        encoding=WBXML_TYPE if req.encoding == "wbxml" else XML_TYPE,
        ver_dtd=req.syncml_version,
        max_msg_size=req.max_msg_size or DEFAULT_MAX_MSG_SIZE,
        max_obj_size=req.max_obj_size or DEFAULT_MAX_OBJ_SIZE,
        force_delete=req.force_delete,
        honour_run_again=origin != "hook",  # the hook's runner loops over every peer itself
    )
    take_over = taken is not None and store.state_load(peer) is None and device_id == taken.device_id
    # remember what worked, so `gitsync-notes sync DIR` repeats it (never the password)
    remember: dict[str, str | None] = {
        "gitsync.remote": remote,
        f"gitsync.{peer}.remote": remote,  # each peer's own server (several peers per repository)
        "gitsync.deviceid": device_id,
        "gitsync.username": req.username,
        "gitsync.remoteuri": req.remote_uri,
        "gitsync.peer": peer,
        "gitsync.auth": req.auth,
        "gitsync.name": req.name,
        "gitsync.policy": req.policy,
        "gitsync.nofilenamesync": "true" if req.no_filename_sync else None,
        f"gitsync.{peer}.cafile": req.ca_file,
    }
    if origin == "hook":  # background syncs of every peer must not change which one is the default
        remember = {f"gitsync.{peer}.remote": remote}
    return ResolvedSync(opts, taken, take_over, remember)
