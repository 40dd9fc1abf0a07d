"""The server driver's front: HTTP requests → the client sessions they belong to.

Finds or starts the session of each request (by the policy of :mod:`gitsync.app.admission`:
its key, or fresh credentials; the device's SessionID only without users), refuses clients that
failed to log in too often, and answers; one session
is a :class:`~gitsync.app.server_run.ServerRun`.  Each device has its own state ref
(``refs/gitsync/device-<id>``). A session writes nothing until the client's last package
arrives; then, under the repository lock, its changes are committed on top of the branch as it
is *then* (other devices may have synced meanwhile) and the device's state ref moves: all in
one ``finish_sync``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from gitsync.app import admission
from gitsync.app.carryover import MAX_SUSPENDED, Suspended
from gitsync.app.faults import crash_point
from gitsync.app.nonces import NonceStore
from gitsync.app.server_options import STORE_ALIASES, ServerOptions
from gitsync.app.server_run import ServerRun, error_reply
from gitsync.app.sessions import MemoryTable, SessionInfo, SessionTable
from gitsync.app.throttle import LoginThrottle
from gitsync.app.throttle_file import FileStrikes
from gitsync.codec import WBXML_TYPE, decode, encode
from gitsync.errors import CodecError
from gitsync.protocol.constants import St
from gitsync.protocol.messages import Message
from gitsync.store.git import GitStore
from gitsync.transport.wsgi import Request, Response, make_wsgi_app

__all__ = ["STORE_ALIASES", "ServerOptions", "SyncServer"]

logger = logging.getLogger(__name__)

class SyncServer:
    """A SyncML notes server over one Git repository; ``wsgi_app()`` serves it."""

    def __init__(
        self,
        store: GitStore,
        options: ServerOptions | None = None,
        *,
        now: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
        sessions: SessionTable | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.store = store
        self.options = options or ServerOptions()
        self.now = now
        self.rng = rng
        self._table = sessions if sessions is not None else MemoryTable()
        #: failed logins, in a file every worker process shares (see app/throttle.py)
        self.throttle = throttle or LoginThrottle(FileStrikes(store.git_dir / "gitsync" / "logins"))
        self._lock = threading.Lock()
        self.nonces = NonceStore.of_repository(store.git_dir)

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """The WSGI application serving this server."""
        return make_wsgi_app(
            self.handle, max_body=self.options.max_body, trusted_proxies=self.options.trusted_proxies
        )

    # ------------------------------------------------------------------ HTTP
    def handle(self, request: Request) -> Response:
        """Answer one HTTP request carrying one SyncML message."""
        try:  # bounded by the body limit, and outside the lock: a hostile body delays nobody else
            msg, encoding = decode(request.body, request.content_type, max_size=self.options.max_body)
        except CodecError as exc:
            logger.info("rejected a request: %s", exc)
            status = exc.status_hint if exc.status_hint in (400, 413, 415) else 400
            return Response(status=status, body=f"{exc}\n".encode())
        return self.handle_message(request, msg, encoding)

    def handle_message(self, request: Request, msg: Message, encoding: str) -> Response:
        """Answer a request whose body was decoded already (``msg`` in ``encoding``)."""
        externals = {"server": self, "store": self.store, "options": self.options,
                     "users": self.options.users}
        with self._lock, self._table.transaction(externals):
            return self._handle(request, msg, encoding)

    def _handle(self, request: Request, msg: Message, encoding: str) -> Response:
        crash_point("server-recv")
        now, opts = self.now(), self.options
        for gone in self._table.expire(idle=now - opts.session_timeout, stranger=now - opts.stranger_timeout,
                                       now=now, max_strangers=opts.max_strangers):
            logger.info("dropped abandoned session %s", gone[:8])
        found = admission.continued_session(self._table, request, msg, users=opts.users is not None)
        existing = self._table.get(found)
        new = found is None or existing is None or existing.finished
        unproven = new or existing is None or existing.session.user is None
        try:
            wait = self._throttled(request, msg) if unproven else 0
        except OSError as exc:  # the counters cannot be read: no login is checked unthrottled
            logger.error("cannot read the failed-login counters: %s", exc)
            return Response(status=503, body=b"cannot read the login state\n")
        refuse = None
        if wait:
            refuse = St.RETRY_LATER
        elif existing is not None and not new and msg.header.source != existing.device_id:
            refuse = St.FORBIDDEN  # another device with this session's id: refused, the session goes on
        if refuse is not None:
            try:
                body = encode(error_reply(msg.header, refuse, str(wait) if wait else None), encoding)
            except CodecError:
                return Response(status=403, body=b"refused\n")
            retry = (("Retry-After", str(wait)),) if wait else ()
            return Response(body=body, content_type=encoding, headers=retry)
        if new:
            key = uuid.uuid4().hex
            path = request.path.split(";")[0]
            run = ServerRun(self, f"{request.base_url}{path}?sessionid={key}", msg)
            group = admission.address_group(request.remote_addr)
            for old in admission.make_room(self._table, group, opts.max_sessions_per_address,
                                           opts.max_strangers):
                logger.info("dropped session %s: too many not logged in (%s)", old[:8], group)
            info = SessionInfo(now, (msg.header.session_id, msg.header.source), request.remote_addr, group,
                               unauthenticated=opts.users is None)  # then no session ever logs in
            self._table.put(key, run, info, link=opts.users is None)
        else:
            assert found is not None and existing is not None
            key, run = found, existing
        run.touched = self.now()
        run.session.use_wbxml_devinf(encoding == WBXML_TYPE)  # DevInf type and size estimates
        reply = run.handle(msg)
        self._table.touch(key, self.now(), established=admission.established(
            run, users=opts.users is not None, first=new))
        nonce = run.session.new_nonce  # single use: stored before the reply leaves
        if nonce is None and run.session.logged_in_now and self.nonces.get(run.device_id) is None:
            nonce = run.session.nonce  # (basic) so that a stranger's message never reads the state
        if nonce is not None:
            try:
                self.nonces.put(run.device_id, nonce)
            except OSError as exc:
                logger.error("cannot store the next nonce of %s: %s", run.device_id, exc)
                self._table.pop(key)
                return Response(status=503, body=b"cannot store the login state\n")
        self._keep_suspended(run)
        try:
            self._count_auth(request, msg, run)
        except OSError as exc:
            logger.error("cannot count the login of %s: %s", run.device_id, exc)
            if run.session.auth_rejected:  # a failure that cannot be counted is not answered
                self._table.pop(key)
                return Response(status=503, body=b"cannot store the login state\n")
        if run.finished:
            self._table.pop(key)
        try:
            body = encode(reply, encoding)
        except CodecError as exc:  # a field we echo holds what the encoding cannot carry: the peer's fault
            logger.warning("cannot encode the reply to %s: %s", msg.header.source, exc)
            self._table.pop(key)
            return Response(status=400, body=b"message fields a reply cannot carry\n")
        # one plain cookie per session, as pysyncml's own server does: its client (requests 0.14)
        # fails on a second Set-Cookie of the same name
        headers = (("Set-Cookie", f"sessionid={key}"),) if new else ()
        crash_point("server-reply")
        after = functools.partial(self._meanwhile, run) if run.has_spare_work() else None
        return Response(body=body, content_type=encoding, headers=headers, after=after)

    def _keep_suspended(self, run: ServerRun) -> None:
        """Remember where a device's session stands until it commits, for a resume (Alert 225)."""
        table = self._table.suspended
        if run.committed:
            table.pop(run.device_id, None)
        elif run.suspend is not None and self._table.keeps_suspended:
            table.pop(run.device_id, None)
            table[run.device_id] = run.suspend  # newest last
            while len(table) > MAX_SUSPENDED:
                table.pop(next(iter(table)))

    def _meanwhile(self, run: ServerRun) -> None:
        """Work a session can do while the client reads our answer (after it was sent)."""
        crash_point("server-answered")
        with self._lock:
            run.spare_work()

    def suspended_session(self, device_id: str) -> Suspended | None:
        """The interrupted session of ``device_id`` kept for a resume (Alert 225), if any."""
        return self._table.suspended.get(device_id)

    def close(self) -> None:
        """Finish what answered sessions left to do (call before the process exits)."""
        with self._lock:
            self.store.settle()

    def stored_nonce(self, device: str, in_state: Callable[[], str]) -> bytes:
        """The nonce ``device`` must log in with: the one stored at its last login (app/nonces.py),
        else the one its state ref kept (``in_state()``: from before nonces had a file)."""
        stored = self.nonces.get(device)
        if stored is not None:
            return stored
        try:
            return base64.b64decode(in_state(), validate=False)
        except (binascii.Error, ValueError):
            return b""

    # ------------------------------------------------------------------ failed logins
    def _throttled(self, request: Request, msg: Message) -> int:
        """Seconds this client must wait after failed logins (0: check its credentials)."""
        if not self.options.users:
            return 0
        verdict = self.throttle.check(msg.header.source, request.remote_addr, self.now())
        if not verdict.allowed:
            logger.warning("refusing device %r from %s for %d s more: failed logins (%s)",
                           msg.header.source, request.remote_addr, verdict.retry_after, verdict.key)
        return verdict.retry_after

    def _count_auth(self, request: Request, msg: Message, run: ServerRun) -> None:
        if not self.options.users:
            return
        if run.session.auth_rejected:
            self.throttle.failed(msg.header.source, request.remote_addr, self.now())
        elif run.session.user is not None:
            self.throttle.succeeded(msg.header.source, request.remote_addr)
