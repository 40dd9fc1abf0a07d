"""What one server session with a device leaves to the next one.

- **Refusals**: a change the device refused is sent again next session (its effect was never
  agreed), but not forever: after ``MAX_REFUSALS`` refusals of the same content it waits until
  the note changes again, and each session says so.
- **Gone items**: a Replace answered 404/410/211 means the device no longer has the item; its
  LUID is dropped so the next session sends the note as an Add.
- **Reported conflicts**: under policy ``error`` a conflict is answered 409; a Synthesis-based
  client aborts the session on that and sends the note again when it resumes: the resumed session
  settles it as under ``merge`` (both versions kept), so the device is not stuck on it.
- **Suspended sessions** (OMA DS 1.2 suspend/resume, Alert 224/225): what an interrupted session
  had agreed with the device — the device's changes we answered, the statuses and LUIDs it gave
  ours — so that a resume continues it instead of re-sending, or losing, what was acknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gitsync.model import SyncMode
from gitsync.protocol.constants import St
from gitsync.protocol.events import InChange

__all__ = [
    "GONE_CODES",
    "MAX_KEPT_BYTES",
    "MAX_REFUSALS",
    "Refusal",
    "Suspended",
    "dump_refusals",
    "load_refusals",
    "ok_status",
]

#: statuses a device gives a Replace for an item it no longer has
GONE_CODES = frozenset({St.NOT_FOUND, 410, St.DELETE_NOT_FOUND})
#: refusals of one unchanged note after which it is no longer sent
MAX_REFUSALS = 3
#: how many suspended sessions a server keeps (oldest dropped first)
MAX_SUSPENDED = 1000
#: note bytes one suspended session keeps; a bigger session is not resumed (slow sync instead), so
#: a first sync of 20,000 notes does not hold them all in memory until it ends
MAX_KEPT_BYTES = 4 * 1024 * 1024


def ok_status(code: int) -> bool:
    """Whether a status means the command was carried out."""
    return 200 <= code < 300 or code == St.ALREADY_EXISTS


@dataclass(slots=True)
class Refusal:
    """How often the device refused the note ``blob`` (our GUID is the key)."""

    blob: str
    code: int
    count: int


def load_refusals(saved: Mapping[str, tuple[str, int, int]]) -> dict[str, Refusal]:
    """:attr:`PeerState.refused <gitsync.sync.state.PeerState.refused>` → counters to update."""
    return {guid: Refusal(blob=blob, code=code, count=count) for guid, (blob, code, count) in saved.items()}


def dump_refusals(refusals: Mapping[str, Refusal]) -> dict[str, tuple[str, int, int]]:
    """The inverse of :func:`load_refusals`."""
    return {guid: (r.blob, r.code, r.count) for guid, r in refusals.items()}


@dataclass(slots=True, kw_only=True)
class Suspended:
    """An interrupted session with one device, as far as the device knows it.

    ``received``: the device's changes we answered, with our status (it does not send again
    those we accepted); ``acked``: the status it gave each of our changes and the blob it carried
    (by GUID); ``maps``:
    the LUIDs it gave our Adds; ``held``: paths answered 409 under policy ``error``.
    """

    device_id: str
    user: str | None
    state_commit: str | None
    client_last: str | None
    mode: SyncMode
    received: list[tuple[InChange, int]] = field(default_factory=list)
    acked: dict[str, tuple[int, str]] = field(default_factory=dict)
    maps: dict[str, str] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    kept_bytes: int = 0
    overflow: bool = False  # too much to keep: this session cannot be resumed

    def keep(self, received: list[tuple[InChange, int]]) -> None:
        """Remember the device's changes we answered, within ``MAX_KEPT_BYTES``."""
        if self.overflow:
            return
        self.kept_bytes += sum(len(ch.data or b"") for ch, _ in received)
        if self.kept_bytes > MAX_KEPT_BYTES:
            self.overflow = True
            self.received.clear()
            return
        self.received.extend(received)

    def trusted(self, *, user: str | None, state_commit: str | None, client_last: str | None) -> bool:
        """Whether a resume may continue from here: same login, the device's state unchanged
        since (no session of it committed meanwhile), and the device starts from the same anchor."""
        if self.overflow:
            return False
        return (user, state_commit, client_last) == (self.user, self.state_commit, self.client_last)
