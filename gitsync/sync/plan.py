"""The outgoing planner: what we tell the peer, for both roles (plan, then run).

Input: the notes changed since the tree both sides agreed on (a tree diff, renames paired), the
ids the peer knows, the sync mode and our role.  Output: a :class:`Plan`, data only, one
:class:`Step` per note in the diff's order: a change to send (``send``), or an edit the peer
need not hear of, agreed at once (a delete of a note it never had, a rename a peer without
file names cannot see).  The drivers run the plan: they keep their id maps, build the
payloads, and hand the changes to the protocol session; each sent step's :class:`Effect`
becomes "agreed" only when the peer acknowledges it.

Rules, the same for client and server:

- a new note goes as an Add under a fresh id (``make_id(path, blob)``), or the id we gave it
  before if the peer never had it; never under an id the peer knows (it would read the Add as
  a Replace of another note);
- a changed or renamed note the peer has goes as a Replace naming the peer's id; one it does not
  have goes as an Add (effect: the new path written, the old one deleted);
- a rename alone (same blob) toward a peer that cannot carry names is agreed, not sent;
- a deleted note the peer has goes as a Delete; one it never had is agreed;
- a note a change from the peer already settled this session (``settled``: the paths the
  peer's changes wrote, merged or kept) is not sent: that change decided it (the conflict
  policy, :mod:`gitsync.sync.conflict`);
- a mode that sends everything (slow sync, refresh) sends every note as an Add, except those
  settled or that the peer showed it has (``has``); otherwise a mode that does not send from
  our side sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gitsync.model import ChangeKind, SyncMode
from gitsync.sync.ids import make_id
from gitsync.sync.ledger import Effect
from gitsync.sync.state import Role

__all__ = ["Change", "Known", "Plan", "Step", "plan_outgoing"]


class Change(Protocol):
    """One note changed between the synced tree and ours (``store.TreeChange`` is one): a rename
    is a MODIFY with ``old_path != new_path``."""

    @property
    def kind(self) -> ChangeKind: ...
    @property
    def old_path(self) -> str | None: ...
    @property
    def new_path(self) -> str | None: ...
    @property
    def old_blob(self) -> str | None: ...
    @property
    def new_blob(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Known:
    """Our id for a note, and whether the peer has it under an id of its own."""

    key: str
    at_peer: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One note's outgoing change, planned.

    ``kind`` is what the peer is told (ADD/MODIFY/DELETE); ``key`` our id for the note (``None``
    for a delete of a note we never gave an id); ``path`` where the note is now (for a delete:
    where it was); ``moved_from`` its path at the last sync when that differs or it was changed
    (a MODIFY: the drivers move their id maps and kept fields along); ``blob`` what is sent (""
    for a delete); ``send``: whether it goes to the peer, else it is agreed at once.
    """

    kind: ChangeKind
    key: str | None
    path: str
    blob: str
    effect: Effect
    send: bool = True
    moved_from: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps, in order; ``everything``: the mode sends every note (the peer has none of ours)."""

    steps: tuple[Step, ...]
    everything: bool = False

    @property
    def sends(self) -> tuple[Step, ...]:
        """The steps that go to the peer."""
        return tuple(step for step in self.steps if step.send)


def plan_outgoing(
    role: Role,
    mode: SyncMode,
    *,
    diff: Iterable[Change],
    notes: Mapping[str, str],
    known: Callable[[str], Known | None],
    carries_name: bool,
    settled: Container[str] = frozenset(),
    has: Container[str] = frozenset(),
) -> Plan:
    """Plan our side's changes toward the peer (see the module's rules).

    ``diff``: the changes since the synced tree (not read when the mode sends everything);
    ``notes``: path → blob of every note we hold now (read only when it does); ``known``: the id
    of the note at a path, if we have one; ``carries_name``: whether the peer learns file names
    from our payloads.
    """
    sends = mode.client_sends if role is Role.CLIENT else mode.server_sends
    if not sends:
        return Plan(())
    if mode.sends_all:
        steps = []
        for path, blob in sorted(notes.items()):
            found = known(path)
            key = found.key if found is not None else make_id(path, blob)
            if key in has or path in settled:
                continue
            steps.append(
                Step(
                    kind=ChangeKind.ADD,
                    key=key,
                    path=path,
                    blob=blob,
                    effect=Effect({path: blob}, (), ChangeKind.ADD),
                )
            )
        return Plan(tuple(steps), everything=True)
    return Plan(tuple(_step(tc, known, carries_name) for tc in diff if not _touches(tc, settled)))


def _touches(tc: Change, settled: Container[str]) -> bool:
    return (tc.old_path is not None and tc.old_path in settled) or (
        tc.new_path is not None and tc.new_path in settled
    )


def _fresh(path: str, blob: str, known: Callable[[str], Known | None]) -> str:
    """The id of a note the peer is to receive as new: ours if the peer never had it, else a new one."""
    found = known(path)
    return found.key if found is not None and not found.at_peer else make_id(path, blob)


def _step(tc: Change, known: Callable[[str], Known | None], carries_name: bool) -> Step:
    if tc.kind is ChangeKind.ADD:
        assert tc.new_path is not None and tc.new_blob is not None
        path, blob = tc.new_path, tc.new_blob
        return Step(
            kind=ChangeKind.ADD,
            key=_fresh(path, blob, known),
            path=path,
            blob=blob,
            effect=Effect({path: blob}, (), ChangeKind.ADD),
        )
    if tc.kind is ChangeKind.DELETE:
        assert tc.old_path is not None
        path = tc.old_path
        found = known(path)
        effect = Effect({}, (path,), ChangeKind.DELETE)
        if found is None or not found.at_peer:  # the peer never had it: nothing to tell
            return Step(
                kind=ChangeKind.DELETE,
                key=found.key if found else None,
                path=path,
                blob="",
                effect=effect,
                send=False,
            )
        return Step(kind=ChangeKind.DELETE, key=found.key, path=path, blob="", effect=effect)
    assert tc.old_path is not None and tc.new_path is not None and tc.new_blob is not None
    old, path, blob = tc.old_path, tc.new_path, tc.new_blob
    renamed = (old,) if old != path else ()
    found = known(old)
    if found is None or not found.at_peer:  # the peer does not have it: an Add
        key = found.key if found is not None else _fresh(path, blob, known)
        return Step(
            kind=ChangeKind.ADD,
            key=key,
            path=path,
            blob=blob,
            moved_from=old,
            effect=Effect({path: blob}, renamed, ChangeKind.ADD),
        )
    effect = Effect({path: blob}, renamed, ChangeKind.MODIFY)
    quiet = tc.old_blob == blob and not carries_name  # a rename the peer cannot see
    return Step(
        kind=ChangeKind.MODIFY,
        key=found.key,
        path=path,
        blob=blob,
        moved_from=old,
        effect=effect,
        send=not quiet,
    )
