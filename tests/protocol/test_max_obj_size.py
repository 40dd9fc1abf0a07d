"""MaxObjSize both ways, per item: an item over the receiver's limit is refused alone (413) and the
session goes on; a sender does not send what is over the peer's limit; a large object is sent
rendered once, however many chunks it takes."""

from __future__ import annotations

import dataclasses

import pytest

import tests.protocol.test_session_pair as pairs
from gitsync.codec import WBXML_TYPE, XML_TYPE
from gitsync.model import ChangeKind
from gitsync.protocol.events import Event, ItemRefused, OutChange
from gitsync.protocol.messages import Message
from tests.protocol.test_session_pair import Pair, _adds

LARGE_OBJS = dataclasses.replace(pairs.DEVINF, support_large_objs=True)


def _note(key: str, size: int) -> OutChange:
    return OutChange(kind=ChangeKind.ADD, key=key, data=(b"0123456789abcde\n" * (size // 16 + 1))[:size],
                     content_type="text/plain")


def _refusals(session: object) -> list[ItemRefused]:
    """Wrap ``session.receive`` to collect the ItemRefused events it returns."""
    seen: list[ItemRefused] = []
    receive = session.receive  # type: ignore[attr-defined]

    def spy(msg: Message) -> list[Event]:
        events = receive(msg)
        seen.extend(e for e in events if isinstance(e, ItemRefused))
        return events

    session.receive = spy  # type: ignore[attr-defined]
    return seen


def _ignore_peer_limit(session: object) -> None:
    """Make a session behave like a peer that ignores our MaxObjSize."""
    session._too_big_for_peer = lambda change, size: False  # type: ignore[attr-defined]


@pytest.mark.parametrize("encoding", [XML_TYPE, WBXML_TYPE])
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
def test_an_item_over_our_max_obj_size_is_refused_alone(
    encoding: str, chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pairs, "DEVINF", LARGE_OBJS if chunked else pairs.DEVINF)
    big = _note("big", 60_000)
    pair = Pair(client_changes=[*_adds(2, "c"), big, *_adds(2, "d")], server_changes=_adds(1, "g"),
                encoding=encoding, max_msg_size=8192 if chunked else None)
    pair.server.max_obj_size = 20_000
    _ignore_peer_limit(pair.client)
    refused = _refusals(pair.server)
    pair.run()
    assert pair.complete == {"client": True, "server": True}
    assert sorted(c.luid for c in pair.at_server) == ["c0", "c1", "d0", "d1"]
    assert [c.guid for c in pair.at_client] == ["g0"]
    assert dict((ch.key, code) for ch, code in pair.acks_client)["big"] == 413
    assert [(r.code, r.source) for r in refused] == [(413, "big")]
    assert refused[0].size >= 20_000 and refused[0].limit == 20_000


@pytest.mark.parametrize("role", ["client", "server"])
def test_nothing_over_the_peers_max_obj_size_is_sent(role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pairs, "DEVINF", LARGE_OBJS)
    big = _note("big", 60_000)
    ours = [*_adds(2, "c"), big]
    pair = Pair(client_changes=ours if role == "client" else _adds(1, "c"),
                server_changes=ours if role == "server" else _adds(1, "g"), max_msg_size=8192)
    receiver = pair.server if role == "client" else pair.client
    receiver.config = dataclasses.replace(receiver.config, max_obj_size=20_000)  # what it advertises
    refused = _refusals(receiver)
    pair.run()
    assert pair.complete == {"client": True, "server": True}
    received = pair.at_server if role == "client" else pair.at_client
    assert len(received) == 2 and all(len(c.data or b"") < 1000 for c in received)
    acks = pair.acks_client if role == "client" else pair.acks_server
    assert dict((ch.key, code) for ch, code in acks)["big"] == 413
    sender = pair.client if role == "client" else pair.server
    assert sender.oversized == {"big": 60_000}
    assert refused == []  # never sent, so never refused


class _CountingChange(OutChange):
    """An OutChange whose ``data`` counts its reads (as LazyOutChange renders on every read)."""

    __slots__ = ("_payload", "reads")
    reads: int
    _payload: bytes

    def __init__(self, key: str, payload: bytes) -> None:
        for name, value in (("kind", ChangeKind.ADD), ("key", key), ("peer_key", None),
                            ("content_type", "text/plain"), ("version", None), ("reads", 0),
                            ("_payload", payload)):
            object.__setattr__(self, name, value)

    @property
    def data(self) -> bytes | None:  # type: ignore[override]
        object.__setattr__(self, "reads", self.reads + 1)
        return self._payload


@pytest.mark.parametrize("role", ["client", "server"])
def test_a_large_object_is_rendered_once_whatever_its_chunks(
    role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pairs, "DEVINF", LARGE_OBJS)
    payload = _note("x", 300_000).data
    assert payload is not None
    big = _CountingChange("big", payload)
    pair = Pair(client_changes=[big] if role == "client" else [],
                server_changes=[big] if role == "server" else [], max_msg_size=8192)
    pair.run()
    assert pair.complete == {"client": True, "server": True}
    (got,) = pair.at_server if role == "client" else pair.at_client
    assert got.data == payload
    assert pair.messages > 30  # many chunks...
    assert big.reads <= 2  # ...one rendering (the size check before sending may read it too)
