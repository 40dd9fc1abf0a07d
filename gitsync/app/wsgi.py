"""The server as a WSGI application for a pre-fork server (gunicorn, uWSGI) with several workers.

    gunicorn -w 4 -b 0.0.0.0:8080 'gitsync.app.wsgi:make_app("/srv/notes")'
    GITSYNC_NOTES_DIR=/srv/notes gunicorn -w 4 gitsync.app.wsgi:application

The requests of one SyncML session may reach different worker processes, so the sessions live in
``.git/gitsync/sessions`` (:class:`~gitsync.app.sessions.DirTable`), not in a worker's memory: a
request loads its session, and writes it back before the next request of any worker may read it.
Each worker opens its own :class:`~gitsync.store.git.GitStore` on its first request (never before
the fork: libgit2 handles must not cross it); the repository lock keeps their commits apart.

Settings come from the arguments, else the environment (``GITSYNC_NOTES_DIR``,
``GITSYNC_USERS_FILE``; ``GITSYNC_PER_USER=1`` for a repository per user, with ``GITSYNC_AUTH=md5``
for its challenge type; ``GITSYNC_TRUSTED_PROXIES`` for the reverse proxies whose forwarded headers
count; ``GITSYNC_MAX_SESSIONS_PER_ADDRESS`` as ``serve --max-sessions-per-address``), else the
repository's git config (``gitsync.usersfile``, ``gitsync.policy``,
``gitsync.auth``) as for ``gitsync-notes serve``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gitsync.app.users import read_users
from gitsync.errors import ConfigError

__all__ = ["application", "make_app", "read_users"]

WsgiApp = Callable[..., Iterable[bytes]]


def make_app(
    directory: str | os.PathLike[str] | None = None,
    *,
    users_file: str | None = None,
    per_user: bool | None = None,
) -> WsgiApp:
    """A WSGI app serving the notes folder ``directory``, safe to run in several processes.

    With ``per_user`` (or ``GITSYNC_PER_USER=1``) ``directory`` is a root holding one repository
    per user of the users file, as ``serve ROOT --per-user`` (see :mod:`gitsync.app.multiuser`).
    """
    folder = directory if directory is not None else os.environ.get("GITSYNC_NOTES_DIR")
    if not folder:
        raise ConfigError("no notes folder: pass make_app(DIR) or set GITSYNC_NOTES_DIR")
    users_path = users_file or os.environ.get("GITSYNC_USERS_FILE")
    if per_user is None:
        per_user = os.environ.get("GITSYNC_PER_USER", "") in ("1", "true", "yes")
    from gitsync.transport.proxy import parse_trusted

    try:
        trusted = parse_trusted([os.environ.get("GITSYNC_TRUSTED_PROXIES", "")])
    except ValueError as exc:
        raise ConfigError(f"GITSYNC_TRUSTED_PROXIES: {exc}") from exc
    try:
        cap = int(os.environ.get("GITSYNC_MAX_SESSIONS_PER_ADDRESS", "32"))
    except ValueError as exc:
        raise ConfigError(f"GITSYNC_MAX_SESSIONS_PER_ADDRESS: {exc}") from exc
    if cap < 1:
        raise ConfigError("GITSYNC_MAX_SESSIONS_PER_ADDRESS must be at least 1")
    if per_user and not users_path:
        raise ConfigError("one repository per user needs a users file (users_file= or GITSYNC_USERS_FILE)")
    state: dict[str, Any] = {}
    lock = threading.Lock()

    def build() -> WsgiApp:
        from gitsync.app.server import ServerOptions, SyncServer
        from gitsync.app.sessions import DirTable
        from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5
        from gitsync.store.git import GitStore
        from gitsync.sync.conflict import Policy

        if per_user:
            from gitsync.app.multiuser import PerUserServer

            assert users_path is not None
            root = Path(folder)
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            users = read_users(Path(users_path), per_user=True)
            auth = AUTH_MD5 if os.environ.get("GITSYNC_AUTH") == "md5" else AUTH_BASIC
            options = ServerOptions(auth_type=auth, trusted_proxies=trusted, max_sessions_per_address=cap)
            return PerUserServer(root, users, options, shared_sessions=True).wsgi_app()
        store = GitStore.open(Path(folder))
        path = users_path or store.config_get("gitsync.usersfile")
        options = ServerOptions(
            users=read_users(Path(path)) if path else None,
            auth_type=AUTH_MD5 if store.config_get("gitsync.auth") == "md5" else AUTH_BASIC,
            policy=Policy(store.config_get("gitsync.policy") or "merge"),
            trusted_proxies=trusted,
            max_sessions_per_address=cap,
        )
        server = SyncServer(store, options, sessions=DirTable(store.git_dir / "gitsync" / "sessions"))
        return server.wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        pid = os.getpid()
        with lock:
            if state.get("pid") != pid:  # first request in this (forked) process
                state["app"], state["pid"] = build(), pid
            inner: WsgiApp = state["app"]
        return inner(environ, start_response)

    return app


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``gitsync.app.wsgi:application``: the folder comes from ``$GITSYNC_NOTES_DIR``."""
    global _default
    if _default is None:
        _default = make_app()
    return _default(environ, start_response)


_default: WsgiApp | None = None
