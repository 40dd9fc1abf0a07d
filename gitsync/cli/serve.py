"""``gitsync-notes serve``: the SyncML server over HTTP."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gitsync.cli.base import (
    EXIT_OK,
    POLICIES,
    Folder,
    create_folder,
    main,
    open_store,
    run,
    setup_logging,
    verbosity,
)
from gitsync.cli.render import render_table

if TYPE_CHECKING:
    from gitsync.sync.report import SyncReport

logger = logging.getLogger("gitsync")


# ---------------------------------------------------------------------- serve
@main.command()
@click.argument("directory", type=Folder(exists=False))
@click.option("-L", "--listen", "port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--users",
    "users_file",
    type=click.Path(dir_okay=False),
    help="Users file: name:hash lines as 'gitsync-notes user add' or htpasswd -B write "
    "(default: the file named by git config gitsync.usersfile).",
)
@click.option("-P", "--policy", type=click.Choice(POLICIES), help="Conflict policy (default merge).")
@click.option(
    "--auth", type=click.Choice(["basic", "md5"]), help="Challenge type when credentials are missing."
)
@click.option(
    "--max-obj-size",
    type=click.IntRange(min=1024),
    help="Largest note we accept (bytes, default 64 MiB); bigger ones are refused (413) and reported.",
)
@click.option(
    "--max-msg-size",
    type=click.IntRange(min=1024, max=16 * 1024 * 1024),
    help="Largest message a client may send us (bytes, default 512 KiB; our MaxMsgSize): bigger "
    "packages come in several messages.",
)
@click.option("-F", "--no-filename-sync", is_flag=True, help="Do not take file names from clients.")
@click.option(
    "--certificate",
    type=click.Path(dir_okay=False),
    help="Serve HTTPS with this PEM certificate (chain after it; TLS 1.2 or newer).",
)
@click.option("--key", type=click.Path(dir_okay=False), help="The certificate's PEM private key.")
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="ADDR",
    help="A reverse proxy (address or network) whose X-Forwarded-For/-Proto are believed; repeatable.",
)
@click.option(
    "--per-user",
    is_flag=True,
    help="DIRECTORY is a root: each user of --users gets the repository DIRECTORY/<user>.",
)
@click.option("--max-connections", type=click.IntRange(1), default=64, show_default=True,
              help="Connections open at once.")
@click.option("--max-connections-per-address", type=click.IntRange(1), default=16, show_default=True,
              help="Connections open at once from one client address.")
@click.option("--max-body", type=click.IntRange(1024), default=16 * 1024 * 1024, show_default=True,
              help="Largest request body in bytes (also bounds what decoding one may cost).")
@click.option("--request-timeout", type=click.FloatRange(1), default=60.0, show_default=True,
              help="Seconds for a whole request to arrive.")
@click.option("--idle-timeout", type=click.FloatRange(0.5), default=15.0, show_default=True,
              help="Seconds a connection may stay silent (also between two requests).")
@click.option("--max-sessions-per-address", type=click.IntRange(1), default=32, show_default=True,
              help="Sessions not logged in yet (with no users: all sessions) from one client address "
              "(IPv6: one /64); a new one beyond drops the one idle longest. Sessions not logged in "
              "expire after 2 minutes idle, others after 15.")
@verbosity
def serve(directory: str, **kw: Any) -> None:
    """Serve the notes in DIRECTORY to SyncML clients over HTTP.

    A missing DIRECTORY is created (its parent must exist) unless it would be inside another Git
    repository; a sub-folder of a notes folder that synced before means that notes folder.
    """
    setup_logging(max(kw["verbose"], 1) if not kw["quiet"] else 0, kw["quiet"])
    run(lambda: _serve(directory, **kw))


def _serve(directory: str, **kw: Any) -> int:
    """Check what can fail first (the folder, the users file, the port), then touch the repository."""
    from gitsync.app.server import ServerOptions, SyncServer
    from gitsync.app.wsgi import read_users
    from gitsync.errors import ConfigError
    from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5
    from gitsync.protocol.session import DEFAULT_MAX_OBJ_SIZE
    from gitsync.sync.conflict import Policy
    from gitsync.transport.proxy import parse_trusted
    from gitsync.transport.serve import ServerLimits, make_http_server
    from gitsync.transport.tls import server_context

    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"notes folder {folder} is not a folder")
    if kw["per_user"] and not kw["users_file"]:
        raise ConfigError("--per-user needs --users FILE")
    users = read_users(Path(kw["users_file"]), per_user=kw["per_user"]) if kw["users_file"] else None
    if kw["key"] and not kw["certificate"]:
        raise ConfigError("--key needs --certificate")
    tls = server_context(kw["certificate"], kw["key"]) if kw["certificate"] else None
    try:
        kw["trusted"] = parse_trusted(kw["trusted_proxies"])
    except ValueError as exc:
        raise ConfigError(f"--trusted-proxy: {exc}") from exc
    apps: list[Callable[..., Iterable[bytes]]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return apps[0](environ, start_response)

    try:
        limits = ServerLimits(
            max_connections=kw["max_connections"],
            max_connections_per_address=kw["max_connections_per_address"],
            max_body=kw["max_body"],
            request_timeout=kw["request_timeout"],
            idle_timeout=kw["idle_timeout"],
        )
        httpd = make_http_server(app, kw["host"], kw["port"], ssl_context=tls, limits=limits)
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        raise ConfigError(
            f"cannot listen on {kw['host']}:{kw['port']}: {exc.strerror or exc}",
            hint="is another server listening there? choose another --listen PORT." if busy else None,
        ) from exc
    try:
        create_folder(directory, mode=0o700 if kw["per_user"] else 0o777)  # by FOLDER_RULE
        if kw["per_user"]:
            return _serve_per_user(folder, users, httpd, apps, tls is not None, **kw)
        store = open_store(directory, top_level=True)
        if users is None and (named := store.config_get("gitsync.usersfile")):
            users = read_users(Path(named))  # users from the repository's git config
        policy = Policy(kw["policy"] or store.config_get("gitsync.policy") or "merge")

        def on_report(report: SyncReport) -> None:
            if not kw["quiet"]:
                click.echo(f"session with {report.peer}:\n{render_table(report)}", err=True)
            for line in report.problems():
                click.echo(f"gitsync-notes: session with {report.peer}: {line}", err=True)

        options = ServerOptions(
            users=users,
            auth_type=AUTH_MD5 if (kw["auth"] or store.config_get("gitsync.auth")) == "md5" else AUTH_BASIC,
            policy=policy,
            filename_sync=not kw["no_filename_sync"],
            on_report=on_report,
            max_obj_size=kw["max_obj_size"] or DEFAULT_MAX_OBJ_SIZE,
            trusted_proxies=kw["trusted"],
            max_body=kw["max_body"],
            max_sessions_per_address=kw["max_sessions_per_address"],
            **({"max_msg_size": kw["max_msg_size"]} if kw["max_msg_size"] else {}),
        )
        server = SyncServer(store, options)
        apps.append(server.wsgi_app())
        scheme = "https" if tls is not None else "http"
        _serve_until_stopped(httpd, f"{scheme}://{kw['host']}:{httpd.server_port}/")
        server.close()  # a session answered a moment ago may still be writing its notes
    finally:
        httpd.server_close()
    return EXIT_OK


def _serve_per_user(
    folder: Path, users: Any, httpd: Any, apps: list[Callable[..., Iterable[bytes]]], https: bool, **kw: Any
) -> int:
    """``serve ROOT --per-user``: the repository ROOT/<user> for each user (app/multiuser.py)."""
    from gitsync.app.multiuser import PerUserServer
    from gitsync.app.server import ServerOptions
    from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5
    from gitsync.protocol.session import DEFAULT_MAX_OBJ_SIZE
    from gitsync.sync.conflict import Policy

    def on_report(report: SyncReport) -> None:
        if not kw["quiet"]:
            click.echo(f"session with {report.peer}:\n{render_table(report)}", err=True)

    options = ServerOptions(
        auth_type=AUTH_MD5 if kw["auth"] == "md5" else AUTH_BASIC,
        policy=Policy(kw["policy"] or "merge"),
        filename_sync=not kw["no_filename_sync"],
        on_report=on_report,
        trusted_proxies=kw["trusted"],
        max_body=kw["max_body"],
        max_obj_size=kw["max_obj_size"] or DEFAULT_MAX_OBJ_SIZE,
        max_sessions_per_address=kw["max_sessions_per_address"],
        **({"max_msg_size": kw["max_msg_size"]} if kw["max_msg_size"] else {}),
    )
    server = PerUserServer(folder, users, options)
    apps.append(server.wsgi_app())
    _serve_until_stopped(httpd, f"{'https' if https else 'http'}://{kw['host']}:{httpd.server_port}/")
    server.close()
    return EXIT_OK


def _serve_until_stopped(httpd: Any, url: str) -> None:
    """Serve until SIGINT or SIGTERM."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    logger.info("serving on %s", url)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        logger.info("stopping")
