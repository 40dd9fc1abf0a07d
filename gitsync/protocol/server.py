"""The server side of a SyncML session (packages 2, 4 and 6), sans I/O.

One :class:`ServerSession` lives across the HTTP requests of one client session. The
driver decodes each request, calls ``receive``, answers the events, and encodes
``next_message()`` as the HTTP response. Accepted orders: a DevInf-only first message
(pysyncml), or Put/Get/Alert together (SyncEvolution), with or without credentials.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gitsync.errors import LocalProtocolError
from gitsync.model import SyncMode
from gitsync.protocol.auth import Users, check_cred
from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5, SYNC_ALERTS, St, ver_proto
from gitsync.protocol.events import (
    Acknowledged,
    ChangesReceived,
    Event,
    ItemResult,
    MapReceived,
    OutChange,
    SessionComplete,
    SyncRequested,
)
from gitsync.protocol.messages import (
    Alert,
    Anchor,
    Chal,
    DevInf,
    Item,
    Map,
    Message,
    Meta,
    Status,
    Sync,
    SyncHdr,
)
from gitsync.protocol.phases import Phase, Role, Trigger
from gitsync.protocol.profiles import profile_for
from gitsync.protocol.session import DEFAULT_MAX_OBJ_SIZE, SessionBase, alert_next_message

__all__ = ["ServerConfig", "ServerSession"]

logger = logging.getLogger(__name__)

_MAX_AUTH_FAILURES = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """What the server session needs: our DevInf, stores, users and nonces."""

    devinf: DevInf
    resp_uri: str | None = None  # where the client must send its next messages
    store_uris: frozenset[str] = frozenset({"notes"})  # accepted datastore names (normalised)
    users: Users | None = None  # None: no authentication required
    auth_type: str = AUTH_BASIC  # challenge type when credentials are missing
    nonce: bytes = b""  # the nonce this device must use now (MD5)
    next_nonce: bytes = b"nonce"  # the one we hand out with an accepted login, for next time
    #: the one a refused login is challenged with (default ``next_nonce``): an application that
    #: derives it from ``nonce`` can accept it in a later session without having stored anything
    retry_nonce: bytes | None = None
    peer_devinf: DevInf | None = None  # cached from an earlier session
    max_msg_size: int = 2_000_000
    max_obj_size: int | None = DEFAULT_MAX_OBJ_SIZE  # None: no limit
    extra: Mapping[str, str] = field(default_factory=dict)


def normalise_uri(uri: str) -> str:
    """Datastore URIs compare without ``./``, trailing ``/`` or case (``./Notes`` = ``notes``)."""
    uri = uri.strip()
    while uri.startswith("./"):
        uri = uri[2:]
    return uri.strip("/").lower()


def _is_md5(hdr: SyncHdr) -> bool:
    return hdr.cred is not None and (hdr.cred.type or "").strip().lower() == AUTH_MD5


class ServerSession(SessionBase):
    """One sync session as a SyncML server."""

    role = Role.SERVER

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(ver_dtd="1.2", session_id="", local_uri="notes")
        self.config = config
        self.max_obj_size = config.max_obj_size
        self.device_id = ""
        self.user: str | None = None
        self.mode: SyncMode | None = None
        self.client_anchor = Anchor()
        self.peer_devinf = config.peer_devinf
        self.profile = profile_for(config.peer_devinf)
        self._nonce = config.nonce
        self._auth_failures = 0
        self._client_url = ""
        self._reply_hdr: SyncHdr | None = None
        self._alert: Alert | None = None
        self._alert_msg_id = 0
        self._pkg3_final = False
        self._reply_final = True
        self._auth_chal: Chal | None = None
        self._want_devinf = False

    # ---------------------------------------------------------------- receiving
    def _receive(self, msg: Message) -> list[Event]:
        hdr = msg.header
        if not hdr.source.strip():
            raise self._fail("SyncHdr has no Source LocURI (the device id)", 400)
        if not self.device_id:
            self.device_id = hdr.source
            self.session_id = hdr.session_id
            self.ver_dtd = hdr.ver_dtd if hdr.ver_dtd in ("1.1", "1.2") else "1.2"
            self._client_url = hdr.target
        elif hdr.source != self.device_id:
            raise self._fail("message from another device in this session", St.FORBIDDEN)
        elif hdr.session_id != self.session_id:
            raise self._fail("message of another SessionID in this session", St.FORBIDDEN)
        if hdr.meta and hdr.meta.max_msg_size:
            self.peer_max_msg_size = hdr.meta.max_msg_size
        if hdr.meta and hdr.meta.max_obj_size:
            self.peer_max_obj_size = hdr.meta.max_obj_size
        self._reply_hdr = hdr
        self._statuses = []
        events: list[Event] = []

        if not self._authenticate(hdr):
            return events
        acks: list[tuple[OutChange, int]] = []
        maps: list[tuple[str, str]] = []
        wants_next = False
        for cmd in msg.commands:
            if isinstance(cmd, Status):
                if cmd.cmd in ("Add", "Replace", "Delete"):
                    ack = self._acknowledge(cmd)
                    if ack is not None:
                        acks.append(ack)
                continue
            if self._devinf_command(hdr.msg_id, cmd, self.config.devinf, events):
                pass
            elif isinstance(cmd, Alert):
                if cmd.code == 222:
                    wants_next = True
                    self._status(hdr.msg_id, cmd, St.OK)
                elif cmd.code == 224:
                    # suspend (OMA DS 1.2): the session ends here; the client resumes it with 225
                    self._status(hdr.msg_id, cmd, St.OK)
                    self.suspended = True
                elif cmd.code in SYNC_ALERTS and self.phase is Phase.INIT:
                    self._on_sync_alert(hdr, cmd, events)
                elif cmd.code in SYNC_ALERTS:
                    self._status(hdr.msg_id, cmd, St.NOT_ALLOWED)
                else:
                    self._status(hdr.msg_id, cmd, St.NOT_SUPPORTED)
            elif isinstance(cmd, Sync):
                ok = self.phase in (Phase.ALERTED, Phase.RECEIVING) and self._store_ok(cmd.target)
                allowed = ok and (self.mode is None or self.mode.client_sends or not cmd.commands)
                self._collect_sync(hdr.msg_id, cmd, server_side=True, allowed=allowed)
            elif isinstance(cmd, Map):
                self._status(hdr.msg_id, cmd, St.OK)
                maps.extend((m.source, m.target) for m in cmd.items)
            else:
                self._status(hdr.msg_id, cmd, St.NOT_SUPPORTED)
        acks.extend(self._take_skipped())
        events.extend(self._take_notices())
        if acks:
            events.append(Acknowledged(results=tuple(acks)))
        if maps:
            events.append(MapReceived(pairs=tuple(maps)))
        self._header_status(hdr, St.AUTH_ACCEPTED if self._just_authed else St.OK, self._auth_chal)
        self._auth_chal = None
        return self._advance(msg, events, wants_next)

    #: the client suspended the session (Alert 224): it ends without committing anything
    suspended = False

    def _advance(self, msg: Message, events: list[Event], wants_next: bool) -> list[Event]:
        if self.suspended:
            self._reply_final = True
            self._go(Trigger.FAIL)
            return events
        if self.phase is Phase.INIT:
            self._reply_final = True
            return events  # DevInf-only exchange: answer Results, keep the session
        if self.phase is Phase.WAIT_ACCEPT:
            return events
        if self.phase is Phase.ALERTED and self._queue and wants_next:
            return events  # the client asks for the rest of package 2
        if self.phase in (Phase.ALERTED, Phase.RECEIVING):
            self._go(Trigger.CHANGES_IN)
            self._pkg3_final = msg.final
            events.append(ChangesReceived(changes=tuple(self._pending.changes), final=msg.final))
            return events
        if self.phase is Phase.SENDING:
            return events  # the client acknowledged a chunk of package 4 (and asked for more)
        if self.phase is Phase.MAPPING:
            if msg.final:
                self._go(Trigger.END)
                events.append(SessionComplete())
            self._reply_final = msg.final
            return events
        raise self._fail(f"unexpected message in phase {self.phase.value}")

    # ---------------------------------------------------------------- auth
    _just_authed = False
    _auth_nonce = b""
    #: whether the last message was refused for wrong credentials (for the server's failure counter)
    auth_rejected = False

    def _authenticate(self, hdr: SyncHdr) -> bool:
        self._just_authed = False
        self.auth_rejected = False
        self.new_nonce = None
        users = self.config.users
        if users is None:
            return True
        if self.user is not None:
            # credentials are needed once per session; any a later message carries must still be valid
            hint = hdr.source_name
            nonces = (self._auth_nonce, self._nonce)
            if hdr.cred is None or any(
                check_cred(hdr.cred, users, nonce=n, username_hint=hint) == self.user for n in nonces
            ):
                return True
            # wrong credentials in a session that logged in: only its key reaches it, so its own
            # client (or one that stole the key) sent them -- refused, and the session ends here
            self.user = None
            self._auth_failures = _MAX_AUTH_FAILURES - 1
            return self._refuse(hdr)
        user = check_cred(hdr.cred, users, nonce=self._nonce, username_hint=hdr.source_name)
        retry = self.config.retry_nonce
        if user is None and retry is not None and retry != self._nonce and _is_md5(hdr):
            user = check_cred(hdr.cred, users, nonce=retry, username_hint=hdr.source_name)
        chal_type = self._chal_type(hdr)
        if user is not None and self._auth_failures < _MAX_AUTH_FAILURES:
            self.user = user
            self._auth_nonce = self._nonce
            self._just_authed = True
            if chal_type == AUTH_MD5:
                self._auth_chal = self._challenge(AUTH_MD5, accepted=True)
                self.new_nonce = self._nonce
            return True
        return self._refuse(hdr)

    def _chal_type(self, hdr: SyncHdr) -> str:
        chal_type = hdr.cred.type if hdr.cred and hdr.cred.type in (AUTH_BASIC, AUTH_MD5) else None
        return chal_type or self.config.auth_type

    def _refuse(self, hdr: SyncHdr) -> bool:
        """Answer this message with 401/407 and a challenge only; the third refusal ends the session."""
        self._auth_failures += 1
        self.auth_rejected = hdr.cred is not None
        code = St.INVALID_CREDENTIALS if hdr.cred is not None else St.MISSING_CREDENTIALS
        logger.warning("authentication failed for device %r (status %d)", hdr.source, code)
        self._statuses = []
        self._header_status(hdr, code, self._challenge(self._chal_type(hdr)))
        if self._auth_failures >= _MAX_AUTH_FAILURES:
            self._go(Trigger.FAIL)
        self._reply_final = True
        return False

    def _challenge(self, chal_type: str, *, accepted: bool = False) -> Chal:
        if chal_type == AUTH_MD5:
            retry = self.config.retry_nonce
            self._nonce = self.config.next_nonce if accepted or retry is None else retry
            return Chal(
                type=AUTH_MD5,
                format="b64",
                next_nonce=base64.b64encode(self._nonce).decode("ascii"),
            )
        return Chal(type=AUTH_BASIC, format="b64")

    #: the nonce handed out with the login this message made (MD5): the application stores it
    #: before the reply leaves, so the credentials just accepted are never accepted again
    new_nonce: bytes | None = None

    @property
    def logged_in_now(self) -> bool:
        """Whether the last message logged this session in."""
        return self._just_authed

    def proves_user(self, hdr: SyncHdr) -> bool:
        """Whether ``hdr`` carries credentials that prove this session's (logged-in) user."""
        users = self.config.users
        if users is None or self.user is None or hdr.cred is None:
            return False
        return any(
            check_cred(hdr.cred, users, nonce=n, username_hint=hdr.source_name) == self.user
            for n in (self._auth_nonce, self._nonce)
        )

    @property
    def authenticated(self) -> bool:
        """Whether the client proved who it is (always true without configured users)."""
        return self.config.users is None or self.user is not None

    @property
    def nonce(self) -> bytes:
        """The nonce the client must use next (store it per device)."""
        return self._nonce

    # ---------------------------------------------------------------- alert
    def _store_ok(self, uri: str | None) -> bool:
        return uri is not None and normalise_uri(uri) in self.config.store_uris

    def _on_sync_alert(self, hdr: SyncHdr, alert: Alert, events: list[Event]) -> None:
        item = alert.items[0] if alert.items else Item()
        target = item.target or ""
        if not self._store_ok(target):
            self._status(hdr.msg_id, alert, St.NOT_FOUND)
            return
        self._alert = alert
        self._alert_msg_id = hdr.msg_id
        self.remote_uri = item.source or "notes"
        self.local_uri = target
        anchor = item.meta.anchor if item.meta and item.meta.anchor else Anchor()
        self.client_anchor = anchor
        code = 200 if alert.code == 225 else alert.code
        self._go(Trigger.SYNC_ALERT)
        events.append(
            SyncRequested(
                mode=SyncMode(code),
                anchor=anchor,
                device_id=self.device_id,
                source_uri=self.remote_uri,
                target_uri=target,
                resume=alert.code == 225,
            )
        )

    def accept_sync(self, *, mode: SyncMode, anchor: Anchor, refresh_required: bool = False) -> None:
        """Answer :class:`SyncRequested`: the mode we run (201 when the anchors disagree)
        and our anchors. ``refresh_required`` sends 508 — or 200 to peers that die on 508."""
        self._check(Trigger.ACCEPT)
        assert self._alert is not None
        self.mode = mode
        code = St.OK
        if refresh_required and self.profile.accepts_508:
            code = St.REFRESH_REQUIRED
        echo = Item(data=Anchor(next=self.client_anchor.next))
        self._status(self._alert_msg_id, self._alert, code, items=(echo,))
        # our Status for the Alert must come right after the SyncHdr status
        at = 1 if self._statuses and self._statuses[0].cmd_ref == 0 else 0
        self._statuses.insert(at, self._statuses.pop())
        self._queue.append(
            Alert(
                cmd_id=0,
                code=int(mode),
                items=(Item(target=self.remote_uri, source=self.local_uri, meta=Meta(anchor=anchor)),),
            )
        )
        if self.peer_devinf is None:
            self._queue.append(self._put_devinf(self.config.devinf))
            self._queue.append(self._get_devinf())
        self._go(Trigger.ACCEPT)

    # ---------------------------------------------------------------- app answers
    def provide_results(self, results: Sequence[ItemResult]) -> None:
        """Our verdict on each change of the last :class:`ChangesReceived`, in order."""
        self._check(Trigger.RESULTS_GIVEN)
        self._settle(results)
        self._go(Trigger.LAST_RESULTS_GIVEN if self._pkg3_final else Trigger.RESULTS_GIVEN)

    def provide_changes(self, changes: Sequence[OutChange]) -> None:
        """Our package 4 (after the final :class:`ChangesReceived`)."""
        self._check(Trigger.CHANGES_GIVEN)
        assert self.mode is not None
        self._out_changes = list(changes) if self.mode.server_sends else []
        self._out_changes = self._drop_oversized(self._out_changes)
        self._out_total = len(self._out_changes)
        self._go(Trigger.CHANGES_GIVEN)

    # ---------------------------------------------------------------- sending
    def next_message(self) -> Message:
        """The reply to the message just received."""
        hdr = self._reply_hdr
        if hdr is None:
            raise LocalProtocolError("nothing received yet")
        self._check_send()  # not while the application must answer first
        header = SyncHdr(
            ver_dtd=self.ver_dtd,
            ver_proto=ver_proto(self.ver_dtd),
            session_id=hdr.session_id,
            msg_id=hdr.msg_id,
            target=hdr.source,
            source=hdr.target,
            resp_uri=self.config.resp_uri,
            meta=Meta(max_msg_size=self.config.max_msg_size, max_obj_size=self.config.max_obj_size),
        )
        held = False
        if self.phase in (Phase.INIT, Phase.ALERTED):
            commands, held = self._fit_queue()  # package 2 (or a DevInf exchange) may need several
        else:
            commands = list(self._queue)
            self._queue = []
        final = not held
        if self.phase is Phase.SENDING:
            budget = self._budget()
            sync, complete = self._take_sync_chunk(budget)
            commands.append(sync)
            if complete:
                self._go(Trigger.PACKAGE_SENT)
            final = complete
        elif self.phase is Phase.RECEIVING:
            final = False  # more of package 3 to come: ask for it
            commands.append(alert_next_message(self.remote_uri, self.local_uri))
        elif self.phase is Phase.MAPPING and not self._reply_final:
            final = False
        return Message(header=header, commands=self._build(header, commands, final), final=final)

    @property
    def wants_changes(self) -> bool:
        """Whether the application must call :meth:`provide_changes` now."""
        return self.phase is Phase.NEED_CHANGES
