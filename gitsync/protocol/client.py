"""The client side of a SyncML session (packages 1, 3 and 5), sans I/O.

Use::

    s = ClientSession(config)
    msg = s.start()
    while not s.done:
        reply = exchange(msg)                # the driver's I/O
        for ev in s.receive(reply):
            ...                              # answer SyncModeDecided with provide_changes,
                                             # ChangesReceived with provide_results
        msg = s.next_message()               # None once the session is done
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from gitsync.errors import AuthError
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.auth import basic_cred, md5_cred
from gitsync.protocol.constants import AUTH_MD5, SYNC_ALERTS, St, ver_proto
from gitsync.protocol.events import (
    Acknowledged,
    ChangesReceived,
    Event,
    ItemResult,
    NonceReceived,
    OutChange,
    SessionComplete,
    SyncModeDecided,
)
from gitsync.protocol.messages import (
    Alert,
    Anchor,
    Command,
    Cred,
    DevInf,
    Item,
    Map,
    MapItem,
    Message,
    Meta,
    Status,
    Sync,
    SyncHdr,
)
from gitsync.protocol.phases import Phase, Role, Trigger
from gitsync.protocol.profiles import profile_for
from gitsync.protocol.session import DEFAULT_MAX_OBJ_SIZE, SessionBase, alert_next_message

__all__ = ["ClientConfig", "ClientSession", "retry_later_message"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Everything a client session needs to know up front."""

    url: str
    device_id: str
    devinf: DevInf
    mode: SyncMode
    local_uri: str = "notes"
    remote_uri: str = "notes"
    last_anchor: str | None = None  # our Next of the last completed session
    next_anchor: str = "1"
    session_id: str = "1"
    ver_dtd: str = "1.2"
    username: str | None = None
    password: str | None = None
    auth_type: str = "basic"  # or "md5"
    nonce: str | None = None  # base64 NextNonce the server gave us last time
    peer_devinf: DevInf | None = None  # cached from an earlier session
    send_devinf: bool = True
    max_msg_size: int = 2_000_000
    max_obj_size: int | None = DEFAULT_MAX_OBJ_SIZE  # None: no limit
    name: str | None = None  # our display name: SyncHdr Source/LocName when no user name is sent


class ClientSession(SessionBase):
    """One sync session as a SyncML client."""

    role = Role.CLIENT

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(ver_dtd=config.ver_dtd, session_id=config.session_id, local_uri=config.local_uri)
        self.config = config
        self.max_obj_size = config.max_obj_size
        self.remote_uri = config.remote_uri
        self.target_url = config.url
        self.resp_uri: str | None = None
        self.mode: SyncMode | None = None
        self.server_anchor = Anchor()
        self.peer_devinf = config.peer_devinf
        self.profile = profile_for(config.peer_devinf)
        self._msg_id = 0
        self._cred: Cred | None = self._make_cred(config.nonce)
        self._auth_retried = False
        self._resend_pkg1 = False
        self._pkg4_final = False
        self._maps: list[MapItem] = []
        self._peer_final = False
        self._status_only = False  # the server's last message carried only Statuses

    # ---------------------------------------------------------------- credentials
    def _make_cred(self, nonce_b64: str | None) -> Cred | None:
        cfg = self.config
        if cfg.username is None:
            return None
        password = cfg.password or ""
        if cfg.auth_type == "md5":
            try:
                nonce = base64.b64decode(nonce_b64 or "", validate=False)
            except (binascii.Error, ValueError):
                nonce = b""
            return md5_cred(cfg.username, password, nonce)
        return basic_cred(cfg.username, password)

    # ---------------------------------------------------------------- messages out
    def _header(self) -> SyncHdr:
        self._msg_id += 1
        cfg = self.config
        return SyncHdr(
            ver_dtd=self.ver_dtd,
            ver_proto=ver_proto(self.ver_dtd),
            session_id=self.session_id,
            msg_id=self._msg_id,
            target=self.target_url,
            source=cfg.device_id,
            source_name=cfg.username or cfg.name,
            cred=self._cred,
            meta=Meta(max_msg_size=cfg.max_msg_size, max_obj_size=cfg.max_obj_size),
        )

    def start(self) -> Message:
        """Package 1: DevInf Put (+Get when the server's is unknown) and the sync Alert."""
        self._go(Trigger.START)
        return self._pkg1()

    def _pkg1(self) -> Message:
        cfg = self.config
        header = self._header()
        commands: list[Command] = []
        if cfg.send_devinf:
            commands.append(self._put_devinf(cfg.devinf))
        if self.peer_devinf is None:
            commands.append(self._get_devinf())
        anchor = Anchor(last=cfg.last_anchor, next=cfg.next_anchor)
        commands.append(
            Alert(
                cmd_id=0,
                code=int(cfg.mode),
                items=(Item(target=cfg.remote_uri, source=cfg.local_uri, meta=Meta(anchor=anchor)),),
            )
        )
        self._statuses = []
        return Message(header=header, commands=self._build(header, commands, True), final=True)

    def provide_changes(self, changes: Sequence[OutChange]) -> None:
        """Our changes for package 3 (after :class:`SyncModeDecided`)."""
        self._check(Trigger.CHANGES_GIVEN)
        assert self.mode is not None
        self._out_changes = list(changes) if self.mode.client_sends else []
        self._out_changes = self._drop_oversized(self._out_changes)
        self._out_total = len(self._out_changes)
        self._go(Trigger.CHANGES_GIVEN)

    def provide_results(self, results: Sequence[ItemResult]) -> None:
        """Our verdict on each change of the last :class:`ChangesReceived`, in order."""
        self._check(Trigger.RESULTS_GIVEN)
        for change, result in self._settle(results):
            if change.kind is ChangeKind.ADD and result.luid and change.guid and result.code < 300:
                self._maps.append(MapItem(source=result.luid, target=change.guid))
        self._go(Trigger.RESULTS_GIVEN)

    def next_message(self) -> Message | None:
        """The next message to send, or ``None`` when the session is over."""
        if self.phase is Phase.DONE:
            return None
        self._check_send()
        if self._resend_pkg1:
            self._resend_pkg1 = False
            return self._pkg1()
        if self.phase is Phase.ALERTED:
            # the server's package 2 is not complete yet: ask for more
            header = self._header()
            cmds: list[Command] = [alert_next_message(self.remote_uri, self.local_uri)]
            return Message(header=header, commands=self._build(header, cmds, False), final=False)
        if self.phase is Phase.SENDING:
            header = self._header()
            sync, complete = self._take_sync_chunk(self._budget())
            commands: list[Command] = [*self._queue, sync]
            self._queue = []
            if complete:
                self._go(Trigger.PACKAGE_SENT)
            return Message(header=header, commands=self._build(header, commands, complete), final=complete)
        if self.phase is Phase.RECEIVING:
            header = self._header()
            commands = list(self._queue)
            self._queue = []
            if self._maps:
                commands.append(
                    Map(cmd_id=0, source=self.local_uri, target=self.remote_uri, items=tuple(self._maps))
                )
                self._maps = []
            if self._pkg4_final and self._status_only and not commands:
                # the server's last message held nothing but Statuses (Synthesis, when it has no
                # Sync to send): no reply is expected, and it has already closed the session
                self._statuses = []
                self._go(Trigger.END)
                return None
            if self._pkg4_final:
                self._go(Trigger.MAP_SENT)
                return Message(header=header, commands=self._build(header, commands, True), final=True)
            commands.append(alert_next_message(self.remote_uri, self.local_uri))
            return Message(header=header, commands=self._build(header, commands, False), final=False)
        raise AssertionError(f"phase {self.phase.value} is in SENDS but builds no message")

    # ---------------------------------------------------------------- messages in
    def _receive(self, msg: Message) -> list[Event]:
        events: list[Event] = []
        hdr = msg.header
        if hdr.resp_uri:
            self.resp_uri = hdr.resp_uri
        if hdr.meta and hdr.meta.max_msg_size:
            self.peer_max_msg_size = hdr.meta.max_msg_size
        if hdr.meta and hdr.meta.max_obj_size:
            self.peer_max_obj_size = hdr.meta.max_obj_size
        acks: list[tuple[OutChange, int]] = []
        server_alert: Alert | None = None
        retry = False
        # the SyncHdr status first: after a 401/407 we retry, and the other statuses (Synthesis
        # answers the Alert with 401 too) only repeat that refusal
        statuses = [c for c in msg.commands if isinstance(c, Status)]
        statuses.sort(key=lambda c: c.cmd != "SyncHdr")
        for status in statuses:
            retry = self._on_status(status, events, acks)
            if retry:
                break
        if retry:
            self._statuses = []
            self._resend_pkg1 = True
            return events
        for cmd in msg.commands:
            if isinstance(cmd, Status):
                continue
            if isinstance(cmd, Alert):
                if cmd.code in SYNC_ALERTS:
                    server_alert = cmd
                    self._status(hdr.msg_id, cmd, St.OK)
                elif cmd.code == 222:
                    self._status(hdr.msg_id, cmd, St.OK)
                else:
                    self._status(hdr.msg_id, cmd, St.NOT_SUPPORTED)
            elif self._devinf_command(hdr.msg_id, cmd, self.config.devinf, events):
                pass
            elif isinstance(cmd, Sync):
                allowed = self.mode is None or self.mode.server_sends or not cmd.commands
                self._collect_sync(hdr.msg_id, cmd, server_side=False, allowed=allowed)
            else:
                self._status(hdr.msg_id, cmd, St.NOT_SUPPORTED)
        # the header status goes first in our reply
        self._header_status(hdr, St.OK)
        acks.extend(self._take_skipped())
        events.extend(self._take_notices())
        if acks:
            events.append(Acknowledged(results=tuple(acks)))

        if self.phase is Phase.ALERTED:
            if server_alert is not None:
                self._on_server_alert(server_alert, events)
            if msg.final:
                if self.mode is None:
                    raise self._fail("the server answered without a sync Alert")
                self._go(Trigger.MODE_DECIDED)
                events.append(SyncModeDecided(mode=self.mode, anchor=self.server_anchor))
            return events
        if self.phase is Phase.SENDING:
            return events  # statuses for a non-final chunk of our package 3
        if self.phase is Phase.RECEIVING:
            self._pkg4_final = msg.final
            self._status_only = all(isinstance(c, Status) for c in msg.commands)
            self._go(Trigger.CHANGES_IN)
            events.append(ChangesReceived(changes=tuple(self._pending.changes), final=msg.final))
            return events
        if self.phase is Phase.MAPPING:
            if msg.final:
                self._go(Trigger.END)
                events.append(SessionComplete())
            return events
        raise self._fail(f"unexpected message in phase {self.phase.value}")

    def _on_status(self, st: Status, events: list[Event], acks: list[tuple[OutChange, int]]) -> bool:
        """Handle one Status; return True when package 1 must be re-sent (auth retry)."""
        code = st.code
        if st.cmd == "SyncHdr":
            if st.chal is not None and st.chal.next_nonce is not None:
                events.append(NonceReceived(nonce=st.chal.next_nonce))
            if code in (St.INVALID_CREDENTIALS, St.MISSING_CREDENTIALS):
                can_retry = (
                    self.config.username is not None
                    and not self._auth_retried
                    and self.phase is Phase.ALERTED
                    and st.chal is not None
                )
                if can_retry:
                    assert st.chal is not None
                    self._auth_retried = True
                    auth_type = "md5" if st.chal.type == AUTH_MD5 else "basic"
                    self.config = dataclasses.replace(self.config, auth_type=auth_type)
                    self._cred = self._make_cred(st.chal.next_nonce)
                    return True
                self._go(Trigger.FAIL)
                what = "rejected the credentials" if code == St.INVALID_CREDENTIALS else "wants credentials"
                raise AuthError(f"the server {what} (status {code})", status_hint=code)
            if code == St.AUTH_ACCEPTED:
                self._cred = None  # authenticated for the rest of the session
            elif code == St.RETRY_LATER:
                raise self._fail(retry_later_message(_seconds(st), login=self.phase is Phase.ALERTED), code)
            elif code >= 300:
                raise self._fail(f"the server refused the message (status {code})", code)
            return False
        if st.cmd == "Alert":
            if code == St.REFRESH_REQUIRED:
                logger.info("server requires a slow sync (508)")
            elif code in (St.NOT_FOUND, St.FORBIDDEN):
                raise self._fail(
                    f"the server has no datastore {self.remote_uri!r} (status {code}); "
                    "choose another with --remote-uri",
                    code,
                )
            elif code in (St.INVALID_CREDENTIALS, St.MISSING_CREDENTIALS):
                raise AuthError(f"the server refused access to {self.remote_uri!r} (status {code})")
            elif code >= 300:
                raise self._fail(f"the server refused the sync (status {code})", code)
            return False
        if st.cmd in ("Add", "Replace", "Delete"):
            ack = self._acknowledge(st)
            if ack is not None:
                acks.append(ack)
            return False
        if st.cmd == "Sync" and code >= 300:
            raise self._fail(f"the server refused our changes (status {code})", code)
        if st.cmd == "Map" and code >= 300:
            raise self._fail(f"the server refused our Map (status {code})", code)
        return False

    def _on_server_alert(self, alert: Alert, events: list[Event]) -> None:
        code = 200 if alert.code == 225 else alert.code
        try:
            self.mode = SyncMode(code)
        except ValueError:
            raise self._fail(f"the server asked for unknown sync mode {alert.code}") from None
        anchor = Anchor()
        for item in alert.items:
            meta = item.meta
            if meta and meta.anchor:
                anchor = meta.anchor
            if item.source:
                self.remote_uri = item.source
        self.server_anchor = anchor
        asked = self.config.mode
        if self.mode is not asked and self.mode is not SyncMode.SLOW:
            # a slow sync compares every note and deletes nothing: any server may force one (508);
            # any other mode we did not ask for could replace or drop notes on either side
            raise self._fail(
                f"the server answered our {_MODE_WORDS[asked][0]} request with a "
                f"{_MODE_WORDS[self.mode][0]} sync ({int(self.mode)}), which would "
                f"{_MODE_WORDS[self.mode][1]}; refused, nothing was changed",
                St.NOT_SUPPORTED,
            )
        if self.mode is not asked:
            logger.info("server switched the sync mode from %d to %d", asked, self.mode)


def retry_later_message(seconds: int | None, *, login: bool) -> str:
    """What a user is told when the server says "retry later" (417): to a login (package 1), after
    wrong passwords, our server (and others) refuse logins for a while; later on, it is busy."""
    when = f"retry in {seconds} s" if seconds is not None else "retry later"
    why = "too many failed logins" if login else "the server is busy"
    return f"{why}; {when} (status 417)"


def _seconds(st: Status) -> int | None:
    """The delay a Status carries in an item's data (digits only), if any."""
    for item in st.items:
        text = item.data.decode("ascii", "replace") if isinstance(item.data, bytes) else item.data
        if isinstance(text, str) and text.strip().isdigit() and len(text.strip()) <= 9:
            return min(int(text.strip()), 86400)
    return None


#: Each mode as a user would say it, and what it does to the notes on each side.
_MODE_WORDS: dict[SyncMode, tuple[str, str]] = {
    SyncMode.TWO_WAY: ("two-way", "exchange only the changes since the last sync"),
    SyncMode.SLOW: ("slow", "compare every note"),
    SyncMode.ONE_WAY_FROM_CLIENT: ("one-way-from-client", "send our changes and take none of the server's"),
    SyncMode.REFRESH_FROM_CLIENT: ("refresh-from-client", "replace every note on the server with ours"),
    SyncMode.ONE_WAY_FROM_SERVER: ("one-way-from-server", "take the server's changes and send none of ours"),
    SyncMode.REFRESH_FROM_SERVER: ("refresh-from-server", "replace every note here with the server's"),
}
