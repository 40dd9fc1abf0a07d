"""Property tests: build_tree and diff agree with a plain dict model of the notes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitsync.model import ChangeKind
from gitsync.store.git import GitStore

# Folders are named d*/e*, files f*: no path can be both a file and a folder.
PATHS = [f"f{i}" for i in range(3)] + [f"d{d}/f{i}" for d in range(2) for i in range(3)] + \
    [f"d{d}/e{e}/f{i}" for d in range(2) for e in range(2) for i in range(2)]
CONTENTS = [b"one\n", b"two\n", b"three\n" * 5, b""]

edits = st.dictionaries(st.sampled_from(PATHS), st.one_of(st.none(), st.sampled_from(CONTENTS)), max_size=8)


@pytest.fixture(scope="module")
def tree_store(tmp_path_factory: pytest.TempPathFactory) -> GitStore:
    root: Path = tmp_path_factory.mktemp("props")
    return GitStore.open(root)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=edits, second=edits)
def test_build_tree_matches_model(tree_store: GitStore, first: dict[str, bytes | None],
                                  second: dict[str, bytes | None]) -> None:
    store = tree_store
    model: dict[str, bytes] = {}
    tree: str | None = None
    trees: list[tuple[str | None, dict[str, bytes]]] = [(None, {})]
    for step in (first, second):
        writes = {p: store.write_blob(c) for p, c in step.items() if c is not None}
        deletes = [p for p, c in step.items() if c is None]
        tree = store.build_tree(tree, writes, deletes)
        for p, c in step.items():
            if c is None:
                model.pop(p, None)
            else:
                model[p] = c
        listed = store.list_notes(tree)
        assert {p: store.read_blob(b) for p, b in listed.items()} == model
        trees.append((tree, dict(model)))
    (old_tree, old_model), (new_tree, new_model) = trees[-2], trees[-1]
    changes = store.diff(old_tree, new_tree)
    rebuilt = dict(old_model)
    for change in changes:
        if change.old_path is not None:
            assert rebuilt.pop(change.old_path) == store.read_blob(change.old_blob or "")
        if change.new_path is not None:
            rebuilt[change.new_path] = store.read_blob(change.new_blob or "")
        if change.kind == ChangeKind.ADD:
            assert change.old_path is None
        if change.kind == ChangeKind.DELETE:
            assert change.new_path is None
    assert rebuilt == new_model
    keys = [c.new_path or c.old_path for c in changes]
    assert keys == sorted(keys)  # type: ignore[type-var]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=edits, second=edits, forward=st.booleans())
def test_listings_carried_across_diffs_and_builds_match_a_walk(
    tree_store: GitStore, first: dict[str, bytes | None], second: dict[str, bytes | None], forward: bool
) -> None:
    """A store derives a tree's notes from another tree's and the diff or edit between them (no
    walk); a fresh store, which has to walk, must list the same notes."""
    store = tree_store
    steps = []
    for step in (first, second):
        writes = {p: store.write_blob(c) for p, c in step.items() if c is not None}
        steps.append((writes, [p for p, c in step.items() if c is None]))
    old = store.build_tree(None, *steps[0])
    new = store.build_tree(old, *steps[1])

    def walked(tree: str) -> dict[str, str]:
        return GitStore.open(store.root).list_notes(tree)

    derived = GitStore.open(store.root)  # empty caches
    known, other = (old, new) if forward else (new, old)
    derived.list_notes(known)  # one side by walking it...
    derived.diff(old, new)  # ...the other carried across the diff
    assert derived.list_notes(other) == walked(other)
    built = GitStore.open(store.root)
    built.list_notes(old)
    assert built.list_notes(built.build_tree(old, *steps[1])) == walked(new)  # carried across the edit
    # a synced tree may be any tree with the same notes (here: the new tree itself)
    synced = built.build_synced(old, *steps[1], like=new)
    assert walked(synced) == walked(new)
