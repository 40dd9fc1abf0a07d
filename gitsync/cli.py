"""The ``gitsync-notes`` command line: parse, call the app layer, print. Only this module prints.

Heavy modules (pygit2, lxml, requests) are imported inside the commands so that
``gitsync-notes --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from gitsync import __version__
from gitsync.model import MODE_NAMES

if TYPE_CHECKING:
    from gitsync.app.common import SyncReport
    from gitsync.store.git import GitStore

__all__ = ["main"]

logger = logging.getLogger("gitsync")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CONFLICT = 0, 1, 2, 3
POLICIES = ("merge", "client-wins", "server-wins", "keep-both", "error")


# ---------------------------------------------------------------------- plumbing
def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr, force=True)


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"gitsync-notes: {message}", err=True)
    sys.exit(code)


def _run(fn: Callable[[], int | None]) -> None:
    """Run a command body, turning our errors into one line and an exit code."""
    from gitsync.errors import GitsyncError

    try:
        code = fn()
    except GitsyncError as exc:
        _fail(str(exc) or type(exc).__name__, getattr(exc, "exit_code", EXIT_ERROR))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was changed by the unfinished sync", EXIT_ERROR)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_ERROR)
    sys.exit(code or EXIT_OK)


def _verbosity(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-v", "--verbose", count=True, help="More output (repeat for debug output).")(f)
    return click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")(f)


def _open_store(directory: str, *, create: bool = True) -> GitStore:
    from gitsync.store.git import GitStore

    return GitStore.open(Path(directory), create=create)


# ---------------------------------------------------------------------- group
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="gitsync-notes")
def main() -> None:
    """Sync a folder of notes, kept in Git, with SyncML peers (client and server)."""


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
@_verbosity
def sync(directory: str, **kw: Any) -> None:
    """Sync the notes in DIRECTORY with a SyncML server."""
    _setup_logging(kw["verbose"], kw["quiet"])
    _run(lambda: _sync(directory, **kw))


def _sync(directory: str, **kw: Any) -> int:
    store = _open_store(directory)
    cfg = store.config_get
    remote = kw["remote"] or cfg("gitsync.remote")
    peer = kw["peer"] or cfg("gitsync.peer")
    if kw["describe"]:
        click.echo(_describe(store, remote, peer))
        return EXIT_OK
    if kw["local"]:
        return _list_local(store, peer or (_peer_name(remote) if remote else None), quiet=kw["quiet"])
    if not remote:
        _fail("no server given: use --remote URL (it is remembered for later syncs)", EXIT_USAGE)
    if not remote.startswith(("http://", "https://")):
        _fail(f"--remote must be an http:// or https:// URL, not {remote!r}", EXIT_USAGE)
    device_id = kw["device_id"] or cfg("gitsync.deviceid") or f"gitsync-notes:{uuid.uuid4().hex[:16]}"
    username = kw["username"] or cfg("gitsync.username")
    password = kw["password"]
    if username and password is None:
        if not sys.stdin.isatty():
            _fail("a password is needed for user " + repr(username) + " (use --password or GITSYNC_PASSWORD)")
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


def render_table(report: SyncReport) -> str:
    """The summary table sync-notes prints (Local/Remote Add/Mod/Del/Err, Conflicts Col/Mrg)."""

    def cell(n: int) -> str:
        return f"{n:>4} " if n else "  -  "

    i, o = report.local, report.remote
    counts = (i.add, i.mod, i.dele, i.err, o.add, o.mod, o.dele, o.err, report.conflicts, report.merged)
    mode = {
        "two-way": "<>",
        "slow": "SS",
        "one-way-from-client": "->",
        "one-way-from-server": "<-",
        "refresh-from-client": "=>",
        "refresh-from-server": "<=",
    }.get(report.mode, "??")
    rule = "+--------+------+" + "-----+" * 10
    groups = "+--------+------+-----------------------+-----------------------+-----------+"
    width = len(rule) - 2
    titles = ("Add", "Mod", "Del", "Err") * 2 + ("Col", "Mrg")
    nloc, nrem = i.total(), o.total()
    parts = []
    if nloc:
        parts.append(f"{nloc} local change{'s' if nloc != 1 else ''}")
    if nrem:
        parts.append(f"{nrem} remote change{'s' if nrem != 1 else ''}")
    footer = (" and ".join(parts) + ".") if parts else "No changes."
    if report.unresolved:
        footer += f" {len(report.unresolved)} conflict(s) left with markers."
    return "\n".join(
        [
            "+" + "-" * width + "+",
            f"|{'Synchronization Summary':^{width}}|",
            groups,
            "|        |      |         Local         |        Remote         | Conflicts |",
            "| Source | Mode |" + "|".join(f" {t} " for t in titles) + "|",
            rule,
            f"|{'notes':>7} |  {mode}  |" + "|".join(cell(n) for n in counts) + "|",
            rule,
            f"|{footer:^{width}}|",
            "+" + "-" * width + "+",
        ]
    )


# ---------------------------------------------------------------------- serve
@main.command()
@click.argument("directory", type=click.Path(file_okay=True, dir_okay=True))
@click.option("-L", "--listen", "port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--users", "users_file", type=click.Path(dir_okay=False), help="File of user:password lines.")
@click.option("-P", "--policy", type=click.Choice(POLICIES), help="Conflict policy (default merge).")
@click.option(
    "--auth", type=click.Choice(["basic", "md5"]), help="Challenge type when credentials are missing."
)
@click.option("-F", "--no-filename-sync", is_flag=True, help="Do not take file names from clients.")
@_verbosity
def serve(directory: str, **kw: Any) -> None:
    """Serve the notes in DIRECTORY to SyncML clients over HTTP."""
    _setup_logging(max(kw["verbose"], 1) if not kw["quiet"] else 0, kw["quiet"])
    _run(lambda: _serve(directory, **kw))


def _serve(directory: str, **kw: Any) -> int:
    from gitsync.app.server import ServerOptions, SyncServer
    from gitsync.errors import ConfigError
    from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5
    from gitsync.sync.conflict import Policy

    store = _open_store(directory)
    users_file = kw["users_file"] or store.config_get("gitsync.usersfile")
    users = _read_users(Path(users_file)) if users_file else None
    policy = Policy(kw["policy"] or store.config_get("gitsync.policy") or "merge")

    def on_report(report: SyncReport) -> None:
        if not kw["quiet"]:
            click.echo(f"session with {report.peer}:\n{render_table(report)}", err=True)

    options = ServerOptions(
        users=users,
        auth_type=AUTH_MD5 if (kw["auth"] or store.config_get("gitsync.auth")) == "md5" else AUTH_BASIC,
        policy=policy,
        filename_sync=not kw["no_filename_sync"],
        on_report=on_report,
    )
    server = SyncServer(store, options)
    from gitsync.transport.serve import serve_forever

    try:
        serve_forever(
            server.wsgi_app(), kw["host"], kw["port"], ready=lambda url: logger.info("serving on %s", url)
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {kw['host']}:{kw['port']}: {exc.strerror or exc}") from exc
    return EXIT_OK


def _read_users(path: Path) -> dict[str, str]:
    from gitsync.errors import ConfigError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read users file {path}: {exc.strerror}") from exc
    users: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip():
            raise ConfigError(f"{path}:{n}: expected user:password")
        users[user.strip()] = password
    return users


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
