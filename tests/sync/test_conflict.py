"""gitsync/sync/conflict.py, table-driven: every combination the pure resolver knows, no Git, no sockets.

Kinds of change per side, as the resolver sees them: both modified (or both added at one path:
``base`` None), one deleted and the other modified.  (A rename reaches the resolver as the
modification of its target path; both sides deleting needs no resolution.)  The three-way merge is
passed in: here a stub that says what a clean or an overlapping merge gave, and records its calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gitsync.protocol.constants import St
from gitsync.sync.conflict import (
    Outcome,
    Policy,
    has_conflict_markers,
    resolve_delete_vs_modify,
    resolve_modify,
)

BASE, OURS, THEIRS, MERGED = b"base\n", b"server edit\n", b"client edit\n", b"merged\n"
MARKED = b"<<<<<<< server\nserver edit\n=======\nclient edit\n>>>>>>> client\n"


@dataclass
class Merge:
    """A stand-in for the Git three-way merge: answers ``(result, clean)``, records its calls."""

    result: bytes
    clean: bool
    calls: list[tuple[bytes | None, bytes, bytes]] = field(default_factory=list)

    def __call__(self, base: bytes | None, server: bytes, client: bytes) -> tuple[bytes, bool]:
        self.calls.append((base, server, client))
        return self.result, self.clean


ALL_POLICIES = list(Policy)

# (case, base, server, client, merge, policy, duplicates_ok, expected)
MODIFY = [
    # the same edit on both sides is no conflict, whatever the policy and whatever a merge would say
    *[
        (f"same edit/{p.value}/dup={d}", base, OURS, OURS, Merge(MARKED, False), p, d,
         Outcome(code=St.OK, server=OURS, send=None))
        for p in ALL_POLICIES for d in (True, False) for base in (BASE, None)
    ],
    # a clean merge settles it in every policy: merged text on both sides
    *[
        (f"clean merge/{p.value}", BASE, OURS, THEIRS, Merge(MERGED, True), p, True,
         Outcome(code=St.CONFLICT_MERGED, server=MERGED, send=MERGED))
        for p in ALL_POLICIES
    ],
    # a clean merge equal to the client's text: nothing to send back
    ("clean merge = client", BASE, OURS, THEIRS, Merge(THEIRS, True), Policy.MERGE, True,
     Outcome(code=St.CONFLICT_MERGED, server=THEIRS, send=None)),
    # both added at one path (no base), clean
    ("both added, clean", None, OURS, THEIRS, Merge(MERGED, True), Policy.MERGE, True,
     Outcome(code=St.CONFLICT_MERGED, server=MERGED, send=MERGED)),
    # overlapping edits: the policy decides
    ("overlap/merge", BASE, OURS, THEIRS, Merge(MARKED, False), Policy.MERGE, True,
     Outcome(code=St.CONFLICT_MERGED, server=MARKED, send=MARKED, unresolved=True)),
    ("overlap/client-wins", BASE, OURS, THEIRS, Merge(MARKED, False), Policy.CLIENT_WINS, True,
     Outcome(code=St.CONFLICT_CLIENT_WON, server=THEIRS, send=None)),
    ("overlap/server-wins", BASE, OURS, THEIRS, Merge(MARKED, False), Policy.SERVER_WINS, True,
     Outcome(code=St.CONFLICT_SERVER_WON, server=OURS, send=OURS)),
    ("overlap/error", BASE, OURS, THEIRS, Merge(MARKED, False), Policy.ERROR, True,
     Outcome(code=St.CONFLICT, server=OURS, send=None, unresolved=True)),
    ("overlap/keep-both", BASE, OURS, THEIRS, Merge(MARKED, False), Policy.KEEP_BOTH, True,
     Outcome(code=St.CONFLICT_DUPLICATE, server=OURS, send=OURS, copy=THEIRS)),
    ("overlap/keep-both, no 209", BASE, OURS, THEIRS, Merge(MARKED, False), Policy.KEEP_BOTH, False,
     Outcome(code=St.CONFLICT_CLIENT_WON, server=THEIRS, send=None, copy=OURS)),
    ("both added, overlap/merge", None, OURS, THEIRS, Merge(MARKED, False), Policy.MERGE, True,
     Outcome(code=St.CONFLICT_MERGED, server=MARKED, send=MARKED, unresolved=True)),
    ("both added, overlap/server-wins", None, OURS, THEIRS, Merge(MARKED, False), Policy.SERVER_WINS, True,
     Outcome(code=St.CONFLICT_SERVER_WON, server=OURS, send=OURS)),
]


@pytest.mark.parametrize(
    ("base", "server", "client", "merge", "policy", "duplicates_ok", "expected"),
    [case[1:] for case in MODIFY],
    ids=[case[0] for case in MODIFY],
)
def test_resolve_modify(
    base: bytes | None,
    server: bytes,
    client: bytes,
    merge: Merge,
    policy: Policy,
    duplicates_ok: bool,
    expected: Outcome,
) -> None:
    assert resolve_modify(base, server, client, policy, merge, duplicates_ok=duplicates_ok) == expected
    if server != client:
        assert merge.calls == [(base, server, client)]  # the merge sees the right three versions


def test_policies_cover_the_enum() -> None:
    overlap = {case[5] for case in MODIFY if case[0].startswith("overlap/")}
    assert overlap == set(Policy)


# (case, server_modified, client_modified, policy, expected)
DELETE_VS_MODIFY = [
    # the client deleted what the server edited: the edit comes back, unless the client wins
    ("client deleted/merge", OURS, None, Policy.MERGE,
     Outcome(code=St.CONFLICT_SERVER_WON, server=OURS, send=OURS)),
    ("client deleted/server-wins", OURS, None, Policy.SERVER_WINS,
     Outcome(code=St.CONFLICT_SERVER_WON, server=OURS, send=OURS)),
    ("client deleted/keep-both", OURS, None, Policy.KEEP_BOTH,
     Outcome(code=St.CONFLICT_SERVER_WON, server=OURS, send=OURS)),
    ("client deleted/client-wins", OURS, None, Policy.CLIENT_WINS,
     Outcome(code=St.CONFLICT_CLIENT_WON, server=None, send=None)),
    ("client deleted/error", OURS, None, Policy.ERROR,
     Outcome(code=St.CONFLICT, server=OURS, send=None, unresolved=True)),
    # the server deleted what the client edited: the edit stays, unless the server wins
    ("server deleted/merge", None, THEIRS, Policy.MERGE,
     Outcome(code=St.CONFLICT_CLIENT_WON, server=THEIRS, send=None)),
    ("server deleted/client-wins", None, THEIRS, Policy.CLIENT_WINS,
     Outcome(code=St.CONFLICT_CLIENT_WON, server=THEIRS, send=None)),
    ("server deleted/keep-both", None, THEIRS, Policy.KEEP_BOTH,
     Outcome(code=St.CONFLICT_CLIENT_WON, server=THEIRS, send=None)),
    ("server deleted/server-wins", None, THEIRS, Policy.SERVER_WINS,
     Outcome(code=St.CONFLICT_SERVER_WON, server=None, send=None, send_delete=True)),
    ("server deleted/error", None, THEIRS, Policy.ERROR,
     Outcome(code=St.CONFLICT, server=None, send=None, unresolved=True)),
]


@pytest.mark.parametrize(
    ("server_modified", "client_modified", "policy", "expected"),
    [case[1:] for case in DELETE_VS_MODIFY],
    ids=[case[0] for case in DELETE_VS_MODIFY],
)
def test_resolve_delete_vs_modify(
    server_modified: bytes | None, client_modified: bytes | None, policy: Policy, expected: Outcome
) -> None:
    assert resolve_delete_vs_modify(server_modified, client_modified, policy) == expected


def test_delete_vs_modify_covers_every_policy_both_ways() -> None:
    for side in ("client deleted/", "server deleted/"):
        assert {c[3] for c in DELETE_VS_MODIFY if c[0].startswith(side)} == set(Policy)


def test_no_outcome_loses_both_versions() -> None:
    """Whatever the policy, one of the two versions survives on the server or as a copy."""
    for case in MODIFY:
        out = case[-1]
        assert out.server is not None or out.copy is not None, case[0]


@pytest.mark.parametrize(
    ("text", "marked"),
    [
        (MARKED, True),
        (MARKED.replace(b"\n", b"\r\n"), True),
        (b"<<<<<<<\n=======\n>>>>>>>\n", True),
        (b"<<<<<<< a\n=======\n", False),  # no closing marker
        (b"=======\n>>>>>>> b\n", False),  # no opening marker
        (b"x <<<<<<< a\n=======\n>>>>>>> b\n", False),  # not at the start of a line
        (b"<<<<<<<< a\n=======\n>>>>>>> b\n", False),  # eight, not seven
        (b"<<<<<<< a\n========\n>>>>>>> b\n", False),
        (b"plain note\n", False),
        (b"", False),
    ],
)
def test_has_conflict_markers(text: bytes, marked: bool) -> None:
    assert has_conflict_markers(text) is marked
