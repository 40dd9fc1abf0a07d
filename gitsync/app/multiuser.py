"""A repository per user: ``serve ROOT --users FILE --per-user``.

Each user of the users file gets the notes repository ``ROOT/<user>`` (created, as ``serve``
creates a folder, the first time a request names that user), served by a :class:`SyncServer` of
its own whose users table holds *that user only*, with its own sessions, device states, nonces and
lock. A request reaches a user's server by

1. the path: the RespURI we hand out is ``<base>/~<user>/<path>?sessionid=...``, so every later
   message of a session names its user (a path naming a user without a repository gets 404); or
2. the credentials of a first message: the user name of basic credentials, or the LocName of
   MD5 ones (SyncML MD5 carries no name: per-user mode needs the client to send its LocName,
   as SyncEvolution, Funambol and our client do). A user's repository is created by the first
   message with their right credentials (basic or MD5), never before they were checked.

Routing is not authentication: the user's server still checks every credential, against that one
user. So a name in the path or the credentials of someone else leads only to that user's server,
which refuses the stranger; session keys, device ids and SessionIDs are looked up in one user's
tables only, and an id of another user's device or session finds nothing there. A request that
names no known user is answered with a challenge by a server that knows no one (no repository
is created for it).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from gitsync.app.nonces import retry_nonce
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.app.server_run import error_reply
from gitsync.app.sessions import DirTable
from gitsync.app.throttle import LoginThrottle
from gitsync.app.throttle_file import FileStrikes
from gitsync.codec import decode, encode
from gitsync.errors import CodecError, GitsyncError, ProtocolError
from gitsync.protocol.auth import Users, check_cred, parse_basic
from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5, St
from gitsync.protocol.messages import Message, SyncHdr
from gitsync.protocol.passwords import PasswordEntry
from gitsync.protocol.server import ServerConfig, ServerSession
from gitsync.store.git import GitStore
from gitsync.sync.devinf import our_devinf
from gitsync.transport.wsgi import Request, Response, make_wsgi_app

__all__ = ["PerUserServer", "claimed_user", "path_user"]

logger = logging.getLogger(__name__)

_PATH_USER = re.compile(r"/~([^/;?]+)(?=/|;|$)")


def path_user(path: str) -> str | None:
    """The user a request path names (``/~alice/...``), or ``None``."""
    m = _PATH_USER.match(path)
    return m.group(1) if m else None


def claimed_user(hdr: SyncHdr) -> str | None:
    """The user the credentials of ``hdr`` claim to be (not checked): basic's name, MD5's LocName."""
    cred = hdr.cred
    if cred is None:
        return None
    ctype = (cred.type or AUTH_BASIC).strip().lower()
    if ctype == AUTH_BASIC:
        parsed = parse_basic(cred)
        return parsed[0] if parsed else None
    if ctype == AUTH_MD5:
        return hdr.source_name or None
    return None


class PerUserServer:
    """Routes each request to its user's :class:`SyncServer` (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        users: Users,
        options: ServerOptions | None = None,
        *,
        shared_sessions: bool = False,
    ) -> None:
        self.root = root
        self.users = dict(users)
        self.options = options or ServerOptions()
        self.shared_sessions = shared_sessions  # sessions in files, for several worker processes
        self._servers: dict[str, SyncServer] = {}
        self._lock = threading.Lock()
        #: failed logins of every user, also of users without a repository yet (a user name cannot
        #: start with a dot, so this is never a user's folder)
        self.throttle = LoginThrottle(FileStrikes(root / ".gitsync-logins"))

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        return make_wsgi_app(
            self.handle, max_body=self.options.max_body, trusted_proxies=self.options.trusted_proxies
        )

    def handle(self, request: Request) -> Response:
        try:
            msg, encoding = decode(request.body, request.content_type, max_size=self.options.max_body)
        except CodecError as exc:
            logger.info("rejected a request: %s", exc)
            status = exc.status_hint if exc.status_hint in (400, 413, 415) else 400
            return Response(status=status, body=f"{exc}\n".encode())
        named = path_user(request.path)
        if named is not None:  # a RespURI we handed out: that user's repository exists
            if named not in self.users or not (self.root / named).is_dir():
                return Response(status=404, body=b"no such user\n")
            user = named
        else:
            claim = claimed_user(msg.header)
            try:
                refused = self._throttled(request, msg, encoding)
                if refused is not None:
                    return refused
                if claim is None or claim not in self.users or not self._may_create(claim, msg.header):
                    if msg.header.cred is not None:
                        self.throttle.failed(msg.header.source, request.remote_addr, time.time())
                    return self._challenge(msg, encoding)
            except OSError as exc:  # the failed-login counters cannot be read or written
                logger.error("cannot use the failed-login counters: %s", exc)
                return Response(status=503, body=b"cannot read the login state\n")
            user = claim
            request = dataclasses.replace(request, path=f"/~{user}{request.path}")
        return self._server(user).handle_message(request, msg, encoding)

    def _throttled(self, request: Request, msg: Message, encoding: str) -> Response | None:
        """417 and the seconds to wait for a client that failed to log in too often (app/throttle.py)."""
        verdict = self.throttle.check(msg.header.source, request.remote_addr, time.time())
        if verdict.allowed:
            return None
        try:
            body = encode(error_reply(msg.header, St.RETRY_LATER, str(verdict.retry_after)), encoding)
        except CodecError:
            return Response(status=403, body=b"refused\n")
        retry = (("Retry-After", str(verdict.retry_after)),)
        return Response(body=body, content_type=encoding, headers=retry)

    def _may_create(self, user: str, hdr: SyncHdr) -> bool:
        """Whether a message may reach ``user``'s repository: always once it exists; before, only
        with the right credentials.  A device of a user without a repository has no nonce yet:
        its MD5 digest is over the empty nonce, or over the one our challenge derived from it."""
        if (self.root / user).is_dir():
            return True
        cred, one = hdr.cred, {user: self.users[user]}
        nonces = [b""]
        if cred is not None and (cred.type or AUTH_BASIC).strip().lower() == AUTH_MD5:
            nonces.append(retry_nonce(hdr.source, b""))
        return any(check_cred(cred, one, nonce=n, username_hint=user) == user for n in nonces)

    def _server(self, user: str) -> SyncServer:
        with self._lock:
            server = self._servers.get(user)
            if server is None:
                folder = self.root / user
                if not folder.exists():
                    folder.mkdir(mode=0o700)
                    logger.info("created %s for user %s", folder, user)
                store = GitStore.open(folder, create=True)
                entry: PasswordEntry | str = self.users[user]
                options = dataclasses.replace(self.options, users={user: entry})
                sessions = DirTable(store.git_dir / "gitsync" / "sessions") if self.shared_sessions else None
                server = SyncServer(store, options, sessions=sessions, throttle=self.throttle)
                self._servers[user] = server
            return server

    def _challenge(self, msg: Message, encoding: str) -> Response:
        """401/407 and a challenge, from a session that knows no user; nothing is kept."""
        session = ServerSession(
            ServerConfig(
                devinf=our_devinf(self.options.server_id, server=True),
                users={},
                auth_type=self.options.auth_type,
                store_uris=self.options.store_uris,
                retry_nonce=retry_nonce(msg.header.source, b""),  # what _may_create accepts
            )
        )
        try:
            session.receive(msg)
            reply = session.next_message()
            body = encode(reply, encoding)
        except (ProtocolError, GitsyncError):
            return Response(status=403, body=b"unknown user\n")
        logger.warning("refused device %r: no known user named", msg.header.source)
        return Response(body=body, content_type=encoding)

    def close(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
        for server in servers:
            server.close()
