"""``gitsync-notes sync``: the client, plus --describe and --local."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from gitsync.cli import (
    EXIT_CONFLICT,
    EXIT_OK,
    EXIT_USAGE,
    POLICIES,
    fail,
    main,
    open_store,
    run,
    setup_logging,
    verbosity,
)
from gitsync.cli.render import render_table
from gitsync.model import MODE_NAMES

if TYPE_CHECKING:
    from gitsync.store.git import GitStore

logger = logging.getLogger("gitsync")


# ---------------------------------------------------------------------- sync
@main.command()
@click.argument("directory", type=click.Path(file_okay=True, dir_okay=True))
@click.option("-r", "--remote", help="URL of the SyncML server (remembered).")
@click.option(
    "-m",
    "--mode",
    type=click.Choice(sorted(MODE_NAMES)),
    default="sync",
    show_default=True,
    help="sync=two-way, full=slow sync, pull/push=one-way, pull-over/push-over=refresh.",
)
@click.option("-i", "--id", "device_id", help="Our device id (remembered; generated if unset).")
@click.option("-n", "--name", help="Our display name sent to the peer.")
@click.option("--peer", help="Name of this peer in the repository (default: from the URL).")
@click.option("-R", "--remote-uri", help="The server's datastore URI (default: notes).")
@click.option("-u", "--username", help="User name for the server (remembered).")
@click.option("-p", "--password", envvar="GITSYNC_PASSWORD", help="Password (prompted when missing).")
@click.option("--auth", type=click.Choice(["basic", "md5"]), help="Authentication scheme (default basic).")
@click.option("-F", "--no-filename-sync", is_flag=True, help="Do not sync file names.")
@click.option("-d", "--describe", is_flag=True, help="Describe the sync setup and exit.")
@click.option("-l", "--local", is_flag=True, help="List local changes since the last sync and exit.")
@click.option("-P", "--policy", type=click.Choice(POLICIES), help="Conflict policy (used by servers).")
@click.option("--encoding", type=click.Choice(["xml", "wbxml"]), default="xml", show_default=True)
@click.option(
    "--syncml", "syncml_version", type=click.Choice(["1.1", "1.2"]), default="1.2", show_default=True
)
@click.option("--max-msg-size", type=click.IntRange(min=1024), help="Largest message we accept (bytes).")
@click.option("--force-delete", is_flag=True, help="Allow a sync that deletes more than half the notes.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="HTTP timeout in seconds.")
@verbosity
def sync(directory: str, **kw: Any) -> None:
    """Sync the notes in DIRECTORY with a SyncML server."""
    setup_logging(kw["verbose"], kw["quiet"])
    run(lambda: _sync(directory, **kw))


def _sync(directory: str, **kw: Any) -> int:
    store = open_store(directory)
    cfg = store.config_get
    remote = kw["remote"] or cfg("gitsync.remote")
    peer = kw["peer"] or cfg("gitsync.peer")
    if kw["describe"]:
        click.echo(_describe(store, remote, peer))
        return EXIT_OK
    if kw["local"]:
        return _list_local(store, peer or (_peer_name(remote) if remote else None), quiet=kw["quiet"])
    if not remote:
        fail("no server given: use --remote URL (it is remembered for later syncs)", EXIT_USAGE)
    if not remote.startswith(("http://", "https://")):
        fail(f"--remote must be an http:// or https:// URL, not {remote!r}", EXIT_USAGE)
    device_id = kw["device_id"] or cfg("gitsync.deviceid") or f"gitsync-notes:{uuid.uuid4().hex[:16]}"
    username = kw["username"] or cfg("gitsync.username")
    password = kw["password"]
    if username and password is None:
        if not sys.stdin.isatty():
            fail("a password is needed for user " + repr(username) + " (use --password or GITSYNC_PASSWORD)")
        password = click.prompt(f"Password for {username}", hide_input=True, default="", show_default=False)
    peer = peer or _peer_name(remote)
    from gitsync.app.client import ClientOptions, sync_client
    from gitsync.codec import WBXML_TYPE, XML_TYPE
    from gitsync.transport.http import HttpTransport

    opts = ClientOptions(
        url=remote,
        device_id=device_id,
        name=peer,
        mode=MODE_NAMES[kw["mode"]],
        remote_uri=kw["remote_uri"] or cfg("gitsync.remoteuri"),
        username=username,
        password=password,
        auth_type=kw["auth"] or cfg("gitsync.auth") or "basic",
        filename_sync=not kw["no_filename_sync"],
        encoding=WBXML_TYPE if kw["encoding"] == "wbxml" else XML_TYPE,
        ver_dtd=kw["syncml_version"],
        max_msg_size=kw["max_msg_size"] or 2_000_000,
        force_delete=kw["force_delete"],
    )
    progress = _progress_printer() if (sys.stderr.isatty() and not kw["quiet"]) else None
    transport = HttpTransport(timeout=kw["timeout"])
    try:
        report = sync_client(store, opts, transport, progress=progress)
    finally:
        transport.close()
    # remember what worked, so `gitsync-notes sync DIR` repeats it
    store.config_set("gitsync.remote", remote)
    store.config_set("gitsync.deviceid", device_id)
    if username:
        store.config_set("gitsync.username", username)
    if kw["remote_uri"]:
        store.config_set("gitsync.remoteuri", kw["remote_uri"])
    if kw["peer"]:
        store.config_set("gitsync.peer", kw["peer"])
    if kw["auth"]:
        store.config_set("gitsync.auth", kw["auth"])
    if not kw["quiet"]:
        click.echo(render_table(report))
    if report.unresolved:
        click.echo(f"gitsync-notes: conflict markers left in: {', '.join(report.unresolved)}", err=True)
        return EXIT_CONFLICT
    return EXIT_OK


def _peer_name(url: str) -> str:
    from gitsync.app.common import peer_ref_name

    return peer_ref_name(url)


def _progress_printer() -> Callable[[str, int, int], None]:
    def show(what: str, done: int, total: int) -> None:
        text = f"{what} {done}/{total}" if total else f"{what} {done}"
        click.echo(f"\r{text}   ", err=True, nl=False)

    return show


def _list_local(store: GitStore, peer: str | None, *, quiet: bool) -> int:
    snap = store.state_load(peer) if peer else None
    base = snap.synced_tree if snap else None
    tree = store.scan_worktree_tree()
    changes = store.diff(base, tree)
    if not quiet:
        for tc in changes:
            if tc.old_path and tc.new_path and tc.old_path != tc.new_path:
                click.echo(f"R {tc.old_path} -> {tc.new_path}")
            else:
                mark = {"add": "A", "modify": "M", "delete": "D"}[tc.kind.value]
                click.echo(f"{mark} {tc.new_path or tc.old_path}")
        if not changes:
            click.echo("no local changes" + ("" if snap else " (never synced: every note would be sent)"))
    return EXIT_OK


def _describe(store: GitStore, remote: str | None, peer: str | None) -> str:
    from gitsync.sync.state import devinf_from_json, parse_kv

    lines = [f"notes folder: {store.root}", f"branch: {store.branch() or '(none)'}"]
    notes = store.list_notes(store.tree_of(h) if (h := store.head()) else None)
    lines.append(f"notes: {len(notes)}")
    lines.append(f"device id: {store.config_get('gitsync.deviceid') or '(not yet assigned)'}")
    lines.append(f"server: {remote or '(none configured)'}")
    names = [peer] if peer else []
    if remote and not peer:
        names = [_peer_name(remote)]
    names += [p for p in store.peers() if p not in names]
    for name in names:
        snap = store.state_load(name)
        if snap is None:
            lines.append(f"peer {name}: never synced")
            continue
        st = parse_kv(snap.files.get("state"))
        devinf = devinf_from_json(snap.files.get("devinf"))
        what = f"{devinf.man or '?'} {devinf.mod or ''} {devinf.sw_v or ''}".strip() if devinf else "unknown"
        lines.append(f"peer {name}: {what}")
        lines.append(f"  device: {st.get('device_id') or st.get('url', '?')}")
        lines.append(
            f"  datastore: {st.get('remote_uri', 'notes')}, content type {st.get('content_type', '?')}"
        )
        lines.append(
            f"  last sync: {st.get('mode', '?')}, anchor {st.get('local_anchor') or st.get('server_anchor')}"
        )
    return "\n".join(lines)
