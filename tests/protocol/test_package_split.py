"""Packages without a Sync (package 2: Results with our DevInf, the Alert, Put and Get of DevInf)
are split over several messages when the peer's MaxMsgSize cannot take them at once: the server
sends what fits without Final, the client asks for the rest with Alert 222.

Self-contained: both sessions in memory, every message through the real XML/WBXML codec.
"""

from __future__ import annotations

import pytest

from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode
from gitsync.model import ChangeKind
from gitsync.protocol.events import OutChange
from gitsync.protocol.messages import Alert, Message, Results, Sync
from tests.protocol import test_session_pair as pair_module

#: below what package 2 takes (~3 KB in XML with two DevInfs, ~1.7 KB in WBXML), above any one command
LIMITS = {XML_TYPE: 2200, WBXML_TYPE: 1300}


@pytest.mark.parametrize("encoding", [XML_TYPE, WBXML_TYPE])
def test_package_2_is_split_under_a_small_max_msg_size(
    encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = LIMITS[encoding]
    from_server: list[tuple[int, Message]] = []

    def wire(msg: Message, enc: str) -> Message:
        body = encode(msg, enc)
        if msg.header.source == "http://server/" or msg.header.target == "client-1":
            from_server.append((len(body), msg))
        return decode(body, enc)[0]

    monkeypatch.setattr(pair_module, "_wire", wire)
    changes = [OutChange(kind=ChangeKind.ADD, key=f"s{i}", data=b"note %d\n" % i, content_type="text/plain")
               for i in range(3)]
    pair = pair_module.Pair(client_changes=[], server_changes=changes, encoding=encoding, max_msg_size=limit)
    pair.run()
    assert pair.complete == {"client": True, "server": True}
    assert len(pair.at_client) == 3
    before_sync = []
    for size, msg in from_server:
        if any(isinstance(c, Sync) for c in msg.commands):
            break
        before_sync.append((size, msg))
    assert len(before_sync) >= 2, "package 2 was not split"
    assert [m.final for _, m in before_sync] == [False] * (len(before_sync) - 1) + [True]
    kinds = [type(c) for _, m in before_sync for c in m.commands]
    assert {Results, Alert} <= set(kinds)
    assert max(size for size, _ in from_server) <= limit, [size for size, _ in from_server]
