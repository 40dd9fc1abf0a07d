"""``gitsync-notes peer list|forget DIR``: the servers and devices a notes folder syncs with.

A typo in ``--remote`` leaves a peer nobody wants (its failed result in ``status``, its URL in
the config); ``forget`` removes everything the repository keeps about a peer (state ref and its
history, ``gitsync.<peer>.*`` config, the default server if it was that one, its last result,
a device's MD5 login nonce)
and never a note.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from gitsync.cli.base import EXIT_OK, EXIT_USAGE, Folder, fail, main, open_store, run

if TYPE_CHECKING:
    from gitsync.store.git import GitStore


@main.group("peer")
def peer_group() -> None:
    """List the peers of a notes folder, or forget one (e.g. a mistyped server URL)."""


def _known(store: GitStore) -> tuple[list[str], dict[str, str]]:
    from gitsync.app.hook import load_results
    from gitsync.app.options import client_peers

    urls = dict(client_peers(store))
    return list(dict.fromkeys([*urls, *store.peers(), *load_results(store)])), urls


@peer_group.command("list")
@click.argument("directory", type=Folder())
def list_cmd(directory: str) -> None:
    """One line per peer of DIRECTORY: name, server URL (a client's peers), last sync, last attempt."""

    def body() -> int:
        from gitsync.app.hook import load_results

        store = open_store(directory, create=False)
        names, urls = _known(store)
        results = load_results(store)
        if not names:
            click.echo("no peers yet")
        for name in names:
            snap = store.state_load(name)
            last = "never synced"
            if snap is not None:
                from gitsync.cli.log import _time, parse_message

                last = f"last sync {_time(parse_message(name, snap.message, snap.head).when)}"
            result = results.get(name)
            attempt = ""
            if result is not None:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(result.when)) + "Z"
                attempt = f"; last attempt {when} {'ok' if result.ok else 'FAILED'}"
            click.echo(f"{name}  {urls.get(name, '(device)' if name.startswith('device-') else '-')}  "
                       f"{last}{attempt}")
        return EXIT_OK

    run(body)


@peer_group.command("forget")
@click.argument("directory", type=Folder())
@click.argument("name")
def forget_cmd(directory: str, name: str) -> None:
    """Forget the peer NAME of DIRECTORY: its sync state, settings and last result (no note changes).

    A server forgotten and synced again later starts with a slow sync; a device forgotten by the
    server does the same on its next sync.
    """

    def body() -> int:
        from gitsync.app.hook import forget_result
        from gitsync.app.nonces import NonceStore

        store = open_store(directory, create=False)
        names, _ = _known(store)
        if name not in names:
            fail(f"no peer named {name!r} in {store.root} (peers: {', '.join(names) or 'none'})", EXIT_USAGE)
        with store.lock(wait=5.0):
            gone = store.forget_peer(name)
            if forget_result(store, name):
                gone.append("its last result")
            if NonceStore.of_repository(store.git_dir).forget(name):  # a device the server served
                gone.append("its login nonce")
        click.echo(f"forgot {name}: {', '.join(gone) or 'nothing was left'}")
        return EXIT_OK

    run(body)
