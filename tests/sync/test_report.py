"""gitsync/sync/report.py: conflicts are counted in one place, for both roles; the commit trailers."""

from __future__ import annotations

import pytest

from gitsync.model import ChangeKind
from gitsync.sync.report import SyncReport, commit_message

SETTLED_HERE = [
    # (status we answered, unresolved) → (conflicts, merged, unresolved paths)
    (200, False, (0, 0, [])),  # the peer only re-sent the last synced text: no conflict
    (207, False, (1, 1, [])),  # merged cleanly
    (207, True, (1, 0, ["a.txt"])),  # merged with markers
    (208, False, (1, 0, [])),
    (209, False, (1, 0, [])),
    (419, False, (1, 0, [])),
    (409, True, (1, 0, ["a.txt"])),  # policy error: left for a human
]


@pytest.mark.parametrize(("code", "unresolved", "expected"), SETTLED_HERE)
def test_conflicts_we_settle(code: int, unresolved: bool, expected: tuple[int, int, list[str]]) -> None:
    report = SyncReport(peer="p")
    report.settled_here(code, unresolved=unresolved, path="a.txt")
    assert (report.conflicts, report.merged, report.unresolved) == expected


SETTLED_THERE = [
    # (status the peer gave our change, its kind) → (conflicts, merged, the peer merged it)
    (200, ChangeKind.MODIFY, (0, 0, False)),
    (201, ChangeKind.ADD, (0, 0, False)),
    (201, ChangeKind.MODIFY, (1, 0, False)),  # Synthesis kept both versions
    (207, ChangeKind.MODIFY, (1, 1, True)),
    (208, ChangeKind.MODIFY, (1, 0, False)),
    (209, ChangeKind.MODIFY, (1, 0, False)),
    (419, ChangeKind.MODIFY, (1, 0, False)),
    (409, ChangeKind.DELETE, (1, 0, False)),
    (500, ChangeKind.MODIFY, (0, 0, False)),  # a failure, not a conflict
]


@pytest.mark.parametrize(("code", "kind", "expected"), SETTLED_THERE)
def test_conflicts_the_peer_settles(code: int, kind: ChangeKind, expected: tuple[int, int, bool]) -> None:
    report = SyncReport(peer="p")
    merged = report.settled_there(code, kind)
    assert (report.conflicts, report.merged, merged) == expected


def test_commit_message_trailers_in_order_none_left_out() -> None:
    message = commit_message("sync with p: +1 ~0 -0 in, +0 ~0 -0 out", peer="p", url=None, device="d",
                             mode="two-way", conflicts=0)
    assert message == (
        "sync with p: +1 ~0 -0 in, +0 ~0 -0 out\n\n"
        "Gitsync-Peer: p\nGitsync-Device: d\nGitsync-Mode: two-way\nGitsync-Conflicts: 0\n"
    )
