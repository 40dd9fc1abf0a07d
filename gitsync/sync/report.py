"""What a sync did: the counts per side (counted here only), the lines a user reads, and the
commit message with its ``Gitsync-*`` trailers (read back by ``gitsync-notes log``)."""

from __future__ import annotations

import logging
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

from gitsync.model import ChangeKind
from gitsync.protocol.constants import St
from gitsync.sync.conflict import has_conflict_markers

__all__ = [
    "PEER_CONFLICT_CODES",
    "Counts",
    "SyncReport",
    "bump",
    "commit_message",
    "summary_line",
    "too_large_line",
]

logger = logging.getLogger(__name__)

#: statuses a peer gives one of our changes when it had changed the note too (and settled it)
PEER_CONFLICT_CODES = frozenset(
    {St.CONFLICT_MERGED, St.CONFLICT_CLIENT_WON, St.CONFLICT_SERVER_WON, St.CONFLICT_DUPLICATE, St.CONFLICT}
)


@dataclass(slots=True)
class Counts:
    """Adds, modifications, deletions and errors on one side."""

    add: int = 0
    mod: int = 0
    dele: int = 0
    err: int = 0

    def total(self) -> int:
        """Number of successful changes."""
        return self.add + self.mod + self.dele


@dataclass(slots=True)
class SyncReport:
    """What a sync did, for the summary table and the commit message."""

    peer: str
    mode: str = ""
    local: Counts = field(default_factory=Counts)  # applied here (came in)
    remote: Counts = field(default_factory=Counts)  # applied at the peer (went out)
    conflicts: int = 0  # collisions
    merged: int = 0  # resolved by merge
    unresolved: list[str] = field(default_factory=list)  # notes left with conflict markers
    commit: str | None = None
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)  # human remarks
    skipped: list[str] = field(default_factory=list)  # one line per note not sent or not taken, and why
    #: notes not sent because the peer cannot carry them exactly (text peers): path → why
    uncarried: dict[str, str] = field(default_factory=dict)
    #: outgoing notes over the peer's MaxObjSize (in ``skipped``, counted in remote Err): not failures
    too_large_out: int = 0
    #: notes the peer sent that we could not read, kept as their raw payload: (path, why)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)  # one line per peer name stored differently here

    def settled_here(self, code: int, *, unresolved: bool, path: str) -> None:
        """Count a conflict we settled with status ``code`` (200: none after all, the peer only
        re-sent the last synced text); ``unresolved``: ``path`` is left for a human (markers, 409)."""
        if code != St.OK:
            self.conflicts += 1
        if code == St.CONFLICT_MERGED and not unresolved:
            self.merged += 1
        if unresolved:
            self.unresolved.append(path)

    def settled_there(self, code: int, kind: ChangeKind) -> bool:
        """Count the conflict the peer reports in its status ``code`` for one of our changes of
        ``kind`` (a 201 to a Replace: Synthesis kept both versions, its copy comes as an Add);
        whether the peer merged it (207: its merge comes back to us)."""
        if code in PEER_CONFLICT_CODES or (code == St.ITEM_ADDED and kind is ChangeKind.MODIFY):
            self.conflicts += 1
            if code == St.CONFLICT_MERGED:
                self.merged += 1
                return True
        return False

    def count_sent(self, kind: ChangeKind, code: int, *, had: str | None = None, blob: str | None = None,
                   sent_all: bool = False, refresh: bool = False) -> None:
        """Count one change the peer acknowledged with ``code`` as what it changed there (issue 18).

        A slow sync or a refresh sends every note (``sent_all``); one the peer already held with
        this content (``had``: its blob in the tree both sides last agreed on; ``blob``: what we
        sent) changed nothing there.  In a slow sync an Add the peer answers 200 or 418 (not 201
        "added") matched a note it had; 201 is an addition, even of a Replace (the peer kept both);
        a merge or our version winning a conflict (207, 208) is a modification; a Delete of a note
        it did not have (211) changed nothing.  In a refresh (``refresh``: the peer becomes a copy
        of what we send) its answers say nothing: compare with ``had``."""
        if kind is ChangeKind.DELETE:
            if code != St.DELETE_NOT_FOUND:
                self.remote.dele += 1
            return
        if refresh:
            if had == blob:
                return
            kind = ChangeKind.ADD if had is None else ChangeKind.MODIFY
        elif code in (St.ITEM_ADDED, St.CONFLICT_DUPLICATE):
            kind = ChangeKind.ADD
        elif code in (St.CONFLICT_MERGED, St.CONFLICT_CLIENT_WON):
            kind = ChangeKind.MODIFY
        elif sent_all:
            if had == blob or (kind is ChangeKind.ADD and code in (St.OK, St.ALREADY_EXISTS)):
                return
            kind = ChangeKind.ADD if had is None else ChangeKind.MODIFY
        bump(self.remote, kind)

    def count_refreshed(self, had: Iterable[str], kept: Container[str]) -> None:
        """After a refresh from our side: the notes the peer had (``had``) that we did not send
        (not in ``kept``, the tree both sides now agree on) were deleted there."""
        self.remote.dele += sum(1 for path in had if path not in kept)

    #: notes the peer sent with conflict markers they did not have here (a merge elsewhere left them)
    marked: list[str] = field(default_factory=list)

    def note_arrived(self, path: str, body: bytes, before: bytes | None) -> bool:
        """Record a note the peer sent that brings conflict markers (a person must resolve them;
        a script learns it from the exit status); whether it did."""
        if not has_conflict_markers(body) or (before is not None and has_conflict_markers(before)):
            return False
        if path not in self.marked:
            self.marked.append(path)
        return True

    def refused_incoming(self, peer: str, item: str, size: int | None, limit: int | None) -> None:
        """Record an item ``peer`` sent over our MaxObjSize (answered 413, not received)."""
        self.local.err += 1
        self.skipped.append(too_large_line(f"not received from {peer}: {item}", size, limit, "our"))

    def skip(self, path: str, why: str) -> None:
        """Record a note not sent to (or not deleted because of) this peer, once per sync."""
        if path not in self.uncarried:
            self.uncarried[path] = why
            self.skipped.append(f"not sent to {self.peer} (kept here): {path}: {why}")
            logger.info("not sent to %s: %s (%s)", self.peer, path, why)

    def changed(self) -> bool:
        """Whether a change went either way (the sync then makes a commit)."""
        return self.local.total() + self.remote.total() > 0

    def failed(self) -> bool:
        """Whether an item failed on either side (the sync then exits non-zero).  A note not sent
        because the peer cannot take it (format, MaxObjSize) is reported, not a failure: it would
        fail every hook sync for good while nothing is lost."""
        return bool(self.local.err or self.remote.err > self.too_large_out)

    def problems(self) -> list[str]:
        """One line per note stored under another name than its peer's, per note not sent or not
        taken and per unreadable one, for the user (stderr);
        other failed items are logged as they happen."""
        return [
            *self.renamed,
            *self.skipped,
            *(f"unreadable note from {self.peer}, kept as {path}: {why}" for path, why in self.unreadable),
        ]

    def outcome(self, name: str) -> str:
        """:meth:`subject` plus what was not synced, for ``gitsync-notes status``."""
        parts = [self.subject(name)]
        if self.uncarried:
            listed = ", ".join(self.uncarried)
            parts.append(f"{len(self.uncarried)} note(s) not sent, {name} cannot carry them: {listed}")
        if self.unreadable:
            kept = ", ".join(path for path, _ in self.unreadable)
            parts.append(f"{len(self.unreadable)} unreadable, kept as: {kept}")
        if self.marked:
            parts.append(f"conflict markers arrived in: {', '.join(self.marked)}")
        if self.failed():
            parts.append(f"errors: {self.local.err} here, {self.remote.err} at {name}")
        return "; ".join(parts)

    def subject(self, name: str) -> str:
        """The sync commit's subject line."""
        i, o = self.local, self.remote
        return f"sync with {name}: +{i.add} ~{i.mod} -{i.dele} in, +{o.add} ~{o.mod} -{o.dele} out"


def too_large_line(what: str, size: int | None, limit: int | None, whose: str) -> str:
    """The line a user reads for a note refused as over a MaxObjSize (413)."""
    got = f"{size:,} bytes" if size is not None else "too large"
    cap = f"{limit:,} bytes per note" if limit is not None else "its limit"
    return f"{what}: {got}, over {whose} MaxObjSize ({cap})"


def bump(counts: Counts, kind: ChangeKind) -> None:
    """Count one successful change of ``kind``."""
    if kind is ChangeKind.ADD:
        counts.add += 1
    elif kind is ChangeKind.MODIFY:
        counts.mod += 1
    else:
        counts.dele += 1


def commit_message(subject: str, **trailers: str | int | None) -> str:
    """``subject`` and the ``Gitsync-*`` trailers of a sync commit, in the order given (a ``None``
    value is left out): ``peer="x"`` becomes ``Gitsync-Peer: x``."""
    lines = (f"Gitsync-{key.title()}: {value}\n" for key, value in trailers.items() if value is not None)
    return f"{subject}\n\n{''.join(lines)}"


def summary_line(report: SyncReport) -> str:
    """One log line for a server session: the counts on both sides."""
    i, o = report.local, report.remote
    return (
        f"session with {report.peer} ({report.mode}): local +{i.add} ~{i.mod} -{i.dele} err {i.err}; "
        f"remote +{o.add} ~{o.mod} -{o.dele} err {o.err}; conflicts {report.conflicts} merged {report.merged}"
    )
