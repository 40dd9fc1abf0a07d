"""How big our messages will be: the size estimates behind MaxMsgSize and large-object chunks.

The session knows no codec, so it plans with generous estimates of each command's encoded
size; the figures were measured against our XML and WBXML encoders.  Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitsync.protocol.messages import Command, DevInf, Item, StatusDraft

__all__ = ["FILL", "cut_chunk", "data_cost", "estimate_size", "room_for_sync", "split_queue"]

#: bytes per command besides its payload and ids (measured: an Add is ~180 in XML, ~75 in WBXML)
_CMD_OVERHEAD = {False: 170, True: 60}
#: bytes of header and closing elements per message (long URLs, Cred, Meta)
_MSG_OVERHEAD = {False: 1100, True: 550}
#: share of the peer's MaxMsgSize we plan to fill (estimates are estimates)
FILL = 0.85


def data_cost(data: bytes, *, wbxml: bool = False) -> int:
    """Encoded bytes of an item payload: OPAQUE in WBXML, escaped text in XML."""
    if wbxml:
        return len(data) + 6
    return len(data) + 4 * (data.count(b"\r") + data.count(b"&")) + 3 * (data.count(b"<") + data.count(b">"))


def estimate_size(cmd: Command | StatusDraft, *, wbxml: bool = False) -> int:
    """A generous estimate of a command's encoded size (the session knows no codec)."""
    size = _CMD_OVERHEAD[wbxml]
    refs: tuple[str, ...] = (*getattr(cmd, "target_refs", ()), *getattr(cmd, "source_refs", ()))
    size += sum(len(r) + 20 for r in refs)  # a Status's (or StatusDraft's)
    for attr in ("source", "target"):
        value = getattr(cmd, attr, None)
        if isinstance(value, str):
            size += len(value) + 20
    items: tuple[Item, ...] = getattr(cmd, "items", ())
    for item in items:
        if isinstance(item.data, bytes):
            size += data_cost(item.data, wbxml=wbxml)
        elif isinstance(item.data, DevInf):
            size += 1800 if not wbxml else 900
        elif item.data is not None:
            size += 120
        size += sum(len(x or "") for x in (item.source, item.target)) + (20 if wbxml else 80)
    for sub in getattr(cmd, "commands", ()):
        size += estimate_size(sub, wbxml=wbxml)
    return size


def room_for_sync(max_msg_size: int, others: Sequence[Command | StatusDraft], *, wbxml: bool) -> int:
    """Bytes left for a Sync in a message of at most ``max_msg_size`` that also carries
    ``others`` (statuses, queued commands): our share of the limit minus what is already used."""
    used = _MSG_OVERHEAD[wbxml] + sum(estimate_size(c, wbxml=wbxml) for c in others)
    return max(int(max_msg_size * FILL) - used, 1)


def split_queue(
    queue: list[Command], statuses: Sequence[StatusDraft], max_msg_size: int, *, wbxml: bool
) -> tuple[list[Command], list[Command]]:
    """The commands of ``queue`` that fit a message beside ``statuses`` (at least one), and the rest."""
    room = int(max_msg_size * FILL) - _MSG_OVERHEAD[wbxml]
    room -= sum(estimate_size(d, wbxml=wbxml) for d in statuses)
    used = 0
    for index, cmd in enumerate(queue):
        used += estimate_size(cmd, wbxml=wbxml)
        if index and used > room:
            return queue[:index], queue[index:]
    return queue, []


def cut_chunk(data: bytes, start: int, room: int, *, wbxml: bool) -> int:
    """Where the chunk starting at ``start`` ends so that it encodes in about ``room`` bytes.

    Never inside a UTF-8 sequence or a CRLF, so every chunk is text a peer can decode alone.
    """
    end = min(len(data), start + room)
    while end - start > 1:
        cost = data_cost(data[start:end], wbxml=wbxml)
        if cost <= room:
            break
        end = start + max(1, min(end - start - 1, (end - start) * room // cost))
    if end < len(data):
        back = end
        while back - start > 1 and (data[back] & 0xC0) == 0x80:
            back -= 1
        if back - start > 1 and data[back - 1 : back + 1] == b"\r\n":
            back -= 1
        end = back
    return end
