"""``gitsync-notes log DIR`` (the sync history) and ``gitsync-notes status DIR`` (each peer now).

The history is read from the peers' state refs: every finished session is one state commit whose
message is the sync commit's message (subject "sync with NAME: +a ~m -d in, +a ~m -d out" and
``Gitsync-*`` trailers), so ``git log refs/gitsync/NAME`` shows the same, and sessions that
changed nothing (and so made no commit on the branch) are listed too.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from gitsync.cli.base import EXIT_OK, Folder, fail, main, open_store, run

if TYPE_CHECKING:
    from gitsync.store.git import GitStore

_SUBJECT = re.compile(r"sync with (?P<peer>.+?): \+(\d+) ~(\d+) -(\d+) in, \+(\d+) ~(\d+) -(\d+) out")
_TRAILER = re.compile(r"^(Gitsync-[A-Za-z-]+): ?(.*)$", re.MULTILINE)
_ANCHOR_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z")


@dataclass(frozen=True, slots=True)
class SyncEntry:
    """One finished session, as its state commit tells it."""

    peer: str
    when: float | None
    mode: str
    counts: tuple[int, ...] | None  # in: add, mod, del; out: add, mod, del
    conflicts: int
    head: str | None
    subject: str

    @property
    def changed(self) -> bool:
        return bool(self.counts and any(self.counts))


def parse_message(peer: str, message: str, head: str | None) -> SyncEntry:
    """A sync commit message → entry (tolerant: unknown messages keep their subject)."""
    subject = message.strip().splitlines()[0] if message.strip() else ""
    trailers = dict(_TRAILER.findall(message))
    m = _SUBJECT.match(subject)
    counts = tuple(int(x) for x in m.groups()[1:]) if m else None
    anchor = trailers.get("Gitsync-Anchor", "")
    t = _ANCHOR_TIME.match(anchor)
    when = float(calendar.timegm((*(int(x) for x in t.groups()), 0, 0, 0))) if t else None
    try:
        conflicts = int(trailers.get("Gitsync-Conflicts", "0") or 0)
    except ValueError:
        conflicts = 0
    return SyncEntry(
        peer=trailers.get("Gitsync-Peer", peer),
        when=when,
        mode=trailers.get("Gitsync-Mode", "?"),
        counts=counts,
        conflicts=conflicts,
        head=head,
        subject=subject,
    )


def history(store: GitStore, peer: str | None = None) -> list[SyncEntry]:
    """Every finished session with ``peer`` (or with every peer), newest first."""
    entries: list[SyncEntry] = []
    for name in [peer] if peer else store.peers():
        for snap in store.state_history(name):
            entries.append(parse_message(name, snap.message, snap.head))
    entries.sort(key=lambda e: e.when or 0.0, reverse=True)
    return entries


def _time(when: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when)) + "Z" if when else "-" * 20


def _counts(entry: SyncEntry) -> str:
    if entry.counts is None:
        return entry.subject
    i, o = entry.counts[:3], entry.counts[3:]
    return f"+{i[0]} ~{i[1]} -{i[2]} in, +{o[0]} ~{o[1]} -{o[2]} out"


def render_entry(entry: SyncEntry, width: int) -> str:
    conflicts = f"{entry.conflicts} conflict{'s' if entry.conflicts != 1 else ''}" if entry.conflicts else ""
    commit = (entry.head or "")[:10] if entry.changed else "(no commit)"
    line = f"{_time(entry.when)}  {entry.peer:<{width}}  {entry.mode:<10}  {_counts(entry):<30}  {commit}"
    return f"{line}  {conflicts}".rstrip()


@main.command("log")
@click.argument("directory", type=Folder())
@click.option("--peer", help="Only the syncs with this peer.")
@click.option("-n", "--max-count", type=click.IntRange(min=1), help="Show at most this many syncs.")
@click.option("--changes", is_flag=True, help="Only syncs that changed something.")
def log_cmd(directory: str, peer: str | None, max_count: int | None, changes: bool) -> None:
    """The sync history of DIRECTORY, newest first: one line per sync.

    Columns: time (UTC), peer, mode, notes changed here (in) and at the peer (out), the commit the
    sync made (undo it with `git revert COMMIT` and a sync), conflicts.
    """

    def body() -> int:
        store = open_store(directory, create=False)
        if peer and peer not in store.peers():
            known = ", ".join(store.peers()) or "none"
            fail(f"no sync with a peer named {peer!r} in {store.root} (peers: {known})")
        entries = [e for e in history(store, peer) if e.changed or not changes]
        if max_count:
            entries = entries[:max_count]
        if not entries:
            click.echo("no syncs yet")
            return EXIT_OK
        width = max(len(e.peer) for e in entries)
        for entry in entries:
            click.echo(render_entry(entry, width))
        return EXIT_OK

    run(body)


@main.command("status")
@click.argument("directory", type=Folder())
def status_cmd(directory: str) -> None:
    """The hook, a running sync, and the last result of each peer of DIRECTORY."""
    run(lambda: _status(directory))


def _status(directory: str) -> int:
    from gitsync.app.hook import hook_state, load_results, log_path, run_again_generation, sync_running
    from gitsync.app.options import client_peers
    from gitsync.store.unwritten import describe

    store = open_store(directory, create=False)
    branch = (store.branch() or "(detached HEAD)").removeprefix("refs/heads/")
    click.echo(f"Notes folder: {store.root} (branch {branch})")
    click.echo(f"Hook: {hook_state(store).value}")
    busy = sync_running(store)
    pending = " (a commit is waiting for it)" if busy and run_again_generation(store) else ""
    click.echo(f"Sync running: {'yes' + pending if busy else 'no'}")
    results = load_results(store)
    urls = dict(client_peers(store))
    names = list(dict.fromkeys([*urls, *store.peers(), *results]))
    if not names:
        click.echo("Peers: none yet")
    for name in names:
        click.echo(f"Peer {name}" + (f" ({urls[name]}):" if name in urls else ":"))
        snap = store.state_load(name)
        if snap is not None:
            entry = parse_message(name, snap.message, snap.head)
            click.echo(f"  last sync:    {_time(entry.when)}  {entry.mode}  {_counts(entry)}")
        else:
            click.echo("  last sync:    never")
        result = results.get(name)
        if result is not None:
            what = "ok" if result.ok else "FAILED"
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(result.when)) + "Z"
            click.echo(f"  last attempt: {when}  ({result.origin}) {what}: {result.summary}")
            if snap is None and not result.ok:
                forget = f"gitsync-notes peer forget {store.root} {name}"
                click.echo(f"  never synced; a wrong URL? forget it: {forget}")
        if snap is not None and name in urls:
            base = snap.synced_tree
            waiting = len(store.diff(base, store.scan_worktree_tree()))
            click.echo(f"  waiting to be sent: {waiting} change{'s' if waiting != 1 else ''}")
    unwritten = store.unwritten()
    if unwritten:
        click.echo(f"Not yet written into the folder ({len(unwritten)}; the next sync writes them):")
        for note in unwritten:
            click.echo(f"  {describe(note)}")
    log = log_path(store)
    if log.exists():
        click.echo(f"Hook log: {log}")
    return EXIT_OK
