"""Client and server sessions talking to each other in memory, through the real codecs."""

from __future__ import annotations

import pytest

from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode
from gitsync.errors import AuthError
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.client import ClientConfig, ClientSession
from gitsync.protocol.events import (
    Acknowledged,
    ChangesReceived,
    ItemResult,
    MapReceived,
    OutChange,
    SessionComplete,
    SyncModeDecided,
    SyncRequested,
)
from gitsync.protocol.messages import Anchor, DataStore, DevInf, Message
from gitsync.protocol.server import ServerConfig, ServerSession

DEVINF = DevInf(man="test", mod="pair", dev_id="dev", datastores=(DataStore(source_ref="notes"),))


def _wire(msg: Message, encoding: str) -> Message:
    return decode(encode(msg, encoding), encoding)[0]


class Pair:
    """Drives both sessions; the server side answers like a tiny app would."""

    def __init__(
        self,
        *,
        client_changes,
        server_changes,
        mode=SyncMode.TWO_WAY,
        encoding=XML_TYPE,
        users=None,
        username=None,
        password=None,
        auth_type="basic",
        max_msg_size=None,
        last=None,
    ):
        self.client = ClientSession(
            ClientConfig(
                url="http://server/",
                device_id="client-1",
                devinf=DEVINF,
                mode=mode,
                username=username,
                password=password,
                auth_type=auth_type,
                last_anchor=last,
                max_msg_size=max_msg_size or 2_000_000,
            )
        )
        self.server = ServerSession(
            ServerConfig(
                devinf=DEVINF,
                users=users,
                max_msg_size=max_msg_size or 2_000_000,
                next_nonce=b"n2",
            )
        )
        self.client_changes = client_changes
        self.server_changes = server_changes
        self.encoding = encoding
        self.at_server: list = []
        self.at_client: list = []
        self.maps: list = []
        self.acks_client: list = []
        self.acks_server: list = []
        self.complete = {"client": False, "server": False}
        self.messages = 0

    def run(self) -> None:
        msg = self.client.start()
        while msg is not None:
            self.messages += 1
            assert self.messages < 200
            for ev in self.server.receive(_wire(msg, self.encoding)):
                if isinstance(ev, SyncRequested):
                    self.server.accept_sync(mode=ev.mode, anchor=Anchor(next="s1"))
                elif isinstance(ev, ChangesReceived):
                    self.at_server.extend(ev.changes)
                    self.server.provide_results(
                        [ItemResult(code=201 if c.kind is ChangeKind.ADD else 200) for c in ev.changes]
                    )
                    if ev.final:
                        self.server.provide_changes(self.server_changes)
                elif isinstance(ev, MapReceived):
                    self.maps.extend(ev.pairs)
                elif isinstance(ev, Acknowledged):
                    self.acks_server.extend(ev.results)
                elif isinstance(ev, SessionComplete):
                    self.complete["server"] = True
            reply = _wire(self.server.next_message(), self.encoding)
            for ev in self.client.receive(reply):
                if isinstance(ev, SyncModeDecided):
                    self.client.provide_changes(self.client_changes)
                elif isinstance(ev, ChangesReceived):
                    self.at_client.extend(ev.changes)
                    self.client.provide_results(
                        [
                            ItemResult(code=201, luid=f"L-{c.guid}")
                            if c.kind is ChangeKind.ADD
                            else ItemResult(code=200)
                            for c in ev.changes
                        ]
                    )
                elif isinstance(ev, Acknowledged):
                    self.acks_client.extend(ev.results)
                elif isinstance(ev, SessionComplete):
                    self.complete["client"] = True
            msg = self.client.next_message()


def _adds(n: int, prefix: str, size: int = 20) -> list[OutChange]:
    return [
        OutChange(
            kind=ChangeKind.ADD,
            key=f"{prefix}{i}",
            data=(f"note {i} ".encode() * size)[: size * 4],
            content_type="text/plain",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("encoding", [XML_TYPE, WBXML_TYPE])
def test_two_way_exchange_both_directions(encoding: str) -> None:
    pair = Pair(client_changes=_adds(3, "c"), server_changes=_adds(2, "g"), encoding=encoding, last="a0")
    pair.run()
    assert pair.complete == {"client": True, "server": True}
    assert [c.luid for c in pair.at_server] == ["c0", "c1", "c2"]
    assert [c.guid for c in pair.at_client] == ["g0", "g1"]
    assert sorted(pair.maps) == [("L-g0", "g0"), ("L-g1", "g1")]
    assert sorted(code for _, code in pair.acks_client) == [201, 201, 201]
    assert len(pair.acks_server) == 2
    assert pair.at_server[0].data == _adds(1, "c")[0].data


def test_split_packages_under_small_max_msg_size() -> None:
    pair = Pair(
        client_changes=_adds(60, "c", 200),
        server_changes=_adds(50, "g", 200),
        max_msg_size=4096,
        encoding=WBXML_TYPE,
    )
    pair.client.profile = pair.client.profile  # generic peer: may split
    pair.run()
    assert pair.complete == {"client": True, "server": True}
    assert len(pair.at_server) == 60 and len(pair.at_client) == 50
    assert len(pair.maps) == 50
    assert pair.messages > 10  # really split over many messages


def test_md5_auth_challenge_then_accept() -> None:
    pair = Pair(
        client_changes=[],
        server_changes=[],
        users={"u": "secret"},
        username="u",
        password="secret",
        auth_type="md5",
    )
    pair.run()
    assert pair.complete["server"] and pair.server.user == "u"


def test_basic_auth_wrong_password_is_refused() -> None:
    pair = Pair(client_changes=[], server_changes=[], users={"u": "secret"}, username="u", password="bad")
    with pytest.raises(AuthError):
        pair.run()
    assert not pair.complete["server"]


def test_client_answers_non_devinf_put_and_get_like_the_server() -> None:
    """Put/Get carry only DevInf: a Put without it is 406, a Get of another target 404 (both roles)."""
    from gitsync.protocol.messages import Alert, Get, Item, Meta, Put, Status, SyncHdr

    client = ClientSession(
        ClientConfig(url="http://s/", device_id="c", devinf=DEVINF, mode=SyncMode.TWO_WAY, last_anchor="a0")
    )
    first = client.start()
    alert_id = next(c.cmd_id for c in first.commands if isinstance(c, Alert))
    hdr = SyncHdr(session_id="1", msg_id=1, target="c", source="http://s/")
    reply = Message(
        header=hdr,
        commands=(
            Status(cmd_id=1, msg_ref=1, cmd_ref=0, cmd="SyncHdr", code=200),
            Status(cmd_id=2, msg_ref=1, cmd_ref=alert_id, cmd="Alert", code=200),
            Put(cmd_id=3, items=(Item(source="./other", data=b"not devinf"),)),
            Get(cmd_id=4, items=(Item(target="./other"),)),
            Get(
                cmd_id=5,
                meta=Meta(type="application/vnd.syncml-devinf+xml"),
                items=(Item(target="./devinf12"),),
            ),
            Alert(
                cmd_id=6,
                code=200,
                items=(
                    Item(
                        target="notes",
                        source="notes",
                        meta=Meta(anchor=Anchor(next="s")),
                    ),
                ),
            ),
        ),
        final=True,
    )
    events = client.receive(_wire(reply, XML_TYPE))
    assert any(isinstance(e, SyncModeDecided) for e in events)
    client.provide_changes([])
    pkg3 = _wire(client.next_message(), XML_TYPE)
    codes = {s.cmd_ref: s.code for s in pkg3.commands if isinstance(s, Status)}
    assert codes[3] == 406 and codes[4] == 404 and codes[5] == 200
    assert any(type(c).__name__ == "Results" for c in pkg3.commands)  # our DevInf for the real Get
