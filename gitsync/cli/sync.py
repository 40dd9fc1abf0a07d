"""``gitsync-notes sync``: the client, plus --describe and --local."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import click

from gitsync.cli.base import (
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_ITEMS,
    EXIT_OK,
    POLICIES,
    Folder,
    Seconds,
    create_folder,
    main,
    open_store,
    run,
    setup_logging,
    verbosity,
)
from gitsync.cli.render import render_table
from gitsync.model import MODE_NAMES

if TYPE_CHECKING:
    from gitsync.app.inspect import Description, LocalChanges, PeerDescription
    from gitsync.protocol.messages import DataStore
    from gitsync.store.git import GitStore

logger = logging.getLogger("gitsync")

#: What each --mode does, for --describe and the help text.
MODE_HELP = {
    "sync": "two-way",
    "full": "slow sync: compare every note",
    "pull": "one-way from the server",
    "push": "one-way to the server",
    "pull-over": "refresh from the server: this folder becomes a copy of the server",
    "push-over": "refresh from this folder: the server becomes a copy of it",
}


# ---------------------------------------------------------------------- sync
@main.command()
@click.argument("directory", type=Folder(exists=False))
@click.option("-r", "--remote", metavar="URL", help="URL of the SyncML server (remembered).")
@click.option(
    "-m",
    "--mode",
    type=click.Choice(list(MODE_NAMES)),
    default="sync",
    show_default=True,
    help="sync=two-way, full=slow sync, pull/push=one-way, pull-over/push-over=refresh.",
)
@click.option(
    "-i", "--id", "device_id", metavar="DEVID", help="Our device id (remembered; generated if unset)."
)
@click.option("-n", "--name", help="Our display name, sent to the server (remembered).")
@click.option("--peer", help="Name of this server in the repository (default: from the URL).")
@click.option(
    "-R", "--remote-uri", metavar="URI", help="The server's datastore URI (default: notes; remembered)."
)
@click.option("-u", "--username", help="User name for the server (remembered; the password never is).")
@click.option(
    "-p",
    "--password",
    envvar="GITSYNC_PASSWORD",
    help="Password (else $GITSYNC_PASSWORD, else asked for on a terminal). Never stored.",
)
@click.option("--auth", type=click.Choice(["basic", "md5"]), help="Authentication scheme (default basic).")
@click.option(
    "-F",
    "--no-filename-sync",
    is_flag=True,
    help="Sync a renamed note only when its text changed too (remembered, as sync-notes does; "
    "undo with: git config --unset gitsync.nofilenamesync).",
)
@click.option("-d", "--describe", is_flag=True, help="Describe what would be synced, and with whom; exit.")
@click.option("-l", "--local", is_flag=True, help="List local changes not yet synced; contact no one.")
@click.option(
    "-P",
    "--policy",
    type=click.Choice(POLICIES),
    help="Conflict policy when this folder is served (remembered; the server decides conflicts).",
)
@click.option("--encoding", type=click.Choice(["xml", "wbxml"]), default="xml", show_default=True)
@click.option(
    "--syncml", "syncml_version", type=click.Choice(["1.1", "1.2"]), default="1.2", show_default=True
)
@click.option("--max-msg-size", type=click.IntRange(min=1024), help="Largest message we accept (bytes).")
@click.option(
    "--max-obj-size",
    type=click.IntRange(min=1024),
    help="Largest note we accept (bytes, default 64 MiB); bigger ones are refused and reported.",
)
@click.option("--force-delete", is_flag=True, help="Allow a sync that deletes more than half the notes.")
@click.option(
    "--dry-run", is_flag=True, help="Show what would be sent; write nothing and contact no one."
)
@click.option("--timeout", type=Seconds(), default=60.0, show_default=True, help="HTTP timeout in seconds.")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    help="Trust the CA certificate(s) in this PEM file for an https:// server (remembered per server).",
)
@verbosity
def sync(directory: str, **kw: Any) -> None:
    """Sync the notes in DIRECTORY with a SyncML server.

    A missing DIRECTORY is created (its parent must exist) unless it would be inside another Git
    repository; a sub-folder of a notes folder that synced before means that notes folder.
    """
    setup_logging(kw["verbose"], kw["quiet"])
    run(lambda: _sync(directory, **kw))


def _sync(directory: str, **kw: Any) -> int:
    from gitsync.app.options import SyncRequest, take_userinfo

    # a bad URL is a usage error before anything is created; userinfo becomes -u/-p
    req = take_userinfo(SyncRequest(remote=kw["remote"], username=kw["username"], password=kw["password"]))
    kw.update(remote=req.remote, username=req.username, password=req.password)
    if kw["describe"] or kw["local"]:
        return _inspect(directory, **kw)
    from gitsync.app import pysyncml_import

    if kw.get("dry_run"):  # never create the repository (that would commit every note)
        from pathlib import Path

        from gitsync.errors import ConfigError
        from gitsync.store.git import GitStore

        try:
            return sync_store(GitStore.open(Path(directory), create=False, top_level=True), **kw)
        except ConfigError as exc:
            if "not a Git repository" not in str(exc):
                raise
            click.echo(f"Dry run: nothing was written. {Path(directory).resolve()} was never synced:")
            click.echo("the first sync makes it a Git repository and sends every note in it (a slow sync).")
            return EXIT_OK
    from gitsync.errors import ConfigError
    from gitsync.store.git import GitStore

    unknown = GitStore.enclosing_work_tree(directory) is None and not _sync_notes_folder(directory)
    if not kw["remote"] and unknown:
        # nothing remembers a server here: say so before creating a repository or a folder
        raise ConfigError("no server given: use --remote URL, which is remembered for later syncs")
    create_folder(directory)  # by FOLDER_RULE
    pysyncml_import.exclude_state_folder(directory)
    return sync_store(open_store(directory, top_level=True), **kw)


def _sync_notes_folder(directory: str) -> bool:
    """Whether ``directory`` is a sync-notes folder (its ``.sync`` state names the server)."""
    from pathlib import Path

    return (Path(directory) / ".sync").is_dir()


def _ask_password(username: str) -> str | None:
    """Ask on the terminal; None when stdin is no terminal (then -p or $GITSYNC_PASSWORD is needed)."""
    if not sys.stdin.isatty():
        return None
    answer: str = click.prompt(f"Password for {username}", hide_input=True, default="", show_default=False)
    return answer


def sync_store(store: GitStore, **kw: Any) -> int:
    """One sync of an opened store with the options of the command line; print what it did."""
    from gitsync.app.options import SyncRequest
    from gitsync.app.sync_peer import sync_peer
    from gitsync.cli.render import render_dry_run

    quiet = kw.pop("quiet", False)
    kw.pop("verbose", None)
    kw.pop("describe", None)
    kw.pop("local", None)
    req = SyncRequest(**kw)
    shown: list[Progress] = []

    def progress_for(peer: str) -> Progress | None:
        if quiet or not sys.stderr.isatty():
            return None
        shown.append(Progress(sys.stderr, peer))
        return shown[-1]

    try:
        outcome = sync_peer(
            store,
            req,
            ask_password=_ask_password,
            progress_for=progress_for,
            say=lambda text: click.echo(text, err=True),
        )
    finally:
        for progress in shown:
            progress.close()
    if outcome.dry_run is not None:
        click.echo(render_dry_run(outcome.dry_run))
        if outcome.would_take_over:
            click.echo("The sync-notes state in .sync would be taken over first: the sync would then be")
            click.echo("two-way and send only what changed since sync-notes last synced.")
        return EXIT_ERROR if outcome.dry_run.guard else EXIT_OK  # as the real sync would exit
    report = outcome.report
    assert report is not None
    if not quiet:
        click.echo(render_table(report))
    for line in report.problems():  # even with -q: something did not happen
        click.echo(f"gitsync-notes: {line}", err=True)
    unwritten = store.unwritten()  # each was logged with what to do when its write failed
    if unwritten:
        click.echo(
            f"gitsync-notes: {len(unwritten)} note{'s' if len(unwritten) != 1 else ''} could not be "
            f"written into {store.root} (see above; `gitsync-notes status` lists them): the next sync "
            f"writes them",
            err=True,
        )
        return EXIT_ERROR
    if report.unresolved:
        click.echo(
            f"gitsync-notes: unresolved conflicts (markers left, or refused by the server) in: "
            f"{', '.join(report.unresolved)}",
            err=True,
        )
    if report.marked:  # a merge elsewhere left them: a person must look (exit 3, as for our own)
        click.echo(
            f"gitsync-notes: warning: conflict markers arrived from {report.peer} in: "
            f"{', '.join(report.marked)} (edit to resolve them, then sync)",
            err=True,
        )
    if report.unresolved or report.marked:
        return EXIT_CONFLICT
    return EXIT_ITEMS if report.failed() else EXIT_OK


class Progress:
    """Items sent/received, redrawn in place on a terminal (at most ten times a second)."""

    def __init__(self, stream: TextIO, peer: str, *, interval: float = 0.1) -> None:
        self.stream = stream
        self.peer = peer
        self.interval = interval
        self.counts: dict[str, tuple[int, int]] = {}
        self.moving = ""  # bytes of a large object so far
        self.last = 0.0
        self.shown = False

    def __call__(self, what: str, done: int, total: int) -> None:
        key = "received" if what.startswith("receiv") else "sent"
        if what.endswith(" bytes"):  # a large object on its way: shown next to the note counts
            self.moving = f"{key} {done / 1e6:.1f}" + (f" of {total / 1e6:.1f} MB" if total else " MB")
        else:
            self.moving = ""
            self.counts[key] = (done, total)
        now = time.monotonic()
        if now - self.last >= self.interval or (total and done == total):
            self.last = now
            self._draw()

    def _draw(self) -> None:
        parts = []
        for key in ("sent", "received"):
            if key in self.counts:
                done, total = self.counts[key]
                parts.append(f"{key} {done}/{total}" if total else f"{key} {done}")
        line = f"syncing with {self.peer}: {', '.join(parts)} notes"
        if self.moving:
            line += f" ({self.moving})"
        self.stream.write(f"\r\x1b[K{line}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        """Show the final counts and end the line, so what follows starts cleanly."""
        if self.counts:
            self._draw()
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------- --describe / --local
def _inspect(directory: str, **kw: Any) -> int:
    """--describe and --local: read the repository, write nothing, contact no one."""
    from pathlib import Path

    from gitsync.app import inspect

    store = inspect.open_folder(Path(directory))
    if store is None:
        if not kw["quiet"]:
            click.echo(f"{Path(directory).resolve()} has never been synced (it is no Git repository yet):")
            click.echo("every note in it would be sent on the first sync.")
        return EXIT_OK
    remote, peer = inspect.resolve_peer(store, kw["remote"], kw["peer"])
    if kw["describe"]:
        facts = inspect.describe(
            store,
            remote,
            peer,
            no_filename_sync=kw["no_filename_sync"],
            policy=kw["policy"],
            device_id=kw["device_id"],
            name=kw["name"],
            username=kw["username"],
            remote_uri=kw["remote_uri"],
        )
        click.echo(_describe(facts, kw["mode"]))
        return EXIT_OK
    if not kw["quiet"]:
        click.echo(inspect.answer_local(store, peer, (kw["peer"] or "", kw["remote"] or ""), _list_local))
    return EXIT_OK


def _local_lines(local: LocalChanges) -> list[str]:
    lines = []
    for c in local.changes:
        if c.old_path is not None:
            lines.append(f"  {c.kind:<9} {c.old_path} -> {c.path}")
        else:
            lines.append(f"  {c.kind:<9} {c.path}")
    return lines


def _list_local(local: LocalChanges) -> str:
    lines = _local_lines(local)
    who = local.peer or "any server"
    if not local.synced:
        if not lines:
            return f"No notes, and never synced with {who}."
        head = f"Never synced with {who}: all {len(lines)} notes would be sent:"
    elif not lines:
        return f"No pending local changes (since the last sync with {who})."
    else:
        head = f"Pending local changes since the last sync with {who}:"
    return "\n".join([head, *lines, f"{len(lines)} change{'s' if len(lines) != 1 else ''}."])


def _stores_line(ds: DataStore) -> str:
    prefs = {(c.ct_type, c.ver_ct) for c in (*ds.rx_pref, *ds.tx_pref)}
    seen: list[str] = []
    for ct in (*ds.rx_pref, *ds.rx, *ds.tx_pref, *ds.tx):
        text = f"{ct.ct_type} {ct.ver_ct or ''}".strip()
        if (ct.ct_type, ct.ver_ct) in prefs:
            text += " (preferred)"
        if text not in seen:
            seen.append(text)
    return ", ".join(seen) or "(none announced)"


def _when(anchor: str | None) -> str:
    """Our anchors start with the session's UTC time (``20261124T160516Z``): show it readably."""
    m = re.match(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z", anchor or "")
    if not m:
        return anchor or "unknown time"
    y, mo, d, h, mi, s = m.groups()
    return f"{y}-{mo}-{d} {h}:{mi}:{s} UTC"


def _describe(facts: Description, mode: str) -> str:
    """What would be synced and with whom: this folder, our device, each peer and its last sync."""
    lines = [f"Notes folder: {facts.root} (branch {facts.branch}, {_n(facts.notes, 'note')})"]
    if facts.remote:
        lines.append(f"Role: client of {facts.remote}, mode {mode} ({MODE_HELP[mode]})")
    elif facts.devices:
        lines.append(f"Role: server (gitsync-notes serve) for {_n(facts.devices, 'device')}")
    else:
        lines.append("Role: not synced yet (sync --remote URL, or serve --listen PORT)")
    lines.append(f"Sync file names: {'yes' if facts.filename_sync else 'no'}")
    lines.append(f"Conflict policy when served: {facts.policy}")
    lines.append("Local device:")
    lines.append(f"  Device ID: {facts.device_id or '(assigned on the first sync)'}")
    lines.append(f"  Name: {facts.name or '(none)'}")
    if facts.user:
        lines.append(f"  User: {facts.user} (the password is never stored)")
    for ds in facts.datastores:
        lines.append(f"  Datastore: {ds.source_ref}")
        lines.append(f"    Content types: {_stores_line(ds)}")
    if not facts.peers:
        lines.append("Peers: none yet")
    for peer in facts.peers:
        lines.extend(_describe_peer(peer))
    return "\n".join(lines)


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _describe_peer(peer: PeerDescription) -> list[str]:
    lines = [f"Peer {peer.name}:"]
    if not peer.synced:
        if peer.url:
            lines.append(f"  URL: {peer.url}")
        lines.append(f"  Datastore: {peer.datastore}")
        lines.append("  Last sync: never")
        return lines
    if peer.url:
        lines.append(f"  URL: {peer.url}")
    devinf = peer.devinf
    if devinf is not None:
        what = " ".join(x for x in (devinf.man, devinf.mod, devinf.sw_v) if x and x != "-") or "unknown"
        lines.append(f"  Device: {what} (ID {devinf.dev_id or '?'}, {devinf.dev_typ or '?'})")
        for ds in devinf.datastores:
            label = f' "{ds.display_name}"' if ds.display_name else ""
            lines.append(f"  Datastore: {ds.source_ref}{label}")
            lines.append(f"    Content types: {_stores_line(ds)}")
    else:
        lines.append(f"  Device ID: {peer.device_id if peer.device_id is not None else '?'}")
        lines.append(f"  Datastore: {peer.datastore}")
    if peer.remote_uri:
        lines.append(f"  Datastore used: {peer.remote_uri}")
    lines.append(f"  Content type used: {peer.content_type or '?'}")
    if peer.user:
        lines.append(f"  User: {peer.user}")
    common = _n(peer.notes_in_common, "note")
    lines.append(f"  Last sync: {_when(peer.anchor)}, {peer.mode or '?'}; {common} in common")
    lines.append(f"  Mapped ids: {peer.mapped_ids}")
    lines.append(f"  Pending local changes: {peer.pending}")
    return lines
