"""Every message fits the peer's MaxMsgSize, also when it carries many statuses besides changes.

Self-contained (in memory, XML and WBXML through the real codecs): both sides send many small notes
at a small MaxMsgSize, so the messages that answer a chunk of changes hold a status per item
and changes of their own; the budget for changes must leave room for those statuses.
"""

from __future__ import annotations

import pytest

from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode
from gitsync.model import ChangeKind
from gitsync.protocol.events import OutChange
from gitsync.protocol.messages import Message, Status
from tests.protocol import test_session_pair as pair_module

LIMIT = 5000
TEXT = "text/plain"


def _changes(side: str, count: int) -> list[OutChange]:
    return [
        OutChange(kind=ChangeKind.ADD, key=f"{side}-{i}", data=f"{side} {i}\n".encode(), content_type=TEXT)
        for i in range(count)
    ]


@pytest.mark.parametrize("encoding", [XML_TYPE, WBXML_TYPE])
def test_messages_with_many_statuses_stay_within_max_msg_size(
    encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[tuple[int, int]] = []  # (bytes, statuses)

    def wire(msg: Message, enc: str) -> Message:
        body = encode(msg, enc)
        sizes.append((len(body), sum(isinstance(c, Status) for c in msg.commands)))
        return decode(body, enc)[0]

    monkeypatch.setattr(pair_module, "_wire", wire)
    pair = pair_module.Pair(
        client_changes=_changes("c", 120),
        server_changes=_changes("s", 120),
        encoding=encoding,
        max_msg_size=LIMIT,
    )
    pair.run()
    assert pair.complete == {"client": True, "server": True}
    assert len(pair.at_server) == 120 and len(pair.at_client) == 120
    assert max(statuses for _, statuses in sizes) >= 10  # the case this test is about
    too_big = [size for size, _ in sizes if size > LIMIT]
    assert not too_big, (too_big, LIMIT)
