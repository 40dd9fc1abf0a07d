"""gitsync/sync/plan.py: what goes to the peer, for every local change and both roles (no Git, no sockets).

Each case: the local change since the synced tree, what we know of the note's id (none, an id the
peer never had, an id the peer has), whether the peer sees file names, and the one step planned.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gitsync.model import ChangeKind, SyncMode
from gitsync.sync.ids import make_id
from gitsync.sync.ledger import Effect
from gitsync.sync.plan import Known, Plan, Step, plan_outgoing
from gitsync.sync.state import Role

ADD, MOD, DEL = ChangeKind.ADD, ChangeKind.MODIFY, ChangeKind.DELETE


@dataclass(frozen=True)
class TC:
    """A tree change as the store's diff reports it."""

    kind: ChangeKind
    old_path: str | None
    new_path: str | None
    old_blob: str | None
    new_blob: str | None


def add(path: str, blob: str) -> TC:
    return TC(ADD, None, path, None, blob)


def edit(path: str, old: str, new: str) -> TC:
    return TC(MOD, path, path, old, new)


def rename(old: str, new: str, blob: str, new_blob: str | None = None) -> TC:
    return TC(MOD, old, new, blob, new_blob or blob)


def delete(path: str, blob: str) -> TC:
    return TC(DEL, path, None, blob, None)


NONE: dict[str, Known] = {}
OURS = {"a.txt": Known("K-ours", at_peer=False), "b.txt": Known("K-ours", at_peer=False)}  # never sent
THEIRS = {"a.txt": Known("K-peer", at_peer=True), "b.txt": Known("K-peer", at_peer=True)}  # the peer has it


def step(
    kind: ChangeKind,
    key: str | None,
    path: str,
    blob: str,
    writes: dict[str, str],
    deletes: tuple[str, ...],
    effect_kind: ChangeKind,
    *,
    send: bool = True,
    moved_from: str | None = None,
) -> Step:
    return Step(
        kind=kind,
        key=key,
        path=path,
        blob=blob,
        effect=Effect(writes, deletes, effect_kind),
        send=send,
        moved_from=moved_from,
    )


CASES = [
    # (name, change, known ids, peer sees names, expected step)
    (
        "add, new note",
        add("a.txt", "b1"),
        NONE,
        True,
        step(ADD, make_id("a.txt", "b1"), "a.txt", "b1", {"a.txt": "b1"}, (), ADD),
    ),
    (
        "add where our unsent id is",
        add("a.txt", "b1"),
        OURS,
        True,
        step(ADD, "K-ours", "a.txt", "b1", {"a.txt": "b1"}, (), ADD),
    ),
    (
        "add where a stale peer id is: never reused",
        add("a.txt", "b1"),
        THEIRS,
        True,
        step(ADD, make_id("a.txt", "b1"), "a.txt", "b1", {"a.txt": "b1"}, (), ADD),
    ),
    (
        "edit, peer has it",
        edit("a.txt", "b1", "b2"),
        THEIRS,
        True,
        step(MOD, "K-peer", "a.txt", "b2", {"a.txt": "b2"}, (), MOD, moved_from="a.txt"),
    ),
    (
        "edit, peer has it, no names",
        edit("a.txt", "b1", "b2"),
        THEIRS,
        False,
        step(MOD, "K-peer", "a.txt", "b2", {"a.txt": "b2"}, (), MOD, moved_from="a.txt"),
    ),
    (
        "edit, peer never had it: an Add",
        edit("a.txt", "b1", "b2"),
        OURS,
        True,
        step(ADD, "K-ours", "a.txt", "b2", {"a.txt": "b2"}, (), ADD, moved_from="a.txt"),
    ),
    (
        "edit, no id at all: an Add",
        edit("a.txt", "b1", "b2"),
        NONE,
        True,
        step(ADD, make_id("a.txt", "b2"), "a.txt", "b2", {"a.txt": "b2"}, (), ADD, moved_from="a.txt"),
    ),
    (
        "rename, peer has it, sees names",
        rename("a.txt", "c.txt", "b1"),
        THEIRS,
        True,
        step(MOD, "K-peer", "c.txt", "b1", {"c.txt": "b1"}, ("a.txt",), MOD, moved_from="a.txt"),
    ),
    (
        "rename, peer has it, no names: agreed, not sent",
        rename("a.txt", "c.txt", "b1"),
        THEIRS,
        False,
        step(MOD, "K-peer", "c.txt", "b1", {"c.txt": "b1"}, ("a.txt",), MOD, send=False, moved_from="a.txt"),
    ),
    (
        "rename and edit, no names: sent",
        rename("a.txt", "c.txt", "b1", "b2"),
        THEIRS,
        False,
        step(MOD, "K-peer", "c.txt", "b2", {"c.txt": "b2"}, ("a.txt",), MOD, moved_from="a.txt"),
    ),
    (
        "rename, peer never had it: an Add that drops the old path",
        rename("a.txt", "c.txt", "b1"),
        OURS,
        True,
        step(ADD, "K-ours", "c.txt", "b1", {"c.txt": "b1"}, ("a.txt",), ADD, moved_from="a.txt"),
    ),
    (
        "rename onto a stale peer id, no id at the old path",
        rename("x.txt", "a.txt", "b1"),
        THEIRS,
        True,
        step(
            ADD, make_id("a.txt", "b1"), "a.txt", "b1", {"a.txt": "b1"}, ("x.txt",), ADD, moved_from="x.txt"
        ),
    ),
    (
        "delete, peer has it",
        delete("a.txt", "b1"),
        THEIRS,
        True,
        step(DEL, "K-peer", "a.txt", "", {}, ("a.txt",), DEL),
    ),
    (
        "delete, peer never had it: agreed",
        delete("a.txt", "b1"),
        OURS,
        True,
        step(DEL, "K-ours", "a.txt", "", {}, ("a.txt",), DEL, send=False),
    ),
    (
        "delete, no id: agreed",
        delete("a.txt", "b1"),
        NONE,
        True,
        step(DEL, None, "a.txt", "", {}, ("a.txt",), DEL, send=False),
    ),
]


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
@pytest.mark.parametrize(
    ("change", "ids", "names", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_local_change_plans_one_step(
    role: Role, change: TC, ids: dict[str, Known], names: bool, expected: Step
) -> None:
    plan = plan_outgoing(role, SyncMode.TWO_WAY, diff=[change], notes={}, known=ids.get, carries_name=names)
    assert plan == Plan((expected,))
    assert plan.sends == ((expected,) if expected.send else ())


SETTLED = [
    ("edit of a note the peer changed too (the conflict decided it)", edit("a.txt", "b1", "b2")),
    ("delete of a note the peer changed", delete("a.txt", "b1")),
    ("rename away from a note the peer changed", rename("a.txt", "c.txt", "b1")),
    ("rename onto a path the peer's change took", rename("x.txt", "a.txt", "b1")),
    ("add at a path the peer's change took", add("a.txt", "b1")),
]


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
@pytest.mark.parametrize("change", [c[1] for c in SETTLED], ids=[c[0] for c in SETTLED])
def test_a_note_settled_by_the_peers_change_is_not_sent(role: Role, change: TC) -> None:
    plan = plan_outgoing(
        role,
        SyncMode.TWO_WAY,
        diff=[change, add("z.txt", "b9")],
        notes={},
        known=THEIRS.get,
        carries_name=True,
        settled={"a.txt"},
    )
    assert [s.path for s in plan.steps] == ["z.txt"]


def test_steps_keep_the_diffs_order() -> None:
    diff = [delete("d.txt", "b4"), add("a.txt", "b1"), edit("b.txt", "b2", "b3")]
    plan = plan_outgoing(
        Role.CLIENT, SyncMode.TWO_WAY, diff=diff, notes={}, known=THEIRS.get, carries_name=True
    )
    assert [(s.kind, s.path, s.send) for s in plan.steps] == [
        (DEL, "d.txt", False),
        (ADD, "a.txt", True),
        (MOD, "b.txt", True),
    ]


MODES = [
    # (role, mode, sends anything, sends everything)
    (Role.CLIENT, SyncMode.TWO_WAY, True, False),
    (Role.CLIENT, SyncMode.SLOW, True, True),
    (Role.CLIENT, SyncMode.ONE_WAY_FROM_CLIENT, True, False),
    (Role.CLIENT, SyncMode.REFRESH_FROM_CLIENT, True, True),
    (Role.CLIENT, SyncMode.ONE_WAY_FROM_SERVER, False, False),
    (Role.CLIENT, SyncMode.REFRESH_FROM_SERVER, False, False),
    (Role.SERVER, SyncMode.TWO_WAY, True, False),
    (Role.SERVER, SyncMode.SLOW, True, True),
    (Role.SERVER, SyncMode.ONE_WAY_FROM_SERVER, True, False),
    (Role.SERVER, SyncMode.REFRESH_FROM_SERVER, True, True),
    (Role.SERVER, SyncMode.ONE_WAY_FROM_CLIENT, False, False),
    (Role.SERVER, SyncMode.REFRESH_FROM_CLIENT, False, False),
]


@pytest.mark.parametrize(("role", "mode", "sends", "everything"), MODES)
def test_the_mode_decides_what_is_sent(role: Role, mode: SyncMode, sends: bool, everything: bool) -> None:
    notes = {"a.txt": "b1", "n.txt": "b5"}
    diff = [edit("a.txt", "b0", "b1")]
    plan = plan_outgoing(role, mode, diff=diff, notes=notes, known=THEIRS.get, carries_name=True)
    assert plan.everything is everything
    if not sends:
        assert plan.steps == ()
    elif everything:  # every note as an Add, under the id we have for it
        assert plan.steps == (
            step(ADD, "K-peer", "a.txt", "b1", {"a.txt": "b1"}, (), ADD),
            step(ADD, make_id("n.txt", "b5"), "n.txt", "b5", {"n.txt": "b5"}, (), ADD),
        )
    else:
        assert [(s.kind, s.key) for s in plan.steps] == [(MOD, "K-peer")]


def test_everything_skips_what_the_peer_has_or_settled() -> None:
    """A slow sync: notes the peer's own package matched (``has``) or settled are not sent back."""
    notes = {"a.txt": "b1", "b.txt": "b2", "c.txt": "b3", "d.txt": "b4"}
    plan = plan_outgoing(
        Role.SERVER,
        SyncMode.SLOW,
        diff=[],
        notes=notes,
        known=THEIRS.get,
        carries_name=True,
        settled={"c.txt"},
        has={"K-peer", make_id("x", "y")},
    )
    assert [(s.path, s.key) for s in plan.steps] == [("d.txt", make_id("d.txt", "b4"))]
