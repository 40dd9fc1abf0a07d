"""``gitsync-notes hook install|uninstall DIR``, and ``hook run`` (started by the hook itself)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING

import click

from gitsync.cli.base import EXIT_OK, Folder, main, open_store, run

if TYPE_CHECKING:
    from gitsync.store.git import GitStore

logger = logging.getLogger("gitsync")


@main.group()
def hook() -> None:
    """Sync automatically after each `git commit` (a post-commit hook)."""


@hook.command("install")
@click.argument("directory", type=Folder())
@click.option(
    "--command",
    metavar="PATH",
    help="The gitsync-notes program the hook starts (default: this one, by its full path).",
)
def install_cmd(directory: str, command: str | None) -> None:
    """Install the post-commit hook in DIRECTORY (an existing hook is kept and run first)."""

    def body() -> int:
        from gitsync.app.hook import install

        store = open_store(directory, create=False)
        result = install(store, command or _this_command())
        click.echo(result.message)
        if not store.config_get("gitsync.remote"):
            click.echo("No server configured yet: the hook syncs after `gitsync-notes sync DIR -r URL`.")
        return EXIT_OK

    run(body)


@hook.command("uninstall")
@click.argument("directory", type=Folder())
def uninstall_cmd(directory: str) -> None:
    """Remove the post-commit hook from DIRECTORY (a hook it ran first is put back)."""

    def body() -> int:
        from gitsync.app.hook import uninstall

        click.echo(uninstall(open_store(directory, create=False)).message)
        return EXIT_OK

    run(body)


@hook.command("run", hidden=True)
@click.argument("directory", type=click.Path(file_okay=False, dir_okay=True))
def run_cmd(directory: str) -> None:
    """Started by the hook in the background: sync every peer, coalescing commits."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    run(lambda: _run(directory))


def _this_command() -> str:
    """The full path of the running gitsync-notes, so the hook works without the user's PATH."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "gitsync-notes" and os.path.isfile(argv0) and os.access(argv0, os.X_OK):
        return os.path.abspath(argv0)
    found = shutil.which("gitsync-notes")
    return os.path.abspath(found) if found else "gitsync-notes"


def _say(text: str) -> None:
    click.echo(f"{time.strftime('%Y-%m-%d %H:%M:%S')} hook: {text}", err=True)


def _run(directory: str) -> int:
    from gitsync.app.hook import RunOutcome, Wait, record_result, run_coalesced, trim_log, wait_until_safe
    from gitsync.app.options import SyncRequest, client_peers
    from gitsync.app.sync_peer import sync_peer
    from gitsync.errors import GitsyncError

    os.environ["GITSYNC_ACTIVE"] = "1"  # anything we start must not fire the hook again
    store = open_store(directory, create=False)
    trim_log(store)
    peers = client_peers(store)
    if not peers:
        _say(f"{store.root}: no server configured (run `gitsync-notes sync DIR --remote URL` once)")
        return EXIT_OK
    password = os.environ.get("GITSYNC_PASSWORD")  # as `sync` takes it (the hook asks nobody)

    def one_round() -> None:
        _say(f"commit {(store.head() or '-')[:12]}: syncing with {', '.join(p for p, _ in peers)}")
        for peer, remote in peers:
            try:
                sync_peer(store, SyncRequest(peer=peer, remote=remote, password=password), origin="hook")
            except GitsyncError as exc:
                record_result(store, peer, ok=False, summary=str(exc), origin="hook")
                _say(f"{peer}: failed: {exc}")
                continue
            except Exception as exc:  # the hook must go on with the next peer whatever happens
                logger.exception("sync with %s crashed", peer)
                record_result(store, peer, ok=False, summary=f"internal error: {exc!r}", origin="hook")
                continue
            last = _last_result(store, peer)
            _say(f"{peer}: {last}")

    waited, reason = wait_until_safe(store)
    if waited is Wait.OTHER_WAITER:
        _say(f"not syncing yet ({reason}): {waited.value}")
        return EXIT_OK
    if waited is Wait.GAVE_UP:
        _say(f"not syncing: {reason}")
        for peer, _ in peers:
            record_result(store, peer, ok=False, summary=f"not synced: {reason}", origin="hook")
        return EXIT_OK
    outcome, rounds = run_coalesced(store, one_round)
    if outcome is RunOutcome.BUSY:
        _say(outcome.value)
    elif rounds > 1:
        _say(f"done ({rounds} rounds: commits came in during the sync)")
    return EXIT_OK


def _last_result(store: GitStore, peer: str) -> str:
    from gitsync.app.hook import load_results

    result = load_results(store).get(peer)
    if result is None:
        return "no result"
    return ("ok: " if result.ok else "failed: ") + result.summary
