"""The ledger of one session: the edits it makes as it goes, and what each outgoing change will
do once the peer has it.

Two trees move: the branch (``writes``/``deletes`` over the head tree) and the tree both sides
agree on (``synced_*`` over the last synced tree).  An incoming change the session applies moves
both at once; an outgoing one moves the synced tree only when the peer acknowledges it: its
:class:`Effect` waits in ``effects`` until then (a refused change never becomes "agreed").
Shared by the client and server drivers; no store, no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass

from gitsync.model import ChangeKind
from gitsync.sync.payload import Wire

__all__ = ["Effect", "Ledger"]


@dataclass(frozen=True, slots=True)
class Effect:
    """What an outgoing change does to the synced tree once the peer has it (a rename writes the
    new path and deletes the old one)."""

    writes: Mapping[str, str]
    deletes: tuple[str, ...]
    kind: ChangeKind


class Ledger:
    """Edits of one session to the branch and to the synced tree, and the effects awaiting an answer."""

    notes: MutableMapping[str, str]  # path → blob, as the session goes on (set by the driver)

    def __init__(self) -> None:
        self.writes: dict[str, str] = {}  # path → blob, onto the head tree
        self.deletes: set[str] = set()
        self.synced_writes: dict[str, str] = {}  # onto the last synced tree
        self.synced_deletes: set[str] = set()
        self.effects: dict[str, Effect] = {}  # change key → its effect once acknowledged
        self._wire: Wire | None = None  # negotiated once the sync mode is known

    @property
    def wire(self) -> Wire:
        """How notes travel to this peer (there is none before the sync mode is decided)."""
        assert self._wire is not None, "no payload format before the sync mode is decided"
        return self._wire

    def _touch(self, path: str) -> None:
        """Hook: a path this session settled (the server remembers them)."""

    def _agreed(self, writes: Mapping[str, str], deletes: Iterable[str]) -> None:
        """The peer acknowledged a change: both sides now have ``writes`` and lack ``deletes``."""
        self.synced_writes.update(writes)
        for path in deletes:
            if path not in writes:
                self.synced_deletes.add(path)
                self.synced_writes.pop(path, None)

    def _write(self, old: str | None, new: str, blob: str) -> None:
        """An incoming note (or the result of a conflict) at ``new``, moved from ``old`` if given."""
        if old is not None and old != new:
            self.wire.moved(old, new)
            self._delete(old)
        self.notes[new] = blob
        self.writes[new] = blob
        self.deletes.discard(new)
        self.synced_writes[new] = blob
        self.synced_deletes.discard(new)
        self._touch(new)

    def _delete(self, path: str) -> None:
        """An incoming delete: gone here and, as both sides agree, from the synced tree."""
        self.wire.forget(path)
        self.notes.pop(path, None)
        self.writes.pop(path, None)
        self.deletes.add(path)
        self.synced_writes.pop(path, None)
        self.synced_deletes.add(path)
        self._touch(path)
