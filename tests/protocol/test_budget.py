"""The message budget (gitsync/protocol/budget.py): what the statuses and queued commands of a
message use is taken off the room for the rest, in both encodings."""

from __future__ import annotations

import pytest

from gitsync.protocol.budget import estimate_size, room_for_sync, split_queue
from gitsync.protocol.messages import Alert, Command, Get, Item, Put
from gitsync.protocol.session import StatusDraft
from tests.protocol.test_session_pair import DEVINF


def _statuses(n: int) -> list[StatusDraft]:
    return [
        StatusDraft(msg_ref=1, cmd_ref=i, cmd="Add", code=201, source_refs=(f"item-{i:04d}",))
        for i in range(n)
    ]


def _queue() -> list[Command]:
    return [
        Put(cmd_id=0, items=(Item(source="./devinf12", data=DEVINF),)),
        Get(cmd_id=0, items=(Item(target="./devinf12"),)),
        Alert(cmd_id=0, code=200, items=(Item(target="notes", source="notes"),)),
    ]


@pytest.mark.parametrize("wbxml", [False, True])
def test_room_for_sync_is_what_the_other_commands_leave(wbxml: bool) -> None:
    limit = 100_000
    empty = room_for_sync(limit, [], wbxml=wbxml)
    statuses = _statuses(40)
    used = sum(estimate_size(s, wbxml=wbxml) for s in statuses)
    assert room_for_sync(limit, statuses, wbxml=wbxml) == empty - used
    queue = _queue()
    used += sum(estimate_size(c, wbxml=wbxml) for c in queue)
    assert room_for_sync(limit, [*statuses, *queue], wbxml=wbxml) == empty - used
    assert room_for_sync(1000, statuses, wbxml=wbxml) == 1  # never zero or negative


@pytest.mark.parametrize("wbxml", [False, True])
def test_queued_commands_wait_when_statuses_fill_the_message(wbxml: bool) -> None:
    queue = _queue()
    alone = room_for_sync(6000, [], wbxml=wbxml)
    assert sum(estimate_size(c, wbxml=wbxml) for c in queue) < alone  # all fit beside nothing
    now, later = split_queue(queue, [], 6000, wbxml=wbxml)
    assert (now, later) == (queue, [])
    statuses = _statuses(60 if wbxml else 30)  # they take most of the 6000 bytes
    now, later = split_queue(queue, statuses, 6000, wbxml=wbxml)
    assert now == queue[:1] and later == queue[1:]  # at least one goes, the rest waits
